/* See rconn.h.
 *
 * The connection string is kept as text under a mutex: a thread that
 * (re)connects copies and parses it, so the loop can replace it at any time
 * (credential rotation) without a thread holding a pointer into it.  The
 * generation tells every thread to reconnect: after a reconnect of the loop
 * (the server restarted, a failover) and after new credentials. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "macro.h"
#include "rconn.h"
#include "redis.h"
#include "redis_url.h"

static pthread_mutex_t url_lock = PTHREAD_MUTEX_INITIALIZER;
static char *url_text;
static pthread_key_t key;
static atomic_uint generation;
static __thread unsigned thread_generation;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void destroy(void *p) {
        if (p)
                redis_ctx_free(p);
}

static void make_key(void) {
        (void) pthread_key_create(&key, destroy);
}

static void free_text(char *p) {
        if (p) {
                explicit_bzero(p, strlen(p));
                free(p);
        }
}

int rconn_set_url(const char *url) {
        char *copy = strdup(url), *old;

        if (!copy)
                return -ENOMEM;
        pthread_once(&once, make_key);
        pthread_mutex_lock(&url_lock);
        old = url_text;
        url_text = copy;
        pthread_mutex_unlock(&url_lock);
        free_text(old);
        rconn_invalidate();
        return 0;
}

void rconn_done(void) {
        pthread_mutex_lock(&url_lock);
        free_text(url_text);
        url_text = NULL;
        pthread_mutex_unlock(&url_lock);
}

/* The current URL, parsed, with the short connect timeout. */
static int current_url(struct redis_url **ret) {
        char *text;
        int r;

        pthread_mutex_lock(&url_lock);
        text = url_text ? strdup(url_text) : NULL;
        pthread_mutex_unlock(&url_lock);
        if (!text)
                return -ENOMEM;
        r = redis_url_parse(text, ret, NULL, 0);
        free_text(text);
        if (r < 0)
                return r;
        if ((*ret)->connect_timeout_ms <= 0 || (*ret)->connect_timeout_ms > RCONN_TIMEOUT_MS)
                (*ret)->connect_timeout_ms = RCONN_TIMEOUT_MS;
        return 0;
}

static int connect_now(redisContext **ret) {
        _cleanup_(redis_url_freep) struct redis_url *u = NULL;
        char err[256];
        int r;

        r = current_url(&u);
        if (r < 0)
                return r;
        r = redis_connect(u, (uint64_t) RCONN_TIMEOUT_MS * 1000, ret, err, sizeof err);
        if (r < 0)
                log_debug("API thread: Redis connect failed: %s", err);
        return r;
}

int rconn_get(redisContext **ret) {
        redisContext *c = pthread_getspecific(key);
        int r;

        if (c && (c->err || thread_generation != atomic_load(&generation))) {
                redis_ctx_free(c);
                c = NULL;
                pthread_setspecific(key, NULL);
        }
        if (!c) {
                thread_generation = atomic_load(&generation);
                r = connect_now(&c);
                if (r < 0)
                        return r;
                pthread_setspecific(key, c);
        }
        *ret = c;
        return 0;
}

void rconn_reset(void) {
        redisContext *c = pthread_getspecific(key);
        if (c) {
                redis_ctx_free(c);
                pthread_setspecific(key, NULL);
        }
}

void rconn_invalidate(void) {
        atomic_fetch_add(&generation, 1);
}
