/* See advertise-render.h.
 *
 * The env format is read by systemd (EnvironmentFile=) and by .NET env-file
 * readers (DotNetEnv); it uses only what both read the same way:
 *   - a value of [A-Za-z0-9_./:@,+=%-] only is written bare;
 *   - any other value goes in double quotes with \ " $ ` escaped by a
 *     backslash (systemd unescapes exactly these four in double quotes;
 *     DotNetEnv these and more, and would expand an unescaped $NAME);
 *   - newline, tab, CR, VT and FF are written as they are, inside the quotes:
 *     systemd has no escape for them (in double quotes "\n" stays a backslash
 *     and an n, while DotNetEnv reads a newline), but both keep them raw in a
 *     quoted value, which may span lines.  The quotes are balanced, so a line
 *     such as EVIL=1 inside a value is never read as an assignment;
 *   - other control characters (and U+0080-U+009F) have no form both read
 *     (DotNetEnv refuses them raw, systemd has no escape): such a value is
 *     refused, naming the key (config_format json carries them). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "advertise-render.h"
#include "jsonutil.h"
#include "macro.h"
#include "secret.h"

#define RENDER_MAX_DEPTH 32
#define RENDER_KEY_MAX 1024

struct buf {
        char *data;
        size_t len, cap;
        bool oom;
};

static void buf_add(struct buf *b, const char *s, size_t n) {
        if (b->oom)
                return;
        if (b->len + n + 1 > b->cap) {
                size_t cap = MAX(b->cap * 2, b->len + n + 256);
                char *d = realloc(b->data, cap);
                if (!d) {
                        b->oom = true;
                        return;
                }
                b->data = d;
                b->cap = cap;
        }
        memcpy(b->data + b->len, s, n);
        b->len += n;
        b->data[b->len] = '\0';
}

static void buf_puts(struct buf *b, const char *s) {
        buf_add(b, s, strlen(s));
}

/* One env rendering: the output, the names written so far (folded to lower
 * case, as ASP.NET compares them, mapped to the name as first written). */
struct env {
        struct buf b;
        json_t *seen;
        char *errbuf;
        size_t errlen;
};

static bool key_char_ok(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
               c == '-';
}

static bool value_is_plain(const char *s) {
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                      strchr("_./:@,+=%-", *p)))
                        return false;
        return true;
}

/* Position (1-based) of the first character no env reader can carry, or 0. */
static size_t value_bad_char(const char *s) {
        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                if ((*p < 0x20 && !strchr("\t\n\r\v\f", *p)) || *p == 0x7f)
                        return (size_t) (p - (const unsigned char *) s) + 1;
                if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) /* U+0080-U+009F */
                        return (size_t) (p - (const unsigned char *) s) + 1;
        }
        return 0;
}

static void put_value(struct buf *b, const char *v) {
        if (value_is_plain(v)) {
                buf_puts(b, v);
                return;
        }
        buf_add(b, "\"", 1);
        for (const char *p = v; *p; p++) {
                if (strchr("\\\"$`", *p))
                        buf_add(b, "\\", 1);
                buf_add(b, p, 1);
        }
        buf_add(b, "\"", 1);
}

/* Record key as written; -EINVAL when another value already has its name. */
static int env_claim(struct env *e, const char *key) {
        _cleanup_free_ char *folded = strdup(key);
        json_t *prev;

        if (!folded)
                return -ENOMEM;
        for (char *c = folded; *c; c++)
                if (*c >= 'A' && *c <= 'Z')
                        *c = (char) (*c - 'A' + 'a');
        prev = json_object_get(e->seen, folded);
        if (prev) {
                snprintf(e->errbuf, e->errlen, "%s: two config keys render as this name (the other: %s); not writing",
                         key, json_string_value(prev));
                return -EINVAL;
        }
        return json_object_set_new(e->seen, folded, json_string(key)) < 0 ? -ENOMEM : 0;
}

/* One KEY=value line for a value that is no object or array. */
static int render_leaf(struct env *e, const char *key, json_t *v) {
        char num[64];
        int r;

        r = env_claim(e, key);
        if (r < 0)
                return r;
        buf_puts(&e->b, key);
        buf_add(&e->b, "=", 1);
        switch (json_typeof(v)) {
        case JSON_STRING: {
                const char *s = json_string_value(v);
                size_t bad = strlen(s) != json_string_length(v) ? strlen(s) + 1 : value_bad_char(s);
                if (bad > 0) {
                        snprintf(e->errbuf, e->errlen,
                                 "%s: character %zu of the value is a control character an env file cannot carry "
                                 "(use config_format json)", key, bad);
                        return -EINVAL;
                }
                put_value(&e->b, s);
                break;
        }
        case JSON_INTEGER:
                snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
                buf_puts(&e->b, num);
                break;
        case JSON_REAL:
                snprintf(num, sizeof num, "%.17g", json_real_value(v));
                buf_puts(&e->b, num);
                break;
        case JSON_TRUE:
                buf_puts(&e->b, "true");
                break;
        case JSON_FALSE:
                buf_puts(&e->b, "false");
                break;
        default: /* null */
                break;
        }
        buf_add(&e->b, "\n", 1);
        return 0;
}

static int render_env(struct env *e, char *key, size_t keylen, json_t *v, int depth);

/* key + "__" + name into key (which has RENDER_KEY_MAX + 32 bytes), then render child. */
static int render_child(struct env *e, char *key, size_t keylen, const char *name, json_t *child, int depth) {
        size_t nl = strlen(name), total = keylen + (keylen ? 2 : 0) + nl;
        int r;

        if (total >= RENDER_KEY_MAX) {
                snprintf(e->errbuf, e->errlen, "%s%s%.64s: key too long", key, keylen ? "__" : "", name);
                return -EINVAL;
        }
        if (keylen)
                memcpy(key + keylen, "__", 2);
        memcpy(key + total - nl, name, nl);
        key[total] = '\0';
        r = render_env(e, key, total, child, depth + 1);
        key[keylen] = '\0';
        return r;
}

static int render_object(struct env *e, char *key, size_t keylen, json_t *v, int depth) {
        const char *k;
        json_t *child;

        json_object_foreach(v, k, child) {
                if (!*k) {
                        snprintf(e->errbuf, e->errlen, "%s%s\"\": invalid key (empty)", key, keylen ? "__" : "");
                        return -EINVAL;
                }
                for (const char *c = k; *c; c++)
                        if (!key_char_ok(*c)) {
                                snprintf(e->errbuf, e->errlen,
                                         "%s%s%.64s: invalid character in key (allowed: A-Z a-z 0-9 _ . -)", key,
                                         keylen ? "__" : "", k);
                                return -EINVAL;
                        }
                int r = render_child(e, key, keylen, k, child, depth);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int render_env(struct env *e, char *key, size_t keylen, json_t *v, int depth) {
        if (depth > RENDER_MAX_DEPTH) {
                snprintf(e->errbuf, e->errlen, "%s: nested too deeply", key);
                return -EINVAL;
        }
        if (json_is_object(v))
                return render_object(e, key, keylen, v, depth);
        if (json_is_array(v)) {
                size_t i;
                json_t *child;
                json_array_foreach(v, i, child) {
                        char idx[24];
                        snprintf(idx, sizeof idx, "%zu", i);
                        int r = render_child(e, key, keylen, idx, child, depth);
                        if (r < 0)
                                return r;
                }
                return 0;
        }
        if (keylen == 0) {
                snprintf(e->errbuf, e->errlen, "config: must be a JSON object");
                return -EINVAL;
        }
        return render_leaf(e, key, v);
}

static int render_env_document(json_t *config, struct buf *b, char *errbuf, size_t errlen) {
        _cleanup_json_ json_t *seen = json_object();
        struct env e = { .seen = seen, .errbuf = errbuf, .errlen = errlen };
        char key[RENDER_KEY_MAX + 32] = "";
        int r;

        if (!seen)
                return -ENOMEM;
        r = render_env(&e, key, 0, config, 0);
        if (r < 0) {
                free(e.b.data);
                return r;
        }
        if (!e.b.data)
                buf_add(&e.b, "", 0);
        *b = e.b;
        return 0;
}

int advertise_render(json_t *config, const char *format, char **ret, size_t *ret_len, char *errbuf, size_t errlen) {
        struct buf b = {};

        if (!json_is_object(config)) {
                snprintf(errbuf, errlen, "config: must be a JSON object");
                return -EINVAL;
        }
        if (strcmp(format, "json") == 0) {
                char *s = json_dumps(config, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
                if (!s)
                        return -ENOMEM;
                buf_puts(&b, s);
                buf_add(&b, "\n", 1);
                free(s);
        } else if (strcmp(format, "env") == 0) {
                int r = render_env_document(config, &b, errbuf, errlen);
                if (r < 0)
                        return r;
        } else {
                snprintf(errbuf, errlen, "config_format: unknown format '%s'", format);
                return -EINVAL;
        }
        if (b.oom) {
                free(b.data);
                return -ENOMEM;
        }
        *ret = b.data;
        *ret_len = b.len;
        return 0;
}

struct walk_fn {
        void (*fn)(const char *, void *);
        void *userdata;
};

/* A secret span inside a string, as a string of its own. */
static void emit_span(const char *span, size_t len, void *userdata) {
        struct walk_fn *w = userdata;
        _cleanup_free_ char *c = strndup(span, len);

        if (c)
                w->fn(c, w->userdata);
}

static void walk(json_t *v, bool secret, int depth, struct walk_fn *w) {
        if (depth > RENDER_MAX_DEPTH)
                return;
        if (json_is_object(v)) {
                const char *k;
                json_t *child;
                json_object_foreach(v, k, child)
                        walk(child, secret || secret_key_is_secret(k), depth + 1, w);
        } else if (json_is_array(v)) {
                size_t i;
                json_t *child;
                json_array_foreach(v, i, child)
                        walk(child, secret, depth + 1, w);
        } else if (json_is_string(v)) {
                if (secret)
                        w->fn(json_string_value(v), w->userdata);
                secret_foreach(json_string_value(v), emit_span, w);
        } else if (secret && json_is_integer(v)) {
                char num[32];
                snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
                w->fn(num, w->userdata);
        }
}

void advertise_walk_secrets(json_t *config, void (*fn)(const char *secret, void *userdata), void *userdata) {
        walk(config, false, 0, &(struct walk_fn){ fn, userdata });
}
