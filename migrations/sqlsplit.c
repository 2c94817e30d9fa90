/* See sqlsplit.h.  A small hand-written lexer modelled on psql's psqlscan.l:
 * it only needs to know where statements end, so it tracks quoting, comments,
 * parenthesis depth and psql's BEGIN ATOMIC heuristic, nothing else. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "macro.h"
#include "sqlsplit.h"

static bool ident_start(unsigned char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static bool ident_cont(unsigned char c) {
        return ident_start(c) || (c >= '0' && c <= '9') || c == '$';
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

struct splitter {
        struct sql_stmt *v;
        size_t n, allocated;
};

static int push(struct splitter *s, size_t start, size_t end, unsigned line, const char *sql) {
        while (end > start && strchr(" \t\r\n\f\v", sql[end - 1]))
                end--;
        if (end <= start)
                return 0;
        if (s->n == s->allocated) {
                size_t na = s->allocated ? s->allocated * 2 : 16;
                struct sql_stmt *nv = reallocarray(s->v, na, sizeof(*nv));
                if (!nv)
                        return -ENOMEM;
                s->v = nv;
                s->allocated = na;
        }
        s->v[s->n++] = (struct sql_stmt) { .offset = start, .len = end - start, .line = line };
        return 0;
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

int sqlsplit(const char *sql, size_t len, struct sql_stmt **ret, size_t *ret_n, char *errbuf, size_t errlen) {
        struct splitter s = {};
        size_t i = 0, start = 0;
        unsigned line = 1, stmt_line = 1;
        bool have_token = false;
        int paren = 0, begin_depth = 0, r;
        unsigned ident_count = 0;
        char idents[4] = {};

#define TOKEN()                                         \
        do {                                            \
                if (!have_token) {                      \
                        have_token = true;              \
                        start = i;                      \
                        stmt_line = line;               \
                }                                       \
        } while (0)
#define FAIL(what, at)                                                                  \
        do {                                                                            \
                if (errbuf)                                                             \
                        snprintf(errbuf, errlen, "unterminated %s starting at line %u", \
                                 what, at);                                             \
                free(s.v);                                                              \
                return -EINVAL;                                                         \
        } while (0)

        /* A UTF-8 byte order mark (editors on Windows) is not part of the first statement. */
        if (len >= 3 && memcmp(sql, "\xEF\xBB\xBF", 3) == 0)
                i = 3;
        while (i < len) {
                unsigned char c = (unsigned char) sql[i];

                if (c == '\n') {
                        line++;
                        i++;
                } else if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
                        i++;
                } else if (c == '-' && i + 1 < len && sql[i + 1] == '-') {
                        while (i < len && sql[i] != '\n')
                                i++;
                } else if (c == '/' && i + 1 < len && sql[i + 1] == '*') {
                        unsigned at = line, depth = 1;
                        i += 2;
                        while (i < len && depth > 0) {
                                if (sql[i] == '/' && i + 1 < len && sql[i + 1] == '*') {
                                        depth++;
                                        i += 2;
                                } else if (sql[i] == '*' && i + 1 < len && sql[i + 1] == '/') {
                                        depth--;
                                        i += 2;
                                } else {
                                        if (sql[i] == '\n')
                                                line++;
                                        i++;
                                }
                        }
                        if (depth > 0)
                                FAIL("comment", at);
                } else if (c == '\'') {
                        /* E'...' (the E was consumed as an identifier just before) allows backslash escapes. */
                        bool escapes = i > 0 && (sql[i - 1] == 'E' || sql[i - 1] == 'e') &&
                                       (i < 2 || !ident_cont((unsigned char) sql[i - 2]));
                        unsigned at = line;
                        TOKEN();
                        if (!skip_quoted(sql, len, &i, &line, '\'', escapes))
                                FAIL("quoted string", at);
                } else if (c == '"') {
                        unsigned at = line;
                        TOKEN();
                        if (!skip_quoted(sql, len, &i, &line, '"', false))
                                FAIL("quoted identifier", at);
                } else if (c == '$' && dollar_delim(sql, len, i) > 0) {
                        size_t dl = dollar_delim(sql, len, i);
                        const char *delim = sql + i;
                        unsigned at = line;
                        bool closed = false;
                        TOKEN();
                        i += dl;
                        while (i < len) {
                                if (sql[i] == '$' && i + dl <= len && memcmp(sql + i, delim, dl) == 0) {
                                        i += dl;
                                        closed = true;
                                        break;
                                }
                                if (sql[i] == '\n')
                                        line++;
                                i++;
                        }
                        if (!closed)
                                FAIL("dollar-quoted string", at);
                } else if (ident_start(c)) {
                        size_t b = i, wl;
                        TOKEN();
                        while (i < len && ident_cont((unsigned char) sql[i]))
                                i++;
                        wl = i - b;
                        /* psql's heuristic: inside CREATE [OR REPLACE] FUNCTION|PROCEDURE, count
                         * BEGIN (and CASE within it) against END, outside parentheses. */
#define WORD(w) (wl == strlen(w) && strncasecmp(sql + b, w, wl) == 0)
                        if (ident_count < sizeof(idents) &&
                            (WORD("create") || WORD("function") || WORD("procedure") || WORD("or") || WORD("replace")))
                                idents[ident_count] = (char) (sql[b] | 0x20);
                        ident_count++;
                        if (idents[0] == 'c' &&
                            (idents[1] == 'f' || idents[1] == 'p' ||
                             (idents[1] == 'o' && idents[2] == 'r' && (idents[3] == 'f' || idents[3] == 'p'))) &&
                            paren == 0) {
                                if (WORD("begin"))
                                        begin_depth++;
                                else if (WORD("case")) {
                                        if (begin_depth >= 1)
                                                begin_depth++;
                                } else if (WORD("end")) {
                                        if (begin_depth > 0)
                                                begin_depth--;
                                }
                        }
#undef WORD
                } else if (c >= '0' && c <= '9') {
                        /* Numbers (and $1 parameters below) never start a quote. */
                        TOKEN();
                        while (i < len && (ident_cont((unsigned char) sql[i]) || sql[i] == '.'))
                                i++;
                } else if (c == ';' && paren == 0 && begin_depth == 0) {
                        if (have_token) {
                                r = push(&s, start, i, stmt_line, sql);
                                if (r < 0) {
                                        free(s.v);
                                        return r;
                                }
                        }
                        have_token = false;
                        ident_count = 0;
                        memset(idents, 0, sizeof(idents));
                        i++;
                } else {
                        TOKEN();
                        if (c == '(')
                                paren++;
                        else if (c == ')' && paren > 0)
                                paren--;
                        else if (c == '$') {
                                /* $1 parameter or a lone $: consume with its digits. */
                                i++;
                                while (i < len && sql[i] >= '0' && sql[i] <= '9')
                                        i++;
                                continue;
                        }
                        i++;
                }
        }
        if (have_token) {
                r = push(&s, start, len, stmt_line, sql);
                if (r < 0) {
                        free(s.v);
                        return r;
                }
        }
#undef TOKEN
#undef FAIL
        *ret = s.v;
        *ret_n = s.n;
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

/* The i-th (0-based) word of the statement, skipping comments; length in *ret_len. */
static const char *nth_word(const char *sql, const struct sql_stmt *s, unsigned nth, size_t *ret_len) {
        const char *p = sql + s->offset, *end = p + s->len;
        unsigned k = 0;

        while (p < end) {
                if (*p == '-' && p + 1 < end && p[1] == '-') {
                        while (p < end && *p != '\n')
                                p++;
                } else if (*p == '/' && p + 1 < end && p[1] == '*') {
                        unsigned depth = 1;
                        p += 2;
                        while (p < end && depth > 0) {
                                if (*p == '/' && p + 1 < end && p[1] == '*')
                                        depth++, p += 2;
                                else if (*p == '*' && p + 1 < end && p[1] == '/')
                                        depth--, p += 2;
                                else
                                        p++;
                        }
                } else if (ident_start((unsigned char) *p)) {
                        const char *b = p;
                        while (p < end && ident_cont((unsigned char) *p))
                                p++;
                        if (k++ == nth) {
                                *ret_len = (size_t) (p - b);
                                return b;
                        }
                } else if (strchr(" \t\r\n\f\v", *p)) {
                        p++;
                } else
                        return NULL; /* the statement's leading words end at anything else */
        }
        return NULL;
}

bool sqlsplit_is_transaction_control(const char *sql, const struct sql_stmt *s) {
        static const char *const single[] = { "begin", "commit", "end", "rollback", "abort" };
        size_t l1 = 0, l2 = 0;
        const char *w1 = nth_word(sql, s, 0, &l1), *w2;

        if (!w1)
                return false;
        for (size_t i = 0; i < ELEMENTSOF(single); i++)
                if (l1 == strlen(single[i]) && strncasecmp(w1, single[i], l1) == 0)
                        return true;
        w2 = nth_word(sql, s, 1, &l2);
        if (!w2)
                return false;
        if (l1 == 5 && strncasecmp(w1, "start", 5) == 0 && l2 == 11 && strncasecmp(w2, "transaction", 11) == 0)
                return true;
        if (l1 == 7 && strncasecmp(w1, "prepare", 7) == 0 && l2 == 11 && strncasecmp(w2, "transaction", 11) == 0)
                return true;
        return false;
}

bool sqlsplit_is_copy_stdio(const char *sql, const struct sql_stmt *s) {
        const char *p = sql + s->offset, *end = p + s->len;
        size_t l = 0;
        const char *w = nth_word(sql, s, 0, &l);

        if (!w || l != 4 || strncasecmp(w, "copy", 4) != 0)
                return false;
        /* Any later word STDIN/STDOUT outside quotes and comments (the statement split already
         * checked that quotes and comments are terminated). */
        while (p < end) {
                if (*p == '\'' || *p == '"') {
                        char q = *p++;
                        while (p < end && *p != q)
                                p++;
                        p++;
                } else if (*p == '-' && p + 1 < end && p[1] == '-') {
                        while (p < end && *p != '\n')
                                p++;
                } else if (*p == '/' && p + 1 < end && p[1] == '*') {
                        p += 2;
                        while (p + 1 < end && !(*p == '*' && p[1] == '/'))
                                p++;
                        p += 2;
                } else if (ident_start((unsigned char) *p)) {
                        const char *b = p;
                        while (p < end && ident_cont((unsigned char) *p))
                                p++;
                        l = (size_t) (p - b);
                        if ((l == 5 && strncasecmp(b, "stdin", 5) == 0) || (l == 6 && strncasecmp(b, "stdout", 6) == 0))
                                return true;
                } else
                        p++;
        }
        return false;
}
