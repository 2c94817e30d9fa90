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
 *     defaultDatabase, serviceName, connectTimeout, abortConnect.
 *     StackExchange.Redis itself cannot express a ',' in a password.  Here the
 *     password value runs to the next ',' that starts a known option ("key=")
 *     or an endpoint with an explicit port ("host:port", "[v6]:port"), or to
 *     the end.  So "password=a,b=c" is the password "a,b=c", while
 *     "password=x,ssl=true" and "password=x,h2:6379" end at the ','.  A password
 *     containing ",<option>=" or ",host:port" cannot be written in this form: use
 *     the redis:// form with percent-encoding.
 *
 * Ports default to 6379, or 26379 when serviceName is set (the endpoints are then
 * Sentinels).  Error messages name the bad part and never contain the password. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "macro.h"
#include "redis_url.h"
#include "strutil.h"

#define HOST_MAX 253
#define CONNECT_TIMEOUT_DEFAULT_MS 5000

static const char *const known_options[] = {
        "password", "user", "ssl", "defaultDatabase", "serviceName", "connectTimeout", "abortConnect",
};

_printf_(3, 4) static int fail(char *errbuf, size_t errlen, const char *fmt, ...) {
        if (errbuf && errlen > 0) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(errbuf, errlen, fmt, ap);
                va_end(ap);
        }
        return -EINVAL;
}

struct redis_url *redis_url_free(struct redis_url *u) {
        if (!u)
                return NULL;
        for (size_t i = 0; i < u->n_hosts; i++)
                free(u->hosts[i].host);
        free(u->unix_path);
        free(u->user);
        if (u->password) {
                explicit_bzero(u->password, strlen(u->password));
                free(u->password);
        }
        free(u->service_name);
        free(u);
        return NULL;
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

/* "scheme://" at the start of s (RFC 3986 scheme characters)?  Returns the
 * position after "://" or NULL.  A "://" later in the string (inside a
 * StackExchange password, say) does not make it a URL. */
static const char *url_rest(const char *s) {
        const char *p = s;
        if (!isalpha((unsigned char) *p))
                return NULL;
        while (isalnum((unsigned char) *p) || *p == '+' || *p == '-' || *p == '.')
                p++;
        return strncmp(p, "://", 3) == 0 ? p + 3 : NULL;
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

/* Parse "host", "host:port", "[v6]" or "[v6]:port" from s[0..len).  On success
 * *ret_host is the host without brackets, *ret_port the port or 0 when absent. */
static int endpoint_parse(const char *s, size_t len, char **ret_host, int *ret_port, char *errbuf, size_t errlen) {
        const char *host, *port = NULL;
        size_t hostlen, portlen = 0;
        int p = 0;

        if (len == 0)
                return fail(errbuf, errlen, "empty host");
        if (s[0] == '[') {
                const char *close = memchr(s, ']', len);
                if (!close)
                        return fail(errbuf, errlen, "IPv6 address '%.*s' lacks its closing ']'", (int) MIN(len, 64), s);
                host = s + 1;
                hostlen = (size_t) (close - host);
                if (hostlen == 0)
                        return fail(errbuf, errlen, "empty host in '%.*s'", (int) MIN(len, 64), s);
                bool colon = false;
                for (size_t i = 0; i < hostlen; i++) {
                        if (host[i] == '%') { /* zone id: fe80::1%eth0 */
                                for (size_t j = i + 1; j < hostlen; j++)
                                        if (!hostname_char(host[j]))
                                                return fail(errbuf, errlen, "bad IPv6 address '%.*s'",
                                                            (int) MIN(hostlen, 64), host);
                                if (i + 1 == hostlen)
                                        return fail(errbuf, errlen, "bad IPv6 address '%.*s'", (int) MIN(hostlen, 64), host);
                                break;
                        }
                        if (!ipv6_char(host[i]))
                                return fail(errbuf, errlen, "bad IPv6 address '%.*s'", (int) MIN(hostlen, 64), host);
                        if (host[i] == ':')
                                colon = true;
                }
                if (!colon)
                        return fail(errbuf, errlen, "bad IPv6 address '%.*s'", (int) MIN(hostlen, 64), host);
                const char *after = close + 1;
                size_t rest = len - (size_t) (after - s);
                if (rest > 0) {
                        if (after[0] != ':')
                                return fail(errbuf, errlen, "unexpected '%.*s' after IPv6 address",
                                            (int) MIN(rest, 64), after);
                        port = after + 1;
                        portlen = rest - 1;
                }
        } else {
                const char *colon = memchr(s, ':', len);
                if (colon && memchr(colon + 1, ':', len - (size_t) (colon + 1 - s)))
                        return fail(errbuf, errlen, "IPv6 address '%.*s' must be written in brackets ([::1]:6379)",
                                    (int) MIN(len, 64), s);
                host = s;
                hostlen = colon ? (size_t) (colon - s) : len;
                if (colon) {
                        port = colon + 1;
                        portlen = len - hostlen - 1;
                }
                if (hostlen == 0)
                        return fail(errbuf, errlen, "empty host in '%.*s'", (int) MIN(len, 64), s);
                for (size_t i = 0; i < hostlen; i++)
                        if (!hostname_char(host[i]))
                                return fail(errbuf, errlen, "bad host name '%.*s'", (int) MIN(hostlen, 64), host);
        }
        if (hostlen > HOST_MAX)
                return fail(errbuf, errlen, "host name too long (%zu characters)", hostlen);
        if (port) {
                char buf[8];
                /* Name the host, not the text: a mistyped "password:..." would show a secret. */
                for (size_t i = 0; i < portlen; i++)
                        if (!isdigit((unsigned char) port[i]))
                                return fail(errbuf, errlen, "port after '%.*s:' is not a number (1-65535)",
                                            (int) MIN(hostlen, 64), host);
                if (portlen == 0 || portlen >= sizeof buf)
                        return fail(errbuf, errlen, "bad port '%.*s' (1-65535)", (int) MIN(portlen, 16), port);
                memcpy(buf, port, portlen);
                buf[portlen] = '\0';
                if (parse_int(buf, &p) < 0 || p < 1 || p > 65535)
                        return fail(errbuf, errlen, "bad port '%s' (1-65535)", buf);
        }
        char *h = strndup(host, hostlen);
        if (!h)
                return -ENOMEM;
        *ret_host = h;
        *ret_port = p;
        return 0;
}

/* Does s[0..len) name an endpoint with an explicit port? */
static bool is_hostport(const char *s, size_t len) {
        _cleanup_free_ char *h = NULL;
        int p;
        if (endpoint_parse(s, len, &h, &p, NULL, 0) < 0)
                return false;
        return p > 0;
}

static bool is_space(char c) {
        return c == ' ' || c == '\t';
}

/* If s[0..len) (one comma-separated element) is "<known option>=...", return the
 * option's index and set *ret_value to what follows '='; else -1. */
static int known_option(const char *s, size_t len, const char **ret_value) {
        const char *eq = memchr(s, '=', len);
        if (!eq)
                return -1;
        size_t klen = (size_t) (eq - s);
        while (klen > 0 && is_space(s[klen - 1]))
                klen--;
        for (size_t i = 0; i < ELEMENTSOF(known_options); i++)
                if (strlen(known_options[i]) == klen && strncasecmp(known_options[i], s, klen) == 0) {
                        if (ret_value)
                                *ret_value = eq + 1;
                        return (int) i;
                }
        return -1;
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
                const char *next = c + 1;
                size_t n = element_len(next);
                const char *t = next;
                size_t tl = n;
                trim(&t, &tl);
                if (known_option(t, tl, NULL) >= 0 || is_hostport(t, tl))
                        return (size_t) (c - v);
                p = next;
        }
}

static int parse_db(const char *s, size_t len, int *ret, char *errbuf, size_t errlen) {
        char buf[16];
        int v;
        if (len == 0 || len >= sizeof buf)
                return fail(errbuf, errlen, "bad database '%.*s' (a number >= 0)", (int) MIN(len, 16), s);
        memcpy(buf, s, len);
        buf[len] = '\0';
        for (size_t i = 0; i < len; i++)
                if (!isdigit((unsigned char) buf[i]))
                        return fail(errbuf, errlen, "bad database '%s' (a number >= 0)", buf);
        if (parse_int(buf, &v) < 0 || v < 0)
                return fail(errbuf, errlen, "bad database '%s' (a number >= 0)", buf);
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
                return fail(errbuf, errlen, "unknown scheme (use redis://, rediss:// or unix://)");

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
        r = endpoint_parse(hp, hl, &host, &port, errbuf, errlen);
        if (r < 0)
                return r;
        u->hosts[0].host = host;
        u->hosts[0].port = port > 0 ? port : REDIS_DEFAULT_PORT;
        u->n_hosts = 1;
        if (slash && slash[1] != '\0') {
                r = parse_db(slash + 1, strlen(slash + 1), &u->db, errbuf, errlen);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_unix_form(struct redis_url *u, const char *s, char *errbuf, size_t errlen) {
        const char *rest = s + strlen("unix://"), *path, *q;
        int r;

        if (rest[0] == '/')
                path = rest;
        else {
                /* unix://user:pass@/path: userinfo ends at the last "@/" */
                const char *at = NULL;
                for (const char *p = rest; (p = strstr(p, "@/")); p++)
                        at = p;
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
                r = parse_db(q + 4, strlen(q + 4), &u->db, errbuf, errlen);
                if (r < 0)
                        return r;
        }
        u->unix_path = strndup(path, pl);
        if (!u->unix_path)
                return -ENOMEM;
        return 0;
}

static int parse_se_bool(const char *name, const char *v, size_t len, bool *ret, char *errbuf, size_t errlen) {
        if (len == 4 && strncasecmp(v, "true", 4) == 0)
                *ret = true;
        else if (len == 5 && strncasecmp(v, "false", 5) == 0)
                *ret = false;
        else
                return fail(errbuf, errlen, "%s: '%.*s' is not true or false", name, (int) MIN(len, 32), v);
        return 0;
}

static int parse_se_form(struct redis_url *u, const char *s, char *errbuf, size_t errlen) {
        const char *p = s;
        int r;

        for (;;) {
                size_t n = element_len(p);
                const char *t = p, *value;
                size_t tl = n;
                trim(&t, &tl);
                int opt = known_option(t, tl, &value);

                if (opt == 0) { /* password: may run over ',' (see the top of this file) */
                        while (is_space(*value))
                                value++;
                        size_t vl = password_value_len(value);
                        const char *vend = value + vl;
                        while (vl > 0 && is_space(value[vl - 1]))
                                vl--;
                        if (u->password) {
                                explicit_bzero(u->password, strlen(u->password));
                                free(u->password);
                                u->password = NULL;
                        }
                        if (vl > 0) {
                                u->password = strndup(value, vl);
                                if (!u->password)
                                        return -ENOMEM;
                        }
                        p = vend;
                } else {
                        size_t vl = opt >= 0 ? tl - (size_t) (value - t) : 0;
                        while (opt >= 0 && vl > 0 && is_space(*value))
                                value++, vl--;
                        const char *name = opt >= 0 ? known_options[opt] : NULL;

                        switch (opt) {
                        case 1: /* user */
                                free(u->user);
                                u->user = vl > 0 ? strndup(value, vl) : NULL;
                                if (vl > 0 && !u->user)
                                        return -ENOMEM;
                                break;
                        case 2: /* ssl */
                                r = parse_se_bool(name, value, vl, &u->ssl, errbuf, errlen);
                                if (r < 0)
                                        return r;
                                break;
                        case 3: /* defaultDatabase */
                                r = parse_db(value, vl, &u->db, errbuf, errlen);
                                if (r < 0)
                                        return fail(errbuf, errlen, "defaultDatabase: '%.*s' is not a number >= 0",
                                                    (int) MIN(vl, 16), value);
                                break;
                        case 4: /* serviceName */
                                if (vl == 0)
                                        return fail(errbuf, errlen, "serviceName: empty");
                                for (size_t i = 0; i < vl; i++)
                                        if (!hostname_char(value[i]))
                                                return fail(errbuf, errlen, "serviceName: bad name '%.*s'",
                                                            (int) MIN(vl, 64), value);
                                free(u->service_name);
                                u->service_name = strndup(value, vl);
                                if (!u->service_name)
                                        return -ENOMEM;
                                break;
                        case 5: { /* connectTimeout */
                                char buf[16];
                                int ms;
                                if (vl == 0 || vl >= sizeof buf)
                                        return fail(errbuf, errlen, "connectTimeout: '%.*s' is not milliseconds (1-3600000)",
                                                    (int) MIN(vl, 16), value);
                                memcpy(buf, value, vl);
                                buf[vl] = '\0';
                                if (parse_int(buf, &ms) < 0 || ms < 1 || ms > 3600000)
                                        return fail(errbuf, errlen, "connectTimeout: '%s' is not milliseconds (1-3600000)", buf);
                                u->connect_timeout_ms = ms;
                                break;
                        }
                        case 6: /* abortConnect */
                                r = parse_se_bool(name, value, vl, &u->abort_connect, errbuf, errlen);
                                if (r < 0)
                                        return r;
                                break;
                        default: {
                                const char *eq = memchr(t, '=', tl);
                                if (tl == 0)
                                        break; /* empty element (",," or trailing ','), as StackExchange.Redis */
                                if (eq) {
                                        /* Name only the key: the value might be a mistyped secret. */
                                        size_t kl = (size_t) (eq - t);
                                        while (kl > 0 && is_space(t[kl - 1]))
                                                kl--;
                                        return fail(errbuf, errlen,
                                                    "unknown option '%.*s' (known: password, user, ssl, defaultDatabase, "
                                                    "serviceName, connectTimeout, abortConnect)",
                                                    (int) MIN(kl, 64), t);
                                }
                                if (u->n_hosts >= REDIS_URL_MAX_HOSTS)
                                        return fail(errbuf, errlen, "too many endpoints (at most %d)", REDIS_URL_MAX_HOSTS);
                                char *host;
                                int port;
                                r = endpoint_parse(t, tl, &host, &port, errbuf, errlen);
                                if (r < 0)
                                        return r;
                                u->hosts[u->n_hosts].host = host;
                                u->hosts[u->n_hosts].port = port;
                                u->n_hosts++;
                        }
                        }
                        p += n;
                }
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

/* Does msg contain 6 (or all, if fewer) consecutive characters of what redis_url_mask_string()
 * would hide in s?  (The part between the common prefix and suffix of s and its
 * masked form: enough for the one password a connection string carries.) */
static bool shows_masked_part(const char *s, const char *msg) {
        _cleanup_free_ char *m = redis_url_mask_string(s);
        size_t sl = strlen(s), ml, a = 0, b = 0;

        if (!m || strcmp(m, s) == 0)
                return false;
        ml = strlen(m);
        while (a < sl && a < ml && s[a] == m[a])
                a++;
        while (b < sl - a && b < ml - a && s[sl - 1 - b] == m[ml - 1 - b])
                b++;
        /* Windows of 6 (or the whole part when shorter): short enough to catch a
         * quoted fragment, long enough not to match the words of the message. */
        size_t span = sl - b - a, wl = MIN(span, (size_t) 6);
        if (wl < 3)
                return false;
        for (size_t i = a; i + wl <= sl - b; i++) {
                char w[7];
                memcpy(w, s + i, wl);
                w[wl] = '\0';
                if (strstr(msg, w))
                        return true;
        }
        return false;
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

        if (has_prefix_ci(s, "unix://"))
                r = parse_unix_form(u, s, errbuf, errlen);
        else if (url_rest(s))
                r = parse_url_form(u, s, errbuf, errlen);
        else
                r = parse_se_form(u, s, errbuf, errlen);
        if (r < 0) {
                /* Belt and braces: a message must never carry the password. */
                if (errbuf && errlen > 0 &&
                    ((u->password && strlen(u->password) >= 3 && strstr(errbuf, u->password)) ||
                     shows_masked_part(s, errbuf)))
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

char *redis_url_to_string_masked(const struct redis_url *u) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f;

        if (!u)
                return NULL;
        f = open_memstream(&buf, &size);
        if (!f)
                return NULL;

        if (u->service_name || u->n_hosts > 1) {
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
                if (u->db != 0)
                        fprintf(f, ",defaultDatabase=%d", u->db);
                if (u->service_name)
                        fprintf(f, ",serviceName=%s", u->service_name);
                if (u->connect_timeout_ms != CONNECT_TIMEOUT_DEFAULT_MS)
                        fprintf(f, ",connectTimeout=%d", u->connect_timeout_ms);
                if (!u->abort_connect)
                        fputs(",abortConnect=false", f);
        } else {
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
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

/* Append s[0..n) to the memstream. */
static void put_n(FILE *f, const char *s, size_t n) {
        fwrite(s, 1, n, f);
}

/* Does an unknown option name look like it holds a secret ("pasword", "pwd")? */
static bool key_looks_secret(const char *k, size_t len) {
        static const char *const words[] = { "pas", "pw", "secret", "token", "key", "auth", "cred" };
        for (size_t w = 0; w < ELEMENTSOF(words); w++) {
                size_t wl = strlen(words[w]);
                for (size_t i = 0; i + wl <= len; i++)
                        if (strncasecmp(k + i, words[w], wl) == 0)
                                return true;
        }
        return false;
}

char *redis_url_mask_string(const char *s) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f;
        const char *p;

        if (!s)
                return NULL;
        f = open_memstream(&buf, &size);
        if (!f)
                return NULL;

        p = s;
        const char *rest = url_rest(s);
        if (rest) {
                const char *at = strrchr(rest, '@');
                put_n(f, s, (size_t) (rest - s));
                if (at) {
                        const char *colon = memchr(rest, ':', (size_t) (at - rest));
                        if (colon && colon + 1 == at) /* "user:@": no password */
                                put_n(f, rest, (size_t) (at - rest));
                        else if (colon) {
                                put_n(f, rest, (size_t) (colon - rest));
                                fputs(":*****", f);
                        } else
                                fputs("*****", f);
                        fputc('@', f);
                        p = at + 1;
                } else
                        p = rest;
                /* Query parameters named password (redis-py style) */
                for (;;) {
                        const char *q = strpbrk(p, "?&");
                        if (!q) {
                                fputs(p, f);
                                break;
                        }
                        put_n(f, p, (size_t) (q + 1 - p));
                        p = q + 1;
                        if (has_prefix_ci(p, "password=")) {
                                fputs("password=*****", f);
                                p += strcspn(p, "&");
                        }
                }
        } else {
                /* StackExchange form: every password= element, same end rule as the parser. */
                for (;;) {
                        size_t n = element_len(p);
                        const char *t = p, *value;
                        size_t tl = n;
                        trim(&t, &tl);
                        if (known_option(t, tl, &value) == 0) {
                                put_n(f, p, (size_t) (value - p));
                                fputs("*****", f);
                                p = value + password_value_len(value);
                        } else {
                                /* An element that merely starts like "password" (a typo such as
                                 * "pasword=") is masked too: best effort, never leak. */
                                const char *eq = memchr(t, '=', tl);
                                put_n(f, p, eq ? (size_t) (eq + 1 - p) : n);
                                if (eq && key_looks_secret(t, (size_t) (eq - t)))
                                        fputs("*****", f);
                                else if (eq)
                                        put_n(f, eq + 1, (size_t) (p + n - (eq + 1)));
                                p += n;
                        }
                        if (*p == '\0')
                                break;
                        fputc(',', f);
                        p++;
                }
        }
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}
