/* See pglock.h. */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "backoff.h"
#include "duration.h"
#include "log.h"
#include "pglock.h"
#include "pgutil.h"
#include "strutil.h"

char *pglock_describe_holder(PGconn *c, int64_t key) {
        _cleanup_pgresult_ PGresult *res = NULL;
        char keybuf[24], e[256];
        const char *params[] = { keybuf };

        snprintf(keybuf, sizeof(keybuf), "%" PRId64, key);
        if (pg_query(c,
                     "SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.client_addr::text, 'local'),"
                     " to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
                     " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                     " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
                     " AND l.classid = (($1::bigint >> 32) & 4294967295)::oid"
                     " AND l.objid = ($1::bigint & 4294967295)::oid LIMIT 1",
                     1, params, &res, e, sizeof(e)) < 0 ||
            PQntuples(res) == 0)
                return NULL;
        return strdup_printf("PostgreSQL session pid %s (application '%s', client %s, connected %s)",
                             PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2),
                             PQgetvalue(res, 0, 3));
}

#define POOLER_HINT                                                                                      \
        "the advisory-lock fallback needs a PostgreSQL session of its own, which a pooler in transaction "  \
        "pooling mode (PgBouncer pool_mode = transaction) does not keep, so the lock would not hold: give "  \
        "every runner --redis (or $COORD_REDIS), or a --database that connects to PostgreSQL directly"

static int refuse_pooler(PGconn *c, char *errbuf, size_t errlen) {
        bool pooled = false;
        int pid = 0, r;

        r = pg_detect_pooler(c, &pooled, &pid, errbuf, errlen);
        if (r < 0)
                return r;
        if (pooled) {
                errbuf_printf(errbuf, errlen,
                              "connected through a connection pooler (the server session pid %d is not the pid %d the "
                              "connection reports, as with PgBouncer): " POOLER_HINT,
                              pid, PQbackendPID(c));
                return -EPROTONOSUPPORT;
        }
        return 0;
}

/* The lock was just granted: in another transaction, the server session that answers must
 * be the one holding it (a pooler that passes the backend pid through would fail here). */
static int verify_held(PGconn *c, const char *const *params, char *errbuf, size_t errlen) {
        _cleanup_pgresult_ PGresult *res = NULL;
        int r;

        r = pg_query(c,
                     "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
                     " AND pid = pg_backend_pid() AND objsubid = 1"
                     " AND classid = (($1::bigint >> 32) & 4294967295)::oid"
                     " AND objid = ($1::bigint & 4294967295)::oid)",
                     1, params, &res, errbuf, errlen);
        if (r < 0)
                return r;
        if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
                errbuf_printf(errbuf, errlen,
                              "the advisory lock just taken is not held by the PostgreSQL session answering now (a "
                              "connection pooler?): " POOLER_HINT);
                return -EPROTONOSUPPORT;
        }
        return 0;
}

int pglock_acquire(const char *conninfo, const char *application_name, int64_t key, uint64_t wait_timeout_usec,
                   PGconn **ret, char *errbuf, size_t errlen) {
        _cleanup_pgconn_ PGconn *c = NULL;
        uint64_t deadline, start = now_usec();
        struct backoff b;
        char keybuf[24];
        const char *params[] = { keybuf };
        bool logged = false;
        int r;

        assert(conninfo);
        assert(ret);
        r = pg_connect(conninfo, application_name, &c, errbuf, errlen);
        if (r < 0)
                return r;
        /* fallback_application_name yields to one in the URL: the holder must be recognisable. */
        {
                _cleanup_free_ char *set = strdup_printf("SET application_name = '%s'", application_name);
                if (!set)
                        return -ENOMEM;
                r = pg_exec(c, set, errbuf, errlen);
                if (r < 0)
                        return r;
        }
        r = refuse_pooler(c, errbuf, errlen);
        if (r < 0)
                return r;
        snprintf(keybuf, sizeof(keybuf), "%" PRId64, key);
        deadline = wait_timeout_usec == UINT64_MAX ? UINT64_MAX : start + wait_timeout_usec;
        backoff_init(&b, 50 * USEC_PER_MSEC, 1 * USEC_PER_SEC);
        for (;;) {
                _cleanup_pgresult_ PGresult *res = NULL;
                uint64_t now, delay;

                r = pg_query(c, "SELECT pg_try_advisory_lock($1::bigint)", 1, params, &res, errbuf, errlen);
                if (r < 0)
                        return r;
                if (strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
                        r = verify_held(c, params, errbuf, errlen);
                        if (r < 0)
                                return r;
                        *ret = c;
                        c = NULL;
                        return 0;
                }
                now = now_usec();
                if (now >= deadline) {
                        _cleanup_free_ char *who = pglock_describe_holder(c, key);
                        char d[DURATION_MAX];
                        errbuf_printf(errbuf, errlen, "timed out after %s waiting for the migration lock held by %s",
                                      duration_format(now - start, d, sizeof(d)), who ?: "an unknown session");
                        return -ETIMEDOUT;
                }
                if (!logged) {
                        _cleanup_free_ char *who = pglock_describe_holder(c, key);
                        log_info("Waiting for the migration lock (advisory lock %" PRId64 ") held by %s", key,
                                 who ?: "another session");
                        logged = true;
                }
                /* Sleep between polls outside any transaction: this session holds no snapshot. */
                delay = MIN(backoff_next(&b), deadline - now);
                struct timespec ts = { .tv_sec = (time_t) (delay / USEC_PER_SEC),
                                       .tv_nsec = (long) (delay % USEC_PER_SEC) * 1000 };
                while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                        ;
        }
}
