/* The migrations directory: file names, versions, directives, checksums.
 *
 *   V<version>__<description>.sql   versioned ("1", "1.1", "2_1" means "2.1")
 *   R__<description>.sql            repeatable, re-applied when its checksum changes
 *   S__<description>.sql            seed, run after those when new or changed
 *
 * Leading comment lines may hold directives: "-- coord:no-transaction",
 * "-- coord:statement-timeout 30s", "-- coord:lock-timeout 5s" and, in versioned
 * files only, "-- coord:post-deploy" (a "contract" migration: run by
 * `--phase post`, held back by `--phase pre`).  Other files
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
};

struct migration {
        enum migration_type type;
        char *version;     /* normalized ("2.1"), NULL for R/S */
        char *description; /* from the file name, '_' shown as ' ' */
        char *script;      /* the file name */
        char checksum[65]; /* SHA-256 hex of the file's bytes */
        char *sql;
        size_t sql_len;
        bool no_transaction;
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

/* Read every migration in dir.  -EINVAL for a bad file name, duplicate version
 * or unknown/invalid directive, with errbuf naming the file; -errno for I/O
 * errors (errbuf names the path).  split: also split each file into statements
 * (syntax errors then fail here, naming file and line). */
int source_load(const char *dir, bool split, struct migration_set **ret, char *errbuf, size_t errlen);
/* Split one migration (idempotent).  -EINVAL with errbuf naming file and line. */
int source_split(struct migration *m, char *errbuf, size_t errlen);
struct migration_set *source_free(struct migration_set *s);

/* Normalize a version ("01_2" -> "1.2"); -EINVAL when not digits separated by
 * '.' or '_'. */
int version_normalize(const char *s, size_t len, char **ret);
/* Numeric, part by part; missing parts count as 0 ("1" == "1.0").  <0, 0, >0. */
int version_compare(const char *a, const char *b);

const char *migration_type_to_string(enum migration_type t);
