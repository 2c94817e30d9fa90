/* Redis connection strings: see redis_url.h.
 *
 * Two forms are accepted and parsed into one struct redis_url:
 *
 *   redis://[user[:password]@]host[:port][/db]     rediss:// is the same with ssl
 *   unix://[user[:password]@]/path/to/socket[?db=N]
 *     The userinfo ends at the LAST '@' of the string (so a raw '@', ':', ',', '/'
 *     or '=' in the password works), the user ends at the first ':' and both are
 *     percent-decoded (%40 is '@', %2C is ','). Userinfo without ':' is a password
 *     (as in redis-cli: "redis://secret@host").
 *
 *   StackExchange.Redis: comma-separated endpoints (host, host:port, [v6]:port)
 *     and options key=value, option names case-insensitive: password, user, ssl,
 *     sslHost, defaultDatabase, serviceName, connectTimeout, abortConnect.
 *     StackExchange.Redis itself cannot express a ',' in a password.  Here the
 *     password value runs to the next ',' that starts a known option ("key=")
 *     or an endpoint with an explicit port ("host:port", "[v6]:port"), or to
 *     the end.  So "password=a,b=c" is the password "a,b=c", while
 *     "password=x,ssl=true" and "password=x,h2:6379" end at the ','.  A password
 *     containing ",<option>=" or ",host:port" cannot be written in this form: use
 *     the redis:// form with percent-encoding.
 *
 * Ports default to 6379, or 26379 when serviceName is set (the endpoints are then
 * Sentinels).
 *
 * Error messages never quote text that could be a password: not the userinfo,
 * not a password= value, not an option value (after "password=a" the text
 * ",ssl=b" may be the rest of a password), not a host part that failed to parse
 * (a mistyped "user:PW@host" lands there).  They name the part and its role
 * instead; what they do quote is a validated host name, a port of digits or a
 * known option name.  On top of that, redis_url_parse() replaces any message
 * that still shares six characters with a possible password by a generic one. */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "macro.h"
#include "parse-util.h"
#include "redis_url.h"
#include "strutil.h"

#define HOST_MAX 253
#define CONNECT_TIMEOUT_DEFAULT_MS 5000
#define CREDENTIALS_HINT "put credentials in redis://user:password@host:port or host:port,user=NAME,password=..."

enum se_option {
        SE_OPT_PASSWORD,
        SE_OPT_USER,
        SE_OPT_SSL,
        SE_OPT_SSL_HOST,
        SE_OPT_DEFAULT_DATABASE,
        SE_OPT_SERVICE_NAME,
        SE_OPT_CONNECT_TIMEOUT,
        SE_OPT_ABORT_CONNECT,
        _SE_OPT_MAX,
        _SE_OPT_INVALID = -EINVAL,
};

static const char *const se_option_table[_SE_OPT_MAX] = {
        [SE_OPT_PASSWORD] = "password",
        [SE_OPT_USER] = "user",
        [SE_OPT_SSL] = "ssl",
        [SE_OPT_SSL_HOST] = "sslHost",
        [SE_OPT_DEFAULT_DATABASE] = "defaultDatabase",
        [SE_OPT_SERVICE_NAME] = "serviceName",
        [SE_OPT_CONNECT_TIMEOUT] = "connectTimeout",
        [SE_OPT_ABORT_CONNECT] = "abortConnect",
};

#define SE_OPTIONS_KNOWN "password, user, ssl, sslHost, defaultDatabase, serviceName, connectTimeout, abortConnect"

_printf_(3, 4) static int fail(char *errbuf, size_t errlen, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        errbuf_vprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

static void free_secret(char **p) {
        if (*p) {
                explicit_bzero(*p, strlen(*p));
                *p = mfree(*p);
        }
}

struct redis_url *redis_url_free(struct redis_url *u) {
        if (!u)
                return NULL;
        for (size_t i = 0; i < u->n_hosts; i++)
                free(u->hosts[i].host);
        free(u->unix_path);
        free(u->user);
        free_secret(&u->password);
        free(u->service_name);
        free(u->ssl_host);
        free(u);
        return NULL;
}

struct redis_url *redis_url_dup(const struct redis_url *u) {
        struct redis_url *c = calloc(1, sizeof *c);

        if (!c)
                return NULL;
        /* Field by field: pointers are duplicated, so redis_url_free() owns them. */
        c->n_hosts = MIN(u->n_hosts, (size_t) REDIS_URL_MAX_HOSTS);
        c->db = u->db;
        c->ssl = u->ssl;
        c->connect_timeout_ms = u->connect_timeout_ms;
        c->abort_connect = u->abort_connect;
        c->deadline_usec = u->deadline_usec;
        for (size_t i = 0; i < c->n_hosts; i++) {
                c->hosts[i].port = u->hosts[i].port;
                if (u->hosts[i].host && !(c->hosts[i].host = strdup(u->hosts[i].host)))
                        goto oom;
        }
        if ((u->unix_path && !(c->unix_path = strdup(u->unix_path))) ||
            (u->user && !(c->user = strdup(u->user))) ||
            (u->password && !(c->password = strdup(u->password))) ||
            (u->service_name && !(c->service_name = strdup(u->service_name))) ||
            (u->ssl_host && !(c->ssl_host = strdup(u->ssl_host))))
                goto oom;
        return c;
oom:
        redis_url_free(c);
        return NULL;
}

int redis_url_connect_timeout_ms(const struct redis_url *u) {
        return u->connect_timeout_ms > 0 ? u->connect_timeout_ms : CONNECT_TIMEOUT_DEFAULT_MS;
}

static struct redis_url *redis_url_new(void) {
        struct redis_url *u = calloc(1, sizeof *u);
        if (!u)
                return NULL;
        u->connect_timeout_ms = CONNECT_TIMEOUT_DEFAULT_MS;
        u->abort_connect = true;
        return u;
}

static bool has_prefix_ci(const char *s, const char *prefix) {
        return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* Length of the RFC 3986 scheme at the start of s (0 when none). */
static size_t scheme_len(const char *s) {
        size_t n = 0;
        if (!isalpha((unsigned char) *s))
                return 0;
        while (isalnum((unsigned char) s[n]) || s[n] == '+' || s[n] == '-' || s[n] == '.')
                n++;
        return n;
}

/* "scheme://" at the start of s?  Returns the position after "://" or NULL.
 * A "://" later in the string (inside a StackExchange password, say) does not
 * make it a URL. */
static const char *url_rest(const char *s) {
        size_t n = scheme_len(s);
        return n > 0 && strncmp(s + n, "://", 3) == 0 ? s + n + 3 : NULL;
}

static int hexval(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* Percent-decode s[0..len) into a new string.  -EINVAL on a bad escape or %00. */
static int percent_decode(const char *s, size_t len, char **ret) {
        char *out = malloc(len + 1), *p = out;
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < len; i++) {
                if (s[i] == '%') {
                        int hi = i + 1 < len ? hexval(s[i + 1]) : -1;
                        int lo = i + 2 < len ? hexval(s[i + 2]) : -1;
                        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                                explicit_bzero(out, len + 1);
                                free(out);
                                return -EINVAL;
                        }
                        *p++ = (char) (hi * 16 + lo);
                        i += 2;
                        continue;
                }
                *p++ = s[i];
        }
        *p = '\0';
        *ret = out;
        return 0;
}

static bool hostname_char(char c) {
        return isalnum((unsigned char) c) || c == '.' || c == '-' || c == '_';
}

static bool ipv6_char(char c) {
        return isxdigit((unsigned char) c) || c == ':' || c == '.';
}

/* A host, port or option found in the text: where it starts and how long it is. */
struct part {
        const char *p;
        size_t len;
};

/* Check the IPv6 address between the brackets (with an optional %zone). */
static bool ipv6_valid(const char *h, size_t len) {
        bool colon = false;

        for (size_t i = 0; i < len; i++) {
                if (h[i] == '%') { /* zone id: fe80::1%eth0 */
                        if (i + 1 == len)
                                return false;
                        for (size_t j = i + 1; j < len; j++)
                                if (!hostname_char(h[j]))
                                        return false;
                        break;
                }
                if (!ipv6_char(h[i]))
                        return false;
                colon |= h[i] == ':';
        }
        return colon;
}

/* "[v6]" or "[v6]:port" in s[0..len); what prefixes errors ("element 2: " or ""). */
static int split_bracketed(const char *s, size_t len, const char *what, struct part *host, struct part *port,
                           char *errbuf, size_t errlen) {
        const char *close = memchr(s, ']', len);

        if (!close)
                return fail(errbuf, errlen, "%sIPv6 address lacks its closing ']'", what);
        *host = (struct part){ s + 1, (size_t) (close - s - 1) };
        if (host->len == 0)
                return fail(errbuf, errlen, "%sempty IPv6 address in brackets", what);
        if (!ipv6_valid(host->p, host->len))
                return fail(errbuf, errlen, "%sbad IPv6 address (hex digits, ':' and '.' in brackets: [::1]:6379)",
                            what);
        size_t rest = len - (size_t) (close + 1 - s);
        if (rest > 0 && close[1] != ':')
                return fail(errbuf, errlen, "%sunexpected text after the IPv6 address (expected [address]:port)", what);
        *port = rest > 0 ? (struct part){ close + 2, rest - 1 } : (struct part){ NULL, 0 };
        return 0;
}

/* "host" or "host:port" in s[0..len); what prefixes errors. */
static int split_named(const char *s, size_t len, const char *what, struct part *host, struct part *port,
                       char *errbuf, size_t errlen) {
        const char *colon = memchr(s, ':', len);

        if (colon && memchr(colon + 1, ':', len - (size_t) (colon + 1 - s)))
                return fail(errbuf, errlen,
                            "%smore than one ':' (an IPv6 address must be written in brackets, [::1]:6379; "
                            CREDENTIALS_HINT ")", what);
        *host = (struct part){ s, colon ? (size_t) (colon - s) : len };
        *port = colon ? (struct part){ colon + 1, len - host->len - 1 } : (struct part){ NULL, 0 };
        if (host->len == 0)
                return fail(errbuf, errlen, "%sempty host name before ':'", what);
        for (size_t i = 0; i < host->len; i++)
                if (!hostname_char(host->p[i]))
                        return fail(errbuf, errlen,
                                    "%scharacter %zu of the host name is not allowed (A-Z a-z 0-9 . - _)", what, i + 1);
        return 0;
}

/* The port after "host:"; the host is a validated name, safe to quote. */
static int parse_port(const struct part *host, const struct part *port, const char *what, int *ret, char *errbuf,
                      size_t errlen) {
        char buf[8];
        int p;

        for (size_t i = 0; i < port->len; i++)
                if (!isdigit((unsigned char) port->p[i]))
                        return fail(errbuf, errlen, "%sport after '%.*s:' is not a number (1-65535)", what,
                                    (int) MIN(host->len, 64), host->p);
        if (port->len == 0 || port->len >= sizeof buf)
                return fail(errbuf, errlen, "%sbad port '%.*s' (1-65535)", what, (int) MIN(port->len, 16), port->p);
        memcpy(buf, port->p, port->len);
        buf[port->len] = '\0';
        if (parse_int(buf, &p) < 0 || p < 1 || p > 65535)
                return fail(errbuf, errlen, "%sbad port '%s' (1-65535)", what, buf);
        *ret = p;
        return 0;
}

/* Parse "host", "host:port", "[v6]" or "[v6]:port" from s[0..len); what
 * prefixes errors ("element 2: " in the StackExchange form, "" in a URL).
 * On success *ret_host is the host without brackets, *ret_port the port or 0
 * when absent. */
static int endpoint_parse(const char *s, size_t len, const char *what, char **ret_host, int *ret_port, char *errbuf,
                          size_t errlen) {
        struct part host = {}, port = {};
        int r, p = 0;

        if (len == 0)
                return fail(errbuf, errlen, "%sempty host", what);
        r = s[0] == '[' ? split_bracketed(s, len, what, &host, &port, errbuf, errlen)
                        : split_named(s, len, what, &host, &port, errbuf, errlen);
        if (r < 0)
                return r;
        if (host.len > HOST_MAX)
                return fail(errbuf, errlen, "%shost name too long (%zu characters)", what, host.len);
        if (port.p) {
                r = parse_port(&host, &port, what, &p, errbuf, errlen);
                if (r < 0)
                        return r;
        }
        char *h = strndup(host.p, host.len);
        if (!h)
                return -ENOMEM;
        *ret_host = h;
        *ret_port = p;
        return 0;
}

/* Does s[0..len) read as an endpoint with an explicit port ("host:digits",
 * "[v6]:digits")?  Lexical: a port out of range still ends a password, and is
 * then reported as a bad port. */
static bool is_hostport(const char *s, size_t len) {
        struct part host = {}, port = {};
        int r;

        if (len == 0)
                return false;
        r = s[0] == '[' ? split_bracketed(s, len, "", &host, &port, NULL, 0)
                        : split_named(s, len, "", &host, &port, NULL, 0);
        if (r < 0 || !port.p || port.len == 0 || host.len > HOST_MAX)
                return false;
        for (size_t i = 0; i < port.len; i++)
                if (!isdigit((unsigned char) port.p[i]))
                        return false;
        return true;
}

static bool is_space(char c) {
        return c == ' ' || c == '\t';
}

/* The option named by the start of s[0..len) when it is followed by '=' (else
 * _SE_OPT_INVALID); *ret_value then points after the '='. */
static enum se_option se_option_lookup(const char *s, size_t len, const char **ret_value) {
        const char *eq = memchr(s, '=', len);
        if (!eq)
                return _SE_OPT_INVALID;
        size_t klen = (size_t) (eq - s);
        while (klen > 0 && is_space(s[klen - 1]))
                klen--;
        for (int i = 0; i < _SE_OPT_MAX; i++)
                if (strlen(se_option_table[i]) == klen && strncasecmp(se_option_table[i], s, klen) == 0) {
                        if (ret_value)
                                *ret_value = eq + 1;
                        return (enum se_option) i;
                }
        return _SE_OPT_INVALID;
}

/* Length of the element starting at s, up to the next ',' (or end). */
static size_t element_len(const char *s) {
        const char *c = strchr(s, ',');
        return c ? (size_t) (c - s) : strlen(s);
}

static void trim(const char **s, size_t *len) {
        while (*len > 0 && is_space(**s))
                (*s)++, (*len)--;
        while (*len > 0 && is_space((*s)[*len - 1]))
                (*len)--;
}

/* Where does a StackExchange password value starting at v end?  At the next ','
 * that begins a known "option=" or a "host:port" element, or at the end. */
static size_t password_value_len(const char *v) {
        const char *p = v;
        for (;;) {
                const char *c = strchr(p, ',');
                if (!c)
                        return strlen(v);
                const char *t = c + 1;
                size_t tl = element_len(t);
                trim(&t, &tl);
                if (se_option_lookup(t, tl, NULL) >= 0 || is_hostport(t, tl))
                        return (size_t) (c - v);
                p = c + 1;
        }
}

/* The trimmed password value that starts after "password=" at v, and where
 * its element ends (the ',' or the terminating NUL). */
static struct part se_password_value(const char *v, const char **ret_end) {
        struct part pw = { v, password_value_len(v) };

        *ret_end = v + pw.len;
        trim(&pw.p, &pw.len);
        return pw;
}

/* Never quotes the text: it may be a mistyped path holding a password. */
static int parse_db(const char *s, size_t len, const char *what, int *ret, char *errbuf, size_t errlen) {
        char buf[16];
        int v;

        if (len == 0 || len >= sizeof buf)
                return fail(errbuf, errlen, "%s: not a number >= 0", what);
        memcpy(buf, s, len);
        buf[len] = '\0';
        for (size_t i = 0; i < len; i++)
                if (!isdigit((unsigned char) buf[i]))
                        return fail(errbuf, errlen, "%s: not a number >= 0", what);
        if (parse_int(buf, &v) < 0 || v < 0)
                return fail(errbuf, errlen, "%s: not a number >= 0", what);
        *ret = v;
        return 0;
}

/* userinfo s[0..len): "user:password", ":password" or "password". */
static int parse_userinfo(struct redis_url *u, const char *s, size_t len, char *errbuf, size_t errlen) {
        const char *colon = memchr(s, ':', len);
        int r;

        if (len == 0)
                return 0;
        if (colon) {
                size_t ul = (size_t) (colon - s);
                if (ul > 0) {
                        r = percent_decode(s, ul, &u->user);
                        if (r == -EINVAL)
                                return fail(errbuf, errlen, "bad percent-encoding in the user name");
                        if (r < 0)
                                return r;
                }
                s = colon + 1;
                len -= ul + 1;
        }
        if (len == 0)
                return 0;
        r = percent_decode(s, len, &u->password);
        if (r == -EINVAL)
                return fail(errbuf, errlen, "bad percent-encoding in the password (use %%XX, e.g. %%40 for '@')");
        return r;
}

static int parse_url_form(struct redis_url *u, const char *s, char *errbuf, size_t errlen) {
        const char *rest, *at, *hp, *slash;
        int r;

        if (has_prefix_ci(s, "redis://"))
                rest = s + strlen("redis://");
        else if (has_prefix_ci(s, "rediss://")) {
                rest = s + strlen("rediss://");
                u->ssl = true;
        } else
                return fail(errbuf, errlen, "unknown scheme '%.*s' (use redis://, rediss:// or unix://)",
                            (int) MIN(scheme_len(s), 32), s);

        at = strrchr(rest, '@');
        if (at) {
                r = parse_userinfo(u, rest, (size_t) (at - rest), errbuf, errlen);
                if (r < 0)
                        return r;
                hp = at + 1;
        } else
                hp = rest;

        if (strpbrk(hp, "?#"))
                return fail(errbuf, errlen, "unexpected '%c' after the host (redis:// takes host:port/db only; "
                            "put a password in user:password@)", *strpbrk(hp, "?#"));
        slash = strchr(hp, '/');
        size_t hl = slash ? (size_t) (slash - hp) : strlen(hp);
        if (hl == 0)
                return fail(errbuf, errlen, "empty host");
        char *host;
        int port;
        r = endpoint_parse(hp, hl, "", &host, &port, errbuf, errlen);
        if (r < 0)
                return r;
        u->hosts[0].host = host;
        u->hosts[0].port = port > 0 ? port : REDIS_DEFAULT_PORT;
        u->n_hosts = 1;
        if (slash && slash[1] != '\0')
                return parse_db(slash + 1, strlen(slash + 1), "database after '/'", &u->db, errbuf, errlen);
        return 0;
}

/* unix://user:pass@/path: the userinfo ends at the last "@/"; NULL when none. */
static const char *unix_userinfo_end(const char *rest) {
        const char *at = NULL;
        for (const char *p = rest; (p = strstr(p, "@/")); p++)
                at = p;
        return at;
}

static int parse_unix_form(struct redis_url *u, const char *s, char *errbuf, size_t errlen) {
        const char *rest = s + strlen("unix://"), *path, *q;
        int r;

        if (rest[0] == '/')
                path = rest;
        else {
                const char *at = unix_userinfo_end(rest);
                if (!at)
                        return fail(errbuf, errlen, "unix:// needs an absolute socket path (unix:///run/redis.sock)");
                r = parse_userinfo(u, rest, (size_t) (at - rest), errbuf, errlen);
                if (r < 0)
                        return r;
                path = at + 1;
        }
        q = strrchr(path, '?');
        size_t pl = q ? (size_t) (q - path) : strlen(path);
        if (pl <= 1)
                return fail(errbuf, errlen, "empty unix socket path");
        if (pl >= 108)
                return fail(errbuf, errlen, "unix socket path too long (%zu bytes, at most 107)", pl);
        if (q) {
                if (!has_prefix_ci(q + 1, "db="))
                        return fail(errbuf, errlen, "unknown parameter after '?' (unix:// takes only ?db=N)");
                r = parse_db(q + 4, strlen(q + 4), "database in ?db=", &u->db, errbuf, errlen);
                if (r < 0)
                        return r;
        }
        u->unix_path = strndup(path, pl);
        if (!u->unix_path)
                return -ENOMEM;
        return 0;
}

/* Option values are never quoted in errors: see the top of this file. */
static int parse_se_bool(const char *name, const char *v, size_t len, bool *ret, char *errbuf, size_t errlen) {
        if (len == 4 && strncasecmp(v, "true", 4) == 0)
                *ret = true;
        else if (len == 5 && strncasecmp(v, "false", 5) == 0)
                *ret = false;
        else
                return fail(errbuf, errlen, "%s: expected true or false", name);
        return 0;
}

/* serviceName and sslHost: a host name. */
static int parse_se_name(const char *name, const char *v, size_t len, char **ret, char *errbuf, size_t errlen) {
        if (len == 0)
                return fail(errbuf, errlen, "%s: empty", name);
        if (len > HOST_MAX)
                return fail(errbuf, errlen, "%s: longer than %d characters", name, HOST_MAX);
        for (size_t i = 0; i < len; i++)
                if (!hostname_char(v[i]))
                        return fail(errbuf, errlen, "%s: character %zu is not allowed (A-Z a-z 0-9 . - _)", name,
                                    i + 1);
        char *c = strndup(v, len);
        if (!c)
                return -ENOMEM;
        free(*ret);
        *ret = c;
        return 0;
}

static int parse_se_timeout(const char *v, size_t len, int *ret, char *errbuf, size_t errlen) {
        char buf[16];
        int ms;

        if (len == 0 || len >= sizeof buf)
                return fail(errbuf, errlen, "connectTimeout: not milliseconds (1-3600000)");
        memcpy(buf, v, len);
        buf[len] = '\0';
        if (parse_int(buf, &ms) < 0 || ms < 1 || ms > 3600000)
                return fail(errbuf, errlen, "connectTimeout: not milliseconds (1-3600000)");
        *ret = ms;
        return 0;
}

/* One option other than password, its (trimmed) value v[0..len). */
static int parse_se_option(struct redis_url *u, enum se_option opt, const char *v, size_t len, char *errbuf,
                           size_t errlen) {
        const char *name = se_option_table[opt];

        switch (opt) {
        case SE_OPT_USER:
                free(u->user);
                u->user = len > 0 ? strndup(v, len) : NULL;
                return len > 0 && !u->user ? -ENOMEM : 0;
        case SE_OPT_SSL:
                return parse_se_bool(name, v, len, &u->ssl, errbuf, errlen);
        case SE_OPT_SSL_HOST:
                return parse_se_name(name, v, len, &u->ssl_host, errbuf, errlen);
        case SE_OPT_DEFAULT_DATABASE:
                return parse_db(v, len, name, &u->db, errbuf, errlen);
        case SE_OPT_SERVICE_NAME:
                return parse_se_name(name, v, len, &u->service_name, errbuf, errlen);
        case SE_OPT_CONNECT_TIMEOUT:
                return parse_se_timeout(v, len, &u->connect_timeout_ms, errbuf, errlen);
        case SE_OPT_ABORT_CONNECT:
                return parse_se_bool(name, v, len, &u->abort_connect, errbuf, errlen);
        default: /* password is parse_se_password()'s */
                assert(false);
                return -EINVAL;
        }
}

/* "password=..." at value: may run over ',' (see the top of this file).
 * *ret_end is where the element ends. */
static int parse_se_password(struct redis_url *u, const char *value, const char **ret_end) {
        struct part pw = se_password_value(value, ret_end);

        free_secret(&u->password);
        if (pw.len == 0)
                return 0;
        u->password = strndup(pw.p, pw.len);
        return u->password ? 0 : -ENOMEM;
}

/* The known option that the element t[0..tl) (without '=') starts with, as in
 * "password PW" or "password:PW"; NULL when none, or for a "user:6379" that
 * names a host. */
static const char *option_without_equals(const char *t, size_t tl) {
        for (int i = 0; i < _SE_OPT_MAX; i++) {
                size_t n = strlen(se_option_table[i]);
                if (tl <= n || strncasecmp(t, se_option_table[i], n) != 0 || hostname_char(t[n]))
                        continue;
                if (t[n] == ':' && strspn(t + n + 1, "0123456789") == tl - n - 1)
                        continue;
                return se_option_table[i];
        }
        return NULL;
}

/* Mistakes in a StackExchange element (its part before any '=' is t[0..kl))
 * that would otherwise be reported as a bad host or option, possibly quoting
 * a password. */
static int check_se_element(const char *t, size_t tl, size_t kl, const char *what, char *errbuf, size_t errlen) {
        const char *opt = kl == tl ? option_without_equals(t, tl) : NULL;

        if (memchr(t, '@', kl))
                return fail(errbuf, errlen, "%s'@' in a host part (" CREDENTIALS_HINT ")", what);
        if (opt)
                return fail(errbuf, errlen, "%soption %s needs '=' (%s=...)", what, opt, opt);
        if (memchr(t, ';', kl))
                return fail(errbuf, errlen, "%s';' is not a separator here (the host:port,option=value form "
                            "separates with ',')", what);
        if (memchr(t, '/', kl))
                return fail(errbuf, errlen, "%s'/' outside a redis:// URL (redis://host:port/db)", what);
        return 0;
}

/* An element that is no option: "name=..." (unknown) or an endpoint. */
static int parse_se_other(struct redis_url *u, const char *t, size_t tl, unsigned element, char *errbuf,
                          size_t errlen) {
        const char *eq = memchr(t, '=', tl);
        char what[32];
        int r;

        size_t kl = eq ? (size_t) (eq - t) : tl;

        snprintf(what, sizeof what, "element %u: ", element);
        r = check_se_element(t, tl, kl, what, errbuf, errlen);
        if (r < 0)
                return r;
        if (eq) {
                while (kl > 0 && is_space(t[kl - 1]))
                        kl--;
                for (size_t i = 0; i < kl; i++)
                        if (!hostname_char(t[i]))
                                return fail(errbuf, errlen, "%sunknown option (known: " SE_OPTIONS_KNOWN ")", what);
                return fail(errbuf, errlen, "unknown option '%.*s' (known: " SE_OPTIONS_KNOWN ")", (int) MIN(kl, 64),
                            t);
        }
        if (u->n_hosts >= REDIS_URL_MAX_HOSTS)
                return fail(errbuf, errlen, "too many endpoints (at most %d)", REDIS_URL_MAX_HOSTS);
        struct redis_endpoint *e = &u->hosts[u->n_hosts];
        r = endpoint_parse(t, tl, what, &e->host, &e->port, errbuf, errlen);
        if (r < 0)
                return r;
        u->n_hosts++;
        return 0;
}

static int parse_se_form(struct redis_url *u, const char *s, char *errbuf, size_t errlen) {
        const char *p = s;
        int r = 0;

        for (unsigned element = 1;; element++) {
                size_t n = element_len(p);
                const char *t = p, *value;
                size_t tl = n;
                trim(&t, &tl);
                enum se_option opt = se_option_lookup(t, tl, &value);

                if (opt == SE_OPT_PASSWORD)
                        r = parse_se_password(u, value, &p);
                else {
                        if (opt >= 0) {
                                size_t vl = tl - (size_t) (value - t);
                                trim(&value, &vl);
                                r = parse_se_option(u, opt, value, vl, errbuf, errlen);
                        } else if (tl > 0) /* empty elements (",," or a trailing ',') are ignored */
                                r = parse_se_other(u, t, tl, element, errbuf, errlen);
                        p += n;
                }
                if (r < 0)
                        return r;
                if (*p == '\0')
                        break;
                p++; /* skip ',' */
        }

        if (u->n_hosts == 0)
                return fail(errbuf, errlen, "no host:port endpoint given");
        for (size_t i = 0; i < u->n_hosts; i++)
                if (u->hosts[i].port == 0)
                        u->hosts[i].port = u->service_name ? REDIS_SENTINEL_DEFAULT_PORT : REDIS_DEFAULT_PORT;
        return 0;
}

/* A scheme not followed by "://" ("redis:/h", "redis//h") or "//" without
 * one: named before the text after it, which may hold user:password, is read
 * as a host. */
static int check_scheme_typo(const char *s, char *errbuf, size_t errlen) {
        size_t n = scheme_len(s);

        if (strncmp(s, "//", 2) == 0)
                return fail(errbuf, errlen, "missing scheme before '//' (redis://[user:password@]host:port)");
        if (n == 0 || (strncmp(s + n, ":/", 2) != 0 && strncmp(s + n, "//", 2) != 0))
                return 0;
        /* Quote the scheme only when it is one: the word might be anything. */
        if ((n == 5 && has_prefix_ci(s, "redis")) || (n == 6 && has_prefix_ci(s, "rediss")) ||
            (n == 4 && has_prefix_ci(s, "unix")))
                return fail(errbuf, errlen, "the scheme '%.*s' must be followed by '://' "
                            "(redis://[user:password@]host:port)", (int) n, s);
        return fail(errbuf, errlen, "a scheme must be followed by '://' (redis://[user:password@]host:port)");
}

/* Of a URL: the userinfo (to the last '@', or the last "@/" of unix://) after
 * its first ':', or all of it without one. */
static void url_password_span(const char *s, const char *rest, secret_span_fn fn, void *userdata) {
        const char *at;

        if (has_prefix_ci(s, "unix://"))
                at = rest[0] == '/' ? NULL : unix_userinfo_end(rest);
        else
                at = strrchr(rest, '@');
        if (!at)
                return;
        const char *colon = memchr(rest, ':', (size_t) (at - rest));
        const char *pw = colon ? colon + 1 : rest;
        if (at > pw)
                fn(pw, (size_t) (at - pw), userdata);
}

/* Of a string that is no URL: what precedes its last '@', after any
 * scheme-like start and a first ':' (a mistyped "redis:/u:PW@h", "PW@h"). */
static void at_prefix_span(const char *s, secret_span_fn fn, void *userdata) {
        const char *at = strrchr(s, '@');
        size_t n = scheme_len(s);

        if (!at)
                return;
        const char *b = s[n] == ':' || s[n] == '/' ? s + n + strspn(s + n, ":/") : s;
        const char *colon = b < at ? memchr(b, ':', (size_t) (at - b)) : NULL;
        b = colon ? colon + 1 : b;
        if (at > b)
                fn(b, (size_t) (at - b), userdata);
}

/* Of the StackExchange form: every password= value, trimmed. */
static void se_password_spans(const char *s, secret_span_fn fn, void *userdata) {
        for (const char *p = s;; p++) {
                const char *t = p, *value, *end = p + element_len(p);
                size_t tl = (size_t) (end - p);
                trim(&t, &tl);
                if (se_option_lookup(t, tl, &value) == SE_OPT_PASSWORD) {
                        struct part pw = se_password_value(value, &end);
                        if (pw.len > 0)
                                fn(pw.p, pw.len, userdata);
                }
                p = end;
                if (*p == '\0')
                        break;
        }
}

/* The spans of s that hold a password, as the parser reads them; lenient
 * adds, for a string that is no URL, at_prefix_span() (only for checking
 * error messages: it is not in order with the others). */
static void credential_spans(const char *s, bool lenient, secret_span_fn fn, void *userdata) {
        const char *rest = url_rest(s);

        if (rest) {
                url_password_span(s, rest, fn, userdata);
                return;
        }
        if (lenient)
                at_prefix_span(s, fn, userdata);
        se_password_spans(s, fn, userdata);
}

void redis_url_foreach_password(const char *s, secret_span_fn fn, void *userdata) {
        if (s)
                credential_spans(s, false, fn, userdata);
}

struct shown {
        const char *msg;
        bool found;
};

/* Does the message contain 6 consecutive characters of the span (all of it
 * when shorter, from 3)?  Short enough to catch a quoted fragment, long
 * enough not to match the words of a message. */
static void check_shown(const char *span, size_t len, void *userdata) {
        struct shown *sh = userdata;
        size_t wl = MIN(len, (size_t) 6);
        char w[7];

        if (wl < 3)
                return;
        for (size_t i = 0; i + wl <= len && !sh->found; i++) {
                memcpy(w, span + i, wl);
                w[wl] = '\0';
                sh->found = strstr(sh->msg, w) != NULL;
        }
}

static bool error_shows_secret(const char *s, const struct redis_url *u, const char *msg) {
        struct shown sh = { .msg = msg };

        if (u->password)
                check_shown(u->password, strlen(u->password), &sh);
        credential_spans(s, true, check_shown, &sh);
        return sh.found;
}

static int parse_any(struct redis_url *u, const char *s, char *errbuf, size_t errlen) {
        int r;

        if (has_prefix_ci(s, "unix://"))
                return parse_unix_form(u, s, errbuf, errlen);
        if (url_rest(s))
                return parse_url_form(u, s, errbuf, errlen);
        r = check_scheme_typo(s, errbuf, errlen);
        if (r < 0)
                return r;
        return parse_se_form(u, s, errbuf, errlen);
}

int redis_url_parse(const char *s, struct redis_url **ret, char *errbuf, size_t errlen) {
        _cleanup_(redis_url_freep) struct redis_url *u = NULL;
        int r;

        if (!s || !*s)
                return fail(errbuf, errlen, "empty Redis connection string");
        if (strlen(s) > 4096)
                return fail(errbuf, errlen, "Redis connection string too long (more than 4096 bytes)");
        for (const char *p = s; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        return fail(errbuf, errlen, "control character in Redis connection string");

        u = redis_url_new();
        if (!u)
                return -ENOMEM;
        r = parse_any(u, s, errbuf, errlen);
        if (r < 0) {
                /* Belt and braces: a message must never carry the password. */
                if (r == -EINVAL && errbuf && errlen > 0 && error_shows_secret(s, u, errbuf))
                        fail(errbuf, errlen, "malformed Redis connection string");
                return r;
        }
        *ret = TAKE_PTR(u);
        return 0;
}

/* Percent-encode what would otherwise be read as a delimiter in a URL userinfo. */
static void put_encoded(FILE *f, const char *s) {
        for (; *s; s++) {
                unsigned char c = (unsigned char) *s;
                if (isalnum(c) || strchr("-._~", c))
                        fputc(c, f);
                else
                        fprintf(f, "%%%02X", c);
        }
}

static void put_host(FILE *f, const struct redis_endpoint *e) {
        if (strchr(e->host, ':'))
                fprintf(f, "[%s]:%d", e->host, e->port);
        else
                fprintf(f, "%s:%d", e->host, e->port);
}

static void put_se_form(FILE *f, const struct redis_url *u) {
        for (size_t i = 0; i < u->n_hosts; i++) {
                if (i > 0)
                        fputc(',', f);
                put_host(f, &u->hosts[i]);
        }
        if (u->user)
                fprintf(f, ",user=%s", u->user);
        if (u->password)
                fputs(",password=*****", f);
        if (u->ssl)
                fputs(",ssl=true", f);
        if (u->ssl_host)
                fprintf(f, ",sslHost=%s", u->ssl_host);
        if (u->db != 0)
                fprintf(f, ",defaultDatabase=%d", u->db);
        if (u->service_name)
                fprintf(f, ",serviceName=%s", u->service_name);
        if (u->connect_timeout_ms != CONNECT_TIMEOUT_DEFAULT_MS)
                fprintf(f, ",connectTimeout=%d", u->connect_timeout_ms);
        if (!u->abort_connect)
                fputs(",abortConnect=false", f);
}

static void put_url_form(FILE *f, const struct redis_url *u) {
        fputs(u->unix_path ? "unix://" : u->ssl ? "rediss://" : "redis://", f);
        if (u->user || u->password) {
                if (u->user)
                        put_encoded(f, u->user);
                if (u->password)
                        fputs(":*****", f);
                fputc('@', f);
        }
        if (u->unix_path) {
                fputs(u->unix_path, f);
                if (u->db != 0)
                        fprintf(f, "?db=%d", u->db);
        } else if (u->n_hosts > 0) {
                put_host(f, &u->hosts[0]);
                fprintf(f, "/%d", u->db);
        }
}

char *redis_url_to_string_masked(const struct redis_url *u) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f;

        if (!u)
                return NULL;
        f = open_memstream(&buf, &size);
        if (!f)
                return NULL;
        /* The URL form cannot carry these. */
        if (u->service_name || u->n_hosts > 1 || u->ssl_host)
                put_se_form(f, u);
        else
                put_url_form(f, u);
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}
