/* See rconn.h. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>

#include "log.h"
#include "rconn.h"
#include "redis.h"
#include "redis_url.h"

static struct redis_url url_copy;
static pthread_key_t key;
static atomic_uint generation;
static __thread unsigned thread_generation;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void destroy(void *p) {
        if (p)
                redisFree(p);
}

static void make_key(void) {
        (void) pthread_key_create(&key, destroy);
}

void rconn_setup(const struct redis_url *url) {
        /* A shallow copy with a shorter connect timeout; strings stay owned by url. */
        url_copy = *url;
        if (url_copy.connect_timeout_ms <= 0 || url_copy.connect_timeout_ms > RCONN_TIMEOUT_MS)
                url_copy.connect_timeout_ms = RCONN_TIMEOUT_MS;
        pthread_once(&once, make_key);
}

int rconn_get(redisContext **ret) {
        redisContext *c = pthread_getspecific(key);
        char err[256];
        int r;

        if (c && (c->err || thread_generation != atomic_load(&generation))) {
                redisFree(c);
                c = NULL;
                pthread_setspecific(key, NULL);
        }
        if (!c) {
                thread_generation = atomic_load(&generation);
                r = redis_connect(&url_copy, (uint64_t) RCONN_TIMEOUT_MS * 1000, &c, err, sizeof err);
                if (r < 0) {
                        log_debug("API thread: Redis connect failed: %s", err);
                        return r;
                }
                pthread_setspecific(key, c);
        }
        *ret = c;
        return 0;
}

void rconn_reset(void) {
        redisContext *c = pthread_getspecific(key);
        if (c) {
                redisFree(c);
                pthread_setspecific(key, NULL);
        }
}

void rconn_invalidate(void) {
        atomic_fetch_add(&generation, 1);
}
