/* Flyway compatibility: what a team arriving with a Flyway-managed schema needs.
 *
 *   - adoption: on a schema whose coord_schema_history holds no rows, the rows of
 *     flyway_schema_history (same schema) become coord history rows, so nothing
 *     Flyway applied runs again (flyway_adopt_*);
 *   - ${key} placeholders, replaced like Flyway's PlaceholderReplacingReader
 *     (flyway_placeholders_*, flyway_replace);
 *   - Flyway's checksum (CRC32 of the lines), to tell whether a file changed
 *     since Flyway applied it (flyway_checksum);
 *   - clear refusals of Flyway files coord does not run: U undo migrations,
 *     callbacks such as afterMigrate.sql, B baseline migrations, .sql.conf
 *     (flyway_explain_name).
 * See docs/migrations.md, "Coming from Flyway". */
#pragma once

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "history.h"
#include "macro.h"
#include "source.h"

struct migrate_report;

#define FLYWAY_TABLE "flyway_schema_history"
/* installed_by of an adopted row: this prefix, then Flyway's installed_by. */
#define FLYWAY_INSTALLED_BY_PREFIX "flyway:"
/* The checksum recorded for an adopted row whose file was absent or had changed since
 * Flyway applied it: this prefix, then Flyway's checksum.  The planner compares it with
 * Flyway's checksum of the file (flyway_checksum_matches()) until repair realigns it. */
#define FLYWAY_CHECKSUM_PREFIX "flyway-crc32:"

/* ---- placeholders ------------------------------------------------------------------------------ */

/* User-supplied placeholder values.  Keys compare case-insensitively (as Flyway's). */
struct flyway_placeholders;
struct flyway_placeholders *flyway_placeholders_new(void);
struct flyway_placeholders *flyway_placeholders_free(struct flyway_placeholders *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct flyway_placeholders *, flyway_placeholders_free)
/* Set key (key_len bytes) to value (copied; a later value for the same key wins).
 * -EINVAL: empty key, or one with '}', '{' or a control character, or a reserved
 * "flyway:" key; -ENOMEM. */
int flyway_placeholders_set(struct flyway_placeholders *p, const char *key, size_t key_len, const char *value);
/* "KEY=VALUE" (the value may be empty).  -EINVAL as above, or without '='. */
int flyway_placeholders_set_assignment(struct flyway_placeholders *p, const char *assignment);
/* From an environment (NULL-terminated "NAME=VALUE" strings): FLYWAY_PLACEHOLDERS_<KEY>
 * first, then COORD_PLACEHOLDER_<KEY> (which win).  On -EINVAL *ret_bad points at the
 * offending entry. */
int flyway_placeholders_set_env(struct flyway_placeholders *p, char *const *envp, const char **ret_bad);
/* The value of key, or NULL. */
const char *flyway_placeholders_get(const struct flyway_placeholders *p, const char *key, size_t key_len);

/* Flyway's built-in ${flyway:...} values that depend on the session and the run. */
struct flyway_builtins {
        char *default_schema; /* current_schema() */
        char *user;           /* current_user */
        char *database;       /* current_database() */
        char *working_directory;
        char timestamp[32];   /* "yyyy-MM-dd HH:mm:ss", local time, once per run */
        bool loaded;
};
void flyway_builtins_done(struct flyway_builtins *b);

/* Replace every ${key} in text[0..len) as Flyway does: anywhere in the file (strings,
 * comments and dollar-quoted bodies included), the key being everything up to the next
 * '}', looked up case-insensitively in p and then in the built-ins (${flyway:filename}
 * is script); values are not scanned again.  0 with *ret (NUL-terminated, caller
 * frees), *ret_len and *ret_n (placeholders replaced; *ret is a plain copy when 0).
 * -EINVAL with errbuf "script:line: ..." for an unknown key or a '${' without '}';
 * -ENOMEM.  Outputs untouched on failure.  b may be NULL (no built-ins). */
int flyway_replace(const char *text, size_t len, const char *script, const struct flyway_placeholders *p,
                   const struct flyway_builtins *b, char **ret, size_t *ret_len, size_t *ret_n, char *errbuf,
                   size_t errlen);

/* ---- Flyway's checksum ------------------------------------------------------------------------- */

/* Flyway's ChecksumCalculator: CRC32 over the file's lines as Java's readLine() returns
 * them (terminators "\n", "\r", "\r\n" dropped), a leading U+FEFF dropped from the first
 * line, re-encoded as UTF-8; as Flyway stores it, a signed 32-bit integer.
 * flyway_checksum() reads data as UTF-8 (Flyway's default encoding; -EILSEQ when it is
 * not valid UTF-8, which Flyway refuses to read), flyway_checksum_latin1() as
 * ISO-8859-1 (flyway.encoding=ISO-8859-1). */
int flyway_checksum(const char *data, size_t len, int32_t *ret);
int32_t flyway_checksum_latin1(const char *data, size_t len);
/* Whether recorded (a checksum column's text) is data's checksum in UTF-8 or ISO-8859-1. */
bool flyway_checksum_matches(const char *data, size_t len, int32_t recorded);

/* ---- file names ------------------------------------------------------------------------------- */

/* A ".sql" (or ".sql.conf") file name that is a Flyway file coord does not run: an
 * explanation ("U1__undo.sql: undo migrations are not supported (...)") into buf and
 * true; false for any other name. */
bool flyway_explain_name(const char *name, char *buf, size_t len);

/* ---- adoption --------------------------------------------------------------------------------- */

/* One row of flyway_schema_history (strings borrowed). */
struct flyway_row {
        int64_t installed_rank;
        const char *version; /* NULL for repeatables */
        const char *description;
        const char *type; /* SQL, JDBC, BASELINE, DELETE, UNDO_SQL, ... */
        const char *script;
        const char *checksum; /* decimal text, or NULL */
        const char *installed_by;
        uint64_t installed_on_usec; /* Unix time */
        int64_t execution_time;    /* ms */
        bool success;
};

/* Flyway's checksums of repeatables and seeds as written, taken before their placeholders
 * were replaced (flyway_before_plan() keeps them; Flyway 7+ records a repeatable's after
 * replacement, older versions before). */
struct flyway_sums;

/* Pure: the coord history rows that take over rows[0..n) (ascending installed_rank) for
 * the directory set, into h, which must hold no rows; h->adopting is set when any.  Per row:
 *   SCHEMA                 skipped (Flyway's schema creation marker);
 *   BASELINE, *_BASELINE   'baseline' (versions up to it never run);
 *   SQL                    'versioned' ('repeatable' without a version, matched by file
 *                          name) with the file's SHA-256 when Flyway's checksum matches the
 *                          file; a changed versioned file, or one not in set, keeps
 *                          FLYWAY_CHECKSUM_PREFIX + Flyway's checksum (changed, missing or
 *                          future for the planner); a changed repeatable none (runs again);
 *   JDBC, SCRIPT, ...      like SQL when set has the version, else 'deleted' (never run);
 *   DELETE, UNDO_*         'deleted' (Flyway marked it gone, or undid it);
 *   success = false        kept failed: the plan makes it a problem, apply refuses.
 * installed_by becomes "flyway:" + Flyway's.  sums: NULL to compare Flyway's checksums with
 * the files' texts as they are.  0; -EBADMSG with errbuf naming the row (an unknown type, a
 * bad version); -ENOMEM. */
int flyway_adopt_compute(const struct flyway_row *rows, size_t n, const struct migration_set *set,
                         const struct flyway_sums *sums, struct history *h, char *errbuf, size_t errlen);

/* ---- what migrate.c calls --------------------------------------------------------------------- */

struct flyway_run {
        const struct flyway_placeholders *placeholders; /* borrowed; NULL: no replacement */
        struct flyway_builtins builtins;                /* loaded on first use of ${flyway:...} */
};
void flyway_run_done(struct flyway_run *f);

/* Before planning, with c connected to the schema and h its history: replace the
 * placeholders of repeatables and seeds (their checksums then cover the replaced text:
 * a changed value runs them again, as in Flyway), and when h holds no rows and the schema
 * has a flyway_schema_history with rows, fill h with the rows that take it over (nothing
 * written).  0; -EINVAL (errbuf: a file's placeholder; exit 2), -EBADMSG (errbuf: a
 * Flyway row; exit 1), -ECONNRESET or -EIO (errbuf: a query failed). */
int flyway_before_plan(struct flyway_run *f, PGconn *c, struct migration_set *set, struct history *h,
                       char *errbuf, size_t errlen);
/* After planning: mark and explain the adopted entries of r; with replace, also replace the
 * placeholders of the versioned files that will run (-EINVAL, errbuf). */
int flyway_after_plan(struct flyway_run *f, PGconn *c, struct migrate_report *r, bool replace, char *errbuf,
                      size_t errlen);
/* When h->adopting: insert its rows into coord_schema_history in one transaction
 * (opened with begin: fence_begin_sql()), only
 * while the fence row of lock_name holds token and the table is still empty; then
 * h->adopting is cleared.  0 (also when not adopting); -ESTALE (superseded, or the table
 * is no longer empty), -ECONNRESET, -EIO with errbuf. */
int flyway_adopt_write(PGconn *c, const char *begin, struct history *h, const char *lock_name, const char *token,
                       char *errbuf, size_t errlen);
