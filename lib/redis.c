/* See redis.h.
 *
 * hiredis' err/errstr are translated to -errno here, once.  Every message that
 * leaves this file goes through seterr(), which masks the password, so a
 * server echoing it back (or a caller formatting it by mistake) cannot leak it. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "duration.h"
#include "macro.h"
#include "parse-util.h"
#include "redis.h"
#include "strutil.h"
#include "tls_pump.h"
#include "tls_redis.h"

#define SENTINEL_PASSES 2

static void mask_in_place(char *buf, size_t len, const char *secret) {
        static const char mask[] = "*****";
        size_t slen;
        char *p = buf;

        if (!buf || len == 0 || !secret || !*secret)
                return;
        slen = strlen(secret);
        while ((p = strstr(p, secret))) {
                /* Replace secret by the mask, shifting the tail; truncate at len. */
                size_t off = (size_t) (p - buf), tail = strlen(p + slen);
                size_t room = len - 1 - off; /* bytes available from p, without the NUL */
                size_t m = MIN(sizeof mask - 1, room);

                if (m + tail > room)
                        tail = room - m;
                memmove(p + m, p + slen, tail);
                memcpy(p, mask, m);
                p[m + tail] = '\0';
                p += m;
        }
}

static void seterr(const struct redis_url *u, char *errbuf, size_t errlen, const char *fmt, ...)
        _printf_(4, 5);
static void seterr(const struct redis_url *u, char *errbuf, size_t errlen, const char *fmt, ...) {
        va_list ap;

        if (!errbuf || errlen == 0)
                return;
        va_start(ap, fmt);
        errbuf_vprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
        if (u)
                mask_in_place(errbuf, errlen, u->password);
}

static struct timeval usec_to_timeval(uint64_t usec) {
        return (struct timeval) { .tv_sec = (time_t) (usec / 1000000), .tv_usec = (suseconds_t) (usec % 1000000) };
}

/* The caller's deadline for the whole connect has passed. */
static bool deadline_passed(const struct redis_url *u) {
        return u->deadline_usec != 0 && now_usec() >= u->deadline_usec;
}

/* One step's timeout: the URL's connect timeout, cut to what is left before the deadline. */
static uint64_t connect_timeout_usec(const struct redis_url *u) {
        uint64_t t = (uint64_t) redis_url_connect_timeout_ms(u) * 1000, now;

        if (u->deadline_usec != 0) {
                now = now_usec();
                t = MIN(t, u->deadline_usec > now ? u->deadline_usec - now : 0);
                t = MAX(t, (uint64_t) 1000); /* hiredis reads 0 as "no timeout" */
        }
        return t;
}

/* Before each handshake step: with a deadline, cut the context's timeout to
 * what is left, or fail when nothing is. */
static int step_timeout(const struct redis_url *u, redisContext *c, const char *what, char *errbuf,
                        size_t errlen) {
        if (u->deadline_usec == 0)
                return 0;
        if (deadline_passed(u)) {
                seterr(u, errbuf, errlen, "Redis at %s: out of time during the handshake", what);
                return -ETIMEDOUT;
        }
        if (redisSetTimeout(c, usec_to_timeval(connect_timeout_usec(u))) != REDIS_OK)
                return -EIO;
        return 0;
}

int redis_context_errno(const redisContext *c, int saved_errno) {
        if (!c)
                return -ENOMEM;
        switch (c->err) {
        case REDIS_ERR_IO:
                if (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK || strstr(c->errstr, "temporarily unavailable"))
                        return -ETIMEDOUT; /* SO_RCVTIMEO/SO_SNDTIMEO expired */
                if (saved_errno > 0)
                        return -saved_errno;
                if (strstr(c->errstr, "refused"))
                        return -ECONNREFUSED;
                if (strstr(c->errstr, "timed out"))
                        return -ETIMEDOUT;
                return -EIO;
        case REDIS_ERR_EOF:
                return -ECONNRESET;
        case REDIS_ERR_PROTOCOL:
                return -EPROTO;
        case REDIS_ERR_OOM:
                return -ENOMEM;
        default:
                /* REDIS_ERR_OTHER: name resolution and the like. */
                if (strstr(c->errstr, "refused"))
                        return -ECONNREFUSED;
                if (strstr(c->errstr, "timed out"))
                        return -ETIMEDOUT;
                if (strstr(c->errstr, "resolve") || strstr(c->errstr, "not known") || strstr(c->errstr, "name"))
                        return -EHOSTUNREACH;
                return -EIO;
        }
}

static int reply_error_errno(const redisReply *r) {
        if (strncmp(r->str, "NOAUTH", 6) == 0 || strncmp(r->str, "WRONGPASS", 9) == 0 ||
            strncmp(r->str, "NOPERM", 6) == 0 || strstr(r->str, "invalid password") ||
            strstr(r->str, "invalid username-password"))
                return -EACCES;
        return -EPROTO;
}

/* The outcome of one command: reply (taken) into *ret, or -errno with errbuf
 * saying why, prefixed "LABEL: " when label is set.  saved: errno right after
 * the call. */
static int command_outcome(const struct redis_url *u, redisContext *c, redisReply *reply, int saved,
                           const char *label, redisReply **ret, char *errbuf, size_t errlen) {
        _cleanup_reply_ redisReply *owned = reply;

        if (!owned) {
                int r = redis_context_errno(c, saved);
                const char *why = r == -ETIMEDOUT ? "command timed out" : c->errstr[0] ? c->errstr : "I/O error";
                if (label)
                        seterr(u, errbuf, errlen, "%s: %s", label, why);
                else
                        seterr(u, errbuf, errlen, "%s", why);
                return r;
        }
        if (owned->type == REDIS_REPLY_ERROR) {
                seterr(u, errbuf, errlen, "%s", owned->str ? owned->str : "error reply");
                return -EPROTO;
        }
        *ret = TAKE_PTR(owned);
        return 0;
}

/* A context that already failed is not used again: -ENOTCONN. */
static int check_usable(const struct redis_url *u, const redisContext *c, char *errbuf, size_t errlen) {
        if (!c)
                return -EINVAL;
        if (c->err) {
                seterr(u, errbuf, errlen, "connection already failed: %s", c->errstr);
                return -ENOTCONN;
        }
        return 0;
}

static int command_internal(const struct redis_url *u, redisContext *c, redisReply **ret, char *errbuf,
                            size_t errlen, int argc, const char **argv, const size_t *argvlen) {
        redisReply *reply;
        int r = check_usable(u, c, errbuf, errlen);

        if (r < 0)
                return r;
        errno = 0;
        reply = redis_ctx_commandargv(c, argc, argv, argvlen);
        return command_outcome(u, c, reply, errno, argc > 0 ? argv[0] : "?", ret, errbuf, errlen);
}

int redis_commandargv(redisContext *c, redisReply **ret, char *errbuf, size_t errlen, int argc, const char **argv,
                      const size_t *argvlen) {
        if (argc <= 0 || !argv)
                return -EINVAL;
        return command_internal(NULL, c, ret, errbuf, errlen, argc, argv, argvlen);
}

int redis_command(redisContext *c, redisReply **ret, char *errbuf, size_t errlen, const char *fmt, ...) {
        redisReply *reply;
        va_list ap;
        int r, saved;

        if (!fmt)
                return -EINVAL;
        r = check_usable(NULL, c, errbuf, errlen);
        if (r < 0)
                return r;
        va_start(ap, fmt);
        errno = 0;
        reply = redis_ctx_vcommand(c, fmt, ap);
        saved = errno;
        va_end(ap);
        return command_outcome(NULL, c, reply, saved, NULL, ret, errbuf, errlen);
}

/* Plain text sent to a TLS port: Redis drops the connection without a word. */
static const char *plain_text_hint(const struct redis_url *u, int r) {
        return r == -ECONNRESET && !u->ssl && !u->unix_path ? " (does it need ssl=true?)" : "";
}

/* hiredis' own connect: TCP (host, port) or unix (path, port ignored). */
static int open_plain(const struct redis_url *u, const char *host, int port, const char *unix_path,
                      struct timeval tv, redisContext **ret, char *errbuf, size_t errlen) {
        _cleanup_redis_ redisContext *c = NULL;
        int saved, r;

        errno = 0;
        c = unix_path ? redisConnectUnixWithTimeout(unix_path, tv) : redisConnectWithTimeout(host, port, tv);
        saved = errno;
        if (!c) {
                seterr(u, errbuf, errlen, "out of memory connecting to Redis");
                return -ENOMEM;
        }
        if (c->err) {
                r = redis_context_errno(c, saved);
                if (unix_path)
                        seterr(u, errbuf, errlen, "Failed to connect to Redis at unix:%s: %s", unix_path,
                               r == -ETIMEDOUT ? "connection timed out" : c->errstr);
                else
                        seterr(u, errbuf, errlen, "Failed to connect to Redis at %s:%d: %s", host, port,
                               r == -ETIMEDOUT ? "connection timed out" : c->errstr);
                return r;
        }
        /* Commands run by coordctl lock (and hooks) must not inherit the connection. */
        (void) fcntl(c->fd, F_SETFD, FD_CLOEXEC);
        /* TCP keepalive notices a vanished peer; hiredis flags an error on unix sockets. */
        if (!unix_path && redisEnableKeepAlive(c) != REDIS_OK) {
                seterr(u, errbuf, errlen, "Failed to enable TCP keepalive: %s", c->errstr);
                return -EIO;
        }
        *ret = TAKE_PTR(c);
        return 0;
}

/* Open a connection (TCP, TLS over TCP, or unix) with a timeout that also
 * bounds the handshake commands that follow. */
static int open_context(const struct redis_url *u, const char *host, int port, const char *unix_path,
                        redisContext **ret, char *errbuf, size_t errlen) {
        _cleanup_redis_ redisContext *c = NULL;
        uint64_t t = connect_timeout_usec(u);
        int r;

        if (deadline_passed(u)) {
                seterr(u, errbuf, errlen, "Failed to connect to Redis: out of time");
                return -ETIMEDOUT;
        }
        if (u->ssl) {
                struct tls_peer peer = { .host = host, .port = port, .name = u->ssl_host };

                r = tls_redis_connect(&peer, t, &c, errbuf, errlen);
        } else
                r = open_plain(u, host, port, unix_path, usec_to_timeval(t), &c, errbuf, errlen);
        if (r < 0)
                return r;
        /* Bound the handshake (AUTH, SELECT, ROLE, SENTINEL) by the connect timeout too. */
        if (redisSetTimeout(c, usec_to_timeval(t)) != REDIS_OK) {
                seterr(u, errbuf, errlen, "Failed to set a timeout on the Redis connection: %s", c->errstr);
                return -EIO;
        }
        *ret = TAKE_PTR(c);
        return 0;
}

/* One handshake command, bounded by the deadline.  0 with the reply (an error
 * reply too) in *ret, or -errno with "LABEL on WHAT failed: ..." in errbuf.
 * A TLS failure the pump answered with (tls_pump.h) is -ECONNABORTED. */
static int handshake_command(const struct redis_url *u, redisContext *c, const char *what, const char *label,
                             int argc, const char **argv, redisReply **ret, char *errbuf, size_t errlen) {
        redisReply *reply;
        const char *tls;
        int r;

        r = step_timeout(u, c, what, errbuf, errlen);
        if (r < 0)
                return r;
        errno = 0;
        reply = redis_ctx_commandargv(c, argc, argv, NULL);
        if (!reply && (tls = tls_redis_failure(c))) {
                /* The server refused the session after the handshake (a client certificate). */
                seterr(u, errbuf, errlen, "%s", tls);
                return -ECONNABORTED;
        }
        if (!reply) {
                r = redis_context_errno(c, errno);
                seterr(u, errbuf, errlen, "%s on %s failed: %s%s", label, what,
                       r == -ETIMEDOUT ? "timed out" : c->errstr, plain_text_hint(u, r));
                return r;
        }
        tls = reply->type == REDIS_REPLY_ERROR ? tls_pump_failure(reply->str) : NULL;
        if (tls) {
                seterr(u, errbuf, errlen, "%s", tls);
                freeReplyObject(reply);
                return -ECONNABORTED;
        }
        *ret = reply;
        return 0;
}

/* An error reply that means we lack a password. */
static int need_password(const struct redis_url *u, const char *what, const redisReply *reply, char *errbuf,
                         size_t errlen) {
        seterr(u, errbuf, errlen, "Redis at %s requires authentication (%s); set a password in the connection string",
               what, reply->str);
        return -EACCES;
}

/* AUTH with the URL's credentials.  what names the peer for messages. */
static int authenticate(const struct redis_url *u, redisContext *c, const char *what, char *errbuf, size_t errlen) {
        _cleanup_reply_ redisReply *reply = NULL;
        const char *argv[3] = { "AUTH" };
        int argc = 1, r;

        if (!u->password)
                return 0;
        if (u->user)
                argv[argc++] = u->user;
        argv[argc++] = u->password;
        r = handshake_command(u, c, what, "AUTH", argc, argv, &reply, errbuf, errlen);
        if (r < 0 || reply->type != REDIS_REPLY_ERROR)
                return r;
        /* A password for a server that needs none is harmless (redis-cli and
         * StackExchange.Redis accept it too). */
        if (!u->user && strstr(reply->str, "without any password configured"))
                return 0;
        seterr(u, errbuf, errlen, "AUTH on %s failed%s%s: %s", what, u->user ? " for user " : "", u->user ? u->user : "",
               reply->str);
        return -EACCES;
}

static int select_db(const struct redis_url *u, redisContext *c, const char *what, char *errbuf, size_t errlen) {
        _cleanup_reply_ redisReply *reply = NULL;
        char db[16], label[32];
        const char *argv[2] = { "SELECT", db };
        int r;

        if (u->db == 0)
                return 0;
        snprintf(db, sizeof db, "%d", u->db);
        snprintf(label, sizeof label, "SELECT %d", u->db);
        r = handshake_command(u, c, what, label, 2, argv, &reply, errbuf, errlen);
        if (r < 0 || reply->type != REDIS_REPLY_ERROR)
                return r;
        r = reply_error_errno(reply);
        if (r == -EACCES && !u->password)
                return need_password(u, what, reply, errbuf, errlen);
        seterr(u, errbuf, errlen, "SELECT %d on %s failed: %s", u->db, what, reply->str);
        return r == -EACCES ? -EACCES : -EINVAL;
}

/* Nothing else talked to the server: make sure it answers and does not
 * require a password we lack, so failures surface here, not later. */
static int ping(const struct redis_url *u, redisContext *c, const char *what, char *errbuf, size_t errlen) {
        _cleanup_reply_ redisReply *reply = NULL;
        const char *argv[1] = { "PING" };
        int r;

        r = handshake_command(u, c, what, "PING", 1, argv, &reply, errbuf, errlen);
        if (r < 0 || reply->type != REDIS_REPLY_ERROR)
                return r;
        if (reply_error_errno(reply) == -EACCES)
                return need_password(u, what, reply, errbuf, errlen);
        seterr(u, errbuf, errlen, "PING on %s failed: %s", what, reply->str);
        return -EPROTO;
}

/* Probe with ROLE: 1 master, 0 not master, <0 error.  Also detects NOAUTH when
 * no password is configured and db is 0 (so no SELECT catches it). */
static int check_role(const struct redis_url *u, redisContext *c, const char *what, char *errbuf, size_t errlen) {
        _cleanup_reply_ redisReply *reply = NULL;
        const char *argv[1] = { "ROLE" };
        int r;

        r = handshake_command(u, c, what, "ROLE", 1, argv, &reply, errbuf, errlen);
        if (r < 0)
                return r;
        if (reply->type == REDIS_REPLY_ERROR) {
                r = reply_error_errno(reply);
                seterr(u, errbuf, errlen, "ROLE on %s failed: %s", what, reply->str);
                return r == -EACCES ? -EACCES : -EPROTO;
        }
        if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
            (reply->element[0]->type != REDIS_REPLY_STRING && reply->element[0]->type != REDIS_REPLY_STATUS)) {
                seterr(u, errbuf, errlen, "ROLE on %s returned an unexpected reply", what);
                return -EPROTO;
        }
        if (strcmp(reply->element[0]->str, "master") != 0) {
                seterr(u, errbuf, errlen, "%s is a %s, not a master", what, reply->element[0]->str);
                return 0;
        }
        return 1;
}

/* SENTINEL get-master-addr-by-name, authenticating first when the sentinel
 * itself requires it.  0 with any reply in *ret, or -errno. */
static int sentinel_ask(const struct redis_url *u, redisContext *c, const char *what, redisReply **ret,
                        char *errbuf, size_t errlen) {
        _cleanup_reply_ redisReply *reply = NULL;
        const char *argv[3] = { "SENTINEL", "get-master-addr-by-name", u->service_name };
        const char *label = "SENTINEL get-master-addr-by-name";
        int r;

        r = handshake_command(u, c, what, label, 3, argv, &reply, errbuf, errlen);
        if (r < 0)
                return r;
        if (reply->type == REDIS_REPLY_ERROR && reply_error_errno(reply) == -EACCES && u->password) {
                freeReplyObject(TAKE_PTR(reply));
                r = authenticate(u, c, what, errbuf, errlen);
                if (r >= 0)
                        r = handshake_command(u, c, what, label, 3, argv, &reply, errbuf, errlen);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(reply);
        return 0;
}

/* The master's address from a sentinel's reply. */
static int sentinel_parse(const struct redis_url *u, const char *what, const redisReply *reply, char **ret_host,
                          int *ret_port, char *errbuf, size_t errlen) {
        char *host;
        int port;

        if (reply->type == REDIS_REPLY_ERROR) {
                seterr(u, errbuf, errlen, "SENTINEL get-master-addr-by-name on %s failed: %s", what, reply->str);
                return reply_error_errno(reply) == -EACCES ? -EACCES : -EPROTO;
        }
        if (reply->type == REDIS_REPLY_NIL) {
                seterr(u, errbuf, errlen, "%s does not know a master named '%s'", what, u->service_name);
                return -ENOENT;
        }
        if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 || reply->element[0]->type != REDIS_REPLY_STRING ||
            reply->element[1]->type != REDIS_REPLY_STRING) {
                seterr(u, errbuf, errlen, "%s returned an unexpected reply for master '%s'", what, u->service_name);
                return -EPROTO;
        }
        if (parse_int(reply->element[1]->str, &port) < 0 || port <= 0 || port > 65535) {
                seterr(u, errbuf, errlen, "%s returned an invalid port for master '%s'", what, u->service_name);
                return -EPROTO;
        }
        host = strdup(reply->element[0]->str);
        if (!host)
                return -ENOMEM;
        *ret_host = host;
        *ret_port = port;
        return 0;
}

/* Ask one sentinel for the master's address.  0 with ret_host and ret_port set,
 * -ENOENT when it does not know the master, -errno otherwise. */
static int sentinel_query(const struct redis_url *u, const struct redis_endpoint *s, char **ret_host, int *ret_port,
                          char *errbuf, size_t errlen) {
        _cleanup_redis_ redisContext *c = NULL;
        _cleanup_reply_ redisReply *reply = NULL;
        _cleanup_free_ char *what = NULL;
        int r;

        what = strdup_printf("sentinel %s:%d", s->host, s->port);
        if (!what)
                return -ENOMEM;
        r = open_context(u, s->host, s->port, NULL, &c, errbuf, errlen);
        if (r >= 0)
                r = sentinel_ask(u, c, what, &reply, errbuf, errlen);
        if (r < 0)
                return r;
        return sentinel_parse(u, what, reply, ret_host, ret_port, errbuf, errlen);
}

int redis_resolve_master(const struct redis_url *u, char **ret_host, int *ret_port, char *errbuf, size_t errlen) {
        int r = -EHOSTUNREACH;

        if (!u || !ret_host || !ret_port)
                return -EINVAL;
        if (!u->service_name) {
                char *h;

                if (u->unix_path) {
                        h = strdup(u->unix_path);
                        if (!h)
                                return -ENOMEM;
                        *ret_host = h;
                        *ret_port = 0;
                        return 0;
                }
                if (u->n_hosts == 0) {
                        seterr(u, errbuf, errlen, "no Redis host in the connection string");
                        return -EINVAL;
                }
                h = strdup(u->hosts[0].host);
                if (!h)
                        return -ENOMEM;
                *ret_host = h;
                *ret_port = u->hosts[0].port;
                return 0;
        }
        if (u->n_hosts == 0) {
                seterr(u, errbuf, errlen, "serviceName=%s needs at least one sentinel host", u->service_name);
                return -EINVAL;
        }
        for (size_t i = 0; i < u->n_hosts; i++) {
                r = sentinel_query(u, &u->hosts[i], ret_host, ret_port, errbuf, errlen);
                if (r >= 0 || r == -ENOMEM)
                        return r;
        }
        /* errbuf holds the last sentinel's error; no sentinel knows the master. */
        if (r != -EACCES)
                r = -EHOSTUNREACH;
        return r;
}

/* Connect to host:port (or unix path) as the master: AUTH, optional ROLE check, SELECT. */
static int connect_node(const struct redis_url *u, const char *host, int port, const char *unix_path,
                        bool need_master, redisContext **ret, char *errbuf, size_t errlen) {
        _cleanup_redis_ redisContext *c = NULL;
        _cleanup_free_ char *what = NULL;
        int r;

        what = unix_path ? strdup_printf("unix:%s", unix_path) : strdup_printf("%s:%d", host, port);
        if (!what)
                return -ENOMEM;
        r = open_context(u, host, port, unix_path, &c, errbuf, errlen);
        if (r >= 0)
                r = authenticate(u, c, what, errbuf, errlen);
        if (r >= 0 && need_master && (r = check_role(u, c, what, errbuf, errlen)) == 0)
                r = -EAGAIN;
        if (r >= 0)
                r = select_db(u, c, what, errbuf, errlen);
        if (r >= 0 && !need_master && u->db == 0 && !u->password)
                r = ping(u, c, what, errbuf, errlen);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

static int connect_via_sentinels(const struct redis_url *u, redisContext **ret, char *errbuf, size_t errlen) {
        int r = -EHOSTUNREACH;
        bool auth_failed = false;

        if (u->n_hosts == 0) {
                seterr(u, errbuf, errlen, "serviceName=%s needs at least one sentinel host", u->service_name);
                return -EINVAL;
        }
        /* A sentinel may briefly report a demoted master during a failover: ROLE
         * catches that and we try the next sentinel, then everything once more. */
        for (int pass = 0; pass < SENTINEL_PASSES; pass++) {
                for (size_t i = 0; i < u->n_hosts; i++) {
                        _cleanup_free_ char *host = NULL;
                        int port = 0;

                        if (deadline_passed(u)) {
                                seterr(u, errbuf, errlen, "Failed to reach the Redis master in time through the sentinels");
                                return -ETIMEDOUT;
                        }
                        r = sentinel_query(u, &u->hosts[i], &host, &port, errbuf, errlen);
                        if (r == -ENOMEM)
                                return r;
                        if (r < 0) {
                                if (r == -EACCES)
                                        auth_failed = true;
                                continue;
                        }
                        r = connect_node(u, host, port, NULL, true, ret, errbuf, errlen);
                        if (r >= 0 || r == -EACCES || r == -ENOMEM)
                                return r;
                }
                if (pass + 1 < SENTINEL_PASSES && !deadline_passed(u)) {
                        struct timespec ts = { 0, 100 * 1000 * 1000 };
                        (void) nanosleep(&ts, NULL);
                }
        }
        if (auth_failed)
                return -EACCES;
        /* errbuf holds the last error. */
        return -EHOSTUNREACH;
}

int redis_connect(const struct redis_url *u, uint64_t command_timeout_usec, redisContext **ret, char *errbuf,
                  size_t errlen) {
        _cleanup_redis_ redisContext *c = NULL;
        int r = -EINVAL;

        if (!u || !ret)
                return -EINVAL;
        if (errbuf && errlen > 0)
                errbuf[0] = '\0';
        if (u->ssl && u->unix_path) {
                seterr(u, errbuf, errlen, "ssl=true with a unix socket: TLS runs over TCP only");
                return -EINVAL;
        }

        if (u->service_name)
                r = connect_via_sentinels(u, &c, errbuf, errlen);
        else if (u->unix_path)
                r = connect_node(u, NULL, 0, u->unix_path, false, &c, errbuf, errlen);
        else if (u->n_hosts == 1)
                r = connect_node(u, u->hosts[0].host, u->hosts[0].port, NULL, false, &c, errbuf, errlen);
        else if (u->n_hosts > 1) {
                /* Several endpoints (StackExchange form): use the first master. */
                for (size_t i = 0; i < u->n_hosts; i++) {
                        r = connect_node(u, u->hosts[i].host, u->hosts[i].port, NULL, true, &c, errbuf, errlen);
                        if (r >= 0 || r == -EACCES || r == -ENOMEM || deadline_passed(u))
                                break;
                }
                if (r == -EAGAIN)
                        r = -EHOSTUNREACH; /* all replicas: errbuf says so */
        } else
                seterr(u, errbuf, errlen, "no Redis host in the connection string");
        if (r < 0)
                return r;

        if (redisSetTimeout(c, usec_to_timeval(command_timeout_usec)) != REDIS_OK) {
                seterr(u, errbuf, errlen, "Failed to set the Redis command timeout: %s", c->errstr);
                return -EIO;
        }
        *ret = TAKE_PTR(c);
        return 0;
}

const char *redis_reply_field(const redisReply *reply, const char *name) {
        for (size_t i = 0; reply && reply->type == REDIS_REPLY_ARRAY && i + 1 < reply->elements; i += 2)
                if (reply->element[i]->type == REDIS_REPLY_STRING && strcmp(reply->element[i]->str, name) == 0 &&
                    reply->element[i + 1]->type == REDIS_REPLY_STRING)
                        return reply->element[i + 1]->str;
        return NULL;
}

/* ---- hiredis' synchronous calls, TLS or not ---------------------------------- */

redisReply *redis_ctx_vcommand(redisContext *c, const char *fmt, va_list ap) {
        return tls_redis_vcommand(c, fmt, ap);
}

redisReply *redis_ctx_command(redisContext *c, const char *fmt, ...) {
        redisReply *reply;
        va_list ap;

        va_start(ap, fmt);
        reply = redis_ctx_vcommand(c, fmt, ap);
        va_end(ap);
        return reply;
}

redisReply *redis_ctx_commandargv(redisContext *c, int argc, const char **argv, const size_t *argvlen) {
        return tls_redis_commandargv(c, argc, argv, argvlen);
}

int redis_ctx_get_reply(redisContext *c, void **reply) {
        return tls_redis_get_reply(c, reply);
}

int redis_ctx_buffer_read(redisContext *c) {
        return tls_redis_buffer_read(c);
}

bool redis_ctx_buffered(const redisContext *c) {
        return tls_redis_buffered(c);
}

void redis_ctx_close(redisContext *c) {
        if (c && c->fd >= 0) {
                (void) close(c->fd);
                c->fd = -1; /* redisFree() closes only fds >= 0 */
                if (!c->err) {
                        c->err = REDIS_ERR_EOF;
                        snprintf(c->errstr, sizeof c->errstr, "Connection closed");
                }
        }
}

void redis_ctx_free(redisContext *c) {
        if (c)
                tls_redis_free(c);
}
