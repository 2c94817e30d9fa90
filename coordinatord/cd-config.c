/* See cd-config.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "auth.h"
#include "cd-config.h"
#include "duration.h"
#include "parse-util.h"
#include "strutil.h"

static const struct config_field token_fields[] = {
        { .key = "name", .type = CONFIG_STRING, .offset = offsetof(struct cd_token, name), .required = true },
        { .key = "role", .type = CONFIG_STRING, .offset = offsetof(struct cd_token, role), .required = true },
        { .key = "sha256", .type = CONFIG_STRING, .offset = offsetof(struct cd_token, sha256) },
        { .key = "token", .type = CONFIG_SECRET, .offset = offsetof(struct cd_token, token) },
        {}
};

const struct config_field cd_config_fields[] = {
        { .key = "listen", .type = CONFIG_STRING, .offset = offsetof(struct cd_config, listen),
          .def = "127.0.0.1:8470", .env = "COORD_LISTEN" },
        { .key = "redis", .type = CONFIG_REDIS_URL, .offset = offsetof(struct cd_config, redis),
          .def = "redis://127.0.0.1:6379/0", .credential = "redis", .env = "COORD_REDIS" },
        CONFIG_TLS_FIELDS(struct cd_config, tls),
        { .key = "namespace", .type = CONFIG_STRING, .offset = offsetof(struct cd_config, namespace),
          .def = "default", .env = "COORD_NAMESPACE" },
        { .key = "id", .type = CONFIG_STRING, .offset = offsetof(struct cd_config, id) },
        { .key = "leader_lease", .type = CONFIG_DURATION, .offset = offsetof(struct cd_config, leader_lease),
          .def = "5s" },
        { .key = "deregister_after", .type = CONFIG_DURATION,
          .offset = offsetof(struct cd_config, deregister_after), .def = "10m" },
        { .key = "history_limit", .type = CONFIG_INT, .offset = offsetof(struct cd_config, history_limit),
          .def = "100", .min = 1, .max = 100000 },
        { .key = "tokens", .type = CONFIG_ARRAY, .offset = offsetof(struct cd_config, tokens),
          .sub = token_fields, .elem_size = sizeof(struct cd_token) },
        { .key = "insecure_no_auth", .type = CONFIG_BOOL, .offset = offsetof(struct cd_config, insecure_no_auth),
          .def = "false" },
        { .key = "max_connections", .type = CONFIG_INT, .offset = offsetof(struct cd_config, max_connections),
          .def = "512", .min = 1, .max = 65536 },
        { .key = "connection_timeout", .type = CONFIG_DURATION,
          .offset = offsetof(struct cd_config, connection_timeout), .def = "30s" },
        { .key = "http_threads", .type = CONFIG_INT, .offset = offsetof(struct cd_config, http_threads),
          .def = "4", .min = 1, .max = 64 },
        { .key = "max_connections_per_client", .type = CONFIG_INT,
          .offset = offsetof(struct cd_config, max_connections_per_client), .def = "256", .min = 1, .max = 65536 },
        { .key = "request_head_timeout", .type = CONFIG_DURATION,
          .offset = offsetof(struct cd_config, request_head_timeout), .def = "5s" },
        {}
};

int cd_listen_parse(const char *s, struct sockaddr_storage *ret, size_t *ret_len, bool *ret_loopback) {
        struct sockaddr_storage ss = {};
        char host[128];
        const char *colon, *h, *p;
        size_t hl;
        uint64_t port;

        if (!s || !*s)
                return -EINVAL;
        if (s[0] == '[') {
                const char *end = strchr(s, ']');
                if (!end || end[1] != ':')
                        return -EINVAL;
                h = s + 1;
                hl = (size_t) (end - h);
                p = end + 2;
        } else {
                colon = strrchr(s, ':');
                if (!colon)
                        return -EINVAL;
                h = s;
                hl = (size_t) (colon - s);
                p = colon + 1;
        }
        if (hl >= sizeof host)
                return -EINVAL;
        memcpy(host, h, hl);
        host[hl] = '\0';
        if (parse_uint64(p, &port) < 0 || port > 65535)
                return -EINVAL;

        if (hl == 0 || strcmp(host, "*") == 0)
                snprintf(host, sizeof host, "0.0.0.0");
        else if (strcmp(host, "localhost") == 0)
                snprintf(host, sizeof host, "127.0.0.1");

        struct sockaddr_in *in4 = (struct sockaddr_in *) &ss;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &ss;
        if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
                in4->sin_family = AF_INET;
                in4->sin_port = htons((uint16_t) port);
                *ret_loopback = (ntohl(in4->sin_addr.s_addr) >> 24) == 127;
                *ret_len = sizeof *in4;
        } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
                in6->sin6_family = AF_INET6;
                in6->sin6_port = htons((uint16_t) port);
                *ret_loopback = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
                *ret_len = sizeof *in6;
        } else
                return -EINVAL;
        *ret = ss;
        return 0;
}

static bool is_hex64(const char *s) {
        if (!s || strlen(s) != 64)
                return false;
        for (const char *c = s; *c; c++)
                if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f') || (*c >= 'A' && *c <= 'F')))
                        return false;
        return true;
}

int cd_config_load(const char *path, struct cd_config *ret, char *errbuf, size_t errlen) {
        struct cd_config c = {};
        struct sockaddr_storage ss;
        size_t sslen;
        bool loopback;
        int r;

        r = config_load(path, cd_config_fields, &c, errbuf, errlen);
        if (r < 0) {
                if (r != -EINVAL)
                        snprintf(errbuf, errlen, "%s: %s", path, strerror(-r));
                config_free(cd_config_fields, &c);
                return r;
        }

#define BAD(...)                                        \
        do {                                            \
                snprintf(errbuf, errlen, __VA_ARGS__);  \
                config_free(cd_config_fields, &c);      \
                return -EINVAL;                         \
        } while (0)

        if (cd_listen_parse(c.listen, &ss, &sslen, &loopback) < 0)
                BAD("%s: listen: '%s' is not HOST:PORT with an IP address", path, c.listen);
        if (!name_is_valid(c.namespace))
                BAD("%s: namespace: '%s' is not a valid name ([A-Za-z0-9._-], 1-%d characters)", path,
                    c.namespace, NAME_MAX_LEN);
        if (c.id && (strlen(c.id) == 0 || strlen(c.id) > 128 || strpbrk(c.id, "\r\n\"\\")))
                BAD("%s: id: must be 1-128 printable characters", path);
        if (c.leader_lease < 500 * USEC_PER_MSEC || c.leader_lease > 300 * USEC_PER_SEC)
                BAD("%s: leader_lease: must be between 500ms and 5m", path);
        if (c.deregister_after < USEC_PER_SEC)
                BAD("%s: deregister_after: must be at least 1s", path);
        if (c.connection_timeout < USEC_PER_SEC)
                BAD("%s: connection_timeout: must be at least 1s", path);
        if (c.request_head_timeout < USEC_PER_SEC || c.request_head_timeout > 300 * USEC_PER_SEC)
                BAD("%s: request_head_timeout: must be between 1s and 5m", path);
        for (size_t i = 0; i < c.n_tokens; i++) {
                struct cd_token *t = &c.tokens[i];
                if (role_from_string(t->role) < 0)
                        BAD("%s: tokens[%zu].role: '%s' is not one of read, deploy, admin", path, i, t->role);
                if (!!t->sha256 == !!t->token)
                        BAD("%s: tokens[%zu]: exactly one of sha256, token, token_file is required", path, i);
                if (t->sha256 && !is_hex64(t->sha256))
                        BAD("%s: tokens[%zu].sha256: not 64 hex digits", path, i);
                if (t->token && strlen(t->token) < 16)
                        BAD("%s: tokens[%zu].token: shorter than 16 characters", path, i);
        }
        if (c.n_tokens == 0 && !c.insecure_no_auth)
                BAD("%s: tokens: no tokens configured (set \"insecure_no_auth\": true to run without auth on a loopback address)",
                    path);
        if (c.n_tokens == 0 && c.insecure_no_auth && !loopback)
                BAD("%s: insecure_no_auth: only allowed when listen is a loopback address (listen is %s)", path,
                    c.listen);
#undef BAD
        r = config_tls_check(path, &c.tls, errbuf, errlen);
        if (r < 0) {
                config_free(cd_config_fields, &c);
                return r;
        }
        *ret = c;
        return 0;
}

void cd_config_free(struct cd_config *c) {
        config_free(cd_config_fields, c);
}
