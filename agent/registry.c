/* Registration in Redis (layout: keys.h, "Fleet").  Every write is one
 * MULTI/EXEC: the instance hash, the alive key with a TTL of three heartbeats
 * (so a dead host disappears on its own), the instances zset and, on a state
 * change, an event on the events channel. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-daemon.h>

#include "agent.h"
#include "duration.h"
#include "jsonutil.h"
#include "keys.h"
#include "log.h"
#include "strutil.h"

struct reg_call {
        struct agent *a;
        char id[NAME_MAX_LEN + 1];
        bool stop_round;
};

static uint64_t ttl_ms(const struct agent *a) {
        uint64_t t = 3 * a->config->heartbeat_interval / USEC_PER_MSEC;
        return t < 100 ? 100 : t;
}

/* What "health" is based on, so `coordctl doctor` can tell an instance with no
 * health check (healthy the moment it starts) from one that passed its probe. */
static const char *probe_kind(const struct instance *in) {
        const struct agent_health_config *h = &in->cfg->health;

        return h->http ? "http" : h->tcp ? "tcp" : h->exec ? "exec" : "none";
}

static void stop_finished(struct agent *a) {
        void (*done)(struct agent *) = a->stop_done;

        a->stop_done = NULL;
        a->stop_pending = 0;
        a->stop_timeout = sd_event_source_disable_unref(a->stop_timeout);
        if (done)
                done(a);
}

static void on_exec(struct redis_client *c, redisReply *reply, void *userdata) {
        struct reg_call *call = userdata;
        struct agent *a = call->a;

        if (!reply)
                log_debug("Registration of %s not written: Redis disconnected", call->id);
        else if (reply->type != REDIS_REPLY_ARRAY)
                log_warning("Registration of %s failed: %s", call->id,
                            reply->type == REDIS_REPLY_ERROR ? reply->str : "transaction aborted");
        else if (!call->stop_round) {
                struct instance *in = agent_find_instance(a, call->id);
                if (in && !in->registered) {
                        in->registered = true;
                        log_info("Registered instance %s", in->id);
                }
                if (!a->ready_sent) {
                        bool all = true;
                        for (size_t i = 0; i < a->n_instances; i++)
                                all = all && a->instances[i]->registered;
                        if (all) {
                                a->ready_sent = true;
                                a->last_status[0] = '\0';
                                (void) sd_notify(0, "READY=1");
                                agent_update_status(a);
                        }
                }
        }
        if (call->stop_round && a->stop_pending > 0 && --a->stop_pending == 0 && a->stop_done)
                stop_finished(a);
        free(call);
}

static int send_registration(struct agent *a, struct instance *in, const char *prev_state, bool stop_round) {
        _cleanup_free_ char *khash = key_instance(a->config->namespace, in->id);
        _cleanup_free_ char *kalive = key_alive(a->config->namespace, in->id);
        _cleanup_free_ char *kset = key_instances(a->config->namespace);
        _cleanup_free_ char *kevents = key_events(a->config->namespace);
        _cleanup_free_ char *event = NULL;
        char last_seen[32], ttl[32], regat[32], cv[32];
        const char *state = instance_state(in);
        struct reg_call *call;
        uint64_t now = now_realtime_msec();
        int r;

        if (!a->redis || !redis_client_is_connected(a->redis))
                return -ENOTCONN;
        if (!khash || !kalive || !kset || !kevents)
                return -ENOMEM;
        snprintf(last_seen, sizeof last_seen, "%llu", (unsigned long long) now);
        snprintf(ttl, sizeof ttl, "%llu", (unsigned long long) ttl_ms(a));
        snprintf(regat, sizeof regat, "%llu", (unsigned long long) in->registered_at_ms);
        snprintf(cv, sizeof cv, "%lld", (long long) in->config_version);

        if (prev_state) {
                _cleanup_json_ json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "type",
                                                      "instance", "id", in->id, "service", in->cfg->name, "host",
                                                      a->config->host, "version", in->version, "state", state,
                                                      "health", health_state_to_string(in->health.state),
                                                      "previous", prev_state, "config_version",
                                                      (json_int_t) in->config_version, "ts", (json_int_t) now);
                if (!ev)
                        return -ENOMEM;
                event = json_dumps(ev, JSON_COMPACT);
                if (!event)
                        return -ENOMEM;
        }

        {
                const char *hset[] = { "HSET", khash,
                                       "id", in->id,
                                       "service", in->cfg->name,
                                       "host", a->config->host,
                                       "address", in->cfg->address ? in->cfg->address : "",
                                       "version", in->version,
                                       "state", state,
                                       "health", health_state_to_string(in->health.state),
                                       "probe", probe_kind(in),
                                       "config_version", cv,
                                       "last_seen", last_seen,
                                       "ttl_ms", ttl,
                                       "registered_at", regat,
                                       "detail", in->detail ? in->detail : "" };
                r = redis_client_command(a->redis, NULL, NULL, "MULTI");
                if (r < 0)
                        return r;
                (void) redis_client_commandargv(a->redis, NULL, NULL, (int) ELEMENTSOF(hset), hset, NULL);
        }
        if (in->stopped)
                (void) redis_client_command(a->redis, NULL, NULL, "DEL %s", kalive);
        else
                (void) redis_client_command(a->redis, NULL, NULL, "SET %s 1 PX %s", kalive, ttl);
        (void) redis_client_command(a->redis, NULL, NULL, "ZADD %s %s %s", kset, last_seen, in->id);
        if (event)
                (void) redis_client_command(a->redis, NULL, NULL, "PUBLISH %s %s", kevents, event);

        call = calloc(1, sizeof *call);
        if (!call)
                return -ENOMEM;
        call->a = a;
        call->stop_round = stop_round;
        snprintf(call->id, sizeof call->id, "%s", in->id);
        r = redis_client_command(a->redis, on_exec, call, "EXEC");
        if (r < 0) {
                free(call);
                return r;
        }
        return 0;
}

void registry_register(struct agent *a, struct instance *in, const char *prev_state) {
        int r = send_registration(a, in, prev_state, false);

        if (r < 0 && r != -ENOTCONN)
                log_warning_errno(r, "Failed to send the registration of %s: %m", in->id);
}

void registry_heartbeat(struct agent *a, bool announce) {
        for (size_t i = 0; i < a->n_instances; i++) {
                struct instance *in = a->instances[i];
                /* After a (re)connect everyone hears the current state: changes made
                 * while Redis was away were never published. */
                const char *prev = announce ? (in->published_state ? in->published_state : "") : NULL;

                if (!in->published_state) {
                        /* First write: announce the instance. */
                        in->published_state = instance_state(in);
                        in->published_health = in->health.state;
                        prev = "";
                }
                registry_register(a, in, prev);
        }
}

static int on_stop_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        struct agent *a = userdata;

        log_warning("Timed out marking instances stopped in Redis; exiting anyway");
        stop_finished(a);
        return 0;
}

void registry_stop_all(struct agent *a, struct instance **list, size_t n, void (*done)(struct agent *a)) {
        unsigned sent = 0;

        for (size_t i = 0; i < n; i++) {
                struct instance *in = list[i];
                const char *prev = in->published_state ? in->published_state : "";

                in->stopped = true;
                in->published_state = instance_state(in);
                if (send_registration(a, in, prev, done != NULL) >= 0)
                        sent++;
        }
        if (!done)
                return;
        if (sent == 0) {
                a->stop_done = done;
                stop_finished(a);
                return;
        }
        a->stop_pending = sent;
        a->stop_done = done;
        if (sd_event_add_time_relative(a->event, &a->stop_timeout, CLOCK_MONOTONIC, 2 * USEC_PER_SEC, 0,
                                       on_stop_timeout, a) < 0)
                stop_finished(a);
}
