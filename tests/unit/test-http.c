/* Unit tests for coordinatord/http-guard.c: connection admission (limit,
 * per-client share, reserve), client keys, the per-client table, and the
 * request head checks (method, sizes, framing); and the routing of
 * coordinatord/http.c over api.c's table (http_route_match()). */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "coordinatord/api.h"
#include "coordinatord/http-guard.h"
#include "coordinatord/http.h"
#include "test-main.h"

START_TEST(test_admit_table) {
        static const struct {
                unsigned max, per_client, reserve, total, held;
                enum http_reject want;
        } t[] = {
                { 512, 256, 32, 0, 0, HTTP_ADMIT },
                { 512, 256, 32, 479, 200, HTTP_ADMIT },           /* below the reserve */
                { 512, 256, 32, 480, 200, HTTP_REJECT_LIMIT },    /* the reserve: not for a holder */
                { 512, 256, 32, 480, 2, HTTP_REJECT_LIMIT },
                { 512, 256, 32, 480, 1, HTTP_ADMIT },             /* ...but for one holding one */
                { 512, 256, 32, 480, 0, HTTP_ADMIT },             /* ...or none */
                { 512, 256, 32, 511, 0, HTTP_ADMIT },
                { 512, 256, 32, 512, 0, HTTP_REJECT_LIMIT },      /* full */
                { 512, 256, 32, 600, 0, HTTP_REJECT_LIMIT },
                { 512, 256, 32, 10, 256, HTTP_REJECT_PER_CLIENT },
                { 512, 256, 32, 512, 256, HTTP_REJECT_PER_CLIENT }, /* the share is named first */
                { 4, 256, 0, 3, 3, HTTP_ADMIT },                  /* no reserve below 16 */
                { 4, 256, 0, 4, 0, HTTP_REJECT_LIMIT },
                { 32, 20, 2, 30, 0, HTTP_ADMIT },
                { 32, 20, 2, 31, 1, HTTP_ADMIT },
                { 32, 20, 2, 31, 2, HTTP_REJECT_LIMIT },
                { 32, 1, 2, 0, 1, HTTP_REJECT_PER_CLIENT },
        };

        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
                struct http_limits l = { .max = t[i].max, .per_client = t[i].per_client, .reserve = t[i].reserve };
                ck_assert_msg(http_guard_admit(&l, t[i].total, t[i].held) == t[i].want, "case %zu", i);
        }
        ck_assert_uint_eq(http_reserve_for(512), 32);
        ck_assert_uint_eq(http_reserve_for(15), 0);
        ck_assert_uint_eq(http_reserve_for(32), 2);
}
END_TEST

START_TEST(test_reject_strings) {
        ck_assert_str_eq(http_reject_to_string(HTTP_REJECT_PER_CLIENT), "per_client");
        ck_assert_str_eq(http_reject_to_string(HTTP_REJECT_LIMIT), "limit");
        ck_assert_str_eq(http_reject_to_string(HTTP_REJECT_HEAD_TIMEOUT), "head_timeout");
        ck_assert_ptr_null(http_reject_to_string(HTTP_ADMIT));
        ck_assert_int_eq(http_reject_from_string("limit"), HTTP_REJECT_LIMIT);
        ck_assert_int_eq(http_reject_from_string("nope"), -EINVAL);
}
END_TEST

static struct http_client client_of(const char *addr) {
        struct sockaddr_storage ss = {};
        struct http_client c;
        socklen_t len;

        if (strchr(addr, ':')) {
                struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &ss;
                in6->sin6_family = AF_INET6;
                ck_assert_int_eq(inet_pton(AF_INET6, addr, &in6->sin6_addr), 1);
                len = sizeof *in6;
        } else {
                struct sockaddr_in *in4 = (struct sockaddr_in *) &ss;
                in4->sin_family = AF_INET;
                ck_assert_int_eq(inet_pton(AF_INET, addr, &in4->sin_addr), 1);
                len = sizeof *in4;
        }
        ck_assert_int_eq(http_client_from_sockaddr((struct sockaddr *) &ss, len, &c), 0);
        return c;
}

static bool same_client(const char *a, const char *b) {
        struct http_client x = client_of(a), y = client_of(b);
        return memcmp(&x, &y, sizeof x) == 0;
}

START_TEST(test_client_keys) {
        char buf[64];
        struct http_client c;
        struct sockaddr_un_like { sa_family_t f; char path[108]; } un = { .f = AF_UNIX };

        ck_assert(same_client("192.0.2.1", "192.0.2.1"));
        ck_assert(!same_client("192.0.2.1", "192.0.2.2"));
        ck_assert(same_client("2001:db8:1:2::1", "2001:db8:1:2:ffff::9")); /* one /64 */
        ck_assert(!same_client("2001:db8:1:2::1", "2001:db8:1:3::1"));
        ck_assert(same_client("::ffff:192.0.2.1", "192.0.2.1"));           /* v4-mapped */
        ck_assert(!same_client("::", "0.0.0.0"));

        c = client_of("192.0.2.1");
        http_client_to_string(&c, buf, sizeof buf);
        ck_assert_str_eq(buf, "192.0.2.1");
        c = client_of("2001:db8:1:2::77");
        http_client_to_string(&c, buf, sizeof buf);
        ck_assert_str_eq(buf, "2001:db8:1:2::/64");

        ck_assert_int_eq(http_client_from_sockaddr((struct sockaddr *) &un, sizeof un, &c), -EAFNOSUPPORT);
        ck_assert_int_eq(http_client_from_sockaddr(NULL, 0, &c), -EAFNOSUPPORT);
        /* A truncated sockaddr is not read past its length. */
        struct sockaddr_in6 in6 = { .sin6_family = AF_INET6 };
        ck_assert_int_eq(http_client_from_sockaddr((struct sockaddr *) &in6, sizeof(struct sockaddr_in), &c),
                         -EAFNOSUPPORT);
}
END_TEST

START_TEST(test_clients_basic) {
        _cleanup_(http_clients_freep) struct http_clients *t = NULL;
        struct http_client a = client_of("10.0.0.1"), b = client_of("10.0.0.2"), c = client_of("10.0.0.3");

        ck_assert_int_eq(http_clients_new(2, &t), 0);
        ck_assert_uint_eq(http_clients_held(t, &a), 0);
        ck_assert_int_eq(http_clients_add(t, &a), 0);
        ck_assert_int_eq(http_clients_add(t, &a), 0);
        ck_assert_int_eq(http_clients_add(t, &b), 0);
        ck_assert_uint_eq(http_clients_held(t, &a), 2);
        ck_assert_uint_eq(http_clients_held(t, &b), 1);
        ck_assert_int_eq(http_clients_add(t, &c), -ENOSPC); /* two distinct clients at most */
        ck_assert_int_eq(http_clients_add(t, &b), 0);       /* more for a known one is fine */
        ck_assert_int_eq(http_clients_remove(t, &c), -ENOENT);
        ck_assert_int_eq(http_clients_remove(t, &a), 0);
        ck_assert_int_eq(http_clients_remove(t, &a), 0);
        ck_assert_int_eq(http_clients_remove(t, &a), -ENOENT);
        ck_assert_int_eq(http_clients_add(t, &c), 0); /* a's entry is free again */
        ck_assert_uint_eq(http_clients_held(t, &c), 1);
        ck_assert_uint_eq(http_clients_held(t, &b), 2);
}
END_TEST

/* Random adds and removes over many clients in a small table (long probe runs,
 * wrap-around, backward-shift deletion) against a plain array. */
START_TEST(test_clients_model) {
        enum { N = 200, CAP = 150, OPS = 60000 };
        _cleanup_(http_clients_freep) struct http_clients *t = NULL;
        static unsigned model[N];
        struct http_client keys[N];
        unsigned seed = 12345, distinct = 0;

        memset(model, 0, sizeof model);
        for (int i = 0; i < N; i++) {
                keys[i] = (struct http_client) {};
                keys[i].b[0] = (uint8_t) (i * 37);
                keys[i].b[1] = (uint8_t) (i >> 3);
                keys[i].b[3] = (uint8_t) i;
        }
        ck_assert_int_eq(http_clients_new(CAP, &t), 0);
        for (int op = 0; op < OPS; op++) {
                seed = seed * 1103515245 + 12345;
                int k = (int) ((seed >> 8) % N);
                bool add = ((seed >> 20) & 3) != 0 || model[k] == 0;
                if (add) {
                        int r = http_clients_add(t, &keys[k]);
                        if (model[k] == 0 && distinct >= CAP)
                                ck_assert_int_eq(r, -ENOSPC);
                        else {
                                ck_assert_int_eq(r, 0);
                                distinct += model[k]++ == 0;
                        }
                } else {
                        ck_assert_int_eq(http_clients_remove(t, &keys[k]), 0);
                        distinct -= --model[k] == 0;
                }
                if (op % 251 == 0)
                        for (int i = 0; i < N; i++)
                                ck_assert_uint_eq(http_clients_held(t, &keys[i]), model[i]);
                if (op % 5000 == 4999) /* drain now and then so removals dominate */
                        for (int i = 0; i < N; i++)
                                while (model[i] > 0) {
                                        ck_assert_int_eq(http_clients_remove(t, &keys[i]), 0);
                                        distinct -= --model[i] == 0;
                                }
        }
}
END_TEST

START_TEST(test_method) {
        static const struct {
                const char *m;
                bool ok;
        } t[] = {
                { "GET", true }, { "HEAD", true }, { "BREW", true }, { "M-SEARCH", true }, { "X_Y.Z!#$%&'*+^`|~", true },
                { "", false }, { "G\xc3\xa9T", false }, { "G\xe9T", false }, { "GE T", false }, { "GE(T", false },
                { "GET\r", false }, { "G\"T", false }, { "GET/", false }, { "G:T", false },
                { "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", true },   /* 32 */
                { "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", false }, /* 33 */
        };

        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
                ck_assert_msg(http_method_is_valid(t[i].m) == t[i].ok, "method %zu", i);
        ck_assert(!http_method_is_valid(NULL));
}
END_TEST

START_TEST(test_head_sizes) {
        const char *what = NULL;

        ck_assert_uint_eq(http_guard_head(8192, 16384, 100, &what), 0);
        ck_assert_uint_eq(http_guard_head(8193, 100, 1, &what), 414);
        ck_assert_str_eq(what, "the request target is longer than 8192 bytes");
        ck_assert_uint_eq(http_guard_head(10, 16385, 1, &what), 431);
        ck_assert_uint_eq(http_guard_head(10, 100, 101, &what), 431);
        ck_assert_str_eq(what, "more than 100 header fields");
        ck_assert_uint_eq(http_guard_head(9000, 20000, 200, &what), 414); /* the target first */
}
END_TEST

#define V(...) ((const char *const[]) { __VA_ARGS__ })

START_TEST(test_framing) {
        const struct {
                const char *version;
                const char *const *cl;
                size_t n_cl;
                const char *const *te;
                size_t n_te;
                int want;
                uint64_t len;
                bool chunked;
                const char *what;
        } t[] = {
                { "HTTP/1.1", NULL, 0, NULL, 0, 0, 0, false, NULL },
                { "HTTP/1.1", V("12"), 1, NULL, 0, 0, 12, false, NULL },
                { "HTTP/1.1", V("12", "12"), 2, NULL, 0, 0, 12, false, NULL },
                { "HTTP/1.1", V("0"), 1, NULL, 0, 0, 0, false, NULL },
                { "HTTP/1.1", V("18446744073709551615"), 1, NULL, 0, 0, UINT64_MAX, false, NULL },
                { "HTTP/1.1", V("18446744073709551616"), 1, NULL, 0, -EINVAL, 0, false, "invalid Content-Length" },
                { "HTTP/1.1", V("2", "12"), 2, NULL, 0, -EINVAL, 0, false, "conflicting Content-Length headers" },
                { "HTTP/1.1", V("12", "12", "13"), 3, NULL, 0, -EINVAL, 0, false, "conflicting Content-Length headers" },
                { "HTTP/1.1", V("12", "x"), 2, NULL, 0, -EINVAL, 0, false, "invalid Content-Length" },
                { "HTTP/1.1", V("+5"), 1, NULL, 0, -EINVAL, 0, false, "invalid Content-Length" },
                { "HTTP/1.1", V(""), 1, NULL, 0, -EINVAL, 0, false, "invalid Content-Length" },
                { "HTTP/1.1", NULL, 0, V("chunked"), 1, 0, 0, true, NULL },
                { "HTTP/1.1", NULL, 0, V("Chunked"), 1, 0, 0, true, NULL },
                { "HTTP/1.1", V("5"), 1, V("chunked"), 1, -EINVAL, 0, false, "both Transfer-Encoding and Content-Length" },
                { "HTTP/1.1", NULL, 0, V("chunked", "chunked"), 2, -EINVAL, 0, false,
                  "Transfer-Encoding must be exactly \"chunked\"" },
                { "HTTP/1.1", NULL, 0, V("gzip, chunked"), 1, -EINVAL, 0, false,
                  "Transfer-Encoding must be exactly \"chunked\"" },
                { "HTTP/1.1", NULL, 0, V("identity"), 1, -EINVAL, 0, false,
                  "Transfer-Encoding must be exactly \"chunked\"" },
                { "HTTP/1.0", NULL, 0, V("chunked"), 1, -EINVAL, 0, false, "Transfer-Encoding in an HTTP/1.0 request" },
                { "HTTP/1.0", V("3"), 1, NULL, 0, 0, 3, false, NULL },
        };

        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
                struct http_framing_in in = {
                        .version = t[i].version, .cl = t[i].cl, .n_cl = t[i].n_cl, .te = t[i].te, .n_te = t[i].n_te,
                };
                uint64_t len = 777;
                bool chunked = true;
                const char *what = NULL;
                int r = http_guard_framing(&in, &len, &chunked, &what);

                ck_assert_msg(r == t[i].want, "case %zu: %d", i, r);
                if (r == 0) {
                        ck_assert_msg(len == t[i].len && chunked == t[i].chunked, "case %zu", i);
                } else {
                        ck_assert_msg(len == 777 && chunked, "case %zu: outputs touched on failure", i);
                        ck_assert_str_eq(what, t[i].what);
                }
        }
}
END_TEST

/* Routing (http.c) over the real table of api.c: the route, its path
 * parameter, HEAD as GET, 405 with the allowed methods, 404. */
struct route_case {
        const char *method, *url;
        route_handler want;  /* NULL: no route */
        const char *param;   /* when routed */
        bool path_matched;   /* when not routed: 405 */
        const char *allow;   /* when not routed */
};

START_TEST(test_route_match) {
        static const struct route_case t[] = {
                { "GET", "/health/live", api_health_live, "", false, "" },
                { "HEAD", "/health/live", api_health_live, "", false, "" },
                { "GET", "/health/ready", api_health_ready, "", false, "" },
                { "GET", "/metrics", api_metrics, "", false, "" },
                { "GET", "/v1/instances", api_instances_list, "", false, "" },
                { "GET", "/v1/instances/web-1", api_instances_get, "web-1", false, "" },
                { "POST", "/v1/instances/web-1/drain", api_instances_drain, "web-1", false, "" },
                { "POST", "/v1/instances/web-1/undrain", api_instances_undrain, "web-1", false, "" },
                { "GET", "/v1/config/web", api_config_get, "web", false, "" },
                { "PUT", "/v1/config/web", api_config_put, "web", false, "" },
                { "POST", "/v1/deployments", api_deployments_create, "", false, "" },
                { "GET", "/v1/deployments", api_deployments_list, "", false, "" },
                { "GET", "/v1/deployments/d-7/events", api_deployments_events, "d-7", false, "" },
                { "POST", "/v1/deployments/d-7/revert", api_deployments_revert, "d-7", false, "" },
                { "GET", "/v1/migrations/web", api_migrations_get, "web", false, "" },
                /* An empty segment is a parameter too; its charset check (400) comes later. */
                { "GET", "/v1/instances/", api_instances_get, "", false, "" },
                /* 405: the path exists for other methods, listed in table order. */
                { "GET", "/v1/instances/web-1/drain", NULL, NULL, true, "POST" },
                { "DELETE", "/v1/config/web", NULL, NULL, true, "GET, PUT" },
                { "DELETE", "/v1/deployments", NULL, NULL, true, "POST, GET" },
                { "POST", "/health/live", NULL, NULL, true, "GET" },
                { "HEAD", "/v1/deployments/d-7/pause", NULL, NULL, true, "POST" },
                /* 404. */
                { "GET", "/v1/nope", NULL, NULL, false, "" },
                { "GET", "/v1/instances/web-1/drain/x", NULL, NULL, false, "" },
                { "GET", "/", NULL, NULL, false, "" },
                { "GET", "v1/leader", NULL, NULL, false, "" },
                { "GET", "", NULL, NULL, false, "" },
                { "GET", "/v1/Leader", NULL, NULL, false, "" },
                { "get", "/v1/leader", NULL, NULL, true, "GET" },
                { "GET", "/a/b/c/d/e/f/g/h/i", NULL, NULL, false, "" },
        };

        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
                char param[128] = "unset", allow[64] = "unset";
                size_t idx = SIZE_MAX;
                bool pm = !t[i].path_matched;
                const struct route *r = http_route_match(api_routes, api_n_routes, t[i].method, t[i].url, &idx,
                                                         param, sizeof param, &pm, allow, sizeof allow);

                if (t[i].want) {
                        ck_assert_msg(r && r->handler == t[i].want, "%s %s: wrong route", t[i].method, t[i].url);
                        ck_assert_uint_lt(idx, api_n_routes);
                        ck_assert_ptr_eq(r, &api_routes[idx]);
                        ck_assert_msg(strcmp(param, t[i].param) == 0, "%s %s: param '%s'", t[i].method, t[i].url,
                                      param);
                } else {
                        ck_assert_msg(!r, "%s %s: routed to %s", t[i].method, t[i].url, r ? r->pattern : "");
                        ck_assert_msg(pm == t[i].path_matched, "%s %s: path_matched %d", t[i].method, t[i].url, pm);
                        ck_assert_uint_eq(idx, SIZE_MAX);
                        ck_assert_msg(strcmp(allow, t[i].allow) == 0, "%s %s: allow '%s'", t[i].method, t[i].url,
                                      allow);
                        ck_assert_str_eq(param, "unset"); /* untouched */
                }
        }
}
END_TEST

/* A small table of its own: the first matching route wins, the parameter is cut
 * to the buffer, a pattern that is no path makes every lookup fail. */
static void h_a(struct request *req) {
        (void) req;
}
static void h_b(struct request *req) {
        (void) req;
}

START_TEST(test_route_match_table) {
        static const struct route tbl[] = {
                { .method = "GET", .pattern = "/x/{}", .handler = h_a },
                { .method = "GET", .pattern = "/x/fixed", .handler = h_b },
                { .method = "PUT", .pattern = "/x/{}/y", .handler = h_b },
        };
        static const struct route bad[] = { { .method = "GET", .pattern = "x", .handler = h_a } };
        char param[4], allow[64];
        size_t idx = 99;
        bool pm = true;
        const struct route *r;

        r = http_route_match(tbl, 3, "GET", "/x/fixed", &idx, param, sizeof param, &pm, allow, sizeof allow);
        ck_assert_ptr_eq(r, &tbl[0]); /* table order, not specificity */
        ck_assert_uint_eq(idx, 0);
        ck_assert_str_eq(param, "fix");

        r = http_route_match(tbl, 3, "GET", "/x/q/y", &idx, param, sizeof param, &pm, allow, sizeof allow);
        ck_assert_ptr_null(r);
        ck_assert(pm);
        ck_assert_str_eq(allow, "PUT");

        r = http_route_match(tbl, 3, "PUT", "/x/q/y", &idx, param, sizeof param, &pm, allow, sizeof allow);
        ck_assert_ptr_eq(r, &tbl[2]);
        ck_assert_uint_eq(idx, 2);
        ck_assert_str_eq(param, "q");

        pm = true;
        r = http_route_match(bad, 1, "GET", "/x", &idx, param, sizeof param, &pm, allow, sizeof allow);
        ck_assert_ptr_null(r);
        ck_assert(!pm);
        r = http_route_match(tbl, 0, "GET", "/x/a", &idx, param, sizeof param, &pm, allow, sizeof allow);
        ck_assert_ptr_null(r);
        ck_assert(!pm);
}
END_TEST

static void add_tests(TCase *tc) {
        tcase_add_test(tc, test_admit_table);
        tcase_add_test(tc, test_reject_strings);
        tcase_add_test(tc, test_client_keys);
        tcase_add_test(tc, test_clients_basic);
        tcase_add_test(tc, test_clients_model);
        tcase_add_test(tc, test_method);
        tcase_add_test(tc, test_head_sizes);
        tcase_add_test(tc, test_framing);
        tcase_add_test(tc, test_route_match);
        tcase_add_test(tc, test_route_match_table);
}

TEST_MAIN("http-guard", add_tests)
