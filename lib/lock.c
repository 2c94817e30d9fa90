/* See lock.h.
 *
 * Connections: a lock owns one synchronous hiredis connection for its scripts
 * (shared by the caller and the keeper thread under l->io) and, while waiting,
 * a second one subscribed to the :released channel.  All I/O is bounded: the
 * keeper clamps connect and command timeouts to the time left before it must
 * declare the lock lost. */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
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
#include "duration.h"
#include "keys.h"
#include "lock.h"
#include "log.h"
#include "macro.h"
#include "parse-util.h"
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
        redisContext *sub_spent; /* the wait's subscription, closed off the acquire path */

        pthread_mutex_t keeper_lock; /* guards keeper start/stop */
        pthread_t keeper;
        bool keeper_running;
        int stop_fd;
        void (*on_lost)(struct lock *l, void *userdata);
        void *userdata;

        _Atomic uint64_t last_good_usec; /* monotonic time the last good renewal was sent */
        atomic_bool lost;
};

static struct timeval usec_to_timeval(uint64_t usec) {
        return (struct timeval) { .tv_sec = (time_t) (usec / USEC_PER_SEC),
                                  .tv_usec = (suseconds_t) (usec % USEC_PER_SEC) };
}

/* Connect with the connect timeout clamped to limit_usec (UINT64_MAX: the URL's). */
static int connect_bounded(const struct redis_url *url, uint64_t limit_usec, uint64_t cmd_timeout_usec,
                           redisContext **ret, char *errbuf, size_t errlen) {
        struct redis_url tmp = *url; /* shallow: only the timeout and deadline differ */
        int ms = redis_url_connect_timeout_ms(url);

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

/* Worth a reconnect and another try.  Not: -EPROTO (a reply that is not what the
 * scripts promise, or hiredis' protocol error: reconnecting cures neither),
 * -ENOLCK (not ours), -ENOMEM, -EINVAL. */
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

        assert(3 + nkeys + nargs <= (int) ELEMENTSOF(argv));
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
                            redis_ctx_get_reply(c, (void **) &t) == REDIS_OK &&
                            redis_ctx_get_reply(c, (void **) &reply) == REDIS_OK && reply &&
                            time_reply_usec(t, &server) >= 0)
                                *clk = (struct clock_sample) { .local_usec = local, .server_usec = server, .valid = true };
                } else
                        reply = redis_ctx_commandargv(c, argc, argv, NULL);
                if (!reply) {
                        int r = redis_context_errno(c, errno);
                        errbuf_printf(errbuf, errlen, "Redis: %s", c->errstr[0] ? c->errstr : strerror(-r));
                        return r;
                }
                if (reply->type == REDIS_REPLY_ERROR) {
                        if (attempt == 0 && strncmp(reply->str, "NOSCRIPT", 8) == 0)
                                continue;
                        errbuf_printf(errbuf, errlen, "Redis script error: %s", reply->str);
                        return -EPROTO;
                }
                if (reply->type != REDIS_REPLY_INTEGER) {
                        errbuf_printf(errbuf, errlen, "Redis script returned an unexpected reply (type %d)",
                                      reply->type);
                        return -EPROTO;
                }
                *ret = TAKE_PTR(reply);
                return 0;
        }
        errbuf_printf(errbuf, errlen, "Redis refused to load the lock script");
        return -EPROTO;
}

static int eval_script(redisContext *c, const char *script, const char *sha, int nkeys, const char *const *keys,
                       int nargs, const char *const *args, redisReply **ret, char *errbuf, size_t errlen) {
        return eval_script_clock(c, script, sha, nkeys, keys, nargs, args, ret, NULL, errbuf, errlen);
}

static struct lock *lock_alloc(const struct redis_url *u, const char *ns, const char *name, uint64_t lease_usec) {
        struct lock *l = calloc(1, sizeof *l);
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

        l->url = redis_url_dup(u);
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
static int try_acquire(struct lock *l, uint64_t queue_ttl_usec, struct clock_sample *clk, uint64_t *ret_fence,
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

        pttl = redis_ctx_command(c, "PTTL %s", key);
        if (!pttl)
                return redis_context_errno(c, errno);
        if (pttl->type != REDIS_REPLY_INTEGER)
                return -EPROTO;
        if (pttl->integer == -2) {
                *ret = NULL;
                return 0;
        }
        desc = redis_ctx_command(c, "GET %s", key_holder);
        if (!desc)
                return redis_context_errno(c, errno);
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
static int sub_open(struct lock *l, uint64_t limit_usec, redisContext **ret) {
        _cleanup_redis_ redisContext *c = NULL;
        _cleanup_reply_ redisReply *reply = NULL;
        char err[256];
        int r;

        r = connect_bounded(l->url, limit_usec, l->cmd_timeout_usec, &c, err, sizeof err);
        if (r < 0)
                return r;
        /* Our own channel (release wakes one queued waiter) and the shared one
         * (releases by clients that do not queue, and the fallback). */
        reply = redis_ctx_command(c, "SUBSCRIBE %s %s", l->wake_channel, l->channel);
        if (!reply)
                return redis_context_errno(c, errno);
        if (reply->type != REDIS_REPLY_ARRAY)
                return -EPROTO;
        freeReplyObject(TAKE_PTR(reply));
        if (redis_ctx_get_reply(c, (void **) &reply) != REDIS_OK || !reply)
                return redis_context_errno(c, errno);
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

/* What a waiter's subscription brought (sub_wait()). */
enum lock_wake {
        LOCK_WAKE_NONE,     /* nothing before the deadline */
        LOCK_WAKE_RELEASED, /* a release notice (or any message): try again */
        LOCK_WAKE_HANDOFF,  /* the releaser handed the lock to us (struct lock_handoff) */
};

/* A "handoff FENCE SERVER_USEC" notice: the fence of the lock now ours, and the server
 * time its lease started. */
struct lock_handoff {
        uint64_t fence;
        uint64_t server_usec;
};

/* Read the messages hiredis has buffered on sub: any wakes us, a hand-off on our own
 * channel gives us the lock (the first one counts).  0, or -EPROTO. */
static int sub_read_buffered(redisContext *sub, const char *wake_channel, enum lock_wake *wake,
                             struct lock_handoff *h) {
        for (;;) {
                void *reply = NULL;

                if (redisGetReplyFromReader(sub, &reply) != REDIS_OK)
                        return -EPROTO;
                if (!reply)
                        return 0;
                /* Only messages arrive on these channels. */
                if (*wake != LOCK_WAKE_HANDOFF)
                        *wake = parse_handoff(reply, wake_channel, &h->fence, &h->server_usec) ? LOCK_WAKE_HANDOFF
                                                                                               : LOCK_WAKE_RELEASED;
                freeReplyObject(reply);
        }
}

/* Wait for a message on sub until the monotonic time until.  0 with *ret_wake (and
 * *ret_handoff for LOCK_WAKE_HANDOFF); -errno when the subscription broke (outputs
 * untouched). */
static int sub_wait(redisContext *sub, const char *wake_channel, uint64_t until, enum lock_wake *ret_wake,
                    struct lock_handoff *ret_handoff) {
        enum lock_wake wake = LOCK_WAKE_NONE;
        struct lock_handoff h = {};

        for (;;) {
                struct pollfd p = { .fd = sub->fd, .events = POLLIN };
                uint64_t now;
                int n, r;

                r = sub_read_buffered(sub, wake_channel, &wake, &h);
                if (r < 0)
                        return r;
                now = now_usec();
                if (wake != LOCK_WAKE_NONE || now >= until)
                        break;
                /* Over TLS, decrypted bytes may wait in the session, unseen by poll(). */
                n = redis_ctx_buffered(sub) ? 1 : poll(&p, 1, (int) MIN((until - now + 999) / 1000, (uint64_t) INT_MAX));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                if (redis_ctx_buffer_read(sub) != REDIS_OK)
                        return redis_context_errno(sub, errno);
        }
        *ret_wake = wake;
        if (wake == LOCK_WAKE_HANDOFF)
                *ret_handoff = h;
        return 0;
}

/* Run the release script for our token (reconnecting once).  The caller has
 * l->c to itself.  0 released, -ENOLCK not ours, -errno. */
static int release_token(struct lock *l, char *errbuf, size_t errlen) {
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
                redis_ctx_free(TAKE_PTR(l->c));
        }
        return r;
}

static void sleep_until(uint64_t until) {
        for (;;) {
                uint64_t now = now_usec();
                if (now >= until)
                        return;
                (void) poll(NULL, 0, (int) MIN((until - now + 999) / 1000, (uint64_t) INT_MAX));
        }
}

/* ---- lock_acquire() ----------------------------------------------------------------------------
 *
 * One attempt is a chain of steps (acquire_steps[]), each returning an enum acquire_next
 * or a negative errno that ends the wait: -ETIMEDOUT only when the wait expired
 * (acquire_timed_out() then names the holder), any other for a failure to reach Redis or
 * a refusal (a connection that timed out is -ENOTCONN then, see lock.h). */

enum acquire_next {
        ACQUIRE_GO_ON, /* on to the next step of this attempt */
        ACQUIRE_AGAIN, /* start a new attempt (reconnect, re-check) */
        ACQUIRE_TAKEN, /* the lock is ours: l->fence and l->last_good_usec are set */
};

struct acquire {
        struct lock *l;            /* owned until it is handed out */
        redisContext *sub;  /* subscribed to release notices, or NULL (re-check only) */
        uint64_t wait, recheck, deadline;
        uint64_t last_pttl_usec;   /* the holder's lease left at our last attempt (0: unknown) */
        uint64_t quarantine_until; /* Redis lost its data while the lock was held: no attempt before */
        bool seen_held;            /* an attempt found the lock held */
        bool check_data_loss;      /* (re)connected since: is the fence counter still there? */
        bool warned;               /* said that Redis is unreachable */
        struct clock_sample clk;
        struct backoff bo;
        char *errbuf;
        size_t errlen;
};

static void acquire_done(struct acquire *a) {
        if (a->sub)
                redis_ctx_free(a->sub);
        a->sub = NULL;
        a->l = lock_free(a->l);
}

/* A failure that ends the wait: -ETIMEDOUT means the wait expired, so a connection or
 * command that timed out is "could not reach Redis" to callers. */
static int acquire_failed(int r) {
        return r == -ETIMEDOUT ? -ENOTCONN : r;
}

/* The lease of opts (or the default), after checking name, ns and the lease.  0, or
 * -EINVAL with errbuf. */
static int acquire_check(const char *name, const char *ns, const struct lock_options *opts, uint64_t *ret_lease,
                         char *errbuf, size_t errlen) {
        uint64_t lease = opts->lease_usec ?: LOCK_DEFAULT_LEASE_USEC;

        if (!name_is_valid(name)) {
                errbuf_printf(errbuf, errlen, "invalid lock name '%s': use 1-64 characters from [A-Za-z0-9._-]", name);
                return -EINVAL;
        }
        if (!name_is_valid(ns)) {
                errbuf_printf(errbuf, errlen, "invalid namespace '%s': use 1-64 characters from [A-Za-z0-9._-]", ns);
                return -EINVAL;
        }
        if (lease < 10 * USEC_PER_MSEC) {
                errbuf_printf(errbuf, errlen, "lease must be at least 10ms");
                return -EINVAL;
        }
        *ret_lease = lease;
        return 0;
}

/* The first connection (bounded by --wait-timeout too) and, when we may wait, the
 * subscription: before the first attempt, or a release between a failed attempt and the
 * subscription would go unheard. */
static int acquire_connect(struct acquire *a) {
        struct lock *l = a->l;
        int r;

        r = connect_bounded(l->url, wait_left(a->wait, a->deadline), l->cmd_timeout_usec, &l->c, a->errbuf,
                            a->errlen);
        if (r < 0)
                return acquire_failed(r);
        if (a->wait > 0 && sub_open(l, wait_left(a->wait, a->deadline), &a->sub) < 0)
                log_debug("lock %s: could not subscribe to release notices, re-checking every %llums", l->name,
                          (unsigned long long) (a->recheck / USEC_PER_MSEC));
        backoff_init(&a->bo, 50 * USEC_PER_MSEC, MIN(a->recheck, 2 * USEC_PER_SEC));
        return ACQUIRE_AGAIN;
}

/* Reconnect the command connection an earlier step dropped; while Redis is unreachable,
 * back off and try again until the deadline. */
static int acquire_reconnect(struct acquire *a) {
        struct lock *l = a->l;
        int r;

        if (l->c)
                return ACQUIRE_GO_ON;
        r = connect_bounded(l->url, a->deadline == UINT64_MAX ? UINT64_MAX : a->deadline - MIN(a->deadline, now_usec()),
                            l->cmd_timeout_usec, &l->c, a->errbuf, a->errlen);
        if (r < 0) {
                if (!a->warned)
                        log_warning("lock %s: Redis unreachable while waiting, retrying: %s", l->name,
                                    a->errbuf ? a->errbuf : strerror(-r));
                a->warned = true;
                if (now_usec() >= a->deadline)
                        return acquire_failed(r);
                sleep_until(MIN(now_usec() + backoff_next(&a->bo), a->deadline));
                return ACQUIRE_AGAIN;
        }
        a->check_data_loss = true;
        a->clk.valid = false; /* perhaps another server now */
        return ACQUIRE_GO_ON;
}

/* Subscribe again after the subscription broke. */
static int acquire_resubscribe(struct acquire *a) {
        if (a->wait > 0 && !a->sub && sub_open(a->l, wait_left(a->wait, a->deadline), &a->sub) >= 0)
                a->check_data_loss = true;
        return ACQUIRE_GO_ON;
}

/* We saw the lock held, then lost Redis.  If the fence counter is gone, Redis restarted
 * without its data and the holder may not have noticed yet: wait out its lease (ours, or
 * what it had left) rather than take the lock from under it. */
static int acquire_check_data_loss(struct acquire *a) {
        _cleanup_reply_ redisReply *ex = NULL;
        struct lock *l = a->l;
        uint64_t q;

        if (a->check_data_loss && a->seen_held) {
                ex = redis_ctx_command(l->c, "EXISTS %s", l->key_fence);
                if (!ex) {
                        redis_ctx_free(TAKE_PTR(l->c));
                        return ACQUIRE_AGAIN; /* and check again once reconnected */
                }
                if (ex->type == REDIS_REPLY_INTEGER && ex->integer == 0) {
                        q = MAX(l->lease_usec, a->last_pttl_usec);
                        a->quarantine_until = now_usec() + q;
                        log_warning("lock %s: Redis lost its data while the lock was held; waiting %llums for the "
                                    "previous holder to notice",
                                    l->name, (unsigned long long) (q / USEC_PER_MSEC));
                }
        }
        a->check_data_loss = false;
        return ACQUIRE_GO_ON;
}

static int acquire_quarantine(struct acquire *a) {
        uint64_t now = now_usec();

        if (now >= a->quarantine_until)
                return ACQUIRE_GO_ON;
        if (now >= a->deadline)
                return -ETIMEDOUT;
        sleep_until(MIN(a->quarantine_until, a->deadline));
        return ACQUIRE_AGAIN;
}

/* One attempt on the command connection, queueing us as a waiter while someone listens
 * on our channel. */
static int acquire_try(struct acquire *a) {
        struct lock *l = a->l;
        uint64_t fence = 0, pttl_ms = 0, t0 = now_usec();
        int r;

        r = try_acquire(l, a->sub ? 3 * a->recheck + USEC_PER_SEC : 0, &a->clk, &fence, &pttl_ms, a->errbuf,
                        a->errlen);
        if (r < 0) {
                if (!is_connection_error(r))
                        return acquire_failed(r);
                redis_ctx_free(TAKE_PTR(l->c));
                return a->wait == 0 ? acquire_failed(r) : ACQUIRE_AGAIN;
        }
        if (a->warned)
                log_info("lock %s: Redis reachable again", l->name);
        a->warned = false;
        backoff_reset(&a->bo);
        if (fence > 0) {
                l->fence = fence;
                atomic_store(&l->last_good_usec, t0);
                return ACQUIRE_TAKEN;
        }
        a->seen_held = true;
        a->last_pttl_usec = pttl_ms * USEC_PER_MSEC;
        return ACQUIRE_GO_ON;
}

/* The releaser gave us the lock.  Its lease started at server time h->server_usec: map
 * that to our clock conservatively (never later than it really was).  Too late (we were
 * stopped?) or without a clock sample: pass it on and keep waiting. */
static int acquire_handoff(struct acquire *a, const struct lock_handoff *h) {
        struct lock *l = a->l;
        int64_t granted = -1;

        if (a->clk.valid)
                granted = (int64_t) a->clk.local_usec + ((int64_t) h->server_usec - (int64_t) a->clk.server_usec);
        if (granted > 0 && now_usec() < (uint64_t) granted + l->lease_usec - l->lease_usec / 4) {
                l->fence = h->fence;
                atomic_store(&l->last_good_usec, (uint64_t) granted);
                return ACQUIRE_TAKEN;
        }
        log_warning("lock %s: the lock was handed to us while we could not run; passing it on", l->name);
        (void) release_token(l, NULL, 0);
        return ACQUIRE_AGAIN;
}

/* Held by another: wait for a release notice, the end of the holder's lease or the next
 * re-check, whichever comes first. */
static int acquire_wait(struct acquire *a) {
        uint64_t now = now_usec(), next;
        struct lock_handoff h = {};
        enum lock_wake wake = LOCK_WAKE_NONE;

        if (a->wait == 0 || now >= a->deadline)
                return -ETIMEDOUT;
        next = now + a->recheck;
        if (a->last_pttl_usec > 0)
                next = MIN(next, now + a->last_pttl_usec + USEC_PER_MSEC);
        next = MIN(next, a->deadline);
        if (!a->sub) {
                sleep_until(next);
                return ACQUIRE_AGAIN;
        }
        if (sub_wait(a->sub, a->l->wake_channel, next, &wake, &h) < 0) {
                /* Do not spin when Redis is gone: the command connection notices on the next attempt. */
                redis_ctx_free(TAKE_PTR(a->sub));
                return ACQUIRE_AGAIN;
        }
        return wake == LOCK_WAKE_HANDOFF ? acquire_handoff(a, &h) : ACQUIRE_AGAIN;
}

static int (*const acquire_steps[])(struct acquire *a) = {
        acquire_reconnect, acquire_resubscribe, acquire_check_data_loss, acquire_quarantine, acquire_try, acquire_wait,
};

static int acquire_attempt(struct acquire *a) {
        for (size_t i = 0; i < ELEMENTSOF(acquire_steps); i++) {
                int r = acquire_steps[i](a);
                if (r != ACQUIRE_GO_ON)
                        return r;
        }
        return ACQUIRE_AGAIN;
}

/* The wait expired: name the holder, leave the queue and, should a release have just
 * handed us the lock (notice unread), pass it on: compare-and-set, harmless otherwise. */
static int acquire_timed_out(struct acquire *a) {
        _cleanup_free_ char *holder = NULL;
        char d[DURATION_MAX];
        struct lock *l = a->l;

        if (l->c && describe_holder(l->c, l->key, l->key_holder, &holder) >= 0 && holder)
                errbuf_printf(a->errbuf, a->errlen, "timed out after %s waiting for lock %s, held by %s",
                              duration_format(a->wait, d, sizeof d), l->name, holder);
        else
                errbuf_printf(a->errbuf, a->errlen, "timed out after %s waiting for lock %s",
                              duration_format(a->wait, d, sizeof d), l->name);
        if (l->c && a->wait > 0)
                (void) release_token(l, NULL, 0);
        return -ETIMEDOUT;
}

int lock_acquire(const struct redis_url *u, const char *name, const struct lock_options *opts, struct lock **ret,
                 char *errbuf, size_t errlen) {
        static const struct lock_options defaults = { 0 };
        _cleanup_(acquire_done) struct acquire a = { .errbuf = errbuf, .errlen = errlen };
        const char *ns;
        uint64_t lease, start;
        int r;

        assert(u);
        assert(name);
        assert(ret);
        if (!opts)
                opts = &defaults;
        ns = opts->ns ?: namespace_default();
        r = acquire_check(name, ns, opts, &lease, errbuf, errlen);
        if (r < 0)
                return r;
        pthread_once(&sha_once, sha_init);
        a.l = lock_alloc(u, ns, name, lease);
        if (!a.l) {
                errbuf_printf(errbuf, errlen, "out of memory");
                return -ENOMEM;
        }
        a.recheck = opts->recheck_usec ?: LOCK_DEFAULT_RECHECK_USEC;
        a.wait = opts->wait_timeout_usec;
        start = now_usec();
        a.deadline = a.wait == UINT64_MAX || a.wait > UINT64_MAX - start ? UINT64_MAX : start + a.wait;

        r = acquire_connect(&a);
        while (r == ACQUIRE_AGAIN)
                r = acquire_attempt(&a);
        if (r == -ETIMEDOUT)
                r = acquire_timed_out(&a);
        if (r < 0)
                return r;
        assert(r == ACQUIRE_TAKEN);
        /* The subscription closes now; freeing it (over TLS, the session) is
         * not the caller's wait: that happens at release, after the release
         * is sent. */
        redis_ctx_close(a.sub);
        a.l->sub_spent = TAKE_PTR(a.sub);
        *ret = TAKE_PTR(a.l);
        return 0;
}

uint64_t lock_fence(const struct lock *l) {
        assert(l);
        return l->fence;
}

const char *lock_name(const struct lock *l) {
        assert(l);
        return l->name;
}

/* Renew, with all I/O finished by the monotonic time deadline.  Caller holds l->io. */
static int renew_locked(struct lock *l, uint64_t deadline, char *errbuf, size_t errlen) {
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
                                errbuf_printf(errbuf, errlen, "lock %s is no longer ours", l->name);
                                return -ENOLCK;
                        }
                        return 0;
                }
                if (!is_connection_error(r))
                        return r;
                redis_ctx_free(TAKE_PTR(l->c));
        }
        return r;
}

int lock_renew(struct lock *l) {
        uint64_t t0 = now_usec();
        int r;

        assert(l);
        pthread_mutex_lock(&l->io);
        r = renew_locked(l, UINT64_MAX, NULL, 0);
        pthread_mutex_unlock(&l->io);
        if (r == 0)
                atomic_store(&l->last_good_usec, t0);
        return r;
}

static uint64_t lost_deadline(const struct lock *l) {
        return atomic_load(&l->last_good_usec) + l->lease_usec - l->lease_usec / 4;
}

bool lock_is_lost(const struct lock *l) {
        assert(l);
        return atomic_load(&l->lost) || now_usec() >= lost_deadline(l);
}

int lock_release(struct lock *l) {
        int r;

        assert(l);
        lock_keeper_stop(l);
        pthread_mutex_lock(&l->io);
        /* Release even when we believe the lock lost: the compare-and-set on
         * the token makes it harmless, and it frees a lock we still hold after
         * a renewal outage. */
        r = release_token(l, NULL, 0);
        atomic_store(&l->lost, true); /* never ours again */
        if (l->sub_spent)
                redis_ctx_free(TAKE_PTR(l->sub_spent));
        pthread_mutex_unlock(&l->io);
        return r;
}

static void *keeper_main(void *p) {
        struct lock *l = p;
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

int lock_keeper_start(struct lock *l, void (*on_lost)(struct lock *l, void *userdata), void *userdata) {
        sigset_t all, old;
        int r;

        assert(l);
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

void lock_keeper_stop(struct lock *l) {
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

struct lock *lock_free(struct lock *l) {
        if (!l)
                return NULL;
        lock_keeper_stop(l);
        if (l->c)
                redis_ctx_free(l->c);
        if (l->sub_spent)
                redis_ctx_free(l->sub_spent);
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

        assert(u);
        assert(name);
        assert(ret);
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
