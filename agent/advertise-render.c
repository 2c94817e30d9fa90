/* See advertise-render.h. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "advertise-render.h"
#include "macro.h"

#define RENDER_MAX_DEPTH 32

static bool isalnum_ascii(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
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

static bool key_char_ok(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
               c == '-';
}

static bool value_is_plain(const char *s) {
        if (!*s)
                return true;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                      strchr("_./:@,+=%-", *p)))
                        return false;
        return true;
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

static int render_env(struct buf *b, char *key, size_t keylen, json_t *v, int depth, char *errbuf, size_t errlen) {
        char num[64];

        if (depth > RENDER_MAX_DEPTH) {
                snprintf(errbuf, errlen, "%s: nested too deeply", key);
                return -EINVAL;
        }
        switch (json_typeof(v)) {
        case JSON_OBJECT: {
                const char *k;
                json_t *child;

                json_object_foreach(v, k, child) {
                        size_t kl = strlen(k), nl = keylen + (keylen ? 2 : 0) + kl;
                        int r;

                        if (kl == 0 || nl >= RENDER_KEY_MAX) {
                                snprintf(errbuf, errlen, "%s%s%s: invalid key (empty or too long)", key,
                                         keylen ? "__" : "", kl ? "..." : "\"\"");
                                return -EINVAL;
                        }
                        for (size_t i = 0; i < kl; i++)
                                if (!key_char_ok(k[i])) {
                                        snprintf(errbuf, errlen,
                                                 "%s%s%.64s: invalid character in key (allowed: A-Z a-z 0-9 _ . -)",
                                                 key, keylen ? "__" : "", k);
                                        return -EINVAL;
                                }
                        if (keylen)
                                memcpy(key + keylen, "__", 2);
                        memcpy(key + nl - kl, k, kl);
                        key[nl] = '\0';
                        r = render_env(b, key, nl, child, depth + 1, errbuf, errlen);
                        key[keylen] = '\0';
                        if (r < 0)
                                return r;
                }
                return 0;
        }
        case JSON_ARRAY: {
                size_t i;
                json_t *child;

                json_array_foreach(v, i, child) {
                        int n = snprintf(key + keylen, RENDER_KEY_MAX - keylen, "%s%zu", keylen ? "__" : "", i);
                        int r;

                        if (n < 0 || keylen + (size_t) n >= RENDER_KEY_MAX) {
                                key[keylen] = '\0';
                                snprintf(errbuf, errlen, "%s: key too long", key);
                                return -EINVAL;
                        }
                        r = render_env(b, key, keylen + (size_t) n, child, depth + 1, errbuf, errlen);
                        key[keylen] = '\0';
                        if (r < 0)
                                return r;
                }
                return 0;
        }
        default:
                break;
        }

        if (keylen == 0) {
                snprintf(errbuf, errlen, "config: must be a JSON object");
                return -EINVAL;
        }
        buf_add(b, key, keylen);
        buf_add(b, "=", 1);
        switch (json_typeof(v)) {
        case JSON_STRING:
                if (strlen(json_string_value(v)) != json_string_length(v)) {
                        snprintf(errbuf, errlen, "%s: value contains a NUL byte", key);
                        return -EINVAL;
                }
                put_value(b, json_string_value(v));
                break;
        case JSON_INTEGER:
                snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
                buf_puts(b, num);
                break;
        case JSON_REAL:
                snprintf(num, sizeof num, "%.17g", json_real_value(v));
                buf_puts(b, num);
                break;
        case JSON_TRUE:
                buf_puts(b, "true");
                break;
        case JSON_FALSE:
                buf_puts(b, "false");
                break;
        default: /* null */
                break;
        }
        buf_add(b, "\n", 1);
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
                char key[RENDER_KEY_MAX + 32] = "";
                int r = render_env(&b, key, 0, config, 0, errbuf, errlen);
                if (r < 0) {
                        free(b.data);
                        return r;
                }
                if (!b.data)
                        buf_add(&b, "", 0);
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

static bool key_is_secret(const char *k) {
        static const char *const words[] = { "password", "secret", "token", "apikey", "api_key", "pwd" };
        for (size_t i = 0; i < ELEMENTSOF(words); i++) {
                size_t wl = strlen(words[i]);
                for (const char *p = k; *p; p++)
                        if (strncasecmp(p, words[i], wl) == 0)
                                return true;
        }
        return false;
}

static void emit_n(const char *s, size_t n, void (*fn)(const char *, void *), void *ud) {
        char *c;

        if (n == 0)
                return;
        c = strndup(s, n);
        if (c)
                fn(c, ud);
        free(c);
}

/* Passwords embedded in connection strings. */
static void scan_string(const char *s, void (*fn)(const char *, void *), void *ud) {
        static const char *const opts[] = { "password=", "pwd=" };
        const char *p, *at, *colon;

        for (size_t i = 0; i < ELEMENTSOF(opts); i++) {
                size_t ol = strlen(opts[i]);
                for (p = s; *p; p++) {
                        if (strncasecmp(p, opts[i], ol) != 0 || (p != s && (isalnum_ascii(p[-1]))))
                                continue;
                        p += ol;
                        emit_n(p, strcspn(p, ",;"), fn, ud);
                }
        }
        p = strstr(s, "://");
        if (p) {
                p += 3;
                at = p + strcspn(p, "@/");
                if (*at == '@') {
                        colon = memchr(p, ':', (size_t) (at - p));
                        if (colon)
                                emit_n(colon + 1, (size_t) (at - colon - 1), fn, ud);
                }
        }
}

static void walk(json_t *v, bool secret, int depth, void (*fn)(const char *, void *), void *ud) {
        if (depth > RENDER_MAX_DEPTH)
                return;
        if (json_is_object(v)) {
                const char *k;
                json_t *child;
                json_object_foreach(v, k, child)
                        walk(child, secret || key_is_secret(k), depth + 1, fn, ud);
        } else if (json_is_array(v)) {
                size_t i;
                json_t *child;
                json_array_foreach(v, i, child)
                        walk(child, secret, depth + 1, fn, ud);
        } else if (json_is_string(v)) {
                if (secret)
                        fn(json_string_value(v), ud);
                scan_string(json_string_value(v), fn, ud);
        } else if (secret && json_is_integer(v)) {
                char num[32];
                snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
                fn(num, ud);
        }
}

void advertise_walk_secrets(json_t *config, void (*fn)(const char *secret, void *userdata), void *userdata) {
        walk(config, false, 0, fn, userdata);
}
