/* The lock fallback when no Redis is configured: a session-level advisory lock
 * taken with pg_try_advisory_lock(), polled with jittered backoff on its own
 * connection.  Never the blocking pg_advisory_lock(): a waiter must not sit in a
 * PostgreSQL lock queue (flyway #1654: it deadlocks CREATE INDEX CONCURRENTLY)
 * and its wait must honour the timeout (golang-migrate #269).  Session locks do
 * not survive PgBouncer transaction pooling (flyway #2895): behind a pooler the
 * fallback refuses to run (use Redis there) instead of silently not locking. */
#pragma once

#include <libpq-fe.h>
#include <stdint.h>

/* Take the advisory lock key on a new connection, waiting up to wait_timeout_usec.
 * 0 with *ret the connection holding it (close it to release); -ETIMEDOUT with
 * errbuf naming the holder; -EPROTONOSUPPORT with errbuf when the connection goes
 * through a pooler (pg_detect_pooler()), or the lock, once taken, is not held by
 * the server session that answers next; connection errors as pg_connect(). */
int pglock_acquire(const char *conninfo, const char *application_name, int64_t key, uint64_t wait_timeout_usec,
                   PGconn **ret, char *errbuf, size_t errlen);
/* Describe the session holding key ("pid N, application NAME, since T"), or NULL. */
char *pglock_describe_holder(PGconn *c, int64_t key);
