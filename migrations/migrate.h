/* The migration engine behind `coordctl migrate` (migrate.c): exactly one runner
 * applies a directory of migrations (source.h) to a PostgreSQL schema, under a
 * fenced lock (Redis lock.h, or a pg_try_advisory_lock fallback), recording each
 * in coord_schema_history (history.h).  See docs/migrations.md for the design. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "history.h"
#include "redis_url.h"
#include "source.h"

struct flyway_placeholders;

enum migrate_command {
        MIGRATE_APPLY,
        MIGRATE_STATUS,
        MIGRATE_PLAN,
        MIGRATE_VALIDATE,
        MIGRATE_BASELINE,
        MIGRATE_REPAIR,
        _MIGRATE_COMMAND_MAX,
};
/* "apply", "status", "plan", "validate", "baseline", "repair" (DEFINE_STRING_TABLE_LOOKUP):
 * NULL out of range; the command, or -EINVAL when unknown. */
const char *migrate_command_to_string(enum migrate_command c);
int migrate_command_from_string(const char *s);

/* Which migrations apply (and plan) run.  A versioned file with "-- coord:post-deploy" is
 * in phase post ("contract": after every instance runs the new release); every other
 * file, repeatables and seeds included, is in phase pre.  See docs/migrations.md. */
enum migrate_phase {
        MIGRATE_PHASE_ALL,  /* everything, in version order (the default) */
        MIGRATE_PHASE_PRE,  /* all but post-deploy versions; a post-deploy version below one
                             * that runs is recorded as deferred (history type 'deferred') */
        MIGRATE_PHASE_POST, /* only the pending post-deploy versions, ascending */
        _MIGRATE_PHASE_MAX,
};
/* "pre", "post" or "all" (NULL out of range). */
const char *migrate_phase_to_string(enum migrate_phase p);
/* "pre", "post" or "all": 0, or -EINVAL (ret untouched). */
int migrate_phase_from_string(const char *s, enum migrate_phase *ret);

struct migrate_options {
        enum migrate_command command;
        const char *dir;
        const char *database;          /* libpq connection string or URI */
        const struct redis_url *redis; /* NULL: advisory-lock fallback */
        const char *ns;                /* Redis namespace */
        uint64_t lease_usec;
        uint64_t wait_timeout_usec;
        bool no_seed;
        enum migrate_phase phase;      /* MIGRATE_APPLY, MIGRATE_PLAN (and will_run of the others) */
        const char *baseline_version;  /* MIGRATE_BASELINE */
        /* ${key} values (flyway.h), borrowed: they must outlive migrate_run(); NULL: files are
         * run as written, no placeholder replacement at all */
        const struct flyway_placeholders *placeholders;
};

enum migrate_state {
        STATE_APPLIED,   /* applied, file unchanged */
        STATE_PENDING,   /* not applied yet */
        STATE_CHANGED,   /* applied, file changed since (versioned: a validation error;
                          * repeatable/seed: will re-run) */
        STATE_MISSING,   /* applied, file gone */
        STATE_FAILED,    /* a no-transaction script failed: fix by hand, then repair */
        STATE_PARTIAL,   /* a no-transaction script stopped midway: apply resumes it */
        STATE_FUTURE,    /* applied by a newer directory (version above this one's highest) */
        STATE_BASELINE,  /* the baseline marker */
        STATE_IGNORED,   /* at or below the baseline, never run */
        STATE_DELETED,   /* file gone, marked deleted by repair */
        _STATE_MAX,
};
/* "applied", "pending", ... (NULL out of range); the state, or -EINVAL when unknown. */
const char *migrate_state_to_string(enum migrate_state s);
int migrate_state_from_string(const char *s);

struct migrate_entry {
        const struct migration *file; /* the file (in migrate_report.set), NULL for a history row without one */
        const char *type;        /* versioned repeatable seed baseline */
        const char *version;     /* NULL for repeatable/seed */
        const char *description;
        const char *script;
        const char *phase;       /* a file's phase, "pre" or "post"; NULL for history rows without a file */
        enum migrate_state state;
        const char *checksum;         /* of the file, NULL when missing */
        const char *applied_checksum; /* recorded, NULL when never applied */
        const char *installed_at;     /* NULL when not applied */
        const char *installed_by;
        int64_t execution_ms;
        int64_t fencing_token;
        bool will_run; /* apply would run it (in the options' phase) */
        bool problem;  /* validation fails because of it */
        bool deferred; /* a pending post-deploy version the history records as deferred: never a gap */
        bool held;     /* would run with --phase all, but not in this phase */
        bool defer;    /* held by --phase pre and not yet deferred: apply records it as deferred
                        * together with the first higher version it applies */
        bool blocked;  /* --phase post: a pre-deploy version below it is pending; apply refuses */
        bool adopted;  /* its history row was taken over from flyway_schema_history (flyway.h) */
        char *detail;  /* human explanation, or NULL */
        const char *no_transaction; /* why a file runs statement by statement without a transaction
                                     * ("-- coord:no-transaction", "detected: CREATE INDEX
                                     * CONCURRENTLY at line 3"): migration_no_transaction(file);
                                     * NULL: in one transaction */
        /* apply: filled for what ran in this run */
        bool ran;
        int64_t run_ms;
};

struct migrate_report {
        struct migrate_entry *v; /* status/plan/validate: every entry; apply: what ran (ran set) */
        size_t n;
        char message[4096]; /* why migrate_run() failed, else a summary */
        char lock[128];     /* how the lock was taken, for output */
        int64_t fencing_token;
        /* owned storage the entries point into */
        struct migration_set *set;
        struct history *history;
        char **strings;
        size_t n_strings;
};

/* Run one command.  0, or a negative errno saying how it failed; the report is filled in
 * either case (free it with migrate_report_done()): on failure r->message says why and,
 * for apply, r->v holds what ran before the failure.  The errnos, and the exit code
 * (CONTRACT.md) migrate_exit_code() maps each to:
 *
 *   0                                   0  done, or nothing to do (also after waiting)
 *   -EINVAL, -EPROTONOSUPPORT           2  bad input: a file name, directive, syntax error,
 *                                          placeholder, baseline version, no current schema;
 *                                          the advisory-lock fallback behind a pooler
 *   -ECONNREFUSED, -ECONNRESET,         3  PostgreSQL or Redis unreachable, or refused
 *   -ECONNABORTED, -EHOSTUNREACH,          (authentication: -EACCES); -EREMOTEIO: the server
 *   -EHOSTDOWN, -ENETUNREACH,              failed us (a query coord needs to start)
 *   -ENETDOWN, -ENOTCONN, -EACCES,
 *   -EREMOTEIO
 *   -EBADMSG                            4  validation failed: an applied file changed or
 *                                          vanished, a version added below the highest applied
 *   -ETIMEDOUT                          5  --wait-timeout expired (waiting for the lock, or for
 *                                          a superseded runner's transaction)
 *   any other                           1  it ran and failed: -EIO a migration or coord's own
 *                                          query failed, -ENOLCK the lock was lost, -ESTALE the
 *                                          fencing token was superseded, -EINTR SIGINT/SIGTERM,
 *                                          -ECANCELED --phase post blocked, -EEXIST baseline
 *                                          over a history, -ENOMEM
 *
 * o, o->dir, o->database (and o->baseline_version for MIGRATE_BASELINE) and r must not be
 * NULL. */
int migrate_run(const struct migrate_options *o, struct migrate_report *r);
/* The exit code (EXIT_*, CONTRACT.md) of migrate_run()'s return value r, as tabled above. */
int migrate_exit_code(int r);
void migrate_report_done(struct migrate_report *r);
/* Add what to e's explanation ("detail; what"), or make it the explanation (a copy). */
void migrate_entry_add_detail(struct migrate_entry *e, const char *what);
