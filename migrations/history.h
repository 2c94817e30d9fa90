/* The history table coord_schema_history and its two companions, all in the
 * connection's schema:
 *   coord_schema_history   one row per applied (or failed non-transactional) script
 *   coord_schema_fence     the fencing token of the current lock holder; every
 *                          migration transaction locks this row and checks the token
 *   coord_schema_progress  statements completed of a running/failed no-transaction script */
#pragma once

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HISTORY_TABLE "coord_schema_history"

struct history_row {
        int64_t rank;
        const char *version;      /* NULL for repeatable/seed */
        const char *description;
        const char *type;         /* versioned repeatable seed baseline deleted */
        const char *script;
        const char *checksum;     /* may be NULL (baseline, deleted) */
        const char *installed_by;
        const char *installed_at; /* RFC 3339 UTC */
        int64_t execution_ms;
        bool success;
        int64_t fencing_token;
};

struct progress_row {
        const char *script;
        const char *checksum;
        int64_t done, total;
        int64_t fencing_token;
        const char *error; /* NULL while running */
};

/* Strings point into the results held here: valid until history_free(). */
struct history {
        bool exists; /* the table exists */
        struct history_row *rows; /* ascending rank */
        size_t n;
        struct progress_row *progress;
        size_t n_progress;
        PGresult *res, *pres;
        char *times; /* the installed_at strings, 32 bytes each */
        /* Rows taken over from flyway_schema_history (flyway.h) keep their strings in
         * owned[] (freed here too); adopting: not written to coord_schema_history yet. */
        bool adopting;
        char **owned;
        size_t n_owned;
};

/* Load all rows with one query (and the progress table with a second). */
int history_load(PGconn *c, struct history **ret, char *errbuf, size_t errlen);
struct history *history_free(struct history *h);

/* The progress row of script, or NULL. */
const struct progress_row *history_find_progress(const struct history *h, const char *script);

/* Create the three tables when missing (one round trip when they exist). */
int history_ensure_tables(PGconn *c, char *errbuf, size_t errlen);
