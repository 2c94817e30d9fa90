/* Splitting a SQL script into statements, the way psql does: semicolons end a
 * statement except inside 'strings' (E'' with backslash escapes, and every '' while
 * a "SET standard_conforming_strings = off" earlier in the script is in force),
 * "identifiers", dollar quotes ($$ and $tag$), -- and nested block comments,
 * parentheses, and the BEGIN ... END body of a SQL-standard CREATE FUNCTION/PROCEDURE.
 * The lines after "COPY ... FROM STDIN;" up to a line "\." are that statement's data
 * block (pg_dump's format), never lexed as SQL.  Comments starting with "coord:" are
 * reported, so that directives are found by the same lexing (not inside strings). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct sql_stmt {
        size_t offset;  /* byte offset of the statement's first token in the script */
        size_t len;     /* bytes up to (not including) the terminating ';', trailing space trimmed */
        unsigned line;  /* 1-based line of the first token */
        bool backslash_quotes; /* standard_conforming_strings was off here: '...' takes backslash escapes */
        /* COPY ... FROM STDIN: its data lines, up to (not including) the end marker line "\." */
        unsigned data_line; /* 1-based line of the first data line; 0: no data block */
        size_t data_offset;
        size_t data_len;
};

/* A comment whose text starts with "coord:" (any case): a directive, or a mistaken one. */
struct sql_directive {
        size_t offset; /* of "coord:" in the script */
        size_t len;    /* up to the end of the line (line comment, '\r' excluded) or of the comment */
        unsigned line;
        bool block;    /* in a block comment, not a "--" line comment */
        bool leading;  /* before the first statement */
};

struct sql_script {
        struct sql_stmt *stmts; /* malloc'd, NULL when n_stmts is 0 */
        size_t n_stmts;
        struct sql_directive *directives; /* malloc'd, NULL when n_directives is 0 */
        size_t n_directives;
};

/* Split sql[0..len) into ret (owned by the caller: sqlsplit_script_done()).  Statements
 * holding only comments and white space are skipped.  -EINVAL with errbuf naming the line
 * for an unterminated quote, dollar quote, comment or COPY data block, text after
 * "COPY ... FROM STDIN;" on its line, or a standard_conforming_strings change that cannot
 * be followed; -ENOMEM.  ret untouched on failure. */
int sqlsplit_script(const char *sql, size_t len, struct sql_script *ret, char *errbuf, size_t errlen);
void sqlsplit_script_done(struct sql_script *s);

/* sqlsplit_script() for the statements alone: *ret (malloc'd, possibly NULL when *ret_n
 * is 0) and *ret_n.  Outputs untouched on failure. */
int sqlsplit(const char *sql, size_t len, struct sql_stmt **ret, size_t *ret_n, char *errbuf, size_t errlen);

/* The 1-based line in the script of the 1-based character position pos (as
 * PostgreSQL reports in an error's STATEMENT_POSITION, counted in characters
 * of UTF-8 text) inside statement s; s->line when pos is 0 or out of range. */
unsigned sqlsplit_line_of_position(const char *sql, const struct sql_stmt *s, unsigned long pos);

/* The line in the script of line `row` (1-based) of s's data block as PostgreSQL counts
 * in an error's context "COPY t, line N": every newline, those inside a quoted CSV field
 * included, except one escaped by a backslash in text format (a newline in the data).
 * s->line when s has no data block or row is out of range. */
unsigned sqlsplit_copy_row_line(const char *sql, const struct sql_stmt *s, unsigned long row);

/* The nth (0-based) leading word of the statement, comments skipped (length in *ret_len),
 * or NULL when the statement's leading words end before it. */
const char *sqlsplit_word(const char *sql, const struct sql_stmt *s, unsigned nth, size_t *ret_len);

/* True when the statement is transaction control (BEGIN, START TRANSACTION,
 * COMMIT, END, ROLLBACK, ABORT, PREPARE TRANSACTION, COMMIT/ROLLBACK PREPARED),
 * which a transactional migration must not contain. */
bool sqlsplit_is_transaction_control(const char *sql, const struct sql_stmt *s);

enum sql_copy {
        SQL_COPY_NONE,
        SQL_COPY_FROM_STDIN, /* its data block follows it in the script */
        SQL_COPY_TO_STDOUT,  /* psql would print the data: not for a migration */
};
enum sql_copy sqlsplit_copy_kind(const char *sql, const struct sql_stmt *s);
/* True for COPY ... FROM STDIN / TO STDOUT. */
bool sqlsplit_is_copy_stdio(const char *sql, const struct sql_stmt *s);

/* Where a statement may run, from its words alone. */
enum sql_tx {
        SQL_TX_ANY,             /* in a transaction or not (most statements) */
        SQL_TX_SESSION,         /* session state only (SET but not SET LOCAL, RESET, SHOW): harmless either way */
        SQL_TX_NEVER,           /* PostgreSQL refuses it inside a transaction block */
        SQL_TX_NEVER_BEFORE_12, /* ALTER TYPE ... ADD VALUE: refused in a transaction block before PostgreSQL 12 */
};
/* The statement's kind; for the last two, *ret_what (if ret_what) names it, a static
 * string like "CREATE INDEX CONCURRENTLY". */
enum sql_tx sqlsplit_transaction_kind(const char *sql, const struct sql_stmt *s, const char **ret_what);
