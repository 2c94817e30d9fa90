/* The migrations directory: file names, versions, directives, checksums.
 *
 *   V<version>__<description>.sql   versioned ("1", "1.1", "2_1" means "2.1")
 *   R__<description>.sql            repeatable, re-applied when its checksum changes
 *   S__<description>.sql            seed, run after those when new or changed
 *
 * The leading comments (line or block comments before the first statement) may
 * hold directives: "-- coord:no-transaction", "-- coord:statement-timeout 30s",
 * "-- coord:lock-timeout 5s" and, in versioned files only, "-- coord:post-deploy"
 * (a "contract" migration: run by `--phase post`, held back by `--phase pre`).  A
 * comment starting with "coord:" anywhere else is an error.  A file whose statements
 * PostgreSQL refuses inside a transaction block (CREATE INDEX CONCURRENTLY, ...) runs
 * without one, as with the directive; mixed with statements that belong in a
 * transaction it is an error unless the directive says so.  Other files
 * (hidden, not ending in ".sql", directories) are ignored; a ".sql" file whose
 * name does not parse is an error, so a typo never silently skips a change. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sqlsplit.h"

#define MIGRATION_MAX_FILE_SIZE (64u * 1024u * 1024u)
#define MIGRATION_MAX_FILES 100000u

enum migration_type {
        MIGRATION_VERSIONED,
        MIGRATION_REPEATABLE,
        MIGRATION_SEED,
        _MIGRATION_TYPE_MAX,
};

/* Where a migration's statements may run, from lexing them (sqlsplit_transaction_kind()). */
struct migration_tx {
        unsigned directive_line; /* "-- coord:no-transaction"; 0: none */
        unsigned never_line;     /* the first statement PostgreSQL refuses inside a transaction block; 0: none */
        const char *never_what;  /* its name, static: "CREATE INDEX CONCURRENTLY" */
        unsigned add_value_line; /* the first ALTER TYPE ... ADD VALUE (refused in one before PostgreSQL 12) */
        unsigned tx_line;        /* the first statement that belongs in a transaction (neither of those
                                  * nor a session statement: SET, RESET, SHOW); 0: none */
        char tx_what[48];        /* its leading words: "CREATE TABLE" */
};

struct migration {
        enum migration_type type;
        char *version;     /* normalized ("2.1"), NULL for R/S */
        char *description; /* from the file name, '_' shown as ' ' */
        char *script;      /* the file name */
        char checksum[65]; /* SHA-256 hex of the file's bytes */
        char *sql;
        size_t sql_len;
        bool no_transaction;             /* runs statement by statement, without a transaction: the
                                          * directive, or detected (no_transaction_reason says which) */
        char *no_transaction_reason;     /* "-- coord:no-transaction" or "detected: CREATE INDEX
                                          * CONCURRENTLY at line 3"; NULL when in a transaction */
        struct migration_tx tx;
        bool server_before_12;           /* source_set_server_version(): ALTER TYPE ... ADD VALUE
                                          * cannot run in a transaction */
        bool post_deploy;                /* "-- coord:post-deploy" (versioned only) */
        uint64_t statement_timeout_usec; /* 0: not set */
        uint64_t lock_timeout_usec;      /* 0: not set */
        struct sql_stmt *stmts;          /* set by source_split() */
        size_t n_stmts;
        bool split;
};

struct migration_set {
        struct migration *v; /* versioned ascending, then repeatables, then seeds (by file name) */
        size_t n;
        size_t n_versioned, n_repeatable, n_seed;
};

/* Read every migration in dir.  Every file is lexed, whatever split says: -EINVAL for a
 * bad file name, duplicate version, unknown/invalid/misplaced directive, syntax error
 * (unterminated quote, comment or COPY data), transaction control, COPY ... TO STDOUT,
 * or statements PostgreSQL refuses in a transaction mixed with ones that belong in one,
 * with errbuf naming the file (and line); -errno for I/O errors (errbuf names the path).
 * split: also keep each file's statements (m->stmts) for running it. */
int source_load(const char *dir, bool split, struct migration_set **ret, char *errbuf, size_t errlen);
/* Split one migration into m->stmts, re-reading its directives and where it runs
 * (idempotent while m->split; source_set_sql() splits a changed text again).
 * -EINVAL with errbuf naming file and line. */
int source_split(struct migration *m, char *errbuf, size_t errlen);
/* Replace m's text with sql[0..len) (NUL-terminated; ownership taken, also on failure), as
 * placeholder replacement does.  When m->split (the statements are kept for running it),
 * its statements, directives and where it runs are derived from the new text again;
 * otherwise they stay those of the text loaded (status and validate run nothing).  The
 * checksum is the caller's to update.  -EINVAL with errbuf naming file and line; -ENOMEM. */
int source_set_sql(struct migration *m, char *sql, size_t len, char *errbuf, size_t errlen);
/* Why m runs statement by statement without a transaction (its no_transaction_reason, or
 * "-- coord:no-transaction" when a hand-made migration has none), or NULL: in one. */
const char *migration_no_transaction(const struct migration *m);
/* The server's version (PQserverVersion()): before PostgreSQL 12, a file with ALTER TYPE
 * ... ADD VALUE runs without a transaction (-EINVAL with errbuf when it mixes that with
 * statements that belong in one, unless "-- coord:no-transaction"). */
int source_set_server_version(struct migration_set *s, int server_version, char *errbuf, size_t errlen);
struct migration_set *source_free(struct migration_set *s);

/* Normalize a version ("01_2" -> "1.2"); -EINVAL when not digits separated by
 * '.' or '_'. */
int version_normalize(const char *s, size_t len, char **ret);
/* Numeric, part by part; missing parts count as 0 ("1" == "1.0").  <0, 0, >0. */
int version_compare(const char *a, const char *b);

/* "versioned", "repeatable", "seed" (NULL out of range); the type, or -EINVAL when unknown. */
const char *migration_type_to_string(enum migration_type t);
int migration_type_from_string(const char *s);
