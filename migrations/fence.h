/* The fencing token in PostgreSQL (one row per lock in coord_schema_fence), and the
 * runner's session around it.
 *
 * A new lock holder terminates the sessions of superseded runners (named
 * FENCE_APPNAME_RUN + lockid), then raises the token; every write of a runner
 * locks the row and checks the token inside its own transaction (migrations:
 * the SELECT ... FOR UPDATE before the history insert in migrate.c; repair:
 * fence_check_sql).  So a runner whose lease expired while it was paused
 * cannot commit, and its open transaction cannot block the new holder
 * (terminated, or killed by its idle_in_transaction timeout).
 *
 * Behind a connection pooler (pg_detect_pooler()) a server session is shared
 * by other clients: nothing is terminated there, and coord's settings are set
 * with SET LOCAL inside each of its transactions; the fence alone refuses the
 * superseded runner, whose transaction its own idle timeout ends.
 *
 * Every migration starts from the session a new connection has: the transaction
 * of each migration ends with the reset of fence_reset_statement() (session
 * authorization and role, every setting, temporary tables, ...) before coord's
 * own writes in it, which therefore run with coord's settings and privileges
 * whatever the migration set.  See docs/migrations.md, "Session state between
 * files" and "Behind PgBouncer". */
#pragma once

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FENCE_APPNAME_RUN "coord-migrate run "

/* The runner's session: filled by fence_session_setup(); plain data. */
struct fence_session {
        bool pooled;          /* behind a connection pooler: assume transaction pooling */
        int server_pid;       /* pg_backend_pid() at setup */
        char appname[64];     /* FENCE_APPNAME_RUN + lockid */
        char local_sql[256];  /* coord's settings for the current transaction only (SET LOCAL) */
        char reset_sql[384];  /* the last reset statement: coord's settings again, for the session
                               * (behind a pooler: the timeouts for the transaction only) */
};

/* $1 lock name, $2 token: one row when current (and the row is locked until the
 * transaction ends); otherwise ERROR 22012, which aborts a pipeline. */
extern const char fence_check_sql[];

/* "BEGIN; " and coord's settings for this transaction (s->local_sql): how every
 * transaction coord writes in starts, so a pooled one has coord's timeouts
 * too.  Caller frees; NULL on OOM. */
char *fence_begin_sql(const struct fence_session *s);

/* Tell whether c is behind a pooler, name the session a runner of lockid and bound
 * its idle transactions to lease/3 (min 500ms); on PostgreSQL 14+ also notice a
 * vanished client within 1s.  Directly connected these are session settings; behind
 * a pooler only the name is (the pooler keeps it per client), the rest is in
 * s->local_sql for each transaction.  0 with *ret; -EIO/-ECONNRESET with errbuf. */
int fence_session_setup(PGconn *c, const char *lockid, uint64_t lease_usec, struct fence_session *ret,
                        char *errbuf, size_t errlen);

/* Statement k (from 0) of the reset that ends the transaction of every migration
 * before coord's own writes in it, or NULL after the last: CLOSE ALL, SET SESSION
 * AUTHORIZATION DEFAULT (which also resets the role), RESET ALL, UNLISTEN *, DISCARD
 * SEQUENCES, DISCARD TEMP, and s->reset_sql (which also releases session advisory
 * locks): DISCARD ALL without what a transaction block forbids, and without
 * DEALLOCATE ALL, which the runner adds (and prepares its own statements again) after
 * a file that prepares or deallocates statements.  Static strings or s's; no
 * parameters. */
const char *fence_reset_statement(const struct fence_session *s, size_t k);

/* One of coord's own writes (sql with n params, as pg_query()) between the statements
 * of a no-transaction migration, whose session state must last until its next
 * statement: in a transaction of its own (READ COMMITTED, READ WRITE) that first sets,
 * for itself only, the session authorization, role and every setting a migration can
 * change back to the session's defaults, and coord's settings.  One round trip; the
 * session is as before afterwards.  0 with *ret (the result of sql); -EIO or
 * -ECONNRESET with errbuf, rolled back. */
int fence_query(PGconn *c, const struct fence_session *s, const char *sql, int n, const char *const *params,
                PGresult **ret, char *errbuf, size_t errlen);

/* Terminate superseded runners (not behind a pooler), then raise the token of name
 * to greatest(token + 1, redis_fence) (redis_fence 0: token + 1), retrying while
 * an old transaction still holds the row, until deadline (now_usec() clock).
 * 0 with *ret_token; -ETIMEDOUT, -ECONNRESET or -EIO with errbuf. */
int fence_raise(PGconn *c, const struct fence_session *s, const char *name, uint64_t redis_fence,
                uint64_t deadline_usec, int64_t *ret_token, char *errbuf, size_t errlen);
