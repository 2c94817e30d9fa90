/* lock-probe: drives lib/lock.c directly for tests that need sub-millisecond
 * timing (tests/e2e/lock-wake.sh).
 *
 *   lock-probe wake REDIS_URL NAME ROUNDS
 *     Each round: NAME is held; a waiter thread (re-check interval 10s, so only
 *     the pub/sub wake-up can make it fast) waits; once it is subscribed the
 *     holder releases and the waiter records when it got the lock.  Even
 *     rounds: held through lib/lock.c, released with lock_release(), with dead
 *     waiters (nobody listening on their channels) queued ahead of the real
 *     one, which release must skip.  Odd rounds: held by a raw SET and
 *     released with the documented two-key release script (as other clients
 *     call it), which wakes the shared channel.  Prints one "latency_us N"
 *     line per round, then "median_us N" and "max_us N".
 *
 *   lock-probe lost-handoff REDIS_URL NAME
 *     A hand-off whose notice never arrives: while a waiter (re-check 300ms)
 *     waits on a raw holder, the probe does what release does for it (lock set
 *     to the waiter's token, holder "..., fence 4242", entry dequeued) but
 *     publishes nothing.  The waiter must find the lock at its next re-check
 *     and report fence 4242.  Prints "latency_us N fence F". */
#include <errno.h>
#include <stdbool.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"
#include "keys.h"
#include "lock.h"
#include "log.h"
#include "macro.h"
#include "parse-util.h"
#include "redis.h"
#include "redis_url.h"
#include "strutil.h"

struct waiter {
        const struct redis_url *url;
        const char *name;
        uint64_t acquired_usec;
        uint64_t fence;
        int r;
        char err[256];
};

static uint64_t waiter_recheck_usec = 10 * USEC_PER_SEC;

static void *waiter_main(void *p) {
        struct waiter *w = p;
        struct lock_options o = {
                .lease_usec = 30 * USEC_PER_SEC,
                .wait_timeout_usec = 20 * USEC_PER_SEC,
                .recheck_usec = waiter_recheck_usec,
        };
        struct lock *l = NULL;

        w->r = lock_acquire(w->url, w->name, &o, &l, w->err, sizeof w->err);
        w->acquired_usec = now_usec();
        if (w->r == 0) {
                w->fence = lock_fence(l);
                (void) lock_release(l);
                lock_free(l);
        }
        return NULL;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

/* Wait until someone is subscribed to channel (the waiter's first step). */
static int wait_subscribed(redisContext *c, const char *channel) {
        uint64_t until = now_usec() + 10 * USEC_PER_SEC;

        while (now_usec() < until) {
                _cleanup_reply_ redisReply *r = redis_ctx_command(c, "PUBSUB NUMSUB %s", channel);

                if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                    r->element[1]->type == REDIS_REPLY_INTEGER && r->element[1]->integer > 0)
                        return 0;
                struct timespec ts = { 0, 1000000 };
                nanosleep(&ts, NULL);
        }
        return -ETIMEDOUT;
}

static int probe_wake(const struct redis_url *url, const char *name, int rounds) {
        _cleanup_redis_ redisContext *c = NULL;
        _cleanup_free_ char *channel = key_lock_channel(namespace_default(), name),
                            *key = key_lock(namespace_default(), name),
                            *holder = key_lock_holder(namespace_default(), name),
                            *waiters = key_lock_waiters(namespace_default(), name);
        uint64_t lat[1000];
        char err[256];
        int r;

        if (rounds < 1 || rounds > (int) ELEMENTSOF(lat))
                return -EINVAL;
        r = redis_connect(url, USEC_PER_SEC, &c, err, sizeof err);
        if (r < 0) {
                fprintf(stderr, "lock-probe: %s\n", err);
                return r;
        }
        for (int i = 0; i < rounds; i++) {
                struct lock_options o = { .lease_usec = 30 * USEC_PER_SEC };
                struct waiter w = { .url = url, .name = name };
                bool raw = i % 2 == 1;
                pthread_t t;
                uint64_t t0, prev = 0;
                struct lock *l = NULL;

                if (raw) {
                        _cleanup_reply_ redisReply *x = redis_ctx_command(c, "SET %s raw-holder PX 30000", key);
                        if (!x || x->type == REDIS_REPLY_ERROR)
                                return -EIO;
                } else {
                        r = lock_acquire(url, name, &o, &l, err, sizeof err);
                        if (r < 0) {
                                fprintf(stderr, "lock-probe: acquire: %s\n", err);
                                return r;
                        }
                        prev = lock_fence(l);
                }
                if (pthread_create(&t, NULL, waiter_main, &w) != 0)
                        return -EAGAIN;
                r = wait_subscribed(c, channel);
                if (r < 0) {
                        fprintf(stderr, "lock-probe: waiter never subscribed\n");
                        return r;
                }
                if (raw) {
                        _cleanup_reply_ redisReply *x = NULL;

                        t0 = now_usec();
                        x = redis_ctx_command(c, "EVAL %s 2 %s %s raw-holder %s", lock_script_release, key, holder,
                                         channel);
                        r = x && x->type == REDIS_REPLY_INTEGER && x->integer == 1 ? 0 : -EIO;
                } else {
                        /* Dead waiters at the head of the queue (lowest scores). */
                        {
                                _cleanup_reply_ redisReply *x = redis_ctx_command(c, "TIME");
                                if (x && x->type == REDIS_REPLY_ARRAY && x->elements == 2) {
                                        /* Live for 5s, ahead of the waiter's 31s. */
                                        long long ms = strtoll(x->element[0]->str, NULL, 10) * 1000 + 5000;
                                        /* A plain entry (wake-only) and two in the
                                         * hand-off form: release must undo the
                                         * hand-off to a waiter nobody hears. */
                                        freeReplyObject(redis_ctx_command(c, "ZADD %s %lld dead-waiter-0", waiters, ms));
                                        for (int k = 1; k < 3; k++)
                                                freeReplyObject(redis_ctx_command(c, "ZADD %s %lld %s", waiters, ms + k,
                                                                             k == 1 ? "deadbeef01 30000 ghost pid 1"
                                                                                    : "deadbeef02 30000 ghost pid 2"));
                                }
                        }
                        t0 = now_usec();
                        r = lock_release(l);
                        lock_free(l);
                }
                pthread_join(t, NULL);
                if (r < 0 || w.r < 0) {
                        fprintf(stderr, "lock-probe: release %d, waiter %d: %s\n", r, w.r, w.err);
                        return r < 0 ? r : w.r;
                }
                if (!raw) {
                        _cleanup_reply_ redisReply *x = redis_ctx_command(c, "ZCARD %s", waiters);
                        if (!x || x->type != REDIS_REPLY_INTEGER || x->integer != 0) {
                                fprintf(stderr, "lock-probe: dead waiters left in the queue\n");
                                return -EPROTO;
                        }
                }
                if (w.fence <= prev) {
                        fprintf(stderr, "lock-probe: fence did not increase (%llu after %llu)\n",
                                (unsigned long long) w.fence, (unsigned long long) prev);
                        return -EPROTO;
                }
                lat[i] = w.acquired_usec - t0;
                printf("latency_us %llu %s\n", (unsigned long long) lat[i], raw ? "shared-channel" : "queued");
        }
        qsort(lat, (size_t) rounds, sizeof lat[0], cmp_u64);
        printf("median_us %llu\nmax_us %llu\n", (unsigned long long) lat[rounds / 2],
               (unsigned long long) lat[rounds - 1]);
        return 0;
}

static int probe_lost_handoff(const struct redis_url *url, const char *name) {
        _cleanup_redis_ redisContext *c = NULL;
        _cleanup_free_ char *key = key_lock(namespace_default(), name),
                            *holder = key_lock_holder(namespace_default(), name),
                            *waiters = key_lock_waiters(namespace_default(), name);
        struct waiter w = { .url = url, .name = name };
        char err[256], token[64];
        uint64_t until, t0;
        pthread_t t;
        int r;

        r = redis_connect(url, USEC_PER_SEC, &c, err, sizeof err);
        if (r < 0) {
                fprintf(stderr, "lock-probe: %s\n", err);
                return r;
        }
        freeReplyObject(redis_ctx_command(c, "SET %s raw-holder", key));
        waiter_recheck_usec = 300 * USEC_PER_MSEC;
        if (pthread_create(&t, NULL, waiter_main, &w) != 0)
                return -EAGAIN;
        /* Wait for the waiter's queue entry "TOKEN LEASE_MS DESC". */
        token[0] = '\0';
        until = now_usec() + 10 * USEC_PER_SEC;
        while (!token[0] && now_usec() < until) {
                _cleanup_reply_ redisReply *z = redis_ctx_command(c, "ZRANGE %s 0 0", waiters);
                struct timespec ts = { 0, 1000000 };

                if (z && z->type == REDIS_REPLY_ARRAY && z->elements == 1 && z->element[0]->type == REDIS_REPLY_STRING) {
                        const char *sp = strchr(z->element[0]->str, ' ');
                        size_t n = sp ? (size_t) (sp - z->element[0]->str) : 0;

                        if (n > 0 && n < sizeof token) {
                                memcpy(token, z->element[0]->str, n);
                                token[n] = '\0';
                                freeReplyObject(redis_ctx_command(c, "ZREM %s %s", waiters, z->element[0]->str));
                        }
                }
                nanosleep(&ts, NULL);
        }
        if (!token[0]) {
                fprintf(stderr, "lock-probe: the waiter never queued\n");
                pthread_join(t, NULL);
                return -ETIMEDOUT;
        }
        t0 = now_usec();
        freeReplyObject(redis_ctx_command(c, "SET %s %s PX 30000", key, token));
        freeReplyObject(redis_ctx_command(c, "SET %s %s PX 30000", holder, "probe pid 0, fence 4242"));
        pthread_join(t, NULL);
        if (w.r < 0) {
                fprintf(stderr, "lock-probe: waiter: %s\n", w.err);
                return w.r;
        }
        printf("latency_us %llu fence %llu\n", (unsigned long long) (w.acquired_usec - t0),
               (unsigned long long) w.fence);
        return 0;
}

int main(int argc, char **argv) {
        struct redis_url *url = NULL;
        char err[256];
        int r, rounds = 0;

        log_open("lock-probe");
        signal(SIGPIPE, SIG_IGN);
        if (!((argc == 5 && strcmp(argv[1], "wake") == 0 && parse_int(argv[4], &rounds) >= 0) ||
              (argc == 4 && strcmp(argv[1], "lost-handoff") == 0))) {
                fprintf(stderr, "usage: lock-probe wake REDIS_URL NAME ROUNDS\n"
                                "       lock-probe lost-handoff REDIS_URL NAME\n");
                return 2;
        }
        if (redis_url_parse(argv[2], &url, err, sizeof err) < 0) {
                fprintf(stderr, "lock-probe: %s\n", err);
                return 2;
        }
        r = argc == 5 ? probe_wake(url, argv[3], rounds) : probe_lost_handoff(url, argv[3]);
        redis_url_free(url);
        return r < 0 ? 1 : 0;
}
