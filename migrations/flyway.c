/* See flyway.h.  The behaviour copied from Flyway was read from its source
 * (flyway-core: ChecksumCalculator, BomFilter, PlaceholderReplacingReader,
 * ParsingContext, SqlMigrationResolver, CoreMigrationType, callback Event;
 * PostgreSQLDatabase for the history table). */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "duration.h"
#include "fence.h"
#include "flyway.h"
#include "jsonutil.h"
#include "log.h"
#include "migrate.h"
#include "parse-util.h"
#include "pgutil.h"
#include "strutil.h"

/* ---- placeholders ------------------------------------------------------------------------------ */

struct placeholder {
        char *key;
        char *value;
};

struct flyway_placeholders {
        struct placeholder *v;
        size_t n, allocated;
};

/* Flyway lower-cases keys (Java's toLowerCase): compare ignoring case. */
static bool key_eq(const char *a, size_t al, const char *b, size_t bl) {
        return al == bl && strncasecmp(a, b, al) == 0;
}

static bool has_prefix_nocase(const char *s, size_t len, const char *prefix) {
        size_t pl = strlen(prefix);
        return len >= pl && strncasecmp(s, prefix, pl) == 0;
}

struct flyway_placeholders *flyway_placeholders_new(void) {
        return calloc(1, sizeof(struct flyway_placeholders));
}

struct flyway_placeholders *flyway_placeholders_free(struct flyway_placeholders *p) {
        if (!p)
                return NULL;
        for (size_t i = 0; i < p->n; i++) {
                free(p->v[i].key);
                free(p->v[i].value);
        }
        free(p->v);
        free(p);
        return NULL;
}

const char *flyway_placeholders_get(const struct flyway_placeholders *p, const char *key, size_t key_len) {
        for (size_t i = 0; p && i < p->n; i++)
                if (key_eq(p->v[i].key, strlen(p->v[i].key), key, key_len))
                        return p->v[i].value;
        return NULL;
}

int flyway_placeholders_set(struct flyway_placeholders *p, const char *key, size_t key_len, const char *value) {
        _cleanup_free_ char *k = NULL, *v = NULL;

        assert(p);
        if (key_len == 0 || has_prefix_nocase(key, key_len, "flyway:"))
                return -EINVAL;
        for (size_t i = 0; i < key_len; i++)
                if (key[i] == '{' || key[i] == '}' || (unsigned char) key[i] < 0x20 || key[i] == 0x7f)
                        return -EINVAL;
        v = strdup(value);
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < p->n; i++)
                if (key_eq(p->v[i].key, strlen(p->v[i].key), key, key_len)) {
                        free(p->v[i].value);
                        p->v[i].value = TAKE_PTR(v);
                        return 0;
                }
        k = strndup(key, key_len);
        if (!k)
                return -ENOMEM;
        if (p->n == p->allocated) {
                size_t na = p->allocated ? p->allocated * 2 : 8;
                struct placeholder *nv = reallocarray(p->v, na, sizeof(*nv));
                if (!nv)
                        return -ENOMEM;
                p->v = nv;
                p->allocated = na;
        }
        p->v[p->n++] = (struct placeholder) { .key = TAKE_PTR(k), .value = TAKE_PTR(v) };
        return 0;
}

int flyway_placeholders_set_assignment(struct flyway_placeholders *p, const char *assignment) {
        const char *eq = strchr(assignment, '=');
        if (!eq)
                return -EINVAL;
        return flyway_placeholders_set(p, assignment, (size_t) (eq - assignment), eq + 1);
}

int flyway_placeholders_set_env(struct flyway_placeholders *p, char *const *envp, const char **ret_bad) {
        /* Flyway's own names first, so coord's win. */
        static const char *const prefixes[] = { "FLYWAY_PLACEHOLDERS_", "COORD_PLACEHOLDER_" };

        for (size_t k = 0; k < ELEMENTSOF(prefixes); k++) {
                size_t pl = strlen(prefixes[k]);
                for (char *const *e = envp; e && *e; e++) {
                        const char *eq;
                        int r;
                        if (strncmp(*e, prefixes[k], pl) != 0)
                                continue;
                        eq = strchr(*e + pl, '=');
                        if (!eq)
                                continue;
                        r = flyway_placeholders_set(p, *e + pl, (size_t) (eq - *e - pl), eq + 1);
                        if (r < 0) {
                                if (ret_bad)
                                        *ret_bad = *e;
                                return r;
                        }
                }
        }
        return 0;
}

void flyway_builtins_done(struct flyway_builtins *b) {
        free(b->default_schema);
        free(b->user);
        free(b->database);
        free(b->working_directory);
        *b = (struct flyway_builtins) {};
}

/* The built-in ${flyway:NAME} (name without the "flyway:"), or NULL with *ret_known. */
static const char *builtin_get(const struct flyway_builtins *b, const char *name, size_t len, const char *script,
                               bool *ret_known) {
        static const struct {
                const char *name;
                size_t offset; /* of the char * in struct flyway_builtins; SIZE_MAX: special */
        } table[] = {
                { "defaultSchema", offsetof(struct flyway_builtins, default_schema) },
                { "user", offsetof(struct flyway_builtins, user) },
                { "database", offsetof(struct flyway_builtins, database) },
                { "workingDirectory", offsetof(struct flyway_builtins, working_directory) },
                { "timestamp", SIZE_MAX - 1 },
                { "filename", SIZE_MAX },
        };
        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                if (!key_eq(name, len, table[i].name, strlen(table[i].name)))
                        continue;
                *ret_known = true;
                if (table[i].offset == SIZE_MAX)
                        return script;
                if (!b || !b->loaded)
                        return NULL;
                if (table[i].offset == SIZE_MAX - 1)
                        return b->timestamp;
                return *(char *const *) ((const char *) b + table[i].offset);
        }
        *ret_known = false;
        return NULL;
}

static unsigned line_at(const char *text, size_t pos) {
        unsigned line = 1;
        for (const char *p = text; (p = memchr(p, '\n', (size_t) (text + pos - p))); p++)
                line++;
        return line;
}

struct buf {
        char *p;
        size_t n, allocated;
};

static int buf_append(struct buf *b, const char *s, size_t n) {
        if (n > MIGRATION_MAX_FILE_SIZE || b->n + n > MIGRATION_MAX_FILE_SIZE)
                return -EFBIG;
        if (b->n + n + 1 > b->allocated) {
                size_t na = MAX(b->allocated * 2, b->n + n + 1);
                char *np = realloc(b->p, na);
                if (!np)
                        return -ENOMEM;
                b->p = np;
                b->allocated = na;
        }
        memcpy(b->p + b->n, s, n);
        b->n += n;
        b->p[b->n] = '\0';
        return 0;
}

/* The key as shown in a message: its first line, at most 64 bytes. */
static int key_shown(const char *key, size_t len) {
        const char *nl = memchr(key, '\n', len);
        return (int) MIN(nl ? (size_t) (nl - key) : len, (size_t) 64);
}

/* The environment variable hint for key, when key makes a variable name. */
static void env_hint(const char *key, size_t len, char *out, size_t outlen) {
        char up[72];
        if (len == 0 || len >= 64) {
                out[0] = '\0';
                return;
        }
        for (size_t i = 0; i < len; i++) {
                char c = key[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) {
                        out[0] = '\0';
                        return;
                }
                up[i] = c >= 'a' && c <= 'z' ? (char) (c - 'a' + 'A') : c;
        }
        up[len] = '\0';
        snprintf(out, outlen, ", or set COORD_PLACEHOLDER_%s (or FLYWAY_PLACEHOLDERS_%s)", up, up);
}

int flyway_replace(const char *text, size_t len, const char *script, const struct flyway_placeholders *p,
                   const struct flyway_builtins *b, char **ret, size_t *ret_len, size_t *ret_n, char *errbuf,
                   size_t errlen) {
        struct buf out = {};
        size_t i = 0, n = 0;
        int r = 0;

        assert(text || len == 0);
        assert(ret);
        assert(ret_len);
        assert(ret_n);
        r = buf_append(&out, "", 0);
        while (r == 0 && i < len) {
                const char *d = memmem(text + i, len - i, "${", 2), *key, *close;
                const char *value;
                size_t stop = d ? (size_t) (d - text) : len, kl;

                r = buf_append(&out, text + i, stop - i);
                if (r < 0 || !d)
                        break;
                key = d + 2;
                close = memchr(key, '}', (size_t) (text + len - key));
                if (!close) {
                        errbuf_printf(errbuf, errlen,
                                      "%s:%u: '${' without a closing '}' (a placeholder is ${key}; with no "
                                      "placeholders meant here, set FLYWAY_PLACEHOLDER_REPLACEMENT=false)",
                                      script, line_at(text, stop));
                        r = -EINVAL;
                        break;
                }
                kl = (size_t) (close - key);
                value = flyway_placeholders_get(p, key, kl);
                if (!value && has_prefix_nocase(key, kl, "flyway:")) {
                        bool known;
                        value = builtin_get(b, key + 7, kl - 7, script, &known);
                        if (!value) {
                                errbuf_printf(errbuf, errlen,
                                              known ? "%s:%u: no value for the built-in placeholder ${%.*s}"
                                                    : "%s:%u: unknown built-in placeholder ${%.*s} (coord provides "
                                                      "flyway:defaultSchema, flyway:user, flyway:database, "
                                                      "flyway:timestamp, flyway:filename, flyway:workingDirectory)",
                                              script, line_at(text, stop), key_shown(key, kl), key);
                                r = -EINVAL;
                                break;
                        }
                } else if (!value) {
                        char hint[200];
                        env_hint(key, kl, hint, sizeof(hint));
                        errbuf_printf(errbuf, errlen,
                                      "%s:%u: no value for placeholder ${%.*s} (pass --placeholder %.*s=VALUE%s)",
                                      script, line_at(text, stop), key_shown(key, kl), key, key_shown(key, kl), key,
                                      hint);
                        r = -EINVAL;
                        break;
                }
                r = buf_append(&out, value, strlen(value));
                n++;
                i = (size_t) (close + 1 - text);
        }
        if (r == -EFBIG) {
                errbuf_printf(errbuf, errlen, "%s: larger than 64 MiB after placeholder replacement", script);
                r = -EINVAL;
        }
        if (r < 0) {
                free(out.p);
                return r;
        }
        *ret = out.p;
        *ret_len = out.n;
        *ret_n = n;
        return 0;
}

/* ---- Flyway's checksum ------------------------------------------------------------------------- */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
        for (uint32_t i = 0; i < 256; i++) {
                uint32_t c = i;
                for (int k = 0; k < 8; k++)
                        c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
                crc_table[i] = c;
        }
}

static inline uint32_t crc_byte(uint32_t crc, uint8_t b) {
        return crc_table[(crc ^ b) & 0xff] ^ (crc >> 8);
}

/* Strict UTF-8, as Java's decoder: no overlong forms, surrogates or values above U+10FFFF. */
static bool utf8_valid(const uint8_t *s, size_t len) {
        size_t i = 0;
        while (i < len) {
                uint8_t c = s[i];
                size_t n;
                uint32_t cp;
                if (c < 0x80) {
                        i++;
                        continue;
                }
                if (c >= 0xC2 && c <= 0xDF)
                        n = 1, cp = c & 0x1F;
                else if (c >= 0xE0 && c <= 0xEF)
                        n = 2, cp = c & 0x0F;
                else if (c >= 0xF0 && c <= 0xF4)
                        n = 3, cp = c & 0x07;
                else
                        return false;
                if (len - i - 1 < n)
                        return false;
                for (size_t k = 1; k <= n; k++) {
                        if ((s[i + k] & 0xC0) != 0x80)
                                return false;
                        cp = (cp << 6) | (s[i + k] & 0x3F);
                }
                if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
                    (cp >= 0xD800 && cp <= 0xDFFF))
                        return false;
                i += n + 1;
        }
        return true;
}

int flyway_checksum(const char *data, size_t len, int32_t *ret) {
        const uint8_t *s = (const uint8_t *) data;
        uint32_t crc = 0xFFFFFFFFu;
        size_t i = 0;

        if (!utf8_valid(s, len))
                return -EILSEQ;
        pthread_once(&crc_once, crc_init);
        if (len >= 3 && s[0] == 0xEF && s[1] == 0xBB && s[2] == 0xBF)
                i = 3; /* BomFilter: U+FEFF at the start of the first line */
        /* The lines, concatenated without their terminators: every byte but CR and LF. */
        for (; i < len; i++)
                if (s[i] != '\r' && s[i] != '\n')
                        crc = crc_byte(crc, s[i]);
        *ret = (int32_t) ~crc;
        return 0;
}

int32_t flyway_checksum_latin1(const char *data, size_t len) {
        const uint8_t *s = (const uint8_t *) data;
        uint32_t crc = 0xFFFFFFFFu;

        pthread_once(&crc_once, crc_init);
        for (size_t i = 0; i < len; i++) {
                if (s[i] == '\r' || s[i] == '\n')
                        continue;
                if (s[i] < 0x80)
                        crc = crc_byte(crc, s[i]);
                else {
                        crc = crc_byte(crc, (uint8_t) (0xC0 | (s[i] >> 6)));
                        crc = crc_byte(crc, (uint8_t) (0x80 | (s[i] & 0x3F)));
                }
        }
        return (int32_t) ~crc;
}

bool flyway_checksum_matches(const char *data, size_t len, int32_t recorded) {
        int32_t c;
        if (flyway_checksum(data, len, &c) == 0 && c == recorded)
                return true;
        return flyway_checksum_latin1(data, len) == recorded;
}

/* ---- file names ------------------------------------------------------------------------------- */

/* Flyway's callback events (org.flywaydb.core.api.callback.Event): "<event>.sql" or
 * "<event>__<description>.sql". */
static const char *const callback_events[] = {
        "beforeMigrate", "beforeEachMigrate", "beforeEachMigrateStatement", "afterEachMigrateStatement",
        "afterEachMigrateStatementError", "afterEachMigrate", "afterEachMigrateError", "beforeRepeatables",
        "afterVersioned", "afterMigrateApplied", "afterMigrate", "afterMigrateError", "afterMigrateOperationFinish",
        "beforeClean", "afterClean", "afterCleanError", "beforeUndo", "beforeEachUndo", "beforeEachUndoStatement",
        "afterEachUndoStatement", "afterEachUndoStatementError", "afterEachUndo", "afterEachUndoError", "afterUndo",
        "afterUndoError", "beforeValidate", "afterValidate", "afterValidateError", "beforeBaseline", "afterBaseline",
        "afterBaselineError", "beforeRepair", "afterRepair", "afterRepairError", "beforeInfo", "afterInfo",
        "afterInfoError", "afterInfoOperationFinish", "createSchema", "beforeCreateSchema", "beforeConnect",
        "afterConnect",
};

/* "<prefix><version>__..." with a version of digits, '.' and '_'. */
static bool is_prefixed_version(const char *name, char prefix) {
        const char *sep = strstr(name, "__");
        if (name[0] != prefix || !sep || sep == name + 1)
                return false;
        for (const char *p = name + 1; p < sep; p++)
                if (!((*p >= '0' && *p <= '9') || *p == '.' || *p == '_'))
                        return false;
        return true;
}

bool flyway_explain_name(const char *name, char *buf, size_t len) {
        size_t nl = strlen(name);

        if (nl > 9 && strcasecmp(name + nl - 9, ".sql.conf") == 0) {
                errbuf_printf(buf, len,
                              "%s: Flyway per-script configuration is not read: put '-- coord:no-transaction' "
                              "(executeInTransaction=false) or the timeout directives in the migration itself, and "
                              "remove this file",
                              name);
                return true;
        }
        if (nl < 4 || strcasecmp(name + nl - 4, ".sql") != 0)
                return false;
        if (is_prefixed_version(name, 'U')) {
                errbuf_printf(buf, len,
                              "%s: undo migrations are not supported (coord never undoes; write a new versioned "
                              "migration)",
                              name);
                return true;
        }
        if (is_prefixed_version(name, 'B')) {
                errbuf_printf(buf, len,
                              "%s: Flyway baseline migrations are not supported; to mark an existing schema as "
                              "migrated up to a version, run 'coordctl migrate baseline VERSION'",
                              name);
                return true;
        }
        for (size_t i = 0; i < ELEMENTSOF(callback_events); i++) {
                size_t el = strlen(callback_events[i]);
                if (strncmp(name, callback_events[i], el) != 0)
                        continue;
                if (name[el] == '.' ? el + 4 == nl : strncmp(name + el, "__", 2) == 0) {
                        errbuf_printf(buf, len,
                                      "%s: Flyway callbacks (%s) are not supported: coord runs only V, R and S "
                                      "files; for SQL to run after the migrations, use a repeatable R__ script "
                                      "(re-run when it changes) or a seed S__ script",
                                      name, callback_events[i]);
                        return true;
                }
        }
        return false;
}

/* ---- adoption --------------------------------------------------------------------------------- */

/* Indexed like the set; v[i].valid false: compare with the migration's text. */
struct flyway_sums {
        size_t n;
        struct {
                bool valid, utf8_ok;
                int32_t utf8, latin1;
        } v[];
};

static struct flyway_sums *sums_new(size_t n) {
        struct flyway_sums *s = calloc(1, sizeof(*s) + n * sizeof(s->v[0]));
        if (s)
                s->n = n;
        return s;
}

static void sums_take(struct flyway_sums *s, size_t i, const struct migration *m) {
        s->v[i].utf8_ok = flyway_checksum(m->sql, m->sql_len, &s->v[i].utf8) == 0;
        s->v[i].latin1 = flyway_checksum_latin1(m->sql, m->sql_len);
        s->v[i].valid = true;
}

/* Whether Flyway's recorded checksum fits file i of set as it is now or, for a
 * repeatable whose placeholders were replaced, as it was written. */
static bool sums_match(const struct flyway_sums *s, const struct migration_set *set, size_t i, int32_t recorded) {
        if (s && i < s->n && s->v[i].valid &&
            ((s->v[i].utf8_ok && s->v[i].utf8 == recorded) || s->v[i].latin1 == recorded))
                return true;
        return flyway_checksum_matches(set->v[i].sql, set->v[i].sql_len, recorded);
}

static const char *own(struct history *h, char *s) {
        if (!s)
                return NULL;
        if (h->n_owned % 64 == 0) {
                char **no = reallocarray(h->owned, h->n_owned + 64, sizeof(*no));
                if (!no) {
                        free(s);
                        return NULL;
                }
                h->owned = no;
        }
        h->owned[h->n_owned++] = s;
        return s;
}

static const char *own_dup(struct history *h, const char *s) {
        return own(h, strdup(s ?: ""));
}

enum row_kind {
        KIND_SKIP,     /* SCHEMA */
        KIND_BASELINE, /* BASELINE, SQL_BASELINE, JDBC_BASELINE, SCRIPT_BASELINE */
        KIND_SQL,      /* SQL */
        KIND_CODE,     /* JDBC, SPRING_JDBC, SCRIPT, CUSTOM: no .sql file coord could run */
        KIND_GONE,     /* DELETE, UNDO_*: no longer applied */
        KIND_UNKNOWN,
};

/* The types of flyway_schema_history (Flyway's MigrationType) named in full; *_BASELINE and
 * UNDO_* are told by their ends (row_kind()). */
enum flyway_type {
        FLYWAY_TYPE_SCHEMA,
        FLYWAY_TYPE_BASELINE,
        FLYWAY_TYPE_SQL,
        FLYWAY_TYPE_JDBC,
        FLYWAY_TYPE_SPRING_JDBC,
        FLYWAY_TYPE_SCRIPT,
        FLYWAY_TYPE_CUSTOM,
        FLYWAY_TYPE_DELETE,
        _FLYWAY_TYPE_MAX,
};

static const char *const flyway_type_table[_FLYWAY_TYPE_MAX] = {
        [FLYWAY_TYPE_SCHEMA] = "SCHEMA", [FLYWAY_TYPE_BASELINE] = "BASELINE",       [FLYWAY_TYPE_SQL] = "SQL",
        [FLYWAY_TYPE_JDBC] = "JDBC",     [FLYWAY_TYPE_SPRING_JDBC] = "SPRING_JDBC", [FLYWAY_TYPE_SCRIPT] = "SCRIPT",
        [FLYWAY_TYPE_CUSTOM] = "CUSTOM", [FLYWAY_TYPE_DELETE] = "DELETE",
};
DEFINE_PRIVATE_STRING_TABLE_LOOKUP(flyway_type, enum flyway_type, _FLYWAY_TYPE_MAX)

static enum row_kind row_kind(const char *type) {
        static const enum row_kind kinds[_FLYWAY_TYPE_MAX] = {
                [FLYWAY_TYPE_SCHEMA] = KIND_SKIP, [FLYWAY_TYPE_BASELINE] = KIND_BASELINE,
                [FLYWAY_TYPE_SQL] = KIND_SQL,     [FLYWAY_TYPE_JDBC] = KIND_CODE,
                [FLYWAY_TYPE_SPRING_JDBC] = KIND_CODE, [FLYWAY_TYPE_SCRIPT] = KIND_CODE,
                [FLYWAY_TYPE_CUSTOM] = KIND_CODE, [FLYWAY_TYPE_DELETE] = KIND_GONE,
        };
        int t = flyway_type_from_string(type);
        size_t tl = strlen(type);

        if (t >= 0)
                return kinds[t];
        if (tl > 9 && strcmp(type + tl - 9, "_BASELINE") == 0)
                return KIND_BASELINE;
        if (strncmp(type, "UNDO_", 5) == 0)
                return KIND_GONE;
        return KIND_UNKNOWN;
}

/* The file of set for a versioned row (by version) or a repeatable (by file name); SIZE_MAX. */
static size_t find_file(const struct migration_set *set, const char *version, const char *script) {
        if (version) {
                size_t lo = 0, hi = set->n_versioned;
                while (lo < hi) {
                        size_t mid = (lo + hi) / 2;
                        int c = version_compare(set->v[mid].version, version);
                        if (c == 0)
                                return mid;
                        if (c < 0)
                                lo = mid + 1;
                        else
                                hi = mid;
                }
                return SIZE_MAX;
        }
        /* Flyway records a repeatable's path below its location: compare the file name. */
        const char *base = strrchr(script, '/');
        base = base ? base + 1 : script;
        for (size_t i = set->n_versioned; i < set->n_versioned + set->n_repeatable; i++)
                if (strcmp(set->v[i].script, base) == 0)
                        return i;
        return SIZE_MAX;
}

/* Flyway row f's kind and normalized version (NULL: none; caller frees).  0, or -EBADMSG
 * (errbuf) for a type or version coord cannot take over. */
static int adopt_check(const struct flyway_row *f, enum row_kind *ret_kind, char **ret_version, char *errbuf,
                       size_t errlen) {
        enum row_kind kind = row_kind(f->type);
        _cleanup_free_ char *version = NULL;

        if (kind == KIND_UNKNOWN) {
                errbuf_printf(errbuf, errlen,
                              FLYWAY_TABLE " installed_rank %" PRId64 ": type '%s' cannot be taken over (known: SQL, "
                              "JDBC, SPRING_JDBC, SCRIPT, CUSTOM, BASELINE, *_BASELINE, DELETE, UNDO_*, SCHEMA)",
                              f->installed_rank, f->type);
                return -EBADMSG;
        }
        if (f->version && *f->version && version_normalize(f->version, strlen(f->version), &version) < 0) {
                errbuf_printf(errbuf, errlen,
                              FLYWAY_TABLE " installed_rank %" PRId64
                                           ": version '%s' is not digits separated by '.' or '_'",
                              f->installed_rank, f->version);
                return -EBADMSG;
        }
        if (kind == KIND_BASELINE && !version) {
                errbuf_printf(errbuf, errlen, FLYWAY_TABLE " installed_rank %" PRId64 ": a %s row without a version",
                              f->installed_rank, f->type);
                return -EBADMSG;
        }
        *ret_kind = kind;
        *ret_version = TAKE_PTR(version);
        return 0;
}

/* The checksum of w, taken over from a row of kind with Flyway's checksum recorded (when
 * has_sum), for file of set (SIZE_MAX: none).  0 or -ENOMEM. */
static int adopt_checksum(struct history_row *w, enum row_kind kind, const struct migration_set *set, size_t file,
                          const struct flyway_sums *sums, bool has_sum, int32_t recorded, struct history *h) {
        if (file != SIZE_MAX && (!has_sum || kind != KIND_SQL)) {
                w->checksum = set->v[file].checksum;
        } else if (file != SIZE_MAX && w->version) {
                /* A changed file keeps Flyway's checksum, which the planner compares with
                 * Flyway's algorithm: changed until restored, or realigned by repair. */
                w->checksum = sums_match(sums, set, file, recorded)
                                      ? set->v[file].checksum
                                      : own(h, strdup_printf(FLYWAY_CHECKSUM_PREFIX "%" PRId32, recorded));
                if (!w->checksum)
                        return -ENOMEM;
        } else if (file != SIZE_MAX) {
                /* A repeatable changed since Flyway last ran it runs again (no checksum). */
                w->checksum = sums_match(sums, set, file, recorded) ? set->v[file].checksum : NULL;
        } else if (has_sum) {
                /* No file (yet): checked with Flyway's algorithm once there is one. */
                w->checksum = own(h, strdup_printf(FLYWAY_CHECKSUM_PREFIX "%" PRId32, recorded));
                if (!w->checksum)
                        return -ENOMEM;
        }
        return 0;
}

/* The coord row for Flyway row f into w (strings owned by h).  0, -ENOMEM, -EBADMSG. */
static int adopt_row(const struct flyway_row *f, const struct migration_set *set, const struct flyway_sums *sums,
                     struct history *h, struct history_row *w, char *errbuf, size_t errlen) {
        enum row_kind kind;
        _cleanup_free_ char *version = NULL;
        size_t file = SIZE_MAX;
        char at[32];
        int recorded = 0, r;
        bool has_sum = false;

        r = adopt_check(f, &kind, &version, errbuf, errlen);
        if (r < 0)
                return r;
        if (f->checksum && parse_int(f->checksum, &recorded) == 0)
                has_sum = true;
        if (kind != KIND_BASELINE)
                file = find_file(set, version, f->script ?: "");

        *w = (struct history_row) {
                .description = own_dup(h, f->description),
                .script = own_dup(h, file != SIZE_MAX ? set->v[file].script : f->script),
                .installed_by = own(h, strdup_printf(FLYWAY_INSTALLED_BY_PREFIX "%s", f->installed_by ?: "")),
                .installed_at = own_dup(h, format_rfc3339(f->installed_on_usec, at, sizeof(at))),
                .execution_ms = f->execution_time,
                .success = f->success,
        };
        if (version) {
                w->version = own(h, TAKE_PTR(version));
                if (!w->version)
                        return -ENOMEM;
        }
        if (!w->description || !w->script || !w->installed_by || !w->installed_at)
                return -ENOMEM;

        if (kind == KIND_BASELINE) {
                w->type = "baseline";
                return 0;
        }
        if (kind == KIND_GONE || (kind == KIND_CODE && file == SIZE_MAX && f->success)) {
                /* Gone in Flyway, or code coord cannot run: recorded, never run. */
                w->type = "deleted";
                return 0;
        }
        w->type = w->version ? "versioned" : "repeatable";
        return adopt_checksum(w, kind, set, file, sums, has_sum, recorded, h);
}

int flyway_adopt_compute(const struct flyway_row *rows, size_t n, const struct migration_set *set,
                         const struct flyway_sums *sums, struct history *h, char *errbuf, size_t errlen) {
        struct history_row *v = NULL;
        size_t k = 0;
        int r;

        assert(h && h->n == 0);
        if (n == 0)
                return 0;
        v = calloc(n, sizeof(*v));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                if (row_kind(rows[i].type ?: "") == KIND_SKIP)
                        continue;
                r = adopt_row(&rows[i], set, sums, h, &v[k], errbuf, errlen);
                if (r < 0) {
                        if (r == -ENOMEM)
                                errbuf_printf(errbuf, errlen, "out of memory");
                        free(v);
                        return r;
                }
                v[k].rank = (int64_t) k + 1;
                k++;
        }
        if (k == 0) {
                free(v);
                return 0;
        }
        free(h->rows);
        h->rows = v;
        h->n = k;
        h->adopting = true;
        return 0;
}

/* ---- I/O --------------------------------------------------------------------------------------- */

void flyway_run_done(struct flyway_run *f) {
        flyway_builtins_done(&f->builtins);
}

static int builtins_load(struct flyway_run *f, PGconn *c, char *errbuf, size_t errlen) {
        _cleanup_pgresult_ PGresult *res = NULL;
        struct flyway_builtins *b = &f->builtins;
        struct tm tm;
        time_t now = time(NULL);
        char cwd[PATH_MAX];
        int r;

        if (b->loaded)
                return 0;
        r = pg_query(c, "SELECT current_user, current_database(), current_schema()", 0, NULL, &res, errbuf, errlen);
        if (r < 0)
                return r;
        for (int i = 0; i < 3; i++) {
                char **t = i == 0 ? &b->user : i == 1 ? &b->database : &b->default_schema;
                if (!PQgetisnull(res, 0, i) && !(*t = strdup(PQgetvalue(res, 0, i))))
                        return -ENOMEM;
        }
        if (getcwd(cwd, sizeof(cwd)) && !(b->working_directory = strdup(cwd)))
                return -ENOMEM;
        if (localtime_r(&now, &tm))
                strftime(b->timestamp, sizeof(b->timestamp), "%Y-%m-%d %H:%M:%S", &tm);
        b->loaded = true;
        return 0;
}

/* Replace the placeholders of m (when it has any) and hash it again when rehash. */
static int replace_one(struct flyway_run *f, PGconn *c, struct migration *m, bool rehash, char *errbuf, size_t errlen) {
        _cleanup_free_ char *text = NULL;
        size_t len, n;
        int r;

        if (!memmem(m->sql, m->sql_len, "${", 2))
                return 0;
        if (memmem(m->sql, m->sql_len, "${flyway:", 9) || memmem(m->sql, m->sql_len, "${FLYWAY:", 9)) {
                r = builtins_load(f, c, errbuf, errlen);
                if (r < 0)
                        return r;
        }
        r = flyway_replace(m->sql, m->sql_len, m->script, f->placeholders, &f->builtins, &text, &len, &n, errbuf,
                           errlen);
        if (r < 0)
                return r;
        if (rehash)
                sha256_hex(text, len, m->checksum);
        /* The statements, directives and where it runs come from the replaced text, as Flyway
         * parses the replaced text. */
        r = source_set_sql(m, TAKE_PTR(text), len, errbuf, errlen);
        if (r < 0)
                return r;
        log_debug("%s: replaced %zu placeholder%s", m->script, n, n == 1 ? "" : "s");
        return 0;
}

static const char flyway_find_sql[] =
        "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = current_schema() AND c.relname = $1 AND c.relkind IN ('r', 'p')";

/* The rows of flyway_schema_history in the connection's schema (none when it does not
 * exist); their strings point into *ret_res. */
static int flyway_read(PGconn *c, PGresult **ret_res, struct flyway_row **ret_rows, size_t *ret_n, char *errbuf,
                       size_t errlen) {
        _cleanup_pgresult_ PGresult *found = NULL, *res = NULL;
        _cleanup_free_ char *q = NULL;
        _cleanup_free_ struct flyway_row *rows = NULL;
        const char *p[] = { FLYWAY_TABLE };
        char e[1024];
        int r, n;

        r = pg_query(c, flyway_find_sql, 1, p, &found, errbuf, errlen);
        if (r < 0)
                return r;
        if (PQntuples(found) == 0) {
                *ret_n = 0;
                return 0;
        }
        q = strdup_printf("SELECT installed_rank, version, description, type, script, checksum::text, installed_by,"
                          " (extract(epoch FROM installed_on::timestamptz) * 1000000)::bigint, execution_time,"
                          " success FROM %s ORDER BY installed_rank",
                          PQgetvalue(found, 0, 0));
        if (!q)
                return -ENOMEM;
        r = pg_query(c, q, 0, NULL, &res, e, sizeof(e));
        if (r < 0) {
                errbuf_printf(errbuf, errlen, "reading %s: %s", PQgetvalue(found, 0, 0), e);
                return r;
        }
        n = PQntuples(res);
        if (n > 0 && !(rows = calloc((size_t) n, sizeof(*rows))))
                return -ENOMEM;
        for (int i = 0; i < n; i++) {
                struct flyway_row *w = &rows[i];
                int64_t v = 0;
                const char *s;
#define VAL(col) (PQgetisnull(res, i, col) ? NULL : PQgetvalue(res, i, col))
                (void) parse_int64(VAL(0) ?: "0", &w->installed_rank);
                w->version = VAL(1);
                w->description = VAL(2) ?: "";
                w->type = VAL(3) ?: "";
                w->script = VAL(4) ?: "";
                w->checksum = VAL(5);
                w->installed_by = VAL(6) ?: "";
                s = VAL(7);
                if (s && parse_int64(s, &v) == 0 && v > 0)
                        w->installed_on_usec = (uint64_t) v;
                (void) parse_int64(VAL(8) ?: "0", &w->execution_time);
                w->success = strcmp(VAL(9) ?: "f", "t") == 0;
#undef VAL
        }
        *ret_res = TAKE_PTR(res);
        *ret_rows = TAKE_PTR(rows);
        *ret_n = (size_t) n;
        return 0;
}

int flyway_before_plan(struct flyway_run *f, PGconn *c, struct migration_set *set, struct history *h,
                       char *errbuf, size_t errlen) {
        _cleanup_pgresult_ PGresult *res = NULL;
        _cleanup_free_ struct flyway_row *rows = NULL;
        _cleanup_free_ struct flyway_sums *sums = NULL;
        size_t n = 0;
        int r;

        if (h && h->n == 0) {
                r = flyway_read(c, &res, &rows, &n, errbuf, errlen);
                if (r < 0)
                        return r == -ENOMEM ? -EIO : r;
        }
        if (f->placeholders) {
                for (size_t i = set->n_versioned; i < set->n; i++) {
                        struct migration *m = &set->v[i];
                        if (n > 0 && memmem(m->sql, m->sql_len, "${", 2)) {
                                if (!sums && !(sums = sums_new(set->n)))
                                        return -ENOMEM;
                                sums_take(sums, i, m);
                        }
                        r = replace_one(f, c, m, true, errbuf, errlen);
                        if (r < 0)
                                return r;
                }
        }
        if (n == 0)
                return 0;
        r = flyway_adopt_compute(rows, n, set, sums, h, errbuf, errlen);
        if (r < 0)
                return r == -ENOMEM ? -EIO : r;
        if (h->adopting)
                log_debug("No coord history, but a " FLYWAY_TABLE " with %zu rows: %zu to take over", n, h->n);
        return 0;
}

/* Make d (owned; NULL: out of memory, nothing changes) e's whole explanation. */
static void detail_replace(struct migrate_entry *e, char *d) {
        if (d) {
                free(e->detail);
                e->detail = d;
        }
}

static void annotate(struct migrate_entry *e, bool adopting) {
        const char *from = adopting ? "in " FLYWAY_TABLE ": taken over by the next apply"
                                    : "adopted from " FLYWAY_TABLE;
        _cleanup_free_ char *d = NULL;

        e->adopted = true;
        switch (e->state) {
        case STATE_FAILED:
                detail_replace(e, strdup("failed in Flyway (" FLYWAY_TABLE "): fix the schema by hand and remove the "
                                         "failed row with 'flyway repair' first, then run coordctl migrate again"));
                return;
        case STATE_CHANGED:
                if (e->applied_checksum &&
                    strncmp(e->applied_checksum, FLYWAY_CHECKSUM_PREFIX, strlen(FLYWAY_CHECKSUM_PREFIX)) == 0) {
                        int32_t now = 0;
                        if (e->file && flyway_checksum(e->file->sql, e->file->sql_len, &now) < 0)
                                now = flyway_checksum_latin1(e->file->sql, e->file->sql_len);
                        detail_replace(e, strdup_printf("changed since Flyway applied it (Flyway recorded checksum "
                                                        "%s, the file's is %" PRId32 "); restore it, or run "
                                                        "'coordctl migrate repair' to accept the file as it is",
                                                        e->applied_checksum + strlen(FLYWAY_CHECKSUM_PREFIX), now));
                        return;
                }
                migrate_entry_add_detail(e, from);
                return;
        case STATE_MISSING:
                d = strdup_printf("%s (coord reads only the .sql files directly in --dir, not subdirectories)", from);
                break;
        case STATE_DELETED:
                d = strdup_printf("%s; no SQL file (a Java-based migration, or one Flyway marked deleted or undid): "
                                  "never run", from);
                break;
        default:
                migrate_entry_add_detail(e, from);
                return;
        }
        if (d)
                migrate_entry_add_detail(e, d);
}

int flyway_after_plan(struct flyway_run *f, PGconn *c, struct migrate_report *r, bool replace, char *errbuf,
                      size_t errlen) {
        bool adopting = r->history && r->history->adopting;
        size_t pl = strlen(FLYWAY_INSTALLED_BY_PREFIX);

        for (size_t i = 0; i < r->n; i++) {
                struct migrate_entry *e = &r->v[i];
                if (e->installed_by && strncmp(e->installed_by, FLYWAY_INSTALLED_BY_PREFIX, pl) == 0)
                        annotate(e, adopting);
        }
        if (!replace || !f->placeholders || !r->set)
                return 0;
        /* The versioned files that will run, ascending (their entries are in the set's order). */
        for (size_t i = 0; i < r->n; i++) {
                struct migrate_entry *e = &r->v[i];
                struct migration *m;
                int k;

                if (!e->will_run || !e->file || e->file->type != MIGRATION_VERSIONED)
                        continue;
                m = &r->set->v[e->file - r->set->v]; /* the set's own, to change */
                /* The checksum of a versioned file stays the file's, as in Flyway. */
                k = replace_one(f, c, m, false, errbuf, errlen);
                if (k < 0)
                        return k;
                /* Split again when replaced: whether it runs in a transaction is the replaced text's. */
                e->no_transaction = migration_no_transaction(m);
        }
        return 0;
}

static json_t *row_json(const struct history_row *w, size_t n) {
        json_t *o = json_object();
        if (!o)
                return NULL;
#define STR(s) ((s) ? json_string(s) : json_null())
        if (json_object_set_new(o, "n", json_integer((json_int_t) n)) < 0 ||
            json_object_set_new(o, "version", STR(w->version)) < 0 ||
            json_object_set_new(o, "description", STR(w->description)) < 0 ||
            json_object_set_new(o, "type", STR(w->type)) < 0 || json_object_set_new(o, "script", STR(w->script)) < 0 ||
            json_object_set_new(o, "checksum", STR(w->checksum)) < 0 ||
            json_object_set_new(o, "installed_by", STR(w->installed_by)) < 0 ||
            json_object_set_new(o, "installed_at", STR(w->installed_at)) < 0 ||
            json_object_set_new(o, "execution_ms", json_integer(w->execution_ms)) < 0 ||
            json_object_set_new(o, "success", json_boolean(w->success)) < 0) {
                json_decref(o);
                return NULL;
        }
#undef STR
        return o;
}

/* Fenced (the fence row is locked by fence_check_sql until COMMIT), and only into an empty
 * history: a second runner never adopts twice. */
static const char adopt_insert_sql[] =
        "INSERT INTO coord_schema_history (version, description, type, script, checksum, installed_by,"
        " installed_at, execution_ms, success, fencing_token)"
        " SELECT t.version, t.description, t.type, t.script, t.checksum, t.installed_by, t.installed_at,"
        " t.execution_ms, t.success, $2::bigint"
        " FROM json_to_recordset($1::json) AS t(n integer, version text, description text, type text, script text,"
        " checksum text, installed_by text, installed_at timestamptz, execution_ms integer, success boolean)"
        " WHERE NOT EXISTS (SELECT 1 FROM coord_schema_history) ORDER BY t.n";

int flyway_adopt_write(PGconn *c, const char *begin, struct history *h, const char *lock_name, const char *token,
                       char *errbuf, size_t errlen) {
        _cleanup_json_ json_t *arr = NULL;
        _cleanup_free_ char *doc = NULL;
        char e[1024], want[24];
        int r;

        if (!h || !h->adopting)
                return 0;
        arr = json_array();
        if (!arr)
                return -ENOMEM;
        for (size_t i = 0; i < h->n; i++) {
                if (!h->rows[i].success) {
                        errbuf_printf(errbuf, errlen,
                                      "%s: failed in Flyway (" FLYWAY_TABLE "): fix the schema by hand and remove the "
                                      "failed row with 'flyway repair' first, then run coordctl migrate again",
                                      h->rows[i].script);
                        return -EBADMSG;
                }
                if (json_array_append_new(arr, row_json(&h->rows[i], i)) < 0)
                        return -ENOMEM;
        }
        doc = json_dumps(arr, JSON_COMPACT);
        if (!doc)
                return -ENOMEM;
        snprintf(want, sizeof(want), "%zu", h->n);

        r = pg_exec(c, begin, e, sizeof(e));
        if (r == 0) {
                _cleanup_pgresult_ PGresult *res = NULL;
                const char *p[] = { lock_name, token };
                r = pg_query(c, fence_check_sql, 2, p, &res, e, sizeof(e));
        }
        if (r == 0) {
                _cleanup_pgresult_ PGresult *res = NULL;
                const char *p[] = { doc, token };
                r = pg_query(c, adopt_insert_sql, 2, p, &res, e, sizeof(e));
                if (r == 0 && strcmp(PQcmdTuples(res), want) != 0) {
                        snprintf(e, sizeof(e), "coord_schema_history is no longer empty (another runner took over)");
                        r = -ESTALE;
                }
        }
        if (r == 0)
                r = pg_exec(c, "COMMIT", e, sizeof(e));
        else {
                char e2[256];
                (void) pg_exec(c, "ROLLBACK", e2, sizeof(e2));
        }
        if (r < 0) {
                errbuf_printf(errbuf, errlen, "taking over " FLYWAY_TABLE ": %s", e);
                return r;
        }
        h->adopting = false;
        log_notice("Took over %zu rows of " FLYWAY_TABLE " into coord_schema_history (installed_by '"
                   FLYWAY_INSTALLED_BY_PREFIX "...'); Flyway's table is left as it was",
                   h->n);
        return 0;
}
