/* Unit tests for coordinatord/fleet.c, the parts that need no Redis: valid
 * states, the state and health an entry shows (lost, stopped, unknown states,
 * the probe's view), lookup by id in a snapshot, its JSON rendering, and
 * snapshot reference counting (ASan's leak check sees a missed free).  The
 * reading of instance hashes from Redis is covered end to end
 * (tests/e2e/coordinatord-fleet.sh). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "coordinatord/fleet.h"
#include "test-main.h"

static char *dup_or_null(const char *s) {
        char *d = s ? strdup(s) : NULL;
        ck_assert(!s || d);
        return d;
}

static struct instance_info *info_new(const char *id, const char *service, const char *state, const char *health) {
        struct instance_info *i = calloc(1, sizeof *i);

        ck_assert_ptr_nonnull(i);
        i->ref = 1;
        i->id = dup_or_null(id);
        i->service = dup_or_null(service);
        i->host = dup_or_null("h1");
        i->address = dup_or_null("10.0.0.1:8080");
        i->version = dup_or_null("1.2.3");
        i->state = dup_or_null(state);
        i->health = dup_or_null(health);
        i->config_version = 4;
        i->ttl_ms = 15000;
        return i;
}

/* A snapshot as fleet.c publishes one (allocated the way fleet_snapshot_unref() frees it). */
static struct fleet_snapshot *snapshot_make(size_t n) {
        struct fleet_snapshot *s = calloc(1, sizeof *s);

        ck_assert_ptr_nonnull(s);
        s->ref = 1;
        s->entries = calloc(n ? n : 1, sizeof *s->entries);
        ck_assert_ptr_nonnull(s->entries);
        s->n = n;
        pthread_mutex_init(&s->render_lock, NULL);
        return s;
}

START_TEST(test_state_is_valid) {
        static const char *const good[] = { "starting", "healthy", "unhealthy", "draining", "stopped", "lost" };
        static const char *const bad[] = { "", "Healthy", "healthy ", "alive", "dead", "lo" };

        for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
                ck_assert_msg(fleet_state_is_valid(good[i]), "%s", good[i]);
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
                ck_assert_msg(!fleet_state_is_valid(bad[i]), "%s", bad[i]);
        ck_assert(!fleet_state_is_valid(NULL));
}
END_TEST

/* state, health (agent's probe view), lost -> shown state, shown health. */
START_TEST(test_entry_state_health) {
        static const struct {
                const char *state, *health;
                bool lost;
                const char *want_state, *want_health;
        } t[] = {
                { "healthy", NULL, false, "healthy", "healthy" },
                { "unhealthy", NULL, false, "unhealthy", "unhealthy" },
                { "starting", NULL, false, "starting", "starting" },
                { "draining", NULL, false, "draining", "starting" },
                { "draining", "healthy", false, "draining", "healthy" },
                { "draining", "unhealthy", false, "draining", "unhealthy" },
                { "stopped", NULL, false, "stopped", "starting" },
                { "healthy", "unhealthy", false, "healthy", "unhealthy" },
                { "healthy", "bogus", false, "healthy", "healthy" },
                /* An unknown or missing state shows as starting. */
                { "exploded", NULL, false, "starting", "starting" },
                { NULL, NULL, false, "starting", "starting" },
                /* Lost wins over whatever the hash says. */
                { "healthy", "healthy", true, "lost", "lost" },
                { "stopped", NULL, true, "lost", "lost" },
        };

        for (size_t k = 0; k < sizeof t / sizeof t[0]; k++) {
                struct fleet_entry e = { .info = info_new("web-1", "web", t[k].state, t[k].health), .lost = t[k].lost };

                ck_assert_msg(strcmp(fleet_entry_state(&e), t[k].want_state) == 0, "case %zu: state %s", k,
                              fleet_entry_state(&e));
                ck_assert_msg(strcmp(fleet_entry_health(&e), t[k].want_health) == 0, "case %zu: health %s", k,
                              fleet_entry_health(&e));
                /* One reference: the snapshot frees the info with it. */
                struct fleet_snapshot *s = snapshot_make(1);
                s->entries[0] = e;
                fleet_snapshot_unref(s);
        }
}
END_TEST

START_TEST(test_entry_json) {
        struct fleet_entry e = { .info = info_new("web-1", "web", "draining", "healthy"), .last_seen_ms = 1700000000123 };
        struct fleet_snapshot *s = snapshot_make(1);
        json_t *j = fleet_entry_to_json(&e);
        char *d;

        ck_assert_ptr_nonnull(j);
        d = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
        ck_assert_str_eq(d, "{\"address\":\"10.0.0.1:8080\",\"config_version\":4,\"host\":\"h1\",\"id\":\"web-1\","
                            "\"last_seen\":\"2023-11-14T22:13:20.123Z\",\"service\":\"web\",\"state\":\"draining\","
                            "\"version\":\"1.2.3\"}");
        free(d);
        json_decref(j);

        /* A missing optional field is null; lost shows in the state. */
        free(e.info->host);
        e.info->host = NULL;
        e.lost = true;
        j = fleet_entry_to_json(&e);
        ck_assert_ptr_nonnull(j);
        ck_assert(json_is_null(json_object_get(j, "host")));
        ck_assert_str_eq(json_string_value(json_object_get(j, "service")), "web");
        ck_assert_str_eq(json_string_value(json_object_get(j, "state")), "lost");
        json_decref(j);
        s->entries[0] = e;
        fleet_snapshot_unref(s);
}
END_TEST

START_TEST(test_snapshot_find_and_json) {
        static const char *const ids[] = { "api-1", "web-1", "web-2", "worker-9" };
        struct fleet_snapshot *s = snapshot_make(4);
        const char *out, *out2;
        size_t len, len2;

        for (size_t i = 0; i < 4; i++) {
                s->entries[i].info = info_new(ids[i], strncmp(ids[i], "web", 3) == 0 ? "web" : "other", "healthy", NULL);
                s->entries[i].last_seen_ms = 1000;
        }
        s->entries[3].lost = true;
        for (size_t i = 0; i < 4; i++) {
                const struct fleet_entry *e = fleet_snapshot_find(s, ids[i]);
                ck_assert_ptr_eq(e, &s->entries[i]);
        }
        ck_assert_ptr_null(fleet_snapshot_find(s, "web-3"));
        ck_assert_ptr_null(fleet_snapshot_find(s, ""));
        ck_assert_ptr_null(fleet_snapshot_find(s, "aaa"));
        ck_assert_ptr_null(fleet_snapshot_find(s, "zzz"));

        ck_assert_int_eq(fleet_snapshot_json_all(s, &out, &len), 0);
        ck_assert_uint_eq(len, strlen(out));
        ck_assert_int_eq(out[len - 1], '\n');
        {
                json_error_t err;
                json_t *j = json_loads(out, 0, &err), *arr;

                ck_assert_ptr_nonnull(j);
                arr = json_object_get(j, "instances");
                ck_assert_uint_eq(json_array_size(arr), 4);
                for (size_t i = 0; i < 4; i++)
                        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(arr, i), "id")), ids[i]);
                ck_assert_str_eq(json_string_value(json_object_get(json_array_get(arr, 1), "service")), "web");
                ck_assert_str_eq(json_string_value(json_object_get(json_array_get(arr, 0), "state")), "healthy");
                ck_assert_str_eq(json_string_value(json_object_get(json_array_get(arr, 3), "state")), "lost");
                json_decref(j);
        }
        /* Rendered once per snapshot: the same buffer again. */
        ck_assert_int_eq(fleet_snapshot_json_all(s, &out2, &len2), 0);
        ck_assert_ptr_eq(out2, out);
        ck_assert_uint_eq(len2, len);
        fleet_snapshot_unref(s);

        /* An empty snapshot: no entry, an empty list. */
        s = snapshot_make(0);
        ck_assert_ptr_null(fleet_snapshot_find(s, "web-1"));
        ck_assert_int_eq(fleet_snapshot_json_all(s, &out, &len), 0);
        ck_assert_str_eq(out, "{\"instances\":[]}\n");
        fleet_snapshot_unref(s);
}
END_TEST

/* Readers hold references: the snapshot (and its infos, shared between
 * snapshots) lives until the last one is dropped. */
START_TEST(test_snapshot_refcount) {
        struct fleet_snapshot *a = snapshot_make(1), *b = snapshot_make(1);
        struct instance_info *shared = info_new("web-1", "web", "healthy", NULL);
        const char *out;
        size_t len;

        shared->ref = 2; /* in both snapshots, as publish_snapshot() shares unchanged infos */
        a->entries[0].info = shared;
        b->entries[0].info = shared;
        a->ref = 2; /* two readers */
        fleet_snapshot_unref(a);
        ck_assert_int_eq(a->ref, 1);
        ck_assert_int_eq(shared->ref, 2);
        ck_assert_int_eq(fleet_snapshot_json_all(a, &out, &len), 0); /* still usable */
        fleet_snapshot_unref(a);
        /* a is gone; b still holds the info. */
        ck_assert_int_eq(shared->ref, 1);
        ck_assert_str_eq(fleet_entry_state(&b->entries[0]), "healthy");
        ck_assert_str_eq(b->entries[0].info->id, "web-1");
        fleet_snapshot_unref(b);
        fleet_snapshot_unref(NULL); /* accepted */
}
END_TEST

static void add_tests(TCase *tc) {
        tcase_add_test(tc, test_state_is_valid);
        tcase_add_test(tc, test_entry_state_health);
        tcase_add_test(tc, test_entry_json);
        tcase_add_test(tc, test_snapshot_find_and_json);
        tcase_add_test(tc, test_snapshot_refcount);
}

TEST_MAIN("fleet", add_tests)
