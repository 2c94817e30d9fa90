/* Synchronous Redis connections for the HTTP worker threads: one per thread,
 * opened on first use, with a short connect and command timeout so a stalled
 * Redis costs a request at most about a second, never a hang.  Handlers check
 * server.redis_up first and answer 503 at once while the loop knows Redis is
 * down. */
#pragma once

#include <hiredis/hiredis.h>

struct redis_url;

#define RCONN_TIMEOUT_MS 1000

/* Set the URL once, before the HTTP threads start (not copied). */
void rconn_setup(const struct redis_url *url);
/* This thread's connection, connecting if needed; 0 or -errno. */
int rconn_get(redisContext **ret);
/* Drop this thread's connection after an I/O error (next rconn_get reconnects). */
void rconn_reset(void);
/* The loop reconnected to Redis (a restart or failover): every thread opens a
 * fresh connection on its next rconn_get() instead of failing once on a dead one. */
void rconn_invalidate(void);
