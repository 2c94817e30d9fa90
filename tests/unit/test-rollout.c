/* Unit tests for coordinatord/rollout.c, the pure rollout state machine:
 * tables of situations (one step each), and whole rollouts against a small
 * in-memory fleet whose "agents" carry out commands at once, checking the
 * availability invariant after every step. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rollout.h"
#include "test-main.h"

#define SIM_MAX 16
#define RESULTS_MAX 512

struct sim_inst {
        char id[16], host[16], version[16], health[16];
        bool draining, lost, stopped;
        int deploys;           /* deploy commands carried out */
        int drains, undrains;
        bool hold;             /* commands to it never finish (a dead agent) */
};

struct sim_result {
        char cmd[96];
        bool finished, ok;
        char error[64];
};

struct sim {
        struct sim_inst v[SIM_MAX];
        size_t n;
        const char *bad_version; /* deploying it leaves the instance unhealthy */
        bool fail_pre, fail_post, fail_deploy_of_first;
        int pre_runs, post_runs;
        int post_at_step, last_done_step;
        struct sim_result res[RESULTS_MAX];
        size_t n_res;
        int64_t now;
        int steps;
        struct rollout *d;
        const char *request;
        size_t max_unavailable; /* observed */
        char log[8192];         /* "drain web-1;deploy web-1 2.0;..." */
};

static void sim_init(struct sim *s, size_t n, const char *version) {
        memset(s, 0, sizeof *s);
        s->n = n;
        for (size_t i = 0; i < n; i++) {
                snprintf(s->v[i].id, sizeof s->v[i].id, "web-%zu", i + 1);
                snprintf(s->v[i].host, sizeof s->v[i].host, "host-%zu", i + 1);
                snprintf(s->v[i].version, sizeof s->v[i].version, "%s", version);
                snprintf(s->v[i].health, sizeof s->v[i].health, "healthy");
        }
        s->now = 1000000;
}

static struct rollout *new_deployment(struct sim *s, const char *version, int max_parallel, int canary,
                                      bool migrate) {
        struct rollout_strategy st;
        struct rollout *d = NULL;

        rollout_strategy_default(&st);
        st.max_parallel = max_parallel;
        st.canary = canary;
        st.min_healthy_ms = 300;
        st.healthy_deadline_ms = 2000;
        st.progress_deadline_ms = 10000;
        ck_assert_int_eq(rollout_new("d1", "web", version, &st, migrate, "ci", s->now, &d), 0);
        s->d = d;
        return d;
}

static const char *sim_state(const struct sim_inst *x) {
        if (x->lost)
                return "lost";
        if (x->stopped)
                return "stopped";
        if (x->draining)
                return "draining";
        return x->health;
}

static struct sim_inst *sim_find(struct sim *s, const char *id) {
        for (size_t i = 0; i < s->n; i++)
                if (strcmp(s->v[i].id, id) == 0)
                        return &s->v[i];
        return NULL;
}

static void log_add(struct sim *s, const char *what, const char *a, const char *b) {
        size_t l = strlen(s->log);
        snprintf(s->log + l, sizeof s->log - l, "%s %s%s%s;", what, a, b ? " " : "", b ? b : "");
}

static void sim_exec(struct sim *s, const struct rollout_cmd *k) {
        struct sim_inst *x = sim_find(s, k->instance);
        struct sim_result *r;

        ck_assert_ptr_nonnull(x);
        ck_assert_uint_lt(s->n_res, RESULTS_MAX);
        r = &s->res[s->n_res++];
        snprintf(r->cmd, sizeof r->cmd, "%s", k->id);
        if (x->hold || x->lost)
                return;
        r->finished = true;
        r->ok = true;
        switch (k->type) {
        case COMMAND_DRAIN:
                x->draining = true;
                x->drains++;
                log_add(s, "drain", x->id, NULL);
                break;
        case COMMAND_DEPLOY:
                x->deploys++;
                log_add(s, "deploy", x->id, k->version);
                if (s->fail_deploy_of_first && x == &s->v[0] && strcmp(k->version, "2.0") == 0) {
                        r->ok = false;
                        snprintf(r->error, sizeof r->error, "exit status 3");
                        break;
                }
                snprintf(x->version, sizeof x->version, "%s", k->version);
                snprintf(x->health, sizeof x->health, "%s",
                         s->bad_version && strcmp(k->version, s->bad_version) == 0 ? "unhealthy" : "healthy");
                break;
        case COMMAND_UNDRAIN:
                x->draining = false;
                x->undrains++;
                log_add(s, "undrain", x->id, NULL);
                break;
        case COMMAND_MIGRATE:
                ck_assert_ptr_nonnull(k->phase);
                log_add(s, "migrate", k->phase, x->id);
                if (strcmp(k->phase, "pre") == 0) {
                        s->pre_runs++;
                        r->ok = !s->fail_pre;
                } else {
                        s->post_runs++;
                        s->post_at_step = s->steps;
                        r->ok = !s->fail_post;
                }
                if (!r->ok)
                        snprintf(r->error, sizeof r->error, "migration V2 failed");
                break;
        default:
                ck_abort_msg("unexpected command type %d", k->type);
        }
}

/* One reconcile pass: returns the step's output (caller frees). */
static void sim_step(struct sim *s, struct rollout_output *out) {
        struct rollout_fleet_entry fleet[SIM_MAX];
        struct rollout_result results[RESULTS_MAX];
        size_t nf = 0, unavailable = 0;

        for (size_t i = 0; i < s->n; i++) {
                struct sim_inst *x = &s->v[i];
                fleet[nf++] = (struct rollout_fleet_entry) {
                        .id = x->id, .host = x->host, .version = x->version,
                        .state = sim_state(x), .health = x->lost ? "lost" : x->health, .lost = x->lost,
                };
        }
        for (size_t i = 0; i < s->n_res; i++)
                results[i] = (struct rollout_result) {
                        .cmd = s->res[i].cmd, .finished = s->res[i].finished, .ok = s->res[i].ok,
                        .exit_code = s->res[i].ok ? 0 : 3, .error = s->res[i].error, .output = "",
                };
        struct rollout_input in = {
                .fleet = fleet, .n_fleet = nf, .results = results, .n_results = s->n_res,
                .request = s->request, .now = s->now,
        };
        ck_assert_int_eq(rollout_step(s->d, &in, out), 0);
        s->request = NULL;
        for (size_t i = 0; i < out->n_cmds; i++)
                sim_exec(s, &out->cmds[i]);
        for (size_t i = 0; i < s->n; i++)
                if (strcmp(sim_state(&s->v[i]), "healthy") != 0 && !s->v[i].stopped)
                        unavailable++;
        if (unavailable > s->max_unavailable)
                s->max_unavailable = unavailable;
        s->steps++;
        s->now += 100;
}

/* A fleet of n instances on 1.0 and a deployment of 2.0 to it (faults may be
 * set on s afterwards: they act from the first step on). */
static void sim_start(struct sim *s, size_t n, int max_parallel, int canary, bool migrate) {
        sim_init(s, n, "1.0");
        new_deployment(s, "2.0", max_parallel, canary, migrate);
}

/* Run until a terminal state (or a step limit). */
static enum dep_state sim_run(struct sim *s, int max_steps) {
        for (int i = 0; i < max_steps && !dep_state_is_terminal(s->d->state); i++) {
                struct rollout_output out;
                sim_step(s, &out);
                rollout_output_done(&out);
        }
        return s->d->state;
}

/* Run until a terminal state (or max_steps): it must be want, and the error
 * must name error and error2 (each unless NULL). */
static void sim_expect(struct sim *s, int max_steps, enum dep_state want, const char *error, const char *error2) {
        enum dep_state got = sim_run(s, max_steps);

        ck_assert_msg(got == want, "ended %s, want %s", dep_state_to_string(got), dep_state_to_string(want));
        if (!error)
                return;
        ck_assert_ptr_nonnull(s->d->error);
        ck_assert_msg(strstr(s->d->error, error), "%s", s->d->error);
        if (error2)
                ck_assert_msg(strstr(s->d->error, error2), "%s", s->d->error);
}

static void sim_done(struct sim *s) {
        s->d = rollout_free(s->d);
}

/* ---- whole rollouts ---- */

START_TEST(test_rollout_succeeds) {
        static const int parallel[] = { 1, 2, 3 };
        struct sim s;

        sim_start(&s, 5, parallel[_i], 0, true);
        sim_expect(&s, 500, DEP_SUCCEEDED, NULL, NULL);
        ck_assert_str_eq(s.d->previous_version, "1.0");
        for (size_t i = 0; i < s.n; i++) {
                ck_assert_str_eq(s.v[i].version, "2.0");
                ck_assert_int_eq(s.v[i].deploys, 1);
                ck_assert_int_eq(s.v[i].drains, 1);
                ck_assert_int_eq(s.v[i].undrains, 1);
                ck_assert_int_eq(s.d->instances[i].state, STEP_DONE);
                ck_assert(!s.v[i].draining);
        }
        ck_assert_int_eq(s.pre_runs, 1);
        ck_assert_int_eq(s.post_runs, 1);
        /* The post-deploy migration came after the last undrain. */
        ck_assert_ptr_nonnull(strstr(s.log, "migrate post"));
        ck_assert_ptr_null(strstr(strstr(s.log, "migrate post"), "undrain"));
        ck_assert_msg(strncmp(s.log, "migrate pre", 11) == 0, "%s", s.log);
        ck_assert_uint_le(s.max_unavailable, (size_t) parallel[_i]);
        ck_assert_uint_eq(s.max_unavailable, (size_t) parallel[_i]);
        sim_done(&s);
}
END_TEST

START_TEST(test_rollout_unhealthy_reverts) {
        struct sim s;

        sim_start(&s, 3, 1, 0, true);
        s.bad_version = "2.0";
        sim_expect(&s, 500, DEP_REVERTED, "healthy_deadline", NULL);
        for (size_t i = 0; i < s.n; i++) {
                ck_assert_str_eq(s.v[i].version, "1.0");
                ck_assert_str_eq(sim_state(&s.v[i]), "healthy");
        }
        /* Only the first instance was changed, deployed to 2.0 and back. */
        ck_assert_int_eq(s.v[0].deploys, 2);
        ck_assert_int_eq(s.v[1].deploys, 0);
        ck_assert_int_eq(s.d->instances[0].state, STEP_REVERTED);
        ck_assert_int_eq(s.d->instances[1].state, STEP_PENDING);
        ck_assert_int_eq(s.post_runs, 0);
        ck_assert_int_eq(s.pre_runs, 1);
        ck_assert_uint_le(s.max_unavailable, 1);
        sim_done(&s);
}
END_TEST

START_TEST(test_rollout_no_auto_revert) {
        struct sim s;

        sim_start(&s, 3, 1, 0, false);
        s.bad_version = "2.0";
        s.d->strategy.auto_revert = false;
        sim_expect(&s, 500, DEP_FAILED, NULL, NULL);
        ck_assert_str_eq(s.v[0].version, "2.0");
        ck_assert_int_eq(s.v[0].deploys, 1);
        sim_done(&s);
}
END_TEST

START_TEST(test_rollout_hook_failure_reverts_exactly_changed) {
        struct sim s;

        sim_start(&s, 4, 2, 0, false);
        s.fail_deploy_of_first = true;
        sim_expect(&s, 500, DEP_REVERTED, "deploy hook failed (exit 3)", NULL);
        /* web-1 (failed) and web-2 (in the same window) were changed; 3 and 4 untouched. */
        ck_assert_int_eq(s.v[2].drains, 0);
        ck_assert_int_eq(s.v[3].drains, 0);
        for (size_t i = 0; i < s.n; i++)
                ck_assert_str_eq(s.v[i].version, "1.0");
        ck_assert_int_eq(s.d->instances[0].state, STEP_REVERTED);
        ck_assert_uint_le(s.max_unavailable, 2);
        sim_done(&s);
}
END_TEST

START_TEST(test_rollout_pre_migration_fails) {
        struct sim s;

        sim_start(&s, 3, 1, 0, true);
        s.fail_pre = true;
        sim_expect(&s, 100, DEP_FAILED, "pre-deploy migration failed on web-1", "no instance was changed");
        for (size_t i = 0; i < s.n; i++)
                ck_assert_int_eq(s.v[i].drains + s.v[i].deploys, 0);
        ck_assert_int_eq(s.d->pre.state, MIG_FAILED);
        sim_done(&s);
}
END_TEST

START_TEST(test_rollout_post_migration_fails_no_revert) {
        struct sim s;

        sim_start(&s, 3, 1, 0, true);
        s.fail_post = true;
        sim_expect(&s, 500, DEP_FAILED, "post-deploy migration failed", "not reverted");
        for (size_t i = 0; i < s.n; i++) {
                ck_assert_str_eq(s.v[i].version, "2.0");
                ck_assert_int_eq(s.v[i].deploys, 1);
        }
        sim_done(&s);
}
END_TEST

START_TEST(test_rollout_canary) {
        struct sim s;
        struct rollout_output out;
        int started_in_canary = 0;

        sim_start(&s, 4, 3, 1, false);
        while (!dep_state_is_terminal(s.d->state) && s.steps < 500) {
                sim_step(&s, &out);
                bool canary = s.d->state == DEP_CANARY;
                for (size_t i = 0; canary && i < out.n_cmds; i++)
                        if (out.cmds[i].type == COMMAND_DRAIN)
                                started_in_canary++;
                rollout_output_done(&out);
        }
        ck_assert_int_eq(s.d->state, DEP_SUCCEEDED);
        ck_assert_int_eq(started_in_canary, 1);
        ck_assert(s.d->instances[0].canary);
        ck_assert(!s.d->instances[1].canary);
        sim_done(&s);
}
END_TEST

START_TEST(test_rollout_skips_current) {
        struct sim s;

        sim_start(&s, 3, 1, 0, false);
        snprintf(s.v[1].version, sizeof s.v[1].version, "2.0");
        sim_expect(&s, 500, DEP_SUCCEEDED, NULL, NULL);
        ck_assert(s.d->instances[1].skipped);
        ck_assert_int_eq(s.v[1].deploys, 0);
        ck_assert_int_eq(s.v[0].deploys, 1);
        sim_done(&s);
}
END_TEST

/* Two instances down by themselves, max_parallel 2: no healthy one is taken,
 * but the down ones may be updated (that costs no availability). */
START_TEST(test_availability_counts_unhealthy) {
        struct sim s;
        struct rollout_output out;

        sim_start(&s, 4, 2, 0, false);
        snprintf(s.v[2].health, sizeof s.v[2].health, "unhealthy");
        s.v[3].hold = true;
        snprintf(s.v[3].health, sizeof s.v[3].health, "unhealthy");
        sim_step(&s, &out);
        /* web-3 and web-4 are down: those two are started, web-1 and web-2 wait. */
        ck_assert_uint_eq(out.n_cmds, 2);
        ck_assert_str_eq(out.cmds[0].instance, "web-3");
        ck_assert_str_eq(out.cmds[1].instance, "web-4");
        rollout_output_done(&out);
        ck_assert_int_eq(s.v[0].drains, 0);
        sim_done(&s);
}
END_TEST

START_TEST(test_availability_waits) {
        struct sim s;
        struct rollout_output out;

        sim_start(&s, 4, 1, 0, false);
        snprintf(s.v[0].health, sizeof s.v[0].health, "unhealthy");
        s.v[0].stopped = false;
        /* web-1 is down by itself: it may be taken; nothing else. */
        sim_step(&s, &out);
        ck_assert_uint_eq(out.n_cmds, 1);
        ck_assert_str_eq(out.cmds[0].instance, "web-1");
        rollout_output_done(&out);
        sim_done(&s);
}
END_TEST

START_TEST(test_no_resend) {
        struct sim s;
        struct rollout_output out;

        sim_start(&s, 2, 1, 0, false);
        s.v[0].hold = true;
        sim_step(&s, &out);
        ck_assert_uint_eq(out.n_cmds, 1);
        ck_assert_str_eq(out.cmds[0].id, "d1-1");
        ck_assert_str_eq(s.d->instances[0].cmd, "d1-1");
        rollout_output_done(&out);
        for (int i = 0; i < 20; i++) {
                sim_step(&s, &out);
                ck_assert_uint_eq(out.n_cmds, 0);
                rollout_output_done(&out);
        }
        ck_assert_int_eq(s.d->instances[0].state, STEP_DRAINING);
        sim_done(&s);
}
END_TEST

/* A step reports exactly the instances it changed (they alone are rewritten). */
START_TEST(test_dirty_instances) {
        struct sim s;
        struct rollout_output out;

        sim_start(&s, 3, 1, 0, false);
        sim_step(&s, &out); /* plan: every instance is new */
        ck_assert(out.changed);
        ck_assert_ptr_nonnull(out.dirty);
        ck_assert(out.dirty[0] && out.dirty[1] && out.dirty[2]);
        rollout_output_done(&out);
        sim_step(&s, &out); /* web-1's drain finished: it goes on to updating; the others wait */
        ck_assert(out.changed);
        ck_assert(out.dirty[0]);
        ck_assert(!out.dirty[1] && !out.dirty[2]);
        rollout_output_done(&out);
        for (int i = 0; i < 100 && !dep_state_is_terminal(s.d->state); i++) {
                sim_step(&s, &out);
                for (size_t k = 0; out.changed && k < s.d->n_instances; k++)
                        if (s.d->instances[k].state == STEP_PENDING)
                                ck_assert_msg(!out.dirty[k], "untouched instance %zu marked dirty", k);
                rollout_output_done(&out);
        }
        ck_assert_int_eq(s.d->state, DEP_SUCCEEDED);
        sim_done(&s);
}
END_TEST

START_TEST(test_pause_resume_cancel) {
        struct sim s;
        struct rollout_output out;
        int drains;

        sim_start(&s, 4, 1, 0, false);
        sim_step(&s, &out); /* plan + first drain */
        rollout_output_done(&out);
        s.request = "pause";
        sim_step(&s, &out);
        ck_assert(out.request_consumed);
        rollout_output_done(&out);
        ck_assert_int_eq(s.d->state, DEP_PAUSED);
        ck_assert_int_eq(s.d->phase, DEP_ROLLING);
        /* The in-flight instance finishes; nothing new starts, however long. */
        s.now += 60 * 60 * 1000;
        sim_expect(&s, 50, DEP_PAUSED, NULL, NULL);
        ck_assert_int_eq(s.d->instances[0].state, STEP_DONE);
        drains = s.v[1].drains + s.v[2].drains + s.v[3].drains;
        ck_assert_int_eq(drains, 0);
        s.request = "resume";
        sim_step(&s, &out);
        rollout_output_done(&out);
        ck_assert_int_eq(s.d->state, DEP_ROLLING);
        ck_assert_int_eq(s.v[1].drains, 1);
        s.request = "cancel";
        sim_step(&s, &out);
        rollout_output_done(&out);
        ck_assert_int_eq(s.d->state, DEP_CANCELLED);
        ck_assert_int_gt(s.d->finished_at, 0);
        /* Cancelled: no revert, web-1 stays on 2.0. */
        ck_assert_str_eq(s.v[0].version, "2.0");
        sim_done(&s);
}
END_TEST

START_TEST(test_progress_deadline) {
        struct sim s;

        sim_start(&s, 2, 1, 0, false);
        s.v[0].hold = true;
        s.d->strategy.progress_deadline_ms = 1000;
        s.d->strategy.auto_revert = false;
        sim_expect(&s, 30, DEP_FAILED, "progress_deadline", NULL);
        sim_done(&s);
}
END_TEST

START_TEST(test_lost_instance_skipped) {
        struct sim s;
        struct rollout_output out;

        sim_start(&s, 4, 2, 0, false);
        s.v[0].hold = true;
        sim_step(&s, &out); /* web-1 and web-2 start; web-1's agent is dead */
        rollout_output_done(&out);
        s.v[0].lost = true;
        sim_expect(&s, 500, DEP_SUCCEEDED, NULL, NULL);
        ck_assert(s.d->instances[0].lost);
        ck_assert_int_eq(s.d->instances[0].state, STEP_FAILED);
        ck_assert_msg(strstr(s.d->instances[0].error, "lost"), "%s", s.d->instances[0].error);
        for (size_t i = 1; i < s.n; i++)
                ck_assert_str_eq(s.v[i].version, "2.0");
        struct rollout_progress p;
        rollout_progress(s.d, &p);
        ck_assert_uint_eq(p.lost, 1);
        ck_assert_uint_eq(p.done, 3);
        ck_assert_uint_eq(p.failed, 0);
        sim_done(&s);
}
END_TEST

START_TEST(test_lost_blocks_max_parallel_1) {
        struct sim s;

        sim_start(&s, 3, 1, 0, false);
        s.v[2].lost = true;
        s.d->strategy.progress_deadline_ms = 2000;
        sim_expect(&s, 100, DEP_FAILED, "progress_deadline", NULL);
        ck_assert_int_eq(s.v[0].drains, 0);
        sim_done(&s);
}
END_TEST

START_TEST(test_revert_on_request) {
        struct sim s;
        struct rollout_output out;

        sim_start(&s, 3, 2, 0, true);
        sim_expect(&s, 500, DEP_SUCCEEDED, NULL, NULL);
        s.request = "revert";
        sim_step(&s, &out);
        ck_assert(out.request_consumed);
        rollout_output_done(&out);
        ck_assert_int_eq(s.d->state, DEP_REVERTING);
        sim_expect(&s, 500, DEP_REVERTED, NULL, NULL);
        for (size_t i = 0; i < s.n; i++) {
                ck_assert_str_eq(s.v[i].version, "1.0");
                ck_assert_int_eq(s.v[i].deploys, 2);
                ck_assert_int_eq(s.d->instances[i].state, STEP_REVERTED);
        }
        /* A revert never runs migrations. */
        ck_assert_int_eq(s.pre_runs, 1);
        ck_assert_int_eq(s.post_runs, 1);
        ck_assert_uint_le(s.max_unavailable, 2);
        sim_done(&s);
}
END_TEST

START_TEST(test_json_roundtrip) {
        struct sim s;
        struct rollout_output out;
        char err[256] = "";

        sim_start(&s, 3, 2, 1, true);
        s.v[1].hold = true;
        for (int i = 0; i < 8; i++) {
                sim_step(&s, &out);
                rollout_output_done(&out);
        }
        json_t *a = rollout_to_json(s.d, true);
        ck_assert_ptr_nonnull(a);
        struct rollout *back = NULL;
        ck_assert_msg(rollout_from_json(a, &back, err, sizeof err) == 0, "%s", err);
        json_t *b = rollout_to_json(back, true);
        ck_assert_msg(json_equal(a, b), "round trip differs");
        rollout_json_strip_internal(b);
        ck_assert_ptr_null(json_object_get(b, "_"));
        ck_assert_ptr_null(json_object_get(json_array_get(json_object_get(b, "instances"), 0), "_"));
        ck_assert_ptr_nonnull(json_object_get(b, "progress"));
        json_decref(a);
        json_decref(b);
        rollout_free(back);
        sim_done(&s);
}
END_TEST

static const struct {
        const char *json;
        const char *culprit;
} bad_strategies[] = {
        { "{\"max_parallel\":0}", "strategy.max_parallel" },
        { "{\"max_parallel\":\"2\"}", "strategy.max_parallel" },
        { "{\"canary\":-1}", "strategy.canary" },
        { "{\"min_healthy_time\":10}", "strategy.min_healthy_time" },
        { "{\"healthy_deadline\":\"0s\"}", "strategy.healthy_deadline" },
        { "{\"progress_deadline\":\"10 minutes\"}", "strategy.progress_deadline" },
        { "{\"drain_delay\":\"8d\"}", "strategy.drain_delay" },
        { "{\"auto_revert\":\"yes\"}", "strategy.auto_revert" },
        { "{\"maxParallel\":2}", "strategy.maxParallel: unknown field" },
        { "[1]", "strategy: expected an object" },
};

START_TEST(test_strategy_bad) {
        struct rollout_strategy st;
        char err[256] = "";
        json_t *j = json_loads(bad_strategies[_i].json, 0, NULL);

        ck_assert_ptr_nonnull(j);
        ck_assert_int_eq(rollout_strategy_from_json(j, &st, err, sizeof err), -EINVAL);
        ck_assert_msg(strstr(err, bad_strategies[_i].culprit), "'%s' does not name '%s'", err,
                      bad_strategies[_i].culprit);
        json_decref(j);
}
END_TEST

START_TEST(test_strategy_good) {
        struct rollout_strategy st;
        char err[256] = "";
        json_t *j = json_loads("{\"max_parallel\":3,\"min_healthy_time\":\"250ms\",\"drain_delay\":\"2s\","
                               "\"auto_revert\":false}", 0, NULL);

        ck_assert_int_eq(rollout_strategy_from_json(j, &st, err, sizeof err), 0);
        ck_assert_int_eq(st.max_parallel, 3);
        ck_assert_int_eq(st.canary, 0);
        ck_assert_int_eq(st.min_healthy_ms, 250);
        ck_assert_int_eq(st.drain_delay_ms, 2000);
        ck_assert_int_eq(st.healthy_deadline_ms, 300000);
        ck_assert_int_eq(st.progress_deadline_ms, 600000);
        ck_assert(!st.auto_revert);
        json_decref(j);
        ck_assert_int_eq(rollout_strategy_from_json(NULL, &st, err, sizeof err), 0);
        ck_assert_int_eq(st.min_healthy_ms, 10000);
        ck_assert(st.auto_revert);
}
END_TEST

START_TEST(test_state_tables) {
        for (int i = 0; i < _DEP_STATE_MAX; i++)
                ck_assert_int_eq(dep_state_from_string(dep_state_to_string((enum dep_state) i)), i);
        for (int i = 0; i < _STEP_STATE_MAX; i++)
                ck_assert_int_eq(step_state_from_string(step_state_to_string((enum step_state) i)), i);
        ck_assert_int_eq(dep_state_from_string("post-migrating"), DEP_POST_MIGRATING);
        ck_assert_int_eq(dep_state_from_string("done"), -EINVAL);
        ck_assert_ptr_null(dep_state_to_string(_DEP_STATE_MAX));
        ck_assert(dep_state_is_terminal(DEP_REVERTED));
        ck_assert(!dep_state_is_terminal(DEP_PAUSED));
}
END_TEST

START_TEST(test_no_instances) {
        struct sim s;

        sim_start(&s, 0, 1, 0, true);
        sim_expect(&s, 5, DEP_FAILED, "no running instances", NULL);
        sim_done(&s);
}
END_TEST

static void add_tests(TCase *tc) {
        tcase_add_loop_test(tc, test_rollout_succeeds, 0, 3);
        tcase_add_test(tc, test_rollout_unhealthy_reverts);
        tcase_add_test(tc, test_rollout_no_auto_revert);
        tcase_add_test(tc, test_rollout_hook_failure_reverts_exactly_changed);
        tcase_add_test(tc, test_rollout_pre_migration_fails);
        tcase_add_test(tc, test_rollout_post_migration_fails_no_revert);
        tcase_add_test(tc, test_rollout_canary);
        tcase_add_test(tc, test_rollout_skips_current);
        tcase_add_test(tc, test_availability_counts_unhealthy);
        tcase_add_test(tc, test_availability_waits);
        tcase_add_test(tc, test_no_resend);
        tcase_add_test(tc, test_dirty_instances);
        tcase_add_test(tc, test_pause_resume_cancel);
        tcase_add_test(tc, test_progress_deadline);
        tcase_add_test(tc, test_lost_instance_skipped);
        tcase_add_test(tc, test_lost_blocks_max_parallel_1);
        tcase_add_test(tc, test_revert_on_request);
        tcase_add_test(tc, test_json_roundtrip);
        tcase_add_loop_test(tc, test_strategy_bad, 0, (int) (sizeof bad_strategies / sizeof bad_strategies[0]));
        tcase_add_test(tc, test_strategy_good);
        tcase_add_test(tc, test_state_tables);
        tcase_add_test(tc, test_no_instances);
}

TEST_MAIN("rollout", add_tests)
