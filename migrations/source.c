/* See source.h. */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "duration.h"
#include "fileio.h"
#include "flyway.h"
#include "macro.h"
#include "source.h"
#include "strutil.h"

static const char *const migration_type_table[_MIGRATION_TYPE_MAX] = {
        [MIGRATION_VERSIONED] = "versioned",
        [MIGRATION_REPEATABLE] = "repeatable",
        [MIGRATION_SEED] = "seed",
};
DEFINE_STRING_TABLE_LOOKUP(migration_type, enum migration_type, _MIGRATION_TYPE_MAX)

int version_normalize(const char *s, size_t len, char **ret) {
        _cleanup_free_ char *out = NULL;
        size_t i = 0, o = 0;

        if (len == 0)
                return -EINVAL;
        out = malloc(len + 1);
        if (!out)
                return -ENOMEM;
        while (i < len) {
                size_t b = i;
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                while (i < len && s[i] >= '0' && s[i] <= '9')
                        i++;
                /* Drop leading zeros of each part, keeping one digit. */
                while (b + 1 < i && s[b] == '0')
                        b++;
                if (o > 0)
                        out[o++] = '.';
                memcpy(out + o, s + b, i - b);
                o += i - b;
                if (i < len) {
                        if (s[i] != '.' && s[i] != '_')
                                return -EINVAL;
                        i++;
                        if (i == len)
                                return -EINVAL; /* trailing separator */
                }
        }
        out[o] = '\0';
        *ret = TAKE_PTR(out);
        return 0;
}

/* Compare two digit strings without leading zeros (either may be empty: 0). */
static int part_compare(const char *a, size_t al, const char *b, size_t bl) {
        while (al > 0 && *a == '0')
                a++, al--;
        while (bl > 0 && *b == '0')
                b++, bl--;
        if (al != bl)
                return al < bl ? -1 : 1;
        int c = memcmp(a, b, al);
        return c < 0 ? -1 : c > 0;
}

int version_compare(const char *a, const char *b) {
        while (*a || *b) {
                size_t al = strcspn(a, "._"), bl = strcspn(b, "._");
                int c = part_compare(a, al, b, bl);
                if (c != 0)
                        return c;
                a += al;
                b += bl;
                if (*a)
                        a++;
                if (*b)
                        b++;
        }
        return 0;
}

static void migration_done(struct migration *m) {
        free(m->version);
        free(m->description);
        free(m->script);
        free(m->sql);
        free(m->stmts);
        free(m->no_transaction_reason);
}

struct migration_set *source_free(struct migration_set *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n; i++)
                migration_done(&s->v[i]);
        free(s->v);
        free(s);
        return NULL;
}

/* Most migrations are small: one read() of a regular file (the directory scan
 * keeps only those), no fstat(). */
static int read_all(int dirfd, const char *name, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY);

        if (fd < 0)
                return -errno;
        return fileio_read_fd(fd, MIGRATION_MAX_FILE_SIZE, FILEIO_READ_REGULAR, ret, ret_len);
}

/* One "coord:" comment found by the lexer: a directive in the leading comments, or an
 * error naming its line.  first_line: the first statement's (0: none). */
static int parse_directive(struct migration *m, const struct sql_directive *d, unsigned first_line, char *errbuf,
                           size_t errlen) {
        const char *q = m->sql + d->offset, *le = q + d->len;
        const char *name = q + 6, *ne = name, *arg, *ae = le;
        char argbuf[64];
        size_t nl, al;

        while (ne < le && *ne != ' ' && *ne != '\t' && *ne != '\r' && *ne != '\n')
                ne++;
        nl = (size_t) (ne - name);
        if (d->block) {
                errbuf_printf(errbuf, errlen,
                              "%s:%u: 'coord:%.*s' in a block comment: write directives as line comments "
                              "(-- coord:NAME) among the leading comments",
                              m->script, d->line, (int) MIN(nl, (size_t) 64), name);
                return -EINVAL;
        }
        if (!d->leading) {
                errbuf_printf(errbuf, errlen,
                              "%s:%u: directive 'coord:%.*s' after the first statement (line %u): directives go in "
                              "the leading comments, before any SQL",
                              m->script, d->line, (int) MIN(nl, (size_t) 64), name, first_line);
                return -EINVAL;
        }
        arg = ne;
        while (arg < le && (*arg == ' ' || *arg == '\t'))
                arg++;
        while (ae > arg && (ae[-1] == ' ' || ae[-1] == '\t' || ae[-1] == '\r'))
                ae--;
        al = (size_t) (ae - arg);
        if (memcmp(q, "coord:", 6) != 0)
                nl = 0; /* "Coord:": directives are lower case */
        if (nl == 14 && memcmp(name, "no-transaction", 14) == 0) {
                if (al > 0)
                        goto bad_arg;
                m->tx.directive_line = d->line;
        } else if (nl == 11 && memcmp(name, "post-deploy", 11) == 0) {
                if (al > 0)
                        goto bad_arg;
                if (m->type != MIGRATION_VERSIONED) {
                        /* Repeatables and seeds have no version to hold back below. */
                        errbuf_printf(errbuf, errlen,
                                      "%s:%u: directive 'coord:post-deploy' is only valid in versioned "
                                      "migrations (V<version>__<description>.sql), not in %s scripts",
                                      m->script, d->line, migration_type_to_string(m->type));
                        return -EINVAL;
                }
                m->post_deploy = true;
        } else if ((nl == 17 && memcmp(name, "statement-timeout", 17) == 0) ||
                   (nl == 12 && memcmp(name, "lock-timeout", 12) == 0)) {
                uint64_t usec;
                if (al == 0 || al >= sizeof(argbuf))
                        goto bad_arg;
                memcpy(argbuf, arg, al);
                argbuf[al] = '\0';
                if (duration_parse(argbuf, &usec) < 0 || usec < USEC_PER_MSEC)
                        goto bad_arg;
                if (name[0] == 's')
                        m->statement_timeout_usec = usec;
                else
                        m->lock_timeout_usec = usec;
        } else {
                errbuf_printf(errbuf, errlen,
                              "%s:%u: unknown directive '%.*s' (known: coord:no-transaction, "
                              "coord:statement-timeout, coord:lock-timeout, coord:post-deploy)",
                              m->script, d->line, (int) MIN((size_t) (ne - q), (size_t) 70), q);
                return -EINVAL;
        }
        return 0;
bad_arg:
        errbuf_printf(errbuf, errlen, "%s:%u: directive 'coord:%.*s' has a bad argument '%.*s' (expected: %s)",
                      m->script, d->line, (int) MIN(nl, (size_t) 64), name, (int) MIN(al, (size_t) 64), arg,
                      name[0] == 'n' || name[0] == 'p' ? "none" : "a duration like 30s, at least 1ms");
        return -EINVAL;
}

/* The leading words of a statement, upper case, for messages: "CREATE TABLE", "CREATE OR
 * REPLACE VIEW", "INSERT". */
static void statement_label(const char *sql, const struct sql_stmt *st, char *buf, size_t len) {
        static const char *const more[] = { "create", "alter", "drop", "or", "replace", "unique", "temp",
                                            "temporary", "unlogged", "materialized", "global", "local",
                                            "comment", "grant", "revoke", "security", "label" };
        size_t o = 0;

        buf[0] = '\0';
        for (unsigned k = 0; k < 5; k++) {
                size_t wl = 0;
                const char *w = sqlsplit_word(sql, st, k, &wl);
                bool go_on = false;

                if (!w || o + wl + 2 > len)
                        break;
                if (o > 0)
                        buf[o++] = ' ';
                for (size_t j = 0; j < wl; j++)
                        buf[o++] = (char) (w[j] >= 'a' && w[j] <= 'z' ? w[j] - 'a' + 'A' : w[j]);
                buf[o] = '\0';
                for (size_t j = 0; j < ELEMENTSOF(more); j++)
                        go_on = go_on || (wl == strlen(more[j]) && strncasecmp(w, more[j], wl) == 0);
                if (!go_on)
                        break;
        }
        if (o == 0)
                snprintf(buf, len, "a statement");
}

/* Whether m runs in a transaction, from m->tx and the server's version: the directive says
 * no; else a statement PostgreSQL refuses in a transaction block makes it run without one,
 * and one that belongs in a transaction next to it is an error (exit 2). */
static int decide_transaction(struct migration *m, char *errbuf, size_t errlen) {
        const struct migration_tx *t = &m->tx;
        unsigned never = t->never_line, tx = t->tx_line;
        const char *never_what = t->never_what, *tx_what = t->tx_what;

        if (t->add_value_line > 0) {
                /* ALTER TYPE ... ADD VALUE: refused in a transaction before 12, transactional since. */
                if (m->server_before_12 && (never == 0 || t->add_value_line < never)) {
                        never = t->add_value_line;
                        never_what = "ALTER TYPE ... ADD VALUE (before PostgreSQL 12)";
                } else if (!m->server_before_12 && (tx == 0 || t->add_value_line < tx)) {
                        tx = t->add_value_line;
                        tx_what = "ALTER TYPE ... ADD VALUE";
                }
        }
        m->no_transaction_reason = mfree(m->no_transaction_reason);
        m->no_transaction = false;
        if (t->directive_line > 0) {
                m->no_transaction = true;
                m->no_transaction_reason = strdup("-- coord:no-transaction");
        } else if (never > 0 && tx > 0) {
                errbuf_printf(errbuf, errlen,
                              "%s:%u: %s cannot run inside a transaction, and line %u (%s) should not run outside "
                              "one: move one of them to a migration of its own, or add '-- coord:no-transaction' to "
                              "run the whole file statement by statement without a transaction",
                              m->script, never, never_what, tx, tx_what);
                return -EINVAL;
        } else if (never > 0) {
                m->no_transaction = true;
                m->no_transaction_reason = strdup_printf("detected: %s at line %u", never_what, never);
        } else
                return 0;
        return m->no_transaction_reason ? 0 : -ENOMEM;
}

/* The checks on one statement, and what it tells about where the file may run. */
static int check_statement(struct migration *m, const struct sql_stmt *st, char *errbuf, size_t errlen) {
        const char *what = NULL;

        if (sqlsplit_copy_kind(m->sql, st) == SQL_COPY_TO_STDOUT) {
                errbuf_printf(errbuf, errlen,
                              "%s:%u: COPY ... TO STDOUT prints data, which a migration cannot; COPY to a file on "
                              "the server instead",
                              m->script, st->line);
                return -EINVAL;
        }
        if (sqlsplit_is_transaction_control(m->sql, st)) {
                errbuf_printf(errbuf, errlen,
                              "%s:%u: transaction control statements are not allowed: coord runs each "
                              "migration in its own transaction (or statement by statement with "
                              "-- coord:no-transaction); split the file instead",
                              m->script, st->line);
                return -EINVAL;
        }
        switch (sqlsplit_transaction_kind(m->sql, st, &what)) {
        case SQL_TX_NEVER:
                if (m->tx.never_line == 0) {
                        m->tx.never_line = st->line;
                        m->tx.never_what = what;
                }
                break;
        case SQL_TX_NEVER_BEFORE_12:
                if (m->tx.add_value_line == 0)
                        m->tx.add_value_line = st->line;
                break;
        case SQL_TX_ANY:
                if (m->tx.tx_line == 0) {
                        m->tx.tx_line = st->line;
                        statement_label(m->sql, st, m->tx.tx_what, sizeof(m->tx.tx_what));
                }
                break;
        case SQL_TX_SESSION:
                break;
        }
        return 0;
}

/* Lex m: its statements, directives, the checks on each statement, and whether it runs in
 * a transaction.  keep: keep the statements in m->stmts (and set m->split). */
static int migration_lex(struct migration *m, bool keep, char *errbuf, size_t errlen) {
        struct sql_script sc = {};
        char e[256];
        int r;

        r = sqlsplit_script(m->sql, m->sql_len, &sc, e, sizeof(e));
        if (r < 0) {
                errbuf_printf(errbuf, errlen, "%s: %s", m->script, r == -EINVAL ? e : strerror(-r));
                return r;
        }
        /* Everything below is derived from the text: start afresh (a re-split after the text changed). */
        m->tx = (struct migration_tx) {};
        m->post_deploy = false;
        m->statement_timeout_usec = m->lock_timeout_usec = 0;
        for (size_t i = 0; i < sc.n_directives && r >= 0; i++)
                r = parse_directive(m, &sc.directives[i], sc.n_stmts > 0 ? sc.stmts[0].line : 0, errbuf, errlen);
        for (size_t i = 0; i < sc.n_stmts && r >= 0; i++)
                r = check_statement(m, &sc.stmts[i], errbuf, errlen);
        if (r >= 0)
                r = decide_transaction(m, errbuf, errlen);
        if (r >= 0) {
                m->stmts = mfree(m->stmts);
                m->n_stmts = 0;
                m->split = keep;
                if (keep) {
                        m->stmts = TAKE_PTR(sc.stmts);
                        m->n_stmts = sc.n_stmts;
                }
        }
        sqlsplit_script_done(&sc);
        return r;
}

int source_split(struct migration *m, char *errbuf, size_t errlen) {
        if (m->split)
                return 0;
        return migration_lex(m, true, errbuf, errlen);
}

int source_set_sql(struct migration *m, char *sql, size_t len, char *errbuf, size_t errlen) {
        free(m->sql);
        m->sql = sql;
        m->sql_len = len;
        return m->split ? migration_lex(m, true, errbuf, errlen) : 0;
}

const char *migration_no_transaction(const struct migration *m) {
        if (!m->no_transaction)
                return NULL;
        return m->no_transaction_reason ?: "-- coord:no-transaction";
}

int source_set_server_version(struct migration_set *s, int server_version, char *errbuf, size_t errlen) {
        bool before12 = server_version > 0 && server_version < 120000;

        for (size_t i = 0; i < s->n; i++) {
                struct migration *m = &s->v[i];
                int r;

                if (m->server_before_12 == before12)
                        continue;
                m->server_before_12 = before12;
                if (m->tx.add_value_line == 0)
                        continue;
                r = decide_transaction(m, errbuf, errlen);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Parse the file name into m (type, version, description).  0, or -EINVAL with errbuf set. */
static int parse_name(const char *name, struct migration *m, char *errbuf, size_t errlen) {
        size_t len = strlen(name), body;
        const char *sep;
        int r;

        body = len - 4; /* without ".sql" */
        sep = strstr(name, "__");
        if (!sep || (size_t) (sep - name) >= body)
                goto bad;
        if (name[0] == 'V') {
                r = version_normalize(name + 1, (size_t) (sep - name - 1), &m->version);
                if (r < 0)
                        goto bad;
                m->type = MIGRATION_VERSIONED;
        } else if ((name[0] == 'R' || name[0] == 'S') && sep == name + 1)
                m->type = name[0] == 'R' ? MIGRATION_REPEATABLE : MIGRATION_SEED;
        else
                goto bad;
        {
                const char *d = sep + 2;
                size_t dl = body - (size_t) (d - name);
                if (dl == 0)
                        goto bad;
                m->description = strndup(d, dl);
                if (!m->description)
                        return -ENOMEM;
                for (char *c = m->description; *c; c++)
                        if (*c == '_')
                                *c = ' ';
        }
        return 0;
bad:
        free(m->version);
        m->version = NULL;
        if (flyway_explain_name(name, errbuf, errlen))
                return -EINVAL; /* a Flyway file coord does not run: undo, callback, baseline migration */
        errbuf_printf(errbuf, errlen,
                      "%s: not a migration file name (expected V<version>__<description>.sql with a version like "
                      "1, 1.1 or 2_1, R__<description>.sql or S__<description>.sql)",
                      name);
        return -EINVAL;
}

static int migration_cmp(const void *a, const void *b) {
        const struct migration *x = a, *y = b;
        if (x->type != y->type)
                return x->type < y->type ? -1 : 1;
        if (x->type == MIGRATION_VERSIONED) {
                int c = version_compare(x->version, y->version);
                if (c != 0)
                        return c;
        }
        return strcmp(x->script, y->script);
}

struct reader {
        int dirfd;
        const char *dir;
        struct migration_set *s;
        bool split;
        size_t first, step;
        size_t err_index; /* lowest failing index, or SIZE_MAX */
        int r;
        char err[1024];
};

/* Read, hash and lex every step-th file from first. */
static void *reader_run(void *p) {
        struct reader *rd = p;

        rd->err_index = SIZE_MAX;
        for (size_t i = rd->first; i < rd->s->n; i += rd->step) {
                struct migration *m = &rd->s->v[i];
                int r = read_all(rd->dirfd, m->script, &m->sql, &m->sql_len);
                if (r < 0) {
                        snprintf(rd->err, sizeof(rd->err), "%s/%s: %s", rd->dir, m->script,
                                 r == -EFBIG ? "file too large (limit 64 MiB)" : strerror(-r));
                        r = r == -EFBIG ? -EINVAL : r;
                } else {
                        sha256_hex(m->sql, m->sql_len, m->checksum);
                        /* Lexed even when the statements are not kept: status and validate must
                         * refuse what apply would refuse. */
                        r = migration_lex(m, rd->split, rd->err, sizeof(rd->err));
                }
                if (r < 0) {
                        rd->r = r;
                        rd->err_index = i;
                        break;
                }
        }
        return NULL;
}

/* Thousands of small files cost mostly system calls: read them with a few threads. */
static int load_contents(int dirfd, const char *dir, struct migration_set *s, bool split, char *errbuf,
                         size_t errlen) {
        enum { MAX_READERS = 4 };
        struct reader rd[MAX_READERS];
        pthread_t th[MAX_READERS];
        bool started[MAX_READERS] = {};
        size_t n = s->n >= 1024 ? MAX_READERS : 1;
        const struct reader *worst = NULL;

        for (size_t t = 0; t < n; t++) {
                rd[t] = (struct reader) { .dirfd = dirfd, .dir = dir, .s = s, .split = split, .first = t, .step = n };
                started[t] = t > 0 && pthread_create(&th[t], NULL, reader_run, &rd[t]) == 0;
        }
        for (size_t t = 0; t < n; t++)
                if (!started[t]) {
                        /* The caller's thread does the first share, and any a thread could not take. */
                        rd[t].step = n;
                        reader_run(&rd[t]);
                }
        for (size_t t = 0; t < n; t++) {
                if (started[t])
                        pthread_join(th[t], NULL);
                if (rd[t].err_index != SIZE_MAX && (!worst || rd[t].err_index < worst->err_index))
                        worst = &rd[t];
        }
        if (worst) {
                errbuf_printf(errbuf, errlen, "%s", worst->err);
                return worst->r;
        }
        return 0;
}

static void closedirp(DIR **d) {
        if (*d)
                closedir(*d);
}

/* Whether the directory entry de of d is a migration to read: a regular file (or a link to
 * one) named "*.sql" (any case), not hidden.  1 yes, 0 no; -EINVAL (errbuf) for a Flyway file
 * coord does not run, -errno when it cannot be stat()ed. */
static int source_entry_wanted(DIR *d, const char *dir, const struct dirent *de, char *errbuf, size_t errlen) {
        size_t nl = strlen(de->d_name);
        struct stat st;

        if (de->d_name[0] == '.')
                return 0;
        if (nl < 4 || strcasecmp(de->d_name + nl - 4, ".sql") != 0)
                /* Flyway's "V1__x.sql.conf" changes how its migration runs: never skip it silently.
                 * ".SQL" counts too: a file must never be skipped for its case. */
                return flyway_explain_name(de->d_name, errbuf, errlen) ? -EINVAL : 0;
        /* d_type saves a stat per file; symlinks and unknown types are stat()ed. */
        if (de->d_type == DT_REG)
                return 1;
        if (de->d_type != DT_LNK && de->d_type != DT_UNKNOWN)
                return 0;
        if (fstatat(dirfd(d), de->d_name, &st, 0) < 0) {
                int r = -errno;
                errbuf_printf(errbuf, errlen, "%s/%s: %s", dir, de->d_name, strerror(-r));
                return r;
        }
        return S_ISREG(st.st_mode);
}

/* Add the migration file name to s (its text is read later).  0, -EINVAL (errbuf: a bad
 * name), -E2BIG (errbuf: too many files), -ENOMEM. */
static int source_add(struct migration_set *s, size_t *allocated, const char *dir, const char *name, char *errbuf,
                      size_t errlen) {
        struct migration m = {};
        int r;

        if (s->n >= MIGRATION_MAX_FILES) {
                errbuf_printf(errbuf, errlen, "%s: more than %u migration files", dir, MIGRATION_MAX_FILES);
                return -E2BIG;
        }
        r = parse_name(name, &m, errbuf, errlen);
        if (r < 0)
                return r;
        m.script = strdup(name);
        if (!m.script) {
                migration_done(&m);
                return -ENOMEM;
        }
        if (s->n == *allocated) {
                size_t na = *allocated ? *allocated * 2 : 64;
                struct migration *nv = reallocarray(s->v, na, sizeof(*nv));
                if (!nv) {
                        migration_done(&m);
                        return -ENOMEM;
                }
                s->v = nv;
                *allocated = na;
        }
        s->v[s->n++] = m;
        return 0;
}

/* The migration files of the open directory d into s, by name only. */
static int source_list(DIR *d, const char *dir, struct migration_set *s, char *errbuf, size_t errlen) {
        size_t allocated = 0;
        struct dirent *de;
        int r;

        while ((errno = 0, de = readdir(d))) {
                r = source_entry_wanted(d, dir, de, errbuf, errlen);
                if (r > 0)
                        r = source_add(s, &allocated, dir, de->d_name, errbuf, errlen);
                if (r < 0)
                        return r;
        }
        if (errno != 0) {
                r = -errno;
                errbuf_printf(errbuf, errlen, "reading %s: %s", dir, strerror(-r));
                return r;
        }
        return 0;
}

/* Sort s (versioned ascending, then repeatables, then seeds), count each type, and refuse
 * two files of one version.  0, or -EINVAL (errbuf). */
static int source_sort(struct migration_set *s, char *errbuf, size_t errlen) {
        if (s->n > 0)
                qsort(s->v, s->n, sizeof(*s->v), migration_cmp);
        for (size_t i = 0; i < s->n; i++) {
                switch (s->v[i].type) {
                case MIGRATION_VERSIONED: s->n_versioned++; break;
                case MIGRATION_REPEATABLE: s->n_repeatable++; break;
                case MIGRATION_SEED: s->n_seed++; break;
                default: assert(false);
                }
                if (i > 0 && s->v[i].type == MIGRATION_VERSIONED && s->v[i - 1].type == MIGRATION_VERSIONED &&
                    version_compare(s->v[i].version, s->v[i - 1].version) == 0) {
                        errbuf_printf(errbuf, errlen, "%s and %s: duplicate version %s", s->v[i - 1].script,
                                      s->v[i].script, s->v[i].version);
                        return -EINVAL;
                }
        }
        return 0;
}

int source_load(const char *dir, bool split, struct migration_set **ret, char *errbuf, size_t errlen) {
        _cleanup_(closedirp) DIR *d = NULL;
        struct migration_set *s = NULL;
        int r;

        assert(dir);
        assert(ret);
        d = opendir(dir);
        if (!d) {
                r = -errno;
                errbuf_printf(errbuf, errlen, "cannot open migrations directory %s: %s", dir, strerror(-r));
                return r;
        }
        s = calloc(1, sizeof(*s));
        if (!s) {
                errbuf_printf(errbuf, errlen, "out of memory");
                return -ENOMEM;
        }
        r = source_list(d, dir, s, errbuf, errlen);
        if (r == 0)
                r = load_contents(dirfd(d), dir, s, split, errbuf, errlen);
        if (r == 0)
                r = source_sort(s, errbuf, errlen);
        if (r < 0) {
                source_free(s);
                return r;
        }
        *ret = s;
        return 0;
}
