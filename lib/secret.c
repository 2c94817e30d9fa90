/* See secret.h.
 *
 * Key names.  Only the last segment of a key counts, so "PasswordPolicy",
 * "TokenEndpoint" and "SecretName" are not secret while "DbPassword" and
 * "SigningKey" are.  The price of "ends in" is a few false positives that
 * merely hide a value from display: "Monkey", "PartitionKey", "Bypass",
 * "Compass".  "ConnectionString" is deliberately not in the list: connection
 * strings are masked by their password parts (below), so the API still shows
 * which host a service uses.
 *
 * Strings.  A string that redis_url_parse() accepts is masked exactly where the
 * parser finds its password, so the masker and the parser never disagree
 * about where a password ends.  Of any other string, what the parser would
 * still read as a password is masked first (redis_url_foreach_password():
 * of a string starting with scheme://, the userinfo up to its LAST '@', so
 * "https://example.com/a@b" is masked up to the '@'; of the others, each
 * element "password=..." up to the next ',' that starts an option or
 * host:port, so a string starting "Password=x;Host=h" is masked to its end).
 * The rest is scanned left to right, at each position trying, in this order:
 *   URL   scheme://userinfo@host inside the string: the userinfo ends at the
 *         last '@' before the first '/', or, when the part before that '/'
 *         reads "user:word" (not "host:port"), at the last '@' before '?' or
 *         '#' ("pg://app:pw/x@db"); redis://, rediss:// and unix:// use the
 *         last '@' of the word, as their parser does.  The password is what
 *         follows the first ':', or the whole userinfo without one.  Query
 *         parameters are key=value pairs below.
 *   KEY   key=value or key:value where key is secret (secret_key_is_secret()).
 *         A value in "double" or 'single' quotes runs to the closing quote (a
 *         doubled quote or a backslash escapes one); {braces} likewise (ODBC).
 *         Otherwise it ends at ';' or a line end; in a query (after '?' or '&')
 *         also at '&', '#' or a space; after "key:" also at ',' or '}'; and at a
 *         ',' that starts "name=" or host:port, or a space that starts "name=".
 *   DSN   user:password@host (no scheme, no '=' before the '@'): the password
 *         runs from the first ':' to the last '@' of the word.
 * When in doubt a span runs longer: masking too much hides a host name, too
 * little shows a password. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "macro.h"
#include "redis_url.h"
#include "secret.h"

/* "apikey", "privatekey", "signingkey" and "accesskey" end in "key". */
static const char *const secret_words[] = {
        "password", "passwd", "pass", "pwd", "passphrase", "secret", "token", "key", "credential", "cred",
};

static bool is_key_separator(char c) {
        return c == '.' || c == ':' || c == '-' || c == '_' || c == ' ';
}

static bool ends_with_ci(const char *s, size_t n, const char *word) {
        size_t wl = strlen(word);
        return wl <= n && strncasecmp(s + n - wl, word, wl) == 0;
}

/* Optimal string alignment distance between s[0..n) and "password", capped:
 * true when it is at most 1 (one letter missing, extra, wrong or swapped). */
static bool is_password_typo(const char *s, size_t n) {
        static const char w[] = "password";
        const size_t wl = sizeof w - 1;
        size_t d[12][10];

        if (n + 1 < wl || n > wl + 1)
                return false;
        for (size_t i = 0; i <= n; i++)
                for (size_t j = 0; j <= wl; j++) {
                        if (i == 0 || j == 0) {
                                d[i][j] = i + j;
                                continue;
                        }
                        size_t cost = tolower((unsigned char) s[i - 1]) != w[j - 1];
                        d[i][j] = MIN(MIN(d[i - 1][j] + 1, d[i][j - 1] + 1), d[i - 1][j - 1] + cost);
                        if (i > 1 && j > 1 && tolower((unsigned char) s[i - 1]) == w[j - 2] &&
                            tolower((unsigned char) s[i - 2]) == w[j - 1])
                                d[i][j] = MIN(d[i][j], d[i - 2][j - 2] + 1);
                }
        return d[n][wl] <= 1;
}

static bool segment_is_secret(const char *seg, size_t n) {
        for (size_t w = 0; w < ELEMENTSOF(secret_words); w++)
                if (ends_with_ci(seg, n, secret_words[w]) ||
                    (n > 0 && tolower((unsigned char) seg[n - 1]) == 's' && ends_with_ci(seg, n - 1, secret_words[w])))
                        return true;
        return is_password_typo(seg, n);
}

/* secret_key_is_secret() on k[0..n). */
static bool key_is_secret_n(const char *k, size_t n) {
        size_t start;

        while (n > 0 && is_key_separator(k[n - 1]))
                n--;
        for (start = n; start > 0 && !is_key_separator(k[start - 1]); start--)
                ;
        return n > start && segment_is_secret(k + start, n - start);
}

bool secret_key_is_secret(const char *key) {
        return key && key_is_secret_n(key, strlen(key));
}

struct scan {
        const char *s;
        size_t n;
        secret_span_fn fn;
        void *userdata;
};

static void emit(const struct scan *sc, size_t a, size_t b) {
        if (b > a)
                sc->fn(sc->s + a, b - a, sc->userdata);
}

/* c is one of set (never the terminating NUL). */
static bool in_set(char c, const char *set) {
        return c != '\0' && strchr(set, c);
}

/* Position of the first of chars in s[a..b), or b. */
static size_t find_any(const char *s, size_t a, size_t b, const char *chars) {
        while (a < b && !in_set(s[a], chars))
                a++;
        return a;
}

/* Position of the last c in s[a..b), or SIZE_MAX. */
static size_t find_last(const char *s, size_t a, size_t b, char c) {
        while (b > a)
                if (s[--b] == c)
                        return b;
        return SIZE_MAX;
}

static bool is_ident_char(char c) {
        return isalnum((unsigned char) c) || c == '_' || c == '.' || c == '-';
}

/* Does p start "name=" (spaces allowed before and around, "--name=" too)? */
static bool starts_assignment(const char *p) {
        while (*p == ' ' || *p == '\t')
                p++;
        p += strspn(p, "-");
        if (!isalpha((unsigned char) *p) && *p != '_')
                return false;
        while (is_ident_char(*p))
                p++;
        while (*p == ' ')
                p++;
        return *p == '=';
}

/* Does p start a "host:port" or "[v6]:port" list element? */
static bool starts_hostport(const char *p) {
        size_t e = strcspn(p, ",");
        size_t colon = find_last(p, 0, e, ':');

        if (colon == SIZE_MAX || colon == 0 || colon + 1 == e)
                return false;
        for (size_t i = colon + 1; i < e; i++)
                if (!isdigit((unsigned char) p[i]))
                        return false;
        for (size_t i = 0; i < colon; i++)
                if (!is_ident_char(p[i]) && !in_set(p[i], "[]:% "))
                        return false;
        return true;
}

/* End of a value quoted by s[v] (close is the closing character): the
 * position of the closing one, or n when it never closes. */
static size_t quoted_end(const struct scan *sc, size_t v, char close, bool backslash) {
        for (size_t p = v + 1; p < sc->n; p++) {
                if (backslash && sc->s[p] == '\\')
                        p++;
                else if (sc->s[p] == close && p + 1 < sc->n && sc->s[p + 1] == close)
                        p++; /* doubled: an escaped quote (ADO.NET, ODBC) */
                else if (sc->s[p] == close)
                        return p;
        }
        return sc->n;
}

/* End of an unquoted value starting at v; query is true after '?' or '&'. */
static size_t unquoted_end(const struct scan *sc, size_t v, bool query, char sep) {
        const char *s = sc->s;
        size_t p;

        for (p = v; p < sc->n; p++) {
                char c = s[p];
                if (c == ';' || c == '\n' || c == '\r')
                        break;
                if (query && (c == '&' || c == '#' || c == ' ' || c == '\t'))
                        break;
                if (sep == ':' && (c == ',' || c == '}'))
                        break;
                if (c == ',' && (starts_assignment(s + p + 1) || starts_hostport(s + p + 1)))
                        break;
                if ((c == ' ' || c == '\t') && starts_assignment(s + p + 1))
                        break;
        }
        while (p > v && (s[p - 1] == ' ' || s[p - 1] == '\t'))
                p--;
        return p;
}

/* Mask the value at v of a secret key; returns where scanning goes on. */
static size_t mask_value(const struct scan *sc, size_t v, bool query, char sep) {
        char c = v < sc->n ? sc->s[v] : '\0';
        size_t e;

        if (c == '"' || c == '\'' || (c == '{' && sep == '=')) {
                e = quoted_end(sc, v, c == '{' ? '}' : c, c != '{');
                emit(sc, v + 1, e);
                return MIN(e + 1, sc->n);
        }
        e = unquoted_end(sc, v, query, sep);
        emit(sc, v, e);
        return MAX(e, v + 1);
}

/* End of the key starting at i: identifier characters and inner spaces, and
 * "Jwt:Key" when a ':' is followed by more key and then '='. */
static size_t key_end(const char *s, size_t i) {
        size_t e = i;

        for (;;) {
                while (is_ident_char(s[e]) || (s[e] == ' ' && is_ident_char(s[e + 1])))
                        e++;
                if (s[e] != ':' || !(isalpha((unsigned char) s[e + 1]) || s[e + 1] == '_') ||
                    !starts_assignment(s + e + 1))
                        return e;
                e++;
        }
}

/* KEY rule at i (see the top of this file); 0 when it does not apply. */
static size_t scan_key(const struct scan *sc, size_t i) {
        const char *s = sc->s;
        size_t e, v, prev = i;
        char sep;

        if (!(isalpha((unsigned char) s[i]) || s[i] == '_') || (i > 0 && isalnum((unsigned char) s[i - 1])))
                return 0;
        e = key_end(s, i);
        v = e;
        if (i > 0 && (s[i - 1] == '"' || s[i - 1] == '\'') && s[v] == s[i - 1])
                v++; /* "key": */
        while (s[v] == ' ' || s[v] == '\t')
                v++;
        sep = s[v];
        if ((sep != '=' && sep != ':') || (sep == ':' && s[v + 1] == '/' && s[v + 2] == '/'))
                return 0;
        if (!key_is_secret_n(s + i, e - i))
                return 0;
        for (v++; s[v] == ' ' || s[v] == '\t'; v++)
                ;
        while (prev > 0 && (s[prev - 1] == ' ' || s[prev - 1] == '\t'))
                prev--;
        return mask_value(sc, v, prev > 0 && (s[prev - 1] == '?' || s[prev - 1] == '&'), sep);
}

static bool is_redis_scheme(const char *s, size_t len) {
        return (len == 5 && strncasecmp(s, "redis", 5) == 0) || (len == 6 && strncasecmp(s, "rediss", 6) == 0) ||
               (len == 4 && strncasecmp(s, "unix", 4) == 0);
}

/* Does s[a..slash) read "user:word" rather than "host:port"? */
static bool reads_as_userinfo(const char *s, size_t a, size_t slash) {
        size_t colon = find_any(s, a, slash, ":");

        if (colon + 1 >= slash)
                return false;
        for (size_t i = colon + 1; i < slash; i++)
                if (!isdigit((unsigned char) s[i]))
                        return true;
        return false;
}

/* Where the userinfo of the URL whose authority starts at a ends (its '@'),
 * or SIZE_MAX when it has none. */
static size_t url_userinfo_end(const struct scan *sc, size_t a, bool redis) {
        const char *s = sc->s;
        size_t end = find_any(s, a, sc->n, " \t\r\n\"'<>;`");
        size_t q = find_any(s, a, end, "?#");
        size_t slash = find_any(s, a, q, "/");
        size_t at;

        if (redis)
                return s[a] == '/' ? SIZE_MAX : find_last(s, a, end, '@');
        at = find_last(s, a, slash, '@');
        if (at == SIZE_MAX && slash < q && reads_as_userinfo(s, a, slash))
                at = find_last(s, slash, q, '@');
        return at;
}

/* URL rule at i; 0 when no "scheme://" starts at i. */
static size_t scan_url(const struct scan *sc, size_t i) {
        const char *s = sc->s;
        size_t p = i, a, at, colon;

        if (!isalpha((unsigned char) s[i]) || (i > 0 && (isalnum((unsigned char) s[i - 1]) || in_set(s[i - 1], "+.-"))))
                return 0;
        while (isalnum((unsigned char) s[p]) || in_set(s[p], "+.-"))
                p++;
        if (strncmp(s + p, "://", 3) != 0)
                return 0;
        a = p + 3;
        at = url_userinfo_end(sc, a, is_redis_scheme(s + i, p - i));
        if (at == SIZE_MAX)
                return a;
        colon = find_any(s, a, at, ":");
        emit(sc, colon < at ? colon + 1 : a, at);
        return at + 1;
}

/* DSN rule at i: user:password@host as one word. */
static size_t scan_dsn(const struct scan *sc, size_t i) {
        const char *s = sc->s;
        size_t end, at, colon;

        if (i > 0 && !in_set(s[i - 1], " \t\r\n\"'=;([{<"))
                return 0;
        end = find_any(s, i, sc->n, " \t\r\n\"'<>;`?");
        at = find_last(s, i, end, '@');
        if (at == SIZE_MAX)
                return 0;
        colon = find_any(s, i, at, ":");
        if (colon == at || find_any(s, i, at, "=") < at || memmem(s + i, at - i, "://", 3))
                return 0;
        emit(sc, colon + 1, at);
        return at + 1;
}

/* Scan s[from..to) by the generic rules. */
static void scan_generic(const struct scan *whole, size_t from, size_t to) {
        struct scan sc = *whole;
        size_t i = from;

        sc.n = to;
        while (i < to) {
                size_t next = scan_url(&sc, i);
                if (next == 0)
                        next = scan_key(&sc, i);
                if (next == 0)
                        next = scan_dsn(&sc, i);
                i = next > i ? next : i + 1;
        }
}

struct gaps {
        struct scan sc;
        size_t done; /* s is scanned up to here */
};

/* A span the Redis parser reads as a password: scan the gap before it, then emit it. */
static void parser_span(const char *span, size_t len, void *userdata) {
        struct gaps *g = userdata;
        size_t a = (size_t) (span - g->sc.s);

        scan_generic(&g->sc, g->done, a);
        emit(&g->sc, a, a + len);
        g->done = a + len;
}

void secret_foreach(const char *s, secret_span_fn fn, void *userdata) {
        struct redis_url *u = NULL;
        struct gaps g = { .sc = { .s = s, .fn = fn, .userdata = userdata } };

        if (!s)
                return;
        if (redis_url_parse(s, &u, NULL, 0) == 0) {
                redis_url_free(u);
                redis_url_foreach_password(s, fn, userdata);
                return;
        }
        /* Rejected: what the parser would still read as a password, and the
         * generic rules around it. */
        g.sc.n = strlen(s);
        redis_url_foreach_password(s, parser_span, &g);
        scan_generic(&g.sc, g.done, g.sc.n);
}

struct mask_state {
        FILE *f;
        const char *at; /* the input is copied up to here */
};

static void mask_span(const char *span, size_t len, void *userdata) {
        struct mask_state *m = userdata;

        fwrite(m->at, 1, (size_t) (span - m->at), m->f);
        fputs(SECRET_MASK, m->f);
        m->at = span + len;
}

char *secret_mask_string(const char *s) {
        char *buf = NULL;
        size_t size = 0;
        struct mask_state m = { .at = s };

        if (!s)
                return NULL;
        m.f = open_memstream(&buf, &size);
        if (!m.f)
                return NULL;
        secret_foreach(s, mask_span, &m);
        fputs(m.at, m.f);
        if (fclose(m.f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}
