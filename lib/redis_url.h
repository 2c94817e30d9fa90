/* Redis connection strings, both forms apps use:
 *   redis://[user:pass@]host:port[/db]   rediss:// (ssl)   unix:///path[?db=N]
 *   StackExchange.Redis: host:port[,host:port][,password=..][,user=..][,ssl=true|false]
 *     [,sslHost=NAME][,defaultDatabase=N][,serviceName=NAME][,connectTimeout=MS]
 *     [,abortConnect=..] (option names case-insensitive; unknown options are errors).
 * With service_name set, the hosts are Redis Sentinels. */
#pragma once

#include "macro.h"
#include "secret.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REDIS_URL_MAX_HOSTS 16
#define REDIS_DEFAULT_PORT 6379
#define REDIS_SENTINEL_DEFAULT_PORT 26379

struct redis_endpoint {
        char *host;
        int port;
};

struct redis_url {
        struct redis_endpoint hosts[REDIS_URL_MAX_HOSTS];
        size_t n_hosts;
        char *unix_path;        /* unix:///path; then n_hosts == 0 */
        char *user;             /* ACL user or NULL */
        char *password;         /* NULL when none */
        int db;                 /* SELECT; default 0 */
        bool ssl;
        char *ssl_host;         /* sslHost=: the TLS server name (SNI, verified name) or NULL for the host's */
        char *service_name;     /* sentinel master name or NULL */
        int connect_timeout_ms; /* default 5000 */
        bool abort_connect;     /* StackExchange abortConnect; default true, informational */
        uint64_t deadline_usec; /* not parsed: a caller may set an absolute now_usec() deadline
                                 * for a whole redis_connect() (every sentinel and node tried,
                                 * every handshake step); 0 means none */
};

/* Parse s.  On failure returns -EINVAL and, if errbuf, writes a message naming
 * the bad part and its role; it never quotes text that could be a password
 * (userinfo, password= values, option values, host parts that do not parse).
 * ret is untouched on failure. */
int redis_url_parse(const char *s, struct redis_url **ret, char *errbuf, size_t errlen);
struct redis_url *redis_url_free(struct redis_url *u);
/* The connect timeout of u in ms: connect_timeout_ms, or the default (5000) when it is 0
 * (a struct not made by redis_url_parse()).  Every connect reads it through this. */
int redis_url_connect_timeout_ms(const struct redis_url *u);
/* A deep copy of u (caller frees with redis_url_free()); NULL on OOM. */
struct redis_url *redis_url_dup(const struct redis_url *u);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct redis_url *, redis_url_free)
/* Render for humans with the password as "*****", in redis:// form (or the
 * StackExchange form when service_name, ssl_host or several hosts are set);
 * caller frees. */
char *redis_url_to_string_masked(const struct redis_url *u);
/* Call fn for each span of s that the parser reads as a password: of a string
 * starting with scheme://, the userinfo (to the last '@', or "@/" for unix://)
 * after its first ':', or all of it without one; of any other string, every
 * StackExchange password= value, trimmed.  Lexical: also for a string that
 * redis_url_parse() rejects.  Spans point into s, are non-empty and in order.
 * secret_foreach() builds on it. */
void redis_url_foreach_password(const char *s, secret_span_fn fn, void *userdata);
