/* coordinatord: the daemon's shared state.
 *
 * Threads: the main thread runs the one sd-event loop (signals, watchdog, the
 * async Redis client, leader election, the fleet refresher).  libmicrohttpd
 * runs its own pool of worker threads; they read the state below only through
 * thread-safe accessors (fleet snapshots are immutable and refcounted, the
 * leader view is copied under a mutex, flags are atomics) and talk to Redis
 * themselves through short-timeout synchronous connections (rconn.h) for the
 * few endpoints that write. */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "cd-config.h"
#include "redis_url.h"

struct fleet;
struct leader;
struct httpd;
struct auth;
struct reconciler;
struct sse_hub;
struct redis_client;

struct server {
        const char *config_path;
        struct cd_config cfg;  /* as last loaded (redis and tls_* too, even when they did not work) */
        struct redis_url *url; /* redis as configured at start; in use: redis_client_url() */
        const char *ns;
        char *id;
        sd_event *event;
        struct redis_client *redis;
        struct auth *auth;
        struct fleet *fleet;
        struct leader *leader;
        struct httpd *httpd;
        struct reconciler *reconciler;
        struct sse_hub *sse;
        atomic_bool redis_up;  /* the loop's async connection is up */
        atomic_ulong redis_connects; /* successful (re)connections, for /metrics */
        atomic_bool stopping;
        bool ready_sent;
        uint64_t started_usec;

        /* SIGHUP: new Redis credentials and TLS files (main.c).  reload_error
         * is why the last one changed nothing ("" when it worked), for
         * /health/ready; HTTP threads read it under reload_lock. */
        pthread_mutex_t reload_lock;
        char reload_error[256];
        uint64_t reload_error_usec; /* CLOCK_REALTIME */
};
