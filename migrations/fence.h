/* The fencing token in PostgreSQL: one row per lock in coord_schema_fence.
 *
 * A new lock holder terminates the sessions of superseded runners (named
 * FENCE_APPNAME_RUN + lockid), then raises the token; every write of a runner
 * locks the row and checks the token inside its own transaction (migrations:
 * the history insert in runner.c; repair: fence_check_sql).  So a runner whose
 * lease expired while it was paused cannot commit, and its open transaction
 * cannot block the new holder (terminated, or killed by its
 * idle_in_transaction timeout). */
#pragma once

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#define FENCE_APPNAME_RUN "coord-migrate run "

/* $1 lock name, $2 token: one row when current (and the row is locked until the
 * transaction ends); otherwise ERROR 22012, which aborts a pipeline. */
extern const char fence_check_sql[];
/* Name this session as a runner of lockid and bound its idle transactions to
 * lease/3 (min 500ms); on PostgreSQL 14+ also notice a vanished client within 1s. */
int fence_session_setup(PGconn *c, const char *lockid, uint64_t lease_usec, char *errbuf, size_t errlen);

/* Terminate superseded runners, then raise the token of name to
 * greatest(token + 1, redis_fence) (redis_fence 0: token + 1), retrying while
 * an old transaction still holds the row, until deadline (now_usec() clock).
 * 0 with *ret_token; -ETIMEDOUT, -ECONNRESET or -EIO with errbuf. */
int fence_raise(PGconn *c, const char *lockid, const char *name, uint64_t redis_fence, uint64_t deadline_usec,
                int64_t *ret_token, char *errbuf, size_t errlen);
