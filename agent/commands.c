/* The durable command queue (keys.h, "Agent commands"; JSON in command.h).
 *
 * One command at a time: LMOVE the oldest from :commands to :inflight, run
 * it, write its result with a Lua script that sets the hash only when
 * "finished_at" is absent, publishes, and removes the command from
 * :inflight, all atomically.  A local record in state_dir makes this safe
 * across restarts and Redis outages:
 *   no record               -> not started yet: run it (unless Redis already has a result)
 *   {"state":"started"}     -> the agent died while it ran: report it failed, never rerun
 *   {"state":"finished",..} -> write the stored result (the script makes this idempotent)
 * On every (re)connect :inflight is examined first, oldest first. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "agent.h"
#include "cleanup.h"
#include "command.h"
#include "duration.h"
#include "keys.h"
#include "log.h"
#include "state.h"
#include "strutil.h"

/* KEYS[1] result hash, KEYS[2] inflight list; ARGV[1] raw command, ARGV[2] id,
 * ARGV[3] results channel, ARGV[4] expiry ms, ARGV[5..] field value pairs. */
static const char result_script[] =
        "local n = 0\n"
        "if redis.call('HEXISTS', KEYS[1], 'finished_at') == 0 then\n"
        "  redis.call('HSET', KEYS[1], unpack(ARGV, 5))\n"
        "  redis.call('PEXPIRE', KEYS[1], ARGV[4])\n"
        "  redis.call('PUBLISH', ARGV[3], ARGV[2])\n"
        "  n = 1\n"
        "end\n"
        "redis.call('LREM', KEYS[2], 1, ARGV[1])\n"
        "return n\n";

/* Results stay a week: long after anyone waits for them. */
#define RESULT_EXPIRE_MS "604800000"
#define POLL_USEC (5 * USEC_PER_SEC)

struct commands {
        agent *a;
        bool busy;            /* a command is between fetch and result written */
        bool check_inflight;  /* examine :inflight before taking new work */
        bool again;           /* a kick arrived while busy */
        char *raw;            /* the command as found in the list */
        struct command *cmd;
        char *cmd_id;         /* id even when the command did not parse */
        instance *in;
        hook *hook;
        uint64_t started_usec, started_ms;
        sd_event_source *poll_timer;
};

static void cmd_reset(struct commands *c) {
        free(c->raw);
        c->raw = NULL;
        c->cmd = command_free(c->cmd);
        free(c->cmd_id);
        c->cmd_id = NULL;
        if (c->in && c->in->config_waiter_data == c) {
                c->in->config_waiter = NULL;
                c->in->config_waiter_data = NULL;
        }
        c->in = NULL;
        c->hook = hook_free(c->hook);
        c->busy = false;
}

struct commands *commands_free(struct commands *c) {
        if (!c)
                return NULL;
        cmd_reset(c);
        c->poll_timer = sd_event_source_disable_unref(c->poll_timer);
        free(c);
        return NULL;
}

void commands_stop(struct commands *c) {
        if (!c)
                return;
        c->hook = hook_free(c->hook);
        c->poll_timer = sd_event_source_disable_unref(c->poll_timer);
}

bool commands_busy(struct commands *c) {
        return c && c->busy;
}

static bool connected(struct commands *c) {
        return c->a->redis && redis_client_is_connected(c->a->redis);
}

static const char *ns(struct commands *c) {
        return c->a->config->namespace;
}

static void next(struct commands *c) {
        cmd_reset(c);
        c->again = false;
        agent_reload_if_pending(c->a);
        commands_kick(c, false);
}

static void log_cmd(int level, struct commands *c, const char *fmt, ...) _printf_(3, 4);
static void log_cmd(int level, struct commands *c, const char *fmt, ...) {
        char fi[96], fc[96], msg[1024];
        const char *fields[] = { fi, fc, NULL };
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        snprintf(fi, sizeof fi, "COORD_INSTANCE=%s",
                 c->in ? c->in->id : (c->cmd && c->cmd->instance ? c->cmd->instance : ""));
        snprintf(fc, sizeof fc, "COORD_COMMAND=%s", c->cmd_id ? c->cmd_id : "");
        log_fields(level, fields, "%s", msg);
}

/* ---- writing the result ---- */

static void on_result_written(redis_client *rc, redisReply *reply, void *userdata) {
        struct commands *c = userdata;

        if (!reply) {
                /* Kept locally; the reconnect reconciles :inflight and writes it then. */
                log_cmd(LOG_WARNING, c, "Result of command %s not written yet: Redis disconnected", c->cmd_id);
                c->check_inflight = true;
                cmd_reset(c);
                return;
        }
        if (reply->type == REDIS_REPLY_ERROR) {
                log_cmd(LOG_ERR, c, "Failed to write the result of command %s: %s", c->cmd_id, reply->str);
                c->check_inflight = true;
                cmd_reset(c);
                return;
        }
        if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 0)
                log_cmd(LOG_INFO, c, "Command %s already had a result; not written again", c->cmd_id);
        (void) state_command_remove(c->a->config->state_dir, c->cmd_id);
        next(c);
}

static void write_result(struct commands *c, json_t *result) {
        _cleanup_free_ char *khash = key_command(ns(c), c->cmd_id);
        _cleanup_free_ char *kinflight = key_agent_inflight(ns(c), c->a->config->host);
        _cleanup_free_ char *kresults = key_command_results(ns(c));
        const char *argv[64];
        char buf[16][32];
        size_t n = 0, nb = 0;
        const char *k;
        json_t *v;
        int r;

        if (!khash || !kinflight || !kresults) {
                cmd_reset(c);
                return;
        }
        argv[n++] = "EVAL";
        argv[n++] = result_script;
        argv[n++] = "2";
        argv[n++] = khash;
        argv[n++] = kinflight;
        argv[n++] = c->raw;
        argv[n++] = c->cmd_id;
        argv[n++] = kresults;
        argv[n++] = RESULT_EXPIRE_MS;
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
        r = redis_client_commandargv(c->a->redis, on_result_written, c, (int) n, argv, NULL);
        if (r < 0) {
                c->check_inflight = true;
                cmd_reset(c);
        }
}

static json_t *make_result(struct commands *c, bool ok, int exit_code, uint64_t duration_usec, const char *output,
                           const char *error) {
        _cleanup_free_ char *masked_out = log_mask_secrets(output ? output : "");
        _cleanup_free_ char *masked_err = log_mask_secrets(error ? error : "");

        return json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:s, s:s}",
                         "state", ok ? "done" : "failed",
                         "type", c->cmd ? command_type_to_string(c->cmd->type) : "",
                         "instance", c->in ? c->in->id : (c->cmd && c->cmd->instance ? c->cmd->instance : ""),
                         "exit_code", (json_int_t) exit_code,
                         "duration_ms", (json_int_t) (duration_usec / USEC_PER_MSEC),
                         "started_at", (json_int_t) (c->started_ms ? c->started_ms : now_realtime_msec()),
                         "finished_at", (json_int_t) now_realtime_msec(),
                         "output", masked_out ? masked_out : "",
                         "error", masked_err ? masked_err : "");
}

static void finish(struct commands *c, bool ok, int exit_code, uint64_t duration_usec, const char *output,
                   const char *error) {
        _cleanup_json_ json_t *result = make_result(c, ok, exit_code, duration_usec, output, error);
        _cleanup_json_ json_t *record = NULL;
        int r;

        if (!result) {
                cmd_reset(c);
                return;
        }
        if (ok)
                log_cmd(LOG_INFO, c, "Command %s succeeded", c->cmd_id);
        else
                log_cmd(LOG_ERR, c, "Command %s failed: %s", c->cmd_id, error ? error : "?");
        record = json_pack("{s:s, s:O}", "state", "finished", "result", result);
        if (record) {
                r = state_command_put(c->a->config->state_dir, c->cmd_id, record);
                if (r < 0)
                        log_error_errno(r, "Failed to record the result of command %s locally: %m", c->cmd_id);
        }
        if (!connected(c)) {
                c->check_inflight = true;
                cmd_reset(c);
                return;
        }
        write_result(c, result);
}

/* ---- running ---- */

static void on_hook_done(hook *h, const struct hook_result *res, void *userdata) {
        struct commands *c = userdata;
        instance *in = c->in;
        bool ok = res->error == NULL;

        if (ok && c->cmd) {
                switch (c->cmd->type) {
                case COMMAND_UNDRAIN:
                        in->draining = false;
                        instance_state_changed(in);
                        break;
                case COMMAND_DEPLOY: {
                        char *v = strdup(c->cmd->version);
                        if (v) {
                                free(in->version);
                                in->version = v;
                        }
                        instance_save_state(in);
                        instance_restart_health(in);
                        registry_register(c->a, in, NULL);
                        break;
                }
                case COMMAND_RESTART:
                        instance_restart_health(in);
                        break;
                default:
                        break;
                }
        }
        finish(c, ok, res->exit_code, res->duration_usec, res->output, res->error);
}

static void run_hook(struct commands *c, const char *which, const char *command, const char *target) {
        char **env = instance_env(c->in, target, c->cmd->deployment);
        struct hook_spec spec = {
                .name = which,
                .command = command,
                .env = (const char *const *) env,
                .timeout_usec = c->in->cfg->hooks.timeout,
                .service = c->in->cfg->name,
                .instance = c->in->id,
                .output_level = LOG_INFO,
        };
        char name[48];
        int r;

        snprintf(name, sizeof name, "%s hook", which);
        spec.name = name;
        if (!env) {
                finish(c, false, -1, 0, "", "out of memory");
                return;
        }
        if (!command) {
                log_cmd(LOG_INFO, c, "No %s hook configured for %s: nothing to do", which, c->in->id);
                strv_free(env);
                /* Behave as a successful hook. */
                on_hook_done(NULL, &(struct hook_result) { .output = "" }, c);
                return;
        }
        log_cmd(LOG_INFO, c, "Running the %s hook for %s", which, c->in->id);
        r = hook_start(c->a->event, &spec, on_hook_done, c, &c->hook);
        strv_free(env);
        if (r < 0) {
                char err[128];
                snprintf(err, sizeof err, "cannot start the %s hook: %s", which, strerror(-r));
                finish(c, false, -1, 0, "", err);
        }
}

static void on_config_applied(instance *in, bool ok, const char *error, void *userdata) {
        struct commands *c = userdata;

        finish(c, ok, ok ? 0 : 1, now_usec() - c->started_usec, "", error);
}

static void execute(struct commands *c) {
        const struct agent_service_config *cfg;
        _cleanup_json_ json_t *record = NULL;
        _cleanup_free_ char *khash = NULL;
        char started[32];
        int r;

        c->started_usec = now_usec();
        c->started_ms = now_realtime_msec();
        if (c->cmd->instance)
                c->in = agent_find_instance(c->a, c->cmd->instance);
        else if (c->a->n_instances == 1)
                c->in = c->a->instances[0];
        if (!c->in) {
                char err[160];
                snprintf(err, sizeof err, "instance %s is not managed by this agent",
                         c->cmd->instance ? c->cmd->instance : "(none given, and this agent has several)");
                finish(c, false, -1, 0, "", err);
                return;
        }
        cfg = c->in->cfg;

        /* From here on a restart must not run it again. */
        record = json_pack("{s:s, s:I}", "state", "started", "started_at", (json_int_t) c->started_ms);
        r = record ? state_command_put(c->a->config->state_dir, c->cmd_id, record) : -ENOMEM;
        if (r < 0) {
                log_error_errno(r, "Failed to record command %s in state_dir: %m", c->cmd_id);
                finish(c, false, -1, 0, "", "the agent cannot write its state_dir");
                return;
        }
        khash = key_command(ns(c), c->cmd_id);
        snprintf(started, sizeof started, "%llu", (unsigned long long) c->started_ms);
        if (khash)
                (void) redis_client_command(c->a->redis, NULL, NULL,
                                            "HSET %s state running type %s instance %s started_at %s", khash,
                                            command_type_to_string(c->cmd->type), c->in->id, started);
        log_cmd(LOG_INFO, c, "Executing %s (command %s)", command_type_to_string(c->cmd->type), c->cmd_id);

        switch (c->cmd->type) {
        case COMMAND_DRAIN:
                c->in->draining = true;
                instance_state_changed(c->in);
                run_hook(c, "drain", cfg->hooks.drain, NULL);
                break;
        case COMMAND_UNDRAIN:
                run_hook(c, "undrain", cfg->hooks.undrain, NULL);
                break;
        case COMMAND_DEPLOY:
                run_hook(c, "deploy", cfg->hooks.deploy, c->cmd->version);
                break;
        case COMMAND_MIGRATE:
                run_hook(c, "migrate", cfg->hooks.migrate, c->cmd->version);
                break;
        case COMMAND_RESTART:
                run_hook(c, "restart", cfg->hooks.restart, NULL);
                break;
        case COMMAND_APPLY_CONFIG: {
                int64_t v;
                if (parse_int64(c->cmd->version, &v) < 0 || v < 1) {
                        finish(c, false, -1, 0, "", "apply-config: version must be a positive integer");
                        return;
                }
                c->in->config_waiter = on_config_applied;
                c->in->config_waiter_data = c;
                c->in->config_waiter_version = v;
                advertise_reconcile(c->in, true);
                break;
        }
        default:
                finish(c, false, -1, 0, "", "unknown command type");
        }
}

static void on_result_checked(redis_client *rc, redisReply *reply, void *userdata) {
        struct commands *c = userdata;

        if (!reply || reply->type == REDIS_REPLY_ERROR) {
                c->check_inflight = true;
                cmd_reset(c);
                return;
        }
        if (c->a->stopping) {
                cmd_reset(c);
                return;
        }
        if (reply->type == REDIS_REPLY_STRING) {
                /* Finished before (by another run): just drop it from :inflight. */
                _cleanup_free_ char *kinflight = key_agent_inflight(ns(c), c->a->config->host);
                log_cmd(LOG_INFO, c, "Command %s already has a result; skipping it", c->cmd_id);
                if (kinflight) {
                        const char *argv[] = { "LREM", kinflight, "1", c->raw };
                        (void) redis_client_commandargv(c->a->redis, NULL, NULL, 4, argv, NULL);
                }
                next(c);
                return;
        }
        execute(c);
}

static char *raw_id(const char *raw, size_t len) {
        _cleanup_json_ json_t *j = json_loadb(raw, len, 0, NULL);
        const char *id = json_string_value(json_object_get(j, "id"));

        return id && name_is_valid(id) ? strdup(id) : NULL;
}

static void process(struct commands *c, const char *raw, size_t len) {
        _cleanup_json_ json_t *local = NULL;
        char err[256] = "";
        int r;

        if (c->a->stopping) {
                /* Left in :inflight; the next start takes it from there. */
                cmd_reset(c);
                return;
        }

        c->raw = strndup(raw, len);
        if (!c->raw) {
                cmd_reset(c);
                return;
        }
        r = command_decode(raw, len, &c->cmd, err, sizeof err);
        c->cmd_id = c->cmd ? strdup(c->cmd->id) : raw_id(raw, len);
        if (r < 0) {
                log_error("Rejecting a malformed command: %s", err);
                if (c->cmd_id) {
                        finish(c, false, -1, 0, "", err);
                        return;
                }
                _cleanup_free_ char *kinflight = key_agent_inflight(ns(c), c->a->config->host);
                if (kinflight) {
                        const char *argv[] = { "LREM", kinflight, "1", c->raw };
                        (void) redis_client_commandargv(c->a->redis, NULL, NULL, 4, argv, NULL);
                }
                next(c);
                return;
        }
        if (!c->cmd_id) {
                cmd_reset(c);
                return;
        }
        if (c->cmd->instance)
                c->in = agent_find_instance(c->a, c->cmd->instance);

        r = state_command_get(c->a->config->state_dir, c->cmd_id, &local);
        if (r >= 0) {
                const char *st = json_string_value(json_object_get(local, "state"));
                json_t *res = json_object_get(local, "result");

                if (st && strcmp(st, "finished") == 0 && json_is_object(res)) {
                        log_cmd(LOG_INFO, c, "Writing the stored result of command %s", c->cmd_id);
                        write_result(c, res);
                        return;
                }
                c->started_ms = (uint64_t) json_integer_value(json_object_get(local, "started_at"));
                log_cmd(LOG_WARNING, c, "Command %s was interrupted by an agent restart; not running it again",
                        c->cmd_id);
                finish(c, false, -1, 0, "", "interrupted: the agent stopped while the command ran; not retried");
                return;
        }
        {
                _cleanup_free_ char *khash = key_command(ns(c), c->cmd_id);
                if (!khash || redis_client_command(c->a->redis, on_result_checked, c, "HGET %s finished_at", khash) < 0)
                        cmd_reset(c);
        }
}

static void on_popped(redis_client *rc, redisReply *reply, void *userdata) {
        struct commands *c = userdata;

        if (!reply || reply->type == REDIS_REPLY_ERROR) {
                if (reply)
                        log_error("Failed to take a command from the queue: %s", reply->str);
                c->check_inflight = true;
                cmd_reset(c);
                return;
        }
        if (reply->type != REDIS_REPLY_STRING) {
                /* Queue empty. */
                bool again = c->again;
                cmd_reset(c);
                c->again = false;
                if (again)
                        commands_kick(c, false);
                return;
        }
        process(c, reply->str, reply->len);
}

static void on_inflight(redis_client *rc, redisReply *reply, void *userdata) {
        struct commands *c = userdata;
        _cleanup_free_ char *kq = NULL, *ki = NULL;

        if (!reply || reply->type == REDIS_REPLY_ERROR) {
                cmd_reset(c);
                return;
        }
        if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 0) {
                /* Newest first: handle the oldest. */
                redisReply *e = reply->element[reply->elements - 1];
                if (e->type == REDIS_REPLY_STRING) {
                        process(c, e->str, e->len);
                        return;
                }
        }
        c->check_inflight = false;
        kq = key_agent_commands(ns(c), c->a->config->host);
        ki = key_agent_inflight(ns(c), c->a->config->host);
        if (!kq || !ki || redis_client_command(c->a->redis, on_popped, c, "LMOVE %s %s RIGHT LEFT", kq, ki) < 0)
                cmd_reset(c);
}

void commands_kick(struct commands *c, bool reconnected) {
        _cleanup_free_ char *kq = NULL, *ki = NULL;
        int r;

        if (!c)
                return;
        if (reconnected)
                c->check_inflight = true;
        if (c->busy) {
                c->again = true;
                return;
        }
        if (!connected(c) || c->a->stopping)
                return;
        c->busy = true;
        kq = key_agent_commands(ns(c), c->a->config->host);
        ki = key_agent_inflight(ns(c), c->a->config->host);
        if (!kq || !ki) {
                c->busy = false;
                return;
        }
        if (c->check_inflight)
                r = redis_client_command(c->a->redis, on_inflight, c, "LRANGE %s 0 -1", ki);
        else
                r = redis_client_command(c->a->redis, on_popped, c, "LMOVE %s %s RIGHT LEFT", kq, ki);
        if (r < 0)
                c->busy = false;
}

static int on_poll(sd_event_source *s, uint64_t usec, void *userdata) {
        struct commands *c = userdata;

        (void) sd_event_source_set_time(s, usec + POLL_USEC);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ON);
        /* Safety net for a lost wake-up message. */
        commands_kick(c, false);
        return 0;
}

int commands_new(agent *a, struct commands **ret) {
        struct commands *c;
        int r;

        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->a = a;
        c->check_inflight = true;
        r = sd_event_add_time_relative(a->event, &c->poll_timer, CLOCK_MONOTONIC, POLL_USEC, 0, on_poll, c);
        if (r < 0) {
                free(c);
                return r;
        }
        *ret = c;
        return 0;
}
