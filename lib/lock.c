/* See lock.h.
 *
 * Connections: a lock owns one synchronous hiredis connection for its scripts
 * (shared by the caller and the keeper thread under l->io) and, while waiting,
 * a second one subscribed to the :released channel.  All I/O is bounded: the
 * keeper clamps connect and command timeouts to the time left before it must
 * declare the lock lost. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "backoff.h"
#include "cleanup.h"
#include "duration.h"
#include "keys.h"
#include "lock.h"
#include "log.h"
#include "redis.h"
#include "strutil.h"

#define LOCK_DEFAULT_LEASE_USEC (15 * USEC_PER_SEC)
#define LOCK_DEFAULT_RECHECK_USEC USEC_PER_SEC
#define LOCK_CMD_TIMEOUT_MIN_USEC (50 * USEC_PER_MSEC)
#define LOCK_CMD_TIMEOUT_MAX_USEC (2 * USEC_PER_SEC)
#define LOCK_HOLDER_MAX 256

/* KEYS lock fence holder [waiters]; ARGV token lease_ms holder_desc
 * [waiter_ttl_ms [waiter_entry]].
 * The fence counter never expires.  Every grant raises it to at least the
 * server clock in microseconds, so fencing tokens keep increasing when Redis
 * loses the counter (restart without persistence) or brings back an older one
 * (restart from a stale snapshot, failover to a lagging replica): no Redis runs
 * a million acquisitions of one lock per second.  With the
 * waiters key, a failed attempt queues (or refreshes) waiter_entry (default:
 * the token) until now + waiter_ttl_ms, and a successful one dequeues it.
 * When the lock already carries our token (a release handed it to us and the
 * notice was lost), the lease is renewed and the fence returned. */
const char lock_script_acquire[] =
        "if redis.replicate_commands then redis.replicate_commands() end\n"
        "local entry = ARGV[5] or ARGV[1]\n"
        "if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then\n"
        "  if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
        "    local h = redis.call('GET', KEYS[3])\n"
        "    local f = h and tonumber(string.match(h, 'fence (%d+)$'))\n"
        "    if f then\n"
        "      redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
        "      redis.call('PEXPIRE', KEYS[3], ARGV[2])\n"
        "      if KEYS[4] then redis.call('ZREM', KEYS[4], entry) end\n"
        "      return f\n"
        "    end\n"
        "  end\n"
        "  if KEYS[4] and ARGV[4] then\n"
        "    local now = redis.call('TIME')\n"
        "    local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)\n"
        "    redis.call('ZADD', KEYS[4], string.format('%.0f', ms + tonumber(ARGV[4])), entry)\n"
        "    redis.call('PEXPIRE', KEYS[4], ARGV[4])\n"
        "  end\n"
        "  local t = redis.call('PTTL', KEYS[1])\n"
        "  if t > 0 then return -t end\n"
        "  return 0\n"
        "end\n"
        "if KEYS[4] then redis.call('ZREM', KEYS[4], entry) end\n"
        "local f = redis.call('INCR', KEYS[2])\n"
        "local now = redis.call('TIME')\n"
        "local us = tonumber(now[1]) * 1000000 + tonumber(now[2])\n"
        "if f < us then\n"
        "  f = us\n"
        "  redis.call('SET', KEYS[2], string.format('%.0f', f))\n"
        "end\n"
        "redis.call('SET', KEYS[3], ARGV[3] .. ', fence ' .. string.format('%.0f', f), 'PX', ARGV[2])\n"
        "return f\n";

/* KEYS lock holder; ARGV token lease_ms. */
const char lock_script_renew[] =
        "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end\n"
        "redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
        "redis.call('PEXPIRE', KEYS[2], ARGV[2])\n"
        "return 1\n";

/* KEYS lock holder [waiters [fence]]; ARGV token channel [own_waiter_entry]
 * (own_waiter_entry is dequeued first, whether or not the lock is ours).
 * With the waiters key, only the longest-idle queued waiter still subscribed
 * to its own channel CHANNEL:TOKEN is told (PUBLISH counts receivers; entries
 * of dead waiters are dropped).  With the fence key too, and an entry of the
 * form "TOKEN LEASE_MS DESC", the lock is handed over directly: set for TOKEN
 * with its lease and a new fence, and "handoff FENCE SERVER_TIME_US" published
 * to it (undone when nobody listens).  Otherwise "released" is published.
 * When no queued waiter can be told, everyone is woken on CHANNEL. */
const char lock_script_release[] =
        "if redis.replicate_commands then redis.replicate_commands() end\n"
        "if KEYS[3] and ARGV[3] then redis.call('ZREM', KEYS[3], ARGV[3]) end\n"
        "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end\n"
        "redis.call('DEL', KEYS[1], KEYS[2])\n"
        "if KEYS[3] then\n"
        "  local now = redis.call('TIME')\n"
        "  local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)\n"
        "  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', string.format('%.0f', ms))\n"
        "  for i = 1, 8 do\n"
        "    local head = redis.call('ZRANGE', KEYS[3], 0, 0)[1]\n"
        "    if not head then break end\n"
        "    redis.call('ZREM', KEYS[3], head)\n"
        "    local tok, lease, desc = string.match(head, '^(%x+) (%d+) (.*)$')\n"
        "    if KEYS[4] and tok and tonumber(lease) > 0 then\n"
        "      local f = redis.call('INCR', KEYS[4])\n"
        "      local us = tonumber(now[1]) * 1000000 + tonumber(now[2])\n"
        "      if f < us then\n"
        "        f = us\n"
        "        redis.call('SET', KEYS[4], string.format('%.0f', f))\n"
        "      end\n"
        "      local fs = string.format('%.0f', f)\n"
        "      redis.call('SET', KEYS[1], tok, 'PX', lease)\n"
        "      redis.call('SET', KEYS[2], desc .. ', fence ' .. fs, 'PX', lease)\n"
        "      local msg = 'handoff ' .. fs .. ' ' .. now[1] .. string.format('%06d', tonumber(now[2]))\n"
        "      if redis.call('PUBLISH', ARGV[2] .. ':' .. tok, msg) > 0 then return 1 end\n"
        "      redis.call('DEL', KEYS[1], KEYS[2])\n"
        "    else\n"
        "      local who = tok or head\n"
        "      if redis.call('PUBLISH', ARGV[2] .. ':' .. who, 'released') > 0 then return 1 end\n"
        "    end\n"
        "  end\n"
        "end\n"
        "redis.call('PUBLISH', ARGV[2], 'released')\n"
        "return 1\n";

static char sha_acquire[41], sha_renew[41], sha_release[41];
static pthread_once_t sha_once = PTHREAD_ONCE_INIT;

static void sha1_hex(const char *s, char out[41]) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned mdlen = 0;

        out[0] = '\0';
        if (EVP_Digest(s, strlen(s), md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen != 20)
                return; /* EVALSHA then fails with NOSCRIPT and we fall back to EVAL */
        for (unsigned i = 0; i < mdlen; i++)
                snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void sha_init(void) {
        sha1_hex(lock_script_acquire, sha_acquire);
        sha1_hex(lock_script_renew, sha_renew);
        sha1_hex(lock_script_release, sha_release);
}

struct lock {
        struct redis_url *url; /* private copy, for reconnects */
        char *ns, *name;
        char *key, *key_fence, *key_holder, *channel, *key_waiters, *wake_channel;
        char token[33];
        char holder_desc[LOCK_HOLDER_MAX];
        char waiter_entry[LOCK_HOLDER_MAX + 64]; /* "TOKEN LEASE_MS DESC": what release needs to hand over */
        uint64_t fence;
        uint64_t lease_usec;
        uint64_t cmd_timeout_usec;

        pthread_mutex_t io; /* guards c */
        redisContext *c;

        pthread_mutex_t keeper_lock; /* guards keeper start/stop */
        pthread_t keeper;
        bool keeper_running;
        int stop_fd;
        void (*on_lost)(lock *l, void *userdata);
        void *userdata;

        _Atomic uint64_t last_good_usec; /* monotonic time the last good renewal was sent */
        atomic_bool lost;
};

static void set_err(char *errbuf, size_t errlen, const char *fmt, ...) _printf_(3, 4);
static void set_err(char *errbuf, size_t errlen, const char *fmt, ...) {
        va_list ap;

        if (!errbuf || errlen == 0)
                return;
        va_start(ap, fmt);
        vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
}

static struct redis_url *url_dup(const struct redis_url *u) {
        struct redis_url *c = calloc(1, sizeof *c);

        if (!c)
                return NULL;
        /* Field by field: pointers are duplicated, so redis_url_free() owns them. */
        c->n_hosts = MIN(u->n_hosts, (size_t) REDIS_URL_MAX_HOSTS);
        c->db = u->db;
        c->ssl = u->ssl;
        c->connect_timeout_ms = u->connect_timeout_ms;
        c->abort_connect = u->abort_connect;
        for (size_t i = 0; i < c->n_hosts; i++) {
                c->hosts[i].port = u->hosts[i].port;
                if (u->hosts[i].host && !(c->hosts[i].host = strdup(u->hosts[i].host)))
                        goto oom;
        }
        if ((u->unix_path && !(c->unix_path = strdup(u->unix_path))) ||
            (u->user && !(c->user = strdup(u->user))) ||
            (u->password && !(c->password = strdup(u->password))) ||
            (u->service_name && !(c->service_name = strdup(u->service_name))))
                goto oom;
        return c;
oom:
        redis_url_free(c);
        return NULL;
}

static struct timeval usec_to_timeval(uint64_t usec) {
        return (struct timeval) { .tv_sec = (time_t) (usec / USEC_PER_SEC),
                                  .tv_usec = (suseconds_t) (usec % USEC_PER_SEC) };
}

/* Connect with the connect timeout clamped to limit_usec (UINT64_MAX: the URL's). */
static int connect_bounded(const struct redis_url *url, uint64_t limit_usec, uint64_t cmd_timeout_usec,
                           redisContext **ret, char *errbuf, size_t errlen) {
        struct redis_url tmp = *url; /* shallow: only the timeout and deadline differ */
        int ms = tmp.connect_timeout_ms > 0 ? tmp.connect_timeout_ms : 5000;

        if (limit_usec != UINT64_MAX) {
                uint64_t limit_ms = (limit_usec + 999) / 1000;
                if (limit_ms == 0)
                        return -ETIMEDOUT;
                if (limit_ms < (uint64_t) ms)
                        ms = (int) limit_ms;
                /* Bound the whole connect, not each step: through Sentinel one connect
                 * tries every sentinel twice, then the master's handshake. */
                tmp.deadline_usec = now_usec() + limit_usec;
        }
        tmp.connect_timeout_ms = ms;
        return redis_connect(&tmp, MIN(cmd_timeout_usec, limit_usec), ret, errbuf, errlen);
}

static int context_errno(const redisContext *c) {
        switch (c->err) {
        case REDIS_ERR_EOF:
                return -ECONNRESET;
        case REDIS_ERR_IO:
                return errno == EAGAIN || errno == EWOULDBLOCK || errno == 0 ? -ETIMEDOUT : -ECONNRESET;
        case REDIS_ERR_OOM:
                return -ENOMEM;
        default:
                return -EIO;
        }
}

static bool is_connection_error(int r) {
        return r < 0 && r != -EPROTO && r != -ENOLCK && r != -ENOMEM && r != -EINVAL;
}

/* Parse a TIME reply into microseconds. */
static int time_reply_usec(const redisReply *t, uint64_t *ret) {
        uint64_t sec, usec;

        if (!t || t->type != REDIS_REPLY_ARRAY || t->elements != 2 || t->element[0]->type != REDIS_REPLY_STRING ||
            t->element[1]->type != REDIS_REPLY_STRING || parse_uint64(t->element[0]->str, &sec) < 0 ||
            parse_uint64(t->element[1]->str, &usec) < 0)
                return -EPROTO;
        *ret = sec * USEC_PER_SEC + usec;
        return 0;
}

/* A sample of the server clock: server_usec was read after local_usec
 * (monotonic) was taken, so local_usec + (T - server_usec) is never later
 * than the local time of a later server time T. */
struct clock_sample {
        uint64_t local_usec;
        uint64_t server_usec;
        bool valid;
};

/* EVALSHA, falling back to EVAL on NOSCRIPT.  I/O errors leave c->err set.
 * With clk, a TIME is pipelined in front of the script (no extra round trip). */
static int eval_script_clock(redisContext *c, const char *script, const char *sha, int nkeys,
                             const char *const *keys, int nargs, const char *const *args, redisReply **ret,
                             struct clock_sample *clk, char *errbuf, size_t errlen) {
        const char *argv[16];
        char nk[16];
        int argc = 0;

        if (3 + nkeys + nargs > (int) ELEMENTSOF(argv))
                return -EINVAL;
        snprintf(nk, sizeof nk, "%d", nkeys);
        argv[argc++] = "EVALSHA";
        argv[argc++] = sha;
        argv[argc++] = nk;
        for (int i = 0; i < nkeys; i++)
                argv[argc++] = keys[i];
        for (int i = 0; i < nargs; i++)
                argv[argc++] = args[i];

        for (int attempt = 0; attempt < 2; attempt++) {
                _cleanup_reply_ redisReply *reply = NULL;

                if (attempt == 1) {
                        argv[0] = "EVAL";
                        argv[1] = script;
                }
                if (attempt == 0 && clk) {
                        _cleanup_reply_ redisReply *t = NULL;
                        uint64_t local = now_usec(), server;

                        /* On any failure reply stays NULL and c->err says why. */
                        if (redisAppendCommand(c, "TIME") == REDIS_OK &&
                            redisAppendCommandArgv(c, argc, argv, NULL) == REDIS_OK &&
                            redisGetReply(c, (void **) &t) == REDIS_OK &&
                            redisGetReply(c, (void **) &reply) == REDIS_OK && reply &&
                            time_reply_usec(t, &server) >= 0)
                                *clk = (struct clock_sample) { .local_usec = local, .server_usec = server, .valid = true };
                } else
                        reply = redisCommandArgv(c, argc, argv, NULL);
                if (!reply) {
                        int r = context_errno(c);
                        set_err(errbuf, errlen, "Redis: %s", c->errstr[0] ? c->errstr : strerror(-r));
                        return r;
                }
                if (reply->type == REDIS_REPLY_ERROR) {
                        if (attempt == 0 && strncmp(reply->str, "NOSCRIPT", 8) == 0)
                                continue;
                        set_err(errbuf, errlen, "Redis script error: %s", reply->str);
                        return -EPROTO;
                }
                if (reply->type != REDIS_REPLY_INTEGER) {
                        set_err(errbuf, errlen, "Redis script returned an unexpected reply (type %d)", reply->type);
                        return -EPROTO;
                }
                *ret = TAKE_PTR(reply);
                return 0;
        }
        set_err(errbuf, errlen, "Redis refused to load the lock script");
        return -EPROTO;
}

static int eval_script(redisContext *c, const char *script, const char *sha, int nkeys, const char *const *keys,
                       int nargs, const char *const *args, redisReply **ret, char *errbuf, size_t errlen) {
        return eval_script_clock(c, script, sha, nkeys, keys, nargs, args, ret, NULL, errbuf, errlen);
}

static lock *lock_alloc(const struct redis_url *u, const char *ns, const char *name, uint64_t lease_usec) {
        lock *l = calloc(1, sizeof *l);
        char host[128] = "localhost";

        if (!l)
                return NULL;
        l->stop_fd = -1;
        pthread_mutex_init(&l->io, NULL);
        pthread_mutex_init(&l->keeper_lock, NULL);
        atomic_init(&l->last_good_usec, 0);
        atomic_init(&l->lost, false);
        l->lease_usec = lease_usec;
        l->cmd_timeout_usec = MAX(MIN(lease_usec / 4, LOCK_CMD_TIMEOUT_MAX_USEC), LOCK_CMD_TIMEOUT_MIN_USEC);

        l->url = url_dup(u);
        l->ns = strdup(ns);
        l->name = strdup(name);
        l->key = key_lock(ns, name);
        l->key_fence = key_lock_fence(ns, name);
        l->key_holder = key_lock_holder(ns, name);
        l->channel = key_lock_channel(ns, name);
        l->key_waiters = key_lock_waiters(ns, name);
        if (!l->url || !l->ns || !l->name || !l->key || !l->key_fence || !l->key_holder || !l->channel ||
            !l->key_waiters || random_hex(l->token, 16) < 0)
                return lock_free(l);
        l->wake_channel = key_lock_wake(ns, name, l->token);
        if (!l->wake_channel)
                return lock_free(l);

        (void) gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = '\0';
        snprintf(l->holder_desc, sizeof l->holder_desc, "%s pid %ld", host, (long) getpid());
        snprintf(l->waiter_entry, sizeof l->waiter_entry, "%s %llu %s", l->token,
                 (unsigned long long) (lease_usec / USEC_PER_MSEC), l->holder_desc);
        return l;
}

/* One acquisition attempt.  *ret_fence > 0 when taken; else 0 and *ret_pttl_ms
 * is the holder's remaining lease (0 when unknown).  queue_ttl_usec > 0 queues
 * us as a waiter for that long when the lock is held. */
static int try_acquire(lock *l, uint64_t queue_ttl_usec, struct clock_sample *clk, uint64_t *ret_fence,
                       uint64_t *ret_pttl_ms, char *errbuf, size_t errlen) {
        _cleanup_reply_ redisReply *reply = NULL;
        char lease_ms[32], ttl_ms[32];
        const char *keys[] = { l->key, l->key_fence, l->key_holder, l->key_waiters };
        const char *args[] = { l->token, lease_ms, l->holder_desc, ttl_ms, l->waiter_entry };
        bool queue = queue_ttl_usec > 0;
        int r;

        snprintf(lease_ms, sizeof lease_ms, "%llu", (unsigned long long) (l->lease_usec / USEC_PER_MSEC));
        snprintf(ttl_ms, sizeof ttl_ms, "%llu", (unsigned long long) (queue_ttl_usec / USEC_PER_MSEC));
        r = eval_script_clock(l->c, lock_script_acquire, sha_acquire, queue ? 4 : 3, keys, queue ? 5 : 3, args,
                              &reply, queue ? clk : NULL, errbuf, errlen);
        if (r < 0)
                return r;
        if (reply->integer > 0) {
                *ret_fence = (uint64_t) reply->integer;
                *ret_pttl_ms = 0;
        } else {
                *ret_fence = 0;
                *ret_pttl_ms = (uint64_t) -reply->integer;
        }
        return 0;
}

/* "host pid N, fence F, expires in Xms" from an open connection; NULL in *ret when free. */
static int describe_holder(redisContext *c, const char *key, const char *key_holder, char **ret) {
        _cleanup_reply_ redisReply *desc = NULL, *pttl = NULL;
        char ttl[64];

        pttl = redisCommand(c, "PTTL %s", key);
        if (!pttl)
                return context_errno(c);
        if (pttl->type != REDIS_REPLY_INTEGER)
                return -EPROTO;
        if (pttl->integer == -2) {
                *ret = NULL;
                return 0;
        }
        desc = redisCommand(c, "GET %s", key_holder);
        if (!desc)
                return context_errno(c);
        if (pttl->integer >= 0)
                snprintf(ttl, sizeof ttl, "expires in %lldms", pttl->integer);
        else
                snprintf(ttl, sizeof ttl, "with no expiry");
        if (desc->type == REDIS_REPLY_STRING)
                *ret = strdup_printf("%.*s, %s", (int) MIN(desc->len, (size_t) LOCK_HOLDER_MAX), desc->str, ttl);
        else
                *ret = strdup_printf("an unknown holder (not a coord lock client), %s", ttl);
        return *ret ? 0 : -ENOMEM;
}

/* What is left of a wait for connecting: UINT64_MAX (the URL's connect timeout)
 * for "try once" (wait 0) and for waiting forever. */
static uint64_t wait_left(uint64_t wait, uint64_t deadline) {
        if (wait == 0 || deadline == UINT64_MAX)
                return UINT64_MAX;
        return deadline - MIN(deadline, now_usec());
}

/* The waiter's subscription to the :released channel, connected within limit_usec. */
static int sub_open(lock *l, uint64_t limit_usec, redisContext **ret) {
        _cleanup_redis_ redisContext *c = NULL;
        _cleanup_reply_ redisReply *reply = NULL;
        char err[256];
        int r;

        r = connect_bounded(l->url, limit_usec, l->cmd_timeout_usec, &c, err, sizeof err);
        if (r < 0)
                return r;
        /* Our own channel (release wakes one queued waiter) and the shared one
         * (releases by clients that do not queue, and the fallback). */
        reply = redisCommand(c, "SUBSCRIBE %s %s", l->wake_channel, l->channel);
        if (!reply)
                return context_errno(c);
        if (reply->type != REDIS_REPLY_ARRAY)
                return -EPROTO;
        freeReplyObject(TAKE_PTR(reply));
        if (redisGetReply(c, (void **) &reply) != REDIS_OK || !reply)
                return context_errno(c);
        if (reply->type != REDIS_REPLY_ARRAY)
                return -EPROTO;
        *ret = TAKE_PTR(c);
        return 0;
}

/* A "handoff FENCE SERVER_USEC" message on our own channel. */
static bool parse_handoff(const redisReply *m, const char *wake_channel, uint64_t *ret_fence, uint64_t *ret_server) {
        char buf[96], *sp;
        uint64_t f, t;

        if (m->type != REDIS_REPLY_ARRAY || m->elements != 3 || m->element[1]->type != REDIS_REPLY_STRING ||
            m->element[2]->type != REDIS_REPLY_STRING || strcmp(m->element[1]->str, wake_channel) != 0 ||
            m->element[2]->len >= sizeof buf || strncmp(m->element[2]->str, "handoff ", 8) != 0)
                return false;
        memcpy(buf, m->element[2]->str + 8, m->element[2]->len - 8);
        buf[m->element[2]->len - 8] = '\0';
        sp = strchr(buf, ' ');
        if (!sp)
                return false;
        *sp = '\0';
        if (parse_uint64(buf, &f) < 0 || parse_uint64(sp + 1, &t) < 0 || f == 0)
                return false;
        *ret_fence = f;
        *ret_server = t;
        return true;
}

/* Wait for a message on sub until the monotonic time until.  2 the lock was
 * handed to us (*ret_fence, *ret_server_usec set), 1 woken by a message, 0
 * timed out, -errno when the subscription broke. */
static int sub_wait(redisContext *sub, const char *wake_channel, uint64_t until, uint64_t *ret_fence,
                    uint64_t *ret_server_usec) {
        bool woken = false, handed = false;

        for (;;) {
                struct pollfd p = { .fd = sub->fd, .events = POLLIN };
                uint64_t now;
                int n;

                for (;;) {
                        void *reply = NULL;

                        if (redisGetReplyFromReader(sub, &reply) != REDIS_OK)
                                return -EPROTO;
                        if (!reply)
                                break;
                        woken = true; /* only messages arrive on these channels */
                        if (!handed && parse_handoff(reply, wake_channel, ret_fence, ret_server_usec))
                                handed = true;
                        freeReplyObject(reply);
                }
                if (handed)
                        return 2;
                if (woken)
                        return 1;

                now = now_usec();
                if (now >= until)
                        return 0;
                n = poll(&p, 1, (int) MIN((until - now + 999) / 1000, (uint64_t) INT_MAX));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return 0;
                if (redisBufferRead(sub) != REDIS_OK)
                        return context_errno(sub);
        }
}

static int release_token(lock *l, char *errbuf, size_t errlen);

static void sleep_until(uint64_t until) {
        for (;;) {
                uint64_t now = now_usec();
                if (now >= until)
                        return;
                (void) poll(NULL, 0, (int) MIN((until - now + 999) / 1000, (uint64_t) INT_MAX));
        }
}

int lock_acquire(const struct redis_url *u, const char *name, const struct lock_options *opts, lock **ret,
                 char *errbuf, size_t errlen) {
        static const struct lock_options defaults = { 0 };
        _cleanup_redis_ redisContext *sub = NULL;
        lock *l = NULL;
        const char *ns;
        uint64_t lease, recheck, wait, deadline, start, last_pttl_usec = 0, quarantine_until = 0;
        bool seen_held = false, check_data_loss = false, warned = false;
        struct clock_sample clk = { 0 };
        struct backoff bo;
        int r;

        if (!opts)
                opts = &defaults;
        ns = opts->ns ? opts->ns : namespace_default();
        if (!name_is_valid(name)) {
                set_err(errbuf, errlen, "invalid lock name '%s': use 1-64 characters from [A-Za-z0-9._-]",
                        name ? name : "(null)");
                return -EINVAL;
        }
        if (!name_is_valid(ns)) {
                set_err(errbuf, errlen, "invalid namespace '%s': use 1-64 characters from [A-Za-z0-9._-]", ns);
                return -EINVAL;
        }
        lease = opts->lease_usec ? opts->lease_usec : LOCK_DEFAULT_LEASE_USEC;
        if (lease < 10 * USEC_PER_MSEC) {
                set_err(errbuf, errlen, "lease must be at least 10ms");
                return -EINVAL;
        }
        recheck = opts->recheck_usec ? opts->recheck_usec : LOCK_DEFAULT_RECHECK_USEC;
        wait = opts->wait_timeout_usec;

        pthread_once(&sha_once, sha_init);
        l = lock_alloc(u, ns, name, lease);
        if (!l) {
                set_err(errbuf, errlen, "out of memory");
                return -ENOMEM;
        }

        start = now_usec();
        deadline = wait == UINT64_MAX || wait > UINT64_MAX - start ? UINT64_MAX : start + wait;

        /* --wait-timeout bounds the connects too. */
        r = connect_bounded(l->url, wait_left(wait, deadline), l->cmd_timeout_usec, &l->c, errbuf, errlen);
        if (r < 0)
                goto fail;
        /* Subscribe before the first attempt: a release between a failed
         * attempt and the subscription would otherwise go unheard. */
        if (wait > 0 && sub_open(l, wait_left(wait, deadline), &sub) < 0)
                log_debug("lock %s: could not subscribe to release notices, re-checking every %llums", name,
                          (unsigned long long) (recheck / USEC_PER_MSEC));

        backoff_init(&bo, 50 * USEC_PER_MSEC, MIN(recheck, 2 * USEC_PER_SEC));
        for (;;) {
                uint64_t fence = 0, pttl_ms = 0, t0, now, next;

                if (!l->c) {
                        r = connect_bounded(l->url, deadline == UINT64_MAX ? UINT64_MAX : deadline - MIN(deadline, now_usec()),
                                            l->cmd_timeout_usec, &l->c, errbuf, errlen);
                        if (r < 0) {
                                if (!warned)
                                        log_warning("lock %s: Redis unreachable while waiting, retrying: %s", name,
                                                    errbuf ? errbuf : strerror(-r));
                                warned = true;
                                if (now_usec() >= deadline)
                                        goto fail;
                                sleep_until(MIN(now_usec() + backoff_next(&bo), deadline));
                                continue;
                        }
                        check_data_loss = true;
                        clk.valid = false; /* perhaps another server now */
                }
                if (wait > 0 && !sub && sub_open(l, wait_left(wait, deadline), &sub) >= 0)
                        check_data_loss = true;

                if (check_data_loss && seen_held) {
                        _cleanup_reply_ redisReply *ex = NULL;

                        /* We saw the lock held, then lost Redis.  If the fence
                         * counter is gone, Redis restarted without its data and
                         * the holder may not have noticed yet: wait out its lease
                         * (ours, or what it had left) rather than take the lock
                         * from under it. */
                        ex = redisCommand(l->c, "EXISTS %s", l->key_fence);
                        if (!ex) {
                                redisFree(TAKE_PTR(l->c));
                                continue;
                        }
                        if (ex->type == REDIS_REPLY_INTEGER && ex->integer == 0) {
                                quarantine_until = now_usec() + MAX(lease, last_pttl_usec);
                                log_warning("lock %s: Redis lost its data while the lock was held; waiting %llums for "
                                            "the previous holder to notice",
                                            name, (unsigned long long) (MAX(lease, last_pttl_usec) / USEC_PER_MSEC));
                        }
                }
                check_data_loss = false;

                now = now_usec();
                if (now < quarantine_until) {
                        if (now >= deadline)
                                goto timeout;
                        sleep_until(MIN(quarantine_until, deadline));
                        continue;
                }

                t0 = now_usec();
                /* Queue only when someone listens on our channel. */
                r = try_acquire(l, sub ? 3 * recheck + USEC_PER_SEC : 0, &clk, &fence, &pttl_ms, errbuf, errlen);
                if (r < 0) {
                        if (!is_connection_error(r))
                                goto fail;
                        redisFree(TAKE_PTR(l->c));
                        if (wait == 0)
                                goto fail;
                        continue;
                }
                if (warned) {
                        log_info("lock %s: Redis reachable again", name);
                        warned = false;
                }
                backoff_reset(&bo);
                if (fence > 0) {
                        l->fence = fence;
                        atomic_store(&l->last_good_usec, t0);
                        break;
                }
                seen_held = true;
                last_pttl_usec = pttl_ms * USEC_PER_MSEC;

                now = now_usec();
                if (wait == 0 || now >= deadline)
                        goto timeout;
                next = now + recheck;
                if (pttl_ms > 0)
                        next = MIN(next, now + last_pttl_usec + USEC_PER_MSEC);
                next = MIN(next, deadline);
                if (sub) {
                        uint64_t handed_fence = 0, handed_at = 0;

                        r = sub_wait(sub, l->wake_channel, next, &handed_fence, &handed_at);
                        if (r == 2) {
                                /* The releaser gave us the lock.  Its lease
                                 * started at server time handed_at; map that
                                 * to our clock conservatively (never later
                                 * than it really was). */
                                int64_t granted = clk.valid ? (int64_t) clk.local_usec +
                                                                      ((int64_t) handed_at - (int64_t) clk.server_usec)
                                                            : -1;

                                if (granted > 0 && now_usec() < (uint64_t) granted + lease - lease / 4) {
                                        l->fence = handed_fence;
                                        atomic_store(&l->last_good_usec, (uint64_t) granted);
                                        break;
                                }
                                /* Too late (we were stopped?) or no clock
                                 * sample: pass it on, keep waiting. */
                                log_warning("lock %s: the lock was handed to us while we could not run; passing it on",
                                            name);
                                (void) release_token(l, NULL, 0);
                        } else if (r < 0) {
                                redisFree(TAKE_PTR(sub));
                                /* Do not spin when Redis is gone: the command
                                 * connection notices on the next attempt. */
                        }
                } else
                        sleep_until(next);
        }

        *ret = l;
        return 0;

timeout: {
        _cleanup_free_ char *holder = NULL;
        char d[DURATION_MAX];

        if (l->c && describe_holder(l->c, l->key, l->key_holder, &holder) >= 0 && holder)
                set_err(errbuf, errlen, "timed out after %s waiting for lock %s, held by %s",
                        duration_format(wait, d, sizeof d), name, holder);
        else
                set_err(errbuf, errlen, "timed out after %s waiting for lock %s", duration_format(wait, d, sizeof d),
                        name);
        /* Leave the queue; and should a release have just handed us the lock
         * (notice unread), pass it on: compare-and-set, harmless otherwise. */
        if (l->c && wait > 0)
                (void) release_token(l, NULL, 0);
        lock_free(l);
        return -ETIMEDOUT;
}
fail:
        /* -ETIMEDOUT means the wait expired; a connection that timed out is
         * "could not reach Redis" to callers. */
        if (r == -ETIMEDOUT)
                r = -ENOTCONN;
        lock_free(l);
        return r;
}

uint64_t lock_fence(const lock *l) {
        return l->fence;
}

const char *lock_name(const lock *l) {
        return l->name;
}

/* Renew, with all I/O finished by the monotonic time deadline.  Caller holds l->io. */
static int renew_locked(lock *l, uint64_t deadline, char *errbuf, size_t errlen) {
        char lease_ms[32];
        const char *keys[] = { l->key, l->key_holder };
        const char *args[] = { l->token, lease_ms };
        int r = -ETIMEDOUT;

        if (atomic_load(&l->lost))
                return -ENOLCK;
        snprintf(lease_ms, sizeof lease_ms, "%llu", (unsigned long long) (l->lease_usec / USEC_PER_MSEC));

        /* One reconnect: the first attempt may hit a connection Redis closed. */
        for (int attempt = 0; attempt < 2; attempt++) {
                _cleanup_reply_ redisReply *reply = NULL;
                uint64_t now = now_usec();

                if (now >= deadline)
                        return -ETIMEDOUT;
                if (!l->c) {
                        r = connect_bounded(l->url, deadline == UINT64_MAX ? UINT64_MAX : deadline - now,
                                            l->cmd_timeout_usec, &l->c, errbuf, errlen);
                        if (r < 0)
                                return r;
                        now = now_usec();
                        if (now >= deadline)
                                return -ETIMEDOUT;
                }
                (void) redisSetTimeout(l->c, usec_to_timeval(MIN(l->cmd_timeout_usec, deadline - now)));
                r = eval_script(l->c, lock_script_renew, sha_renew, 2, keys, 2, args, &reply, errbuf, errlen);
                if (r == 0) {
                        if (reply->integer != 1) {
                                atomic_store(&l->lost, true);
                                set_err(errbuf, errlen, "lock %s is no longer ours", l->name);
                                return -ENOLCK;
                        }
                        return 0;
                }
                if (!is_connection_error(r))
                        return r;
                redisFree(TAKE_PTR(l->c));
        }
        return r;
}

int lock_renew(lock *l) {
        uint64_t t0 = now_usec();
        int r;

        pthread_mutex_lock(&l->io);
        r = renew_locked(l, UINT64_MAX, NULL, 0);
        pthread_mutex_unlock(&l->io);
        if (r == 0)
                atomic_store(&l->last_good_usec, t0);
        return r;
}

static uint64_t lost_deadline(const lock *l) {
        return atomic_load(&l->last_good_usec) + l->lease_usec - l->lease_usec / 4;
}

bool lock_is_lost(const lock *l) {
        return atomic_load(&l->lost) || now_usec() >= lost_deadline(l);
}

/* Run the release script for our token (reconnecting once).  The caller has
 * l->c to itself.  0 released, -ENOLCK not ours, -errno. */
static int release_token(lock *l, char *errbuf, size_t errlen) {
        const char *keys[] = { l->key, l->key_holder, l->key_waiters, l->key_fence };
        const char *args[] = { l->token, l->channel, l->waiter_entry };
        int r = -EIO;

        pthread_once(&sha_once, sha_init);
        for (int attempt = 0; attempt < 2; attempt++) {
                _cleanup_reply_ redisReply *reply = NULL;

                if (!l->c) {
                        r = connect_bounded(l->url, UINT64_MAX, l->cmd_timeout_usec, &l->c, errbuf, errlen);
                        if (r < 0)
                                break;
                }
                (void) redisSetTimeout(l->c, usec_to_timeval(l->cmd_timeout_usec));
                r = eval_script(l->c, lock_script_release, sha_release, 4, keys, 3, args, &reply, errbuf, errlen);
                if (r == 0) {
                        r = reply->integer == 1 ? 0 : -ENOLCK;
                        break;
                }
                if (!is_connection_error(r))
                        break;
                redisFree(TAKE_PTR(l->c));
        }
        return r;
}

int lock_release(lock *l) {
        int r;

        lock_keeper_stop(l);
        pthread_mutex_lock(&l->io);
        /* Release even when we believe the lock lost: the compare-and-set on
         * the token makes it harmless, and it frees a lock we still hold after
         * a renewal outage. */
        r = release_token(l, NULL, 0);
        atomic_store(&l->lost, true); /* never ours again */
        pthread_mutex_unlock(&l->io);
        return r;
}

static void *keeper_main(void *p) {
        lock *l = p;
        uint64_t interval = l->lease_usec / 3, next;
        struct backoff bo;
        bool warned = false;

        backoff_init(&bo, MIN(50 * USEC_PER_MSEC, interval), MIN(USEC_PER_SEC, interval));
        next = atomic_load(&l->last_good_usec) + interval;
        for (;;) {
                uint64_t now = now_usec(), deadline = lost_deadline(l), t0;
                char err[256] = "";
                int r;

                if (atomic_load(&l->lost) || now >= deadline) {
                        log_warning("lock %s: lost (no renewal within %llums)", l->name,
                                    (unsigned long long) ((l->lease_usec - l->lease_usec / 4) / USEC_PER_MSEC));
                        break;
                }
                if (now < next) {
                        struct pollfd pfd = { .fd = l->stop_fd, .events = POLLIN };
                        uint64_t until = MIN(next, deadline);

                        r = poll(&pfd, 1, (int) MIN((until - now + 999) / 1000, (uint64_t) INT_MAX));
                        if (r > 0)
                                return NULL; /* stopped */
                        continue;
                }

                t0 = now_usec();
                pthread_mutex_lock(&l->io);
                r = renew_locked(l, deadline, err, sizeof err);
                pthread_mutex_unlock(&l->io);
                if (r == 0) {
                        /* Only t0 is safe: the server's new lease started after it. */
                        atomic_store(&l->last_good_usec, t0);
                        next = t0 + interval;
                        backoff_reset(&bo);
                        if (warned)
                                log_info("lock %s: renewed again", l->name);
                        warned = false;
                        continue;
                }
                if (r == -ENOLCK) {
                        log_warning("lock %s: lost: the lock is no longer ours (expired or taken over)", l->name);
                        break;
                }
                if (!warned)
                        log_warning("lock %s: renewal failed, retrying: %s", l->name, err[0] ? err : strerror(-r));
                warned = true;
                next = now_usec() + backoff_next(&bo);
        }

        atomic_store(&l->lost, true);
        if (l->on_lost)
                l->on_lost(l, l->userdata);
        return NULL;
}

int lock_keeper_start(lock *l, void (*on_lost)(lock *l, void *userdata), void *userdata) {
        sigset_t all, old;
        int r;

        pthread_mutex_lock(&l->keeper_lock);
        if (l->keeper_running) {
                pthread_mutex_unlock(&l->keeper_lock);
                return -EBUSY;
        }
        if (l->stop_fd < 0) {
                l->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
                if (l->stop_fd < 0) {
                        r = -errno;
                        pthread_mutex_unlock(&l->keeper_lock);
                        return r;
                }
        }
        l->on_lost = on_lost;
        l->userdata = userdata;
        /* The keeper takes no signals: they belong to the program's own loop. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        r = -pthread_create(&l->keeper, NULL, keeper_main, l);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r == 0)
                l->keeper_running = true;
        pthread_mutex_unlock(&l->keeper_lock);
        return r;
}

void lock_keeper_stop(lock *l) {
        uint64_t one = 1;

        if (!l)
                return;
        pthread_mutex_lock(&l->keeper_lock);
        if (l->keeper_running) {
                if (pthread_equal(pthread_self(), l->keeper)) {
                        /* Called from on_lost: the thread ends by itself. */
                        (void) pthread_detach(l->keeper);
                } else {
                        (void) write(l->stop_fd, &one, sizeof one);
                        (void) pthread_join(l->keeper, NULL);
                        (void) read(l->stop_fd, &one, sizeof one);
                }
                l->keeper_running = false;
        }
        pthread_mutex_unlock(&l->keeper_lock);
}

lock *lock_free(lock *l) {
        if (!l)
                return NULL;
        lock_keeper_stop(l);
        if (l->c)
                redisFree(l->c);
        if (l->stop_fd >= 0)
                close(l->stop_fd);
        pthread_mutex_destroy(&l->io);
        pthread_mutex_destroy(&l->keeper_lock);
        redis_url_free(l->url);
        free(l->ns);
        free(l->name);
        free(l->key);
        free(l->key_fence);
        free(l->key_holder);
        free(l->channel);
        free(l->key_waiters);
        free(l->wake_channel);
        free(l);
        return NULL;
}

int lock_describe_holder(const struct redis_url *u, const char *ns, const char *name, char **ret) {
        _cleanup_redis_ redisContext *c = NULL;
        _cleanup_free_ char *key = NULL, *key_holder = NULL;
        char *desc = NULL;
        int r;

        if (!ns)
                ns = namespace_default();
        if (!name_is_valid(name) || !name_is_valid(ns))
                return -EINVAL;
        key = key_lock(ns, name);
        key_holder = key_lock_holder(ns, name);
        if (!key || !key_holder)
                return -ENOMEM;
        r = redis_connect(u, LOCK_CMD_TIMEOUT_MAX_USEC, &c, NULL, 0);
        if (r < 0)
                return r;
        r = describe_holder(c, key, key_holder, &desc);
        if (r < 0)
                return r;
        *ret = desc;
        return 0;
}
