/* See fence.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "duration.h"
#include "fence.h"
#include "log.h"
#include "pgutil.h"
#include "strutil.h"

const char fence_check_sql[] =
        /* Division by zero (22012) when the token is not ours: aborts the pipeline. */
        "SELECT 1 / count(*)::int FROM (SELECT 1 FROM coord_schema_fence"
        " WHERE name = $1 AND token = $2::bigint FOR UPDATE) f";

int fence_session_setup(PGconn *c, const char *lockid, uint64_t lease_usec, char *errbuf, size_t errlen) {
        uint64_t idle_ms = MAX(lease_usec / 3 / USEC_PER_MSEC, 500);
        char sql[512];

        snprintf(sql, sizeof(sql),
                 "SET application_name = '" FENCE_APPNAME_RUN "%s'; SET idle_in_transaction_session_timeout = %" PRIu64
                 "%s",
                 lockid, idle_ms, PQserverVersion(c) >= 140000 ? "; SET client_connection_check_interval = 1000" : "");
        return pg_exec(c, sql, errbuf, errlen);
}

static void terminate_superseded(PGconn *c, const char *lockid) {
        _cleanup_pgresult_ PGresult *res = NULL;
        char appname[64], e[512];
        const char *p[] = { appname };

        snprintf(appname, sizeof(appname), FENCE_APPNAME_RUN "%s", lockid);
        if (pg_query(c,
                     "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                     " WHERE application_name = $1 AND pid <> pg_backend_pid() AND datname = current_database()",
                     1, p, &res, e, sizeof(e)) < 0)
                log_warning("Cannot terminate sessions of superseded runners (%s); relying on their "
                            "idle_in_transaction_session_timeout",
                            e);
        else if (strcmp(PQgetvalue(res, 0, 0), "0") != 0)
                log_notice("Terminated %s session(s) of a superseded migration runner", PQgetvalue(res, 0, 0));
}

int fence_raise(PGconn *c, const char *lockid, const char *name, uint64_t redis_fence, uint64_t deadline_usec,
                int64_t *ret_token, char *errbuf, size_t errlen) {
        char rf[24], holder[320], host[256] = "", e2[256];
        const char *params[] = { name, rf, holder };
        int r;

        (void) gethostname(host, sizeof(host) - 1);
        snprintf(holder, sizeof(holder), "%s pid %d", host, (int) getpid());
        snprintf(rf, sizeof(rf), "%" PRIu64, redis_fence);
        for (unsigned attempt = 0;; attempt++) {
                _cleanup_pgresult_ PGresult *res = NULL;
                int64_t token = 0;

                terminate_superseded(c, lockid);
                r = pg_exec(c, "BEGIN; SET LOCAL lock_timeout = '1s'", errbuf, errlen);
                if (r == 0) {
                        r = pg_query(c,
                                     "WITH prev AS (SELECT redis_fence, holder FROM coord_schema_fence WHERE name = $1) "
                                     "INSERT INTO coord_schema_fence AS f (name, token, redis_fence, holder, updated_at)"
                                     " VALUES ($1, greatest($2::bigint, 1), nullif($2::bigint, 0), $3, now())"
                                     " ON CONFLICT (name) DO UPDATE SET token = greatest(f.token + 1, EXCLUDED.token),"
                                     " redis_fence = EXCLUDED.redis_fence, holder = EXCLUDED.holder, updated_at = now()"
                                     " RETURNING token, (SELECT (redis_fence IS NOT NULL) <> ($2::bigint <> 0) FROM prev),"
                                     " (SELECT holder FROM prev)",
                                     3, params, &res, errbuf, errlen);
                        if (r == 0 && (PQntuples(res) != 1 || parse_int64(PQgetvalue(res, 0, 0), &token) < 0)) {
                                snprintf(errbuf, errlen, "unexpected reply raising the fencing token");
                                r = -EIO;
                        }
                        if (r == 0)
                                r = pg_exec(c, "COMMIT", errbuf, errlen);
                        else
                                (void) pg_exec(c, "ROLLBACK", e2, sizeof(e2));
                }
                if (r == 0) {
                        /* Runners of one database must all use Redis, or all the advisory fallback:
                         * the two locks do not exclude each other (only the fence still keeps the
                         * history right). */
                        if (strcmp(PQgetvalue(res, 0, 1), "t") == 0)
                                log_warning("The previous migration runner (%s) used the %s lock, this one the %s: "
                                            "give every runner of this database the same --redis (or none)",
                                            PQgetvalue(res, 0, 2), redis_fence ? "advisory" : "Redis",
                                            redis_fence ? "Redis lock" : "advisory fallback");
                        *ret_token = token;
                        return 0;
                }
                /* Only a row still locked by a superseded runner's transaction is worth waiting for. */
                if (r == -ECONNRESET || strncmp(errbuf, "55P03", 5) != 0)
                        return r;
                if (now_usec() >= deadline_usec)
                        return -ETIMEDOUT;
                if (attempt == 0)
                        log_info("Waiting for a superseded runner's transaction to end (%s)", errbuf);
        }
}
