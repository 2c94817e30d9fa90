/* See migrate.h.  The engine: lock, fence, history, and running migrations.
 *
 * Fencing.  The lock (Redis, or the advisory fallback) gives mutual exclusion
 * while leases hold; PostgreSQL enforces it when they do not.  After taking the
 * lock the runner
 *   1. terminates sessions of older runners of the same lock (recognised by
 *      application_name "coord-migrate run <lockid>") - a paused holder's open
 *      transaction is rolled back instead of blocking us (behind a connection
 *      pooler nothing is terminated: its idle timeout ends it, fence.h);
 *   2. raises the token in coord_schema_fence (to the Redis fence, or +1);
 *   3. only then reads the history.
 * Every migration transaction ends by locking the fence row FOR UPDATE and inserting
 * its history row; unless the row still holds our token the runner rolls back
 * instead of committing, so a superseded runner cannot commit, and no new holder
 * can raise the token between that check and the COMMIT (which rides at the head
 * of the next migration's pipeline).  Runner sessions also set
 * idle_in_transaction_session_timeout below the lease, so a paused client's
 * transaction dies on the server by itself.
 *
 * Errors.  Every step returns 0 or a negative errno that says which exit code the run
 * gets (migrate_exit_code(), the table in migrate.h), and fail() puts its message into
 * the report.  A library's errno is passed on where it already means the right thing;
 * elsewhere the step picks one of the class: as_unreachable() (exit 3), as_failed()
 * (exit 1), -EINVAL (exit 2), -EBADMSG (exit 4), -ETIMEDOUT (exit 5). */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "duration.h"
#include "exitcode.h"
#include "fence.h"
#include "flyway.h"
#include "history.h"
#include "lock.h"
#include "log.h"
#include "migrate.h"
#include "parse-util.h"
#include "pglock.h"
#include "pgutil.h"
#include "plan.h"
#include "strutil.h"

#define APPNAME_LOCK "coord-migrate lock "
#define PIPELINE_CHUNK_STMTS 64
#define PIPELINE_CHUNK_BYTES (64 * 1024)

/* Tags of pipelined queries that are not user statements. */
enum {
        TAG_BEGIN = -1,
        TAG_SETTING = -3,
        TAG_HISTORY = -4,
        TAG_COMMIT = -5,
        TAG_PROGRESS = -6,
        TAG_PREV_COMMIT = -7,
        TAG_DEFERRED = -8,
        TAG_FENCE = -9,
};

/* The end of every migration's transaction, before its history rows: the fence row,
 * locked FOR UPDATE until COMMIT, still holds our token (1 row), so no new holder can
 * raise the token between this check and our COMMIT; 0 rows: superseded, and the
 * runner rolls back what it sent ("commit refused").  $1 lock name, $2 token.
 * On a direct connection this and the history insert are prepared once (parsing and
 * planning them per migration cost 0.3 ms each time); behind a pooler they are unnamed
 * statements, since the next transaction may run on another server session (and
 * another client may get this one). */
#define PREPARED_FENCE_LOCK "coord_fence_lock"
#define PREPARED_HISTORY_INSERT "coord_history_insert"
static const char sql_fence_lock[] =
        "SELECT 1 FROM coord_schema_fence WHERE name = $1 AND token = $2::bigint FOR UPDATE";
/* $1..$9: version, description, type, script, checksum, installed_by, execution_ms
 * (NULL: since the transaction began), success, fencing token. */
static const char sql_history_insert[] =
        "INSERT INTO coord_schema_history (version, description, type, script, checksum, installed_by,"
        " execution_ms, success, fencing_token)"
        " VALUES ($1, $2, $3, $4, $5, $6,"
        " coalesce($7::integer, (extract(epoch FROM clock_timestamp() - now()) * 1000)::integer),"
        " $8::boolean, $9::bigint)";
static const struct {
        const char *name, *sql;
        int n_params;
} own_statements[] = {
        { PREPARED_FENCE_LOCK, sql_fence_lock, 2 },
        { PREPARED_HISTORY_INSERT, sql_history_insert, 9 },
};

struct runner {
        const struct migrate_options *o;
        struct migrate_report *rep;
        struct migration_set *set;
        struct history *h;
        PGconn *conn;
        struct fence_session session; /* pooled or not; coord's settings (fence.h) */
        bool prepared;                /* PREPARED_* exist on conn (a direct connection only) */
        _Atomic(PGcancel *) cancel; /* read by the keeper thread's on_lost */
        char *where; /* user@host:port/db */
        char lockid[25];
        char lock_name[64];
        int64_t advisory_key;
        struct lock *rlock;
        PGconn *advisory;
        int64_t token;
        char token_str[24];
        atomic_bool lost;
        bool keeper;
        bool signals; /* SIGINT/SIGTERM handlers installed (signals_install()) */
        /* A migration whose checks passed and whose COMMIT rides at the head of the next
         * migration's pipeline (or is sent alone by commit_pending()). */
        const struct migration *pending;
        struct migrate_entry *pending_e;
        uint64_t pending_t0;
        /* --phase pre: the report entries [defer_lo, defer_hi) that are held post-deploy versions
         * below the migration about to run; its transaction records them as deferred. */
        size_t defer_lo, defer_hi;
        char installed_by[300];
};

/* SIGINT/SIGTERM while holding the lock: cancel the running statement (PQcancel is
 * async-signal-safe), roll back, release the lock at once instead of making the
 * others wait for the lease to expire. */
static atomic_bool interrupted;
static PGcancel *volatile signal_cancel;

static void on_signal(int sig) {
        char e[64];
        PGcancel *c = signal_cancel;
        atomic_store(&interrupted, true);
        if (c)
                (void) PQcancel(c, e, sizeof(e));
}

static void signals_install(struct runner *x, bool on) {
        struct sigaction sa = { .sa_flags = SA_RESTART };
        sigemptyset(&sa.sa_mask);
        sa.sa_handler = on ? on_signal : SIG_DFL;
        signal_cancel = on ? atomic_load(&x->cancel) : NULL;
        (void) sigaction(SIGINT, &sa, NULL);
        (void) sigaction(SIGTERM, &sa, NULL);
}

/* ---- names, the report ---------------------------------------------------------------------------- */

static const char *const migrate_command_table[_MIGRATE_COMMAND_MAX] = {
        [MIGRATE_APPLY] = "apply",       [MIGRATE_STATUS] = "status",     [MIGRATE_PLAN] = "plan",
        [MIGRATE_VALIDATE] = "validate", [MIGRATE_BASELINE] = "baseline", [MIGRATE_REPAIR] = "repair",
};
DEFINE_STRING_TABLE_LOOKUP(migrate_command, enum migrate_command, _MIGRATE_COMMAND_MAX)

static const char *const migrate_phase_table[_MIGRATE_PHASE_MAX] = {
        [MIGRATE_PHASE_ALL] = "all",
        [MIGRATE_PHASE_PRE] = "pre",
        [MIGRATE_PHASE_POST] = "post",
};
DEFINE_STRING_TABLE_LOOKUP_TO_STRING(migrate_phase, enum migrate_phase, _MIGRATE_PHASE_MAX)

int migrate_phase_from_string(const char *s, enum migrate_phase *ret) {
        int k = string_table_lookup(migrate_phase_table, _MIGRATE_PHASE_MAX, s);

        if (k < 0)
                return k;
        *ret = (enum migrate_phase) k;
        return 0;
}

static const char *const migrate_state_table[_STATE_MAX] = {
        [STATE_APPLIED] = "applied", [STATE_PENDING] = "pending",   [STATE_CHANGED] = "changed",
        [STATE_MISSING] = "missing", [STATE_FAILED] = "failed",     [STATE_PARTIAL] = "partial",
        [STATE_FUTURE] = "future",   [STATE_BASELINE] = "baseline", [STATE_IGNORED] = "ignored",
        [STATE_DELETED] = "deleted",
};
DEFINE_STRING_TABLE_LOOKUP(migrate_state, enum migrate_state, _STATE_MAX)

void migrate_report_done(struct migrate_report *r) {
        assert(r);
        for (size_t i = 0; i < r->n; i++)
                free(r->v[i].detail);
        free(r->v);
        for (size_t i = 0; i < r->n_strings; i++)
                free(r->strings[i]);
        free(r->strings);
        source_free(r->set);
        history_free(r->history);
        r->v = NULL;
        r->n = 0;
        r->strings = NULL;
        r->n_strings = 0;
        r->set = NULL;
        r->history = NULL;
}

void migrate_entry_add_detail(struct migrate_entry *e, const char *what) {
        char *d;

        assert(e);
        assert(what);
        d = e->detail ? strdup_printf("%s; %s", e->detail, what) : strdup(what);
        if (d) {
                free(e->detail);
                e->detail = d;
        }
}

/* ---- outcomes ----------------------------------------------------------------------------------- */

/* The errnos that mean PostgreSQL or Redis could not be reached, or refused us (exit 3). */
static bool errno_is_unreachable(int r) {
        switch (-r) {
        case ECONNREFUSED:
        case ECONNRESET:
        case ECONNABORTED:
        case EHOSTUNREACH:
        case EHOSTDOWN:
        case ENETUNREACH:
        case ENETDOWN:
        case ENOTCONN:
        case EACCES:
        case EREMOTEIO:
                return true;
        default:
                return false;
        }
}

int migrate_exit_code(int r) {
        assert(r <= 0);
        if (r == 0)
                return EXIT_OK;
        if (r == -EINVAL || r == -EPROTONOSUPPORT)
                return EXIT_USAGE;
        if (errno_is_unreachable(r))
                return EXIT_UNAVAILABLE;
        if (r == -EBADMSG)
                return EXIT_VALIDATION;
        if (r == -ETIMEDOUT)
                return EXIT_TIMEOUT;
        return EXIT_FAILED;
}

/* r when it already means "unreachable" (exit 3); else -EREMOTEIO: the server failed us. */
static int as_unreachable(int r) {
        return errno_is_unreachable(r) ? r : -EREMOTEIO;
}

/* r when it means "ran and failed" (exit 1); else -EIO. */
static int as_failed(int r) {
        return migrate_exit_code(r) == EXIT_FAILED ? r : -EIO;
}

/* A failure to connect (pg_connect(), lock_acquire(), pglock_acquire()): bad input stays
 * bad input, anything else is unreachable, as exit_code_for_connect() says. */
static int as_connect_error(int r) {
        return exit_code_for_connect(r) == EXIT_USAGE ? r : as_unreachable(r);
}

/* A failed query (pg_query(), history and fence helpers): a lost connection (-ECONNRESET)
 * is unreachable, anything else failed. */
static int as_query_error(int r) {
        return r == -ECONNRESET ? r : as_failed(r);
}

/* The run's failure r (< 0), with its message in the report.  Returns r. */
static int fail(struct runner *x, int r, const char *fmt, ...) _printf_(3, 4);
static int fail(struct runner *x, int r, const char *fmt, ...) {
        va_list ap;

        assert(r < 0);
        va_start(ap, fmt);
        errbuf_vprintf(x->rep->message, sizeof(x->rep->message), fmt, ap);
        va_end(ap);
        return r;
}

/* ---- identity, lock name ---------------------------------------------------------------------- */

static int identify(struct runner *x) {
        _cleanup_pgresult_ PGresult *res = NULL;
        _cleanup_free_ char *ident = NULL;
        char e[512], hex[65], key[17];
        int r;

        /* system_identifier needs pg_monitor-ish rights on some setups: fall back to the database oid
         * (a collision only serialises two databases, never lets two runners in).  Only the
         * fallback's error is said. */
        r = pg_query(x->conn,
                     "SELECT (SELECT system_identifier::text FROM pg_control_system()),"
                     " current_database(), current_schema()",
                     0, NULL, &res, e, sizeof(e));
        if (r < 0)
                r = pg_query(x->conn,
                             "SELECT 'oid' || (SELECT oid FROM pg_database WHERE datname = current_database()),"
                             " current_database(), current_schema()",
                             0, NULL, &res, e, sizeof(e));
        if (r < 0)
                return fail(x, as_unreachable(r), "%s: %s", x->where, e);
        if (PQgetisnull(res, 0, 2))
                return fail(x, -EINVAL,
                            "%s: no current schema (search_path names no existing schema): the history "
                            "table lives in the connection's schema",
                            x->where);
        if (pg_set_schema(x->conn, PQgetvalue(res, 0, 2)) < 0)
                return fail(x, -ENOMEM, "out of memory");
        ident = strdup_printf("%s/%s/%s/%s", PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2),
                              HISTORY_TABLE);
        if (!ident)
                return fail(x, -ENOMEM, "out of memory");
        sha256_hex(ident, strlen(ident), hex);
        memcpy(x->lockid, hex, 24);
        x->lockid[24] = '\0';
        snprintf(x->lock_name, sizeof(x->lock_name), "migrate-%s", x->lockid);
        /* The advisory lock's key: the first 64 bits of the same hash. */
        memcpy(key, hex, 16);
        key[16] = '\0';
        x->advisory_key = (int64_t) strtoull(key, NULL, 16);
        log_debug("Migration lock %s for %s", x->lock_name, ident);
        return 0;
}

static int connect_main(struct runner *x, const char *appname) {
        char e[1024];
        int r = pg_connect(x->o->database, appname, &x->conn, e, sizeof(e));
        if (r < 0)
                return fail(x, as_connect_error(r), "%s", e);
        return 0;
}

/* ---- locking and fencing ------------------------------------------------------------------------ */

static void on_lost(struct lock *l, void *userdata) {
        struct runner *x = userdata;
        atomic_store(&x->lost, true);
        /* Abort whatever statement runs now; the transaction then cannot commit. */
        PGcancel *c = atomic_load(&x->cancel);
        if (c) {
                char e[256];
                (void) PQcancel(c, e, sizeof(e));
        }
}

/* The advisory-lock fallback (no Redis): pg_try_advisory_lock polled on its own connection. */
static int take_advisory_lock(struct runner *x) {
        _cleanup_free_ char *app = strdup_printf(APPNAME_LOCK "%s", x->lockid);
        char e[1024];
        int r;

        log_notice("No Redis configured (--redis / $COORD_REDIS): using the PostgreSQL advisory lock "
                   "fallback (pg_try_advisory_lock polled on its own connection; not usable behind "
                   "PgBouncer transaction pooling)");
        r = pglock_acquire(x->o->database, app, x->advisory_key, x->o->wait_timeout_usec, &x->advisory, e,
                           sizeof(e));
        if (r == -ETIMEDOUT)
                return fail(x, r, "%s", e);
        if (r < 0)
                return fail(x, as_connect_error(r), "%s", e);
        snprintf(x->rep->lock, sizeof(x->rep->lock), "advisory lock %" PRId64, x->advisory_key);
        return 0;
}

/* The Redis lock: one try first, so that a wait can say who holds it; then the keeper. */
static int take_redis_lock(struct runner *x) {
        struct lock_options lo = {
                .ns = x->o->ns,
                .lease_usec = x->o->lease_usec,
                .wait_timeout_usec = 0,
                .recheck_usec = 0,
        };
        char e[1024], d[DURATION_MAX];
        int r;

        r = lock_acquire(x->o->redis, x->lock_name, &lo, &x->rlock, e, sizeof(e));
        if (r == -ETIMEDOUT && x->o->wait_timeout_usec > 0) {
                _cleanup_free_ char *who = NULL;
                (void) lock_describe_holder(x->o->redis, x->o->ns, x->lock_name, &who);
                log_info("Waiting up to %s for the migration lock %s held by %s",
                         duration_format(x->o->wait_timeout_usec, d, sizeof(d)), x->lock_name,
                         who ?: "another runner");
                lo.wait_timeout_usec = x->o->wait_timeout_usec;
                r = lock_acquire(x->o->redis, x->lock_name, &lo, &x->rlock, e, sizeof(e));
        }
        if (r == -ETIMEDOUT)
                return fail(x, r, "timed out after %s waiting for the migration lock %s: %s",
                            duration_format(x->o->wait_timeout_usec, d, sizeof(d)), x->lock_name, e);
        if (r < 0)
                return fail(x, as_connect_error(r), "Redis: %s", e);
        snprintf(x->rep->lock, sizeof(x->rep->lock), "redis lock %s fence %" PRIu64, x->lock_name,
                 lock_fence(x->rlock));
        r = lock_keeper_start(x->rlock, on_lost, x);
        if (r < 0)
                return fail(x, as_failed(r), "cannot start the lease keeper: %s", strerror(-r));
        x->keeper = true;
        return 0;
}

static int take_lock(struct runner *x) {
        return x->o->redis ? take_redis_lock(x) : take_advisory_lock(x);
}

static void drop_lock(struct runner *x) {
        if (x->rlock || x->advisory)
                log_debug("Releasing the migration lock (%s)", x->rep->lock);
        if (x->rlock) {
                if (x->keeper)
                        lock_keeper_stop(x->rlock);
                x->keeper = false;
                if (!lock_is_lost(x->rlock))
                        (void) lock_release(x->rlock);
                x->rlock = lock_free(x->rlock);
        }
        if (x->advisory) {
                PQfinish(x->advisory);
                x->advisory = NULL;
        }
}

static bool is_lost(struct runner *x) {
        if (atomic_load(&x->lost))
                return true;
        if (x->rlock && lock_is_lost(x->rlock))
                return true;
        if (x->advisory && PQstatus(x->advisory) == CONNECTION_BAD)
                return true;
        return false;
}

/* Prepare PREPARED_FENCE_LOCK and PREPARED_HISTORY_INSERT (a direct connection only):
 * 0, or -EIO (then coord sends them unnamed). */
static int prepare_own(struct runner *x) {
        for (size_t i = 0; i < ELEMENTSOF(own_statements); i++) {
                _cleanup_free_ char *q = pg_qualify(own_statements[i].sql);
                _cleanup_pgresult_ PGresult *res =
                        q ? PQprepare(x->conn, own_statements[i].name, q, own_statements[i].n_params, NULL) : NULL;
                if (PQresultStatus(res) != PGRES_COMMAND_OK) {
                        char e[512];
                        pg_format_error(res, x->conn, e, sizeof(e));
                        log_debug("Cannot prepare %s (%s): sending it unnamed", own_statements[i].name, e);
                        return -EIO;
                }
        }
        return 0;
}

/* Session settings, stale sessions, then the fence token. */
static int raise_fence(struct runner *x) {
        uint64_t deadline = x->o->wait_timeout_usec == UINT64_MAX
                                    ? UINT64_MAX
                                    : now_usec() + MAX(x->o->wait_timeout_usec, 10 * USEC_PER_SEC);
        char e[1024];
        int r;

        r = fence_session_setup(x->conn, x->lockid, x->o->lease_usec, &x->session, e, sizeof(e));
        if (r < 0)
                return fail(x, as_unreachable(r), "%s: %s", x->where, e);
        r = history_ensure_tables(x->conn, e, sizeof(e));
        if (r < 0)
                return fail(x, as_query_error(r), "%s: %s", x->where, e);
        r = fence_raise(x->conn, &x->session, x->lock_name, x->rlock ? lock_fence(x->rlock) : 0, deadline,
                        &x->token, e, sizeof(e));
        if (r == -ETIMEDOUT)
                return fail(x, r, "%s: timed out waiting for a superseded runner's transaction: %s", x->where, e);
        if (r < 0)
                return fail(x, as_query_error(r), "%s: cannot set the fencing token: %s", x->where, e);
        if (!x->session.pooled)
                x->prepared = prepare_own(x) == 0;
        snprintf(x->token_str, sizeof(x->token_str), "%" PRId64, x->token);
        x->rep->fencing_token = x->token;
        log_info("Holding the migration lock (%s), fencing token %" PRId64, x->rep->lock, x->token);
        atomic_store(&x->cancel, PQgetCancel(x->conn));
        return 0;
}

/* ---- running ------------------------------------------------------------------------------------ */

struct batch {
        int tags[PIPELINE_CHUNK_STMTS + 16];
        int n;
        size_t bytes;
        /* first error */
        PGresult *err;
        int err_tag;
        int history_rows; /* 1: the fence check found our token current; 0: superseded; -1 until it ran */
        bool prev_sent, prev_ok; /* the pending migration's COMMIT was queued / succeeded */
};

/* Queue a query; tag < 0 marks our own SQL, whose table names get the schema (never a user statement's). */
static int send_q(PGconn *c, struct batch *b, int tag, const char *sql, int n, const char *const *params) {
        _cleanup_free_ char *q = NULL;

        if (b->n >= (int) ELEMENTSOF(b->tags))
                return -E2BIG;
        if (tag < 0) {
                q = pg_qualify(sql);
                if (!q)
                        return -ENOMEM;
        }
        if (!PQsendQueryParams(c, q ?: sql, n, NULL, params, NULL, NULL, 0))
                return -EIO;
        b->tags[b->n++] = tag;
        b->bytes += strlen(sql);
        return 0;
}

/* Sync and read every result of the batch.  The first error is kept in b->err. */
static int sync_read(PGconn *c, struct batch *b) {
        int idx = 0;

        if (!PQpipelineSync(c))
                return -EIO;
        for (;;) {
                PGresult *res = PQgetResult(c);
                if (!res) {
                        if (PQstatus(c) == CONNECTION_BAD)
                                return -ECONNRESET;
                        idx++;
                        continue;
                }
                ExecStatusType st = PQresultStatus(res);
                if (st == PGRES_PIPELINE_SYNC) {
                        PQclear(res);
                        break;
                }
                if (st == PGRES_FATAL_ERROR && !b->err) {
                        b->err = res;
                        b->err_tag = idx < b->n ? b->tags[idx] : TAG_COMMIT;
                        continue;
                }
                if (st == PGRES_TUPLES_OK && idx < b->n && b->tags[idx] == TAG_FENCE)
                        b->history_rows = PQntuples(res) == 1 ? 1 : 0;
                if (st == PGRES_COMMAND_OK && idx < b->n && b->tags[idx] == TAG_PREV_COMMIT)
                        b->prev_ok = true;
                PQclear(res);
                if (PQstatus(c) == CONNECTION_BAD)
                        return -ECONNRESET;
        }
        b->n = 0;
        b->bytes = 0;
        return 0;
}

/* One of coord's own statements: prepared on a direct connection, else unnamed. */
static int send_own(struct runner *x, struct batch *b, int tag, const char *name, const char *sql, int n,
                    const char *const *params) {
        if (!x->prepared)
                return send_q(x->conn, b, tag, sql, n, params);
        if (b->n >= (int) ELEMENTSOF(b->tags))
                return -E2BIG;
        if (!PQsendQueryPrepared(x->conn, name, n, params, NULL, NULL, 0))
                return -EIO;
        b->tags[b->n++] = tag;
        return 0;
}

/* Whether a statement of m starts with PREPARE, DEALLOCATE or DISCARD: m may leave
 * prepared statements of its own, or remove coord's. */
static bool touches_prepared(const struct migration *m) {
        static const char *const words[] = { "PREPARE", "DEALLOCATE", "DISCARD" };

        for (size_t i = 0; i < m->n_stmts; i++) {
                size_t l = 0;
                const char *w = sqlsplit_word(m->sql, &m->stmts[i], 0, &l);
                for (size_t k = 0; w && k < ELEMENTSOF(words); k++)
                        if (l == strlen(words[k]) && strncasecmp(w, words[k], l) == 0)
                                return true;
        }
        return false;
}

/* After such a file, in its transaction: no prepared statement of its survives it (as with
 * psql, a session per file), and coord's are prepared again. */
static int send_reprepare(struct runner *x, struct batch *b) {
        int r = send_q(x->conn, b, TAG_SETTING, "DEALLOCATE ALL", 0, NULL);

        for (size_t i = 0; r == 0 && i < ELEMENTSOF(own_statements); i++) {
                _cleanup_free_ char *q = pg_qualify(own_statements[i].sql);
                if (!q)
                        return -ENOMEM;
                if (b->n >= (int) ELEMENTSOF(b->tags) ||
                    !PQsendPrepare(x->conn, own_statements[i].name, q, own_statements[i].n_params, NULL))
                        return -EIO;
                b->tags[b->n++] = TAG_SETTING;
        }
        return r;
}

/* The batch failed because a prepared statement of coord's is gone (26000). */
static bool lost_own_statements(const struct batch *b) {
        return b->err && strcmp(pg_sqlstate(b->err), "26000") == 0 &&
               (b->err_tag == TAG_FENCE || b->err_tag == TAG_HISTORY || b->err_tag == TAG_DEFERRED);
}

static void batch_clear(struct batch *b) {
        PQclear(b->err);
        b->err = NULL;
        b->n = 0;
        b->bytes = 0;
}

static char *settings_sql(const char *scope, uint64_t usec, const char *name) {
        return strdup_printf("SET %s%s = %" PRIu64, scope, name, usec / USEC_PER_MSEC);
}

/* ---- COPY ... FROM STDIN ------------------------------------------------------------------------ */

#define COPY_CHUNK_BYTES (64 * 1024)

/* Run st, a COPY ... FROM STDIN, sending its data block from the script (sql) with the copy
 * protocol; not in pipeline mode (libpq has no COPY there).  The final result (the caller
 * clears it), or NULL when the connection failed or memory ran out. */
static PGresult *copy_from_script(PGconn *c, const char *sql, const struct sql_stmt *st) {
        _cleanup_free_ char *q = strndup(sql + st->offset, st->len);
        PGresult *res, *extra;

        if (!q || !PQsendQuery(c, q))
                return NULL;
        res = PQgetResult(c);
        if (PQresultStatus(res) == PGRES_COPY_IN) {
                const char *d = sql + st->data_offset;
                size_t left = st->data_len;
                int ok = 1;

                PQclear(res);
                while (left > 0 && ok == 1) {
                        size_t n = MIN(left, (size_t) COPY_CHUNK_BYTES);
                        ok = PQputCopyData(c, d, (int) n);
                        d += n;
                        left -= n;
                }
                (void) PQputCopyEnd(c, ok == 1 ? NULL : "coord: sending the COPY data failed");
                res = PQgetResult(c);
        }
        while ((extra = PQgetResult(c)))
                PQclear(extra);
        return res;
}

/* The data row a COPY error's context names ("COPY t, line 3, column a: ..."), and that
 * context line in *ret_ctx / *ret_len; 0 when there is none. */
static unsigned long copy_error_row(const PGresult *res, const char **ret_ctx, int *ret_len) {
        const char *ctx = res ? PQresultErrorField(res, PG_DIAG_CONTEXT) : NULL;

        for (const char *l = ctx; l && *l;) {
                const char *eol = strchrnul(l, '\n');
                if (strncmp(l, "COPY ", 5) == 0)
                        for (const char *p = strstr(l, ", line "); p && p < eol; p = strstr(p + 7, ", line ")) {
                                const char *d = p + 7;
                                unsigned long row = 0;
                                while (d < eol && *d >= '0' && *d <= '9' && row < 100000000000UL)
                                        row = row * 10 + (unsigned long) (*d++ - '0');
                                if (d > p + 7 && (d == eol || *d == ',' || *d == ':')) {
                                        *ret_ctx = l;
                                        *ret_len = (int) MIN((size_t) (eol - l), (size_t) 200);
                                        return row;
                                }
                        }
                l = *eol ? eol + 1 : eol;
        }
        return 0;
}

/* Statement i of m, inside run_in_transaction(), is a COPY ... FROM STDIN: read what the
 * pipeline holds so far, leave pipeline mode for the COPY, and come back.  0, with a failed
 * result (of the COPY, or of a query before it) in b->err; -EIO when the connection failed. */
static int copy_in_transaction(struct runner *x, const struct migration *m, size_t i, struct batch *b) {
        PGresult *res;

        if (b->n > 0 && sync_read(x->conn, b) < 0)
                return -EIO;
        if (b->err)
                return 0;
        if (!PQexitPipelineMode(x->conn))
                return -EIO;
        res = copy_from_script(x->conn, m->sql, &m->stmts[i]);
        if (res && PQresultStatus(res) != PGRES_COMMAND_OK) {
                b->err = res;
                b->err_tag = (int) i;
        } else
                PQclear(res);
        if (PQstatus(x->conn) != CONNECTION_OK || !PQenterPipelineMode(x->conn))
                return -EIO;
        return res ? 0 : -EIO;
}

/* Describe a failure of statement tag (or an internal query) of m into the report; -EIO. */
static int report_failure(struct runner *x, const struct migration *m, int tag, PGresult *res) {
        char e[2048];
        pg_format_error(res, x->conn, e, sizeof(e));
        if (tag >= 0) {
                const char *pos = PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION);
                uint64_t p = 0;
                if (pos)
                        (void) parse_uint64(pos, &p);
                unsigned line = sqlsplit_line_of_position(m->sql, &m->stmts[tag], (unsigned long) p);
                char copy_ctx[256] = "";
                const char *why = "";
                if (m->stmts[tag].data_line > 0) {
                        /* A bad data row: its line in the file, and PostgreSQL's context (column). */
                        const char *ctx = NULL;
                        int cl = 0;
                        unsigned long row = copy_error_row(res, &ctx, &cl);
                        if (row > 0) {
                                line = sqlsplit_copy_row_line(m->sql, &m->stmts[tag], row);
                                snprintf(copy_ctx, sizeof(copy_ctx), " (%.*s)", cl, ctx);
                        }
                }
                if (atomic_load(&interrupted))
                        why = " (interrupted by a signal: rolled back)";
                else if (is_lost(x))
                        why = m->no_transaction ? " (the lock was lost and another runner took over: stopped here)"
                                                : " (the lock was lost and another runner took over: rolled back, "
                                                  "commit refused)";
                else if (strcmp(pg_sqlstate(res), "57P01") == 0)
                        why = m->no_transaction ? " (session terminated, most likely by a newer lock holder: stopped "
                                                  "here)"
                                                : " (session terminated, most likely by a newer lock holder: rolled "
                                                  "back, commit refused)";
                else if (strcmp(pg_sqlstate(res), "25001") == 0)
                        why = " (add '-- coord:no-transaction' at the top of the file to run it outside a transaction)";
                return fail(x, -EIO, "%s: line %u: %s%s%s", m->script, line, e, copy_ctx, why);
        }
        if (tag == TAG_COMMIT)
                return fail(x, -EIO, "%s: commit failed: %s%s", m->script, e,
                            is_lost(x) ? " (the lock was lost and another runner took over: commit refused)"
                                       : "; rolled back");
        return fail(x, -EIO, "%s: %s", m->script, e);
}

static void pending_done(struct runner *x) {
        x->pending_e->ran = true;
        x->pending_e->run_ms = (int64_t) ((now_usec() - x->pending_t0) / USEC_PER_MSEC);
        x->pending = NULL;
        x->pending_e = NULL;
}

/* Whether m, whose checks passed, may still commit: 0, or the failure (-EINTR, -ENOLCK; its
 * transaction is rolled back by the caller).  Checked right before its COMMIT is sent,
 * wherever that happens. */
static int may_commit(struct runner *x, const struct migration *m) {
        if (atomic_load(&interrupted))
                return fail(x, -EINTR, "%s: interrupted by a signal: rolled back", m->script);
        if (is_lost(x))
                return fail(x, -ENOLCK,
                            "%s: commit refused: the lock was lost (fencing token %" PRId64 " superseded); rolled back",
                            m->script, x->token);
        return 0;
}

/* Commit the pending migration on its own (before no-transaction work, and at the end), or
 * roll it back when it may no longer commit.  0, or the failure. */
static int commit_pending(struct runner *x) {
        struct batch b = { .history_rows = -1 };
        const struct migration *m = x->pending;
        int r;

        if (!m)
                return 0;
        r = may_commit(x, m);
        if (!PQenterPipelineMode(x->conn)) {
                x->pending = NULL;
                return r ?: fail(x, -ENOTCONN, "%s: %s: cannot enter pipeline mode", m->script, x->where);
        }
        if (send_q(x->conn, &b, TAG_COMMIT, r ? "ROLLBACK" : "COMMIT", 0, NULL) < 0 || sync_read(x->conn, &b) < 0) {
                char e[1024];
                pg_format_error(b.err, x->conn, e, sizeof(e));
                batch_clear(&b);
                (void) PQexitPipelineMode(x->conn);
                x->pending = NULL;
                return r ?: fail(x, -EIO, "%s: commit failed (connection lost: %s)%s", m->script, e,
                                 is_lost(x) ? "; the lock was lost" : "");
        }
        if (r == 0 && b.err)
                r = report_failure(x, m, TAG_COMMIT, b.err);
        batch_clear(&b);
        (void) PQexitPipelineMode(x->conn);
        if (r < 0) {
                x->pending = NULL;
                return r;
        }
        pending_done(x);
        return 0;
}

/* After a sync: settle the pending migration whose COMMIT headed this batch. */
static void settle_prev(struct runner *x, struct batch *b) {
        if (x->pending && b->prev_sent && b->prev_ok) {
                pending_done(x);
                b->prev_sent = false;
        }
}

/* --phase pre: within the transaction of the migration about to commit, a fenced history
 * row of type 'deferred' for each held post-deploy version below it, so that neither the
 * planner nor validate calls that version a gap once this one is applied (and --phase post
 * or all still runs it).  They commit or roll back with the migration.  0; -EIO when a
 * query could not be sent; -EBADMSG when a result failed (b->err is set). */
static int send_deferred(struct runner *x, struct batch *b) {
        for (size_t k = x->defer_lo; k < x->defer_hi; k++) {
                struct migrate_entry *d = &x->rep->v[k];
                const char *p[] = { d->version,      d->description, "deferred", d->script, d->checksum,
                                    x->installed_by, "0",            "true",     x->token_str };

                if (!d->defer || d->deferred)
                        continue;
                if (b->n >= (int) ELEMENTSOF(b->tags) - 4 ||
                    send_own(x, b, TAG_DEFERRED, PREPARED_HISTORY_INSERT, sql_history_insert, (int) ELEMENTSOF(p),
                             p) < 0)
                        return -EIO;
                d->deferred = true;
                log_info("Deferring %s (post-deploy) below %s: recorded for --phase post", d->script,
                         x->rep->v[x->defer_hi].script);
                if (b->n >= PIPELINE_CHUNK_STMTS) {
                        if (sync_read(x->conn, b) < 0)
                                return -EIO;
                        settle_prev(x, b);
                        if (b->err)
                                return -EBADMSG;
                }
        }
        x->defer_lo = x->defer_hi;
        return 0;
}

/* Queue the head of a transaction: the pending migration's COMMIT, BEGIN and, behind a pooler,
 * coord's timeouts (no session settings there).  0 or -EIO. */
static int send_begin(struct runner *x, struct batch *b) {
        if (x->pending) {
                if (send_q(x->conn, b, TAG_PREV_COMMIT, "COMMIT", 0, NULL) < 0)
                        return -EIO;
                b->prev_sent = true;
        }
        if (send_q(x->conn, b, TAG_BEGIN, "BEGIN", 0, NULL) < 0)
                return -EIO;
        if (x->session.pooled && send_q(x->conn, b, TAG_SETTING, x->session.local_sql, 0, NULL) < 0)
                return -EIO;
        return 0;
}

/* Queue m's own part of its transaction: its timeouts, then its statements, a COPY ... FROM
 * STDIN with its data (out of pipeline mode for a moment), and a read every PIPELINE_CHUNK_*.
 * 0; -EIO or -ENOMEM when a query could not be sent or the connection failed; -EBADMSG when
 * a result read on the way failed (b->err). */
static int send_statements(struct runner *x, const struct migration *m, struct batch *b) {
        _cleanup_free_ char *st = NULL, *lt = NULL;

        if (m->statement_timeout_usec > 0) {
                st = settings_sql("LOCAL ", m->statement_timeout_usec, "statement_timeout");
                if (!st || send_q(x->conn, b, TAG_SETTING, st, 0, NULL) < 0)
                        return -EIO;
        }
        if (m->lock_timeout_usec > 0) {
                lt = settings_sql("LOCAL ", m->lock_timeout_usec, "lock_timeout");
                if (!lt || send_q(x->conn, b, TAG_SETTING, lt, 0, NULL) < 0)
                        return -EIO;
        }
        for (size_t i = 0; i < m->n_stmts; i++) {
                if (m->stmts[i].data_line > 0) {
                        if (copy_in_transaction(x, m, i, b) < 0)
                                return -EIO;
                        settle_prev(x, b);
                        if (b->err)
                                return -EBADMSG;
                        continue;
                }
                _cleanup_free_ char *q = strndup(m->sql + m->stmts[i].offset, m->stmts[i].len);
                if (!q)
                        return -ENOMEM;
                if (send_q(x->conn, b, (int) i, q, 0, NULL) < 0)
                        return -EIO;
                if (b->n >= PIPELINE_CHUNK_STMTS || b->bytes >= PIPELINE_CHUNK_BYTES) {
                        /* The transaction idles while we read: under coord's timeout again,
                         * whatever the file set (a pg_dump header sets it to 0). */
                        if (send_q(x->conn, b, TAG_SETTING, x->session.local_sql, 0, NULL) < 0 ||
                            sync_read(x->conn, b) < 0)
                                return -EIO;
                        settle_prev(x, b);
                        if (b->err)
                                return -EBADMSG;
                }
        }
        return 0;
}

/* Queue the end of m's transaction, after its statements: back to the session of a new
 * connection (and coord's prepared statements again after a file that touches them), the
 * fence check, deferred rows, the history row and, finishing a no-transaction file, the
 * removal of its progress.  Returns as send_statements(). */
static int send_epilogue(struct runner *x, const struct migration *m, bool no_tx_finish, const char *exec_ms,
                         struct batch *b) {
        const char *hist[] = { m->version,   m->description, migration_type_to_string(m->type),
                               m->script,    m->checksum,    x->installed_by,
                               exec_ms,      "true",         x->token_str };
        const char *fence_params[] = { x->lock_name, x->token_str };
        const char *rs;
        int r;

        /* Back to the session of a new connection, and coord's settings, before coord's own writes
         * (which then run as coord's role, whatever the file set): committed together, so the next
         * file starts clean too; rolled back, the session is as clean as before. */
        for (size_t k = 0; (rs = fence_reset_statement(&x->session, k)); k++)
                if (send_q(x->conn, b, TAG_SETTING, rs, 0, NULL) < 0)
                        return -EIO;
        if (x->prepared && touches_prepared(m) && send_reprepare(x, b) < 0)
                return -EIO;
        if (send_own(x, b, TAG_FENCE, PREPARED_FENCE_LOCK, sql_fence_lock, (int) ELEMENTSOF(fence_params),
                     fence_params) < 0)
                return -EIO;
        r = send_deferred(x, b);
        if (r < 0)
                return r;
        if (b->n >= (int) ELEMENTSOF(b->tags) - 4 ||
            send_own(x, b, TAG_HISTORY, PREPARED_HISTORY_INSERT, sql_history_insert, (int) ELEMENTSOF(hist), hist) <
                    0)
                return -EIO;
        if (no_tx_finish) {
                const char *p[] = { m->script };
                if (send_q(x->conn, b, TAG_PROGRESS, "DELETE FROM coord_schema_progress WHERE script = $1", 1, p) <
                    0)
                        return -EIO;
        }
        return 0;
}

/* The whole transaction of m but its COMMIT, sent and read.  Returns as send_statements(). */
static int send_transaction(struct runner *x, const struct migration *m, bool no_tx_finish, const char *exec_ms,
                            struct batch *b) {
        int r = send_begin(x, b);

        if (r == 0 && !no_tx_finish)
                r = send_statements(x, m, b);
        if (r == 0)
                r = send_epilogue(x, m, no_tx_finish, exec_ms, b);
        if (r < 0)
                return r;
        if (sync_read(x->conn, b) < 0)
                return -EIO;
        settle_prev(x, b);
        return b->err ? -EBADMSG : 0;
}

/* A result of m's transaction failed (b->err): report it, once, and return the failure.
 * -EAGAIN instead when m is to run again from its start, with unnamed statements from now
 * on: something it ran (a function) deallocated coord's prepared statements (a PREPARE,
 * DEALLOCATE or DISCARD statement of the file itself is seen in advance). */
static int transaction_failed(struct runner *x, const struct migration *m, const struct batch *b, size_t defer_lo) {
        int r;

        if (x->prepared && lost_own_statements(b)) {
                log_notice("%s deallocated coord's prepared statements: running it again, with unnamed ones",
                           m->script);
                x->prepared = false;
                for (size_t k = defer_lo; k < x->defer_hi; k++)
                        if (x->rep->v[k].defer)
                                x->rep->v[k].deferred = false;
                x->defer_lo = defer_lo;
                return -EAGAIN;
        }
        if (b->err_tag == TAG_PREV_COMMIT && x->pending) {
                /* The previous migration's COMMIT failed (a deferred constraint, a lost session):
                 * it is rolled back, and this one never started. */
                r = report_failure(x, x->pending, TAG_COMMIT, b->err);
                x->pending = NULL;
        } else
                r = report_failure(x, m, b->err_tag, b->err);
        return r;
}

/* Roll back the transaction in the pipeline, and leave pipeline mode. */
static void transaction_rollback(struct runner *x, struct batch *b) {
        batch_clear(b);
        if (PQstatus(x->conn) == CONNECTION_OK && send_q(x->conn, b, TAG_COMMIT, "ROLLBACK", 0, NULL) == 0)
                (void) sync_read(x->conn, b);
        batch_clear(b);
        (void) PQexitPipelineMode(x->conn);
}

/* m's transaction could not be sent, or the connection failed, without a failed result to say
 * why (r: -EIO, or -ENOMEM).  The failure, reported (exit 1). */
static int transaction_broken(struct runner *x, const struct migration *m, struct batch *b, int r) {
        char e[1024];

        if (x->pending && b->prev_sent) {
                /* Whether the previous COMMIT got through is unknown: the next run reads the history. */
                r = fail(x, -EIO, "%s: connection lost while committing%s; the history tells whether it committed",
                         x->pending->script, is_lost(x) ? " (the lock was lost)" : "");
                x->pending = NULL;
                batch_clear(b);
                if (PQstatus(x->conn) == CONNECTION_OK)
                        (void) PQexitPipelineMode(x->conn);
                return r;
        }
        pg_format_error(NULL, x->conn, e, sizeof(e));
        batch_clear(b);
        if (PQstatus(x->conn) != CONNECTION_OK)
                return fail(x, -EIO, "%s: %s: connection lost%s: %s", m->script, x->where,
                            is_lost(x) ? " (the lock was lost: commit refused)" : "", e);
        (void) PQexitPipelineMode(x->conn);
        return r == -ENOMEM ? fail(x, r, "%s: out of memory", m->script) : fail(x, -EIO, "%s: %s", m->script, e);
}

/* One try of m's transaction (run_in_transaction()): 0 when its checks passed (its COMMIT is
 * then still to be sent, and the pipeline left), -EAGAIN to run it again (transaction_failed()),
 * or the failure, rolled back. */
static int transaction_try(struct runner *x, const struct migration *m, bool no_tx_finish, const char *exec_ms,
                           size_t defer_lo) {
        struct batch b = { .history_rows = -1 };
        int r;

        if (!PQenterPipelineMode(x->conn))
                return fail(x, -ENOTCONN, "%s: cannot enter pipeline mode: %s", x->where, PQerrorMessage(x->conn));
        r = send_transaction(x, m, no_tx_finish, exec_ms, &b);
        if (r < 0 && !b.err)
                return transaction_broken(x, m, &b, r);
        if (r < 0)
                r = transaction_failed(x, m, &b, defer_lo);
        else if (b.history_rows != 1)
                r = fail(x, -ESTALE,
                         "%s: commit refused: fencing token %" PRId64
                         " is no longer current (the lock was lost and another runner took over); rolled back",
                         m->script, x->token);
        else
                r = may_commit(x, m);
        if (r < 0) {
                transaction_rollback(x, &b);
                return r;
        }
        (void) PQexitPipelineMode(x->conn);
        return 0;
}

/* One transaction: BEGIN, settings, the statements, the fenced history row.  The COMMIT
 * is deferred: sent at the head of the next migration's pipeline (one round trip per
 * migration) or by commit_pending().  The previous migration's COMMIT, if pending, heads
 * this pipeline.  no_tx_finish: record completion of a no-transaction script. */
static int run_in_transaction(struct runner *x, const struct migration *m, struct migrate_entry *ent, uint64_t t0,
                              bool no_tx_finish, const char *exec_ms) {
        size_t defer_lo = x->defer_lo;
        int r;

        do {
                if (x->pending && may_commit(x, x->pending) < 0)
                        return commit_pending(x); /* rolls the pending one back, keeps its message */
                r = transaction_try(x, m, no_tx_finish, exec_ms, defer_lo);
        } while (r == -EAGAIN); /* at most once: statements are unnamed from then on */
        if (r < 0)
                return r;
        /* Checks passed: the COMMIT goes out with the next migration (or commit_pending()). */
        x->pending = m;
        x->pending_e = ent;
        x->pending_t0 = t0;
        return 0;
}

/* A no-transaction file's timeout directives, set for the session while it runs (each of its
 * statements is a transaction of its own; reset after it): not behind a pooler, which does
 * not keep them.  0, or the failure. */
static int no_tx_timeouts(struct runner *x, const struct migration *m) {
        _cleanup_free_ char *s = NULL;
        char e[2048];

        if (m->statement_timeout_usec == 0 && m->lock_timeout_usec == 0)
                return 0;
        if (x->session.pooled) {
                log_warning("%s: the timeout directives of a no-transaction file are session settings, which a "
                            "connection pooler does not keep: not applied",
                            m->script);
                return 0;
        }
        if (m->statement_timeout_usec > 0 && m->lock_timeout_usec > 0)
                s = strdup_printf("SET statement_timeout = %" PRIu64 "; SET lock_timeout = %" PRIu64,
                                  m->statement_timeout_usec / USEC_PER_MSEC, m->lock_timeout_usec / USEC_PER_MSEC);
        else if (m->statement_timeout_usec > 0)
                s = settings_sql("", m->statement_timeout_usec, "statement_timeout");
        else
                s = settings_sql("", m->lock_timeout_usec, "lock_timeout");
        if (!s)
                return fail(x, -ENOMEM, "%s: out of memory", m->script);
        if (pg_exec(x->conn, s, e, sizeof(e)) < 0)
                return fail(x, -EIO, "%s: %s", m->script, e);
        return 0;
}

/* Statement i of the no-transaction file m failed (res): report it, and record the failure (a
 * history row with success = false, the error in its progress row), fenced, as coord
 * whatever the file's statements set (fence_query()).  The failure (-EIO). */
static int no_tx_failed(struct runner *x, const struct migration *m, size_t i, PGresult *res, uint64_t t0) {
        _cleanup_pgresult_ PGresult *h = NULL;
        char ms[24], e[512];
        const char *hp[] = { m->version,   m->description, migration_type_to_string(m->type),
                             m->script,    m->checksum,    x->installed_by,
                             ms,           "false",        x->token_str,
                             x->lock_name, x->rep->message };
        int r = report_failure(x, m, (int) i, res);

        if (PQstatus(x->conn) != CONNECTION_OK)
                return r;
        snprintf(ms, sizeof(ms), "%" PRIu64, (now_usec() - t0) / USEC_PER_MSEC);
        if (fence_query(x->conn, &x->session,
                        "WITH p AS (UPDATE coord_schema_progress SET error = $11, updated_at = now()"
                        " WHERE script = $4 AND fencing_token = $9::bigint RETURNING 1) "
                        "INSERT INTO coord_schema_history (version, description, type, script,"
                        " checksum, installed_by, execution_ms, success, fencing_token)"
                        " SELECT $1, $2, $3, $4, $5, $6, $7::integer, $8::boolean, $9::bigint"
                        " WHERE EXISTS (SELECT 1 FROM coord_schema_fence WHERE name = $10"
                        " AND token = $9::bigint) AND EXISTS (SELECT 1 FROM p)",
                        (int) ELEMENTSOF(hp), hp, &h, e, sizeof(e)) < 0)
                log_warning("%s: could not record the failure: %s", m->script, e);
        return r;
}

/* Claim m's progress row for our token (a new one, or the one an earlier run left): how
 * many statements are done already in *ret_done. */
static int no_tx_claim(struct runner *x, const struct migration *m, int64_t *ret_done) {
        _cleanup_pgresult_ PGresult *claim = NULL;
        char e[2048], total[24];
        const char *cp[] = { m->script, m->version, m->checksum, total, x->token_str, x->lock_name };
        int64_t done = 0;
        int r;

        snprintf(total, sizeof(total), "%zu", m->n_stmts);
        r = pg_query(x->conn,
                     "INSERT INTO coord_schema_progress (script, version, checksum, done, total, fencing_token)"
                     " SELECT $1, $2, $3, 0, $4::integer, $5::bigint"
                     " WHERE EXISTS (SELECT 1 FROM coord_schema_fence WHERE name = $6 AND token = $5::bigint)"
                     " ON CONFLICT (script) DO UPDATE SET fencing_token = EXCLUDED.fencing_token,"
                     " total = EXCLUDED.total, error = NULL, updated_at = now()"
                     " RETURNING done",
                     6, cp, &claim, e, sizeof(e));
        if (r < 0)
                return fail(x, -EIO, "%s: recording progress: %s", m->script, e);
        if (PQntuples(claim) != 1)
                return fail(x, -ESTALE, "%s: refused: fencing token %" PRId64 " is no longer current", m->script,
                            x->token);
        (void) parse_int64(PQgetvalue(claim, 0, 0), &done);
        if (done > 0)
                log_notice("%s: resuming after statement %" PRId64 " of %zu (completed by an earlier run)", m->script,
                           done, m->n_stmts);
        *ret_done = done;
        return 0;
}

/* Statement i of the no-transaction file m, then its progress, recorded fenced. */
static int no_tx_statement(struct runner *x, const struct migration *m, size_t i, uint64_t t0) {
        _cleanup_free_ char *s = NULL;
        _cleanup_pgresult_ PGresult *res = NULL, *up = NULL;
        char di[24], e[2048];
        const char *up_params[] = { m->script, di, x->token_str, x->lock_name };
        int r;

        if (atomic_load(&interrupted))
                return fail(x, -EINTR, "%s: interrupted by a signal before statement %zu (line %u)", m->script,
                            i + 1, m->stmts[i].line);
        if (is_lost(x))
                return fail(x, -ENOLCK,
                            "%s: stopped before statement %zu (line %u): the lock was lost (fencing token "
                            "%" PRId64 " superseded)",
                            m->script, i + 1, m->stmts[i].line, x->token);
        s = strndup(m->sql + m->stmts[i].offset, m->stmts[i].len);
        if (!s)
                return fail(x, -ENOMEM, "out of memory");
        res = m->stmts[i].data_line > 0 ? copy_from_script(x->conn, m->sql, &m->stmts[i]) : PQexec(x->conn, s);
        if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
                return no_tx_failed(x, m, i, res, t0);
        snprintf(di, sizeof(di), "%zu", i + 1);
        /* The file's session state lasts until its next statement; this write is immune to it. */
        r = fence_query(x->conn, &x->session,
                        "UPDATE coord_schema_progress SET done = $2::integer, updated_at = now()"
                        " WHERE script = $1 AND fencing_token = $3::bigint"
                        " AND EXISTS (SELECT 1 FROM coord_schema_fence WHERE name = $4 AND token = $3::bigint)",
                        4, up_params, &up, e, sizeof(e));
        if (r < 0)
                return fail(x, -EIO, "%s: recording progress after statement %zu: %s%s", m->script, i + 1, e,
                            is_lost(x) ? " (the lock was lost: stopped)" : "");
        if (strcmp(PQcmdTuples(up), "1") != 0)
                return fail(x, -ESTALE,
                            "%s: stopped after statement %zu: fencing token %" PRId64 " is no longer current",
                            m->script, i + 1, x->token);
        return 0;
}

/* Statement by statement, recording progress after each; resumes after the last recorded one. */
static int run_no_transaction(struct runner *x, const struct migration *m, struct migrate_entry *ent) {
        char e[2048], ms[24];
        uint64_t t0 = now_usec();
        int64_t done = 0;
        int r;

        /* Autocommit from here: the previous migration must be committed first. */
        r = commit_pending(x);
        if (r == 0)
                r = no_tx_claim(x, m, &done);
        if (r == 0)
                r = no_tx_timeouts(x, m);
        for (size_t i = (size_t) done; r == 0 && i < m->n_stmts; i++)
                r = no_tx_statement(x, m, i, t0);
        if (r < 0)
                return r;
        if ((m->statement_timeout_usec > 0 || m->lock_timeout_usec > 0) && !x->session.pooled)
                (void) pg_exec(x->conn, "RESET statement_timeout; RESET lock_timeout", e, sizeof(e));
        snprintf(ms, sizeof(ms), "%" PRIu64, (now_usec() - t0) / USEC_PER_MSEC);
        return run_in_transaction(x, m, ent, t0, true, ms);
}

static int run_one(struct runner *x, const struct migration *m, struct migrate_entry *e) {
        uint64_t t0 = now_usec();

        assert(m->split); /* apply loads the directory with its statements (migrate_run()) */
        log_info("Applying %s%s", m->script, m->no_transaction ? " (no transaction: statement by statement)" : "");
        /* On success m is pending: its COMMIT follows (e->ran is set once it succeeded). */
        return m->no_transaction ? run_no_transaction(x, m, e) : run_in_transaction(x, m, e, t0, false, NULL);
}

/* What apply refuses to start with (plan reports the same): validation problems (-EBADMSG; a
 * failed record: -EIO), then a --phase post that would apply a post-deploy version above a
 * pending pre-deploy one (-ECANCELED).  0 when none. */
static int check_problems(struct runner *x, const char *what) {
        struct migrate_report *r = x->rep;
        for (size_t i = 0; i < r->n; i++)
                if (r->v[i].problem) {
                        struct migrate_entry *e = &r->v[i];
                        const char *st = migrate_state_to_string(e->state);
                        /* Say the state once: a detail may start with it ("failed (line 3: ...)"). */
                        bool said = e->detail && strncmp(e->detail, st, strlen(st)) == 0;
                        return fail(x, e->state == STATE_FAILED ? -EIO : -EBADMSG, "%s: %s%s%s (%s)",
                                    e->script, said ? "" : st, said || !e->detail ? "" : ": ", e->detail ?: "",
                                    what);
                }
        for (size_t i = 0; i < r->n; i++)
                if (r->v[i].blocked)
                        return fail(x, -ECANCELED, "%s: %s (%s)", r->v[i].script, r->v[i].detail ?: "blocked", what);
        return 0;
}

/* The summary of an apply that succeeded: what ran, and what this phase left for another. */
static void apply_summary(struct runner *x, size_t ran, size_t held) {
        struct migrate_report *r = x->rep;
        char h[128] = "";

        if (held > 0 && x->o->phase == MIGRATE_PHASE_PRE)
                snprintf(h, sizeof(h), " (%zu post-deploy migration%s held back for --phase post)", held,
                         held == 1 ? "" : "s");
        else if (held > 0)
                snprintf(h, sizeof(h), " (%zu pending outside --phase %s)", held, migrate_phase_to_string(x->o->phase));
        if (ran == 0)
                snprintf(r->message, sizeof(r->message), "schema up to date, nothing to apply%s", h);
        else
                snprintf(r->message, sizeof(r->message), "applied %zu migration%s%s", ran, ran == 1 ? "" : "s", h);
}

/* Run what will run, in order; then commit the last one.  After a failure the migration
 * before it, whose checks passed, is committed still (unless the lock is gone), and the
 * first failure is what the run reports. */
static int apply_run(struct runner *x) {
        struct migrate_report *rep = x->rep;
        int r = 0;

        for (size_t i = 0; i < rep->n && r == 0; i++) {
                struct migrate_entry *e = &rep->v[i];
                const struct migration *m = e->file;
                if (!e->will_run || !m)
                        continue;
                if (atomic_load(&interrupted)) {
                        r = x->pending ? fail(x, -EINTR, "%s: interrupted by a signal: rolled back", x->pending->script)
                                       : fail(x, -EINTR, "interrupted by a signal before %s", m->script);
                        break;
                }
                /* Versioned entries come first, ascending: every held one before i is below m. */
                if (m->type == MIGRATION_VERSIONED)
                        x->defer_hi = i;
                r = run_one(x, m, e);
        }
        if (r == 0)
                return commit_pending(x);
        if (x->pending) {
                char saved[sizeof(rep->message)];
                memcpy(saved, rep->message, sizeof(saved));
                (void) commit_pending(x);
                memcpy(rep->message, saved, sizeof(saved));
        }
        return r;
}

/* Keep only what ran (and the failure) in the report; how many ran. */
static size_t report_keep_ran(struct migrate_report *rep) {
        size_t keep_n = 0;

        for (size_t i = 0; i < rep->n; i++) {
                if (rep->v[i].ran) {
                        struct migrate_entry t = rep->v[i];
                        rep->v[i] = rep->v[keep_n];
                        rep->v[keep_n++] = t;
                }
        }
        for (size_t i = keep_n; i < rep->n; i++)
                rep->v[i].detail = mfree(rep->v[i].detail);
        rep->n = keep_n;
        return keep_n;
}

static int apply(struct runner *x) {
        size_t held = 0, ran;
        int r;

        r = check_problems(x, "nothing applied");
        if (r < 0)
                return r;
        for (size_t i = 0; i < x->rep->n; i++)
                held += x->rep->v[i].held;
        r = apply_run(x);
        ran = report_keep_ran(x->rep);
        if (r < 0)
                return r;
        apply_summary(x, ran, held);
        return 0;
}

static int baseline(struct runner *x) {
        _cleanup_free_ char *v = NULL;
        _cleanup_pgresult_ PGresult *res = NULL;
        char e[1024];
        const char *p[] = { NULL, x->installed_by, x->token_str, x->lock_name };

        int r;

        if (version_normalize(x->o->baseline_version, strlen(x->o->baseline_version), &v) < 0)
                return fail(x, -EINVAL, "baseline: '%s' is not a version (digits separated by '.' or '_')",
                            x->o->baseline_version);
        for (size_t i = 0; x->h && i < x->h->n; i++)
                if (x->h->rows[i].version && (strcmp(x->h->rows[i].type, "versioned") == 0 ||
                                              strcmp(x->h->rows[i].type, "baseline") == 0))
                        return fail(x, -EEXIST,
                                    "baseline: the history already records %s %s; baseline marks an existing schema "
                                    "before any migration ran",
                                    x->h->rows[i].type, x->h->rows[i].version);
        p[0] = v;
        r = pg_query(x->conn,
                     "INSERT INTO coord_schema_history (version, description, type, script, installed_by, success,"
                     " fencing_token) SELECT $1, '<< baseline >>', 'baseline', '<< baseline >>', $2, true, $3::bigint"
                     " WHERE EXISTS (SELECT 1 FROM coord_schema_fence WHERE name = $4 AND token = $3::bigint)",
                     4, p, &res, e, sizeof(e));
        if (r < 0)
                return fail(x, as_failed(r), "baseline: %s", e);
        if (strcmp(PQcmdTuples(res), "1") != 0)
                return fail(x, -ESTALE, "baseline refused: fencing token %" PRId64 " superseded", x->token);
        snprintf(x->rep->message, sizeof(x->rep->message), "baselined at version %s", v);
        return 0;
}

/* repair's transaction: BEGIN (behind a pooler coord's idle timeout is no session setting:
 * this transaction's), the fence check, and the failed records removed (*fixed counts). */
static int repair_begin(struct runner *x, size_t *fixed, char *e, size_t elen) {
        _cleanup_free_ char *begin = fence_begin_sql(&x->session);
        _cleanup_pgresult_ PGresult *check = NULL, *del = NULL;
        const char *p[] = { x->lock_name, x->token_str };
        int r;

        if (!begin) {
                errbuf_printf(e, elen, "out of memory");
                return -ENOMEM;
        }
        r = pg_exec(x->conn, begin, e, elen);
        if (r == 0)
                r = pg_query(x->conn, fence_check_sql, 2, p, &check, e, elen);
        if (r == 0)
                r = pg_query(x->conn, "DELETE FROM coord_schema_history WHERE NOT success", 0, NULL, &del, e, elen);
        if (r == 0 && strcmp(PQcmdTuples(del), "0") != 0) {
                log_notice("Removed %s failed record(s)", PQcmdTuples(del));
                (*fixed)++;
        }
        return r;
}

/* One change of repair's to ent: what it did becomes ent's detail. */
static void repaired(struct migrate_entry *ent, size_t *fixed, const char *what) {
        free(ent->detail);
        ent->detail = strdup(what);
        (*fixed)++;
}

/* repair's changes for one entry: its progress record removed when it failed or its file
 * changed; a changed versioned checksum realigned; a missing file marked deleted. */
static int repair_entry(struct runner *x, struct migrate_entry *ent, size_t *fixed, char *e, size_t elen) {
        _cleanup_pgresult_ PGresult *res = NULL;
        const struct progress_row *pr = history_find_progress(x->h, ent->script);
        int r = 0;

        if (pr && (pr->error || !ent->checksum || strcmp(pr->checksum, ent->checksum) != 0)) {
                _cleanup_pgresult_ PGresult *del = NULL;
                const char *p[] = { ent->script };
                r = pg_query(x->conn, "DELETE FROM coord_schema_progress WHERE script = $1", 1, p, &del, e, elen);
                repaired(ent, fixed, "progress record removed: runs again from the start");
        }
        if (r == 0 && ent->state == STATE_CHANGED && ent->version) {
                const char *p[] = { ent->checksum, ent->description, ent->version };
                r = pg_query(x->conn,
                             "UPDATE coord_schema_history SET checksum = $1, description = $2"
                             " WHERE version = $3 AND type = 'versioned' AND success",
                             3, p, &res, e, elen);
                repaired(ent, fixed, "checksum realigned to the file");
        } else if (r == 0 && ent->state == STATE_MISSING) {
                const char *p[] = { ent->version, ent->description, ent->script, x->installed_by, x->token_str };
                r = pg_query(x->conn,
                             "INSERT INTO coord_schema_history (version, description, type, script,"
                             " installed_by, success, fencing_token)"
                             " VALUES ($1, $2, 'deleted', $3, $4, true, $5::bigint)",
                             5, p, &res, e, elen);
                repaired(ent, fixed, "marked deleted");
        }
        return r;
}

/* In one fenced transaction: failed records removed, progress records of failed or changed
 * no-transaction files removed, changed checksums realigned, vanished files marked deleted. */
static int repair(struct runner *x) {
        struct migrate_report *rep = x->rep;
        char e[1024];
        size_t fixed = 0;
        int r;

        r = repair_begin(x, &fixed, e, sizeof(e));
        for (size_t i = 0; r == 0 && i < rep->n; i++)
                r = repair_entry(x, &rep->v[i], &fixed, e, sizeof(e));
        if (r == 0)
                r = pg_exec(x->conn, "COMMIT", e, sizeof(e));
        else {
                char e2[256];
                (void) pg_exec(x->conn, "ROLLBACK", e2, sizeof(e2));
        }
        if (r < 0)
                return fail(x, as_failed(r), "repair: %s", e);
        snprintf(rep->message, sizeof(rep->message), "repair: %zu change%s", fixed, fixed == 1 ? "" : "s");
        return 0;
}

/* A flyway.h error as the run's outcome: a file's placeholder is bad input (-EINVAL, exit
 * 2), a lost connection is unreachable (-ECONNRESET, 3), anything else (a Flyway row, a
 * failed query) failed (1). */
static int fail_flyway(struct runner *x, int r, const char *e) {
        return fail(x, r == -EINVAL ? r : as_query_error(r), "%s", e);
}

/* Take over flyway_schema_history (flyway.h), in its own fenced transaction, before apply
 * or repair changes anything; apply only when it would not refuse to run. */
static int adopt(struct runner *x) {
        _cleanup_free_ char *begin = NULL;
        char e[2048];
        int r;

        if (!x->h || !x->h->adopting)
                return 0;
        if (x->o->command == MIGRATE_APPLY) {
                r = check_problems(x, "nothing applied, nothing taken over from " FLYWAY_TABLE);
                if (r < 0)
                        return r;
        }
        begin = fence_begin_sql(&x->session);
        if (!begin)
                return fail_flyway(x, -ENOMEM, "out of memory");
        r = flyway_adopt_write(x->conn, begin, x->h, x->lock_name, x->token_str, e, sizeof(e));
        if (r < 0)
                return fail_flyway(x, r, e);
        return 0;
}

struct loader {
        const char *dir;
        bool split;
        struct migration_set *set;
        int r;
        char err[2048];
};

static void *loader_run(void *p) {
        struct loader *ld = p;
        ld->r = source_load(ld->dir, ld->split, &ld->set, ld->err, sizeof(ld->err));
        return NULL;
}

/* The history, once per run (the report owns it from here).  0, or the failure. */
static int read_history(struct runner *x) {
        char e[2048];
        int r;

        r = history_load(x->conn, &x->h, e, sizeof(e));
        if (r < 0)
                return fail(x, as_unreachable(r), "%s: reading the history: %s", x->where, e);
        x->rep->history = x->h;
        return 0;
}

/* Read the directory in a thread while the connection (and, for the read-only commands, the
 * history query) is under way: both take tens of milliseconds with thousands of files.  Bad
 * files still win: they exit 2 whatever the database says.  0, or the failure. */
static int open_run(struct runner *x, bool locked) {
        struct loader ld = { .dir = x->o->dir,
                             .split = x->o->command != MIGRATE_STATUS && x->o->command != MIGRATE_VALIDATE };
        pthread_t th;
        bool threaded = pthread_create(&th, NULL, loader_run, &ld) == 0;
        char e[2048];
        int cr, r;

        if (!threaded)
                loader_run(&ld);
        cr = connect_main(x, "coord-migrate");
        if (cr == 0 && locked)
                cr = identify(x);
        if (cr == 0 && !locked) {
                _cleanup_pgresult_ PGresult *res = NULL;
                r = pg_query(x->conn, "SELECT current_schema()", 0, NULL, &res, e, sizeof(e));
                if (r == 0)
                        r = pg_set_schema(x->conn, PQgetisnull(res, 0, 0) ? NULL : PQgetvalue(res, 0, 0));
                cr = r < 0 ? fail(x, as_unreachable(r), "%s: reading the history: %s", x->where, e) : read_history(x);
        }
        log_debug("Connected%s", !locked ? " and read the history" : "");
        if (threaded)
                pthread_join(th, NULL);
        log_debug("Read %zu migration files", ld.set ? ld.set->n : 0);
        if (ld.r < 0)
                return fail(x, -EINVAL, "%s", ld.err); /* a bad file wins: exit 2 whatever the database says */
        x->set = x->rep->set = ld.set;
        if (cr < 0)
                return cr;
        /* Before PostgreSQL 12, files with ALTER TYPE ... ADD VALUE run without a transaction. */
        if (source_set_server_version(x->set, PQserverVersion(x->conn), e, sizeof(e)) < 0)
                return fail(x, -EINVAL, "%s", e);
        if (strcmp(PQparameterStatus(x->conn, "standard_conforming_strings") ?: "on", "off") == 0)
                log_warning("%s: standard_conforming_strings is off by default here; coord lexes each file as "
                            "psql does with it on until a 'SET standard_conforming_strings = off' in the file",
                            x->where);
        return 0;
}

/* Wait for the lock, then fence, catch signals and, only now that the lock is ours, read the
 * history.  0, or the failure. */
static int hold_lock(struct runner *x) {
        int r;

        /* Wait on Redis without holding a PostgreSQL session: nothing of ours can get in the way
         * of CREATE INDEX CONCURRENTLY (or use up connection slots) while we wait. */
        if (x->o->redis) {
                PQfinish(x->conn);
                x->conn = NULL;
        }
        r = take_lock(x);
        if (r == 0 && !x->conn)
                r = connect_main(x, "coord-migrate");
        if (r == 0)
                r = raise_fence(x);
        if (r < 0)
                return r;
        signals_install(x, true);
        x->signals = true;
        return read_history(x);
}

/* What the command works from: placeholders replaced, a flyway_schema_history to take over,
 * the plan.  0, or the failure. */
static int compute_plan(struct runner *x, struct flyway_run *fr) {
        const struct migrate_options *o = x->o;
        char e[2048], host[256] = "";
        int r;

        (void) gethostname(host, sizeof(host) - 1);
        snprintf(x->installed_by, sizeof(x->installed_by), "%s@%s", PQuser(x->conn), host);
        /* Placeholders of repeatables and seeds (their checksums cover the values), and the
         * rows of a flyway_schema_history to take over on a schema without coord history. */
        r = flyway_before_plan(fr, x->conn, x->set, x->h, e, sizeof(e));
        if (r < 0)
                return fail_flyway(x, r, e);
        r = plan_compute(x->set, x->h, o->no_seed, o->phase, x->rep);
        if (r < 0)
                return fail(x, as_failed(r), "%s", strerror(-r));
        /* Explain the adopted entries; replace the placeholders of the versions that will run. */
        r = flyway_after_plan(fr, x->conn, x->rep, o->command == MIGRATE_APPLY || o->command == MIGRATE_PLAN, e,
                              sizeof(e));
        if (r < 0)
                return fail_flyway(x, r, e);
        log_debug("Computed %zu entries from %zu history rows", x->rep->n, x->h ? x->h->n : 0);
        return 0;
}

/* validate: the problems, counted. */
static int validate(struct runner *x) {
        struct migrate_report *rep = x->rep;
        size_t problems = 0;

        for (size_t i = 0; i < rep->n; i++)
                problems += rep->v[i].problem;
        if (problems > 0)
                return fail(x, -EBADMSG, "validation failed: %zu problem%s", problems, problems == 1 ? "" : "s");
        snprintf(rep->message, sizeof(rep->message), "validation passed");
        return 0;
}

static int run_command(struct runner *x) {
        int r;

        switch (x->o->command) {
        case MIGRATE_STATUS:
                return 0;
        case MIGRATE_PLAN:
                return check_problems(x, "apply would refuse to run");
        case MIGRATE_VALIDATE:
                return validate(x);
        case MIGRATE_APPLY:
                r = adopt(x);
                return r < 0 ? r : apply(x);
        case MIGRATE_BASELINE:
                if (x->h && x->h->adopting)
                        return fail(x, -EEXIST,
                                    "baseline: the schema has a " FLYWAY_TABLE " and no coord history: run apply to "
                                    "take it over (its baseline and versions included)");
                return baseline(x);
        case MIGRATE_REPAIR:
                r = adopt(x);
                return r < 0 ? r : repair(x);
        default:
                assert(false);
                return -EINVAL;
        }
}

/* Stop catching signals and the keeper, close our session, release the lock. */
static void runner_close(struct runner *x) {
        if (x->signals)
                signals_install(x, false);
        x->signals = false;
        /* The keeper may call on_lost (and PQcancel) until it is stopped. */
        if (x->rlock && x->keeper)
                lock_keeper_stop(x->rlock);
        x->keeper = false;
        if (atomic_load(&x->cancel))
                PQfreeCancel(atomic_load(&x->cancel));
        atomic_store(&x->cancel, NULL);
        /* Close our session before releasing, so the next holder finds nothing to terminate. */
        if (x->conn)
                PQfinish(x->conn);
        x->conn = NULL;
        drop_lock(x);
}

int migrate_run(const struct migrate_options *o, struct migrate_report *rep) {
        struct runner x = { .o = o, .rep = rep };
        struct flyway_run fr = { .placeholders = o->placeholders };
        bool locked = o->command == MIGRATE_APPLY || o->command == MIGRATE_BASELINE || o->command == MIGRATE_REPAIR;
        char e[2048];
        int r;

        assert(o->dir);
        assert(o->database);
        assert(o->command >= 0 && o->command < _MIGRATE_COMMAND_MAX);
        assert(o->command != MIGRATE_BASELINE || o->baseline_version);
        assert(rep);
        *rep = (struct migrate_report) {};
        log_debug("Starting %s", o->dir);
        if (pg_register_secrets(o->database, e, sizeof(e)) < 0)
                return fail(&x, -EINVAL, "%s", e);
        x.where = pg_describe(o->database);
        if (o->redis && o->redis->password)
                log_add_secret(o->redis->password);

        r = open_run(&x, locked);
        if (r == 0 && locked)
                r = hold_lock(&x);
        if (r == 0)
                r = compute_plan(&x, &fr);
        if (r == 0)
                r = run_command(&x);

        runner_close(&x);
        flyway_run_done(&fr);
        free(x.where);
        return r;
}
