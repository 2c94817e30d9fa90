/* coordinatord's configuration file (CONTRACT.md "coordinatord configuration"),
 * described as a lib/conf-parser.h schema. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf-parser.h"
#include "tls.h"

struct cd_token {
        char *name;
        char *role;   /* "read", "deploy" or "admin" */
        char *sha256; /* hex SHA-256 of the token, or NULL */
        char *token;  /* the token itself (from "token" or "token_file"), or NULL */
};

struct cd_config {
        char *listen;              /* "127.0.0.1:8470" */
        char *redis;               /* connection string (secret: password masked) */
        struct tls_options tls;    /* tls_* keys (or COORD_TLS_*, or the tls_key credential), checked */
        char *namespace;           /* "default" */
        char *id;                  /* NULL: host name + pid */
        uint64_t leader_lease;     /* usec */
        uint64_t deregister_after; /* usec */
        int64_t history_limit;
        struct cd_token *tokens;
        size_t n_tokens;
        bool insecure_no_auth;
        int64_t max_connections;     /* concurrent HTTP connections */
        uint64_t connection_timeout; /* idle HTTP connection timeout, usec */
        int64_t http_threads;        /* libmicrohttpd worker threads */
        int64_t max_connections_per_client; /* per client address (IPv6: per /64) */
        uint64_t request_head_timeout;      /* a request head must arrive within this, usec */
};

extern const struct config_field cd_config_fields[];

/* Load and check path (or the environment overrides alone when the file is
 * missing and allow_missing).  Cross-field checks (token roles, sha256 form,
 * auth required off loopback) are done here.  0, or -EINVAL / -errno with a
 * message naming the culprit in errbuf. */
int cd_config_load(const char *path, struct cd_config *ret, char *errbuf, size_t errlen);
void cd_config_free(struct cd_config *c);

/* Parse "host:port" / "[v6]:port" into a sockaddr (IP literals, "localhost").
 * Sets *ret_loopback.  0 or -EINVAL. */
struct sockaddr_storage;
int cd_listen_parse(const char *s, struct sockaddr_storage *ret, size_t *ret_len, bool *ret_loopback);
