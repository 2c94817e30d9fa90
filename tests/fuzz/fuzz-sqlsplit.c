/* The SQL statement splitter (migrations/sqlsplit.c).  Properties of a script
 * that splits:
 *   - statements are in order, apart, and trimmed; a statement's line is 1 + the
 *     newlines before its first byte (a COPY data block's and a line comment
 *     directive's too);
 *   - they cover the input: what lies between two statements (their ';', white
 *     space, comments, a COPY data block and its "\." line) splits into no
 *     statement at all;
 *   - each statement split on its own (after "SET standard_conforming_strings =
 *     off;" where that was in force) is one statement, the same text;
 *   - the per-statement helpers stay inside the statement and the script. */
#include <errno.h>
#include <stdbool.h>
#include <strings.h>

#include "migrations/sqlsplit.h"
#include "tests/fuzz/fuzz.h"

#define BQ_PREFIX "SET standard_conforming_strings = off;\n"

static unsigned line_at(const char *sql, size_t offset) {
        unsigned line = 1;

        for (size_t i = 0; i < offset; i++)
                line += sql[i] == '\n';
        return line;
}

static bool is_space(char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* Where the text after statement s starts being "between statements" again: past its
 * data block and the "\." line, if it has one. */
static size_t after_data(const char *sql, size_t len, const struct sql_stmt *s) {
        const char *nl;

        if (s->data_line == 0)
                return s->offset + s->len;
        nl = memchr(sql + s->data_offset + s->data_len, '\n', len - s->data_offset - s->data_len);
        return nl ? (size_t) (nl - sql) + 1 : len;
}

static void check_stmt(const char *sql, size_t len, const struct sql_stmt *s) {
        FUZZ_CHECK(s->len > 0 && s->offset + s->len <= len, "statement at %zu+%zu out of the script (%zu)",
                   s->offset, s->len, len);
        FUZZ_CHECK(!is_space(sql[s->offset]) && !is_space(sql[s->offset + s->len - 1]),
                   "statement at %zu not trimmed", s->offset);
        FUZZ_CHECK(s->line == line_at(sql, s->offset), "statement at %zu: line %u, but it starts on line %u",
                   s->offset, s->line, line_at(sql, s->offset));
        if (s->data_line == 0)
                return;
        FUZZ_CHECK(s->data_offset > s->offset + s->len && s->data_offset + s->data_len <= len,
                   "COPY data at %zu+%zu misplaced", s->data_offset, s->data_len);
        FUZZ_CHECK(s->data_line == line_at(sql, s->data_offset), "COPY data at %zu: line %u, but it is on line %u",
                   s->data_offset, s->data_line, line_at(sql, s->data_offset));
        FUZZ_CHECK(len - s->data_offset - s->data_len >= 2 &&
                           memcmp(sql + s->data_offset + s->data_len, "\\.", 2) == 0,
                   "COPY data at %zu not followed by \\.", s->data_offset);
}

/* sql[b..e) holds no statement. */
static void check_gap(const char *sql, size_t b, size_t e) {
        struct sql_script sc = {};
        char err[256];
        int r;

        if (b >= e)
                return;
        r = sqlsplit_script(sql + b, e - b, &sc, err, sizeof err);
        FUZZ_CHECK(r == 0 && sc.n_stmts == 0, "between statements, %zu..%zu '%.*s': %d, %zu statements (%s)", b, e,
                   (int) (e - b), sql + b, r, sc.n_stmts, r < 0 ? err : "");
        sqlsplit_script_done(&sc);
}

/* Statement s split alone (after a newline, so no byte order mark is skipped). */
static void check_alone(const char *sql, const struct sql_stmt *s) {
        const char *prefix = s->backslash_quotes ? BQ_PREFIX "\n" : "\n";
        size_t pl = strlen(prefix), n = pl + s->len, want = s->backslash_quotes ? 2 : 1;
        char *t = malloc(n), err[256];
        struct sql_script sc = {};
        int r;

        if (!t)
                abort();
        memcpy(t, prefix, pl);
        memcpy(t + pl, sql + s->offset, s->len);
        r = sqlsplit_script(t, n, &sc, err, sizeof err);
        FUZZ_CHECK(r == 0 && sc.n_stmts == want && sc.stmts[want - 1].offset == pl && sc.stmts[want - 1].len == s->len,
                   "statement at %zu ('%.*s') split alone: %d, %zu statements (%s)", s->offset, (int) s->len,
                   sql + s->offset, r, sc.n_stmts, r < 0 ? err : "");
        sqlsplit_script_done(&sc);
        free(t);
}

static void check_helpers(const char *sql, const struct sql_stmt *s, unsigned last_line, unsigned long pos) {
        unsigned l = sqlsplit_line_of_position(sql, s, pos), c = sqlsplit_copy_row_line(sql, s, pos);
        size_t wl = 0;
        const char *w = sqlsplit_word(sql, s, (unsigned) (pos % 4), &wl);
        const char *what = NULL;

        FUZZ_CHECK(l >= s->line && l <= last_line, "line of position %lu: %u (statement on %u)", pos, l, s->line);
        FUZZ_CHECK(c >= s->line && c <= last_line, "line of COPY row %lu: %u (statement on %u)", pos, c, s->line);
        FUZZ_CHECK(!w || (w >= sql + s->offset && w + wl <= sql + s->offset + s->len), "word outside its statement");
        if (sqlsplit_transaction_kind(sql, s, &what) >= SQL_TX_NEVER)
                FUZZ_CHECK(what, "transaction kind without a name");
        (void) sqlsplit_is_transaction_control(sql, s);
        (void) sqlsplit_is_copy_stdio(sql, s);
}

static void check_directives(const char *sql, const struct sql_script *sc) {
        for (size_t k = 0; k < sc->n_directives; k++) {
                const struct sql_directive *d = &sc->directives[k];
                FUZZ_CHECK(d->len >= 6 && strncasecmp(sql + d->offset, "coord:", 6) == 0,
                           "directive at %zu does not start with coord:", d->offset);
                FUZZ_CHECK(d->block ? d->line <= line_at(sql, d->offset) : d->line == line_at(sql, d->offset),
                           "directive at %zu: line %u, but it is on line %u", d->offset, d->line,
                           line_at(sql, d->offset));
                FUZZ_CHECK(!d->leading || sc->n_stmts == 0 || d->offset < sc->stmts[0].offset,
                           "leading directive at %zu after the first statement", d->offset);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *sql = (const char *) data;
        struct sql_script sc = {};
        char err[256] = "";
        size_t prev = 0;

        if (sqlsplit_script(sql, size, &sc, err, sizeof err) < 0) {
                FUZZ_CHECK(err[0] && !sc.stmts, "failure without a message, or with statements");
                return 0;
        }
        for (size_t k = 0; k < sc.n_stmts; k++) {
                const struct sql_stmt *s = &sc.stmts[k];
                check_stmt(sql, size, s);
                FUZZ_CHECK(s->offset >= prev, "statement %zu at %zu overlaps the one before (to %zu)", k, s->offset,
                           prev);
                check_gap(sql, prev, s->offset);
                if (s->data_line == 0 && sqlsplit_copy_kind(sql, s) == SQL_COPY_NONE)
                        check_alone(sql, s);
                check_helpers(sql, s, line_at(sql, size), (unsigned long) (size * 7 + k) % (s->len + 2));
                prev = after_data(sql, size, s);
        }
        check_gap(sql, prev, size);
        check_directives(sql, &sc);
        sqlsplit_script_done(&sc);
        return 0;
}
