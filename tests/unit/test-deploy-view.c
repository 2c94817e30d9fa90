/* Unit tests for deploy/deploy-view.c: the deployment model coordctl follows,
 * and its rendering (live view, status, event lines, summary). */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deploy/deploy-view.h"
#include "duration.h"
#include "jsonutil.h"
#include "test-main.h"

/* 2026-12-01T10:00:00Z */
#define T0 UINT64_C(1796119200000000)
#define SEC(s) ((uint64_t) ((s) * 1000000.0))

/* The GET /v1/deployments/ID example of docs/deployments.md, with three instances. */
static const char deployment_json[] =
        "{\"id\":\"d1f3a9c0b2e4d6f8a0b1\",\"service\":\"web\",\"version\":\"2.0\",\"previous_version\":\"1.0\","
        "\"state\":\"rolling\",\"phase\":\"rolling\",\"requested\":null,\"migrate\":true,"
        "\"strategy\":{\"max_parallel\":1,\"canary\":0,\"min_healthy_time\":\"10s\",\"healthy_deadline\":\"5m\","
        "\"progress_deadline\":\"10m\",\"drain_delay\":\"0s\",\"auto_revert\":true},"
        "\"created_at\":\"2026-12-01T10:00:00.000Z\",\"updated_at\":\"2026-12-01T10:00:04.120Z\","
        "\"finished_at\":null,\"progress_deadline_at\":\"2026-12-01T10:10:04.120Z\","
        "\"progress\":{\"total\":3,\"done\":1,\"failed\":0,\"lost\":0,\"reverted\":0},"
        "\"migrations\":{\"pre\":{\"state\":\"done\",\"instance\":\"web-1\",\"exit_code\":0,\"error\":null},"
        "\"post\":null},"
        "\"instances\":["
        "{\"id\":\"web-1\",\"host\":\"host-1\",\"state\":\"done\",\"from\":\"1.0\",\"to\":\"2.0\",\"error\":null,"
        "\"lost\":false,\"skipped\":false,\"started_at\":\"2026-12-01T10:00:01.000Z\","
        "\"updated_at\":\"2026-12-01T10:00:03.900Z\"},"
        "{\"id\":\"web-2\",\"host\":\"host-2\",\"state\":\"updating\",\"from\":\"1.0\",\"to\":\"2.0\",\"error\":null,"
        "\"lost\":false,\"skipped\":false,\"started_at\":\"2026-12-01T10:00:04.000Z\","
        "\"updated_at\":\"2026-12-01T10:00:04.120Z\"},"
        "{\"id\":\"web-3\",\"host\":\"host-3\",\"state\":\"pending\",\"from\":\"1.0\",\"to\":\"2.0\",\"error\":null,"
        "\"lost\":false,\"skipped\":false,\"started_at\":null,\"updated_at\":\"2026-12-01T10:00:00.000Z\"}],"
        "\"error\":null}";

static json_t *parse(const char *s) {
        json_error_t e;
        json_t *j = json_loads(s, 0, &e);
        ck_assert_msg(j != NULL, "bad test JSON: %s", e.text);
        return j;
}

/* A model loaded from the example, as if received at updated_at (no clock skew). */
static struct deploy_view *loaded(void) {
        struct deploy_view *v = deploy_view_new();
        _cleanup_json_ json_t *d = parse(deployment_json);

        ck_assert_ptr_nonnull(v);
        ck_assert_int_eq(deploy_view_load(v, d, T0 + SEC(4.12)), 0);
        return v;
}

static void apply(struct deploy_view *v, const char *ev, uint64_t now) {
        _cleanup_json_ json_t *j = parse(ev);
        ck_assert_int_eq(deploy_view_apply(v, j, now), 0);
}

static char *render(const struct deploy_view *v, uint64_t now, unsigned width, unsigned height, bool utf8,
                    size_t *ret_lines) {
        struct deploy_view_render_opts o = { .now_usec = now, .width = width, .height = height, .utf8 = utf8 };
        char *s = NULL;
        size_t n = 0;

        ck_assert_int_eq(deploy_view_render(v, &o, &s, &n), 0);
        if (ret_lines)
                *ret_lines = n;
        return s;
}

START_TEST(test_timestamps) {
        static const struct {
                const char *in;
                int r;
                uint64_t usec;
        } t[] = {
                { "2026-12-01T10:00:01.200Z", 0, UINT64_C(1796119201200000) },
                { "2026-12-01T10:00:00Z", 0, T0 },
                { "2026-12-01t10:00:00z", 0, T0 },
                { "2026-12-01T11:00:00+01:00", 0, T0 },
                { "2026-12-01T09:30:00.5-00:30", 0, T0 + 500000 },
                { "2026-12-01T10:00:00.123456789Z", 0, T0 + 123456 },
                { "2000-02-29T23:59:59Z", 0, UINT64_C(951868799000000) },
                { "1970-01-01T00:00:00Z", 0, 0 },
                { "2026-12-01T10:00:00", -EINVAL, 0 },
                { "2026-12-01T10:00:00.Z", -EINVAL, 0 },
                { "2026-13-01T10:00:00Z", -EINVAL, 0 },
                { "2026-12-01T24:00:00Z", -EINVAL, 0 },
                { "2026-12-01T10:00:00Zjunk", -EINVAL, 0 },
                { "1969-12-31T23:59:59Z", -EINVAL, 0 },
                { "", -EINVAL, 0 },
                { "yesterday", -EINVAL, 0 },
        };

        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                uint64_t v = 42;
                int r = deploy_parse_timestamp(t[i].in, &v);
                ck_assert_msg(r == t[i].r, "'%s': got %d", t[i].in, r);
                ck_assert_msg(v == (r == 0 ? t[i].usec : 42), "'%s': got %llu", t[i].in, (unsigned long long) v);
        }
        ck_assert_int_eq(deploy_parse_timestamp(NULL, &(uint64_t) { 0 }), -EINVAL);
}
END_TEST

START_TEST(test_elapsed) {
        char b[16];

        ck_assert_str_eq(deploy_format_elapsed(0, b, sizeof b), "0s");
        ck_assert_str_eq(deploy_format_elapsed(SEC(59.9), b, sizeof b), "59s");
        ck_assert_str_eq(deploy_format_elapsed(SEC(61), b, sizeof b), "1m01s");
        ck_assert_str_eq(deploy_format_elapsed(SEC(3599), b, sizeof b), "59m59s");
        ck_assert_str_eq(deploy_format_elapsed(SEC(3600 + 120 + 5), b, sizeof b), "1h02m");
}
END_TEST

START_TEST(test_load) {
        _cleanup_deploy_view_ struct deploy_view *v = loaded();
        _cleanup_json_ json_t *bad = parse("{\"service\":\"web\"}"), *arr = parse("[]");

        ck_assert_str_eq(v->id, "d1f3a9c0b2e4d6f8a0b1");
        ck_assert_str_eq(v->service, "web");
        ck_assert_str_eq(v->previous_version, "1.0");
        ck_assert_str_eq(v->state, "rolling");
        ck_assert_ptr_null(v->requested);
        ck_assert_ptr_null(v->error);
        ck_assert(v->migrate);
        ck_assert_str_eq(v->strategy, "max_parallel 1, canary 0, min_healthy_time 10s, healthy_deadline 5m, "
                                      "progress_deadline 10m, drain_delay 0s, auto_revert true");
        ck_assert_uint_eq(v->created_usec, T0);
        ck_assert_int_eq(v->progress.total, 3);
        ck_assert_int_eq(v->progress.done, 1);
        ck_assert_str_eq(v->pre.state, "done");
        ck_assert_ptr_null(v->post.state);
        ck_assert_uint_eq(v->n_instances, 3);
        ck_assert_str_eq(v->instances[1].id, "web-2");
        ck_assert_str_eq(v->instances[1].state, "updating");
        ck_assert_uint_eq(v->instances[1].since_usec, T0 + SEC(4.12));
        ck_assert_uint_eq(v->instances[0].ended_usec, T0 + SEC(3.9));
        ck_assert(v->has_skew);
        ck_assert_int_eq(v->skew_usec, 0);

        /* Not a deployment: refused, the model untouched. */
        ck_assert_int_eq(deploy_view_load(v, bad, T0), -EINVAL);
        ck_assert_int_eq(deploy_view_load(v, arr, T0), -EINVAL);
        ck_assert_str_eq(v->id, "d1f3a9c0b2e4d6f8a0b1");
        ck_assert_uint_eq(v->n_instances, 3);
}
END_TEST

START_TEST(test_render_golden) {
        _cleanup_deploy_view_ struct deploy_view *v = loaded();
        _cleanup_free_ char *ascii = NULL, *utf8 = NULL;
        size_t n;

        ascii = render(v, T0 + SEC(10), 0, 0, false, &n);
        ck_assert_str_eq(ascii,
                         "Deployment d1f3a9c0b2e4d6f8a0b1: web 1.0 -> 2.0\n"
                         "[######--------------] 1/3 done  rolling  10s\n"
                         "  web-1  done       1.0 -> 2.0  2s\n"
                         "  web-2  updating   1.0 -> 2.0  5s\n"
                         "  web-3  pending    1.0 -> 2.0\n"
                         "  migration pre done on web-1 (exit 0)\n");
        ck_assert_uint_eq(n, 6);

        utf8 = render(v, T0 + SEC(10), 0, 0, true, &n);
        ck_assert_str_eq(utf8,
                         "Deployment d1f3a9c0b2e4d6f8a0b1: web 1.0 → 2.0\n"
                         "[██████░░░░░░░░░░░░░░] 1/3 done  rolling  10s\n"
                         "  web-1  done       1.0 → 2.0  2s\n"
                         "  web-2  updating   1.0 → 2.0  5s\n"
                         "  web-3  pending    1.0 → 2.0\n"
                         "  migration pre done on web-1 (exit 0)\n");
}
END_TEST

/* Times tick with "now" alone: the view is redrawn every second without events. */
START_TEST(test_render_ticks) {
        _cleanup_deploy_view_ struct deploy_view *v = loaded();
        _cleanup_free_ char *a = render(v, T0 + SEC(70.5), 0, 0, false, NULL);

        ck_assert_ptr_nonnull(strstr(a, "rolling  1m10s\n"));
        ck_assert_ptr_nonnull(strstr(a, "  web-2  updating   1.0 -> 2.0  1m06s\n"));
        ck_assert_ptr_nonnull(strstr(a, "  web-1  done       1.0 -> 2.0  2s\n"));
}
END_TEST

START_TEST(test_apply_events) {
        _cleanup_deploy_view_ struct deploy_view *v = loaded();
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL, *s = NULL;
        struct deploy_view_render_opts o = { .now_usec = T0 + SEC(30) };

        apply(v,
              "{\"type\":\"instance\",\"deployment\":\"d1f3a9c0b2e4d6f8a0b1\",\"instance\":\"web-2\","
              "\"state\":\"verifying\",\"from\":\"1.0\",\"to\":\"2.0\",\"error\":null,\"exit_code\":0,"
              "\"output\":\"deployed\\n\",\"lost\":false,"
              "\"progress\":{\"total\":3,\"done\":1,\"failed\":0,\"lost\":0,\"reverted\":0},"
              "\"ts\":\"2026-12-01T10:00:06.000Z\"}",
              T0 + SEC(6.1));
        ck_assert_str_eq(v->instances[1].state, "verifying");
        ck_assert_uint_eq(v->instances[1].since_usec, T0 + SEC(6));
        ck_assert_uint_eq(v->instances[1].started_usec, T0 + SEC(4));
        ck_assert_int_eq(v->skew_usec, 0); /* 0.1 s late is more than the 0 already known */

        apply(v,
              "{\"type\":\"state\",\"deployment\":\"d1f3a9c0b2e4d6f8a0b1\",\"state\":\"paused\","
              "\"previous\":\"rolling\",\"message\":\"paused by ci\",\"error\":null,"
              "\"progress\":{\"total\":3,\"done\":1,\"failed\":0,\"lost\":0,\"reverted\":0},"
              "\"ts\":\"2026-12-01T10:00:07.000Z\"}",
              T0 + SEC(7));
        ck_assert_str_eq(v->state, "paused");
        ck_assert_str_eq(v->phase, "rolling");
        a = render(v, T0 + SEC(9), 0, 0, false, NULL);
        ck_assert_ptr_nonnull(strstr(a, "] 1/3 done  paused (in rolling)  9s\n"));
        ck_assert_ptr_nonnull(strstr(a, "  web-2  verifying  1.0 -> 2.0  3s\n"));
        ck_assert_ptr_nonnull(strstr(a, "latest: deployment paused: paused by ci\n"));

        /* An instance the initial list did not have is added. */
        apply(v,
              "{\"type\":\"instance\",\"deployment\":\"d1f3a9c0b2e4d6f8a0b1\",\"instance\":\"web-4\","
              "\"host\":\"host-4\",\"state\":\"draining\",\"from\":\"1.0\",\"to\":\"2.0\","
              "\"progress\":{\"total\":4,\"done\":1,\"failed\":0,\"lost\":0,\"reverted\":0},"
              "\"ts\":\"2026-12-01T10:00:08.000Z\"}",
              T0 + SEC(8));
        ck_assert_uint_eq(v->n_instances, 4);
        ck_assert_str_eq(v->instances[3].host, "host-4");
        ck_assert_int_eq(v->progress.total, 4);

        apply(v,
              "{\"type\":\"migration\",\"deployment\":\"d1f3a9c0b2e4d6f8a0b1\",\"phase\":\"post\","
              "\"state\":\"failed\",\"instance\":\"web-1\",\"exit_code\":1,\"output\":\"ERROR\","
              "\"error\":\"V3__drop.sql line 2: 42P01 relation does not exist\","
              "\"progress\":{\"total\":4,\"done\":4,\"failed\":0,\"lost\":0,\"reverted\":0},"
              "\"ts\":\"2026-12-01T10:00:20.000Z\"}",
              T0 + SEC(20));
        ck_assert_str_eq(v->post.state, "failed");
        ck_assert_int_eq(v->post.exit_code, 1);

        apply(v,
              "{\"type\":\"state\",\"deployment\":\"d1f3a9c0b2e4d6f8a0b1\",\"state\":\"failed\","
              "\"previous\":\"post-migrating\",\"message\":null,"
              "\"error\":\"post-deploy migration failed; instances keep 2.0\","
              "\"progress\":{\"total\":4,\"done\":4,\"failed\":0,\"lost\":0,\"reverted\":0},"
              "\"ts\":\"2026-12-01T10:00:21.000Z\"}",
              T0 + SEC(21));
        ck_assert(deploy_state_is_terminal(v->state));
        ck_assert_uint_eq(v->finished_usec, T0 + SEC(21));
        b = render(v, T0 + SEC(99), 0, 0, false, NULL);
        /* A finished deployment's clock stops at its end. */
        ck_assert_ptr_nonnull(strstr(b, "[####################] 4/4 done  failed  21s\n"));
        ck_assert_ptr_nonnull(strstr(b, "  migration post failed on web-1 (exit 1): V3__drop.sql line 2: 42P01"));
        /* web-4 was left draining at 8 s: its clock stopped at the end too (21 s). */
        ck_assert_ptr_nonnull(strstr(b, "  web-4  draining   1.0 -> 2.0  13s\n"));
        s = deploy_view_summary(v, &o);
        ck_assert_str_eq(s, "Deployment d1f3a9c0b2e4d6f8a0b1 failed after 21s: web 1.0 -> 2.0, 4/4 instances done; "
                            "error: post-deploy migration failed; instances keep 2.0");

        /* Not an event. */
        _cleanup_json_ json_t *notype = parse("{\"state\":\"x\"}");
        ck_assert_int_eq(deploy_view_apply(v, notype, T0), -EINVAL);
        c = render(v, T0 + SEC(99), 0, 0, false, NULL);
        ck_assert_str_eq(b, c);
}
END_TEST

START_TEST(test_clock_skew) {
        _cleanup_deploy_view_ struct deploy_view *v = deploy_view_new();
        _cleanup_json_ json_t *d = parse(deployment_json);
        _cleanup_free_ char *a = NULL;

        /* Our clock is 100 s ahead of the server's: times are still right. */
        ck_assert_int_eq(deploy_view_load(v, d, T0 + SEC(104.12)), 0);
        ck_assert_int_eq(v->skew_usec, SEC(100));
        a = render(v, T0 + SEC(110), 0, 0, false, NULL);
        ck_assert_ptr_nonnull(strstr(a, "rolling  10s\n"));
        ck_assert_ptr_nonnull(strstr(a, "updating   1.0 -> 2.0  5s\n"));
}
END_TEST

START_TEST(test_describe) {
        static const struct {
                const char *ev, *line;
        } t[] = {
                { "{\"type\":\"instance\",\"deployment\":\"d1\",\"instance\":\"web-1\",\"state\":\"updating\","
                  "\"from\":\"1.0\",\"to\":\"2.0\",\"error\":null,\"exit_code\":0,\"output\":\"drained\\n\","
                  "\"lost\":false,\"ts\":\"2026-12-01T10:00:01.200Z\"}",
                  "web-1 updating 1.0 -> 2.0" },
                { "{\"type\":\"state\",\"state\":\"rolling\",\"previous\":\"canary\",\"message\":null,\"error\":null}",
                  "deployment rolling" },
                { "{\"type\":\"migration\",\"phase\":\"pre\",\"state\":\"done\",\"instance\":\"web-1\",\"exit_code\":0,"
                  "\"output\":\"\",\"error\":null}",
                  "migration pre done on web-1 (exit 0)" },
                { "{\"type\":\"migration\",\"phase\":\"pre\",\"state\":\"running\",\"instance\":\"web-1\"}",
                  "migration pre running on web-1" },
                { "{\"type\":\"instance\",\"instance\":\"web-2\",\"state\":\"failed\",\"from\":\"1.0\",\"to\":\"2.0\","
                  "\"exit_code\":1,\"error\":\"deploy hook exited 1\"}",
                  "web-2 failed 1.0 -> 2.0 (exit 1): deploy hook exited 1" },
                { "{\"type\":\"instance\",\"instance\":\"web-3\",\"state\":\"failed\",\"from\":\"1.0\",\"to\":\"2.0\","
                  "\"lost\":true,\"error\":\"agent stopped heartbeating\"}",
                  "web-3 failed 1.0 -> 2.0 (lost): agent stopped heartbeating" },
                { "{\"type\":\"instance\",\"instance\":\"web-3\",\"state\":\"done\",\"from\":\"2.0\",\"to\":\"2.0\","
                  "\"skipped\":true}",
                  "web-3 done 2.0 -> 2.0 (skipped)" },
                { "{\"type\":\"state\",\"state\":\"reverting\",\"message\":\"web-2 failed, reverting\","
                  "\"error\":\"web-2: deploy hook exited 1\"}",
                  "deployment reverting: web-2 failed, reverting; error: web-2: deploy hook exited 1" },
                { "{\"type\":\"state\",\"state\":\"failed\",\"error\":{\"message\":\"progress deadline 10m passed\"}}",
                  "deployment failed: progress deadline 10m passed" },
                { "{\"type\":\"instance\",\"instance\":\"web-1\",\"state\":\"draining\",\"from\":\"1.0\",\"to\":\"2.0\","
                  "\"hook\":\"drain\",\"exit_code\":0}",
                  "web-1 draining 1.0 -> 2.0, drain hook exit 0" },
                { "{\"type\":\"instance\",\"instance\":\"web-1\",\"state\":\"updating\",\"from\":\"1.0\",\"to\":\"2.0\","
                  "\"revert\":true}",
                  "web-1 updating 2.0 -> 1.0 (revert)" },
                { "{\"type\":\"hello\"}", "hello event" },
                /* Server text cannot drive the terminal. */
                { "{\"type\":\"instance\",\"instance\":\"web-1\",\"state\":\"failed\","
                  "\"error\":\"bad\\u001b[2J\\r\\nnews\\u009b31m\\u007f\"}",
                  "web-1 failed: bad [2J  news 31m " },
        };

        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                _cleanup_json_ json_t *j = parse(t[i].ev);
                _cleanup_free_ char *s = deploy_event_describe(j, false);
                ck_assert_msg(s && strcmp(s, t[i].line) == 0, "event %zu: got '%s' want '%s'", i, s, t[i].line);
        }
}
END_TEST

/* Whole UTF-8 sequences only: a cut must not leave half a character. */
static bool utf8_whole(const char *s, size_t n) {
        for (size_t i = 0; i < n;) {
                unsigned char c = (unsigned char) s[i];
                size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
                if (len == 0 || i + len > n)
                        return false;
                for (size_t k = 1; k < len; k++)
                        if ((((unsigned char) s[i + k]) & 0xc0) != 0x80)
                                return false;
                i += len;
        }
        return true;
}

static size_t utf8_columns(const char *s, size_t n) {
        size_t c = 0;
        for (size_t i = 0; i < n; i++)
                if (((unsigned char) s[i] & 0xc0) != 0x80)
                        c++;
        return c;
}

/* Every line fits the width, and truncation never splits a UTF-8 character. */
START_TEST(test_width) {
        _cleanup_deploy_view_ struct deploy_view *v = loaded();

        apply(v,
              "{\"type\":\"instance\",\"instance\":\"web-3\",\"state\":\"failed\",\"from\":\"1.0\",\"to\":\"2.0\","
              "\"error\":\"a rather long error message → with an arrow, to be cut somewhere in the middle\","
              "\"ts\":\"2026-12-01T10:00:05.000Z\"}",
              T0 + SEC(5));
        for (unsigned w = 1; w <= 130; w++)
                for (int u = 0; u <= 1; u++) {
                        _cleanup_free_ char *s = render(v, T0 + SEC(10), w, 0, u, NULL);
                        for (const char *p = s; *p;) {
                                const char *nl = strchr(p, '\n');
                                ck_assert_ptr_nonnull(nl);
                                size_t cols = utf8_columns(p, (size_t) (nl - p));
                                ck_assert_msg(cols <= w, "width %u: %zu columns in '%.*s'", w, cols, (int) (nl - p), p);
                                ck_assert_msg(utf8_whole(p, (size_t) (nl - p)), "width %u: a character cut", w);
                                p = nl + 1;
                        }
                }
        _cleanup_free_ char *cut = render(v, T0 + SEC(10), 30, 0, true, NULL);
        ck_assert_ptr_nonnull(strstr(cut, "Deployment d1f3a9c0b2e4d6f8a0…\n"));
}
END_TEST

/* Too many instances for the terminal: those in a step and the failed ones
 * first, then a count of the rest. */
START_TEST(test_height) {
        _cleanup_deploy_view_ struct deploy_view *v = deploy_view_new();
        _cleanup_json_ json_t *d = json_pack("{s:s, s:s, s:s, s:s, s:s, s:[]}", "id", "d2", "service", "api",
                                             "version", "3", "previous_version", "2", "state", "rolling",
                                             "instances");
        _cleanup_free_ char *s = NULL, *tiny = NULL, *all = NULL;
        size_t n;

        ck_assert_ptr_nonnull(d);
        for (int i = 0; i < 12; i++) {
                char id[16];
                snprintf(id, sizeof id, "api-%02d", i);
                json_array_append_new(json_object_get(d, "instances"),
                                      json_pack("{s:s, s:s, s:s, s:s}", "id", id, "state",
                                                i < 3 ? "done" : i == 10 ? "updating" : i == 11 ? "failed" : "pending",
                                                "from", "2", "to", "3"));
        }
        ck_assert_int_eq(deploy_view_load(v, d, T0), 0);

        s = render(v, T0, 80, 7, false, &n);
        ck_assert_uint_eq(n, 7);
        ck_assert_str_eq(s,
                         "Deployment d2: api 2 -> 3\n"
                         "[--------------------] 0/0 done  rolling\n"
                         "  api-00  done       2 -> 3\n"
                         "  api-01  done       2 -> 3\n"
                         "  api-10  updating   2 -> 3\n"
                         "  api-11  failed     2 -> 3\n"
                         "  ~ and 8 more (1 done, 7 pending)\n");

        tiny = render(v, T0, 80, 1, false, &n);
        ck_assert_uint_eq(n, 1);
        ck_assert_str_eq(tiny, "Deployment d2: api 2 -> 3\n");

        all = render(v, T0, 0, 0, false, &n);
        ck_assert_uint_eq(n, 14);
}
END_TEST

START_TEST(test_status) {
        _cleanup_deploy_view_ struct deploy_view *v = loaded();
        struct deploy_view_render_opts o = { .now_usec = T0 + SEC(10) };
        _cleanup_free_ char *s = deploy_view_render_status(v, &o);

        ck_assert_str_eq(s,
                         "Deployment d1f3a9c0b2e4d6f8a0b1: web 1.0 -> 2.0\n"
                         "  state:      rolling\n"
                         "  progress:   1/3 done\n"
                         "  created:    2026-12-01T10:00:00.000Z (10s elapsed)\n"
                         "  updated:    2026-12-01T10:00:04.120Z\n"
                         "  finished:   -\n"
                         "  strategy:   max_parallel 1, canary 0, min_healthy_time 10s, healthy_deadline 5m, "
                         "progress_deadline 10m, drain_delay 0s, auto_revert true; migrate true\n"
                         "  migrations: pre done on web-1 (exit 0)\n"
                         "  error:      -\n"
                         "  instances:\n"
                         "    web-1  done       1.0 -> 2.0  2s\n"
                         "    web-2  updating   1.0 -> 2.0  5s\n"
                         "    web-3  pending    1.0 -> 2.0\n");
}
END_TEST

START_TEST(test_summary) {
        _cleanup_deploy_view_ struct deploy_view *v = loaded();
        struct deploy_view_render_opts o = { .now_usec = T0 + SEC(12), .utf8 = true };
        _cleanup_free_ char *running = deploy_view_summary(v, &o), *done = NULL;

        ck_assert_str_eq(running, "Deployment d1f3a9c0b2e4d6f8a0b1 is rolling, 12s elapsed: web 1.0 → 2.0, 1/3 instances done");
        apply(v,
              "{\"type\":\"state\",\"state\":\"succeeded\",\"previous\":\"rolling\","
              "\"progress\":{\"total\":3,\"done\":3,\"failed\":0,\"lost\":0,\"reverted\":0},"
              "\"ts\":\"2026-12-01T10:01:04.000Z\"}",
              T0 + SEC(64));
        o.now_usec = T0 + SEC(500);
        done = deploy_view_summary(v, &o);
        ck_assert_str_eq(done, "Deployment d1f3a9c0b2e4d6f8a0b1 succeeded in 1m04s: web 1.0 → 2.0, 3/3 instances done");
}
END_TEST

START_TEST(test_states) {
        ck_assert(deploy_state_is_terminal("succeeded"));
        ck_assert(deploy_state_is_terminal("failed"));
        ck_assert(deploy_state_is_terminal("reverted"));
        ck_assert(deploy_state_is_terminal("cancelled"));
        ck_assert(!deploy_state_is_terminal("reverting"));
        ck_assert(!deploy_state_is_terminal("paused"));
        ck_assert(!deploy_state_is_terminal(NULL));
        ck_assert(deploy_step_is_active("verifying"));
        ck_assert(!deploy_step_is_active("done"));
}
END_TEST

START_TEST(test_event_types) {
        for (int t = 0; t < _DEPLOY_EVENT_TYPE_MAX; t++)
                ck_assert_int_eq(deploy_event_type_from_string(deploy_event_type_to_string((enum deploy_event_type) t)), t);
        ck_assert_str_eq(deploy_event_type_to_string(DEPLOY_EVENT_MIGRATION), "migration");
        ck_assert_int_eq(deploy_event_type_from_string("progress"), -EINVAL);
        ck_assert_int_eq(deploy_event_type_from_string(NULL), -EINVAL);
        ck_assert_ptr_null(deploy_event_type_to_string(_DEPLOY_EVENT_TYPE_MAX));
}
END_TEST

START_TEST(test_clean_text) {
        _cleanup_free_ char *a = deploy_clean_text("ok → fine\ttab\x1b]0;title\x07\xc2\x9b" "1m\xc2\xa0nbsp");

        ck_assert_str_eq(a, "ok → fine tab ]0;title  1m\xc2\xa0nbsp");
}
END_TEST

static void add_tests(TCase *tc) {
        tcase_add_test(tc, test_timestamps);
        tcase_add_test(tc, test_elapsed);
        tcase_add_test(tc, test_load);
        tcase_add_test(tc, test_render_golden);
        tcase_add_test(tc, test_render_ticks);
        tcase_add_test(tc, test_apply_events);
        tcase_add_test(tc, test_clock_skew);
        tcase_add_test(tc, test_describe);
        tcase_add_test(tc, test_width);
        tcase_add_test(tc, test_height);
        tcase_add_test(tc, test_status);
        tcase_add_test(tc, test_summary);
        tcase_add_test(tc, test_states);
        tcase_add_test(tc, test_event_types);
        tcase_add_test(tc, test_clean_text);
}

TEST_MAIN("deploy-view", add_tests)
