/* Synchronous Redis connections for the HTTP worker threads: one per thread,
 * opened on first use, with a short connect and command timeout so a stalled
 * Redis costs a request at most about a second, never a hang.  Handlers check
 * server.redis_up first and answer 503 at once while the loop knows Redis is
 * down. */
#pragma once

#include <hiredis/hiredis.h>

#define RCONN_TIMEOUT_MS 1000

/* The connection string every thread uses from now on (copied; checked by
 * the caller): before the HTTP threads start, and again when the loop moved
 * to new credentials (SIGHUP).  Each thread then reopens its connection on
 * its next rconn_get(), lazily, with the TLS settings in force then.
 * 0 or -ENOMEM. */
int rconn_set_url(const char *url);
/* This thread's connection, connecting if needed; 0 or -errno. */
int rconn_get(redisContext **ret);
/* Drop this thread's connection after an I/O error (next rconn_get reconnects). */
void rconn_reset(void);
/* The loop reconnected to Redis (a restart or failover): every thread opens a
 * fresh connection on its next rconn_get() instead of failing once on a dead one. */
void rconn_invalidate(void);
/* Free the copy (at exit, after the HTTP threads stopped). */
void rconn_done(void);
