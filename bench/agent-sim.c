/* agent-sim: N simulated coord-agents in one process, speaking exactly the
 * Redis protocol of the real agent (lib/keys.h "Fleet" and "Agent commands";
 * agent/registry.c, agent/commands.c), for bench/rollout.sh.
 *
 * Instance sim-K (K = first .. first+N-1) of SERVICE lives on host simhost-K,
 * so every instance has its own command queue, as with one agent per host.
 *
 *   registration / heartbeat  MULTI; HSET instance hash (all fields, as
 *                             registry.c); SET alive 1 PX ttl; ZADD instances;
 *                             [PUBLISH events]; EXEC.  Heartbeats are spread
 *                             evenly over the interval (real agents are not in
 *                             phase).  A state or health change (or a version
 *                             change, see below) writes at once, with the event.
 *   commands                  PSUBSCRIBE coord:{NS}:agent:*:wake (one
 *                             subscription instead of N); a wake for host H:
 *                             LMOVE :commands -> :inflight RIGHT LEFT until the
 *                             queue is empty; HGET :result:ID finished_at (a
 *                             finished command is only LREM'd); HSET state running
 *                             ...; run; the result written by the agent's own Lua
 *                             script (HSET unless finished_at exists, PEXPIRE,
 *                             PUBLISH command-results ID, LREM :inflight).  One
 *                             command at a time per instance, in queue order.  Every
 *                             5 s each idle host's queue is checked anyway (the
 *                             agent's safety net for a lost wake-up).
 *   simulated hooks           every hook takes --hook-ms (0: instant).
 *                             drain: state draining at once (health unchanged);
 *                             deploy: version := target, health starting, then
 *                             healthy after --probe-ms (0: healthy at once);
 *                             undrain: state back to the health; migrate, restart,
 *                             apply-config: success (restart restarts health).
 *
 * Difference from the real agent, on purpose: a deploy always publishes an
 * event.  The real agent publishes on a health change only, so an agent with no
 * health probe (health stays "healthy" across the deploy) writes the new version
 * without an event and coordinatord sees it at its next fleet resync.
 *
 * SIGTERM / SIGINT: one line with the commands executed by type (and the queue
 * pickup latency: command created_at -> taken from the queue), then the agent's
 * graceful stop (state stopped, alive key deleted), then exit.
 *
 *   agent-sim --redis-port P [--redis-host 127.0.0.1] [--namespace NS] [--service web]
 *             [--instances 1000] [--first 1] [--version 1.0] [--heartbeat-ms 1000]
 *             [--hook-ms 0] [--probe-ms 0]
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <systemd/sd-event.h>

#include "command.h"
#include "duration.h"
#include "keys.h"
#include "macro.h"
#include "parse-util.h"
#include "sdevent_redis.h"
#include "strutil.h"

/* The agent's own result script: lib/command.h command_result_script. */
#define RESULT_EXPIRE_MS COMMAND_RESULT_EXPIRE_MS
#define POLL_USEC (5 * USEC_PER_SEC)
#define HB_SLICES_MAX 100
#define SAMPLES_MAX 1000000

enum health { H_STARTING, H_HEALTHY, H_UNHEALTHY };
static const char *const health_names[] = { "starting", "healthy", "unhealthy" };

struct inst;

struct run {
        struct inst *in;
        struct run *next;
        char *raw;
        struct command *cmd;
        char *cmd_id;
        uint64_t started_usec, started_ms;
        sd_event_source *timer;
};

struct inst {
        unsigned num;
        char id[NAME_MAX_LEN + 1], host[NAME_MAX_LEN + 1], address[32];
        char *version;
        enum health health;
        bool draining, stopped;
        const char *published_state;
        enum health published_health;
        uint64_t registered_at_ms;
        bool fetching, again;
        struct run *queue, *cur; /* waiting (FIFO), executing */
        sd_event_source *probe;
        char *k_hash, *k_alive, *k_cmds, *k_inflight;
};

static const char *arg_host = "127.0.0.1", *arg_ns = "bench", *arg_service = "web", *arg_version = "1.0";
static int arg_port = 6379;
static unsigned arg_n = 1000, arg_first = 1;
static uint64_t arg_hb_ms = 1000, arg_hook_ms = 0, arg_probe_ms = 0;

static sd_event *ev;
static redisAsyncContext *rc, *sub;
static struct inst *insts;
static char *k_instances, *k_events, *k_results, *wake_prefix;
static size_t wake_prefix_len;
static char ttl_str[32];
static unsigned hb_slices, hb_slice;
static unsigned registered, stop_pending;
static bool stopping;
static unsigned long long count[_COMMAND_TYPE_MAX], count_failed, count_dup, count_wakes, count_regs;
static int64_t *pickup;
static size_t n_pickup;

static void die(const char *what) {
        fprintf(stderr, "agent-sim: %s\n", what);
        exit(1);
}

static void *xmalloc0(size_t n) {
        void *p = calloc(1, n);
        if (!p)
                die("out of memory");
        return p;
}

static char *xstr(char *s) {
        if (!s)
                die("out of memory");
        return s;
}

static void send_argv(redisCallbackFn *cb, void *ud, int argc, const char **argv) {
        if (redisAsyncCommandArgv(rc, cb, ud, argc, argv, NULL) != REDIS_OK)
                die("cannot queue a Redis command (disconnected?)");
}

static const char *inst_state(const struct inst *in) {
        if (in->stopped)
                return "stopped";
        if (in->draining)
                return "draining";
        return health_names[in->health];
}

/* ---- registration (registry.c) ---- */

static void on_stop_exec(redisAsyncContext *c, void *r, void *privdata) {
        if (stop_pending > 0 && --stop_pending == 0)
                sd_event_exit(ev, 0);
}

static void on_reg_exec(redisAsyncContext *c, void *r, void *privdata) {
        redisReply *reply = r;
        struct inst *in = privdata;

        if (!reply || reply->type != REDIS_REPLY_ARRAY) {
                fprintf(stderr, "agent-sim: registration of %s failed: %s\n", in->id,
                        reply && reply->type == REDIS_REPLY_ERROR ? reply->str : "no reply");
                return;
        }
        count_regs++;
        if (registered < arg_n && count_regs == arg_n) {
                registered = arg_n;
                fprintf(stderr, "agent-sim: %u instances of %s registered (ns %s, heartbeat %" PRIu64 " ms)\n",
                        arg_n, arg_service, arg_ns, arg_hb_ms);
        }
}

/* prev: NULL for a plain heartbeat, else the previous state (an event is published). */
static void reg_write(struct inst *in, const char *prev) {
        char last_seen[32], regat[32], event[768];
        uint64_t now = now_realtime_msec();
        const char *state = inst_state(in);

        snprintf(last_seen, sizeof last_seen, "%" PRIu64, now);
        snprintf(regat, sizeof regat, "%" PRIu64, in->registered_at_ms);
        {
                const char *multi[] = { "MULTI" };
                const char *hset[] = { "HSET", in->k_hash,
                                       "id", in->id,
                                       "service", arg_service,
                                       "host", in->host,
                                       "address", in->address,
                                       "version", in->version,
                                       "state", state,
                                       "health", health_names[in->health],
                                       "config_version", "0",
                                       "last_seen", last_seen,
                                       "ttl_ms", ttl_str,
                                       "registered_at", regat,
                                       "detail", "" };
                send_argv(NULL, NULL, 1, multi);
                send_argv(NULL, NULL, (int) (sizeof hset / sizeof *hset), hset);
        }
        if (in->stopped) {
                const char *del[] = { "DEL", in->k_alive };
                send_argv(NULL, NULL, 2, del);
        } else {
                const char *set[] = { "SET", in->k_alive, "1", "PX", ttl_str };
                send_argv(NULL, NULL, 5, set);
        }
        {
                const char *zadd[] = { "ZADD", k_instances, last_seen, in->id };
                send_argv(NULL, NULL, 4, zadd);
        }
        if (prev) {
                /* Names and versions are restricted character sets: no escaping needed. */
                snprintf(event, sizeof event,
                         "{\"type\":\"instance\",\"id\":\"%s\",\"service\":\"%s\",\"host\":\"%s\",\"version\":\"%s\","
                         "\"state\":\"%s\",\"health\":\"%s\",\"previous\":\"%s\",\"config_version\":0,\"ts\":%" PRIu64
                         "}",
                         in->id, arg_service, in->host, in->version, state, health_names[in->health], prev, now);
                const char *pub[] = { "PUBLISH", k_events, event };
                send_argv(NULL, NULL, 3, pub);
        }
        {
                const char *exec[] = { "EXEC" };
                send_argv(in->stopped ? on_stop_exec : on_reg_exec, in, 1, exec);
        }
}

/* agent.c instance_state_changed(): publish when the state or (under the same
 * state) the health changed; force: publish anyway (a version change). */
static void state_changed(struct inst *in, bool force) {
        const char *now = inst_state(in), *prev = in->published_state;

        if (!force && prev && strcmp(prev, now) == 0 && in->published_health == in->health)
                return;
        in->published_state = now;
        in->published_health = in->health;
        reg_write(in, prev ? prev : "");
}

/* ---- commands (commands.c) ---- */

static void fetch(struct inst *in);
static void execute(struct run *r);

static void run_free(struct run *r) {
        if (!r)
                return;
        sd_event_source_disable_unref(r->timer);
        command_free(r->cmd);
        free(r->cmd_id);
        free(r->raw);
        free(r);
}

static void lrem_raw(struct run *r) {
        const char *argv[] = { "LREM", r->in->k_inflight, "1", r->raw };
        send_argv(NULL, NULL, 4, argv);
}

static void start_next(struct inst *in) {
        struct run *r = in->queue;

        if (in->cur || !r || stopping)
                return;
        in->queue = r->next;
        r->next = NULL;
        in->cur = r;
        execute(r);
}

static void on_result_written(redisAsyncContext *c, void *rep, void *privdata) {
        redisReply *reply = rep;
        struct run *r = privdata;
        struct inst *in = r->in;

        if (!reply || reply->type == REDIS_REPLY_ERROR)
                fprintf(stderr, "agent-sim: cannot write the result of %s: %s\n", r->cmd_id,
                        reply ? reply->str : "disconnected");
        if (in->cur == r)
                in->cur = NULL;
        run_free(r);
        start_next(in);
        fetch(in);
}

static void finish(struct run *r, bool ok, const char *error) {
        char exit_code[16], duration[32], started[32], finished[32];
        uint64_t now = now_usec();

        snprintf(exit_code, sizeof exit_code, "%d", ok ? 0 : -1);
        snprintf(duration, sizeof duration, "%" PRIu64, r->started_usec ? (now - r->started_usec) / USEC_PER_MSEC : 0);
        snprintf(finished, sizeof finished, "%" PRIu64, now_realtime_msec());
        snprintf(started, sizeof started, "%" PRIu64, r->started_ms ? r->started_ms : now_realtime_msec());
        if (ok && r->cmd)
                count[r->cmd->type]++;
        else
                count_failed++;
        {
                _cleanup_free_ char *khash = xstr(key_agent_result(arg_ns, r->in->host, r->cmd_id));
                const char *argv[] = { "EVAL", command_result_script, "2", khash, r->in->k_inflight, r->raw, r->cmd_id,
                                       k_results, RESULT_EXPIRE_MS,
                                       "state", ok ? "done" : "failed",
                                       "type", r->cmd ? command_type_to_string(r->cmd->type) : "",
                                       "instance", r->in->id,
                                       "exit_code", exit_code,
                                       "duration_ms", duration,
                                       "started_at", started,
                                       "finished_at", finished,
                                       "output", "",
                                       "error", error ? error : "" };
                send_argv(on_result_written, r, (int) (sizeof argv / sizeof *argv), argv);
        }
}

static int on_probe(sd_event_source *s, uint64_t usec, void *userdata) {
        struct inst *in = userdata;

        in->probe = sd_event_source_disable_unref(in->probe);
        in->health = H_HEALTHY;
        state_changed(in, false);
        return 0;
}

/* agent.c instance_restart_health(), with a probe that turns healthy after --probe-ms. */
static void restart_health(struct inst *in) {
        in->probe = sd_event_source_disable_unref(in->probe);
        if (arg_probe_ms == 0) {
                in->health = H_HEALTHY;
                state_changed(in, true);
                return;
        }
        in->health = H_STARTING;
        state_changed(in, true);
        if (sd_event_add_time_relative(ev, &in->probe, CLOCK_MONOTONIC, arg_probe_ms * USEC_PER_MSEC, 0, on_probe,
                                       in) < 0)
                die("cannot add a timer");
}

static void hook_done(struct run *r) {
        struct inst *in = r->in;

        switch (r->cmd->type) {
        case COMMAND_UNDRAIN:
                in->draining = false;
                state_changed(in, false);
                break;
        case COMMAND_DEPLOY: {
                char *v = xstr(strdup(r->cmd->version));
                free(in->version);
                in->version = v;
                restart_health(in);
                break;
        }
        case COMMAND_RESTART:
                restart_health(in);
                break;
        default:
                break;
        }
        finish(r, true, NULL);
}

static int on_hook_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        struct run *r = userdata;

        r->timer = sd_event_source_disable_unref(r->timer);
        hook_done(r);
        return 0;
}

static void execute(struct run *r) {
        struct inst *in = r->in;
        char started[32];

        r->started_usec = now_usec();
        r->started_ms = now_realtime_msec();
        if (r->cmd->instance && strcmp(r->cmd->instance, in->id) != 0) {
                char err[160];
                snprintf(err, sizeof err, "instance %s is not managed by this agent", r->cmd->instance);
                finish(r, false, err);
                return;
        }
        snprintf(started, sizeof started, "%" PRIu64, r->started_ms);
        {
                _cleanup_free_ char *khash = xstr(key_agent_result(arg_ns, r->in->host, r->cmd_id));
                const char *argv[] = { "HSET", khash, "state", "running", "type", command_type_to_string(r->cmd->type),
                                       "instance", in->id, "started_at", started };
                send_argv(NULL, NULL, (int) (sizeof argv / sizeof *argv), argv);
        }
        if (r->cmd->type == COMMAND_DRAIN) {
                in->draining = true;
                state_changed(in, false);
        }
        if (arg_hook_ms == 0) {
                hook_done(r);
                return;
        }
        if (sd_event_add_time_relative(ev, &r->timer, CLOCK_MONOTONIC, arg_hook_ms * USEC_PER_MSEC, 0, on_hook_timer,
                                       r) < 0)
                die("cannot add a timer");
}

static void on_checked(redisAsyncContext *c, void *rep, void *privdata) {
        redisReply *reply = rep;
        struct run *r = privdata, **p;
        struct inst *in = r->in;

        if (!reply || reply->type == REDIS_REPLY_ERROR || stopping) {
                run_free(r); /* left in :inflight */
                return;
        }
        if (reply->type == REDIS_REPLY_STRING) {
                count_dup++;
                lrem_raw(r);
                run_free(r);
                return;
        }
        for (p = &in->queue; *p; p = &(*p)->next)
                ;
        *p = r;
        start_next(in);
}

static void on_popped(redisAsyncContext *c, void *rep, void *privdata) {
        redisReply *reply = rep;
        struct inst *in = privdata;
        struct run *r;
        char err[256] = "";

        in->fetching = false;
        if (!reply || reply->type == REDIS_REPLY_ERROR) {
                fprintf(stderr, "agent-sim: LMOVE on %s failed: %s\n", in->host, reply ? reply->str : "disconnected");
                return;
        }
        if (reply->type != REDIS_REPLY_STRING) {
                /* Queue empty. */
                if (in->again) {
                        in->again = false;
                        fetch(in);
                }
                return;
        }
        r = xmalloc0(sizeof *r);
        r->in = in;
        r->raw = xstr(strndup(reply->str, reply->len));
        if (command_decode(r->raw, strlen(r->raw), &r->cmd, err, sizeof err) < 0) {
                fprintf(stderr, "agent-sim: rejecting a malformed command on %s: %s\n", in->host, err);
                lrem_raw(r);
                run_free(r);
        } else {
                r->cmd_id = xstr(strdup(r->cmd->id));
                if (r->cmd->created_at_ms && n_pickup < SAMPLES_MAX)
                        pickup[n_pickup++] = (int64_t) now_realtime_msec() - (int64_t) r->cmd->created_at_ms;
                _cleanup_free_ char *khash = xstr(key_agent_result(arg_ns, r->in->host, r->cmd_id));
                const char *argv[] = { "HGET", khash, "finished_at" };
                send_argv(on_checked, r, 3, argv);
        }
        /* Take the next one. */
        in->again = false;
        fetch(in);
}

static void fetch(struct inst *in) {
        if (stopping)
                return;
        if (in->fetching) {
                in->again = true;
                return;
        }
        in->fetching = true;
        const char *argv[] = { "LMOVE", in->k_cmds, in->k_inflight, "RIGHT", "LEFT" };
        send_argv(on_popped, in, 5, argv);
}

static struct inst *inst_by_host(const char *host, size_t len) {
        char buf[NAME_MAX_LEN + 1];
        unsigned k;
        char tail;

        if (len > NAME_MAX_LEN)
                return NULL;
        memcpy(buf, host, len);
        buf[len] = '\0';
        if (sscanf(buf, "simhost-%u%c", &k, &tail) != 1 || k < arg_first || k - arg_first >= arg_n)
                return NULL;
        return &insts[k - arg_first];
}

static void on_wake(redisAsyncContext *c, void *rep, void *privdata) {
        redisReply *reply = rep;
        redisReply *ch;
        struct inst *in;

        if (!reply) {
                if (!stopping)
                        die("pub/sub connection lost");
                return;
        }
        if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 4 || reply->element[0]->type != REDIS_REPLY_STRING ||
            strcmp(reply->element[0]->str, "pmessage") != 0)
                return;
        ch = reply->element[2];
        if (ch->type != REDIS_REPLY_STRING || ch->len <= wake_prefix_len + 5 ||
            memcmp(ch->str, wake_prefix, wake_prefix_len) != 0 || strcmp(ch->str + ch->len - 5, ":wake") != 0)
                return;
        in = inst_by_host(ch->str + wake_prefix_len, ch->len - wake_prefix_len - 5);
        if (!in)
                return;
        count_wakes++;
        fetch(in);
}

/* ---- timers, signals, setup ---- */

static int on_heartbeat(sd_event_source *s, uint64_t usec, void *userdata) {
        (void) sd_event_source_set_time(s, usec + arg_hb_ms * USEC_PER_MSEC / hb_slices);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ON);
        if (stopping)
                return 0;
        for (unsigned i = hb_slice; i < arg_n; i += hb_slices)
                reg_write(&insts[i], NULL);
        hb_slice = (hb_slice + 1) % hb_slices;
        return 0;
}

static int on_poll(sd_event_source *s, uint64_t usec, void *userdata) {
        (void) sd_event_source_set_time(s, usec + POLL_USEC);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ON);
        for (unsigned i = 0; i < arg_n; i++)
                if (!insts[i].cur && !insts[i].queue)
                        fetch(&insts[i]);
        return 0;
}

static int cmp64(const void *a, const void *b) {
        int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
        return x < y ? -1 : x > y;
}

static void print_counts(void) {
        unsigned long long total = 0;
        int64_t p50 = -1, p99 = -1, pmax = -1;

        for (int t = 0; t < _COMMAND_TYPE_MAX; t++)
                total += count[t];
        if (n_pickup > 0) {
                qsort(pickup, n_pickup, sizeof *pickup, cmp64);
                p50 = pickup[n_pickup / 2];
                p99 = pickup[(n_pickup * 99) / 100 < n_pickup ? (n_pickup * 99) / 100 : n_pickup - 1];
                pmax = pickup[n_pickup - 1];
        }
        printf("agent-sim: instances=%u commands=%llu drain=%llu deploy=%llu undrain=%llu migrate=%llu restart=%llu "
               "apply-config=%llu failed=%llu duplicates=%llu wakes=%llu pickup_ms_p50=%" PRId64
               " pickup_ms_p99=%" PRId64 " pickup_ms_max=%" PRId64 "\n",
               arg_n, total, count[COMMAND_DRAIN], count[COMMAND_DEPLOY], count[COMMAND_UNDRAIN],
               count[COMMAND_MIGRATE], count[COMMAND_RESTART], count[COMMAND_APPLY_CONFIG], count_failed, count_dup,
               count_wakes, p50, p99, pmax);
        fflush(stdout);
}

static int on_stop_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        fprintf(stderr, "agent-sim: timed out marking instances stopped; exiting anyway\n");
        sd_event_exit(ev, 0);
        return 0;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        if (stopping) {
                sd_event_exit(ev, 0);
                return 0;
        }
        stopping = true;
        print_counts();
        /* registry_stop_all(): state stopped, alive key deleted, event; bounded. */
        stop_pending = arg_n;
        for (unsigned i = 0; i < arg_n; i++) {
                struct inst *in = &insts[i];
                const char *prev = in->published_state ? in->published_state : "";
                in->stopped = true;
                in->published_state = inst_state(in);
                reg_write(in, prev);
        }
        if (sd_event_add_time_relative(ev, NULL, CLOCK_MONOTONIC, 2 * USEC_PER_SEC, 0, on_stop_timeout, NULL) < 0)
                sd_event_exit(ev, 0);
        return 0;
}

static void on_disconnect(const redisAsyncContext *c, int status) {
        if (!stopping) {
                fprintf(stderr, "agent-sim: Redis disconnected: %s\n", c->errstr[0] ? c->errstr : "closed");
                exit(1);
        }
}

static void on_psubscribed(redisAsyncContext *c, void *rep, void *privdata);

static redisAsyncContext *connect_redis(void) {
        redisAsyncContext *c = redisAsyncConnect(arg_host, arg_port);

        if (!c || c->err) {
                fprintf(stderr, "agent-sim: cannot connect to %s:%d: %s\n", arg_host, arg_port,
                        c ? c->errstr : "out of memory");
                exit(1);
        }
        if (sdevent_redis_attach(c, ev) < 0)
                die("cannot attach Redis to the event loop");
        redisAsyncSetDisconnectCallback(c, on_disconnect);
        return c;
}

static void start_agents(void) {
        uint64_t now = now_realtime_msec();

        for (unsigned i = 0; i < arg_n; i++) {
                struct inst *in = &insts[i];
                in->registered_at_ms = now;
                /* First write announces the instance (previous ""). */
                state_changed(in, true);
                fetch(in);
        }
        hb_slices = arg_n < HB_SLICES_MAX ? arg_n : HB_SLICES_MAX;
        if (hb_slices == 0)
                hb_slices = 1;
        if (sd_event_add_time_relative(ev, NULL, CLOCK_MONOTONIC, arg_hb_ms * USEC_PER_MSEC / hb_slices, 0,
                                       on_heartbeat, NULL) < 0 ||
            sd_event_add_time_relative(ev, NULL, CLOCK_MONOTONIC, POLL_USEC, 0, on_poll, NULL) < 0)
                die("cannot add timers");
}

/* The first reply to PSUBSCRIBE confirms it: only then register, so no
 * wake-up of an early command is missed (the poll would catch it anyway). */
static void on_psubscribed(redisAsyncContext *c, void *rep, void *privdata) {
        static bool started;
        redisReply *reply = rep;

        if (!started && reply && reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 &&
            reply->element[0]->type == REDIS_REPLY_STRING && strcmp(reply->element[0]->str, "psubscribe") == 0) {
                started = true;
                start_agents();
                return;
        }
        on_wake(c, rep, privdata);
}

static uint64_t parse_ms(const char *opt, const char *s) {
        uint64_t v;
        if (parse_uint64(s, &v) < 0) {
                fprintf(stderr, "agent-sim: %s: expected a number of milliseconds\n", opt);
                exit(2);
        }
        return v;
}

static unsigned parse_count(const char *opt, const char *s) {
        uint64_t v;
        if (parse_uint64(s, &v) < 0 || v > 1000000) {
                fprintf(stderr, "agent-sim: %s: expected a number\n", opt);
                exit(2);
        }
        return (unsigned) v;
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "redis-host", required_argument, NULL, 'H' },  { "redis-port", required_argument, NULL, 'p' },
                { "namespace", required_argument, NULL, 'n' },   { "service", required_argument, NULL, 's' },
                { "instances", required_argument, NULL, 'N' },   { "first", required_argument, NULL, 'f' },
                { "version", required_argument, NULL, 'v' },     { "heartbeat-ms", required_argument, NULL, 'b' },
                { "hook-ms", required_argument, NULL, 'k' },     { "probe-ms", required_argument, NULL, 'P' },
                { "help", no_argument, NULL, 'h' },              {}
        };
        sigset_t ss;
        int c;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1)
                switch (c) {
                case 'H': arg_host = optarg; break;
                case 'p': arg_port = (int) parse_count("--redis-port", optarg); break;
                case 'n': arg_ns = optarg; break;
                case 's': arg_service = optarg; break;
                case 'N': arg_n = parse_count("--instances", optarg); break;
                case 'f': arg_first = parse_count("--first", optarg); break;
                case 'v': arg_version = optarg; break;
                case 'b': arg_hb_ms = parse_ms("--heartbeat-ms", optarg); break;
                case 'k': arg_hook_ms = parse_ms("--hook-ms", optarg); break;
                case 'P': arg_probe_ms = parse_ms("--probe-ms", optarg); break;
                case 'h':
                        printf("agent-sim --redis-port P [--redis-host H] [--namespace NS] [--service S]\n"
                               "          [--instances N] [--first K] [--version V] [--heartbeat-ms MS]\n"
                               "          [--hook-ms MS] [--probe-ms MS]\n");
                        return 0;
                default:
                        return 2;
                }
        if (!name_is_valid(arg_ns) || !name_is_valid(arg_service) || !version_is_valid(arg_version) || arg_n == 0 ||
            arg_hb_ms == 0) {
                fprintf(stderr, "agent-sim: invalid --namespace, --service, --version, --instances or --heartbeat-ms\n");
                return 2;
        }
        snprintf(ttl_str, sizeof ttl_str, "%" PRIu64, 3 * arg_hb_ms < 100 ? 100 : 3 * arg_hb_ms);

        k_instances = xstr(key_instances(arg_ns));
        k_events = xstr(key_events(arg_ns));
        k_results = xstr(key_command_results(arg_ns));
        wake_prefix = xstr(strdup_printf("coord:{%s}:agent:", arg_ns));
        wake_prefix_len = strlen(wake_prefix);
        pickup = xmalloc0(SAMPLES_MAX * sizeof *pickup);
        insts = xmalloc0(arg_n * sizeof *insts);
        for (unsigned i = 0; i < arg_n; i++) {
                struct inst *in = &insts[i];
                in->num = arg_first + i;
                snprintf(in->id, sizeof in->id, "sim-%u", in->num);
                snprintf(in->host, sizeof in->host, "simhost-%u", in->num);
                snprintf(in->address, sizeof in->address, "10.%u.%u.%u:8080", (in->num >> 16) & 255,
                         (in->num >> 8) & 255, in->num & 255);
                in->version = xstr(strdup(arg_version));
                in->health = H_HEALTHY;
                in->k_hash = xstr(key_instance(arg_ns, in->id));
                in->k_alive = xstr(key_alive(arg_ns, in->id));
                in->k_cmds = xstr(key_agent_commands(arg_ns, in->host));
                in->k_inflight = xstr(key_agent_inflight(arg_ns, in->host));
        }

        if (sd_event_default(&ev) < 0)
                die("cannot create the event loop");
        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        if (sigprocmask(SIG_BLOCK, &ss, NULL) < 0 || sd_event_add_signal(ev, NULL, SIGTERM, on_signal, NULL) < 0 ||
            sd_event_add_signal(ev, NULL, SIGINT, on_signal, NULL) < 0)
                die("cannot set up signals");

        rc = connect_redis();
        sub = connect_redis();
        {
                _cleanup_free_ char *pattern = xstr(strdup_printf("coord:{%s}:agent:*:wake", arg_ns));
                const char *ps[] = { "PSUBSCRIBE", pattern };
                if (redisAsyncCommandArgv(sub, on_psubscribed, NULL, 2, ps, NULL) != REDIS_OK)
                        die("cannot subscribe");
        }
        if (sd_event_loop(ev) < 0)
                die("event loop failed");
        return 0;
}
