/* See rollout.h.  The rules are docs/deployments.md; the code follows it
 * section by section: requests, planning, the per-instance steps, the phases,
 * availability, revert, deadlines. */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"
#include "macro.h"
#include "rollout.h"
#include "strutil.h"

static const char *const dep_state_table[_DEP_STATE_MAX] = {
        [DEP_PENDING] = "pending",       [DEP_MIGRATING] = "migrating",
        [DEP_CANARY] = "canary",         [DEP_ROLLING] = "rolling",
        [DEP_POST_MIGRATING] = "post-migrating", [DEP_PAUSED] = "paused",
        [DEP_SUCCEEDED] = "succeeded",   [DEP_FAILED] = "failed",
        [DEP_REVERTING] = "reverting",   [DEP_REVERTED] = "reverted",
        [DEP_CANCELLED] = "cancelled",
};
DEFINE_STRING_TABLE_LOOKUP(dep_state, enum dep_state, _DEP_STATE_MAX)

static const char *const step_state_table[_STEP_STATE_MAX] = {
        [STEP_PENDING] = "pending",     [STEP_DRAINING] = "draining", [STEP_UPDATING] = "updating",
        [STEP_VERIFYING] = "verifying", [STEP_DONE] = "done",         [STEP_FAILED] = "failed",
        [STEP_REVERTED] = "reverted",
};
DEFINE_STRING_TABLE_LOOKUP(step_state, enum step_state, _STEP_STATE_MAX)

static const char *const mig_state_table[_MIG_STATE_MAX] = {
        [MIG_NONE] = "none", [MIG_RUNNING] = "running", [MIG_DONE] = "done", [MIG_FAILED] = "failed",
};
DEFINE_STRING_TABLE_LOOKUP(mig_state, enum mig_state, _MIG_STATE_MAX)

static const char *const revert_state_table[_RV_STATE_MAX] = {
        [RV_NONE] = "none",     [RV_WAIT] = "wait", [RV_PENDING] = "pending",
        [RV_ACTIVE] = "active", [RV_DONE] = "done", [RV_FAILED] = "failed",
};
DEFINE_STRING_TABLE_LOOKUP(revert_state, enum revert_state, _RV_STATE_MAX)

bool dep_state_is_terminal(enum dep_state s) {
        return s == DEP_SUCCEEDED || s == DEP_FAILED || s == DEP_REVERTED || s == DEP_CANCELLED;
}

void rollout_strategy_default(struct rollout_strategy *ret) {
        *ret = (struct rollout_strategy) {
                .max_parallel = 1,
                .canary = 0,
                .min_healthy_ms = 10 * 1000,
                .healthy_deadline_ms = 5 * 60 * 1000,
                .progress_deadline_ms = 10 * 60 * 1000,
                .drain_delay_ms = 0,
                .auto_revert = true,
        };
}

static void migration_clear(struct rollout_migration *m) {
        free(m->instance);
        free(m->cmd);
        free(m->error);
        free(m->output);
        *m = (struct rollout_migration) {};
}

struct rollout *rollout_free(struct rollout *d) {
        if (!d)
                return NULL;
        for (size_t i = 0; i < d->n_instances; i++) {
                struct rollout_instance *x = &d->instances[i];
                free(x->id);
                free(x->host);
                free(x->from);
                free(x->to);
                free(x->error);
                free(x->cmd);
        }
        free(d->instances);
        migration_clear(&d->pre);
        migration_clear(&d->post);
        free(d->id);
        free(d->service);
        free(d->version);
        free(d->previous_version);
        free(d->error);
        free(d->created_by);
        free(d);
        return NULL;
}

int rollout_new(const char *id, const char *service, const char *version, const struct rollout_strategy *st,
                bool migrate, const char *created_by, int64_t now_ms, struct rollout **ret) {
        _cleanup_(rollout_freep) struct rollout *d = calloc(1, sizeof *d);

        assert(id && service && version && st && ret);
        if (!d)
                return -ENOMEM;
        d->id = strdup(id);
        d->service = strdup(service);
        d->version = strdup(version);
        d->created_by = created_by ? strdup(created_by) : NULL;
        if (!d->id || !d->service || !d->version || (created_by && !d->created_by))
                return -ENOMEM;
        d->strategy = *st;
        d->migrate = migrate;
        d->state = d->phase = DEP_PENDING;
        d->created_at = d->updated_at = d->progress_at = now_ms;
        *ret = TAKE_PTR(d);
        return 0;
}

void rollout_output_done(struct rollout_output *o) {
        for (size_t i = 0; i < o->n_cmds; i++) {
                free(o->cmds[i].id);
                free(o->cmds[i].instance);
                free(o->cmds[i].host);
                free(o->cmds[i].version);
        }
        free(o->cmds);
        free(o->dirty);
        json_decref(o->events);
        *o = (struct rollout_output) {};
}

void rollout_progress(const struct rollout *d, struct rollout_progress *ret) {
        struct rollout_progress p = { .total = d->n_instances };

        for (size_t i = 0; i < d->n_instances; i++) {
                const struct rollout_instance *x = &d->instances[i];
                if (x->lost)
                        p.lost++;
                else if (x->state == STEP_FAILED)
                        p.failed++;
                if (x->state == STEP_DONE)
                        p.done++;
                else if (x->state == STEP_REVERTED)
                        p.reverted++;
        }
        *ret = p;
}

int rollout_awaited(const struct rollout *d, const char ***ret, size_t *ret_n) {
        const char **v = calloc(d->n_instances + 2, sizeof *v);
        size_t n = 0;

        if (!v)
                return -ENOMEM;
        if (d->pre.cmd && d->pre.state == MIG_RUNNING)
                v[n++] = d->pre.cmd;
        if (d->post.cmd && d->post.state == MIG_RUNNING)
                v[n++] = d->post.cmd;
        for (size_t i = 0; i < d->n_instances; i++)
                if (d->instances[i].cmd)
                        v[n++] = d->instances[i].cmd;
        *ret = v;
        *ret_n = n;
        return 0;
}

/* ---- the step context ---- */

struct ctx {
        struct rollout *d;
        const struct rollout_input *in;
        const struct rollout_fleet_entry **fleet; /* in->fleet sorted by id */
        struct rollout_output *out;
        int64_t now;
        int err; /* first -ENOMEM */
};

static int set_str(struct ctx *c, char **field, const char *v) {
        char *d = NULL;

        if (v) {
                d = strdup(v);
                if (!d) {
                        c->err = -ENOMEM;
                        return -ENOMEM;
                }
        }
        free(*field);
        *field = d;
        return 0;
}

static void set_errorf(struct ctx *c, char **field, const char *fmt, ...) _printf_(3, 4);
static void set_errorf(struct ctx *c, char **field, const char *fmt, ...) {
        char buf[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        (void) set_str(c, field, buf);
}

static void touch(struct ctx *c) {
        c->out->changed = true;
        c->d->updated_at = c->now;
}

json_t *rollout_progress_to_json(const struct rollout_progress *p) {
        return json_pack("{s:I,s:I,s:I,s:I,s:I}", "total", (json_int_t) p->total, "done", (json_int_t) p->done,
                         "failed", (json_int_t) p->failed, "lost", (json_int_t) p->lost, "reverted",
                         (json_int_t) p->reverted);
}

/* A new event of the given type with the common fields; NULL on OOM (noted). */
static json_t *event_new(struct ctx *c, const char *type) {
        struct rollout_progress p;
        char ts[40];
        json_t *e;

        rollout_progress(c->d, &p);
        format_rfc3339((uint64_t) c->now * USEC_PER_MSEC, ts, sizeof ts);
        e = json_pack("{s:s,s:s,s:o,s:s}", "type", type, "deployment", c->d->id, "progress",
                      rollout_progress_to_json(&p), "ts", ts);
        if (!e)
                c->err = -ENOMEM;
        return e;
}

static void event_emit(struct ctx *c, json_t *e) {
        if (!e)
                return;
        if (!c->out->events)
                c->out->events = json_array();
        if (!c->out->events || json_array_append_new(c->out->events, e) < 0)
                c->err = -ENOMEM;
        touch(c);
}

static void emit_state(struct ctx *c, enum dep_state previous, const char *message) {
        json_t *e = event_new(c, "state");

        if (!e)
                return;
        json_object_set_new(e, "state", json_string(dep_state_to_string(c->d->state)));
        json_object_set_new(e, "previous", json_string(dep_state_to_string(previous)));
        json_object_set_new(e, "message", message ? json_string(message) : json_null());
        json_object_set_new(e, "error", c->d->error ? json_string(c->d->error) : json_null());
        event_emit(c, e);
}

static void emit_instance(struct ctx *c, const struct rollout_instance *x, const struct rollout_result *r) {
        json_t *e = event_new(c, "instance");

        if (!e)
                return;
        json_object_set_new(e, "instance", json_string(x->id));
        json_object_set_new(e, "host", x->host ? json_string(x->host) : json_null());
        json_object_set_new(e, "state", json_string(step_state_to_string(x->state)));
        json_object_set_new(e, "from", x->from ? json_string(x->from) : json_null());
        json_object_set_new(e, "to", x->to ? json_string(x->to) : json_null());
        json_object_set_new(e, "error", x->error ? json_string(x->error) : json_null());
        json_object_set_new(e, "lost", json_boolean(x->lost));
        if (x->rv != RV_NONE)
                json_object_set_new(e, "revert", json_true());
        if (r) {
                /* The command that just finished (x->cmd_type outlives x->cmd). */
                json_object_set_new(e, "hook", json_string(command_type_to_string(x->cmd_type)));
                json_object_set_new(e, "exit_code", json_integer((json_int_t) r->exit_code));
                json_object_set_new(e, "output", json_string(r->output ? r->output : ""));
        }
        event_emit(c, e);
}

static void emit_migration(struct ctx *c, const char *phase, const struct rollout_migration *m) {
        json_t *e = event_new(c, "migration");

        if (!e)
                return;
        json_object_set_new(e, "phase", json_string(phase));
        json_object_set_new(e, "state", json_string(mig_state_to_string(m->state)));
        json_object_set_new(e, "instance", m->instance ? json_string(m->instance) : json_null());
        json_object_set_new(e, "exit_code", m->has_exit ? json_integer((json_int_t) m->exit_code) : json_null());
        json_object_set_new(e, "output", m->output ? json_string(m->output) : json_null());
        json_object_set_new(e, "error", m->error ? json_string(m->error) : json_null());
        event_emit(c, e);
}

static void set_state(struct ctx *c, enum dep_state s, const char *message) {
        enum dep_state prev = c->d->state;

        if (prev == s)
                return;
        c->d->state = s;
        if (s != DEP_PAUSED)
                c->d->phase = s;
        if (dep_state_is_terminal(s))
                c->d->finished_at = c->now;
        else
                c->d->finished_at = 0;
        emit_state(c, prev, message);
}

/* Queue a command; returns its id (owned by the output) or NULL on OOM. */
static const char *send_cmd(struct ctx *c, enum command_type type, const char *instance, const char *host,
                            const char *version, const char *phase) {
        struct rollout_output *o = c->out;
        struct rollout_cmd *nv = realloc(o->cmds, (o->n_cmds + 1) * sizeof *nv);
        struct rollout_cmd *k;

        if (!nv) {
                c->err = -ENOMEM;
                return NULL;
        }
        o->cmds = nv;
        k = &o->cmds[o->n_cmds];
        *k = (struct rollout_cmd) { .type = type, .phase = phase };
        k->id = strdup_printf("%s-%" PRIu64, c->d->id, ++c->d->next_cmd);
        k->instance = strdup(instance);
        k->host = host ? strdup(host) : NULL;
        k->version = version ? strdup(version) : NULL;
        o->n_cmds++;
        if (!k->id || !k->instance || (host && !k->host) || (version && !k->version)) {
                c->err = -ENOMEM;
                return NULL;
        }
        touch(c);
        return k->id;
}

/* ---- lookups ---- */

static int fleet_entry_cmp(const void *a, const void *b) {
        const struct rollout_fleet_entry *const *x = a, *const *y = b;
        return strcmp((*x)->id, (*y)->id);
}

static int fleet_key_cmp(const void *key, const void *elem) {
        const struct rollout_fleet_entry *const *e = elem;
        return strcmp(key, (*e)->id);
}

static const struct rollout_fleet_entry *fleet_find(const struct ctx *c, const char *id) {
        const struct rollout_fleet_entry **e;

        if (c->in->n_fleet == 0)
                return NULL;
        e = bsearch(id, c->fleet, c->in->n_fleet, sizeof *c->fleet, fleet_key_cmp);
        return e ? *e : NULL;
}

static const struct rollout_result *result_find(const struct ctx *c, const char *cmd) {
        for (size_t i = 0; cmd && i < c->in->n_results; i++)
                if (c->in->results[i].cmd && strcmp(c->in->results[i].cmd, cmd) == 0)
                        return &c->in->results[i];
        return NULL;
}

static bool streq(const char *a, const char *b) {
        return a && b && strcmp(a, b) == 0;
}

static bool entry_gone(const struct rollout_fleet_entry *e) {
        return !e || e->lost || streq(e->state, "lost");
}

/* Serving traffic right now, as the fleet sees it. */
static bool entry_available(const struct rollout_fleet_entry *e) {
        return !entry_gone(e) && streq(e->state, "healthy");
}

static bool instance_busy(const struct rollout_instance *x) {
        return x->cmd || x->rv == RV_ACTIVE || x->rv == RV_WAIT ||
               (x->rv == RV_NONE && (x->state == STEP_DRAINING || x->state == STEP_UPDATING ||
                                     x->state == STEP_VERIFYING));
}

static int instance_key_cmp(const void *key, const void *elem) {
        const struct rollout_instance *x = elem;
        return strcmp(key, x->id);
}

/* Instances are kept sorted by id (plan() makes them so; rollout_from_json checks). */
static struct rollout_instance *instance_find(struct rollout *d, const char *id) {
        if (d->n_instances == 0)
                return NULL;
        return bsearch(id, d->instances, d->n_instances, sizeof *d->instances, instance_key_cmp);
}

/* Instances of the service out of service now: in a step of this deployment,
 * or not healthy in the fleet (stopped ones are not part of the service). */
static size_t count_unavailable(const struct ctx *c) {
        size_t n = 0;

        for (size_t i = 0; i < c->in->n_fleet; i++) {
                const struct rollout_fleet_entry *e = c->fleet[i];
                struct rollout_instance *x = instance_find(c->d, e->id);

                if (streq(e->state, "stopped") && !(x && instance_busy(x)))
                        continue;
                if ((x && instance_busy(x)) || !entry_available(e))
                        n++;
        }
        return n;
}

static size_t count_busy(const struct rollout *d) {
        size_t n = 0;

        for (size_t i = 0; i < d->n_instances; i++)
                if (instance_busy(&d->instances[i]))
                        n++;
        return n;
}

/* ---- instance steps ---- */

static const char *target_of(const struct rollout_instance *x) {
        return x->rv == RV_ACTIVE ? x->from : x->to;
}

static const char *host_of(const struct ctx *c, const struct rollout_instance *x) {
        const struct rollout_fleet_entry *e = fleet_find(c, x->id);
        return e && e->host ? e->host : x->host;
}

static void instance_set(struct ctx *c, struct rollout_instance *x, enum step_state s,
                         const struct rollout_result *r) {
        x->state = s;
        x->updated_at = c->now;
        emit_instance(c, x, r);
}

static void send_step(struct ctx *c, struct rollout_instance *x, enum command_type type) {
        const char *id = send_cmd(c, type, x->id, host_of(c, x), type == COMMAND_DEPLOY ? target_of(x) : NULL, NULL);

        if (!id)
                return;
        (void) set_str(c, &x->cmd, id);
        x->cmd_type = type;
        if (type == COMMAND_DEPLOY && x->rv == RV_NONE)
                x->changed = true;
}

static void instance_fail(struct ctx *c, struct rollout_instance *x, const struct rollout_result *r) {
        if (x->rv == RV_ACTIVE)
                x->rv = RV_FAILED;
        instance_set(c, x, STEP_FAILED, r);
}

static void instance_lost(struct ctx *c, struct rollout_instance *x) {
        const char *step = step_state_to_string(x->state);

        set_errorf(c, &x->error, "lost (no heartbeat from its agent) while %s; skipped", step);
        x->lost = true;
        x->cmd = mfree(x->cmd);
        if (x->rv == RV_ACTIVE || x->rv == RV_WAIT || x->rv == RV_PENDING)
                x->rv = RV_FAILED;
        instance_set(c, x, STEP_FAILED, NULL);
}

/* Start the steps of x towards its target. */
static void instance_start(struct ctx *c, struct rollout_instance *x) {
        x->started_at = c->now;
        x->healthy_since = 0;
        x->error = mfree(x->error);
        if (x->rv == RV_ACTIVE && !x->changed) {
                /* Only drained by this deployment: bring it back. */
                send_step(c, x, COMMAND_UNDRAIN);
                instance_set(c, x, STEP_VERIFYING, NULL);
                return;
        }
        if (x->drained) {
                x->wait_until = c->now;
                instance_set(c, x, STEP_DRAINING, NULL);
                return;
        }
        send_step(c, x, COMMAND_DRAIN);
        instance_set(c, x, STEP_DRAINING, NULL);
}

static void hook_error(struct ctx *c, struct rollout_instance *x, const struct rollout_result *r) {
        const char *what = command_type_to_string(x->cmd_type);

        if (r->exit_code >= 0)
                set_errorf(c, &x->error, "%s hook failed (exit %" PRId64 "): %s", what, r->exit_code,
                           r->error && *r->error ? r->error : "no reason given");
        else
                set_errorf(c, &x->error, "%s hook failed: %s", what,
                           r->error && *r->error ? r->error : "no reason given");
}

/* A finished command of x: update what it tells.  true when x may go on in
 * this same pass. */
static bool instance_take_result(struct ctx *c, struct rollout_instance *x, const struct rollout_result *r) {
        enum command_type type = x->cmd_type;

        x->cmd = mfree(x->cmd);
        touch(c);
        if (type == COMMAND_DRAIN)
                x->drained = true; /* the agent marks it draining before the hook runs */
        if (!r->ok) {
                hook_error(c, x, r);
                instance_fail(c, x, r);
                return false;
        }
        switch (type) {
        case COMMAND_DRAIN:
                x->wait_until = c->now + c->d->strategy.drain_delay_ms;
                emit_instance(c, x, r);
                break;
        case COMMAND_DEPLOY:
                x->deadline = c->now + c->d->strategy.healthy_deadline_ms;
                x->healthy_since = 0;
                instance_set(c, x, STEP_VERIFYING, r);
                break;
        case COMMAND_UNDRAIN:
                x->drained = false;
                c->d->progress_at = c->now;
                if (x->rv == RV_ACTIVE) {
                        x->rv = RV_DONE;
                        instance_set(c, x, STEP_REVERTED, r);
                } else
                        instance_set(c, x, STEP_DONE, r);
                return false;
        default:
                break;
        }
        return true;
}

static void verify(struct ctx *c, struct rollout_instance *x) {
        const struct rollout_fleet_entry *e = fleet_find(c, x->id);
        bool ok = e && !entry_gone(e) && streq(e->version, target_of(x)) && streq(e->health, "healthy");
        char dl[DURATION_MAX];

        if (ok) {
                if (x->healthy_since == 0) {
                        x->healthy_since = c->now;
                        touch(c);
                }
                if (c->now - x->healthy_since >= c->d->strategy.min_healthy_ms)
                        send_step(c, x, COMMAND_UNDRAIN);
                return;
        }
        if (x->healthy_since != 0) {
                x->healthy_since = 0;
                touch(c);
        }
        if (c->now >= x->deadline) {
                duration_format((uint64_t) c->d->strategy.healthy_deadline_ms * USEC_PER_MSEC, dl, sizeof dl);
                set_errorf(c, &x->error, "not healthy on %s within healthy_deadline %s (last seen: %s, health %s, version %s)",
                           target_of(x), dl, e ? e->state : "gone", e && e->health ? e->health : "unknown",
                           e && e->version ? e->version : "unknown");
                instance_fail(c, x, NULL);
        }
}

/* Drive one instance that is in flight. results_only: await the running
 * command but start nothing new (a revert is about to take over). */
static void instance_drive(struct ctx *c, struct rollout_instance *x, bool results_only) {
        if (entry_gone(fleet_find(c, x->id))) {
                instance_lost(c, x);
                return;
        }
        if (x->cmd) {
                const struct rollout_result *r = result_find(c, x->cmd);
                if (!r || !r->finished)
                        return;
                if (!instance_take_result(c, x, r))
                        return;
        }
        if (results_only)
                return;
        switch (x->state) {
        case STEP_DRAINING:
                if (x->drained && c->now >= x->wait_until) {
                        send_step(c, x, COMMAND_DEPLOY);
                        instance_set(c, x, STEP_UPDATING, NULL);
                }
                break;
        case STEP_VERIFYING:
                verify(c, x);
                break;
        default:
                break;
        }
}

/* ---- planning ---- */

static void plan(struct ctx *c) {
        struct rollout *d = c->d;
        _cleanup_free_ const struct rollout_fleet_entry **v = calloc(c->in->n_fleet + 1, sizeof *v);
        size_t n = 0, canaries = 0, best = 0;
        enum dep_state next;
        char msg[256];

        if (!v) {
                c->err = -ENOMEM;
                return;
        }
        for (size_t i = 0; i < c->in->n_fleet; i++)
                if (!streq(c->fleet[i]->state, "stopped"))
                        v[n++] = c->fleet[i];
        if (n == 0) {
                set_errorf(c, &d->error, "service %s has no running instances", d->service);
                set_state(c, DEP_FAILED, "nothing to deploy");
                return;
        }
        d->instances = calloc(n, sizeof *d->instances);
        if (!d->instances) {
                c->err = -ENOMEM;
                return;
        }
        /* previous_version: the version most instances run. */
        for (size_t i = 0; i < n; i++) {
                size_t k = 0, kb = 0;
                for (size_t j = 0; j < n; j++) {
                        k += streq(v[i]->version, v[j]->version);
                        kb += streq(v[best]->version, v[j]->version);
                }
                if (k > kb)
                        best = i;
        }
        (void) set_str(c, &d->previous_version, v[best]->version);
        for (size_t i = 0; i < n; i++) {
                struct rollout_instance *x = &d->instances[d->n_instances++];
                x->id = strdup(v[i]->id);
                x->host = v[i]->host ? strdup(v[i]->host) : NULL;
                x->from = strdup(v[i]->version ? v[i]->version : "");
                x->to = strdup(d->version);
                if (!x->id || !x->from || !x->to) {
                        c->err = -ENOMEM;
                        return;
                }
                x->updated_at = c->now;
                if (entry_gone(v[i])) {
                        x->lost = true;
                        x->state = STEP_FAILED;
                        set_errorf(c, &x->error, "lost (no heartbeat from its agent) when the deployment started; skipped");
                } else if (streq(v[i]->version, d->version) && entry_available(v[i])) {
                        x->skipped = true;
                        x->state = STEP_DONE;
                } else if (canaries < (size_t) d->strategy.canary) {
                        x->canary = true;
                        canaries++;
                }
        }
        d->planned = true;
        d->progress_at = c->now;
        next = d->migrate ? DEP_MIGRATING : canaries > 0 ? DEP_CANARY : DEP_ROLLING;
        snprintf(msg, sizeof msg, "%zu instance%s of %s, %s -> %s", n, n == 1 ? "" : "s", d->service,
                 d->previous_version ? d->previous_version : "?", d->version);
        set_state(c, next, msg);
}

/* ---- failure, revert, completion ---- */

static bool needs_revert(const struct rollout_instance *x) {
        return !x->lost && (x->changed || x->drained);
}

static void start_revert(struct ctx *c, const char *why) {
        struct rollout *d = c->d;
        size_t n = 0;
        char msg[512];

        for (size_t i = 0; i < d->n_instances; i++) {
                struct rollout_instance *x = &d->instances[i];
                if (x->lost)
                        x->rv = RV_NONE;
                else if (x->cmd)
                        x->rv = RV_WAIT;
                else
                        x->rv = needs_revert(x) ? RV_PENDING : RV_NONE;
                n += x->rv != RV_NONE;
        }
        d->progress_at = c->now;
        snprintf(msg, sizeof msg, "reverting %zu instance%s: %s", n, n == 1 ? "" : "s", why);
        set_state(c, DEP_REVERTING, msg);
}

/* An instance failed, a deadline passed: revert or fail. */
static void deployment_fail(struct ctx *c, const char *fmt, ...) _printf_(2, 3);
static void deployment_fail(struct ctx *c, const char *fmt, ...) {
        struct rollout *d = c->d;
        char why[768];
        bool any = false;
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(why, sizeof why, fmt, ap);
        va_end(ap);
        if (!d->error)
                (void) set_str(c, &d->error, why);
        for (size_t i = 0; i < d->n_instances; i++)
                any = any || needs_revert(&d->instances[i]) || (d->instances[i].cmd && !d->instances[i].lost);
        if (d->strategy.auto_revert && any && d->phase != DEP_MIGRATING && d->phase != DEP_POST_MIGRATING)
                start_revert(c, why);
        else
                set_state(c, DEP_FAILED, why);
}

/* Start the instances want() picks, in order, while the budget allows:
 * at most max_parallel in a step, and never more than max_parallel of the
 * service out of service (an instance already out of service is free). */
static void start_within_budget(struct ctx *c, bool (*want)(const struct ctx *c, const struct rollout_instance *x),
                                void (*start)(struct ctx *c, struct rollout_instance *x)) {
        struct rollout *d = c->d;
        size_t busy = count_busy(d), unavailable = count_unavailable(c);
        size_t max = (size_t) d->strategy.max_parallel;

        for (size_t i = 0; i < d->n_instances; i++) {
                struct rollout_instance *x = &d->instances[i];
                const struct rollout_fleet_entry *e;
                if (!want(c, x))
                        continue;
                e = fleet_find(c, x->id);
                if (entry_gone(e)) {
                        instance_lost(c, x);
                        continue;
                }
                if (busy >= max)
                        break;
                if (entry_available(e) && unavailable >= max)
                        continue;
                if (entry_available(e))
                        unavailable++;
                busy++;
                start(c, x);
        }
}

static bool want_revert(const struct ctx *c, const struct rollout_instance *x) {
        return x->rv == RV_PENDING;
}

static void start_revert_of(struct ctx *c, struct rollout_instance *x) {
        x->rv = RV_ACTIVE;
        instance_start(c, x);
}

static bool want_forward(const struct ctx *c, const struct rollout_instance *x) {
        return x->state == STEP_PENDING && (c->d->phase != DEP_CANARY || x->canary);
}

static void revert_pass(struct ctx *c, bool paused) {
        struct rollout *d = c->d;
        bool left = false, failed = false;

        for (size_t i = 0; i < d->n_instances; i++) {
                struct rollout_instance *x = &d->instances[i];
                if (x->rv == RV_WAIT) {
                        instance_drive(c, x, true);
                        if (!x->cmd && x->rv == RV_WAIT)
                                x->rv = needs_revert(x) ? RV_PENDING : RV_NONE;
                } else if (x->rv == RV_ACTIVE)
                        instance_drive(c, x, false);
        }
        if (!paused)
                start_within_budget(c, want_revert, start_revert_of);
        for (size_t i = 0; i < d->n_instances; i++) {
                const struct rollout_instance *x = &d->instances[i];
                left = left || x->rv == RV_WAIT || x->rv == RV_PENDING || x->rv == RV_ACTIVE;
                failed = failed || (x->rv == RV_FAILED && !x->lost);
        }
        if (left || paused)
                return;
        if (failed) {
                char why[1024];
                const char *first = NULL;
                for (size_t i = 0; i < d->n_instances && !first; i++)
                        if (d->instances[i].rv == RV_FAILED && !d->instances[i].lost)
                                first = d->instances[i].id;
                snprintf(why, sizeof why, "%s; revert failed on %s", d->error ? d->error : "failed",
                         first ? first : "?");
                (void) set_str(c, &d->error, why);
                set_state(c, DEP_FAILED, "the revert failed");
        } else
                set_state(c, DEP_REVERTED, "every changed instance is back on its previous version");
}

/* ---- migrations ---- */

/* The healthy instance to run a migration on (of version when not NULL). */
static const struct rollout_fleet_entry *pick_migrator(const struct ctx *c, const char *version) {
        const struct rollout_fleet_entry *best = NULL;

        for (size_t i = 0; i < c->in->n_fleet && !best; i++) {
                const struct rollout_fleet_entry *e = c->fleet[i];
                if (entry_available(e) && (!version || streq(e->version, version)))
                        best = e;
        }
        return best;
}

/* Drive one migration step; true when it is done. */
static bool migration_drive(struct ctx *c, struct rollout_migration *m, const char *phase, const char *version,
                            bool paused) {
        const struct rollout_result *r;

        if (m->state == MIG_DONE)
                return true;
        if (m->state == MIG_NONE) {
                if (paused)
                        return false;
                const struct rollout_fleet_entry *e = pick_migrator(c, version);
                const char *id;
                if (!e)
                        return false; /* wait for a healthy instance; the progress deadline bounds it */
                id = send_cmd(c, COMMAND_MIGRATE, e->id, e->host, c->d->version, phase);
                if (!id)
                        return false;
                (void) set_str(c, &m->cmd, id);
                (void) set_str(c, &m->instance, e->id);
                m->state = MIG_RUNNING;
                emit_migration(c, phase, m);
                return false;
        }
        if (m->state != MIG_RUNNING)
                return false;
        if (entry_gone(fleet_find(c, m->instance))) {
                m->state = MIG_FAILED;
                set_errorf(c, &m->error, "instance %s was lost while it ran the migration", m->instance);
                emit_migration(c, phase, m);
                return false;
        }
        r = result_find(c, m->cmd);
        if (!r || !r->finished)
                return false;
        m->exit_code = r->exit_code;
        m->has_exit = true;
        (void) set_str(c, &m->output, r->output);
        if (r->ok) {
                m->state = MIG_DONE;
                c->d->progress_at = c->now;
        } else {
                m->state = MIG_FAILED;
                set_errorf(c, &m->error, "%s", r->error && *r->error ? r->error : "the migrate hook failed");
        }
        emit_migration(c, phase, m);
        return m->state == MIG_DONE;
}

/* ---- the forward phases ---- */

static void forward_pass(struct ctx *c, bool paused) {
        struct rollout *d = c->d;
        bool canary_phase = d->phase == DEP_CANARY;
        bool settled = true, canaries_settled = true;

        for (size_t i = 0; i < d->n_instances; i++) {
                struct rollout_instance *x = &d->instances[i];
                if (instance_busy(x))
                        instance_drive(c, x, false);
                if (x->state == STEP_FAILED && !x->lost) {
                        deployment_fail(c, "instance %s failed: %s", x->id, x->error ? x->error : "?");
                        return;
                }
        }
        if (!paused)
                start_within_budget(c, want_forward, instance_start);
        for (size_t i = 0; i < d->n_instances; i++) {
                const struct rollout_instance *x = &d->instances[i];
                bool open = x->state == STEP_PENDING || instance_busy(x);
                settled = settled && !open;
                if (x->canary)
                        canaries_settled = canaries_settled && !open;
        }
        if (paused)
                return;
        if (canary_phase && canaries_settled) {
                set_state(c, DEP_ROLLING, "the canaries are healthy");
                forward_pass(c, false);
        } else if (!canary_phase && settled) {
                if (d->migrate)
                        set_state(c, DEP_POST_MIGRATING, "every instance runs the new version");
                else
                        set_state(c, DEP_SUCCEEDED, "every instance runs the new version");
        }
}

static void phase_pass(struct ctx *c, bool paused) {
        struct rollout *d = c->d;

        switch (d->phase) {
        case DEP_MIGRATING:
                if (migration_drive(c, &d->pre, "pre", NULL, paused)) {
                        if (paused)
                                break;
                        bool canaries = false;
                        for (size_t i = 0; i < d->n_instances; i++)
                                canaries = canaries || d->instances[i].canary;
                        set_state(c, canaries ? DEP_CANARY : DEP_ROLLING, "pre-deploy migrations applied");
                        forward_pass(c, false);
                } else if (d->pre.state == MIG_FAILED) {
                        set_errorf(c, &d->error, "pre-deploy migration failed on %s: %s; no instance was changed",
                                   d->pre.instance ? d->pre.instance : "?", d->pre.error ? d->pre.error : "?");
                        set_state(c, DEP_FAILED, "pre-deploy migration failed");
                }
                break;
        case DEP_CANARY:
        case DEP_ROLLING:
                forward_pass(c, paused);
                break;
        case DEP_POST_MIGRATING:
                if (migration_drive(c, &d->post, "post", d->version, paused)) {
                        if (!paused)
                                set_state(c, DEP_SUCCEEDED, "post-deploy migrations applied");
                } else if (d->post.state == MIG_FAILED) {
                        set_errorf(c, &d->error,
                                   "post-deploy migration failed on %s: %s; instances stay on %s (not reverted: the "
                                   "schema is still expanded and valid for it)",
                                   d->post.instance ? d->post.instance : "?", d->post.error ? d->post.error : "?",
                                   d->version);
                        set_state(c, DEP_FAILED, "post-deploy migration failed");
                }
                break;
        case DEP_REVERTING:
                revert_pass(c, paused);
                break;
        default:
                break;
        }
}

static void check_progress_deadline(struct ctx *c) {
        struct rollout *d = c->d;
        char dl[DURATION_MAX];

        if (d->state == DEP_PAUSED || dep_state_is_terminal(d->state) || d->state == DEP_PENDING)
                return;
        if (c->now < d->progress_at + d->strategy.progress_deadline_ms)
                return;
        duration_format((uint64_t) d->strategy.progress_deadline_ms * USEC_PER_MSEC, dl, sizeof dl);
        if (d->state == DEP_REVERTING) {
                char why[1024];
                snprintf(why, sizeof why, "%s; the revert made no progress within progress_deadline %s",
                         d->error ? d->error : "failed", dl);
                (void) set_str(c, &d->error, why);
                set_state(c, DEP_FAILED, "the revert missed its progress deadline");
                return;
        }
        deployment_fail(c, "no progress within progress_deadline %s (in %s)", dl, dep_state_to_string(d->state));
}

/* ---- which instances a step changed ---- */

/* Everything stored of an instance, reduced to scalars and string hashes. */
struct fingerprint {
        uint64_t strings;
        int64_t times[5];
        int flags[9];
};

static uint64_t hash_str(uint64_t h, const char *s) {
        /* FNV-1a; NULL differs from "". */
        h ^= s ? 0x5bd1e995u : 0x2545f491u;
        h *= UINT64_C(1099511628211);
        for (; s && *s; s++) {
                h ^= (unsigned char) *s;
                h *= UINT64_C(1099511628211);
        }
        return h;
}

static void fingerprint(const struct rollout_instance *x, struct fingerprint *ret) {
        uint64_t h = UINT64_C(14695981039346656037);

        h = hash_str(h, x->cmd);
        h = hash_str(h, x->error);
        h = hash_str(h, x->host);
        h = hash_str(h, x->from);
        h = hash_str(h, x->to);
        *ret = (struct fingerprint) {
                .strings = h,
                .times = { x->started_at, x->updated_at, x->wait_until, x->deadline, x->healthy_since },
                .flags = { x->state, x->rv, x->cmd_type, x->lost, x->skipped, x->canary, x->drained, x->changed, 1 },
        };
}

static bool fingerprint_equal(const struct fingerprint *a, const struct fingerprint *b) {
        return a->strings == b->strings && memcmp(a->times, b->times, sizeof a->times) == 0 &&
               memcmp(a->flags, b->flags, sizeof a->flags) == 0;
}

/* ---- requests ---- */

static void handle_request(struct ctx *c, const char *req) {
        struct rollout *d = c->d;
        bool active = !dep_state_is_terminal(d->state);

        c->out->request_consumed = true;
        touch(c);
        if (streq(req, "pause")) {
                if (active && d->state != DEP_PAUSED)
                        set_state(c, DEP_PAUSED, "paused on request: steps in flight finish, nothing new starts");
        } else if (streq(req, "resume")) {
                if (d->state == DEP_PAUSED) {
                        d->progress_at = c->now;
                        set_state(c, d->phase, "resumed on request");
                }
        } else if (streq(req, "cancel")) {
                if (active)
                        set_state(c, DEP_CANCELLED, "cancelled on request; nothing is reverted");
        } else if (streq(req, "revert")) {
                if (d->state == DEP_SUCCEEDED || d->state == DEP_FAILED || d->state == DEP_CANCELLED)
                        start_revert(c, "revert requested");
        }
}

static int step(struct ctx *c);

int rollout_step(struct rollout *d, const struct rollout_input *in, struct rollout_output *out) {
        _cleanup_free_ const struct rollout_fleet_entry **fleet = calloc(in->n_fleet + 1, sizeof *fleet);
        _cleanup_free_ struct fingerprint *before = calloc(d->n_instances + 1, sizeof *before);
        struct ctx c = { .d = d, .in = in, .out = out, .now = in->now, .fleet = fleet };
        size_t n_before = d->n_instances;
        int r;

        assert(d && in && out);
        *out = (struct rollout_output) {};
        if (!fleet || !before)
                return -ENOMEM;
        for (size_t i = 0; i < n_before; i++)
                fingerprint(&d->instances[i], &before[i]);
        r = step(&c);
        if (r < 0 || !out->changed || d->n_instances == 0)
                return r;
        out->dirty = calloc(d->n_instances, sizeof *out->dirty);
        if (!out->dirty)
                return -ENOMEM;
        for (size_t i = 0; i < d->n_instances; i++) {
                struct fingerprint now;
                fingerprint(&d->instances[i], &now);
                out->dirty[i] = i >= n_before || !fingerprint_equal(&before[i], &now);
        }
        return 0;
}

static int step(struct ctx *c) {
        struct rollout *d = c->d;
        const struct rollout_input *in = c->in;
        const struct rollout_fleet_entry **fleet = (const struct rollout_fleet_entry **) c->fleet;

        for (size_t i = 0; i < in->n_fleet; i++)
                fleet[i] = &in->fleet[i];
        qsort(fleet, in->n_fleet, sizeof *fleet, fleet_entry_cmp);
        if (in->request)
                handle_request(c, in->request);
        if (dep_state_is_terminal(d->state))
                return c->err;
        if (d->state == DEP_PENDING)
                plan(c);
        if (!dep_state_is_terminal(d->state) && d->state != DEP_PENDING)
                phase_pass(c, d->state == DEP_PAUSED);
        if (!dep_state_is_terminal(d->state))
                check_progress_deadline(c);
        return c->err;
}
