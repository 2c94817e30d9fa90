/* See fence.h. */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "duration.h"
#include "fence.h"
#include "log.h"
#include "parse-util.h"
#include "pgutil.h"
#include "strutil.h"

const char fence_check_sql[] =
        /* Division by zero (22012) when the token is not ours: aborts the pipeline. */
        "SELECT 1 / count(*)::int FROM (SELECT 1 FROM coord_schema_fence"
        " WHERE name = $1 AND token = $2::bigint FOR UPDATE) f";

/* "SELECT [pg_advisory_unlock_all(),] [set_config('application_name', ..., false),]
 * set_config('idle_in_transaction_session_timeout', ..., local)[, client_connection_check_interval]" */
static void settings_sql(char *buf, size_t len, const char *appname, uint64_t idle_ms, bool check, bool local,
                         bool unlock) {
        const char *l = local ? "true" : "false";
        char app[128] = "", chk[96] = "";

        if (appname)
                snprintf(app, sizeof(app), "set_config('application_name', '%s', false), ", appname);
        if (check)
                snprintf(chk, sizeof(chk), ", set_config('client_connection_check_interval', '1000', %s)", l);
        snprintf(buf, len, "SELECT %s%sset_config('idle_in_transaction_session_timeout', '%" PRIu64 "', %s)%s",
                 unlock ? "pg_advisory_unlock_all(), " : "", app, idle_ms, l, chk);
}

char *fence_begin_sql(const struct fence_session *s) {
        return strdup_printf("BEGIN; %s", s->local_sql);
}

int fence_session_setup(PGconn *c, const char *lockid, uint64_t lease_usec, struct fence_session *ret,
                        char *errbuf, size_t errlen) {
        struct fence_session s = {};
        uint64_t idle_ms = MAX(lease_usec / 3 / USEC_PER_MSEC, 500);
        bool check = PQserverVersion(c) >= 140000;
        char setup[384];
        int r;

        assert(c);
        assert(lockid);
        assert(ret);
        r = pg_detect_pooler(c, &s.pooled, &s.server_pid, errbuf, errlen);
        if (r < 0)
                return r;
        snprintf(s.appname, sizeof(s.appname), FENCE_APPNAME_RUN "%s", lockid);
        /* Behind a pooler a session setting would stay with a server session other clients get
         * next (and ours would not follow us): coord's timeouts are set in each transaction. */
        settings_sql(s.local_sql, sizeof(s.local_sql), NULL, idle_ms, check, true, false);
        settings_sql(s.reset_sql, sizeof(s.reset_sql), s.appname, idle_ms, check, s.pooled, true);
        settings_sql(setup, sizeof(setup), s.appname, idle_ms, check, s.pooled, false);
        r = pg_exec(c, setup, errbuf, errlen);
        if (r < 0)
                return r;
        if (s.pooled)
                log_notice("Connected through a connection pooler (the server session pid %d is not the pid %d "
                           "the connection reports, as with PgBouncer): assuming transaction pooling, so no "
                           "session settings and no terminating of other sessions; the fence alone refuses a "
                           "superseded runner",
                           s.server_pid, PQbackendPID(c));
        *ret = s;
        return 0;
}

static const char *const reset_statements[] = {
        "CLOSE ALL",
        "SET SESSION AUTHORIZATION DEFAULT", /* and RESET ROLE */
        "RESET ALL",
        "UNLISTEN *",
        "DISCARD SEQUENCES",
        "DISCARD TEMP",
};

const char *fence_reset_statement(const struct fence_session *s, size_t k) {
        if (k < ELEMENTSOF(reset_statements))
                return reset_statements[k];
        return k == ELEMENTSOF(reset_statements) ? s->reset_sql : NULL;
}

int fence_query(PGconn *c, const struct fence_session *s, const char *sql, int n, const char *const *params,
                PGresult **ret, char *errbuf, size_t errlen) {
        static const char *const guard[] = {
                "BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE",
                "SET LOCAL SESSION AUTHORIZATION DEFAULT",
                "SET LOCAL ROLE NONE",
                /* A SET LOCAL of every setting the session changed, back to its value at connect time
                 * (transaction_* cannot change once the transaction runs; client_encoding is libpq's). */
                "SELECT count(pg_catalog.set_config(name, reset_val, true)) FROM pg_catalog.pg_settings"
                " WHERE context IN ('user', 'superuser') AND setting IS DISTINCT FROM reset_val"
                " AND name NOT IN ('role', 'session_authorization', 'client_encoding')"
                " AND name NOT LIKE 'transaction\\_%'",
        };
        _cleanup_free_ char *q = pg_qualify(sql);
        PGresult *out = NULL, *err = NULL;
        int want = (int) ELEMENTSOF(guard) + 1, idx = 0;
        bool sent, synced;

        if (!q) {
                errbuf_printf(errbuf, errlen, "out of memory");
                return -ENOMEM;
        }
        if (!PQenterPipelineMode(c)) {
                pg_format_error(NULL, c, errbuf, errlen);
                return PQstatus(c) == CONNECTION_BAD ? -ECONNRESET : -EIO;
        }
        sent = true;
        for (size_t i = 0; i < ELEMENTSOF(guard) && sent; i++)
                sent = PQsendQueryParams(c, guard[i], 0, NULL, NULL, NULL, NULL, 0);
        sent = sent && PQsendQueryParams(c, s->local_sql, 0, NULL, NULL, NULL, NULL, 0) &&
               PQsendQueryParams(c, q, n, NULL, params, NULL, NULL, 0) &&
               PQsendQueryParams(c, "COMMIT", 0, NULL, NULL, NULL, NULL, 0);
        /* Sync even after a failed send, so that what was sent can be read and the pipeline left. */
        synced = PQpipelineSync(c);
        while (synced) {
                PGresult *res = PQgetResult(c);
                ExecStatusType st;

                if (!res) {
                        if (PQstatus(c) == CONNECTION_BAD)
                                break;
                        idx++;
                        continue;
                }
                st = PQresultStatus(res);
                if (st == PGRES_PIPELINE_SYNC) {
                        PQclear(res);
                        break;
                }
                if (st == PGRES_FATAL_ERROR && !err)
                        err = res;
                else if (idx == want && !out && (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK))
                        out = res;
                else
                        PQclear(res);
        }
        if (!sent || !synced || PQstatus(c) == CONNECTION_BAD || err || !out) {
                pg_format_error(err, c, errbuf, errlen);
                PQclear(err);
                PQclear(out);
                if (PQstatus(c) == CONNECTION_BAD || !synced)
                        return -ECONNRESET;
                (void) PQexitPipelineMode(c);
                {
                        char e2[256];
                        (void) pg_exec(c, "ROLLBACK", e2, sizeof(e2));
                }
                return -EIO;
        }
        (void) PQexitPipelineMode(c);
        *ret = out;
        return 0;
}

static void terminate_superseded(PGconn *c, const struct fence_session *s) {
        _cleanup_pgresult_ PGresult *res = NULL;
        char e[512];
        const char *p[] = { s->appname };

        /* A pooled server session named like us may by now serve another client. */
        if (s->pooled)
                return;
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

int fence_raise(PGconn *c, const struct fence_session *s, const char *name, uint64_t redis_fence,
                uint64_t deadline_usec, int64_t *ret_token, char *errbuf, size_t errlen) {
        _cleanup_free_ char *begin = strdup_printf("BEGIN; SET LOCAL lock_timeout = '1s'; %s", s->local_sql);
        /* (fence_begin_sql() plus the lock timeout this raise needs.) */
        char rf[24], holder[320], host[256] = "", e2[256];
        const char *params[] = { name, rf, holder };
        int r;

        assert(errbuf); /* its SQLSTATE decides whether to wait */
        if (!begin) {
                errbuf_printf(errbuf, errlen, "out of memory");
                return -ENOMEM;
        }
        (void) gethostname(host, sizeof(host) - 1);
        snprintf(holder, sizeof(holder), "%s pid %d", host, (int) getpid());
        snprintf(rf, sizeof(rf), "%" PRIu64, redis_fence);
        for (unsigned attempt = 0;; attempt++) {
                _cleanup_pgresult_ PGresult *res = NULL;
                int64_t token = 0;

                terminate_superseded(c, s);
                r = pg_exec(c, begin, errbuf, errlen);
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
                                errbuf_printf(errbuf, errlen, "unexpected reply raising the fencing token");
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
