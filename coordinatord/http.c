/* See http.h. */
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "cleanup.h"
#include "coordinatord.h"
#include "duration.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "strutil.h"

/* A chunked upload (no Content-Length) cannot be answered before it ends
 * (libmicrohttpd queues responses only before or after the body): past the
 * limit it is discarded as it streams, never buffered, and answered 413 at
 * its end; past this much the connection is dropped instead. */
#define HTTP_DISCARD_MAX (16 * 1024 * 1024)
#define HTTP_SEGMENTS_MAX 8

struct route_pattern {
        char seg[HTTP_SEGMENTS_MAX][128];
        size_t n;
};

struct httpd {
        struct server *s;
        struct MHD_Daemon *daemon;
        const struct route *routes;
        struct route_pattern *patterns; /* routes[i].pattern, split once */
        size_t n_routes;
};

static size_t split_path(const char *url, char seg[HTTP_SEGMENTS_MAX][128], size_t *ret_n) {
        size_t n = 0;
        const char *p = url;

        if (*p != '/')
                return 0;
        while (*p == '/') {
                const char *start = ++p;
                while (*p && *p != '/')
                        p++;
                if (n >= HTTP_SEGMENTS_MAX)
                        return 0;
                size_t len = (size_t) (p - start);
                if (len >= 128)
                        len = 127; /* still invalid for name_is_valid (too long) */
                memcpy(seg[n], start, len);
                seg[n][len] = '\0';
                n++;
        }
        *ret_n = n;
        return 1;
}

/* Match url against the table: the route, or NULL with *ret_path_matched when
 * another method would match (405). */
static const struct route *route_match(const struct httpd *h, const char *method, const char *url,
                                       size_t *ret_index, char *param, size_t param_size, bool *ret_path_matched,
                                       char *allow, size_t allow_size) {
        char seg[HTTP_SEGMENTS_MAX][128];
        size_t n = 0;

        *ret_path_matched = false;
        allow[0] = '\0';
        if (!split_path(url, seg, &n))
                return NULL;

        for (size_t i = 0; i < h->n_routes; i++) {
                const struct route *r = &h->routes[i];
                const struct route_pattern *pt = &h->patterns[i];
                const char *p = NULL;

                if (pt->n != n)
                        continue;
                bool ok = true;
                for (size_t k = 0; k < n && ok; k++) {
                        if (strcmp(pt->seg[k], "{}") == 0)
                                p = seg[k];
                        else if (strcmp(pt->seg[k], seg[k]) != 0)
                                ok = false;
                }
                if (!ok)
                        continue;
                if (strcmp(r->method, method) != 0 &&
                    !(strcmp(method, "HEAD") == 0 && strcmp(r->method, "GET") == 0)) {
                        *ret_path_matched = true;
                        size_t l = strlen(allow);
                        snprintf(allow + l, allow_size - l, "%s%s", l ? ", " : "", r->method);
                        continue;
                }
                *ret_index = i;
                snprintf(param, param_size, "%s", p ? p : "");
                return r;
        }
        return NULL;
}

void http_reply(struct request *req, unsigned status, const char *content_type, char *body,
                const char *const *headers) {
        struct MHD_Response *resp;
        size_t len = body ? strlen(body) : 0;

        if (req->status != 0) {
                free(body);
                return;
        }
        resp = MHD_create_response_from_buffer(len, body ? body : (char *) "",
                                               body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
        if (!resp) {
                free(body);
                return;
        }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                content_type ? content_type : "application/json");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
        if (status == 401)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"coord\"");
        for (size_t i = 0; headers && headers[i] && headers[i + 1]; i += 2)
                MHD_add_response_header(resp, headers[i], headers[i + 1]);
        if (MHD_queue_response(req->conn, status, resp) == MHD_YES)
                req->status = status;
        MHD_destroy_response(resp);
}

void http_reply_static(struct request *req, unsigned status, const char *body) {
        struct MHD_Response *resp;

        if (req->status != 0)
                return;
        resp = MHD_create_response_from_buffer(strlen(body), (void *) body, MHD_RESPMEM_PERSISTENT);
        if (!resp)
                return;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
        if (MHD_queue_response(req->conn, status, resp) == MHD_YES)
                req->status = status;
        MHD_destroy_response(resp);
}

void http_reply_shared(struct request *req, unsigned status, const char *data, size_t len,
                       void (*free_cb)(void *cls), void *cls) {
        struct MHD_Response *resp;

        if (req->status != 0) {
                free_cb(cls);
                return;
        }
        resp = MHD_create_response_from_buffer_with_free_callback_cls(len, (void *) data, free_cb, cls);
        if (!resp) {
                free_cb(cls);
                return;
        }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
        if (MHD_queue_response(req->conn, status, resp) == MHD_YES)
                req->status = status;
        MHD_destroy_response(resp);
}

void http_reply_stream(struct request *req, unsigned status, const char *content_type, http_stream_read read,
                       void *cls, void (*free_cb)(void *cls)) {
        struct MHD_Response *resp;

        if (req->status != 0) {
                free_cb(cls);
                return;
        }
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, read, cls, free_cb);
        if (!resp) {
                free_cb(cls);
                return;
        }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
        MHD_add_response_header(resp, "X-Accel-Buffering", "no");
        if (MHD_queue_response(req->conn, status, resp) == MHD_YES)
                req->status = status;
        MHD_destroy_response(resp);
}

void http_reply_json_headers(struct request *req, unsigned status, json_t *v, const char *const *headers) {
        char *body = NULL;

        if (v) {
                char *s = json_dumps(v, JSON_COMPACT);
                json_decref(v);
                if (s) {
                        body = strdup_printf("%s\n", s);
                        free(s);
                }
        }
        if (!body) {
                http_reply(req, 500, NULL,
                           strdup("{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}\n"), NULL);
                return;
        }
        http_reply(req, status, NULL, body, headers);
}

void http_reply_json(struct request *req, unsigned status, json_t *v) {
        http_reply_json_headers(req, status, v, NULL);
}

void http_reply_error(struct request *req, unsigned status, const char *code, const char *fmt, ...) {
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        /* Messages quote client input, which may be cut mid-character or not be UTF-8
         * at all: keep printable ASCII so the error is always valid JSON. */
        for (char *p = msg; *p; p++)
                if ((unsigned char) *p < 0x20 || (unsigned char) *p >= 0x7f)
                        *p = '?';
        http_reply_json(req, status, json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg));
}

void http_reply_unavailable(struct request *req, const char *what) {
        http_reply_error(req, 503, "unavailable", "%s: Redis is unavailable, retry later", what);
}

const char *http_query(struct request *req, const char *key) {
        return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *http_header(struct request *req, const char *name) {
        return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

struct query_check {
        const char *const *allowed;
        const char *bad;
        size_t count;
};

static enum MHD_Result query_iter(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
        struct query_check *q = cls;

        q->count++;
        for (size_t i = 0; q->allowed && q->allowed[i]; i++)
                if (strcmp(q->allowed[i], key) == 0)
                        return MHD_YES;
        q->bad = key;
        return MHD_NO;
}

static bool content_type_is_json(const char *ct) {
        size_t n = strlen("application/json");

        if (!ct)
                return false;
        while (*ct == ' ')
                ct++;
        if (strncasecmp(ct, "application/json", n) != 0)
                return false;
        return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

/* The first call for a request: everything decided from the headers.  false
 * when the request is refused: the error is queued (or, if even that failed,
 * the connection is closed at the end); the handler never runs. */
static bool request_begin(struct httpd *h, struct request *req, const char *url, const char *method) {
        const char *cl, *te;
        char allow[64];
        bool path_matched;
        enum role role;

        req->route = route_match(h, method, url, &req->route_index, req->param, sizeof req->param, &path_matched,
                                 allow, sizeof allow);
        if (!req->route) {
                req->route_index = h->n_routes;
                if (path_matched) {
                        const char *hdr[] = { "Allow", allow, NULL };
                        _cleanup_free_ char *msg = strdup_printf("%.16s is not allowed here (allowed: %s)", method, allow);
                        http_reply_json_headers(req, 405,
                                                json_pack("{s:{s:s,s:s?}}", "error", "code", "method_not_allowed",
                                                          "message", msg),
                                                hdr);
                } else
                        http_reply_error(req, 404, "not_found", "no such endpoint");
                return false;
        }

        if (req->route->role != ROLE_NONE) {
                role = auth_check(req->s->auth, http_header(req, MHD_HTTP_HEADER_AUTHORIZATION), &req->token_name);
                req->role = role;
                if (role == ROLE_NONE) {
                        http_reply_error(req, 401, "unauthorized", "a valid bearer token is required");
                        return false;
                }
                if (role < req->route->role) {
                        http_reply_error(req, 403, "forbidden", "this needs the %s role (token '%s' has %s)",
                                         role_to_string(req->route->role), req->token_name ? req->token_name : "",
                                         role_to_string(role));
                        return false;
                }
        }

        if (strstr(req->route->pattern, "{}") && !name_is_valid(req->param)) {
                http_reply_error(req, 400, "bad_request",
                                 "invalid name in path: names are 1-%d characters from [A-Za-z0-9._-], starting with a letter or digit",
                                 NAME_MAX_LEN);
                return false;
        }

        struct query_check q = { .allowed = req->route->query };
        MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, query_iter, &q);
        if (q.bad) {
                http_reply_error(req, 400, "bad_request", "unknown query parameter '%.64s'", q.bad);
                return false;
        }

        cl = http_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
        te = http_header(req, MHD_HTTP_HEADER_TRANSFER_ENCODING);
        uint64_t len = 0;
        if (cl && parse_uint64(cl, &len) < 0) {
                http_reply_error(req, 400, "bad_request", "invalid Content-Length");
                return false;
        }
        if (len > HTTP_BODY_MAX) {
                req->discard = true;
                http_reply_error(req, 413, "payload_too_large", "request body over %d bytes", HTTP_BODY_MAX);
                return false;
        }
        req->chunked = te && strcasecmp(te, "identity") != 0;
        if ((len > 0 || req->chunked) && !content_type_is_json(http_header(req, MHD_HTTP_HEADER_CONTENT_TYPE))) {
                req->discard = true;
                http_reply_error(req, 415, "unsupported_media_type", "the request body must be application/json");
                return false;
        }
        return true;
}

/* The last call: the body is complete; parse it and run the handler. */
static void request_finish(struct request *req) {
        const struct route *r = req->route;

        if (req->body_len > 0) {
                json_error_t err;

                if (!r->fields) {
                        http_reply_error(req, 400, "bad_request", "this endpoint takes no request body");
                        return;
                }
                req->json = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &err);
                if (!req->json) {
                        http_reply_error(req, 400, "bad_request", "malformed JSON at line %d column %d: %s",
                                         err.line, err.column, err.text);
                        return;
                }
                if (!json_is_object(req->json)) {
                        http_reply_error(req, 400, "bad_request", "the request body must be a JSON object");
                        return;
                }
                const char *key;
                json_t *v;
                json_object_foreach(req->json, key, v) {
                        bool known = false;
                        for (size_t i = 0; r->fields[i]; i++)
                                if (strcmp(r->fields[i], key) == 0)
                                        known = true;
                        if (!known) {
                                /* Echo the client's own key unmasked: masking it would let a
                                 * caller probe for registered secrets. */
                                http_reply_error(req, 400, "bad_request", "%.64s: unknown field", key);
                                return;
                        }
                }
        } else if (r->body_required) {
                http_reply_error(req, 400, "bad_request", "a JSON request body is required");
                return;
        }
        r->handler(req);
        if (req->status == 0)
                http_reply_error(req, 500, "internal", "no response");
}

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                      const char *version, const char *upload_data, size_t *upload_data_size,
                                      void **con_cls) {
        struct httpd *h = cls;
        struct request *req = *con_cls;

        if (!req) {
                req = calloc(1, sizeof *req);
                if (!req)
                        return MHD_NO;
                req->s = h->s;
                req->conn = conn;
                req->start_usec = now_usec();
                *con_cls = req;
                req->denied = !request_begin(h, req, url, method);
                return MHD_YES;
        }

        if (*upload_data_size > 0) {
                size_t n = *upload_data_size;
                *upload_data_size = 0;
                if (req->status != 0 || req->discard) {
                        /* Already answered: drop what still arrives, bounded. */
                        req->body_len += n;
                        return req->body_len > HTTP_DISCARD_MAX ? MHD_NO : MHD_YES;
                }
                if (req->body_len + n > HTTP_BODY_MAX) {
                        req->discard = true;
                        free(req->body);
                        req->body = NULL;
                        req->body_len = n;
                        return MHD_YES;
                }
                char *nb = realloc(req->body, req->body_len + n + 1);
                if (!nb)
                        return MHD_NO;
                memcpy(nb + req->body_len, upload_data, n);
                req->body = nb;
                req->body_len += n;
                req->body[req->body_len] = '\0';
                return MHD_YES;
        }

        if (req->status != 0)
                return MHD_YES;
        if (req->denied)
                return MHD_NO; /* refused but the error could not be queued: close */
        if (req->discard) {
                http_reply_error(req, 413, "payload_too_large", "request body over %d bytes", HTTP_BODY_MAX);
                return MHD_YES;
        }
        request_finish(req);
        return MHD_YES;
}

static void request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                              enum MHD_RequestTerminationCode toe) {
        struct httpd *h = cls;
        struct request *req = *con_cls;

        if (!req)
                return;
        if (log_get_max_level() >= LOG_DEBUG)
                log_debug("%s %s -> %u in %llu us (token %s)", req->route ? req->route->method : "-",
                          req->route ? req->route->pattern : "(unmatched)", req->status,
                          (unsigned long long) (now_usec() - req->start_usec),
                          req->token_name ? req->token_name : "-");
        metrics_http_observe(req->route_index < h->n_routes ? req->route_index : h->n_routes,
                             req->status ? req->status : 499, now_usec() - req->start_usec);
        if (req->json)
                json_decref(req->json);
        free(req->body);
        free(req);
        *con_cls = NULL;
}

/* Never unescape: every valid name is plain, so a '%' left in a path parameter
 * fails validation instead of smuggling "/", ".." or NUL into it. */
static size_t unescape_none(void *cls, struct MHD_Connection *c, char *s) {
        return strlen(s);
}

/* While starting, libmicrohttpd's messages explain a failure (bind errors);
 * afterwards they are about misbehaving clients: debug level. */
static atomic_bool mhd_started;

static void mhd_logger(void *cls, const char *fmt, va_list ap) {
        char buf[512];

        vsnprintf(buf, sizeof buf, fmt, ap);
        buf[strcspn(buf, "\n")] = '\0';
        if (atomic_load(&mhd_started))
                log_debug("libmicrohttpd: %s", buf);
        else
                log_error("libmicrohttpd: %s", buf);
}

int httpd_start(struct server *s, const struct route *routes, size_t n_routes, struct httpd **ret) {
        struct sockaddr_storage ss;
        size_t sslen;
        bool loopback;
        struct httpd *h;
        /* Suspend/resume: event streams wait without holding a thread (sse.h). */
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;

        if (cd_listen_parse(s->cfg.listen, &ss, &sslen, &loopback) < 0)
                return log_error_errno(EINVAL, "Invalid listen address %s", s->cfg.listen);
        if (ss.ss_family == AF_INET6)
                flags |= MHD_USE_IPv6;

        h = calloc(1, sizeof *h);
        if (!h)
                return -ENOMEM;
        h->s = s;
        h->routes = routes;
        h->n_routes = n_routes;
        h->patterns = calloc(n_routes, sizeof *h->patterns);
        if (!h->patterns) {
                free(h);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n_routes; i++)
                if (!split_path(routes[i].pattern, h->patterns[i].seg, &h->patterns[i].n)) {
                        free(h->patterns);
                        free(h);
                        return log_error_errno(EINVAL, "Bad route pattern %s", routes[i].pattern);
                }

        h->daemon = MHD_start_daemon(flags, 0, NULL, NULL, access_handler, h,
                                     MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, NULL,
                                     MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &ss,
                                     MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned) 1,
                                     MHD_OPTION_THREAD_POOL_SIZE, (unsigned) s->cfg.http_threads,
                                     MHD_OPTION_CONNECTION_LIMIT, (unsigned) s->cfg.max_connections,
                                     MHD_OPTION_CONNECTION_TIMEOUT,
                                     (unsigned) (s->cfg.connection_timeout / USEC_PER_SEC),
                                     MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) (64 * 1024),
                                     MHD_OPTION_NOTIFY_COMPLETED, request_completed, h,
                                     MHD_OPTION_UNESCAPE_CALLBACK, unescape_none, NULL,
                                     MHD_OPTION_END);
        if (!h->daemon) {
                free(h->patterns);
                free(h);
                return log_error_errno(EADDRINUSE, "Failed to listen on %s (address in use or not available)",
                                       s->cfg.listen);
        }
        atomic_store(&mhd_started, true);
        *ret = h;
        return 0;
}

unsigned httpd_port(const struct httpd *h) {
        const union MHD_DaemonInfo *i = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
        return i ? i->port : 0;
}

struct httpd *httpd_stop(struct httpd *h) {
        if (!h)
                return NULL;
        if (h->daemon)
                MHD_stop_daemon(h->daemon);
        free(h->patterns);
        free(h);
        return NULL;
}
