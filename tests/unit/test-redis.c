/* Tests for lib/redis.c against real servers started by tests/e2e/sentinel.sh:
 *   REDIS_URL, REDIS_PORT         a plain redis (the master the sentinel monitors)
 *   SENTINEL_URL                  "127.0.0.1:PORT,serviceName=mymaster"
 *   AUTH_PORT, AUTH_PASSWORD      a redis with --requirepass
 *   ACL_USER, ACL_PASSWORD        an ACL user on AUTH_PORT
 *   AUTH_SENTINEL_PORT            a sentinel that itself requires AUTH_PASSWORD,
 *                                 monitoring AUTH_PORT as "authmaster"
 *   REPLICA_PORT                  a replica of REDIS_PORT
 *   UNIX_SOCKET                   unix socket of the plain redis
 * Missing variables are a failure, not a skip. */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "duration.h"
#include "macro.h"
#include "parse-util.h"
#include "redis.h"
#include "redis_url.h"
#include "strutil.h"
#include "test-main.h"

static const char *env(const char *name) {
        const char *v = getenv(name);
        ck_assert_msg(v && *v, "environment variable %s is not set (run through tests/e2e/sentinel.sh)", name);
        return v;
}

static uint64_t mono_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

/* Parse s and connect; the error text must never contain secret. */
static int connect_str(const char *s, uint64_t tmo, redisContext **c, char *err, size_t errlen, const char *secret) {
        struct redis_url *u = NULL;
        int r;

        r = redis_url_parse(s, &u, err, errlen);
        ck_assert_msg(r == 0, "parse of a test connection string failed: %s", err);
        err[0] = '\0';
        r = redis_connect(u, tmo, c, err, errlen);
        if (secret)
                ck_assert_msg(!strstr(err, secret), "error message leaks the password: %s", err);
        if (r < 0)
                ck_assert_msg(err[0], "failure %d without a message", r);
        redis_url_free(u);
        return r;
}

/* connect_str(s) fails with want and leaves no context; when needle is given,
 * the message names it (else the check fails with why and the message). */
static void expect_refused(const char *s, const char *secret, int want, const char *needle, const char *why) {
        _cleanup_redis_ redisContext *c = NULL;
        char err[256];

        ck_assert_int_eq(connect_str(s, 0, &c, err, sizeof err, secret), want);
        ck_assert_ptr_null(c);
        if (needle)
                ck_assert_msg(strstr(err, needle), "%s%s", why, err);
}

static char *get_string(redisContext *c, const char *key) {
        _cleanup_reply_ redisReply *reply = NULL;
        char err[256];

        ck_assert_int_eq(redis_command(c, &reply, err, sizeof err, "GET %s", key), 0);
        if (reply->type == REDIS_REPLY_NIL)
                return NULL;
        ck_assert_int_eq(reply->type, REDIS_REPLY_STRING);
        return strdup(reply->str);
}

/* A port nobody listens on (bound then closed: racy but good enough on loopback). */
static int dead_port(void) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof sa;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(bind(fd, (struct sockaddr *) &sa, sizeof sa), 0);
        ck_assert_int_eq(getsockname(fd, (struct sockaddr *) &sa, &len), 0);
        close(fd);
        return ntohs(sa.sin_port);
}

START_TEST(test_plain) {
        _cleanup_redis_ redisContext *c = NULL;
        _cleanup_reply_ redisReply *reply = NULL;
        _cleanup_free_ char *v = NULL;
        char err[256];
        const char *argv[] = { "SET", "bin", "a\0b" };
        const size_t argvlen[] = { 3, 3, 3 };

        ck_assert_int_eq(connect_str(env("REDIS_URL"), 2000000, &c, err, sizeof err, NULL), 0);
        ck_assert_int_eq(redis_command(c, &reply, err, sizeof err, "SET %s %s", "plain", "yes"), 0);
        ck_assert_int_eq(reply->type, REDIS_REPLY_STATUS);
        freeReplyObject(TAKE_PTR(reply));
        v = get_string(c, "plain");
        ck_assert_str_eq(v, "yes");

        ck_assert_int_eq(redis_commandargv(c, &reply, err, sizeof err, 3, argv, argvlen), 0);
        freeReplyObject(TAKE_PTR(reply));
        ck_assert_int_eq(redis_command(c, &reply, err, sizeof err, "GET bin"), 0);
        ck_assert_int_eq(reply->len, 3);
        ck_assert(memcmp(reply->str, "a\0b", 3) == 0);
        freeReplyObject(TAKE_PTR(reply));

        /* An error reply is -EPROTO with the server's text; *ret untouched. */
        ck_assert_int_eq(redis_command(c, &reply, err, sizeof err, "INCR plain"), -EPROTO);
        ck_assert_ptr_null(reply);
        ck_assert_msg(strstr(err, "not an integer"), "%s", err);
        /* The connection is still usable after an error reply. */
        ck_assert_int_eq(redis_command(c, &reply, err, sizeof err, "PING"), 0);
}
END_TEST

START_TEST(test_select_db) {
        _cleanup_redis_ redisContext *c3 = NULL, *c0 = NULL;
        _cleanup_reply_ redisReply *reply = NULL;
        _cleanup_free_ char *url3 = NULL, *url0 = NULL, *v3 = NULL, *v0 = NULL;
        char err[256];

        url3 = strdup_printf("redis://127.0.0.1:%s/3", env("REDIS_PORT"));
        url0 = strdup_printf("127.0.0.1:%s,defaultDatabase=0", env("REDIS_PORT"));
        ck_assert_int_eq(connect_str(url3, 0, &c3, err, sizeof err, NULL), 0);
        ck_assert_int_eq(connect_str(url0, 0, &c0, err, sizeof err, NULL), 0);
        ck_assert_int_eq(redis_command(c3, &reply, err, sizeof err, "SET only-in-3 x"), 0);
        v3 = get_string(c3, "only-in-3");
        v0 = get_string(c0, "only-in-3");
        ck_assert_str_eq(v3, "x");
        ck_assert_ptr_null(v0);
        /* SELECT of a db that does not exist is an error naming it. */
        {
                _cleanup_redis_ redisContext *bad = NULL;
                _cleanup_free_ char *u = strdup_printf("redis://127.0.0.1:%s/999", env("REDIS_PORT"));
                ck_assert_int_eq(connect_str(u, 0, &bad, err, sizeof err, NULL), -EINVAL);
                ck_assert_ptr_null(bad);
                ck_assert_msg(strstr(err, "SELECT 999"), "%s", err);
        }
}
END_TEST

START_TEST(test_sentinel) {
        _cleanup_redis_ redisContext *c = NULL, *direct = NULL;
        _cleanup_reply_ redisReply *reply = NULL;
        _cleanup_free_ char *direct_url = NULL, *v = NULL, *host = NULL, *two = NULL;
        struct redis_url *u = NULL;
        char err[256], token[33];
        int port = 0;

        /* Resolution alone. */
        ck_assert_int_eq(redis_url_parse(env("SENTINEL_URL"), &u, err, sizeof err), 0);
        ck_assert_ptr_nonnull(u->service_name);
        ck_assert_int_eq(redis_resolve_master(u, &host, &port, err, sizeof err), 0);
        ck_assert_str_eq(host, "127.0.0.1");
        {
                int want;
                ck_assert_int_eq(parse_int(env("REDIS_PORT"), &want), 0);
                ck_assert_int_eq(port, want);
        }
        redis_url_free(u);

        /* Write through the sentinel-resolved connection, read it from the master directly. */
        ck_assert_int_eq(random_hex(token, 16), 0);
        ck_assert_int_eq(connect_str(env("SENTINEL_URL"), 2000000, &c, err, sizeof err, NULL), 0);
        ck_assert_int_eq(redis_command(c, &reply, err, sizeof err, "SET via-sentinel %s", token), 0);
        direct_url = strdup_printf("127.0.0.1:%s", env("REDIS_PORT"));
        ck_assert_int_eq(connect_str(direct_url, 2000000, &direct, err, sizeof err, NULL), 0);
        v = get_string(direct, "via-sentinel");
        ck_assert_ptr_nonnull(v);
        ck_assert_str_eq(v, token);

        /* A dead sentinel first in the list is skipped. */
        two = strdup_printf("127.0.0.1:%d,%s", dead_port(), env("SENTINEL_URL"));
        redis_ctx_free(TAKE_PTR(c));
        ck_assert_int_eq(connect_str(two, 0, &c, err, sizeof err, NULL), 0);
        freeReplyObject(TAKE_PTR(reply));
        ck_assert_int_eq(redis_command(c, &reply, err, sizeof err, "ROLE"), 0);
        ck_assert_str_eq(reply->element[0]->str, "master");
}
END_TEST

START_TEST(test_sentinel_unknown_service) {
        _cleanup_redis_ redisContext *c = NULL;
        _cleanup_free_ char *url = NULL, *dead = NULL;
        char err[256];

        url = strdup_printf("127.0.0.1:%s,serviceName=nosuchmaster", env("SENTINEL_PORT"));
        expect_refused(url, NULL, -EHOSTUNREACH, "nosuchmaster", "message does not name the service: ");

        dead = strdup_printf("127.0.0.1:%d,serviceName=mymaster", dead_port());
        ck_assert_int_eq(connect_str(dead, 0, &c, err, sizeof err, NULL), -EHOSTUNREACH);
        ck_assert_msg(strstr(err, "refused"), "%s", err);
}
END_TEST

START_TEST(test_auth_password) {
        _cleanup_redis_ redisContext *c = NULL;
        _cleanup_reply_ redisReply *reply = NULL;
        _cleanup_free_ char *good = NULL, *wrong = NULL, *none = NULL, *none_db = NULL, *url_form = NULL;
        const char *pw = env("AUTH_PASSWORD");
        char err[256];

        good = strdup_printf("127.0.0.1:%s,password=%s", env("AUTH_PORT"), pw);
        ck_assert_int_eq(connect_str(good, 0, &c, err, sizeof err, pw), 0);
        ck_assert_int_eq(redis_command(c, &reply, err, sizeof err, "PING"), 0);
        redis_ctx_free(TAKE_PTR(c));

        wrong = strdup_printf("127.0.0.1:%s,password=Wrong-%s", env("AUTH_PORT"), "Secret-42");
        expect_refused(wrong, "Wrong-Secret-42", -EACCES, "AUTH", "");

        /* No password against a server that requires one: -EACCES, also with db 0. */
        none = strdup_printf("127.0.0.1:%s", env("AUTH_PORT"));
        ck_assert_int_eq(connect_str(none, 0, &c, err, sizeof err, pw), -EACCES);
        ck_assert_msg(strstr(err, "requires authentication"), "%s", err);
        none_db = strdup_printf("redis://127.0.0.1:%s/2", env("AUTH_PORT"));
        ck_assert_int_eq(connect_str(none_db, 0, &c, err, sizeof err, pw), -EACCES);

        /* A password on a server without one is accepted, as redis-cli does. */
        url_form = strdup_printf("redis://:%s@127.0.0.1:%s/0", "Unneeded-Secret", env("REDIS_PORT"));
        ck_assert_int_eq(connect_str(url_form, 0, &c, err, sizeof err, "Unneeded-Secret"), 0);
}
END_TEST

START_TEST(test_auth_acl) {
        _cleanup_redis_ redisContext *c = NULL;
        _cleanup_reply_ redisReply *reply = NULL;
        _cleanup_free_ char *good = NULL, *wrong = NULL, *se = NULL;
        const char *user = env("ACL_USER"), *pw = env("ACL_PASSWORD");
        char err[256];

        good = strdup_printf("redis://%s:%s@127.0.0.1:%s/1", user, pw, env("AUTH_PORT"));
        ck_assert_int_eq(connect_str(good, 0, &c, err, sizeof err, pw), 0);
        ck_assert_int_eq(redis_command(c, &reply, err, sizeof err, "ACL WHOAMI"), 0);
        ck_assert_str_eq(reply->str, user);
        redis_ctx_free(TAKE_PTR(c));

        se = strdup_printf("127.0.0.1:%s,user=%s,password=%s", env("AUTH_PORT"), user, pw);
        ck_assert_int_eq(connect_str(se, 0, &c, err, sizeof err, pw), 0);
        redis_ctx_free(TAKE_PTR(c));

        wrong = strdup_printf("redis://%s:%s@127.0.0.1:%s", user, "Not-The-Acl-Pw", env("AUTH_PORT"));
        ck_assert_int_eq(connect_str(wrong, 0, &c, err, sizeof err, "Not-The-Acl-Pw"), -EACCES);
        ck_assert_msg(strstr(err, user), "message should name the user: %s", err);
}
END_TEST

START_TEST(test_sentinel_with_auth) {
        _cleanup_redis_ redisContext *c = NULL;
        _cleanup_reply_ redisReply *reply = NULL;
        _cleanup_free_ char *good = NULL, *wrong = NULL;
        const char *pw = env("AUTH_PASSWORD");
        char err[256];

        /* The sentinel requires the password too: tried without, then with it. */
        good = strdup_printf("127.0.0.1:%s,serviceName=authmaster,password=%s", env("AUTH_SENTINEL_PORT"), pw);
        ck_assert_int_eq(connect_str(good, 0, &c, err, sizeof err, pw), 0);
        ck_assert_int_eq(redis_command(c, &reply, err, sizeof err, "CONFIG GET port"), 0);
        ck_assert_str_eq(reply->element[1]->str, env("AUTH_PORT"));
        redis_ctx_free(TAKE_PTR(c));

        wrong = strdup_printf("127.0.0.1:%s,serviceName=authmaster,password=Bad-Secret-9", env("AUTH_SENTINEL_PORT"));
        expect_refused(wrong, "Bad-Secret-9", -EACCES, NULL, NULL);
}
END_TEST

START_TEST(test_tls_refused) {
        _cleanup_free_ char *se = NULL, *url = NULL;

        /* Against a live plain-text server: TLS or nothing, never a plain-text
         * fallback (a plain Redis never answers a ClientHello: the handshake
         * times out).  TLS itself is tested in tests/unit/test-tls.c. */
        se = strdup_printf("127.0.0.1:%s,ssl=true,password=Tls-Secret-1,connectTimeout=300", env("REDIS_PORT"));
        expect_refused(se, "Tls-Secret-1", -ETIMEDOUT, "TLS handshake", "");
        url = strdup_printf("127.0.0.1:%s,ssl=True,connectTimeout=300", env("REDIS_PORT"));
        expect_refused(url, NULL, -ETIMEDOUT, NULL, NULL);
}
END_TEST

START_TEST(test_unreachable) {
        _cleanup_free_ char *url = NULL;
        int port = dead_port();

        url = strdup_printf("127.0.0.1:%d,password=Unreach-Secret", port);
        expect_refused(url, "Unreach-Secret", -ECONNREFUSED, "127.0.0.1", "message should name the address: ");
}
END_TEST

START_TEST(test_connect_timeout) {
        /* A listener that never answers: TCP connects (backlog) but the handshake
         * stalls; the connect timeout must bound it. */
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof sa;
        _cleanup_redis_ redisContext *c = NULL;
        _cleanup_free_ char *url = NULL;
        char err[256];
        uint64_t t0, elapsed;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(bind(fd, (struct sockaddr *) &sa, sizeof sa), 0);
        ck_assert_int_eq(listen(fd, 8), 0);
        ck_assert_int_eq(getsockname(fd, (struct sockaddr *) &sa, &len), 0);
        url = strdup_printf("127.0.0.1:%d,connectTimeout=300", ntohs(sa.sin_port));
        t0 = mono_usec();
        ck_assert_int_eq(connect_str(url, 0, &c, err, sizeof err, NULL), -ETIMEDOUT);
        elapsed = mono_usec() - t0;
        ck_assert_msg(elapsed >= 250000 && elapsed < 3000000, "took %llu us", (unsigned long long) elapsed);
        close(fd);
}
END_TEST

START_TEST(test_deadline_bounds_sentinels) {
        /* Three sentinels that accept and never answer, each with a 2 s connect
         * timeout: without a deadline one connect would take about 2 passes x 3
         * sentinels x 2 s.  A deadline 300 ms away must bound the whole connect. */
        _cleanup_redis_ redisContext *c = NULL;
        _cleanup_free_ char *s = NULL;
        struct redis_url *u = NULL;
        int fds[3], ports[3];
        char err[256];
        uint64_t t0, elapsed;
        int r;

        for (int i = 0; i < 3; i++) {
                struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
                socklen_t len = sizeof sa;

                fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                ck_assert_int_ge(fds[i], 0);
                ck_assert_int_eq(bind(fds[i], (struct sockaddr *) &sa, sizeof sa), 0);
                ck_assert_int_eq(listen(fds[i], 8), 0);
                ck_assert_int_eq(getsockname(fds[i], (struct sockaddr *) &sa, &len), 0);
                ports[i] = ntohs(sa.sin_port);
        }
        s = strdup_printf("127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d,serviceName=mymaster,connectTimeout=2000",
                          ports[0], ports[1], ports[2]);
        ck_assert_int_eq(redis_url_parse(s, &u, err, sizeof err), 0);
        t0 = mono_usec();
        u->deadline_usec = now_usec() + 300000;
        r = redis_connect(u, 0, &c, err, sizeof err);
        elapsed = mono_usec() - t0;
        ck_assert_int_lt(r, 0);
        ck_assert_msg(elapsed < 1500000, "connect took %llu us past a 300 ms deadline (%s)",
                      (unsigned long long) elapsed, err);
        redis_url_free(u);
        for (int i = 0; i < 3; i++)
                close(fds[i]);
}
END_TEST

START_TEST(test_command_timeout) {
        _cleanup_redis_ redisContext *c = NULL;
        _cleanup_reply_ redisReply *reply = NULL;
        char err[256];
        uint64_t t0, elapsed;

        ck_assert_int_eq(connect_str(env("REDIS_URL"), 200000, &c, err, sizeof err, NULL), 0);
        t0 = mono_usec();
        ck_assert_int_eq(redis_command(c, &reply, err, sizeof err, "BLPOP never-pushed 5"), -ETIMEDOUT);
        elapsed = mono_usec() - t0;
        ck_assert_msg(elapsed >= 150000 && elapsed < 3000000, "took %llu us", (unsigned long long) elapsed);
        ck_assert_ptr_null(reply);
        /* The context is dead afterwards and says so. */
        ck_assert_int_eq(redis_command(c, &reply, err, sizeof err, "PING"), -ENOTCONN);
}
END_TEST

START_TEST(test_unix_socket) {
        _cleanup_redis_ redisContext *c = NULL;
        _cleanup_reply_ redisReply *reply = NULL;
        _cleanup_free_ char *url = NULL, *v = NULL;
        char err[256];

        url = strdup_printf("unix://%s?db=4", env("UNIX_SOCKET"));
        ck_assert_msg(connect_str(url, 0, &c, err, sizeof err, NULL) == 0, "%s: %s", url, err);
        ck_assert_int_eq(redis_command(c, &reply, err, sizeof err, "SET unixkey 1"), 0);
        v = get_string(c, "unixkey");
        ck_assert_str_eq(v, "1");

        redis_ctx_free(TAKE_PTR(c));
        ck_assert_int_eq(connect_str("unix:///nonexistent/redis.sock", 0, &c, err, sizeof err, NULL), -ENOENT);
        ck_assert_msg(strstr(err, "/nonexistent/redis.sock"), "%s", err);
}
END_TEST

START_TEST(test_replica_skipped) {
        _cleanup_redis_ redisContext *c = NULL;
        _cleanup_reply_ redisReply *reply = NULL;
        _cleanup_free_ char *url = NULL, *only = NULL;
        char err[256];

        /* Several endpoints: the replica listed first is skipped for the master. */
        url = strdup_printf("127.0.0.1:%s,127.0.0.1:%s", env("REPLICA_PORT"), env("REDIS_PORT"));
        ck_assert_int_eq(connect_str(url, 0, &c, err, sizeof err, NULL), 0);
        ck_assert_int_eq(redis_command(c, &reply, err, sizeof err, "CONFIG GET port"), 0);
        ck_assert_str_eq(reply->element[1]->str, env("REDIS_PORT"));
        redis_ctx_free(TAKE_PTR(c));

        only = strdup_printf("127.0.0.1:%s,127.0.0.1:%d", env("REPLICA_PORT"), dead_port());
        ck_assert_int_lt(connect_str(only, 0, &c, err, sizeof err, NULL), 0);
        ck_assert_ptr_null(c);
}
END_TEST

static Suite *redis_suite(void) {
        Suite *s = suite_create("redis");
        TCase *tc = tcase_create("core");

        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, test_plain);
        tcase_add_test(tc, test_select_db);
        tcase_add_test(tc, test_sentinel);
        tcase_add_test(tc, test_sentinel_unknown_service);
        tcase_add_test(tc, test_auth_password);
        tcase_add_test(tc, test_auth_acl);
        tcase_add_test(tc, test_sentinel_with_auth);
        tcase_add_test(tc, test_tls_refused);
        tcase_add_test(tc, test_unreachable);
        tcase_add_test(tc, test_connect_timeout);
        tcase_add_test(tc, test_deadline_bounds_sentinels);
        tcase_add_test(tc, test_command_timeout);
        tcase_add_test(tc, test_unix_socket);
        tcase_add_test(tc, test_replica_skipped);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return test_run(redis_suite());
}
