/* Redis connection strings, both forms apps use:
 *   redis://[user:pass@]host:port[/db]   rediss:// (ssl)   unix:///path[?db=N]
 *   StackExchange.Redis: host:port[,host:port][,password=..][,user=..][,ssl=true|false]
 *     [,defaultDatabase=N][,serviceName=NAME][,connectTimeout=MS][,abortConnect=..]
 *     (option names case-insensitive; unknown options are errors).
 * With service_name set, the hosts are Redis Sentinels. */
#pragma once

#include "macro.h"

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
        char *service_name;     /* sentinel master name or NULL */
        int connect_timeout_ms; /* default 5000 */
        bool abort_connect;     /* StackExchange abortConnect; default true, informational */
        uint64_t deadline_usec; /* not parsed: a caller may set an absolute now_usec() deadline
                                 * for a whole redis_connect() (every sentinel and node tried,
                                 * every handshake step); 0 means none */
};

/* Parse s.  On failure returns -EINVAL and, if errbuf, writes a message naming
 * the bad part (never the password).  ret is untouched on failure. */
int redis_url_parse(const char *s, struct redis_url **ret, char *errbuf, size_t errlen);
struct redis_url *redis_url_free(struct redis_url *u);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct redis_url *, redis_url_free)
/* Render for humans with the password as "*****", in redis:// form (or the
 * StackExchange form when service_name or several hosts are set); caller frees. */
char *redis_url_to_string_masked(const struct redis_url *u);
/* Mask the password inside an arbitrary connection string of either form without
 * fully validating it (for config values shown by the API); caller frees. */
char *redis_url_mask_string(const char *s);
