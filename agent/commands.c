/* The durable command queue (keys.h, "Agent commands"; JSON in command.h).
 *
 * Commands are taken with LMOVE from :commands to :inflight, oldest first.
 * Each instance runs one command at a time, in queue order; different
 * instances run in parallel (a long deploy of one service never holds up a
 * drain of another).  A result is written with a Lua script that sets the
 * hash only when "finished_at" is absent, publishes, and removes the command
 * from :inflight, all atomically.  A local record in state_dir makes this
 * safe across restarts and Redis outages:
 *   no record               -> not started yet: run it (unless Redis already has a result)
 *   {"state":"started"}     -> the agent died while it ran: report it failed, never rerun
 *   {"state":"finished",..} -> write the stored result (the script makes this idempotent)
 * On every (re)connect :inflight is examined first, oldest first.  After an
 * error reply (an ACL refusal, say) the queue is looked at again at the next
 * poll, not at once, so a misconfigured agent does not spin. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "agent.h"
#include "command.h"
#include "duration.h"
#include "jsonutil.h"
#include "keys.h"
#include "log.h"
#include "parse-util.h"
#include "state.h"
#include "strutil.h"
#include "strv.h"

/* Results are written by lib/command.h's command_result_script and stay a week. */
#define POLL_USEC (5 * USEC_PER_SEC)
/* Commands held at once (running or waiting for their instance). */
#define RUNS_MAX 64

struct run {
        struct commands *c;
        struct run *next;
        uint64_t seq;         /* queue order */
        char *raw;            /* the command as found in the list (LREM needs it) */
        struct command *cmd;
        char *cmd_id;         /* id even when the command did not parse */
        struct instance *in;         /* while executing (reloads wait for all runs) */
        char *target;         /* instance id it runs on, once resolved */
        bool waiting;         /* parked until its instance is free */
        bool executing;
        struct hook *hook;
        uint64_t started_usec, started_ms;
};

struct commands {
        struct agent *a;
        struct run *runs;
        unsigned n_runs;
        uint64_t seq;
        bool fetching;        /* an LRANGE or LMOVE is in flight */
        bool check_inflight;  /* examine :inflight before taking new work */
        bool again;           /* a kick arrived while fetching */
        bool held;            /* Redis refused something (an ACL, say): no retry before
                               * the poll timer or a reconnect, rather than a hot loop */
        sd_event_source *poll_timer;
};

static void execute(struct run *r);

static bool connected(struct commands *c) {
        return c->a->redis && redis_client_is_connected(c->a->redis);
}

static const char *ns(struct commands *c) {
        return c->a->config->namespace;
}

static void log_run(int level, struct run *r, const char *fmt, ...) _printf_(3, 4);
static void log_run(int level, struct run *r, const char *fmt, ...) {
        char fi[96], fc[96], msg[1024];
        const char *fields[] = { fi, fc, NULL };
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        snprintf(fi, sizeof fi, "COORD_INSTANCE=%s",
                 r->target ? r->target : (r->cmd && r->cmd->instance ? r->cmd->instance : ""));
        snprintf(fc, sizeof fc, "COORD_COMMAND=%s", r->cmd_id ? r->cmd_id : "");
        log_fields(level, fields, "%s", msg);
}

static struct run *run_new(struct commands *c, const char *raw, size_t len) {
        struct run *r = calloc(1, sizeof *r);

        if (!r)
                return NULL;
        r->raw = strndup(raw, len);
        if (!r->raw) {
                free(r);
                return NULL;
        }
        r->c = c;
        r->seq = ++c->seq;
        r->next = c->runs;
        c->runs = r;
        c->n_runs++;
        return r;
}

static void run_free(struct run *r) {
        struct commands *c = r->c;

        for (struct run **p = &c->runs; *p; p = &(*p)->next)
                if (*p == r) {
                        *p = r->next;
                        c->n_runs--;
                        break;
                }
        if (r->in && r->in->config_waiter_data == r) {
                r->in->config_waiter = NULL;
                r->in->config_waiter_data = NULL;
        }
        hook_free(r->hook);
        command_free(r->cmd);
        free(r->cmd_id);
        free(r->target);
        free(r->raw);
        free(r);
}

/* The run is over (result written, or left for the next reconcile): start
 * the next command waiting for the same instance, and look for more work. */
static void run_done(struct run *r) {
        struct commands *c = r->c;
        _cleanup_free_ char *target = r->target ? strdup(r->target) : NULL;
        bool was_executing = r->executing;
        struct run *next = NULL;

        run_free(r);
        if (target && was_executing) {
                for (struct run *w = c->runs; w; w = w->next)
                        if (w->waiting && strcmp(w->target, target) == 0 && (!next || w->seq < next->seq))
                                next = w;
                if (next && !c->a->stopping) {
                        next->waiting = false;
                        execute(next);
                }
        }
        agent_reload_if_pending(c->a);
        commands_kick(c, false);
}

/* The result hash: under this agent's host (keys.h), so an ACL user per host suffices. */
static char *result_key(struct run *r) {
        return key_agent_result(ns(r->c), r->c->a->config->host, r->cmd_id);
}

/* An error reply: look again at the next poll, not at once. */
static void hold(struct commands *c) {
        c->check_inflight = true;
        c->held = true;
}

static void lrem_raw(struct run *r) {
        _cleanup_free_ char *kinflight = key_agent_inflight(ns(r->c), r->c->a->config->host);

        if (kinflight) {
                const char *argv[] = { "LREM", kinflight, "1", r->raw };
                (void) redis_client_commandargv(r->c->a->redis, NULL, NULL, 4, argv, NULL);
        }
}

/* ---- writing the result ---- */

static void on_result_written(struct redis_client *rc, redisReply *reply, void *userdata) {
        struct run *r = userdata;

        if (!reply || reply->type == REDIS_REPLY_ERROR) {
                /* Kept locally; the next reconcile of :inflight writes it. */
                if (reply) {
                        log_run(LOG_ERR, r, "Failed to write the result of command %s: %s", r->cmd_id, reply->str);
                        hold(r->c);
                } else
                        log_run(LOG_WARNING, r, "Result of command %s not written yet: Redis disconnected", r->cmd_id);
                r->c->check_inflight = true;
                run_done(r);
                return;
        }
        if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 0)
                log_run(LOG_INFO, r, "Command %s already had a result; not written again", r->cmd_id);
        (void) state_command_remove(r->c->a->config->state_dir, r->cmd_id);
        run_done(r);
}

static void write_result(struct run *r, json_t *result) {
        struct commands *c = r->c;
        _cleanup_free_ char *khash = result_key(r);
        _cleanup_free_ char *kinflight = key_agent_inflight(ns(c), c->a->config->host);
        _cleanup_free_ char *kresults = key_command_results(ns(c));
        const char *argv[64];
        char buf[16][32];
        size_t n = 0, nb = 0;
        const char *k;
        json_t *v;

        if (!khash || !kinflight || !kresults) {
                run_done(r);
                return;
        }
        argv[n++] = "EVAL";
        argv[n++] = command_result_script;
        argv[n++] = "2";
        argv[n++] = khash;
        argv[n++] = kinflight;
        argv[n++] = r->raw;
        argv[n++] = r->cmd_id;
        argv[n++] = kresults;
        argv[n++] = COMMAND_RESULT_EXPIRE_MS;
        json_object_foreach(result, k, v) {
                if (n + 2 > ELEMENTSOF(argv) || nb >= ELEMENTSOF(buf))
                        break;
                argv[n++] = k;
                if (json_is_string(v))
                        argv[n++] = json_string_value(v);
                else if (json_is_integer(v)) {
                        snprintf(buf[nb], sizeof buf[nb], "%" JSON_INTEGER_FORMAT, json_integer_value(v));
                        argv[n++] = buf[nb++];
                } else
                        argv[n++] = "";
        }
        if (redis_client_commandargv(c->a->redis, on_result_written, r, (int) n, argv, NULL) < 0) {
                c->check_inflight = true;
                run_done(r);
        }
}

static json_t *make_result(struct run *r, bool ok, int exit_code, uint64_t duration_usec, const char *output,
                           const char *error) {
        _cleanup_free_ char *masked_out = log_mask_secrets(output ? output : "");
        _cleanup_free_ char *masked_err = log_mask_secrets(error ? error : "");

        return json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:s, s:s}",
                         "state", ok ? "done" : "failed",
                         "type", r->cmd ? command_type_to_string(r->cmd->type) : "",
                         "instance", r->target ? r->target : (r->cmd && r->cmd->instance ? r->cmd->instance : ""),
                         "exit_code", (json_int_t) exit_code,
                         "duration_ms", (json_int_t) (duration_usec / USEC_PER_MSEC),
                         "started_at", (json_int_t) (r->started_ms ? r->started_ms : now_realtime_msec()),
                         "finished_at", (json_int_t) now_realtime_msec(),
                         "output", masked_out ? masked_out : "",
                         "error", masked_err ? masked_err : "");
}

static void finish(struct run *r, bool ok, int exit_code, uint64_t duration_usec, const char *output,
                   const char *error) {
        _cleanup_json_ json_t *result = make_result(r, ok, exit_code, duration_usec, output, error);
        _cleanup_json_ json_t *record = NULL;
        int k;

        if (!result) {
                run_done(r);
                return;
        }
        if (ok)
                log_run(LOG_INFO, r, "Command %s succeeded", r->cmd_id);
        else
                log_run(LOG_ERR, r, "Command %s failed: %s", r->cmd_id, error ? error : "?");
        record = json_pack("{s:s, s:O}", "state", "finished", "result", result);
        if (record) {
                k = state_command_put(r->c->a->config->state_dir, r->cmd_id, record);
                if (k < 0)
                        log_error_errno(k, "Failed to record the result of command %s locally: %m", r->cmd_id);
        }
        if (!connected(r->c)) {
                r->c->check_inflight = true;
                run_done(r);
                return;
        }
        write_result(r, result);
}

/* ---- running ---- */

static void on_hook_done(struct hook *h, const struct hook_result *res, void *userdata) {
        struct run *r = userdata;
        struct instance *in = r->in;
        bool ok = res->error == NULL;

        if (ok) {
                switch (r->cmd->type) {
                case COMMAND_UNDRAIN:
                        in->draining = false;
                        instance_state_changed(in);
                        break;
                case COMMAND_DEPLOY: {
                        char *v = strdup(r->cmd->version);
                        if (v) {
                                free(in->version);
                                in->version = v;
                        }
                        instance_save_state(in);
                        instance_restart_health(in);
                        registry_register(r->c->a, in, NULL);
                        break;
                }
                case COMMAND_RESTART:
                        instance_restart_health(in);
                        break;
                default:
                        break;
                }
        }
        finish(r, ok, res->exit_code, res->duration_usec, res->output, res->error);
}

static void run_hook(struct run *r, const char *which, const char *command, const char *target) {
        struct instance *in = r->in;
        /* Every hook sees all five variables; without a target the target is what is installed. */
        const char *phase = r->cmd->type != COMMAND_MIGRATE ? NULL : r->cmd->phase ? r->cmd->phase : "all";
        char **env = instance_env(in, target ? target : in->version, r->cmd->deployment, phase);
        char name[48];
        struct hook_spec spec = {
                .name = name,
                .command = command,
                .env = (const char *const *) env,
                .timeout_usec = in->cfg->hooks.timeout,
                .service = in->cfg->name,
                .instance = in->id,
                .output_level = LOG_INFO,
        };
        int k;

        snprintf(name, sizeof name, "%s hook", which);
        if (!env) {
                finish(r, false, -1, 0, "", "out of memory");
                return;
        }
        if (!command) {
                log_run(LOG_INFO, r, "No %s hook configured for %s: nothing to do", which, in->id);
                strv_free(env);
                /* Behave as a successful hook. */
                on_hook_done(NULL, &(struct hook_result) { .output = "" }, r);
                return;
        }
        log_run(LOG_INFO, r, "Running the %s hook for %s", which, in->id);
        k = hook_start(r->c->a->event, &spec, on_hook_done, r, &r->hook);
        strv_free(env);
        if (k < 0) {
                char err[128];
                snprintf(err, sizeof err, "cannot start the %s hook: %s", which, strerror(-k));
                finish(r, false, -1, 0, "", err);
        }
}

static void on_config_applied(struct instance *in, bool ok, const char *error, void *userdata) {
        struct run *r = userdata;

        finish(r, ok, ok ? 0 : 1, now_usec() - r->started_usec, "", error);
}

static void execute(struct run *r) {
        struct commands *c = r->c;
        const struct agent_service_config *cfg;
        _cleanup_json_ json_t *record = NULL;
        _cleanup_free_ char *khash = NULL;
        char started[32];
        int k;

        r->executing = true;
        r->started_usec = now_usec();
        r->started_ms = now_realtime_msec();
        r->in = agent_find_instance(c->a, r->target);
        if (!r->in) {
                char err[160];
                snprintf(err, sizeof err, "instance %s is not managed by this agent", r->target);
                finish(r, false, -1, 0, "", err);
                return;
        }
        cfg = r->in->cfg;

        /* From here on a restart must not run it again. */
        record = json_pack("{s:s, s:I}", "state", "started", "started_at", (json_int_t) r->started_ms);
        k = record ? state_command_put(c->a->config->state_dir, r->cmd_id, record) : -ENOMEM;
        if (k < 0) {
                log_error_errno(k, "Failed to record command %s in state_dir: %m", r->cmd_id);
                finish(r, false, -1, 0, "", "the agent cannot write its state_dir");
                return;
        }
        khash = result_key(r);
        snprintf(started, sizeof started, "%llu", (unsigned long long) r->started_ms);
        if (khash)
                (void) redis_client_command(c->a->redis, NULL, NULL,
                                            "HSET %s state running type %s instance %s started_at %s", khash,
                                            command_type_to_string(r->cmd->type), r->in->id, started);
        log_run(LOG_INFO, r, "Executing %s (command %s)", command_type_to_string(r->cmd->type), r->cmd_id);

        switch (r->cmd->type) {
        case COMMAND_DRAIN:
                r->in->draining = true;
                instance_state_changed(r->in);
                run_hook(r, "drain", cfg->hooks.drain, NULL);
                break;
        case COMMAND_UNDRAIN:
                run_hook(r, "undrain", cfg->hooks.undrain, NULL);
                break;
        case COMMAND_DEPLOY:
                run_hook(r, "deploy", cfg->hooks.deploy, r->cmd->version);
                break;
        case COMMAND_MIGRATE:
                run_hook(r, "migrate", cfg->hooks.migrate, r->cmd->version);
                break;
        case COMMAND_RESTART:
                run_hook(r, "restart", cfg->hooks.restart, NULL);
                break;
        case COMMAND_APPLY_CONFIG: {
                int64_t v;
                if (parse_int64(r->cmd->version, &v) < 0 || v < 1) {
                        finish(r, false, -1, 0, "", "apply-config: version must be a positive integer");
                        return;
                }
                r->in->config_waiter = on_config_applied;
                r->in->config_waiter_data = r;
                r->in->config_waiter_version = v;
                advertise_reconcile(r->in, true);
                break;
        }
        default:
                finish(r, false, -1, 0, "", "unknown command type");
        }
}

/* Run now, or after the command ahead of it on the same instance. */
static void dispatch(struct run *r) {
        struct commands *c = r->c;
        const char *id = r->cmd->instance;

        if (!id && c->a->n_instances == 1)
                id = c->a->instances[0]->id;
        if (!id || !agent_find_instance(c->a, id)) {
                char err[160];
                snprintf(err, sizeof err, "instance %s is not managed by this agent",
                         id ? id : "(none given, and this agent has several)");
                finish(r, false, -1, 0, "", err);
                return;
        }
        r->target = strdup(id);
        if (!r->target) {
                run_done(r);
                return;
        }
        for (struct run *o = c->runs; o; o = o->next)
                if (o != r && o->executing && o->target && strcmp(o->target, r->target) == 0) {
                        r->waiting = true;
                        log_run(LOG_DEBUG, r, "Command %s waits for command %s on %s", r->cmd_id, o->cmd_id,
                                r->target);
                        return;
                }
        for (struct run *o = c->runs; o; o = o->next)
                if (o != r && o->waiting && o->seq < r->seq && strcmp(o->target, r->target) == 0) {
                        r->waiting = true;
                        return;
                }
        execute(r);
}

static void on_result_checked(struct redis_client *rc, redisReply *reply, void *userdata) {
        struct run *r = userdata;

        if (!reply || reply->type == REDIS_REPLY_ERROR || r->c->a->stopping) {
                if (reply && reply->type == REDIS_REPLY_ERROR) {
                        log_run(LOG_ERR, r, "Failed to look up the result of command %s: %s", r->cmd_id, reply->str);
                        hold(r->c);
                }
                r->c->check_inflight = true;
                run_done(r);
                return;
        }
        if (reply->type == REDIS_REPLY_STRING) {
                /* Finished before (by another run): just drop it from :inflight. */
                log_run(LOG_INFO, r, "Command %s already has a result; skipping it", r->cmd_id);
                lrem_raw(r);
                run_done(r);
                return;
        }
        dispatch(r);
}

static char *raw_id(const char *raw, size_t len) {
        _cleanup_json_ json_t *j = json_loadb(raw, len, 0, NULL);
        const char *id = json_string_value(json_object_get(j, "id"));

        return id && name_is_valid(id) ? strdup(id) : NULL;
}

static void process(struct run *r) {
        struct commands *c = r->c;
        _cleanup_json_ json_t *local = NULL;
        _cleanup_free_ char *khash = NULL;
        char err[256] = "";
        int k;

        if (c->a->stopping) {
                /* Left in :inflight; the next start takes it from there. */
                run_free(r);
                return;
        }
        k = command_decode(r->raw, strlen(r->raw), &r->cmd, err, sizeof err);
        r->cmd_id = r->cmd ? strdup(r->cmd->id) : raw_id(r->raw, strlen(r->raw));
        if (k < 0) {
                log_error("Rejecting a malformed command: %s", err);
                if (r->cmd_id) {
                        finish(r, false, -1, 0, "", err);
                        return;
                }
                lrem_raw(r);
                run_done(r);
                return;
        }
        if (!r->cmd_id) {
                run_done(r);
                return;
        }
        /* The same command delivered twice while the first copy runs. */
        for (struct run *o = c->runs; o; o = o->next)
                if (o != r && o->cmd_id && strcmp(o->cmd_id, r->cmd_id) == 0) {
                        log_run(LOG_INFO, r, "Command %s is already being handled; dropping a duplicate", r->cmd_id);
                        lrem_raw(r);
                        run_free(r);
                        return;
                }

        k = state_command_get(c->a->config->state_dir, r->cmd_id, &local);
        if (k >= 0) {
                const char *st = json_string_value(json_object_get(local, "state"));
                json_t *res = json_object_get(local, "result");

                if (st && strcmp(st, "finished") == 0 && json_is_object(res)) {
                        log_run(LOG_INFO, r, "Writing the stored result of command %s", r->cmd_id);
                        write_result(r, res);
                        return;
                }
                r->started_ms = (uint64_t) json_integer_value(json_object_get(local, "started_at"));
                log_run(LOG_WARNING, r, "Command %s was interrupted by an agent restart; not running it again",
                        r->cmd_id);
                finish(r, false, -1, 0, "", "interrupted: the agent stopped while the command ran; not retried");
                return;
        }
        khash = result_key(r);
        if (!khash || redis_client_command(c->a->redis, on_result_checked, r, "HGET %s finished_at", khash) < 0) {
                c->check_inflight = true;
                run_done(r);
        }
}

static bool raw_is_active(struct commands *c, const char *raw, size_t len) {
        for (struct run *o = c->runs; o; o = o->next)
                if (strlen(o->raw) == len && memcmp(o->raw, raw, len) == 0)
                        return true;
        return false;
}

static void fetch_done(struct commands *c) {
        bool again = c->again;

        c->fetching = false;
        c->again = false;
        if (again)
                commands_kick(c, false);
}

static void on_popped(struct redis_client *rc, redisReply *reply, void *userdata) {
        struct commands *c = userdata;
        struct run *r;

        c->fetching = false;
        if (!reply || reply->type == REDIS_REPLY_ERROR) {
                if (reply)
                        log_error("Failed to take a command from the queue: %s", reply->str);
                c->check_inflight = true;
                c->again = false;
                return;
        }
        if (reply->type != REDIS_REPLY_STRING) {
                /* Queue empty. */
                fetch_done(c);
                return;
        }
        r = run_new(c, reply->str, reply->len);
        if (r)
                process(r);
        else
                c->check_inflight = true;
        /* Take the next one. */
        c->again = false;
        commands_kick(c, false);
}

static void on_inflight(struct redis_client *rc, redisReply *reply, void *userdata) {
        struct commands *c = userdata;

        c->fetching = false;
        if (!reply || reply->type != REDIS_REPLY_ARRAY) {
                c->again = false;
                return;
        }
        c->check_inflight = false;
        /* Newest first: handle the oldest first. */
        for (size_t i = reply->elements; i > 0; i--) {
                redisReply *e = reply->element[i - 1];
                struct run *r;

                if (e->type != REDIS_REPLY_STRING || raw_is_active(c, e->str, e->len))
                        continue;
                if (c->n_runs >= RUNS_MAX || c->a->stopping)
                        break;
                r = run_new(c, e->str, e->len);
                if (!r)
                        break;
                process(r);
        }
        c->again = false;
        commands_kick(c, false);
}

void commands_kick(struct commands *c, bool reconnected) {
        _cleanup_free_ char *kq = NULL, *ki = NULL;
        int k;

        if (!c)
                return;
        if (reconnected) {
                c->check_inflight = true;
                c->held = false;
        }
        if (c->held)
                return;
        if (c->fetching) {
                c->again = true;
                return;
        }
        if (!connected(c) || c->a->stopping || c->n_runs >= RUNS_MAX)
                return;
        kq = key_agent_commands(ns(c), c->a->config->host);
        ki = key_agent_inflight(ns(c), c->a->config->host);
        if (!kq || !ki)
                return;
        c->fetching = true;
        if (c->check_inflight)
                k = redis_client_command(c->a->redis, on_inflight, c, "LRANGE %s 0 -1", ki);
        else
                k = redis_client_command(c->a->redis, on_popped, c, "LMOVE %s %s RIGHT LEFT", kq, ki);
        if (k < 0)
                c->fetching = false;
}

bool commands_busy(struct commands *c) {
        return c && c->runs;
}

void commands_stop(struct commands *c) {
        if (!c)
                return;
        for (struct run *r = c->runs; r; r = r->next)
                r->hook = hook_free(r->hook);
        c->poll_timer = sd_event_source_disable_unref(c->poll_timer);
}

struct commands *commands_free(struct commands *c) {
        if (!c)
                return NULL;
        while (c->runs)
                run_free(c->runs);
        c->poll_timer = sd_event_source_disable_unref(c->poll_timer);
        free(c);
        return NULL;
}

static int on_poll(sd_event_source *s, uint64_t usec, void *userdata) {
        struct commands *c = userdata;

        (void) sd_event_source_set_time(s, usec + POLL_USEC);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ON);
        /* Safety net for a lost wake-up message, for duplicates left in :inflight,
         * and the retry after an error reply. */
        c->held = false;
        if (!c->runs)
                c->check_inflight = true;
        commands_kick(c, false);
        return 0;
}

int commands_new(struct agent *a, struct commands **ret) {
        struct commands *c;
        int k;

        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->a = a;
        c->check_inflight = true;
        k = sd_event_add_time_relative(a->event, &c->poll_timer, CLOCK_MONOTONIC, POLL_USEC, 0, on_poll, c);
        if (k < 0) {
                free(c);
                return k;
        }
        *ret = c;
        return 0;
}
