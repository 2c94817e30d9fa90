/* Splitting a SQL script into statements, the way psql does: semicolons end a
 * statement except inside 'strings' (E'' with backslash escapes), "identifiers",
 * dollar quotes ($$ and $tag$), -- and nested block comments, parentheses, and
 * the BEGIN ... END body of a SQL-standard CREATE FUNCTION/PROCEDURE. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct sql_stmt {
        size_t offset;  /* byte offset of the statement's first token in the script */
        size_t len;     /* bytes up to (not including) the terminating ';', trailing space trimmed */
        unsigned line;  /* 1-based line of the first token */
};

/* Split sql[0..len).  Statements holding only comments and white space are
 * skipped.  On success *ret (malloc'd, possibly NULL when *ret_n is 0) and
 * *ret_n are set.  -EINVAL for an unterminated quote, dollar quote or comment,
 * with errbuf naming the line where it starts; -ENOMEM.  Outputs untouched on
 * failure. */
int sqlsplit(const char *sql, size_t len, struct sql_stmt **ret, size_t *ret_n, char *errbuf, size_t errlen);

/* The 1-based line in the script of the 1-based character position pos (as
 * PostgreSQL reports in an error's STATEMENT_POSITION, counted in characters
 * of UTF-8 text) inside statement s; s->line when pos is 0 or out of range. */
unsigned sqlsplit_line_of_position(const char *sql, const struct sql_stmt *s, unsigned long pos);

/* True when the statement is transaction control (BEGIN, START TRANSACTION,
 * COMMIT, END, ROLLBACK, ABORT, PREPARE TRANSACTION, COMMIT/ROLLBACK PREPARED),
 * which a transactional migration must not contain. */
bool sqlsplit_is_transaction_control(const char *sql, const struct sql_stmt *s);

/* True for COPY ... FROM STDIN / TO STDOUT: psql streams the data, a migration cannot. */
bool sqlsplit_is_copy_stdio(const char *sql, const struct sql_stmt *s);
