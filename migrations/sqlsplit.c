/* See sqlsplit.h.  A small hand-written lexer modelled on psql's psqlscan.l:
 * it only needs to know where statements end, so it tracks quoting, comments,
 * parenthesis depth and psql's BEGIN ATOMIC heuristic, nothing else.  On top of
 * the statements, a token scanner (struct lexer) answers questions about their
 * leading words: transaction control, COPY, where a statement may run. */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "macro.h"
#include "sqlsplit.h"
#include "strutil.h"

static bool ident_start(unsigned char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static bool ident_cont(unsigned char c) {
        return ident_start(c) || (c >= '0' && c <= '9') || c == '$';
}

static bool is_space(char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* If sql[i] starts a dollar-quote delimiter ($$ or $tag$), its length, else 0. */
static size_t dollar_delim(const char *sql, size_t len, size_t i) {
        size_t j = i + 1;

        if (j < len && sql[j] == '$')
                return 2;
        if (j >= len || !ident_start((unsigned char) sql[j]))
                return 0;
        while (j < len && ident_cont((unsigned char) sql[j]) && sql[j] != '$')
                j++;
        if (j < len && sql[j] == '$')
                return j - i + 1;
        return 0;
}

/* Whether the string literal opening at sql[i] takes backslash escapes, as psql lexes it:
 * E'...' always; B'...', X'...' and U&'...' never; any other '...' (N'...' included) when
 * standard_conforming_strings is off (bq). */
static bool string_escapes(const char *sql, size_t i, bool bq) {
        char p = i > 0 ? sql[i - 1] : '\0';
        bool word_before = i >= 2 && ident_cont((unsigned char) sql[i - 2]);

        if ((p == 'E' || p == 'e') && !word_before)
                return true;
        if (!bq)
                return false;
        if ((p == 'B' || p == 'b' || p == 'X' || p == 'x') && !word_before)
                return false;
        if (p == '&' && i >= 2 && (sql[i - 2] == 'U' || sql[i - 2] == 'u') &&
            !(i >= 3 && ident_cont((unsigned char) sql[i - 3])))
                return false;
        return true;
}

/* Skip a quoted token starting at sql[*i] (the opening quote q); a doubled quote
 * stands for itself, and with escapes (E'...') a backslash escapes the next
 * character.  Counts newlines into *line.  false when the input ends first. */
static bool skip_quoted(const char *sql, size_t len, size_t *i, unsigned *line, char q, bool escapes) {
        size_t k = *i + 1;

        while (k < len) {
                if (escapes && sql[k] == '\\' && k + 1 < len) {
                        if (sql[k + 1] == '\n')
                                (*line)++;
                        k += 2;
                } else if (sql[k] == q) {
                        if (k + 1 < len && sql[k + 1] == q) {
                                k += 2;
                        } else {
                                *i = k + 1;
                                return true;
                        }
                } else {
                        if (sql[k] == '\n')
                                (*line)++;
                        k++;
                }
        }
        *i = k;
        return false;
}

/* Skip a (nested) block comment starting at sql[*i]; false when the input ends first. */
static bool skip_block_comment(const char *sql, size_t len, size_t *i, unsigned *line) {
        size_t k = *i + 2;
        unsigned depth = 1;

        while (k < len && depth > 0) {
                if (sql[k] == '/' && k + 1 < len && sql[k + 1] == '*') {
                        depth++;
                        k += 2;
                } else if (sql[k] == '*' && k + 1 < len && sql[k + 1] == '/') {
                        depth--;
                        k += 2;
                } else {
                        if (sql[k] == '\n')
                                (*line)++;
                        k++;
                }
        }
        *i = k;
        return depth == 0;
}

/* Skip a dollar-quoted string whose delimiter (length dl) starts at sql[*i]. */
static bool skip_dollar(const char *sql, size_t len, size_t *i, unsigned *line, size_t dl) {
        const char *delim = sql + *i;
        size_t k = *i + dl;

        while (k < len) {
                if (sql[k] == '$' && k + dl <= len && memcmp(sql + k, delim, dl) == 0) {
                        *i = k + dl;
                        return true;
                }
                if (sql[k] == '\n')
                        (*line)++;
                k++;
        }
        *i = k;
        return false;
}

/* ---- tokens of one statement ---------------------------------------------------------------- */

struct tok {
        const char *p;
        size_t len;
        char kind; /* 'w' word, 's' string (quoted or dollar-quoted), 'i' quoted identifier,
                    * '0' number, else the punctuation character itself */
        int depth; /* parentheses around it */
};

struct lexer {
        const char *sql; /* the whole script: a string's prefix is looked up before it */
        size_t i, end;
        bool bq;
        int depth;
};

static struct lexer lexer_of(const char *sql, const struct sql_stmt *s) {
        return (struct lexer) { .sql = sql, .i = s->offset, .end = s->offset + s->len, .bq = s->backslash_quotes };
}

/* The next token, comments and white space skipped; false at the end.  The statement was
 * split already, so its quotes and comments are terminated. */
static bool lex_next(struct lexer *lx, struct tok *t) {
        const char *sql = lx->sql;
        unsigned lines = 0;

        while (lx->i < lx->end) {
                size_t b = lx->i;
                unsigned char c = (unsigned char) sql[b];
                size_t dl;

                if (is_space((char) c)) {
                        lx->i++;
                        continue;
                }
                if (c == '-' && b + 1 < lx->end && sql[b + 1] == '-') {
                        while (lx->i < lx->end && sql[lx->i] != '\n')
                                lx->i++;
                        continue;
                }
                if (c == '/' && b + 1 < lx->end && sql[b + 1] == '*') {
                        (void) skip_block_comment(sql, lx->end, &lx->i, &lines);
                        continue;
                }
                t->p = sql + b;
                t->depth = lx->depth;
                if (c == '\'' || c == '"') {
                        (void) skip_quoted(sql, lx->end, &lx->i, &lines, (char) c,
                                           c == '\'' && string_escapes(sql, b, lx->bq));
                        t->kind = c == '\'' ? 's' : 'i';
                } else if (c == '$' && (dl = dollar_delim(sql, lx->end, b)) > 0) {
                        (void) skip_dollar(sql, lx->end, &lx->i, &lines, dl);
                        t->kind = 's';
                } else if (ident_start(c)) {
                        while (lx->i < lx->end && ident_cont((unsigned char) sql[lx->i]))
                                lx->i++;
                        t->kind = 'w';
                } else if (c >= '0' && c <= '9') {
                        while (lx->i < lx->end && (ident_cont((unsigned char) sql[lx->i]) || sql[lx->i] == '.'))
                                lx->i++;
                        t->kind = '0';
                } else {
                        lx->i++;
                        t->kind = (char) c;
                        if (c == '(')
                                lx->depth++;
                        else if (c == ')' && lx->depth > 0)
                                t->depth = --lx->depth;
                }
                t->len = lx->i - b;
                return true;
        }
        return false;
}

/* The first max tokens of s into v; how many. */
static size_t lex_tokens(const char *sql, const struct sql_stmt *s, struct tok *v, size_t max) {
        struct lexer lx = lexer_of(sql, s);
        size_t n = 0;

        while (n < max && lex_next(&lx, &v[n]))
                n++;
        return n;
}

static bool tok_is(const struct tok *t, const char *w) {
        size_t l = strlen(w);
        return t->kind == 'w' && t->len == l && strncasecmp(t->p, w, l) == 0;
}

/* A word, or a quoted string holding just that word ('off'). */
static bool tok_value_is(const struct tok *t, const char *w) {
        size_t l = strlen(w);
        if (t->kind == 's' && t->p[0] == '\'' && t->len == l + 2)
                return strncasecmp(t->p + 1, w, l) == 0;
        return tok_is(t, w) || (t->kind == '0' && t->len == l && memcmp(t->p, w, l) == 0);
}

/* Whether s has the word w1 (followed by the word w2, unless NULL) anywhere. */
static bool has_words(const char *sql, const struct sql_stmt *s, const char *w1, const char *w2) {
        struct lexer lx = lexer_of(sql, s);
        struct tok t, prev = {};

        while (lex_next(&lx, &t)) {
                if (w2 ? tok_is(&prev, w1) && tok_is(&t, w2) : tok_is(&t, w1))
                        return true;
                prev = t;
        }
        return false;
}

/* Whether the option list of s sets name to false ("name = false", off, no or 0). */
static bool option_false(const char *sql, const struct sql_stmt *s, const char *name) {
        struct lexer lx = lexer_of(sql, s);
        struct tok t[3] = {};

        while (lex_next(&lx, &t[2])) {
                if (tok_is(&t[0], name) && t[1].kind == '=' &&
                    (tok_value_is(&t[2], "false") || tok_value_is(&t[2], "off") || tok_value_is(&t[2], "no") ||
                     tok_value_is(&t[2], "0")))
                        return true;
                t[0] = t[1];
                t[1] = t[2];
        }
        return false;
}

/* ---- splitting -------------------------------------------------------------------------------- */

/* psql's heuristic for the body of a SQL-standard function: inside CREATE [OR REPLACE]
 * FUNCTION|PROCEDURE, BEGIN (and CASE within it) counts against END, outside parentheses;
 * a ';' ends the statement only at depth 0. */
struct begin_atomic {
        unsigned n_words;
        char first[4]; /* the first letters of the statement's first words among these, lower case */
        int depth;
};

static void begin_atomic_word(struct begin_atomic *ba, const char *w, size_t wl, int paren) {
#define WORD(x) (wl == strlen(x) && strncasecmp(w, x, wl) == 0)
        if (ba->n_words < sizeof(ba->first) &&
            (WORD("create") || WORD("function") || WORD("procedure") || WORD("or") || WORD("replace")))
                ba->first[ba->n_words] = (char) (w[0] | 0x20);
        ba->n_words++;
        if (ba->first[0] != 'c' || paren != 0 ||
            !(ba->first[1] == 'f' || ba->first[1] == 'p' ||
              (ba->first[1] == 'o' && ba->first[2] == 'r' && (ba->first[3] == 'f' || ba->first[3] == 'p'))))
                return;
        if (WORD("begin"))
                ba->depth++;
        else if (WORD("case")) {
                if (ba->depth >= 1)
                        ba->depth++;
        } else if (WORD("end")) {
                if (ba->depth > 0)
                        ba->depth--;
        }
#undef WORD
}

/* The state of sqlsplit_script(): the scan position, the statement being scanned, and
 * what was found.  The split_*() scanners each take one token or construct starting at
 * sql[i] and return 0 or -errno. */
struct splitter {
        const char *sql;
        size_t len;
        size_t i;      /* the scan position */
        unsigned line; /* the line of sql[i] */
        /* the statement being scanned */
        bool have_token;    /* it has a token yet (not only blanks and comments) */
        size_t start;       /* the offset of its first token */
        unsigned stmt_line; /* the line of its first token */
        int paren;          /* parentheses open */
        struct begin_atomic ba;
        size_t pushed; /* statements after_statement() has seen */
        /* the result */
        struct sql_script out;
        size_t allocated, allocated_directives;
        bool bq; /* standard_conforming_strings is off */
        char *errbuf;
        size_t errlen;
};

static int split_error(struct splitter *s, const char *fmt, ...) _printf_(2, 3);
static int split_error(struct splitter *s, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        errbuf_vprintf(s->errbuf, s->errlen, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

static int push(struct splitter *s, size_t start, size_t end, unsigned line) {
        while (end > start && is_space(s->sql[end - 1]))
                end--;
        if (end <= start)
                return 0;
        if (s->out.n_stmts == s->allocated) {
                size_t na = s->allocated ? s->allocated * 2 : 16;
                struct sql_stmt *nv = reallocarray(s->out.stmts, na, sizeof(*nv));
                if (!nv)
                        return -ENOMEM;
                s->out.stmts = nv;
                s->allocated = na;
        }
        s->out.stmts[s->out.n_stmts++] =
                (struct sql_stmt) { .offset = start, .len = end - start, .line = line, .backslash_quotes = s->bq };
        return 0;
}

/* A comment's text at sql[b..e): if it starts with "coord:" (after blanks), record it. */
static int note_directive(struct splitter *s, size_t b, size_t e, unsigned line, bool block, bool leading) {
        const char *sql = s->sql;

        while (b < e && (sql[b] == ' ' || sql[b] == '\t' || (block && is_space(sql[b]))))
                b++;
        if (e - b < 6 || strncasecmp(sql + b, "coord:", 6) != 0)
                return 0;
        if (!block)
                while (e > b && sql[e - 1] == '\r')
                        e--;
        if (s->out.n_directives == s->allocated_directives) {
                size_t na = s->allocated_directives ? s->allocated_directives * 2 : 4;
                struct sql_directive *nv = reallocarray(s->out.directives, na, sizeof(*nv));
                if (!nv)
                        return -ENOMEM;
                s->out.directives = nv;
                s->allocated_directives = na;
        }
        s->out.directives[s->out.n_directives++] =
                (struct sql_directive) { .offset = b, .len = e - b, .line = line, .block = block, .leading = leading };
        return 0;
}

/* After "COPY ... FROM STDIN;" (sql[i] is just past the ';'): the rest of the line must be
 * blank or a comment; the data lines follow up to psql's end marker, a line "\.". */
static int copy_data(struct splitter *s, struct sql_stmt *st) {
        const char *sql = s->sql;
        size_t k = s->i, len = s->len;

        while (k < len && sql[k] != '\n') {
                if (sql[k] == '-' && k + 1 < len && sql[k + 1] == '-')
                        break;
                if (!is_space(sql[k]))
                        return split_error(s, "line %u: text after COPY ... FROM STDIN; on the same line (its data "
                                           "starts on the next line)", s->line);
                k++;
        }
        if (k < len) {
                const char *nl = memchr(sql + k, '\n', len - k);
                k = nl ? (size_t) (nl - sql) : len;
        }
        if (k >= len)
                return split_error(s, "line %u: COPY ... FROM STDIN without its data lines (end them with a line "
                                   "\\.)", st->line);
        k++;
        s->line++;
        st->data_offset = k;
        st->data_line = s->line;
        while (k < len) {
                const char *nl = memchr(sql + k, '\n', len - k);
                size_t le = nl ? (size_t) (nl - sql) : len, ll = le - k;

                while (ll > 0 && sql[k + ll - 1] == '\r')
                        ll--;
                if (ll == 2 && sql[k] == '\\' && sql[k + 1] == '.') {
                        st->data_len = k - st->data_offset;
                        s->i = nl ? le + 1 : len;
                        if (nl)
                                s->line++;
                        return 0;
                }
                if (!nl)
                        break;
                k = le + 1;
                s->line++;
        }
        return split_error(s, "line %u: the data of the COPY at line %u has no end marker (a line \\.)",
                           st->data_line, st->line);
}

/* "SET [SESSION|LOCAL] standard_conforming_strings [=|TO] VALUE" (t[0..n), k past the name):
 * the value, followed.  0, or -EINVAL for a value that cannot be followed. */
static int follow_scs_value(struct splitter *s, const struct sql_stmt *st, const struct tok *t, size_t n, size_t k) {
        static const char *const on[] = { "on", "true", "yes", "1", "t", "y", "default" };
        static const char *const off[] = { "off", "false", "no", "0", "f", "n" };

        if (k < n && (t[k].kind == '=' || tok_is(&t[k], "to")))
                k++;
        if (k + 1 == n) {
                for (size_t j = 0; j < ELEMENTSOF(on); j++)
                        if (tok_value_is(&t[k], on[j])) {
                                s->bq = false;
                                return 0;
                        }
                for (size_t j = 0; j < ELEMENTSOF(off); j++)
                        if (tok_value_is(&t[k], off[j])) {
                                s->bq = true;
                                return 0;
                        }
        }
        return split_error(s, "line %u: cannot follow this SET standard_conforming_strings (write "
                           "'SET standard_conforming_strings = on' or '= off')", st->line);
}

/* Follow "SET standard_conforming_strings" (and RESET) as psql does: it decides whether the
 * '...' strings after it take backslash escapes.  set_config() cannot be followed: refused. */
static int follow_settings(struct splitter *s, const struct sql_stmt *st) {
        const char *sql = s->sql;
        struct tok t[6];
        size_t n = lex_tokens(sql, st, t, ELEMENTSOF(t)), k = 1;

        if (n >= 2 && tok_is(&t[0], "reset") && (tok_is(&t[1], "standard_conforming_strings") || tok_is(&t[1], "all"))) {
                s->bq = false;
                return 0;
        }
        if (n >= 1 && tok_is(&t[0], "set")) {
                if (k < n && (tok_is(&t[k], "session") || tok_is(&t[k], "local")))
                        k++;
                if (k >= n || !tok_is(&t[k], "standard_conforming_strings"))
                        return 0;
                return follow_scs_value(s, st, t, n, k + 1);
        }
        if (n >= 1 && tok_is(&t[0], "select") && has_words(sql, st, "set_config", NULL)) {
                struct lexer lx = lexer_of(sql, st);
                struct tok u;
                while (lex_next(&lx, &u))
                        if (u.kind == 's' && u.len == 29 && strncasecmp(u.p, "'standard_conforming_strings'", 29) == 0)
                                return split_error(s, "line %u: set_config('standard_conforming_strings', ...) "
                                                   "changes how the rest of the file is lexed; write 'SET "
                                                   "standard_conforming_strings = on' or '= off' instead", st->line);
        }
        return 0;
}

/* After a statement ended with ';' (at_end: the script ended instead). */
static int after_statement(struct splitter *s, bool at_end) {
        struct sql_stmt *st = &s->out.stmts[s->out.n_stmts - 1];

        if (sqlsplit_copy_kind(s->sql, st) == SQL_COPY_FROM_STDIN) {
                if (at_end)
                        return split_error(s, "line %u: COPY ... FROM STDIN without its data lines (end the "
                                           "statement with ';', then the data, then a line \\.)", st->line);
                return copy_data(s, st);
        }
        return follow_settings(s, st);
}

/* sql[i] belongs to the statement being scanned: the first such marks its start. */
static void split_token(struct splitter *s) {
        if (s->have_token)
                return;
        s->have_token = true;
        s->start = s->i;
        s->stmt_line = s->line;
}

static int split_unterminated(struct splitter *s, const char *what, unsigned at) {
        return split_error(s, "unterminated %s starting at line %u", what, at);
}

static int split_line_comment(struct splitter *s) {
        size_t b = s->i + 2;

        while (s->i < s->len && s->sql[s->i] != '\n')
                s->i++;
        return note_directive(s, b, s->i, s->line, false, s->out.n_stmts == 0 && !s->have_token);
}

static int split_block_comment(struct splitter *s) {
        unsigned at = s->line;
        size_t b = s->i + 2;

        if (!skip_block_comment(s->sql, s->len, &s->i, &s->line))
                return split_unterminated(s, "comment", at);
        return note_directive(s, b, s->i - 2, at, true, s->out.n_stmts == 0 && !s->have_token);
}

/* A 'string' (q '\'') or a "quoted identifier" (q '"'). */
static int split_quoted(struct splitter *s, char q) {
        bool escapes = q == '\'' && string_escapes(s->sql, s->i, s->bq);
        unsigned at = s->line;

        split_token(s);
        if (!skip_quoted(s->sql, s->len, &s->i, &s->line, q, escapes))
                return split_unterminated(s, q == '\'' ? "quoted string" : "quoted identifier", at);
        return 0;
}

/* $$ ... $$ or $tag$ ... $tag$. */
static int split_dollar(struct splitter *s, size_t delim_len) {
        unsigned at = s->line;

        split_token(s);
        if (!skip_dollar(s->sql, s->len, &s->i, &s->line, delim_len))
                return split_unterminated(s, "dollar-quoted string", at);
        return 0;
}

static int split_word(struct splitter *s) {
        size_t b = s->i;

        split_token(s);
        while (s->i < s->len && ident_cont((unsigned char) s->sql[s->i]))
                s->i++;
        begin_atomic_word(&s->ba, s->sql + b, s->i - b, s->paren);
        return 0;
}

/* Numbers (and $1 parameters, split_other()) never start a quote. */
static int split_number(struct splitter *s) {
        split_token(s);
        while (s->i < s->len && (ident_cont((unsigned char) s->sql[s->i]) || s->sql[s->i] == '.'))
                s->i++;
        return 0;
}

/* A backslash outside quotes at sql[i] is not SQL: a psql meta-command, to the end of the
 * line.  pg_dump's \restrict and \unrestrict (between statements) only stop psql from
 * running meta-commands, which coord never does: skipped (i at the line's end).  Any
 * other: -EINVAL. */
static int split_meta_command(struct splitter *s) {
        const char *sql = s->sql;
        size_t b = s->i + 1, e = b;

        while (e < s->len && ident_cont((unsigned char) sql[e]))
                e++;
        if (!s->have_token && ((e - b == 8 && memcmp(sql + b, "restrict", 8) == 0) ||
                               (e - b == 10 && memcmp(sql + b, "unrestrict", 10) == 0))) {
                while (s->i < s->len && sql[s->i] != '\n')
                        s->i++;
                return 0;
        }
        if (e == b)
                while (e < s->len && e - b < 16 && !is_space(sql[e]))
                        e++;
        return split_error(s, "line %u: psql meta-command '\\%.*s' is not SQL (coord runs SQL only)", s->line,
                           (int) (e - b), sql + b);
}

/* A ';' outside parentheses and BEGIN ATOMIC bodies: the statement ends. */
static int split_semicolon(struct splitter *s) {
        int r;

        s->i++;
        if (s->have_token) {
                r = push(s, s->start, s->i - 1, s->stmt_line);
                if (r < 0)
                        return r;
        }
        s->have_token = false;
        s->ba = (struct begin_atomic) {}; /* its depth is 0 here */
        if (s->out.n_stmts == s->pushed)
                return 0;
        s->pushed = s->out.n_stmts;
        return after_statement(s, false);
}

/* Any other character: parentheses are counted; a '$' not starting a dollar quote is taken
 * with its digits ($1). */
static int split_other(struct splitter *s) {
        char c = s->sql[s->i];

        split_token(s);
        s->i++;
        if (c == '(')
                s->paren++;
        else if (c == ')' && s->paren > 0)
                s->paren--;
        else if (c == '$')
                while (s->i < s->len && s->sql[s->i] >= '0' && s->sql[s->i] <= '9')
                        s->i++;
        return 0;
}

/* One token or construct at sql[i]. */
static int split_step(struct splitter *s) {
        unsigned char c = (unsigned char) s->sql[s->i];
        char next = s->i + 1 < s->len ? s->sql[s->i + 1] : '\0';
        size_t dl;

        if (c == '\n') {
                s->line++;
                s->i++;
                return 0;
        }
        if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
                s->i++;
                return 0;
        }
        if (c == '-' && next == '-')
                return split_line_comment(s);
        if (c == '/' && next == '*')
                return split_block_comment(s);
        if (c == '\'' || c == '"')
                return split_quoted(s, (char) c);
        if (c == '$' && (dl = dollar_delim(s->sql, s->len, s->i)) > 0)
                return split_dollar(s, dl);
        if (ident_start(c))
                return split_word(s);
        if (c >= '0' && c <= '9')
                return split_number(s);
        if (c == '\\')
                return split_meta_command(s);
        if (c == ';' && s->paren == 0 && s->ba.depth == 0)
                return split_semicolon(s);
        return split_other(s);
}

/* The end of the script ends the last statement too. */
static int split_finish(struct splitter *s) {
        int r;

        if (!s->have_token)
                return 0;
        r = push(s, s->start, s->len, s->stmt_line);
        if (r < 0 || s->out.n_stmts == s->pushed)
                return r;
        return after_statement(s, true);
}

int sqlsplit_script(const char *sql, size_t len, struct sql_script *ret, char *errbuf, size_t errlen) {
        struct splitter s = { .sql = sql, .len = len, .line = 1, .stmt_line = 1, .errbuf = errbuf, .errlen = errlen };
        int r = 0;

        assert(sql || len == 0);
        assert(ret);
        /* A UTF-8 byte order mark (editors on Windows) is not part of the first statement. */
        if (len >= 3 && memcmp(sql, "\xEF\xBB\xBF", 3) == 0)
                s.i = 3;
        while (r == 0 && s.i < len)
                r = split_step(&s);
        if (r == 0)
                r = split_finish(&s);
        if (r < 0) {
                sqlsplit_script_done(&s.out);
                return r;
        }
        *ret = s.out;
        return 0;
}

void sqlsplit_script_done(struct sql_script *s) {
        s->stmts = mfree(s->stmts);
        s->directives = mfree(s->directives);
        s->n_stmts = s->n_directives = 0;
}

int sqlsplit(const char *sql, size_t len, struct sql_stmt **ret, size_t *ret_n, char *errbuf, size_t errlen) {
        struct sql_script s;
        int r = sqlsplit_script(sql, len, &s, errbuf, errlen);

        if (r < 0)
                return r;
        free(s.directives);
        *ret = s.stmts;
        *ret_n = s.n_stmts;
        return 0;
}

unsigned sqlsplit_line_of_position(const char *sql, const struct sql_stmt *s, unsigned long pos) {
        const char *p = sql + s->offset;
        unsigned long chars = 0;
        unsigned line = s->line;

        if (pos == 0)
                return s->line;
        for (size_t i = 0; i < s->len; i++) {
                unsigned char c = (unsigned char) p[i];
                if ((c & 0xC0) == 0x80)
                        continue; /* UTF-8 continuation byte: same character */
                if (++chars == pos)
                        return line;
                if (c == '\n')
                        line++;
        }
        return s->line;
}

unsigned sqlsplit_copy_row_line(const char *sql, const struct sql_stmt *s, unsigned long row) {
        struct lexer lx = lexer_of(sql, s);
        struct tok t;
        const char *p, *end;
        unsigned line;
        unsigned long at = 1;
        bool csv = false;

        if (s->data_line == 0 || row == 0)
                return s->line;
        /* PostgreSQL counts lines as they are in the data, a CSV field's newlines included,
         * except that in text format a backslash escapes the newline after it. */
        while (!csv && lex_next(&lx, &t))
                csv = tok_value_is(&t, "csv");
        p = sql + s->data_offset;
        end = p + s->data_len;
        line = s->data_line;
        while (p < end && at < row) {
                if (!csv && *p == '\\' && p + 1 < end) {
                        if (p[1] == '\n')
                                line++;
                        p += 2;
                        continue;
                }
                if (*p == '\n') {
                        line++;
                        at++;
                }
                p++;
        }
        return at == row && p < end ? line : s->line;
}

const char *sqlsplit_word(const char *sql, const struct sql_stmt *s, unsigned nth, size_t *ret_len) {
        struct lexer lx = lexer_of(sql, s);
        struct tok t;

        /* The statement's leading words end at its first token that is no word. */
        for (unsigned k = 0; lex_next(&lx, &t) && t.kind == 'w'; k++)
                if (k == nth) {
                        *ret_len = t.len;
                        return t.p;
                }
        return NULL;
}

bool sqlsplit_is_transaction_control(const char *sql, const struct sql_stmt *s) {
        static const char *const single[] = { "begin", "commit", "end", "rollback", "abort" };
        struct tok t[2];
        size_t n = lex_tokens(sql, s, t, ELEMENTSOF(t));

        for (size_t i = 0; n >= 1 && i < ELEMENTSOF(single); i++)
                if (tok_is(&t[0], single[i]))
                        return true;
        return n >= 2 && (tok_is(&t[0], "start") || tok_is(&t[0], "prepare")) && tok_is(&t[1], "transaction");
}

enum sql_copy sqlsplit_copy_kind(const char *sql, const struct sql_stmt *s) {
        struct lexer lx = lexer_of(sql, s);
        struct tok t, prev = {};

        if (!lex_next(&lx, &t) || !tok_is(&t, "copy"))
                return SQL_COPY_NONE;
        /* FROM STDIN / TO STDOUT outside the parentheses of COPY (query) TO ... */
        while (lex_next(&lx, &t)) {
                if (t.depth == 0 && tok_is(&prev, "from") && tok_is(&t, "stdin"))
                        return SQL_COPY_FROM_STDIN;
                if (t.depth == 0 && tok_is(&prev, "to") && tok_is(&t, "stdout"))
                        return SQL_COPY_TO_STDOUT;
                prev = t;
        }
        return SQL_COPY_NONE;
}

bool sqlsplit_is_copy_stdio(const char *sql, const struct sql_stmt *s) {
        return sqlsplit_copy_kind(sql, s) != SQL_COPY_NONE;
}

/* After "REINDEX [(options)]" or "CLUSTER [(options)]": the index of the first token past a
 * parenthesised option list at k (k itself when there is none). */
static size_t skip_options(const struct tok *t, size_t n, size_t k) {
        if (k >= n || t[k].kind != '(')
                return k;
        for (k++; k < n; k++)
                if (t[k].kind == ')' && t[k].depth == 0)
                        return k + 1;
        return n;
}

/* What PostgreSQL refuses inside a transaction block (PreventInTransactionBlock()), by the
 * statement's words.  Only what a migration might hold; CALL or DO that commit inside
 * cannot be told from their words. */
static const char *never_in_transaction(const char *sql, const struct sql_stmt *s, const struct tok *t, size_t n) {
        size_t k;

        if (n < 1)
                return NULL;
        if (tok_is(&t[0], "vacuum"))
                return "VACUUM";
        if (tok_is(&t[0], "create") || tok_is(&t[0], "drop")) {
                bool create = tok_is(&t[0], "create");
                k = 1;
                if (create && k < n && tok_is(&t[k], "unique"))
                        k++;
                if (k + 1 < n && tok_is(&t[k], "index") && tok_is(&t[k + 1], "concurrently"))
                        return create ? "CREATE INDEX CONCURRENTLY" : "DROP INDEX CONCURRENTLY";
                if (n > 1 && tok_is(&t[1], "database"))
                        return create ? "CREATE DATABASE" : "DROP DATABASE";
                if (n > 1 && tok_is(&t[1], "tablespace"))
                        return create ? "CREATE TABLESPACE" : "DROP TABLESPACE";
                if (n > 1 && tok_is(&t[1], "subscription")) {
                        if (!create)
                                return "DROP SUBSCRIPTION"; /* with a replication slot, the default */
                        if (!option_false(sql, s, "create_slot") && !option_false(sql, s, "connect"))
                                return "CREATE SUBSCRIPTION"; /* creates a replication slot */
                }
                return NULL;
        }
        if (tok_is(&t[0], "reindex")) {
                k = skip_options(t, n, 1);
                if (has_words(sql, s, "concurrently", NULL))
                        return "REINDEX CONCURRENTLY";
                if (k < n && tok_is(&t[k], "schema"))
                        return "REINDEX SCHEMA";
                if (k < n && tok_is(&t[k], "database"))
                        return "REINDEX DATABASE";
                if (k < n && tok_is(&t[k], "system"))
                        return "REINDEX SYSTEM";
                return NULL;
        }
        if (tok_is(&t[0], "cluster")) {
                k = n > 1 && tok_is(&t[1], "verbose") ? 2 : skip_options(t, n, 1);
                return k >= n ? "CLUSTER without a table name" : NULL;
        }
        if (tok_is(&t[0], "discard"))
                return n > 1 && tok_is(&t[1], "all") ? "DISCARD ALL" : NULL;
        if (!tok_is(&t[0], "alter") || n < 2)
                return NULL;
        if (tok_is(&t[1], "system"))
                return "ALTER SYSTEM";
        if (tok_is(&t[1], "database") && n > 4 && tok_is(&t[3], "set") && tok_is(&t[4], "tablespace"))
                return "ALTER DATABASE ... SET TABLESPACE";
        if (tok_is(&t[1], "table") && has_words(sql, s, "detach", "partition") && has_words(sql, s, "concurrently", NULL))
                return "ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY";
        if (tok_is(&t[1], "subscription")) {
                if (has_words(sql, s, "refresh", "publication"))
                        return "ALTER SUBSCRIPTION ... REFRESH PUBLICATION";
                if ((has_words(sql, s, "set", "publication") || has_words(sql, s, "add", "publication") ||
                     has_words(sql, s, "drop", "publication")) &&
                    !option_false(sql, s, "refresh"))
                        return "ALTER SUBSCRIPTION ... PUBLICATION (with refresh)";
        }
        return NULL;
}

enum sql_tx sqlsplit_transaction_kind(const char *sql, const struct sql_stmt *s, const char **ret_what) {
        struct tok t[8];
        size_t n = lex_tokens(sql, s, t, ELEMENTSOF(t));
        const char *what = never_in_transaction(sql, s, t, n);

        if (what) {
                if (ret_what)
                        *ret_what = what;
                return SQL_TX_NEVER;
        }
        if (n >= 2 && tok_is(&t[0], "alter") && tok_is(&t[1], "type") && has_words(sql, s, "add", "value")) {
                if (ret_what)
                        *ret_what = "ALTER TYPE ... ADD VALUE";
                return SQL_TX_NEVER_BEFORE_12;
        }
        /* Session settings: SET (not SET LOCAL, which means nothing outside a transaction,
         * nor SET TRANSACTION / SET CONSTRAINTS), RESET, SHOW. */
        if (n >= 1 && (tok_is(&t[0], "reset") || tok_is(&t[0], "show")))
                return SQL_TX_SESSION;
        if (n >= 2 && tok_is(&t[0], "set") && !tok_is(&t[1], "local") && !tok_is(&t[1], "transaction") &&
            !tok_is(&t[1], "constraints"))
                return SQL_TX_SESSION;
        return SQL_TX_ANY;
}
