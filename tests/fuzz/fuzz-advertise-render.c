/* The advertised-config renderer (agent/advertise-render.c).  Input: a JSON
 * document.  Properties, as agent/advertise-render.h documents the formats:
 *   - env: the output read back by an env-file reader (below: KEY=bare value,
 *     or KEY="..." with \ " $ ` escaped and newlines kept inside the quotes)
 *     gives exactly the document's leaves, in order, under their flattened
 *     names (joined by "__", array elements by index), with no two names equal
 *     ignoring case;
 *   - json: the output parses back to an equal document;
 *   - advertise_walk_secrets() reports only strings. */
#include <errno.h>
#include <stdbool.h>
#include <strings.h>

#include "agent/advertise-render.h"
#include "tests/fuzz/fuzz.h"

#define KEY_MAX 4096

struct pairs {
        char **v; /* key, value, key, value, ... */
        size_t n, cap;
};

static void pairs_add(struct pairs *p, char *key, char *value) {
        if (p->n + 2 > p->cap) {
                p->cap = p->cap ? p->cap * 2 : 16;
                p->v = realloc(p->v, p->cap * sizeof *p->v);
                if (!p->v)
                        abort();
        }
        p->v[p->n++] = key;
        p->v[p->n++] = value;
}

static void pairs_done(struct pairs *p) {
        for (size_t i = 0; i < p->n; i++)
                free(p->v[i]);
        free(p->v);
}

/* The value of a leaf as the env file should carry it. */
static char *leaf_text(json_t *v) {
        char buf[64] = "";

        if (json_is_string(v))
                return strdup(json_string_value(v));
        if (json_is_integer(v))
                snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        else if (json_is_real(v))
                snprintf(buf, sizeof buf, "%.17g", json_real_value(v));
        else if (json_is_boolean(v))
                snprintf(buf, sizeof buf, "%s", json_is_true(v) ? "true" : "false");
        return strdup(buf);
}

/* The document's leaves under their flattened names (the reference). */
static void flatten(json_t *v, char *key, size_t keylen, struct pairs *out) {
        const char *k;
        json_t *child;
        size_t i;

        if (!json_is_object(v) && !json_is_array(v)) {
                pairs_add(out, strndup(key, keylen), leaf_text(v));
                return;
        }
        json_object_foreach(v, k, child) {
                int n = snprintf(key + keylen, KEY_MAX - keylen, "%s%s", keylen ? "__" : "", k);
                flatten(child, key, keylen + (size_t) n, out);
        }
        json_array_foreach(v, i, child) {
                int n = snprintf(key + keylen, KEY_MAX - keylen, "%s%zu", keylen ? "__" : "", i);
                flatten(child, key, keylen + (size_t) n, out);
        }
}

static bool plain_char(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               (c && strchr("_./:@,+=%-", c));
}

/* A "..." value at *p: unescaped into a new string, *p past the closing quote; NULL if malformed. */
static char *read_quoted(const char **p, const char *end) {
        char *out = malloc((size_t) (end - *p) + 1), *o = out;
        const char *s = *p + 1;

        if (!out)
                abort();
        for (; s < end && *s != '"'; s++) {
                if (*s == '\\') {
                        if (s + 1 >= end || !strchr("\\\"$`", s[1]))
                                break; /* the renderer escapes exactly these four */
                        s++;
                } else if (strchr("\"$`", *s))
                        break;
                *o++ = *s;
        }
        *o = '\0';
        if (s >= end || *s != '"') {
                free(out);
                return NULL;
        }
        *p = s + 1;
        return out;
}

/* Read env text back: one KEY=value per line.  false when it is not what the format allows. */
static bool env_read(const char *s, size_t len, struct pairs *out) {
        const char *p = s, *end = s + len;

        while (p < end) {
                const char *eq = memchr(p, '=', (size_t) (end - p)), *v;
                char *key, *value;
                if (!eq || eq == p || memchr(p, '\n', (size_t) (eq - p)))
                        return false;
                key = strndup(p, (size_t) (eq - p));
                v = eq + 1;
                if (*v == '"')
                        value = read_quoted(&v, end);
                else {
                        const char *b = v;
                        while (v < end && plain_char(*v))
                                v++;
                        value = strndup(b, (size_t) (v - b));
                }
                pairs_add(out, key, value);
                if (!value || v >= end || *v != '\n')
                        return false;
                p = v + 1;
        }
        return true;
}

static void check_env(json_t *doc, const char *text, size_t len) {
        struct pairs want = {}, got = {};
        char key[KEY_MAX];

        FUZZ_CHECK(env_read(text, len, &got), "the env output does not read back:\n%s", text);
        flatten(doc, key, 0, &want);
        FUZZ_CHECK(got.n == want.n, "%zu values read back, %zu in the document:\n%s", got.n / 2, want.n / 2, text);
        for (size_t i = 0; i < got.n; i++)
                FUZZ_CHECK(strcmp(got.v[i], want.v[i]) == 0, "read back '%s', expected '%s':\n%s", got.v[i],
                           want.v[i], text);
        for (size_t i = 0; i < got.n; i += 2)
                for (size_t j = i + 2; j < got.n; j += 2)
                        FUZZ_CHECK(strcasecmp(got.v[i], got.v[j]) != 0, "'%s' and '%s' are one name:\n%s", got.v[i],
                                   got.v[j], text);
        pairs_done(&want);
        pairs_done(&got);
}

static void check_json(json_t *doc, const char *text) {
        json_t *back = json_loads(text, 0, NULL);

        FUZZ_CHECK(back && json_equal(doc, back), "the json output does not read back equal:\n%s", text);
        json_decref(back);
}

static void on_secret(const char *secret, void *userdata) {
        FUZZ_CHECK(secret, "NULL secret");
        (void) userdata;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        json_t *doc = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES, NULL);
        static const char *const formats[] = { "env", "json" };

        if (!doc)
                return 0;
        for (size_t f = 0; f < 2; f++) {
                char *out = NULL, err[512] = "";
                size_t len = 0;
                if (advertise_render(doc, formats[f], &out, &len, err, sizeof err) < 0) {
                        FUZZ_CHECK(err[0] && !out, "%s: failure without a message", formats[f]);
                        continue;
                }
                FUZZ_CHECK(out && strlen(out) == len, "%s: length %zu, string %zu", formats[f], len, strlen(out));
                if (f == 0)
                        check_env(doc, out, len);
                else
                        check_json(doc, out);
                free(out);
        }
        advertise_walk_secrets(doc, on_secret, NULL);
        json_decref(doc);
        return 0;
}
