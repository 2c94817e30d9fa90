/* See reconciler.h. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "coordinatord.h"
#include "depstore.h"
#include "duration.h"
#include "fleet.h"
#include "jsonutil.h"
#include "keys.h"
#include "leader.h"
#include "log.h"
#include "metrics.h"
#include "parse-util.h"
#include "reconciler.h"
#include "redis_client.h"
#include "rollout.h"
#include "strutil.h"

#define RECONCILER_MIN_GAP_USEC (5 * 1000)

/* KEYS[1] leader lock, KEYS[2] fence, KEYS[3] record, KEYS[4] events stream,
 * KEYS[5] active set, KEYS[6] active:SERVICE, KEYS[7] migration:SERVICE,
 * KEYS[8] the record's instances hash, KEYS[9..] one agent queue per command.
 * ARGV[1] token, ARGV[2] term, ARGV[3] expected rev, ARGV[4] doc, ARGV[5] state,
 * ARGV[6] "1" when terminal, ARGV[7] deployment id, ARGV[8] events channel,
 * ARGV[9] the request carried out ("" when none), ARGV[10] number of events,
 * the events, the number of commands, per command (json, wake channel, id),
 * the number of migration record fields, the field/value pairs, the number of
 * changed instances, their id/JSON pairs. */
static const char commit_script[] =
        "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return redis.error_reply('FENCED not the leader') end\n"
        "if redis.call('GET', KEYS[2]) ~= ARGV[2] then return redis.error_reply('FENCED the term changed') end\n"
        "local rev = tonumber(redis.call('HGET', KEYS[3], 'rev') or '0')\n"
        "if rev ~= tonumber(ARGV[3]) then return redis.error_reply('STALE revision ' .. rev) end\n"
        "rev = rev + 1\n"
        "redis.call('HSET', KEYS[3], 'doc', ARGV[4], 'state', ARGV[5], 'rev', rev, 'term', ARGV[2])\n"
        "if ARGV[9] ~= '' and redis.call('HGET', KEYS[3], 'requested') == ARGV[9] then\n"
        "  redis.call('HDEL', KEYS[3], 'requested')\n"
        "end\n"
        "local i = 10\n"
        "local ne = tonumber(ARGV[i]); i = i + 1\n"
        "local seq = tonumber(redis.call('HGET', KEYS[3], 'seq') or '0')\n"
        "for k = 1, ne do\n"
        "  seq = seq + 1\n"
        "  redis.call('XADD', KEYS[4], '0-' .. seq, 'data', ARGV[i]); i = i + 1\n"
        "end\n"
        "if ne > 0 then redis.call('HSET', KEYS[3], 'seq', seq) end\n"
        "local nc = tonumber(ARGV[i]); i = i + 1\n"
        "for k = 1, nc do\n"
        "  redis.call('LPUSH', KEYS[8 + k], ARGV[i])\n"
        "  redis.call('PUBLISH', ARGV[i + 1], ARGV[i + 2])\n"
        "  i = i + 3\n"
        "end\n"
        "local nm = tonumber(ARGV[i]); i = i + 1\n"
        "if nm > 0 then\n"
        "  redis.call('DEL', KEYS[7])\n"
        "  redis.call('HSET', KEYS[7], unpack(ARGV, i, i + 2 * nm - 1))\n"
        "end\n"
        "i = i + 2 * nm\n"
        "local ni = tonumber(ARGV[i]); i = i + 1\n"
        "for k = 1, ni do\n"
        "  redis.call('HSET', KEYS[8], ARGV[i], ARGV[i + 1]); i = i + 2\n"
        "end\n"
        "if ARGV[6] == '1' then\n"
        "  redis.call('SREM', KEYS[5], ARGV[7])\n"
        "  if redis.call('GET', KEYS[6]) == ARGV[7] then redis.call('DEL', KEYS[6]) end\n"
        "end\n"
        "if ne > 0 then redis.call('PUBLISH', ARGV[8], ARGV[7] .. ' ' .. seq) end\n"
        "return rev\n";

struct fetched {
        char *cmd;
        bool finished, ok;
        int64_t exit_code;
        int64_t duration_ms;
        char *type, *error, *output;
};

struct rdep {
        char id[NAME_MAX_LEN + 1];
        struct rollout *d;       /* NULL until loaded */
        int64_t rev;
        bool loading, committing, in_set;
        char *request;           /* read this pass */
        struct fetched *res;
        size_t n_res, cap_res;
};

struct reconciler {
        struct server *s;
        sd_event_source *timer;
        char *k_active, *k_wake, *k_results, *k_events_channel;

        struct rdep **v;
        size_t n;
        uint64_t term;      /* the term the cache belongs to */
        uint64_t gen;       /* bumped when the cache is dropped */

        bool pass_in_flight, again;
        unsigned pending;
        uint64_t epoch;     /* of the pass in flight */
        int64_t now_ms;     /* Redis TIME of this pass */
        char **set;         /* SMEMBERS of this pass */
        size_t n_set;
        bool set_ok;
        uint64_t pass_start_usec, due_usec;

        pthread_mutex_t metrics_lock;
        size_t by_state[_DEP_STATE_MAX];
        atomic_uint_fast64_t lag_usec, passes, commits, commit_failures;
};

/* ---- cache ---- */

/* Frees what the n results of v own (not v itself). */
static void fetched_clear(struct fetched *v, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(v[i].cmd);
                free(v[i].type);
                free(v[i].error);
                free(v[i].output);
        }
}

static void rdep_clear_results(struct rdep *x) {
        fetched_clear(x->res, x->n_res);
        x->n_res = 0;
}

static void rdep_free(struct rdep *x) {
        if (!x)
                return;
        rdep_clear_results(x);
        free(x->res);
        free(x->request);
        rollout_free(x->d);
        free(x);
}

static struct rdep *rdep_find(struct reconciler *r, const char *id) {
        for (size_t i = 0; i < r->n; i++)
                if (strcmp(r->v[i]->id, id) == 0)
                        return r->v[i];
        return NULL;
}

static struct rdep *rdep_add(struct reconciler *r, const char *id) {
        struct rdep *x;
        struct rdep **nv;

        if (!name_is_valid(id))
                return NULL;
        nv = realloc(r->v, (r->n + 1) * sizeof *nv);
        if (!nv)
                return NULL;
        r->v = nv;
        x = calloc(1, sizeof *x);
        if (!x)
                return NULL;
        snprintf(x->id, sizeof x->id, "%s", id);
        r->v[r->n++] = x;
        return x;
}

static void rdep_remove(struct reconciler *r, struct rdep *x) {
        for (size_t i = 0; i < r->n; i++)
                if (r->v[i] == x) {
                        memmove(r->v + i, r->v + i + 1, (r->n - i - 1) * sizeof *r->v);
                        r->n--;
                        break;
                }
        rdep_free(x);
}

static void cache_drop(struct reconciler *r) {
        for (size_t i = 0; i < r->n; i++)
                rdep_free(r->v[i]);
        r->n = 0;
        r->gen++;
}

static void update_state_counts(struct reconciler *r) {
        size_t counts[_DEP_STATE_MAX] = {};

        for (size_t i = 0; i < r->n; i++)
                if (r->v[i]->d)
                        counts[r->v[i]->d->state]++;
        pthread_mutex_lock(&r->metrics_lock);
        memcpy(r->by_state, counts, sizeof counts);
        pthread_mutex_unlock(&r->metrics_lock);
}

/* ---- async ops ---- */

enum op_kind {
        OP_TIME,
        OP_MEMBERS,
        OP_LOAD,
        OP_REQUEST,
        OP_RESULT,
};

struct op {
        struct reconciler *r;
        uint64_t epoch;
        enum op_kind kind;
        char id[NAME_MAX_LEN + 1];
        char *cmd;
};

static void pass_finish(struct reconciler *r);
static void kick(struct reconciler *r);

static void op_free(struct op *o) {
        free(o->cmd);
        free(o);
}

static char *reply_str(redisReply *e) {
        return e && e->type == REDIS_REPLY_STRING ? strndup(e->str, e->len) : NULL;
}

static void take_time(struct reconciler *r, redisReply *reply) {
        uint64_t sec, usec;

        if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
            reply->element[0]->type == REDIS_REPLY_STRING && reply->element[1]->type == REDIS_REPLY_STRING &&
            parse_uint64(reply->element[0]->str, &sec) == 0 && parse_uint64(reply->element[1]->str, &usec) == 0)
                r->now_ms = (int64_t) (sec * 1000 + usec / 1000);
}

static void take_members(struct reconciler *r, redisReply *reply) {
        if (!reply || reply->type != REDIS_REPLY_ARRAY)
                return;
        r->set = calloc(reply->elements + 1, sizeof *r->set);
        if (!r->set)
                return;
        for (size_t i = 0; i < reply->elements; i++) {
                char *m = reply_str(reply->element[i]);
                if (m && name_is_valid(m))
                        r->set[r->n_set++] = m;
                else
                        free(m);
        }
        r->set_ok = true;
}

static void take_load(struct reconciler *r, struct rdep *x, redisReply *reply) {
        _cleanup_json_ json_t *j = NULL;
        struct rollout *d = NULL;
        char err[256];
        int64_t rev;
        int k;

        x->loading = false;
        if (!reply)
                return; /* the connection dropped: the next pass loads it */
        k = depstore_parse_read(reply, &j, &rev, NULL);
        if (k < 0) {
                if (k != -ENOENT)
                        log_error("Deployment %s: unreadable record (%s)", x->id, strerror(-k));
                return;
        }
        if (rollout_from_json(j, &d, err, sizeof err) < 0) {
                log_error("Deployment %s: invalid record: %s", x->id, err);
                return;
        }
        rollout_free(x->d);
        x->d = d;
        x->rev = rev;
        log_debug("Deployment %s loaded (revision %" PRId64 ", %s)", x->id, rev, dep_state_to_string(d->state));
}

static void take_result(struct rdep *x, const char *cmd, redisReply *reply) {
        struct fetched *f;
        _cleanup_free_ char *state = NULL, *finished = NULL, *exit_code = NULL, *duration = NULL;

        if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 7)
                return;
        if (x->n_res == x->cap_res) {
                size_t nc = x->cap_res ? x->cap_res * 2 : 8;
                struct fetched *nv = realloc(x->res, nc * sizeof *nv);
                if (!nv)
                        return;
                x->res = nv;
                x->cap_res = nc;
        }
        state = reply_str(reply->element[0]);
        finished = reply_str(reply->element[1]);
        exit_code = reply_str(reply->element[2]);
        duration = reply_str(reply->element[6]);
        f = &x->res[x->n_res];
        *f = (struct fetched) {};
        f->cmd = strdup(cmd);
        if (!f->cmd)
                return;
        f->finished = finished != NULL;
        f->ok = state && strcmp(state, "done") == 0;
        if (!exit_code || parse_int64(exit_code, &f->exit_code) < 0)
                f->exit_code = -1;
        if (!duration || parse_int64(duration, &f->duration_ms) < 0)
                f->duration_ms = 0;
        f->error = reply_str(reply->element[3]);
        f->output = reply_str(reply->element[4]);
        f->type = reply_str(reply->element[5]);
        x->n_res++;
}

static void on_reply(struct redis_client *c, redisReply *reply, void *userdata) {
        struct op *o = userdata;
        struct reconciler *r = o->r;
        struct rdep *x;

        if (o->epoch != r->epoch || !r->pass_in_flight) {
                op_free(o);
                return;
        }
        switch (o->kind) {
        case OP_TIME:
                take_time(r, reply);
                break;
        case OP_MEMBERS:
                take_members(r, reply);
                break;
        case OP_LOAD:
                if ((x = rdep_find(r, o->id)))
                        take_load(r, x, reply);
                break;
        case OP_REQUEST:
                if ((x = rdep_find(r, o->id))) {
                        free(x->request);
                        x->request = reply && reply->type == REDIS_REPLY_STRING ? strdup(reply->str) : NULL;
                }
                break;
        case OP_RESULT:
                if ((x = rdep_find(r, o->id)))
                        take_result(x, o->cmd, reply);
                break;
        }
        op_free(o);
        if (--r->pending == 0)
                pass_finish(r);
}

static int send_op(struct reconciler *r, enum op_kind kind, const char *id, const char *cmd, int argc,
                   const char **argv) {
        struct op *o = calloc(1, sizeof *o);
        int k;

        if (!o)
                return -ENOMEM;
        o->r = r;
        o->epoch = r->epoch;
        o->kind = kind;
        snprintf(o->id, sizeof o->id, "%s", id ? id : "");
        if (cmd && !(o->cmd = strdup(cmd))) {
                op_free(o);
                return -ENOMEM;
        }
        k = redis_client_commandargv(r->s->redis, on_reply, o, argc, argv, NULL);
        if (k < 0) {
                op_free(o);
                return k;
        }
        r->pending++;
        return 0;
}

/* ---- the commit ---- */

struct commit_op {
        struct reconciler *r;
        uint64_t gen;
        char id[NAME_MAX_LEN + 1];
        int64_t rev;
        bool terminal;
        enum dep_state state;
        struct fetched *res; /* results consumed: metrics once acknowledged */
        size_t n_res;
};

static void commit_op_free(struct commit_op *o) {
        fetched_clear(o->res, o->n_res);
        free(o->res);
        free(o);
}

static void on_commit(struct redis_client *c, redisReply *reply, void *userdata) {
        struct commit_op *o = userdata;
        struct reconciler *r = o->r;
        struct rdep *x = o->gen == r->gen ? rdep_find(r, o->id) : NULL;

        if (x)
                x->committing = false;
        if (!reply || reply->type != REDIS_REPLY_INTEGER) {
                atomic_fetch_add(&r->commit_failures, 1);
                if (reply && reply->type == REDIS_REPLY_ERROR)
                        log_warning("Deployment %s: step not written: %s", o->id, reply->str);
                else
                        log_warning("Deployment %s: step not acknowledged (Redis connection lost); reloading it",
                                    o->id);
                if (x)
                        rdep_remove(r, x);
                commit_op_free(o);
                return;
        }
        atomic_fetch_add(&r->commits, 1);
        for (size_t i = 0; i < o->n_res; i++)
                if (o->res[i].finished)
                        metrics_rollout_step(o->res[i].type, o->res[i].ok, (uint64_t) o->res[i].duration_ms);
        if (o->terminal)
                metrics_deployment_finished(dep_state_to_string(o->state));
        if (x) {
                x->rev = reply->integer;
                if (o->terminal)
                        rdep_remove(r, x);
        }
        update_state_counts(r);
        commit_op_free(o);
        /* Results that came in while this commit was in flight were not looked at. */
        kick(r);
}

/* argv under construction: pointers borrowed or owned (freed at the end). */
struct argv {
        const char **v;
        size_t n, cap;
        char **owned;
        size_t n_owned;
        int err;
};

static void argv_add(struct argv *a, const char *s) {
        if (a->err)
                return;
        if (!s) {
                a->err = -ENOMEM;
                return;
        }
        if (a->n == a->cap) {
                size_t nc = a->cap ? a->cap * 2 : 64;
                const char **nv = realloc(a->v, nc * sizeof *nv);
                if (!nv) {
                        a->err = -ENOMEM;
                        return;
                }
                a->v = nv;
                a->cap = nc;
        }
        a->v[a->n++] = s;
}

/* Add s, which argv takes over. */
static void argv_own(struct argv *a, char *s) {
        char **no;

        if (!s) {
                a->err = -ENOMEM;
                return;
        }
        no = realloc(a->owned, (a->n_owned + 1) * sizeof *no);
        if (!no) {
                free(s);
                a->err = -ENOMEM;
                return;
        }
        a->owned = no;
        a->owned[a->n_owned++] = s;
        argv_add(a, s);
}

static void argv_done(struct argv *a) {
        for (size_t i = 0; i < a->n_owned; i++)
                free(a->owned[i]);
        free(a->owned);
        free(a->v);
}

static void argv_int(struct argv *a, int64_t v) {
        argv_own(a, strdup_printf("%" PRId64, v));
}

/* KEYS and the fixed ARGV of commit_script. */
static void commit_head(struct reconciler *r, struct rdep *x, const struct leader_fence *fence,
                        const struct rollout_output *out, const char *consumed, json_t *doc, struct argv *a) {
        const char *ns = r->s->ns;
        const struct rollout *d = x->d;

        argv_add(a, "EVAL");
        argv_add(a, commit_script);
        argv_own(a, strdup_printf("%zu", 8 + out->n_cmds));
        argv_add(a, fence->lock_key);
        argv_add(a, fence->fence_key);
        argv_own(a, key_deployment(ns, d->id));
        argv_own(a, key_deployment_events(ns, d->id));
        argv_add(a, r->k_active);
        argv_own(a, key_active(ns, d->service));
        argv_own(a, key_migration(ns, d->service));
        argv_own(a, key_deployment_instances(ns, d->id));
        for (size_t i = 0; i < out->n_cmds; i++)
                argv_own(a, key_agent_commands(ns, out->cmds[i].host));
        argv_add(a, fence->token);
        argv_own(a, strdup_printf("%" PRIu64, fence->term));
        argv_int(a, x->rev);
        argv_own(a, json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER));
        argv_add(a, dep_state_to_string(d->state));
        argv_add(a, dep_state_is_terminal(d->state) ? "1" : "0");
        argv_add(a, d->id);
        argv_add(a, r->k_events_channel);
        argv_add(a, consumed ? consumed : "");
}

static void commit_events(const struct rollout_output *out, struct argv *a) {
        json_t *ev;
        size_t i;

        argv_int(a, (int64_t) json_array_size(out->events));
        json_array_foreach(out->events, i, ev)
                argv_own(a, json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER));
}

/* Per command: its JSON, the host's wake channel, its id. */
static void commit_commands(struct reconciler *r, const struct rollout *d, const struct rollout_output *out,
                            struct argv *a) {
        argv_int(a, (int64_t) out->n_cmds);
        for (size_t i = 0; i < out->n_cmds && !a->err; i++) {
                const struct rollout_cmd *c = &out->cmds[i];
                _cleanup_(command_freep) struct command *cmd = NULL;

                if (command_new(c->type, c->instance, c->version, d->id, &cmd) < 0 ||
                    command_set_id(cmd, c->id) < 0 || (c->phase && command_set_phase(cmd, c->phase) < 0)) {
                        a->err = -ENOMEM;
                        return;
                }
                argv_own(a, command_encode(cmd));
                argv_own(a, key_agent_wake(r->s->ns, c->host));
                argv_add(a, c->id);
        }
}

/* The service's migration record, when this step sends a migrate command
 * (at most one per step). */
static void commit_migration(struct reconciler *r, const struct rollout *d, const struct rollout_output *out,
                             struct argv *a) {
        const struct rollout_cmd *c = NULL;

        for (size_t i = 0; i < out->n_cmds; i++)
                if (out->cmds[i].type == COMMAND_MIGRATE)
                        c = &out->cmds[i];
        if (!c) {
                argv_int(a, 0);
                return;
        }
        /* field, value; then requested_at */
        const char *const fields[] = {
                "command", c->id, "host", c->host, "service", d->service, "version", d->version,
                "phase", c->phase ? c->phase : "all", "instance", c->instance, "deployment", d->id,
        };

        argv_int(a, 8);
        for (size_t i = 0; i < ELEMENTSOF(fields); i++)
                argv_add(a, fields[i]);
        argv_add(a, "requested_at");
        argv_int(a, r->now_ms);
}

/* The instances the step changed: id, JSON. */
static void commit_instances(const struct rollout *d, const struct rollout_output *out, struct argv *a) {
        size_t n = 0;

        for (size_t i = 0; out->dirty && i < d->n_instances; i++)
                n += out->dirty[i];
        argv_int(a, (int64_t) n);
        for (size_t i = 0; n > 0 && i < d->n_instances; i++) {
                _cleanup_json_ json_t *xj = NULL;
                if (!out->dirty[i])
                        continue;
                xj = rollout_instance_to_json(&d->instances[i], true);
                argv_add(a, d->instances[i].id);
                argv_own(a, xj ? json_dumps(xj, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL);
        }
}

static int commit(struct reconciler *r, struct rdep *x, const struct leader_fence *fence,
                  struct rollout_output *out, const char *consumed) {
        const struct rollout *d = x->d;
        _cleanup_json_ json_t *doc = rollout_header_to_json(d, true);
        struct argv a = {};
        struct commit_op *o;
        int k;

        if (!doc)
                return -ENOMEM;
        for (size_t i = 0; i < out->n_cmds; i++)
                if (!out->cmds[i].host || !name_is_valid(out->cmds[i].host)) {
                        log_error("Deployment %s: instance %s has no valid host; cannot send %s", d->id,
                                  out->cmds[i].instance, command_type_to_string(out->cmds[i].type));
                        return -EINVAL;
                }
        commit_head(r, x, fence, out, consumed, doc, &a);
        commit_events(out, &a);
        commit_commands(r, d, out, &a);
        commit_migration(r, d, out, &a);
        commit_instances(d, out, &a);
        o = a.err ? NULL : calloc(1, sizeof *o);
        if (!o) {
                k = a.err ? a.err : -ENOMEM;
                argv_done(&a);
                return k;
        }
        o->r = r;
        o->gen = r->gen;
        snprintf(o->id, sizeof o->id, "%s", d->id);
        o->terminal = dep_state_is_terminal(d->state);
        o->state = d->state;
        /* Results handed in this pass: the step consumed the finished ones. */
        o->res = x->res;
        o->n_res = x->n_res;
        x->res = NULL;
        x->n_res = x->cap_res = 0;
        k = redis_client_commandargv(r->s->redis, on_commit, o, (int) a.n, a.v, NULL);
        argv_done(&a);
        if (k < 0) {
                commit_op_free(o);
                return k;
        }
        x->committing = true;
        return 0;
}

/* ---- a pass ---- */

static int build_fleet(struct reconciler *r, const struct fleet_snapshot *snap, const char *service,
                       struct rollout_fleet_entry **ret, size_t *ret_n) {
        struct rollout_fleet_entry *v = calloc(snap->n + 1, sizeof *v);
        size_t n = 0;

        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < snap->n; i++) {
                const struct fleet_entry *e = &snap->entries[i];
                if (!e->info->service || strcmp(e->info->service, service) != 0)
                        continue;
                v[n++] = (struct rollout_fleet_entry) {
                        .id = e->info->id,
                        .host = e->info->host,
                        .version = e->info->version,
                        .state = fleet_entry_state(e),
                        .health = fleet_entry_health(e),
                        .lost = e->lost,
                };
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

static void step_one(struct reconciler *r, struct rdep *x, const struct fleet_snapshot *snap,
                     const struct leader_fence *fence) {
        _cleanup_free_ struct rollout_fleet_entry *fleet = NULL;
        _cleanup_free_ struct rollout_result *results = NULL;
        _cleanup_free_ char *consumed = NULL;
        struct rollout_output out = {};
        enum dep_state before = x->d->state;
        size_t nf = 0;
        int k;

        if (build_fleet(r, snap, x->d->service, &fleet, &nf) < 0)
                return;
        results = calloc(x->n_res + 1, sizeof *results);
        if (!results)
                return;
        for (size_t i = 0; i < x->n_res; i++)
                results[i] = (struct rollout_result) {
                        .cmd = x->res[i].cmd,
                        .finished = x->res[i].finished,
                        .ok = x->res[i].ok,
                        .exit_code = x->res[i].exit_code,
                        .error = x->res[i].error,
                        .output = x->res[i].output,
                };
        struct rollout_input in = {
                .fleet = fleet, .n_fleet = nf, .results = results, .n_results = x->n_res,
                .request = x->request, .now = r->now_ms,
        };
        k = rollout_step(x->d, &in, &out);
        if (k < 0) {
                log_error_errno(k, "Deployment %s: step failed: %m; reloading it", x->id);
                rollout_output_done(&out);
                rdep_remove(r, x);
                return;
        }
        if (!out.changed) {
                rollout_output_done(&out);
                return;
        }
        if (out.request_consumed && x->request)
                consumed = TAKE_PTR(x->request);
        if (before != x->d->state)
                log_info("Deployment %s (%s %s): %s -> %s%s%s", x->id, x->d->service, x->d->version,
                         dep_state_to_string(before), dep_state_to_string(x->d->state),
                         x->d->error && dep_state_is_terminal(x->d->state) ? ": " : "",
                         x->d->error && dep_state_is_terminal(x->d->state) ? x->d->error : "");
        k = commit(r, x, fence, &out, consumed);
        rollout_output_done(&out);
        if (k < 0) {
                log_warning("Deployment %s: cannot send the step (%s); reloading it", x->id, strerror(-k));
                rdep_remove(r, x);
        }
}

static void pass_finish(struct reconciler *r) {
        struct leader_fence fence;
        struct fleet_snapshot *snap;

        r->pass_in_flight = false;
        if (!leader_get_fence(r->s->leader, &fence) || fence.term != r->term || r->now_ms <= 0 || !r->set_ok)
                goto out;

        /* Follow the active set: new ones are loaded (by the next pass, at
         * once), finished ones forgotten. */
        for (size_t i = 0; i < r->n_set; i++) {
                struct rdep *x = rdep_find(r, r->set[i]);
                if (!x) {
                        x = rdep_add(r, r->set[i]);
                        r->again = true;
                }
                if (x)
                        x->in_set = true;
        }
        for (size_t i = r->n; i-- > 0;) {
                struct rdep *x = r->v[i];
                if (!x->in_set && !x->committing && !x->loading)
                        rdep_remove(r, x);
                else
                        x->in_set = false;
        }

        snap = fleet_snapshot_get(r->s->fleet);
        for (size_t i = 0; i < r->n; i++) {
                struct rdep *x = r->v[i];
                if (x->d && !x->committing && !x->loading)
                        step_one(r, x, snap, &fence);
                /* step_one may remove x: the array shifts. */
                if (i < r->n && r->v[i] != x)
                        i--;
        }
        fleet_snapshot_unref(snap);
        update_state_counts(r);
out:
        for (size_t i = 0; i < r->n_set; i++)
                free(r->set[i]);
        free(r->set);
        r->set = NULL;
        r->n_set = 0;
        atomic_fetch_add(&r->passes, 1);
        if (r->again) {
                r->again = false;
                (void) sd_event_source_set_time(r->timer, MAX(now_usec(), r->pass_start_usec + RECONCILER_MIN_GAP_USEC));
        }
}

/* The host an awaited command of d was sent to, so its result hash is
 * found: where the fleet has the instance now, else where the record has it
 * (the choice rollout.c made when it sent the command).  NULL when unknown. */
static const char *awaited_host(const struct rollout *d, const struct fleet_snapshot *snap, const char *cmd) {
        const char *id = NULL, *planned = NULL;
        const struct fleet_entry *e;

        if (d->pre.cmd && strcmp(d->pre.cmd, cmd) == 0)
                id = d->pre.instance;
        else if (d->post.cmd && strcmp(d->post.cmd, cmd) == 0)
                id = d->post.instance;
        for (size_t i = 0; i < d->n_instances; i++) {
                const struct rollout_instance *x = &d->instances[i];
                if (!id && x->cmd && strcmp(x->cmd, cmd) == 0)
                        id = x->id;
                if (id && strcmp(x->id, id) == 0) {
                        planned = x->host;
                        break;
                }
        }
        e = id ? fleet_snapshot_find(snap, id) : NULL;
        if (e && e->info->host && name_is_valid(e->info->host))
                return e->info->host;
        return planned && name_is_valid(planned) ? planned : NULL;
}

/* Read the result of every command x awaits (command_result_read_script). */
static void send_result_reads(struct reconciler *r, struct rdep *x, const struct fleet_snapshot *snap) {
        _cleanup_free_ const char **awaited = NULL;
        size_t na = 0;

        if (rollout_awaited(x->d, &awaited, &na) < 0)
                return;
        for (size_t k = 0; k < na; k++) {
                const char *host = awaited_host(x->d, snap, awaited[k]);
                _cleanup_free_ char *kl = key_command_legacy(r->s->ns, awaited[k]);
                _cleanup_free_ char *kc = host ? key_agent_result(r->s->ns, host, awaited[k]) : NULL;

                if (kl)
                        (void) send_op(r, OP_RESULT, x->id, awaited[k], 12,
                                       (const char *[]) { "EVAL", command_result_read_script, "2", kc ? kc : kl, kl,
                                                          "state", "finished_at", "exit_code", "error", "output",
                                                          "type", "duration_ms" });
        }
}

static void pass_start(struct reconciler *r) {
        struct leader_fence fence;
        struct server *s = r->s;
        struct fleet_snapshot *snap;

        if (!leader_get_fence(s->leader, &fence)) {
                if (r->n)
                        cache_drop(r);
                update_state_counts(r);
                return;
        }
        if (fence.term != r->term) {
                cache_drop(r);
                r->term = fence.term;
                log_info("Reconciling deployments as leader (term %" PRIu64 ")", fence.term);
        }
        if (!fleet_is_synced(s->fleet) || !redis_client_is_connected(s->redis))
                return;

        r->epoch++;
        r->pass_in_flight = true;
        r->pending = 1; /* held while sending */
        r->now_ms = 0;
        r->set_ok = false;
        r->pass_start_usec = now_usec();

        (void) send_op(r, OP_TIME, NULL, NULL, 1, (const char *[]) { "TIME" });
        (void) send_op(r, OP_MEMBERS, NULL, NULL, 2, (const char *[]) { "SMEMBERS", r->k_active });
        snap = fleet_snapshot_get(s->fleet);
        for (size_t i = 0; i < r->n; i++) {
                struct rdep *x = r->v[i];
                _cleanup_free_ char *kd = key_deployment(s->ns, x->id), *ki = key_deployment_instances(s->ns, x->id);
                if (!kd || !ki || x->committing)
                        continue;
                if (!x->d) {
                        if (!x->loading && send_op(r, OP_LOAD, x->id, NULL, 5,
                                                   (const char *[]) { "EVAL", depstore_read_script, "2", kd,
                                                                      ki }) == 0)
                                x->loading = true;
                        continue;
                }
                rdep_clear_results(x);
                (void) send_op(r, OP_REQUEST, x->id, NULL, 3, (const char *[]) { "HGET", kd, "requested" });
                send_result_reads(r, x, snap);
        }
        fleet_snapshot_unref(snap);
        if (--r->pending == 0)
                pass_finish(r);
}

static int on_tick(sd_event_source *es, uint64_t usec, void *userdata) {
        struct reconciler *r = userdata;
        uint64_t now = now_usec();

        if (r->due_usec && now > r->due_usec)
                atomic_store(&r->lag_usec, now - r->due_usec);
        r->due_usec = now + RECONCILER_TICK_USEC;
        (void) sd_event_source_set_time(es, r->due_usec);
        if (r->pass_in_flight) {
                r->again = true;
                return 0;
        }
        pass_start(r);
        return 0;
}

/* Something happened that a deployment may wait for: pass now. */
static void kick(struct reconciler *r) {
        if (!leader_is_leader(r->s->leader))
                return;
        if (r->pass_in_flight) {
                r->again = true;
                return;
        }
        /* Back-to-back events (a fleet of 1,000 changing) coalesce into one pass per gap. */
        r->due_usec = 0;
        (void) sd_event_source_set_time(r->timer, MAX(now_usec(), r->pass_start_usec + RECONCILER_MIN_GAP_USEC));
}

static void on_message(struct redis_client *c, const char *channel, const char *data, size_t len, void *userdata) {
        kick(userdata);
}

/* The fleet changed (a health, a version, a lost instance): a verifying
 * instance may be done, a waiting one may start. */
static void on_fleet_change(void *userdata) {
        struct reconciler *r = userdata;

        if (r->n > 0)
                kick(r);
}

void reconciler_on_redis(struct reconciler *r, bool connected) {
        /* Replies of the old connection never come: the pass is over. */
        r->pass_in_flight = false;
        r->again = false;
        for (size_t i = 0; i < r->n; i++)
                r->v[i]->committing = r->v[i]->loading = false;
        /* A commit may or may not have landed: reload everything. */
        cache_drop(r);
        if (connected)
                kick(r);
}

void reconciler_write_metrics(struct reconciler *r, FILE *out) {
        size_t counts[_DEP_STATE_MAX];

        if (!r)
                return;
        pthread_mutex_lock(&r->metrics_lock);
        memcpy(counts, r->by_state, sizeof counts);
        pthread_mutex_unlock(&r->metrics_lock);
        fprintf(out, "# HELP coordinatord_deployments Deployments driven by this leader, by state.\n"
                     "# TYPE coordinatord_deployments gauge\n");
        for (int i = 0; i < _DEP_STATE_MAX; i++)
                if (!dep_state_is_terminal((enum dep_state) i))
                        fprintf(out, "coordinatord_deployments{state=\"%s\"} %zu\n",
                                dep_state_to_string((enum dep_state) i), counts[i]);
        fprintf(out,
                "# HELP coordinatord_reconciler_lag_seconds How late the last reconcile tick ran.\n"
                "# TYPE coordinatord_reconciler_lag_seconds gauge\n"
                "coordinatord_reconciler_lag_seconds %.6f\n"
                "# HELP coordinatord_reconciler_passes_total Reconcile passes.\n"
                "# TYPE coordinatord_reconciler_passes_total counter\n"
                "coordinatord_reconciler_passes_total %" PRIuFAST64 "\n"
                "# HELP coordinatord_reconciler_commits_total Deployment steps written.\n"
                "# TYPE coordinatord_reconciler_commits_total counter\n"
                "coordinatord_reconciler_commits_total %" PRIuFAST64 "\n"
                "# HELP coordinatord_reconciler_commit_failures_total Steps refused (fenced, stale) or unacknowledged.\n"
                "# TYPE coordinatord_reconciler_commit_failures_total counter\n"
                "coordinatord_reconciler_commit_failures_total %" PRIuFAST64 "\n",
                (double) atomic_load(&r->lag_usec) / 1e6, atomic_load(&r->passes), atomic_load(&r->commits),
                atomic_load(&r->commit_failures));
}

int reconciler_new(struct server *s, struct reconciler **ret) {
        struct reconciler *r = calloc(1, sizeof *r);
        int k;

        if (!r)
                return -ENOMEM;
        r->s = s;
        pthread_mutex_init(&r->metrics_lock, NULL);
        r->k_active = key_deployments_active(s->ns);
        r->k_wake = key_deployment_wake(s->ns);
        r->k_results = key_command_results(s->ns);
        r->k_events_channel = key_deployment_events_channel(s->ns);
        if (!r->k_active || !r->k_wake || !r->k_results || !r->k_events_channel) {
                reconciler_free(r);
                return -ENOMEM;
        }
        /* Accuracy 1 ms: 0 would mean sd-event's default of 250 ms. */
        k = sd_event_add_time(s->event, &r->timer, CLOCK_MONOTONIC, now_usec() + RECONCILER_TICK_USEC, USEC_PER_MSEC,
                              on_tick, r);
        if (k < 0) {
                reconciler_free(r);
                return k;
        }
        (void) sd_event_source_set_enabled(r->timer, SD_EVENT_ON);
        fleet_set_on_change(s->fleet, on_fleet_change, r);
        if (s->redis) {
                /* Command results and instance changes move deployments on; so do new ones and requests. */
                if ((k = redis_client_subscribe(s->redis, r->k_results, on_message, r)) < 0 ||
                    (k = redis_client_subscribe(s->redis, r->k_wake, on_message, r)) < 0) {
                        reconciler_free(r);
                        return k;
                }
        }
        *ret = r;
        return 0;
}

struct reconciler *reconciler_free(struct reconciler *r) {
        if (!r)
                return NULL;
        sd_event_source_disable_unref(r->timer);
        cache_drop(r);
        free(r->v);
        for (size_t i = 0; i < r->n_set; i++)
                free(r->set[i]);
        free(r->set);
        free(r->k_active);
        free(r->k_wake);
        free(r->k_results);
        free(r->k_events_channel);
        pthread_mutex_destroy(&r->metrics_lock);
        free(r);
        return NULL;
}
