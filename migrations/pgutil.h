/* Small libpq helpers: cleanup, connect with masked errors, errors as text. */
#pragma once

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(PGresult *, PQclear)
#define _cleanup_pgresult_ _cleanup_(PQclearp)
DEFINE_TRIVIAL_CLEANUP_FUNC(PGconn *, PQfinish)
#define _cleanup_pgconn_ _cleanup_(PQfinishp)

/* Register the password of conninfo (URI or key=value; also PGPASSWORD) as a log
 * secret.  -EINVAL (errbuf set, without the password) when conninfo does not parse. */
int pg_register_secrets(const char *conninfo, char *errbuf, size_t errlen);
/* "user@host:port/dbname" of conninfo, never the password; caller frees. */
char *pg_describe(const char *conninfo);

/* Connect with application_name.  -ECONNREFUSED (or -EACCES for an
 * authentication failure) with libpq's message in errbuf, secrets masked. */
int pg_connect(const char *conninfo, const char *application_name, PGconn **ret, char *errbuf, size_t errlen);

/* Whether c reaches PostgreSQL through a connection pooler such as PgBouncer: such a
 * pooler answers the connection itself, so the backend pid libpq got at connect time
 * (PQbackendPID, the pooler's own key) is not the pid of the server session that
 * answers a query (pg_backend_pid()).  A pooler cannot be asked its pool mode, so the
 * caller must assume transaction pooling: every transaction may run on another server
 * session, and nothing set outside one lasts.  0 with *ret_pooled and *ret_server_pid;
 * -EIO or -ECONNRESET with errbuf (outputs untouched). */
int pg_detect_pooler(PGconn *c, bool *ret_pooled, int *ret_server_pid, char *errbuf, size_t errlen);

/* Format a failed result as "SQLSTATE: message" (plus DETAIL/HINT) into buf. */
void pg_format_error(const PGresult *res, PGconn *c, char *buf, size_t len);
/* Run a command that returns no rows or rows we do not need; 0, -EIO with errbuf,
 * or -ECONNRESET when the connection is gone. */
int pg_exec(PGconn *c, const char *sql, char *errbuf, size_t errlen);
/* Run a parameterised query; on success *ret holds the result (TUPLES_OK or COMMAND_OK). */
int pg_query(PGconn *c, const char *sql, int nparams, const char *const *params, PGresult **ret, char *errbuf,
             size_t errlen);
/* The history tables live in the connection's schema (current_schema()), whatever
 * search_path would resolve first.  Set it once per process (an identifier,
 * quoted here); pg_exec() and pg_query() then qualify every "coord_schema_*" table
 * name outside quotes, and pg_qualify() does it for other callers.  NULL: unset. */
int pg_set_schema(PGconn *c, const char *schema);
/* sql with "coord_schema_" qualified by the schema (a copy; caller frees), or NULL on OOM. */
char *pg_qualify(const char *sql);

/* The SQLSTATE of a failed result, or "" */
const char *pg_sqlstate(const PGresult *res);
