/* The HTTP edge's decisions, as pure functions: which connections to admit
 * (global limit, per-client share, the reserve), which request heads to
 * refuse before routing (method syntax, head size, message framing).  No I/O
 * and no libmicrohttpd: http.c calls them (under its lock where they touch
 * the client table) and tests/unit/test-http.c drives them as tables. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "macro.h"

#define HTTP_URI_MAX (8 * 1024)      /* request target; longer: 414 */
#define HTTP_HEAD_MAX (16 * 1024)    /* request line + headers; larger: 431 */
#define HTTP_HEADERS_MAX 100         /* header fields; more: 431 */
#define HTTP_METHOD_MAX 32
/* While only the reserve is left, a client gets a connection only while it
 * holds fewer than this many: a health probe, or an operator whose
 * `coordctl deploy` holds one event stream, still gets in. */
#define HTTP_RESERVE_HELD_MAX 2

/* Why a connection was refused or closed by the edge (metrics label). */
enum http_reject {
        HTTP_REJECT_PER_CLIENT,
        HTTP_REJECT_LIMIT,
        HTTP_REJECT_HEAD_TIMEOUT,
        _HTTP_REJECT_MAX,
        HTTP_ADMIT = -1,
};
const char *http_reject_to_string(enum http_reject r);
int http_reject_from_string(const char *s);

struct http_limits {
        unsigned max;        /* max_connections */
        unsigned per_client; /* max_connections_per_client */
        unsigned reserve;    /* the last slots, kept for clients holding < HTTP_RESERVE_HELD_MAX */
};
/* The reserve for a max_connections value: 1/16 of it. */
unsigned http_reserve_for(unsigned max);
/* Admit a new connection from a client that holds `held` of the `total` open
 * ones?  HTTP_ADMIT or the reason to refuse. */
enum http_reject http_guard_admit(const struct http_limits *l, unsigned total, unsigned held);

/* A client for the per-client share: an IPv4 address, or the /64 of an IPv6
 * one (one host usually owns a whole /64).  IPv4-mapped IPv6 counts as IPv4. */
struct http_client {
        uint8_t b[16];
};
/* 0, or -EAFNOSUPPORT for anything but AF_INET / AF_INET6 (then *ret is the
 * all-zero client: every such socket shares one share). */
int http_client_from_sockaddr(const struct sockaddr *sa, socklen_t len, struct http_client *ret);
/* "192.0.2.1" or "2001:db8:1:2::/64". */
void http_client_to_string(const struct http_client *c, char *buf, size_t size);

/* Connection counts per client, for the clients holding at least one.
 * Not thread-safe: the caller locks. */
struct http_clients;
/* Room for `capacity` distinct clients at once.  0 or -ENOMEM. */
int http_clients_new(size_t capacity, struct http_clients **ret);
struct http_clients *http_clients_free(struct http_clients *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct http_clients *, http_clients_free)
/* How many connections c holds. */
unsigned http_clients_held(const struct http_clients *t, const struct http_client *c);
/* One more for c (copied, not kept): 0, or -ENOSPC when capacity distinct
 * clients already hold some. */
int http_clients_add(struct http_clients *t, const struct http_client *c);
/* One fewer for c (its entry goes at zero); -ENOENT when it holds none. */
int http_clients_remove(struct http_clients *t, const struct http_client *c);

/* An RFC 9110 token of 1..HTTP_METHOD_MAX characters: safe to quote anywhere. */
bool http_method_is_valid(const char *method);

/* The request head's size checks: 0, 414 or 431 (ret_what: a message). */
unsigned http_guard_head(size_t uri_len, size_t head_size, size_t n_headers, const char **ret_what);

/* Message framing (RFC 9112 section 6.3) from every Content-Length and
 * Transfer-Encoding field of the request: refuses both together, several
 * Transfer-Encodings, any coding but "chunked", Transfer-Encoding in
 * HTTP/1.0 and Content-Lengths that differ or are not plain digits.  0 with
 * *ret_length (0 when chunked) and *ret_chunked, or -EINVAL with *ret_what. */
struct http_framing_in {
        const char *version;   /* "HTTP/1.1" */
        const char *const *cl; /* the Content-Length values */
        size_t n_cl;
        const char *const *te; /* the Transfer-Encoding values */
        size_t n_te;
};
int http_guard_framing(const struct http_framing_in *in, uint64_t *ret_length, bool *ret_chunked,
                       const char **ret_what);
