/* Redis connection strings (lib/redis_url.c): the parser, its error messages and
 * both maskers.  Properties, for a password of 3 characters or more:
 *   - redis_url_to_string_masked() does not depend on the password: changing it
 *     changes nothing, and it never shows it;
 *   - secret_mask_string() of an input that parses does not depend on what is
 *     written where the password goes (userinfo after ':', or a password=
 *     value): the input with those characters changed masks to the same text;
 *     and secret_foreach() reports exactly the password's span (lib/secret.h);
 *   - an error message does not depend on those characters either, and never
 *     shows them.
 * "Changed" keeps each character's class (digit 1-9, hex letter, other letter;
 * '0' and punctuation kept), so the parse takes the same path.  That comparison
 * cannot see a password that rotating leaves unchanged ("000", "!?!"): such a
 * password is looked for in secret_mask_string()'s output itself, but only
 * when it does not also occur in the input outside its own place (e.g. "6379"
 * as both password and port).  Error messages are not searched that way: their
 * fixed words ("password", "' (") would match short passwords. */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <strings.h>

#include "redis_url.h"
#include "secret.h"
#include "tests/fuzz/fuzz.h"

/* More than an input can hold: one "password=" element takes 10 bytes of INPUT_MAX. */
#define INPUT_MAX 4200
#define SPANS_MAX (INPUT_MAX / 10 + 1)
#define GENERIC_ERROR "malformed Redis connection string"

struct span {
        size_t b, e;
};

/* "scheme://" at the start of s: the position after it, or NULL (as the parser reads it). */
static const char *url_rest(const char *s) {
        const char *p = s;

        if (!isalpha((unsigned char) *p))
                return NULL;
        while (isalnum((unsigned char) *p) || *p == '+' || *p == '-' || *p == '.')
                p++;
        return strncmp(p, "://", 3) == 0 ? p + 3 : NULL;
}

/* URL form: the userinfo's password, after its first ':' (all of it without one). */
static size_t url_password_span(const char *s, const char *rest, struct span *v) {
        const char *at = NULL;

        if (strncasecmp(s, "unix://", 7) == 0) {
                for (const char *p = rest; rest[0] != '/' && (p = strstr(p, "@/")); p++)
                        at = p; /* unix://user:pass@/path: the last "@/" */
        } else
                at = strrchr(rest, '@');
        if (!at)
                return 0;
        const char *colon = memchr(rest, ':', (size_t) (at - rest));
        v->b = (size_t) ((colon ? colon + 1 : rest) - s);
        v->e = (size_t) (at - s);
        return v->e > v->b;
}

/* StackExchange form: each "password=" element's value, to the next ',' (maybe empty). */
static size_t se_password_spans(const char *s, struct span *v, size_t max) {
        size_t n = 0;

        for (const char *p = s; n < max;) {
                size_t len = strcspn(p, ",");
                const char *t = p + strspn(p, " \t");
                if (strncasecmp(t, "password", 8) == 0 && t[8 + strspn(t + 8, " \t")] == '=') {
                        const char *val = t + 8 + strspn(t + 8, " \t") + 1;
                        if (val <= p + len) /* empty too: the value may start with ',' */
                                v[n++] = (struct span) { (size_t) (val - s), (size_t) (p + len - s) };
                }
                if (!p[len])
                        break;
                p += len + 1;
        }
        return n;
}

static size_t password_spans(const char *s, struct span *v, size_t max) {
        const char *rest = url_rest(s);
        return rest ? url_password_span(s, rest, v) : se_password_spans(s, v, max);
}

static char rotate_char(char c) {
        static const char *const classes[] = { "123456789", "abcdef", "ghijklmnopqrstuvwxyz", "ABCDEF",
                                               "GHIJKLMNOPQRSTUVWXYZ" };
        for (size_t k = 0; k < sizeof classes / sizeof classes[0]; k++) {
                const char *p = c ? strchr(classes[k], c) : NULL;
                if (p)
                        return p[1] ? p[1] : classes[k][0];
        }
        return c;
}

static bool changes_when_rotated(const char *s) {
        for (; *s; s++)
                if (rotate_char(*s) != *s)
                        return true;
        return false;
}

/* A copy of s with the characters in the spans rotated within their class. */
static char *rotated(const char *s, const struct span *v, size_t n) {
        char *t = strdup(s);

        if (!t)
                abort();
        for (size_t k = 0; k < n; k++)
                for (size_t i = v[k].b; i < v[k].e; i++)
                        t[i] = rotate_char(t[i]);
        return t;
}

/* Whether secret occurs in s anywhere but inside the spans. */
static bool occurs_outside(const char *s, const char *secret, const struct span *v, size_t n) {
        size_t sl = strlen(secret);

        for (const char *p = s; (p = strstr(p, secret)); p++) {
                size_t b = (size_t) (p - s);
                bool inside = false;
                for (size_t k = 0; k < n && !inside; k++)
                        inside = b >= v[k].b && b + sl <= v[k].e;
                if (!inside)
                        return true;
        }
        return false;
}

/* Whether the plain check applies: long enough, not made of the mask, and only where it belongs. */
static bool checkable(const char *s, const char *secret, const struct span *v, size_t n) {
        return secret && strlen(secret) >= 3 && !strchr(secret, '*') && !occurs_outside(s, secret, v, n);
}

/* The spans, the last one (whose value the parser keeps) stretched over the ',' that a
 * StackExchange password may run over. */
static size_t spans_with_password(const char *s, const char *password, struct span *v) {
        size_t n = password_spans(s, v, SPANS_MAX);
        const char *val = n > 0 ? s + v[n - 1].b + strspn(s + v[n - 1].b, " \t") : NULL;

        if (password && val && strncmp(val, password, strlen(password)) == 0 &&
            (size_t) (val - s) + strlen(password) > v[n - 1].e)
                v[n - 1].e = (size_t) (val - s) + strlen(password);
        return n;
}

static void check_rendering(const char *s, struct redis_url *u) {
        char *masked = redis_url_to_string_masked(u), *other, *password = u->password;

        FUZZ_CHECK(masked, "'%s': no masked rendering", s);
        if (password) {
                u->password = (char *) "x";
                other = redis_url_to_string_masked(u);
                u->password = password;
                FUZZ_CHECK(other && strcmp(masked, other) == 0,
                           "'%s': the masked rendering depends on the password: '%s' vs '%s'", s, masked, other);
                free(other);
        }
        free(masked);
}

static void check_mask_string(const char *s, const char *password) {
        struct span v[SPANS_MAX];
        size_t n = spans_with_password(s, password, v);
        char *masked = secret_mask_string(s), *t = rotated(s, v, n), *other = secret_mask_string(t);

        FUZZ_CHECK(masked && other, "'%s': secret_mask_string() failed", s);
        FUZZ_CHECK(strcmp(masked, other) == 0, "'%s' masks to '%s' but '%s' (the password changed) to '%s'", s,
                   masked, t, other);
        /* The comparison above cannot see a password that rotating leaves as it is ("000", "!?!"). */
        if (checkable(s, password, v, n) && !changes_when_rotated(password))
                FUZZ_CHECK(!strstr(masked, password), "'%s' masks to '%s', which shows the password '%s'", s, masked,
                           password);
        free(masked);
        free(other);
        free(t);
}

/* What secret_foreach() reported. */
struct found {
        const char *p[SPANS_MAX];
        size_t len[SPANS_MAX], n;
};

static void add_found(const char *span, size_t len, void *userdata) {
        struct found *f = userdata;

        if (f->n < SPANS_MAX) {
                f->p[f->n] = span;
                f->len[f->n++] = len;
        }
}

/* secret.h: "A string that redis_url_parse() accepts yields exactly the parser's password
 * spans."  Checked where that is one span or none (one password element at most). */
static void check_secret_spans(const char *s, const char *password) {
        struct span v[SPANS_MAX];
        struct found f = {};
        size_t n = spans_with_password(s, password, v), wl;
        const char *want;

        if (n > 1 || (password && n == 0))
                return;
        secret_foreach(s, add_found, &f);
        FUZZ_CHECK(f.n == (password ? 1 : 0), "'%s': %zu secret spans for %s password", s, f.n, password ? "a" : "no");
        if (!password)
                return;
        want = s + v[0].b;
        wl = v[0].e - v[0].b;
        if (!url_rest(s)) {
                want += strspn(want, " \t"); /* the parser trims a password= value */
                wl = strlen(password);
        }
        FUZZ_CHECK(f.len[0] == wl && memcmp(f.p[0], want, wl) == 0, "'%s': secret span '%.*s', the password is '%.*s'",
                   s, (int) f.len[0], f.p[0], (int) wl, want);
}

/* The parser replaces a message that would show the password with a generic one: a
 * message is compared only when neither was replaced. */
static void check_error(const char *s, const char *err) {
        struct span v[SPANS_MAX];
        size_t n = password_spans(s, v, SPANS_MAX);
        char *t = rotated(s, v, n), other[512] = "";
        struct redis_url *u = NULL;
        int r = redis_url_parse(t, &u, other, sizeof other);

        FUZZ_CHECK(r < 0, "'%s' fails, but '%s' (the password changed) parses", s, t);
        if (strcmp(err, GENERIC_ERROR) != 0 && strcmp(other, GENERIC_ERROR) != 0)
                FUZZ_CHECK(strcmp(err, other) == 0, "'%s': error '%s', but with the password changed: '%s'", s, err,
                           other);
        free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct redis_url *u = NULL;
        char err[512] = "";
        char *s;

        if (size > INPUT_MAX)
                return 0;
        s = fuzz_string(data, size);
        if (redis_url_parse(s, &u, err, sizeof err) == 0) {
                check_rendering(s, u);
                check_mask_string(s, u->password);
                check_secret_spans(s, u->password);
                redis_url_free(u);
        } else {
                FUZZ_CHECK(!u, "'%s': ret set on failure", s);
                FUZZ_CHECK(err[0], "'%s': failure without a message", s);
                check_error(s, err);
                free(secret_mask_string(s)); /* best effort there: no property */
        }
        free(s);
        return 0;
}
