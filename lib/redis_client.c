/* See redis_client.h.
 *
 * Lifetime: the client is reference counted.  The owner holds one reference,
 * every live hiredis context one (dropped when hiredis is done with it: in its
 * disconnect callback, or its failed-connect callback), every queued command
 * one.  So a callback that frees the client (or a hiredis free deferred until
 * a reply callback returns) never touches freed memory.  redis_client_free()
 * completes pending commands with a NULL reply; no state or message callback
 * runs once it was called.
 *
 * hiredis 0.14 rules this file respects: never free a context from inside its
 * connect callback (0.14 keeps using it afterwards); handshake commands are
 * sent from the connect callback so a failed connect has no pending replies.
 *
 * Liveness: besides TCP keepalive, the client publishes a probe to a private
 * channel on the command connection every keepalive interval and expects it
 * back on the pub/sub connection; no probe back within the timeout means the
 * server (or the path to it) is dead or hung, and both connections are
 * re-established.  This checks both connections without putting commands on
 * the subscribed one (hiredis 0.14 cannot route a PING reply there).
 *
 * Sentinel: while connected through a sentinel, a third connection to that
 * sentinel listens on "+switch-master"; a failover then reconnects at once
 * instead of writing to the demoted master until sentinel reconfigures it
 * (about 10 s later), writes that the resync would throw away.
 *
 * New credentials (redis_client_set_url()): make before break.  A candidate,
 * a client object of its own with the new URL and the parent's channels,
 * connects and completes the whole handshake (TLS, AUTH, SELECT, ROLE, PING,
 * SUBSCRIBE) while the parent keeps serving.  Only then its two connections
 * move into the parent: the old command connection is retired with
 * redisAsyncDisconnect() (the replies it still owes arrive, then it closes),
 * the old subscriber is dropped, and the owner sees no disconnection at all.
 * A candidate that fails is dropped and the parent goes on as it was.  That
 * is why every callback that outlives the handshake finds its client through
 * ac->data (which moves with the context), never through privdata. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/async.h>

#include "backoff.h"
#include "keys.h"
#include "log.h"
#include "macro.h"
#include "parse-util.h"
#include "redis.h"
#include "redis_client.h"
#include "sdevent_redis.h"
#include "strutil.h"
#include "tls_pump.h"
#include "tls_redis.h"

#define BACKOFF_BASE_USEC (100 * 1000ULL)
#define BACKOFF_CAP_USEC (5 * 1000 * 1000ULL)
#define KEEPALIVE_INTERVAL_USEC (1000 * 1000ULL)
#define KEEPALIVE_TIMEOUT_USEC (3 * 1000 * 1000ULL)
#define SENTINEL_TIMEOUT_MS 1000
#define WATCH_RETRY_USEC (5 * 1000 * 1000ULL)

struct subscription {
        struct subscription *next;
        char *channel;
        redis_client_message_cb cb;
        void *userdata;
        bool dead; /* unsubscribed; unlinked when no dispatch is running */
};

struct command {
        struct redis_client *client;
        redis_client_reply_cb cb;
        void *userdata;
};

struct redis_client {
        unsigned n_ref;
        sd_event *event;
        struct redis_url *url;
        redis_client_state_cb on_state;
        void *userdata;

        redisAsyncContext *cmd, *sub;
        unsigned cmd_handshake; /* replies still expected before cmd is ready */
        unsigned sub_handshake; /* subscribe confirmations still expected */
        bool cmd_ready, sub_ready;
        bool sub_started; /* the handshake SUBSCRIBE is on its way */
        bool connected;   /* last state reported through on_state */
        bool ever_connected;
        bool freeing;

        struct backoff backoff;
        unsigned attempt;     /* connection attempts since the last success */
        size_t host_index;    /* rotates over several plain endpoints */
        char *target;         /* "host:port" of the current attempt, for messages */
        sd_event_source *reconnect_timer;
        sd_event_source *handshake_timer;
        sd_event_source *keepalive_timer;
        uint64_t keepalive_interval_usec, keepalive_timeout_usec;
        uint64_t last_probe_back;
        char *keepalive_channel; /* key_keepalive(): ACL "&coord:*" covers it */

        struct subscription *subs;
        unsigned dispatching;

        /* Sentinel watch: the sentinel that answered, and the master it named. */
        redisAsyncContext *watch;
        sd_event_source *watch_timer;
        size_t sentinel_index;
        char *master_host;
        int master_port;

        unsigned long reconnects;
        char last_error[256];  /* why the last attempt failed */

        /* Make before break (redis_client_set_url()). */
        struct redis_client *parent;        /* in a candidate: the client it is for (not a reference) */
        struct redis_client *candidate;     /* in a parent: the candidate trying a new URL, owned */
        redis_client_swap_cb swap_cb;
        void *swap_userdata;
        struct tls_settings *tls_saved;     /* the TLS settings to put back if the candidate fails */
        redisAsyncContext *retired;  /* the old command connection, finishing its replies */
        sd_event_source *retire_timer;
};

static void connection_lost(struct redis_client *c, const char *why);
static void start_connect(struct redis_client *c);

static struct redis_client *client_ref(struct redis_client *c) {
        c->n_ref++;
        return c;
}

static void subscriptions_free(struct redis_client *c) {
        while (c->subs) {
                struct subscription *s = c->subs;
                c->subs = s->next;
                free(s->channel);
                free(s);
        }
}

static void client_unref(struct redis_client *c) {
        if (!c || --c->n_ref > 0)
                return;
        c->reconnect_timer = sd_event_source_unref(c->reconnect_timer);
        c->handshake_timer = sd_event_source_unref(c->handshake_timer);
        c->keepalive_timer = sd_event_source_unref(c->keepalive_timer);
        c->watch_timer = sd_event_source_unref(c->watch_timer);
        c->retire_timer = sd_event_source_unref(c->retire_timer);
        c->tls_saved = tls_settings_free(c->tls_saved);
        subscriptions_free(c);
        free(c->master_host);
        redis_url_free(c->url);
        free(c->target);
        free(c->keepalive_channel);
        sd_event_unref(c->event);
        free(c);
}

static uint64_t now_mono(struct redis_client *c) {
        uint64_t t = 0;
        if (sd_event_now(c->event, CLOCK_MONOTONIC, &t) < 0) {
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                t = (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
        }
        return t;
}

static uint64_t connect_timeout_usec(const struct redis_client *c) {
        return (uint64_t) redis_url_connect_timeout_ms(c->url) * 1000;
}

static bool need_role_check(const struct redis_client *c) {
        return c->url->service_name || c->url->n_hosts > 1;
}

/* Free a context we abandon.  Pending command callbacks run with a NULL reply
 * (at once, or when hiredis returns from the reply callback we are inside);
 * the context's reference is dropped by its disconnect callback when it was
 * connected, here otherwise. */
static void context_abandon(struct redis_client *c, redisAsyncContext *ac) {
        bool was_connected;

        if (!ac)
                return;
        was_connected = ac->c.flags & REDIS_CONNECTED;
        client_ref(c);
        redisAsyncFree(ac);
        if (!was_connected)
                client_unref(c); /* no callback will come for it */
        client_unref(c);
}

static void teardown(struct redis_client *c) {
        redisAsyncContext *cmd = c->cmd, *sub = c->sub, *watch = c->watch, *retired = c->retired;

        /* Detach first: callbacks of these contexts then see them as foreign. */
        c->cmd = c->sub = c->watch = c->retired = NULL;
        c->watch_timer = sd_event_source_unref(c->watch_timer);
        c->retire_timer = sd_event_source_unref(c->retire_timer);
        c->cmd_ready = c->sub_ready = c->sub_started = false;
        c->cmd_handshake = c->sub_handshake = 0;
        c->handshake_timer = sd_event_source_unref(c->handshake_timer);
        c->keepalive_timer = sd_event_source_unref(c->keepalive_timer);
        context_abandon(c, cmd);
        context_abandon(c, sub);
        context_abandon(c, watch);
        context_abandon(c, retired);
}

/* The channels a client subscribes: a candidate takes its parent's. */
static struct subscription *subs_of(struct redis_client *c) {
        return c->parent ? c->parent->subs : c->subs;
}

/* ---- commands ----------------------------------------------------------- */

static void command_reply(redisAsyncContext *ac, void *r, void *privdata) {
        struct command *cmd = privdata;
        struct redis_client *c = cmd->client;
        redisReply *reply = r;

        c->dispatching++;
        /* Also while freeing (reply NULL then): owners free their per-command
         * state in the callback. */
        if (cmd->cb)
                cmd->cb(c, reply, cmd->userdata);
        c->dispatching--;
        /* A failover demoted our master (and nobody closed our connection):
         * find the new one instead of failing every write from now on. */
        if (reply && reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "READONLY", 8) == 0 && !c->freeing &&
            ac == c->cmd)
                connection_lost(c, "the server became a replica (READONLY)");
        free(cmd);
        client_unref(c);
}

/* The pending command of a request about to be sent on the command connection: 0 or -errno. */
static int command_new(struct redis_client *c, redis_client_reply_cb cb, void *userdata, struct command **ret) {
        struct command *cmd;

        if (!c->connected || !c->cmd || c->freeing)
                return -ENOTCONN;
        cmd = malloc(sizeof *cmd);
        if (!cmd)
                return -ENOMEM;
        cmd->client = client_ref(c);
        cmd->cb = cb;
        cmd->userdata = userdata;
        *ret = cmd;
        return 0;
}

/* hiredis took the request (REDIS_OK), or cmd is dropped: 0 or -ENOTCONN. */
static int command_sent(struct command *cmd, int redis_r) {
        struct redis_client *c = cmd->client;

        if (redis_r == REDIS_OK)
                return 0;
        free(cmd);
        client_unref(c);
        return -ENOTCONN;
}

int redis_client_command(struct redis_client *c, redis_client_reply_cb cb, void *userdata, const char *fmt, ...) {
        struct command *cmd;
        va_list ap;
        int r;

        if (!c || !fmt)
                return -EINVAL;
        r = command_new(c, cb, userdata, &cmd);
        if (r < 0)
                return r;
        va_start(ap, fmt);
        r = redisvAsyncCommand(c->cmd, command_reply, cmd, fmt, ap);
        va_end(ap);
        return command_sent(cmd, r);
}

int redis_client_commandargv(struct redis_client *c, redis_client_reply_cb cb, void *userdata, int argc,
                             const char **argv,
                             const size_t *argvlen) {
        struct command *cmd;
        int r;

        if (!c || argc <= 0 || !argv)
                return -EINVAL;
        r = command_new(c, cb, userdata, &cmd);
        if (r < 0)
                return r;
        return command_sent(cmd, redisAsyncCommandArgv(c->cmd, command_reply, cmd, argc, argv, argvlen));
}

/* ---- state ---------------------------------------------------------------- */

static void notify_state(struct redis_client *c, bool connected) {
        if (c->on_state && !c->freeing) {
                client_ref(c);
                c->dispatching++;
                c->on_state(c, connected, c->userdata);
                c->dispatching--;
                client_unref(c);
        }
}

static int keepalive_fire(sd_event_source *s, uint64_t usec, void *userdata);
static void watch_start(struct redis_client *c);

static void candidate_ready(struct redis_client *n);

/* Both connections are up: reset the backoff, start the keepalive probes. */
static void mark_up(struct redis_client *c) {
        backoff_reset(&c->backoff);
        c->attempt = 0;
        c->last_error[0] = '\0';
        c->last_probe_back = now_mono(c);
        c->keepalive_timer = sd_event_source_unref(c->keepalive_timer);
        if (sd_event_add_time_relative(c->event, &c->keepalive_timer, CLOCK_MONOTONIC, c->keepalive_interval_usec, 1000,
                                       keepalive_fire, c) >= 0)
                (void) sd_event_source_set_description(c->keepalive_timer, "redis-keepalive");
}

static void check_ready(struct redis_client *c) {
        if (!c->cmd_ready || !c->sub_ready || c->connected)
                return;
        c->handshake_timer = sd_event_source_unref(c->handshake_timer);
        if (c->parent) {
                candidate_ready(c);
                return;
        }
        mark_up(c);
        if (c->ever_connected) {
                c->reconnects++;
                log_info("Reconnected to Redis at %s", c->target ? c->target : "?");
        } else
                log_debug("Connected to Redis at %s", c->target ? c->target : "?");
        c->ever_connected = true;
        c->connected = true;
        if (c->url->service_name)
                watch_start(c);
        notify_state(c, true);
}

static int reconnect_fire(sd_event_source *s, uint64_t usec, void *userdata) {
        struct redis_client *c = client_ref(userdata);

        (void) s;
        (void) usec;
        c->reconnect_timer = sd_event_source_unref(c->reconnect_timer);
        start_connect(c);
        client_unref(c);
        return 0;
}

static void candidate_retry_or_fail(struct redis_client *n);

static void schedule_reconnect(struct redis_client *c) {
        uint64_t delay;

        if (c->freeing || c->reconnect_timer)
                return;
        if (c->parent) {
                candidate_retry_or_fail(c);
                return;
        }
        delay = backoff_next(&c->backoff);
        if (sd_event_add_time_relative(c->event, &c->reconnect_timer, CLOCK_MONOTONIC, delay, 1000, reconnect_fire, c) < 0) {
                log_error("Failed to schedule a Redis reconnect: out of resources");
                return;
        }
        (void) sd_event_source_set_description(c->reconnect_timer, "redis-reconnect");
}

/* Log attempt failures without flooding: the first, then every 10th.  A
 * plain-text connection the server drops at once may be talking to a TLS port. */
static void log_attempt_failure(struct redis_client *c, const char *why) {
        const char *hint = !c->url->ssl && strstr(why, "closed the connection") ? " (does it need ssl=true?)" : "";

        snprintf(c->last_error, sizeof c->last_error, "%s%s", why, hint);
        if (c->parent) /* its parent's owner reports it */
                log_debug("Redis connection with the new settings to %s failed: %s%s", c->target ? c->target : "?",
                          why, hint);
        else if (c->attempt <= 1 || c->attempt % 10 == 0)
                log_warning("Redis connection to %s failed (attempt %u): %s%s; retrying", c->target ? c->target : "?",
                            c->attempt, why, hint);
        else
                log_debug("Redis connection to %s failed (attempt %u): %s%s", c->target ? c->target : "?", c->attempt,
                          why, hint);
}

static void connection_lost(struct redis_client *c, const char *why) {
        bool was = c->connected;

        client_ref(c);
        /* Refuse commands first, then drop the contexts (their pending commands
         * get NULL replies), then tell the owner. */
        c->connected = false;
        teardown(c);
        if (was) {
                log_warning("Lost connection to Redis at %s: %s; reconnecting", c->target ? c->target : "?", why);
                notify_state(c, false);
        } else
                log_attempt_failure(c, why);
        schedule_reconnect(c);
        client_unref(c);
}

/* ---- pub/sub -------------------------------------------------------------- */

/* The text of an error: a TLS failure (the pump's answer, tls_pump.h) without
 * its prefix, anything else as it is. */
static const char *error_text(const char *str) {
        const char *tls = tls_pump_failure(str);

        return tls ? tls : str;
}

static void subscriptions_purge(struct redis_client *c) {
        struct subscription **p = &c->subs;

        if (c->dispatching)
                return;
        while (*p) {
                struct subscription *s = *p;
                if (s->dead) {
                        *p = s->next;
                        free(s->channel);
                        free(s);
                } else
                        p = &s->next;
        }
}

static bool channel_wanted(struct redis_client *c, const char *channel) {
        for (struct subscription *s = subs_of(c); s; s = s->next)
                if (!s->dead && strcmp(s->channel, channel) == 0)
                        return true;
        return false;
}

static void sub_reply(redisAsyncContext *ac, void *r, void *privdata);

static int send_subscribe(struct redis_client *c, const char *channel) {
        const char *argv[2] = { "SUBSCRIBE", channel };
        return redisAsyncCommandArgv(c->sub, sub_reply, c, 2, argv, NULL) == REDIS_OK ? 0 : -ENOTCONN;
}

static void sub_reply(redisAsyncContext *ac, void *r, void *privdata) {
        struct redis_client *c = ac->data; /* not privdata: the context may have moved from a candidate */
        redisReply *reply = r;
        const char *type, *channel;

        (void) privdata;
        if (!reply || c->freeing || ac != c->sub)
                return; /* context going away, or one we abandoned */
        if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 || reply->element[0]->type != REDIS_REPLY_STRING ||
            reply->element[1]->type != REDIS_REPLY_STRING) {
                if (reply->type == REDIS_REPLY_ERROR)
                        connection_lost(c, error_text(reply->str));
                return;
        }
        type = reply->element[0]->str;
        channel = reply->element[1]->str;

        if (strcmp(type, "subscribe") == 0) {
                if (c->sub_handshake > 0 && --c->sub_handshake == 0) {
                        c->sub_ready = true;
                        check_ready(c);
                }
                return;
        }
        if (strcmp(type, "unsubscribe") == 0) {
                /* hiredis 0.14 drops its callback on this reply: when the channel was
                 * subscribed again meanwhile, subscribe once more. */
                if (channel_wanted(c, channel))
                        (void) send_subscribe(c, channel);
                return;
        }
        if (strcmp(type, "message") != 0 || reply->element[2]->type != REDIS_REPLY_STRING)
                return;
        if (strcmp(channel, c->keepalive_channel) == 0) {
                c->last_probe_back = now_mono(c);
                return;
        }
        if (c->parent)
                return; /* a candidate: its parent delivers until the swap */
        client_ref(c);
        c->dispatching++;
        for (struct subscription *s = c->subs; s && !c->freeing; s = s->next)
                if (!s->dead && strcmp(s->channel, channel) == 0)
                        s->cb(c, channel, reply->element[2]->str, reply->element[2]->len, s->userdata);
        c->dispatching--;
        subscriptions_purge(c);
        client_unref(c);
}

/* Live connection (or handshake past its SUBSCRIBE): subscribe now, and while
 * connecting count it as one more confirmation to wait for.  Otherwise the
 * (re)connect subscribes everything.  c may be NULL. */
static void subscribe_live(struct redis_client *c, const char *channel) {
        if (c && c->sub && c->sub_started && send_subscribe(c, channel) >= 0 && !c->sub_ready)
                c->sub_handshake++;
}

static void unsubscribe_live(struct redis_client *c, const char *channel) {
        const char *argv[2] = { "UNSUBSCRIBE", channel };

        if (c && c->sub && c->sub_started)
                (void) redisAsyncCommandArgv(c->sub, NULL, NULL, 2, argv, NULL);
}

int redis_client_subscribe(struct redis_client *c, const char *channel, redis_client_message_cb cb, void *userdata) {
        struct subscription *s, **tail;
        bool already;

        if (!c || !channel || !*channel || !cb)
                return -EINVAL;
        if (key_is_keepalive(channel))
                return -EINVAL;
        already = channel_wanted(c, channel);
        s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->channel = strdup(channel);
        if (!s->channel) {
                free(s);
                return -ENOMEM;
        }
        s->cb = cb;
        s->userdata = userdata;
        for (tail = &c->subs; *tail; tail = &(*tail)->next)
                ;
        *tail = s;
        if (!already) {
                subscribe_live(c, channel);
                subscribe_live(c->candidate, channel);
        }
        return 0;
}

int redis_client_unsubscribe(struct redis_client *c, const char *channel) {
        bool found = false;

        if (!c || !channel)
                return -EINVAL;
        for (struct subscription *s = c->subs; s; s = s->next)
                if (!s->dead && strcmp(s->channel, channel) == 0) {
                        s->dead = true;
                        found = true;
                }
        if (!found)
                return -ENOENT;
        subscriptions_purge(c);
        if (!channel_wanted(c, channel)) {
                unsubscribe_live(c, channel);
                unsubscribe_live(c->candidate, channel);
        }
        return 0;
}

/* ---- keepalive -------------------------------------------------------------- */

static int keepalive_fire(sd_event_source *s, uint64_t usec, void *userdata) {
        struct redis_client *c = userdata;
        const char *argv[3] = { "PUBLISH", c->keepalive_channel, "1" };

        (void) usec;
        if (!c->connected || !c->cmd)
                return 0;
        if (now_mono(c) - c->last_probe_back > c->keepalive_timeout_usec) {
                client_ref(c);
                connection_lost(c, "no keepalive answer (server dead or hung)");
                client_unref(c);
                return 0;
        }
        (void) redisAsyncCommandArgv(c->cmd, NULL, NULL, 3, argv, NULL);
        (void) sd_event_source_set_time_relative(s, c->keepalive_interval_usec);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

/* ---- connecting --------------------------------------------------------------- */

/* Why an error reply during the handshake drops the connection: a TLS failure
 * says it all, anything else gets context. */
static void handshake_error(char *buf, size_t len, const char *context, const char *str) {
        if (tls_pump_failure(str))
                snprintf(buf, len, "%s", error_text(str));
        else
                snprintf(buf, len, "%s: %s", context, str);
}

static void handshake_reply(redisAsyncContext *ac, void *r, void *privdata) {
        struct redis_client *c = privdata;
        redisReply *reply = r;
        if (!reply || c->freeing || ac != c->cmd)
                return;
        if (reply->type == REDIS_REPLY_ERROR) {
                char why[512];
                /* A password for a server that needs none is harmless. */
                if (!c->url->user && strstr(reply->str, "without any password configured"))
                        goto ok;
                handshake_error(why, sizeof why, "handshake failed", reply->str);
                connection_lost(c, why);
                return;
        }
        if (reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 &&
            (reply->element[0]->type == REDIS_REPLY_STRING || reply->element[0]->type == REDIS_REPLY_STATUS) &&
            (strcmp(reply->element[0]->str, "slave") == 0 || strcmp(reply->element[0]->str, "sentinel") == 0 ||
             strcmp(reply->element[0]->str, "replica") == 0)) {
                char why[128];
                snprintf(why, sizeof why, "not a master (ROLE says %s)", reply->element[0]->str);
                connection_lost(c, why);
                return;
        }
ok:
        if (c->cmd_handshake > 0 && --c->cmd_handshake == 0) {
                c->cmd_ready = true;
                check_ready(c);
        }
}

static void sub_handshake_reply(redisAsyncContext *ac, void *r, void *privdata) {
        struct redis_client *c = privdata;
        redisReply *reply = r;

        if (!reply || c->freeing || ac != c->sub)
                return;
        if (reply->type == REDIS_REPLY_ERROR && !(!c->url->user && strstr(reply->str, "without any password configured"))) {
                char why[512];
                handshake_error(why, sizeof why, c->url->password ? "AUTH failed" : "handshake failed", reply->str);
                connection_lost(c, why);
        }
}

static int send_auth(struct redis_client *c, redisAsyncContext *ac, redisCallbackFn *fn) {
        const char *argv[3];
        int argc = 0;

        argv[argc++] = "AUTH";
        if (c->url->user)
                argv[argc++] = c->url->user;
        argv[argc++] = c->url->password;
        return redisAsyncCommandArgv(ac, fn, c, argc, argv, NULL) == REDIS_OK ? 0 : -ENOTCONN;
}

/* Called from hiredis' connect callback: only queue commands here. */
static void cmd_handshake_start(struct redis_client *c) {
        char db[16];
        const char *select_argv[2] = { "SELECT", db };
        unsigned n = 0;

        if (c->url->password) {
                if (send_auth(c, c->cmd, handshake_reply) < 0)
                        return; /* the handshake timer catches it */
                n++;
        }
        if (c->url->db != 0) {
                snprintf(db, sizeof db, "%d", c->url->db);
                if (redisAsyncCommandArgv(c->cmd, handshake_reply, c, 2, select_argv, NULL) != REDIS_OK)
                        return;
                n++;
        }
        if (need_role_check(c)) {
                if (redisAsyncCommand(c->cmd, handshake_reply, c, "ROLE") != REDIS_OK)
                        return;
                n++;
        }
        /* Always one round trip: proves the server answers (and NOAUTH surfaces). */
        if (redisAsyncCommand(c->cmd, handshake_reply, c, "PING") != REDIS_OK)
                return;
        n++;
        c->cmd_handshake = n;
}

static void sub_handshake_start(struct redis_client *c) {
        _cleanup_free_ const char **argv = NULL;
        size_t n = 0, max = 2;

        /* A regular command before SUBSCRIBE: an error reply to it (a TLS
         * failure the pump answered with) reaches sub_handshake_reply() whole,
         * where hiredis 0.14 would keep 127 characters of one to a SUBSCRIBE. */
        if (c->url->password ? send_auth(c, c->sub, sub_handshake_reply) < 0
                             : redisAsyncCommand(c->sub, sub_handshake_reply, c, "PING") != REDIS_OK)
                return;
        for (struct subscription *s = subs_of(c); s; s = s->next)
                max++;
        argv = calloc(max, sizeof *argv);
        if (!argv)
                return;
        argv[n++] = "SUBSCRIBE";
        argv[n++] = c->keepalive_channel;
        for (struct subscription *s = subs_of(c); s; s = s->next) {
                bool dup = false;
                if (s->dead)
                        continue;
                for (size_t i = 1; i < n; i++)
                        if (strcmp(argv[i], s->channel) == 0)
                                dup = true;
                if (!dup)
                        argv[n++] = s->channel;
        }
        if (redisAsyncCommandArgv(c->sub, sub_reply, c, (int) n, argv, NULL) != REDIS_OK)
                return;
        c->sub_handshake = (unsigned) n - 1;
        c->sub_started = true;
}

/* ---- sentinel watch ----------------------------------------------------------- */

static redisAsyncContext *context_new(struct redis_client *c, const char *host, int port, bool unix_ok);

static int watch_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        struct redis_client *c = client_ref(userdata);

        (void) s;
        (void) usec;
        c->watch_timer = sd_event_source_unref(c->watch_timer);
        if (c->connected && !c->watch)
                watch_start(c);
        client_unref(c);
        return 0;
}

/* The watch is an optimisation: losing it never drops the data connections. */
static void watch_lost(struct redis_client *c, const char *why) {
        if (c->freeing || !c->connected || c->watch_timer)
                return;
        log_debug("Sentinel watch connection lost (%s); retrying in %llus", why && *why ? why : "closed",
                  (unsigned long long) (WATCH_RETRY_USEC / 1000000));
        (void) sd_event_add_time_relative(c->event, &c->watch_timer, CLOCK_MONOTONIC, WATCH_RETRY_USEC, 1000000,
                                          watch_retry, c);
}

static void watch_start(struct redis_client *c) {
        const struct redis_endpoint *s;

        if (c->watch || c->freeing || c->sentinel_index >= c->url->n_hosts)
                return;
        s = &c->url->hosts[c->sentinel_index];
        c->watch = context_new(c, s->host, s->port, false);
        if (!c->watch)
                watch_lost(c, "connect failed");
}

static void watch_auth_reply(redisAsyncContext *ac, void *r, void *privdata) {
        /* Sentinels without a password refuse AUTH: harmless, SUBSCRIBE decides. */
        (void) ac;
        (void) r;
        (void) privdata;
}

static void watch_reply(redisAsyncContext *ac, void *r, void *privdata) {
        struct redis_client *c = privdata;
        redisReply *reply = r;
        _cleanup_free_ char *copy = NULL;
        char *tok[5], *p;
        int n = 0, port;

        if (!reply || c->freeing || ac != c->watch || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
            reply->element[0]->type != REDIS_REPLY_STRING || strcmp(reply->element[0]->str, "message") != 0 ||
            reply->element[2]->type != REDIS_REPLY_STRING)
                return;
        /* "+switch-master NAME OLDIP OLDPORT NEWIP NEWPORT" */
        copy = strndup(reply->element[2]->str, MIN(reply->element[2]->len, (size_t) 1024));
        if (!copy)
                return;
        for (p = copy; p && *p && n < 5;) {
                char *sp = strchr(p, ' ');

                tok[n++] = p;
                if (sp)
                        *sp++ = '\0';
                p = sp;
        }
        if (n < 5 || strcmp(tok[0], c->url->service_name) != 0 || parse_int(tok[4], &port) < 0)
                return;
        if (c->master_host && strcmp(tok[3], c->master_host) == 0 && port == c->master_port)
                return;
        {
                char why[160];
                snprintf(why, sizeof why, "sentinel switched master %s to %s:%d", c->url->service_name, tok[3], port);
                backoff_reset(&c->backoff); /* reconnect right away */
                connection_lost(c, why);
        }
}

/* Called from hiredis' connect callback: only queue commands here. */
static void watch_handshake(struct redis_client *c) {
        const char *argv[2] = { "SUBSCRIBE", "+switch-master" };

        if (c->url->password)
                (void) send_auth(c, c->watch, watch_auth_reply);
        (void) redisAsyncCommandArgv(c->watch, watch_reply, c, 2, argv, NULL);
}

static void on_connect(const redisAsyncContext *cac, int status) {
        redisAsyncContext *ac = (redisAsyncContext *) cac;
        struct redis_client *c = ac->data;

        if (ac == c->watch) {
                if (status != REDIS_OK) {
                        c->watch = NULL;
                        watch_lost(c, ac->errstr);
                        client_unref(c);
                } else if (!c->freeing)
                        watch_handshake(c);
                return;
        }
        if (status != REDIS_OK) {
                char why[160];
                bool ours = ac == c->cmd || ac == c->sub;

                snprintf(why, sizeof why, "%s", ac->errstr ? error_text(ac->errstr) : "connect failed");
                /* hiredis frees ac after this returns; forget it first. */
                if (ac == c->cmd)
                        c->cmd = NULL;
                if (ac == c->sub)
                        c->sub = NULL;
                if (ours && !c->freeing)
                        connection_lost(c, why);
                client_unref(c); /* no disconnect callback follows a failed connect */
                return;
        }
        if (c->freeing)
                return;
        if (ac->c.connection_type == REDIS_CONN_TCP)
                (void) redisEnableKeepAlive(&ac->c);
        if (ac == c->cmd)
                cmd_handshake_start(c);
        else if (ac == c->sub)
                sub_handshake_start(c);
}

static void on_disconnect(const redisAsyncContext *cac, int status) {
        redisAsyncContext *ac = (redisAsyncContext *) cac;
        struct redis_client *c = ac->data;

        (void) status;
        if (ac == c->retired) {
                c->retired = NULL;
                c->retire_timer = sd_event_source_unref(c->retire_timer);
        } else if (ac == c->watch) {
                c->watch = NULL;
                watch_lost(c, ac->errstr);
        } else if (ac == c->cmd || ac == c->sub) {
                char why[160];

                snprintf(why, sizeof why, "%s", ac->errstr && *ac->errstr ? error_text(ac->errstr) : "connection closed");
                if (ac == c->cmd)
                        c->cmd = NULL;
                else
                        c->sub = NULL;
                if (!c->freeing)
                        connection_lost(c, why);
        }
        client_unref(c);
}

static int handshake_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        struct redis_client *c = client_ref(userdata);

        (void) s;
        (void) usec;
        c->handshake_timer = sd_event_source_unref(c->handshake_timer);
        if (!c->connected)
                connection_lost(c, "timed out connecting");
        client_unref(c);
        return 0;
}

/* hiredis' own connect, or (ssl) one over TLS: its handshake runs in a pump
 * thread, bounded by the connect timeout, and a failure there arrives as the
 * error reply to the first handshake command. */
static redisAsyncContext *context_connect(struct redis_client *c, const char *host, int port, bool unix_ok) {
        redisAsyncContext *ac = NULL;
        char err[256];

        if (c->url->ssl) {
                struct tls_peer peer = { .host = host, .port = port, .name = c->url->ssl_host };

                if (tls_redis_async_connect(&peer, connect_timeout_usec(c), &ac, err, sizeof err) < 0) {
                        log_attempt_failure(c, err);
                        return NULL;
                }
                return ac;
        }
        ac = unix_ok && c->url->unix_path ? redisAsyncConnectUnix(c->url->unix_path) : redisAsyncConnect(host, port);
        if (ac && ac->err) {
                log_attempt_failure(c, ac->errstr);
                redisAsyncFree(ac);
                return NULL;
        }
        return ac;
}

static redisAsyncContext *context_new(struct redis_client *c, const char *host, int port, bool unix_ok) {
        redisAsyncContext *ac;

        ac = context_connect(c, host, port, unix_ok);
        if (!ac)
                return NULL;
        /* Hooks and probes are children of the daemon: they must not inherit the socket. */
        (void) fcntl(ac->c.fd, F_SETFD, FD_CLOEXEC);
        ac->data = c;
        if (sdevent_redis_attach(ac, c->event) < 0) {
                redisAsyncFree(ac);
                return NULL;
        }
        client_ref(c); /* dropped by on_disconnect / failed on_connect / context_abandon */
        redisAsyncSetConnectCallback(ac, on_connect);
        redisAsyncSetDisconnectCallback(ac, on_disconnect);
        return ac;
}

static void start_connect(struct redis_client *c) {
        _cleanup_free_ char *host = NULL;
        int port = 0;
        uint64_t timeout;

        if (c->freeing)
                return;
        c->attempt++;
        teardown(c);

        if (c->url->service_name) {
                /* Synchronous, bounded: sentinels answer from memory. */
                struct redis_url tmp = *c->url;
                char err[256] = "";
                int r = -EHOSTUNREACH;

                tmp.connect_timeout_ms = MIN(redis_url_connect_timeout_ms(c->url), SENTINEL_TIMEOUT_MS);
                /* Each sentinel in turn; remember which one answered for the watch. */
                tmp.n_hosts = 1;
                for (size_t i = 0; i < c->url->n_hosts; i++) {
                        tmp.hosts[0] = c->url->hosts[i];
                        r = redis_resolve_master(&tmp, &host, &port, err, sizeof err);
                        if (r >= 0) {
                                c->sentinel_index = i;
                                break;
                        }
                }
                if (r < 0) {
                        free(c->target);
                        c->target = strdup_printf("sentinels of %s", c->url->service_name);
                        log_attempt_failure(c, err);
                        schedule_reconnect(c);
                        return;
                }
        } else if (!c->url->unix_path) {
                size_t i = c->host_index++ % c->url->n_hosts;
                host = strdup(c->url->hosts[i].host);
                if (!host) {
                        schedule_reconnect(c);
                        return;
                }
                port = c->url->hosts[i].port;
        }
        free(c->target);
        c->target = c->url->unix_path ? strdup_printf("unix:%s", c->url->unix_path) : strdup_printf("%s:%d", host, port);
        free(c->master_host);
        c->master_host = host ? strdup(host) : NULL;
        c->master_port = port;

        c->cmd = context_new(c, host, port, true);
        if (c->cmd)
                c->sub = context_new(c, host, port, true);
        if (!c->cmd || !c->sub) {
                teardown(c);
                schedule_reconnect(c);
                return;
        }
        timeout = connect_timeout_usec(c);
        if (sd_event_add_time_relative(c->event, &c->handshake_timer, CLOCK_MONOTONIC, timeout, 1000, handshake_timeout,
                                       c) >= 0)
                (void) sd_event_source_set_description(c->handshake_timer, "redis-connect-timeout");
}

/* ---- new credentials: make before break -------------------------------------- */

static void candidate_finish(struct redis_client *c, int error, const char *why);

static int retire_fire(sd_event_source *s, uint64_t usec, void *userdata) {
        struct redis_client *c = client_ref(userdata);
        redisAsyncContext *ac = c->retired;

        (void) s;
        (void) usec;
        c->retire_timer = sd_event_source_unref(c->retire_timer);
        c->retired = NULL;
        context_abandon(c, ac); /* replies still owed come back NULL, as on a lost connection */
        client_unref(c);
        return 0;
}

/* The old command connection after a swap: no new commands, the replies it
 * still owes arrive, then it closes (on_disconnect forgets it).  Bounded by
 * the connect timeout, should the old server hang.  One that was not ready
 * owes nothing to anyone: it is dropped. */
static void retire(struct redis_client *c, redisAsyncContext *ac, bool ready) {
        if (!ac)
                return;
        if (!ready || !(ac->c.flags & REDIS_CONNECTED)) {
                context_abandon(c, ac);
                return;
        }
        context_abandon(c, TAKE_PTR(c->retired));
        c->retire_timer = sd_event_source_unref(c->retire_timer);
        c->retired = ac;
        redisAsyncDisconnect(ac); /* may call on_disconnect at once */
        if (c->retired == ac &&
            sd_event_add_time_relative(c->event, &c->retire_timer, CLOCK_MONOTONIC, connect_timeout_usec(c), 1000,
                                       retire_fire, c) >= 0)
                (void) sd_event_source_set_description(c->retire_timer, "redis-retire");
}

/* ac, connected by candidate n, now belongs to c. */
static redisAsyncContext *context_move(struct redis_client *c, struct redis_client *n, redisAsyncContext *ac) {
        ac->data = client_ref(c);
        client_unref(n);
        return ac;
}

/* Candidate n is up: its connections and URL become c's. */
static void adopt(struct redis_client *c, struct redis_client *n) {
        redisAsyncContext *old_cmd = c->cmd;
        bool was = c->connected, moved = !streq_ptr(c->target, n->target);

        c->cmd = NULL;
        teardown(c); /* the old subscriber, the sentinel watch, timers */
        retire(c, old_cmd, was);
        c->reconnect_timer = sd_event_source_unref(c->reconnect_timer);
        c->cmd = context_move(c, n, TAKE_PTR(n->cmd));
        c->sub = context_move(c, n, TAKE_PTR(n->sub));
        SWAP(c->url, n->url);
        SWAP(c->target, n->target);
        SWAP(c->master_host, n->master_host);
        c->master_port = n->master_port;
        c->sentinel_index = n->sentinel_index;
        c->cmd_ready = c->sub_ready = c->sub_started = true;
        c->connected = c->ever_connected = true;
        mark_up(c);
        if (c->url->service_name)
                watch_start(c);
        log_info("Redis connection to %s now uses the new settings", c->target ? c->target : "?");
        if (!was)
                c->reconnects++;
        /* Same server: nothing was lost, nobody needs to know.  Another one (or
         * we had been disconnected): the owner resyncs as after a reconnect. */
        if (!was || moved)
                notify_state(c, true);
}

static void candidate_ready(struct redis_client *n) {
        struct redis_client *c = client_ref(n->parent);

        client_ref(n);
        adopt(c, n);
        candidate_finish(c, 0, NULL);
        client_unref(n);
        client_unref(c);
}

/* What a failed attempt means for the owner of a candidate. */
static int candidate_errno(const char *why) {
        static const char *const refused[] = { "WRONGPASS", "NOAUTH", "NOPERM", "invalid password",
                                               "invalid username-password", "client certificate" };

        for (size_t i = 0; i < ELEMENTSOF(refused); i++)
                if (strstr(why, refused[i]))
                        return -EACCES;
        if (strstr(why, "timed out"))
                return -ETIMEDOUT;
        return -ECONNREFUSED;
}

/* Another endpoint of the string may be the master: try each once (the
 * sentinel path already asked every sentinel), then give up. */
static void candidate_retry_or_fail(struct redis_client *n) {
        size_t tries = n->url->service_name || n->url->unix_path ? 1 : n->url->n_hosts;

        if (n->attempt < tries) {
                if (sd_event_add_time_relative(n->event, &n->reconnect_timer, CLOCK_MONOTONIC, 0, 1000, reconnect_fire,
                                               n) >= 0)
                        return;
        }
        if (!n->last_error[0])
                snprintf(n->last_error, sizeof n->last_error, "connect failed");
        candidate_finish(n->parent, candidate_errno(n->last_error), n->last_error);
}

/* The candidate of c is done (error 0: adopted): drop it, keep or put back the
 * TLS settings, tell the owner (not while freeing). */
static void candidate_finish(struct redis_client *c, int error, const char *why) {
        struct redis_client *n = TAKE_PTR(c->candidate);
        redis_client_swap_cb cb = TAKE_PTR(c->swap_cb);
        void *userdata = TAKE_PTR(c->swap_userdata);
        char reason[sizeof c->last_error];

        snprintf(reason, sizeof reason, "%s", why ? why : ""); /* why may live in n */
        client_ref(c);
        if (error < 0)
                tls_settings_restore(TAKE_PTR(c->tls_saved));
        else
                c->tls_saved = tls_settings_free(c->tls_saved);
        if (n) {
                n->parent = NULL;
                redis_client_free(n);
        }
        if (cb && !c->freeing)
                cb(c, error, error < 0 ? reason : NULL, userdata);
        client_unref(c);
}

/* ---- public --------------------------------------------------------------------- */

static int url_check(const struct redis_url *url) {
        if (!url->unix_path && url->n_hosts == 0)
                return -EINVAL;
        if (url->ssl && url->unix_path) {
                log_error("ssl=true with a unix socket: TLS runs over TCP only");
                return -EINVAL;
        }
        return 0;
}

static struct redis_client *client_alloc(sd_event *e, const struct redis_url *url, const char *keepalive_channel) {
        struct redis_client *c = calloc(1, sizeof *c);

        if (!c)
                return NULL;
        c->n_ref = 1;
        c->url = redis_url_dup(url);
        c->keepalive_channel = strdup(keepalive_channel);
        if (!c->url || !c->keepalive_channel) {
                redis_url_free(c->url);
                free(c->keepalive_channel);
                free(c);
                return NULL;
        }
        c->event = sd_event_ref(e);
        c->keepalive_interval_usec = KEEPALIVE_INTERVAL_USEC;
        c->keepalive_timeout_usec = KEEPALIVE_TIMEOUT_USEC;
        backoff_init(&c->backoff, BACKOFF_BASE_USEC, BACKOFF_CAP_USEC);
        log_add_secret(url->password);
        return c;
}

int redis_client_new(sd_event *e, const struct redis_url *url, redis_client_state_cb on_state, void *userdata,
                     struct redis_client **ret) {
        _cleanup_free_ char *channel = NULL;
        struct redis_client *c;
        char hex[17];
        int r;

        if (!e || !url || !ret)
                return -EINVAL;
        r = url_check(url);
        if (r < 0)
                return r;
        if (random_hex(hex, 8) < 0)
                return -EIO;
        channel = key_keepalive(hex);
        if (!channel)
                return -ENOMEM;
        c = client_alloc(e, url, channel);
        if (!c)
                return -ENOMEM;
        c->on_state = on_state;
        c->userdata = userdata;
        start_connect(c);
        *ret = c;
        return 0;
}

int redis_client_set_url(struct redis_client *c, const struct redis_url *url, const struct tls_options *tls,
                         redis_client_swap_cb done, void *userdata, char *errbuf, size_t errlen) {
        _cleanup_(tls_settings_freep) struct tls_settings *saved = NULL;
        struct redis_client *n;
        int r;

        if (!c || !url || c->freeing || c->parent)
                return -EINVAL;
        r = url_check(url);
        if (r < 0) {
                errbuf_printf(errbuf, errlen, "ssl=true with a unix socket, or no endpoint");
                return r;
        }
        if (c->candidate)
                candidate_finish(c, -ECANCELED, "superseded by newer settings");
        saved = tls_settings_save();
        if (!saved)
                return -ENOMEM;
        if (tls) {
                r = tls_set_options(tls, errbuf, errlen);
                if (r < 0)
                        return r;
        }
        n = client_alloc(c->event, url, c->keepalive_channel);
        /* Started from the loop, so done is never called from in here. */
        if (!n || sd_event_add_time_relative(c->event, &n->reconnect_timer, CLOCK_MONOTONIC, 0, 1000, reconnect_fire,
                                             n) < 0) {
                if (n)
                        client_unref(n);
                tls_settings_restore(TAKE_PTR(saved));
                return -ENOMEM;
        }
        n->parent = c;
        c->candidate = n;
        c->tls_saved = TAKE_PTR(saved);
        c->swap_cb = done;
        c->swap_userdata = userdata;
        return 0;
}

int redis_client_reload(struct redis_client *c, const struct redis_client_settings *old,
                        const struct redis_client_settings *new, bool retry, redis_client_swap_cb done, void *userdata,
                        char *errbuf, size_t errlen) {
        _cleanup_(redis_url_freep) struct redis_url *u = NULL;
        int r;

        if (!c || !old || !new || !new->url || !new->tls)
                return -EINVAL;
        if (streq_ptr(old->url, new->url) && old->tls && tls_options_equal(old->tls, new->tls) && !c->url->ssl &&
            !retry)
                return 0;
        r = redis_url_parse(new->url, &u, errbuf, errlen);
        if (r >= 0) /* plain text: the TLS settings stay as they are (loading them takes time) */
                r = redis_client_set_url(c, u, u->ssl ? new->tls : NULL, done, userdata, errbuf, errlen);
        return r < 0 ? r : 1;
}

const struct redis_url *redis_client_url(struct redis_client *c) {
        return c ? c->url : NULL;
}

struct redis_client *redis_client_free(struct redis_client *c) {
        if (!c || c->freeing)
                return NULL;
        c->freeing = true;
        if (c->candidate)
                candidate_finish(c, -ECANCELED, "the client is freed");
        c->reconnect_timer = sd_event_source_unref(c->reconnect_timer);
        teardown(c);
        c->connected = false;
        client_unref(c);
        return NULL;
}

bool redis_client_is_connected(struct redis_client *c) {
        return c && c->connected && !c->freeing;
}

unsigned long redis_client_reconnects(struct redis_client *c) {
        return c ? c->reconnects : 0;
}

void redis_client_set_keepalive(struct redis_client *c, uint64_t interval_usec, uint64_t timeout_usec) {
        if (!c)
                return;
        c->keepalive_interval_usec = interval_usec > 0 ? interval_usec : KEEPALIVE_INTERVAL_USEC;
        c->keepalive_timeout_usec = timeout_usec > interval_usec ? timeout_usec : 3 * c->keepalive_interval_usec;
}
