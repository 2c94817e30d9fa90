/* See http.h. */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "coordinatord.h"
#include "duration.h"
#include "http-guard.h"
#include "http.h"
#include "log.h"
#include "macro.h"
#include "metrics.h"
#include "strutil.h"

/* A chunked upload (no Content-Length) cannot be answered before it ends
 * (libmicrohttpd queues responses only before or after the body): past the
 * limit it is discarded as it streams, never buffered, and answered 413 at
 * its end; past this much the connection is dropped instead. */
#define HTTP_DISCARD_MAX (16 * 1024 * 1024)
#define HTTP_SEGMENTS_MAX 8
/* How often the loop closes connections past their request head deadline. */
#define HTTP_SWEEP_USEC (250 * USEC_PER_MSEC)
/* At most one warning about refused connections per this long. */
#define HTTP_REFUSED_LOG_USEC (10 * USEC_PER_SEC)

struct route_pattern {
        char seg[HTTP_SEGMENTS_MAX][128];
        size_t n;
};

/* One accepted connection, libmicrohttpd's socket context: from
 * MHD_CONNECTION_NOTIFY_STARTED to _CLOSED.  Guarded by httpd.lock. */
struct http_conn {
        struct http_conn *prev, *next; /* in httpd.waiting while a request head is awaited */
        struct http_client client;
        int fd;
        bool counted;                  /* holds a share in httpd.clients */
        bool waiting;
        bool line_seen;                /* this request's line arrived: expiry answers 408 */
        bool expired;                  /* closed by the head deadline */
        uint64_t deadline;             /* while waiting, usec */
        uint64_t line_usec;            /* when the request line arrived */
        size_t uri_len;
};

struct httpd {
        struct server *s;
        struct MHD_Daemon *daemon;
        const struct route *routes;
        struct route_pattern *patterns; /* routes[i].pattern, split once */
        size_t n_routes;
        struct http_limits limits;
        uint64_t head_timeout;
        char timeout_reply[512];        /* the raw 408 */
        size_t timeout_reply_len;
        sd_event_source *sweep;         /* on the main loop */
        uint64_t logged_usec;           /* last refusal warning (main loop only) */
        atomic_uint_fast64_t refused[_HTTP_REJECT_MAX]; /* not yet in a warning */

        pthread_mutex_t lock;           /* guards what follows and every http_conn */
        struct http_clients *clients;
        unsigned n_conns;
        struct http_conn *waiting_first, *waiting_last; /* by deadline */
        struct http_client last_refused;
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

/* Match url against routes with their split patterns: the route, or NULL with
 * *ret_path_matched when another method would match (405). */
static const struct route *routes_match(const struct route *routes, const struct route_pattern *patterns,
                                        size_t n_routes, const char *method, const char *url, size_t *ret_index,
                                        char *param, size_t param_size, bool *ret_path_matched, char *allow,
                                        size_t allow_size) {
        char seg[HTTP_SEGMENTS_MAX][128];
        size_t n = 0;

        *ret_path_matched = false;
        allow[0] = '\0';
        if (!split_path(url, seg, &n))
                return NULL;

        for (size_t i = 0; i < n_routes; i++) {
                const struct route *r = &routes[i];
                const struct route_pattern *pt = &patterns[i];
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

static const struct route *route_match(const struct httpd *h, const char *method, const char *url,
                                       size_t *ret_index, char *param, size_t param_size, bool *ret_path_matched,
                                       char *allow, size_t allow_size) {
        return routes_match(h->routes, h->patterns, h->n_routes, method, url, ret_index, param, param_size,
                            ret_path_matched, allow, allow_size);
}

const struct route *http_route_match(const struct route *routes, size_t n_routes, const char *method,
                                     const char *url, size_t *ret_index, char *param, size_t param_size,
                                     bool *ret_path_matched, char *allow, size_t allow_size) {
        _cleanup_free_ struct route_pattern *patterns = calloc(n_routes ? n_routes : 1, sizeof *patterns);

        *ret_path_matched = false;
        allow[0] = '\0';
        if (!patterns)
                return NULL;
        for (size_t i = 0; i < n_routes; i++)
                if (!split_path(routes[i].pattern, patterns[i].seg, &patterns[i].n))
                        return NULL;
        return routes_match(routes, patterns, n_routes, method, url, ret_index, param, param_size, ret_path_matched,
                            allow, allow_size);
}

/* Add the headers every response carries, plus headers (NULL or
 * name/value pairs), queue resp and drop our reference to it. */
static void reply_queue(struct request *req, unsigned status, struct MHD_Response *resp, const char *content_type,
                        const char *const *headers) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type ? content_type : "application/json");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
        for (size_t i = 0; headers && headers[i] && headers[i + 1]; i += 2)
                MHD_add_response_header(resp, headers[i], headers[i + 1]);
        if (MHD_queue_response(req->conn, status, resp) == MHD_YES)
                req->status = status;
        MHD_destroy_response(resp);
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
        if (status == 401)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"coord\"");
        reply_queue(req, status, resp, content_type, headers);
}

void http_reply_static(struct request *req, unsigned status, const char *body) {
        struct MHD_Response *resp;

        if (req->status != 0)
                return;
        resp = MHD_create_response_from_buffer(strlen(body), (void *) body, MHD_RESPMEM_PERSISTENT);
        if (resp)
                reply_queue(req, status, resp, NULL, NULL);
}

void http_reply_shared(struct request *req, unsigned status, const char *data, size_t len,
                       void (*free_cb)(void *cls), void *cls) {
        struct MHD_Response *resp = NULL;

        if (req->status == 0)
                resp = MHD_create_response_from_buffer_with_free_callback_cls(len, (void *) data, free_cb, cls);
        if (!resp) {
                free_cb(cls);
                return;
        }
        reply_queue(req, status, resp, NULL, NULL);
}

void http_reply_stream(struct request *req, unsigned status, const char *content_type, http_stream_read read,
                       void *cls, void (*free_cb)(void *cls)) {
        static const char *const no_buffering[] = { "X-Accel-Buffering", "no", NULL };
        struct MHD_Response *resp = NULL;

        if (req->status == 0)
                resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, read, cls, free_cb);
        if (!resp) {
                free_cb(cls);
                return;
        }
        reply_queue(req, status, resp, content_type, no_buffering);
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

static void reply_errorv(struct request *req, unsigned status, const char *code, const char *const *headers,
                         const char *fmt, va_list ap) {
        char msg[512];

        vsnprintf(msg, sizeof msg, fmt, ap);
        /* Messages quote client input, which may be cut mid-character or not be UTF-8
         * at all: keep printable ASCII so the error is always valid JSON. */
        for (char *p = msg; *p; p++)
                if ((unsigned char) *p < 0x20 || (unsigned char) *p >= 0x7f)
                        *p = '?';
        http_reply_json_headers(req, status, json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg),
                                headers);
}

void http_reply_error(struct request *req, unsigned status, const char *code, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        reply_errorv(req, status, code, NULL, fmt, ap);
        va_end(ap);
}

static _printf_(5, 6) void reply_error_headers(struct request *req, unsigned status, const char *code,
                                               const char *const *headers, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        reply_errorv(req, status, code, headers, fmt, ap);
        va_end(ap);
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

/* ---- connections: admission, request head deadlines ---- */

static socklen_t sockaddr_len(const struct sockaddr *sa) {
        if (sa && sa->sa_family == AF_INET6)
                return sizeof(struct sockaddr_in6);
        return sizeof(struct sockaddr_in);
}

static struct http_conn *conn_state(struct MHD_Connection *conn) {
        const union MHD_ConnectionInfo *i = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        return i ? i->socket_context : NULL;
}

/* Count n refusals for the metrics and the next warning (any thread). */
static void edge_refused(struct httpd *h, enum http_reject why, uint64_t n) {
        metrics_http_rejected(why, n);
        atomic_fetch_add(&h->refused[why], n);
}

/* Lock held, for both. */
static void wait_unlink(struct httpd *h, struct http_conn *c) {
        if (!c->waiting)
                return;
        if (c->prev)
                c->prev->next = c->next;
        else
                h->waiting_first = c->next;
        if (c->next)
                c->next->prev = c->prev;
        else
                h->waiting_last = c->prev;
        c->prev = c->next = NULL;
        c->waiting = false;
}

/* Start the clock for the next request head.  Every deadline is the time read
 * here, under the lock, plus the same timeout: appending keeps the list sorted. */
static void wait_arm(struct httpd *h, struct http_conn *c) {
        wait_unlink(h, c);
        c->deadline = now_usec() + h->head_timeout;
        c->line_seen = false;
        c->uri_len = 0;
        c->prev = h->waiting_last;
        if (h->waiting_last)
                h->waiting_last->next = c;
        else
                h->waiting_first = c;
        h->waiting_last = c;
        c->waiting = true;
}

/* libmicrohttpd's accept policy: the global limit, the reserve, the
 * per-client share.  A refused socket is closed at once, before it costs a
 * connection slot or memory. */
static enum MHD_Result accept_policy(void *cls, const struct sockaddr *addr, socklen_t addrlen) {
        struct httpd *h = cls;
        struct http_client cl;
        enum http_reject why;

        (void) http_client_from_sockaddr(addr, addrlen, &cl);
        pthread_mutex_lock(&h->lock);
        why = http_guard_admit(&h->limits, h->n_conns, http_clients_held(h->clients, &cl));
        if (why != HTTP_ADMIT)
                h->last_refused = cl;
        pthread_mutex_unlock(&h->lock);
        if (why == HTTP_ADMIT)
                return MHD_YES;
        edge_refused(h, why, 1);
        return MHD_NO;
}

static void conn_started(struct httpd *h, struct MHD_Connection *conn, void **socket_context) {
        const union MHD_ConnectionInfo *addr = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        const union MHD_ConnectionInfo *fd = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        const struct sockaddr *sa = addr ? addr->client_addr : NULL;
        struct http_conn *c = calloc(1, sizeof *c);

        if (!c)
                return; /* served, but neither counted nor timed */
        c->fd = fd ? fd->connect_fd : -1;
        (void) http_client_from_sockaddr(sa, sockaddr_len(sa), &c->client);
        pthread_mutex_lock(&h->lock);
        c->counted = http_clients_add(h->clients, &c->client) >= 0;
        h->n_conns++;
        wait_arm(h, c);
        pthread_mutex_unlock(&h->lock);
        *socket_context = c;
}

/* libmicrohttpd closes the socket only after this returns: holding the lock
 * here is what makes the sweep's shutdown() of c->fd safe. */
static void conn_closed(struct httpd *h, void **socket_context) {
        struct http_conn *c = *socket_context;

        if (!c)
                return;
        pthread_mutex_lock(&h->lock);
        wait_unlink(h, c);
        if (c->counted)
                (void) http_clients_remove(h->clients, &c->client);
        h->n_conns--;
        pthread_mutex_unlock(&h->lock);
        free(c);
        *socket_context = NULL;
}

static void notify_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                              enum MHD_ConnectionNotificationCode what) {
        if (what == MHD_CONNECTION_NOTIFY_STARTED)
                conn_started(cls, conn, socket_context);
        else if (what == MHD_CONNECTION_NOTIFY_CLOSED)
                conn_closed(cls, socket_context);
}

/* The request line arrived (the headers have not yet). */
static void *uri_logged(void *cls, const char *uri, struct MHD_Connection *conn) {
        struct httpd *h = cls;
        struct http_conn *c = conn_state(conn);

        if (c) {
                pthread_mutex_lock(&h->lock);
                c->line_seen = true;
                c->line_usec = now_usec();
                c->uri_len = uri ? strlen(uri) : 0;
                pthread_mutex_unlock(&h->lock);
        }
        return NULL; /* keeps *con_cls NULL for the access handler's first call */
}

/* The request head is complete: stop its clock.  false when the deadline
 * closed the connection meanwhile; then it must not be answered. */
static bool head_arrived(struct httpd *h, struct http_conn *c, size_t *ret_uri_len) {
        bool ok = true;

        *ret_uri_len = 0;
        if (!c)
                return true;
        pthread_mutex_lock(&h->lock);
        wait_unlink(h, c);
        ok = !c->expired;
        *ret_uri_len = c->uri_len;
        pthread_mutex_unlock(&h->lock);
        return ok;
}

/* Close a connection whose request head is late (lock held).  A client that
 * sent its request line gets a 408 first.  shutdown() wakes libmicrohttpd,
 * which reads the end of the stream and closes the connection itself. */
static void conn_expire(struct httpd *h, struct http_conn *c) {
        wait_unlink(h, c);
        c->expired = true;
        h->last_refused = c->client;
        if (c->fd < 0)
                return;
        if (c->line_seen)
                (void) send(c->fd, h->timeout_reply, h->timeout_reply_len, MSG_DONTWAIT | MSG_NOSIGNAL);
        (void) shutdown(c->fd, SHUT_RDWR);
}

/* The warning about refusals, at most every HTTP_REFUSED_LOG_USEC, with the
 * counts since the last one (main loop). */
static void refused_log(struct httpd *h, uint64_t now) {
        uint64_t n[_HTTP_REJECT_MAX], total = 0;
        char who[64];

        if (h->logged_usec != 0 && now < h->logged_usec + HTTP_REFUSED_LOG_USEC)
                return;
        for (int i = 0; i < _HTTP_REJECT_MAX; i++)
                total += n[i] = atomic_exchange(&h->refused[i], 0);
        if (total == 0)
                return;
        pthread_mutex_lock(&h->lock);
        http_client_to_string(&h->last_refused, who, sizeof who);
        pthread_mutex_unlock(&h->lock);
        log_warning("HTTP: %llu connections refused or closed (per_client %llu, limit %llu, head_timeout %llu; "
                    "last from %s): see max_connections_per_client, max_connections, request_head_timeout",
                    (unsigned long long) total, (unsigned long long) n[HTTP_REJECT_PER_CLIENT],
                    (unsigned long long) n[HTTP_REJECT_LIMIT], (unsigned long long) n[HTTP_REJECT_HEAD_TIMEOUT],
                    who);
        h->logged_usec = now;
}

static int on_sweep(sd_event_source *es, uint64_t usec, void *userdata) {
        struct httpd *h = userdata;
        uint64_t now, n = 0;

        pthread_mutex_lock(&h->lock);
        now = now_usec();
        while (h->waiting_first && h->waiting_first->deadline <= now) {
                conn_expire(h, h->waiting_first);
                n++;
        }
        pthread_mutex_unlock(&h->lock);
        if (n > 0)
                edge_refused(h, HTTP_REJECT_HEAD_TIMEOUT, n);
        refused_log(h, now);
        (void) sd_event_source_set_time(es, usec + HTTP_SWEEP_USEC);
        return 0;
}

/* ---- requests: the gate ---- */

/* The framing and size facts of the request's header fields. */
struct header_scan {
        const char *cl[HTTP_HEADERS_MAX];
        const char *te[HTTP_HEADERS_MAX];
        size_t n_cl, n_te, n;
};

static enum MHD_Result header_scan_iter(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
        struct header_scan *hs = cls;

        if (hs->n++ >= HTTP_HEADERS_MAX)
                return MHD_NO; /* refused by http_guard_head() anyway */
        if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
                hs->cl[hs->n_cl++] = value ? value : "";
        else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0)
                hs->te[hs->n_te++] = value ? value : "";
        return MHD_YES;
}

/* Protocol checks before routing: method syntax (400), head sizes (414,
 * 431), message framing (400). */
static bool request_check_protocol(struct request *req, const char *method, const char *version, size_t uri_len) {
        struct header_scan hs = {};
        const union MHD_ConnectionInfo *head;
        const char *what;
        unsigned status;

        if (!http_method_is_valid(method)) {
                http_reply_error(req, 400, "bad_request", "the request method is not a valid token");
                return false;
        }
        MHD_get_connection_values(req->conn, MHD_HEADER_KIND, header_scan_iter, &hs);
        head = MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
        status = http_guard_head(uri_len, head ? head->header_size : 0, hs.n, &what);
        if (status != 0) {
                http_reply_error(req, status, status == 414 ? "uri_too_long" : "header_fields_too_large", "%s", what);
                return false;
        }
        struct http_framing_in in = {
                .version = version, .cl = hs.cl, .n_cl = hs.n_cl, .te = hs.te, .n_te = hs.n_te,
        };
        if (http_guard_framing(&in, &req->content_length, &req->chunked, &what) < 0) {
                http_reply_error(req, 400, "bad_request", "%s", what);
                return false;
        }
        return true;
}

/* Route (404, or 405 with Allow). */
static bool request_check_route(struct httpd *h, struct request *req, const char *url, const char *method) {
        char allow[64];
        bool path_matched;

        req->route = route_match(h, method, url, &req->route_index, req->param, sizeof req->param, &path_matched,
                                 allow, sizeof allow);
        if (req->route)
                return true;
        if (path_matched) {
                const char *hdr[] = { "Allow", allow, NULL };
                reply_error_headers(req, 405, "method_not_allowed", hdr, "%.16s is not allowed here (allowed: %s)",
                                    method, allow);
        } else
                http_reply_error(req, 404, "not_found", "no such endpoint");
        return false;
}

/* Bearer token (401, 403). */
static bool request_check_auth(struct request *req) {
        enum role role;

        if (req->route->role == ROLE_NONE)
                return true;
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
        return true;
}

/* Path parameter and query parameters (400). */
static bool request_check_params(struct request *req) {
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
        return true;
}

/* The declared body: size (413), type (415), whether the route takes one
 * (400): all answered before a byte of it is read. */
static bool request_check_body(struct request *req) {
        bool has_body = req->content_length > 0 || req->chunked;

        if (req->content_length > HTTP_BODY_MAX) {
                req->discard = true;
                http_reply_error(req, 413, "payload_too_large", "request body over %d bytes", HTTP_BODY_MAX);
                return false;
        }
        if (has_body && !content_type_is_json(http_header(req, MHD_HTTP_HEADER_CONTENT_TYPE))) {
                req->discard = true;
                http_reply_error(req, 415, "unsupported_media_type", "the request body must be application/json");
                return false;
        }
        if (has_body && !req->route->fields) {
                req->discard = true;
                http_reply_error(req, 400, "bad_request", "this endpoint takes no request body");
                return false;
        }
        return true;
}

/* The last call: the body is complete; parse it and run the handler. */
static void request_finish(struct request *req) {
        const struct route *r = req->route;

        if (req->body_len > 0) {
                json_error_t err;

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

/* The first call for a request: the head is complete; everything decided from
 * it.  A refused request gets its error queued (or, if even that failed, the
 * connection is closed at the end); its handler never runs. */
static enum MHD_Result request_first(struct httpd *h, struct MHD_Connection *conn, const char *url,
                                     const char *method, const char *version, void **con_cls) {
        struct request *req;
        size_t uri_len;

        if (!head_arrived(h, conn_state(conn), &uri_len))
                return MHD_NO;
        req = calloc(1, sizeof *req);
        if (!req)
                return MHD_NO;
        req->s = h->s;
        req->conn = conn;
        req->route_index = h->n_routes; /* "unmatched" until routed */
        req->start_usec = now_usec();
        *con_cls = req;
        req->denied = !request_check_protocol(req, method, version, uri_len) ||
                      !request_check_route(h, req, url, method) || !request_check_auth(req) ||
                      !request_check_params(req) || !request_check_body(req);
        return MHD_YES;
}

static enum MHD_Result request_upload(struct request *req, const char *data, size_t *size) {
        size_t n = *size;

        *size = 0;
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
        memcpy(nb + req->body_len, data, n);
        req->body = nb;
        req->body_len += n;
        req->body[req->body_len] = '\0';
        return MHD_YES;
}

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                      const char *version, const char *upload_data, size_t *upload_data_size,
                                      void **con_cls) {
        struct httpd *h = cls;
        struct request *req = *con_cls;

        if (!req)
                return request_first(h, conn, url, method, version, con_cls);
        if (*upload_data_size > 0)
                return request_upload(req, upload_data, upload_data_size);
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

/* A request libmicrohttpd answered by itself (a malformed or oversized head,
 * see docs/api.md): counted as unmatched with the status it sent. */
static void library_answer_observe(struct httpd *h, struct MHD_Connection *conn, const struct http_conn *c) {
        const union MHD_ConnectionInfo *st = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_HTTP_STATUS);

        if (st && c && c->line_seen)
                metrics_http_observe(h->n_routes, st->http_status, now_usec() - c->line_usec);
}

static void request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                              enum MHD_RequestTerminationCode toe) {
        struct httpd *h = cls;
        struct request *req = *con_cls;
        struct http_conn *c = conn_state(conn);

        if (!req)
                library_answer_observe(h, conn, c);
        if (c) {
                /* Kept alive: the next request head is due within the timeout too. */
                pthread_mutex_lock(&h->lock);
                if (!c->expired)
                        wait_arm(h, c);
                pthread_mutex_unlock(&h->lock);
        }
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

/* ---- the daemon ---- */

static void timeout_reply_init(struct httpd *h) {
        char d[DURATION_MAX], body[192];
        int n;

        n = snprintf(body, sizeof body,
                     "{\"error\":{\"code\":\"request_timeout\",\"message\":\"the request head did not arrive within %s\"}}\n",
                     duration_format(h->head_timeout, d, sizeof d));
        n = snprintf(h->timeout_reply, sizeof h->timeout_reply,
                     "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: application/json\r\n"
                     "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nContent-Length: %d\r\n\r\n%s",
                     n, body);
        h->timeout_reply_len = (size_t) n;
}

static struct httpd *httpd_free(struct httpd *h) {
        if (!h)
                return NULL;
        if (h->daemon)
                MHD_stop_daemon(h->daemon); /* its last callbacks still take the lock */
        h->sweep = sd_event_source_disable_unref(h->sweep);
        http_clients_free(h->clients);
        pthread_mutex_destroy(&h->lock);
        free(h->patterns);
        free(h);
        return NULL;
}

/* Everything but the daemon: routes, limits, the client table, the sweep. */
static int httpd_new(struct server *s, const struct route *routes, size_t n_routes, struct httpd **ret) {
        struct httpd *h = calloc(1, sizeof *h);
        int r;

        if (!h)
                return -ENOMEM;
        pthread_mutex_init(&h->lock, NULL);
        h->s = s;
        h->routes = routes;
        h->n_routes = n_routes;
        h->limits = (struct http_limits) {
                .max = (unsigned) s->cfg.max_connections,
                .per_client = (unsigned) s->cfg.max_connections_per_client,
                .reserve = http_reserve_for((unsigned) s->cfg.max_connections),
        };
        h->head_timeout = s->cfg.request_head_timeout;
        timeout_reply_init(h);
        h->patterns = calloc(n_routes, sizeof *h->patterns);
        r = h->patterns ? http_clients_new(h->limits.max + 64 + (size_t) s->cfg.http_threads, &h->clients) : -ENOMEM;
        if (r < 0) {
                httpd_free(h);
                return r;
        }
        for (size_t i = 0; i < n_routes; i++)
                if (!split_path(routes[i].pattern, h->patterns[i].seg, &h->patterns[i].n)) {
                        httpd_free(h);
                        return log_error_errno(EINVAL, "Bad route pattern %s", routes[i].pattern);
                }
        r = sd_event_add_time(s->event, &h->sweep, CLOCK_MONOTONIC, now_usec() + HTTP_SWEEP_USEC, 10 * USEC_PER_MSEC,
                              on_sweep, h);
        if (r >= 0)
                r = sd_event_source_set_enabled(h->sweep, SD_EVENT_ON);
        if (r < 0) {
                httpd_free(h);
                return log_error_errno(r, "Failed to set up the HTTP request head timer: %m");
        }
        *ret = h;
        return 0;
}

int httpd_start(struct server *s, const struct route *routes, size_t n_routes, struct httpd **ret) {
        struct sockaddr_storage ss;
        size_t sslen;
        bool loopback;
        struct httpd *h = NULL;
        /* Suspend/resume: event streams wait without holding a thread (sse.h). */
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
        /* accept_policy() enforces max_connections; libmicrohttpd's own limit,
         * split evenly over the threads, must never bind first (at its limit it
         * stops accepting, and the backlog then locks everyone out). */
        unsigned threads = (unsigned) s->cfg.http_threads;
        unsigned mhd_limit = ((unsigned) s->cfg.max_connections + threads) * threads;
        int r;

        if (cd_listen_parse(s->cfg.listen, &ss, &sslen, &loopback) < 0)
                return log_error_errno(EINVAL, "Invalid listen address %s", s->cfg.listen);
        if (ss.ss_family == AF_INET6)
                flags |= MHD_USE_IPv6;
        r = httpd_new(s, routes, n_routes, &h);
        if (r < 0)
                return r;

        h->daemon = MHD_start_daemon(flags, 0, accept_policy, h, access_handler, h,
                                     MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, NULL,
                                     MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &ss,
                                     MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned) 1,
                                     MHD_OPTION_THREAD_POOL_SIZE, threads,
                                     MHD_OPTION_CONNECTION_LIMIT, mhd_limit,
                                     MHD_OPTION_CONNECTION_TIMEOUT,
                                     (unsigned) (s->cfg.connection_timeout / USEC_PER_SEC),
                                     MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) (64 * 1024),
                                     MHD_OPTION_NOTIFY_CONNECTION, notify_connection, h,
                                     MHD_OPTION_URI_LOG_CALLBACK, uri_logged, h,
                                     MHD_OPTION_NOTIFY_COMPLETED, request_completed, h,
                                     MHD_OPTION_UNESCAPE_CALLBACK, unescape_none, NULL,
                                     MHD_OPTION_END);
        if (!h->daemon) {
                httpd_free(h);
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

unsigned httpd_connections(struct httpd *h) {
        unsigned n;

        if (!h)
                return 0;
        pthread_mutex_lock(&h->lock);
        n = h->n_conns;
        pthread_mutex_unlock(&h->lock);
        return n;
}

struct httpd *httpd_stop(struct httpd *h) {
        return httpd_free(h);
}
