/* The HTTP layer: libmicrohttpd glue, the connection edge, routing,
 * authentication, input limits and the error shape {"error":{"code","message"}}.
 *
 * Connections: accepted only within max_connections, max_connections_per_client
 * and the reserve (http-guard.h); each request head must be complete within
 * request_head_timeout of the connection opening or of the previous response
 * (else 408 and close), whatever trickles in meanwhile.
 *
 * Every request then goes through the same gate, in this order, before a
 * handler sees it: method syntax (400), head size (414, 431), framing (400:
 * Content-Length with Transfer-Encoding, conflicting Content-Lengths), route
 * (404, or 405 with Allow), bearer token (401, 403), path parameter charset
 * (400), query parameters (400), declared body size (413, answered before the
 * body is read), content type (415), a body where none is taken (400), body
 * size while reading (413), JSON syntax, type and unknown fields (400).
 * Handlers run on libmicrohttpd's worker threads. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "auth.h"

#define HTTP_BODY_MAX (64 * 1024)

struct server;
struct request;
struct httpd;

typedef void (*route_handler)(struct request *req);

struct route {
        const char *method;
        const char *pattern;        /* "/v1/instances/{}/drain": "{}" is one path parameter */
        const char *label;          /* for metrics: "/v1/instances/{id}/drain" */
        enum role role;             /* ROLE_NONE: no token needed */
        route_handler handler;
        const char *const *query;   /* allowed query parameters (NULL-terminated), or NULL */
        const char *const *fields;  /* allowed body fields (NULL-terminated); NULL: no body accepted */
        bool body_required;
};

struct request {
        struct server *s;
        struct MHD_Connection *conn;
        const struct route *route;
        size_t route_index;
        char param[128];            /* the path parameter, validated by name_is_valid() */
        enum role role;
        const char *token_name;
        char *body;
        size_t body_len;
        uint64_t content_length;    /* declared (0 when chunked) */
        bool chunked;
        json_t *json;               /* parsed body (object) or NULL */
        uint64_t start_usec;
        unsigned status;            /* 0 until a response was queued */
        bool discard;
        bool denied;                /* refused by the gate: the handler never runs */
};

/* Start serving on the configured address with the route table.  routes and
 * server must outlive the httpd.  0 or -errno (logged). */
int httpd_start(struct server *s, const struct route *routes, size_t n_routes, struct httpd **ret);
/* Stop accepting, finish in-flight requests, join the threads. Accepts NULL. */
struct httpd *httpd_stop(struct httpd *h);
/* The bound port (for listen port 0). */
unsigned httpd_port(const struct httpd *h);
/* Open connections now (0 for NULL). */
unsigned httpd_connections(struct httpd *h);

/* The routing step of the gate, on its own (tests): the route of routes[] whose
 * pattern and method match url (HEAD matches GET), its index in *ret_index and
 * its path parameter (or "") in param; else NULL, with *ret_path_matched set
 * and the methods that would match in allow ("GET, POST") when only the method
 * differs (405), or clear (404).  *ret_path_matched and allow mean something
 * only when NULL is returned.  NULL too for a bad pattern or on OOM. */
const struct route *http_route_match(const struct route *routes, size_t n_routes, const char *method,
                                     const char *url, size_t *ret_index, char *param, size_t param_size,
                                     bool *ret_path_matched, char *allow, size_t allow_size);

/* Queue a response.  body (malloc'd) is taken over; content_type NULL means
 * application/json.  headers: NULL or NULL-terminated name/value pairs. */
void http_reply(struct request *req, unsigned status, const char *content_type, char *body,
                const char *const *headers);
/* Reply with a JSON value (reference stolen); newline-terminated. */
void http_reply_json(struct request *req, unsigned status, json_t *v);
void http_reply_json_headers(struct request *req, unsigned status, json_t *v, const char *const *headers);
/* Reply with a constant JSON body (static storage, not copied). */
void http_reply_static(struct request *req, unsigned status, const char *body);
/* Reply with a shared buffer that stays alive until sent: free_cb(cls) is
 * called once libmicrohttpd no longer needs it. */
void http_reply_shared(struct request *req, unsigned status, const char *data, size_t len,
                       void (*free_cb)(void *cls), void *cls);
/* Reply with a stream: read(cls, pos, buf, max) is called on a libmicrohttpd
 * thread for more data (libmicrohttpd's MHD_ContentReaderCallback contract:
 * bytes written, 0 after suspending the connection, or
 * MHD_CONTENT_READER_END_OF_STREAM); free_cb(cls) once the response is gone,
 * also when queuing failed. */
typedef ssize_t (*http_stream_read)(void *cls, uint64_t pos, char *buf, size_t max);
void http_reply_stream(struct request *req, unsigned status, const char *content_type, http_stream_read read,
                       void *cls, void (*free_cb)(void *cls));
/* The error shape.  code: "bad_request", "unauthorized", "forbidden", "not_found",
 * "method_not_allowed", "conflict", "payload_too_large", "unsupported_media_type",
 * "uri_too_long", "header_fields_too_large", "unprocessable", "unavailable",
 * "internal" ("request_timeout" is written raw by the head deadline).  The
 * message is cut to printable ASCII. */
void http_reply_error(struct request *req, unsigned status, const char *code, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
/* Shorthand for 503 "Redis unavailable". */
void http_reply_unavailable(struct request *req, const char *what);

/* A query parameter (not unescaped: every name this API takes is plain), or NULL. */
const char *http_query(struct request *req, const char *key);
/* A request header, or NULL. */
const char *http_header(struct request *req, const char *name);
