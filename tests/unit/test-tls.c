/* Tests for lib/tls.c, lib/tls_pump.c and lib/tls_redis.c, and for lib/redis.c
 * and lib/redis_client.c over TLS.  The first group needs no server (files,
 * a listener that never answers, one that answers in plain RESP); the rest
 * runs through tests/e2e/tls-client.sh against real servers:
 *   TLS_DIR              ca.crt, other-ca.crt, client.{crt,key}, expired.{crt,key}
 *   REDIS_PORT, TLS_PORT one redis, plain and TLS (client certificates optional),
 *                        with the ACL user "coord" (Coord-Tls-Acl9); the script
 *                        kills, restarts and freezes it on request
 *   MTLS_PORT            a TLS redis that requires a client certificate
 *   SENTINEL_TLS_PORT    a TLS-only sentinel monitoring the first as "mymaster"
 *   REPLICA_TLS_PORT     its replica (TLS replication), promoted by the last test
 *   CTL_DIR              requests to the script: write CTL_DIR/request, wait for CTL_DIR/ack
 * TLS_UNIT_ONLY=1 runs the first group alone.  Every test ends with every
 * pump gone (tls_pump_wait_idle()). */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "duration.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "parse-util.h"
#include "redis.h"
#include "redis_client.h"
#include "redis_url.h"
#include "strutil.h"
#include "test-main.h"
#include "test-request.h"
#include "tls.h"
#include "tls_pump.h"
#include "tls_redis.h"

#define ACL_PASSWORD "Coord-Tls-Acl9"
#define SEC 1000000ULL

static const char *env(const char *name) {
        const char *v = getenv(name);

        ck_assert_msg(v && *v, "environment variable %s is not set (run through tests/e2e/tls-client.sh)", name);
        return v;
}

static char *cert(const char *name) {
        return name ? strdup_printf("%s/%s", env("TLS_DIR"), name) : NULL;
}

/* Make these the process' TLS settings; files are names in TLS_DIR. */
static void use_tls(const char *ca, const char *crt, const char *key, bool insecure) {
        struct tls_options o = { .ca_file = cert(ca), .cert_file = cert(crt), .key_file = cert(key),
                                 .insecure_skip_verify = insecure };
        char err[512] = "";

        ck_assert_msg(tls_set_options(&o, err, sizeof err) == 0, "%s", err);
        tls_options_done(&o);
}

static void pumps_gone(void) {
        ck_assert_msg(tls_pump_wait_idle(3 * SEC, false) == 0, "%u pumps still running", tls_pump_count());
}

static int connect_str(const char *s, uint64_t timeout, redisContext **ret, char *err, size_t errlen) {
        _cleanup_(redis_url_freep) struct redis_url *u = NULL;
        int r;

        r = redis_url_parse(s, &u, err, errlen);
        ck_assert_msg(r == 0, "%s: %s", s, err);
        return redis_connect(u, timeout, ret, err, errlen);
}

/* Connect and expect -errno r with every word of want in the message. */
static void expect_refusal(const char *url, int r, const char *want1, const char *want2) {
        _cleanup_redis_ redisContext *c = NULL;
        char err[512] = "";
        int got = connect_str(url, SEC, &c, err, sizeof err);

        ck_assert_msg(got == r, "%s: got %d (%s), want %d", url, got, err, r);
        ck_assert_ptr_null(c);
        ck_assert_msg(strstr(err, want1), "%s: '%s' does not say '%s'", url, err, want1);
        ck_assert_msg(!want2 || strstr(err, want2), "%s: '%s' does not say '%s'", url, err, want2);
}

/* Connect and expect a failure (-errno r; any when r is 0) whose message does not show password. */
static void expect_password_hidden(const char *url, int r, const char *password) {
        _cleanup_redis_ redisContext *c = NULL;
        char err[512] = "";
        int got = connect_str(url, SEC, &c, err, sizeof err);

        if (r == 0)
                ck_assert_int_lt(got, 0);
        else
                ck_assert_int_eq(got, r);
        ck_assert_msg(!strstr(err, password), "password in the message: %s", err);
}

static redisContext *connect_ok(const char *url) {
        redisContext *c = NULL;
        char err[512] = "";

        ck_assert_msg(connect_str(url, 2 * SEC, &c, err, sizeof err) == 0, "%s: %s", url, err);
        return c;
}

static char *tls_url(const char *port_var, const char *extra) {
        return strdup_printf("127.0.0.1:%s,ssl=true,connectTimeout=2000%s", env(port_var), extra ? extra : "");
}

/* stderr into a file while fn runs: what was logged. */
static char *capture_stderr(void (*fn)(void *), void *arg) {
        char path[] = "/tmp/test-tls-stderr.XXXXXX";
        _cleanup_close_ int fd = mkstemp(path), saved = dup(STDERR_FILENO);
        char *text = NULL;

        ck_assert_int_ge(fd, 0);
        fflush(stderr);
        ck_assert_int_ge(dup2(fd, STDERR_FILENO), 0);
        fn(arg);
        fflush(stderr);
        ck_assert_int_ge(dup2(saved, STDERR_FILENO), 0);
        ck_assert_int_eq(fileio_read_string(path, 1 << 20, false, &text), 0);
        (void) unlink(path);
        return text;
}

/* ---- without a server ------------------------------------------------------ */

START_TEST(test_options) {
        struct tls_options o = { 0 };
        _cleanup_free_ char *garbage = strdup_printf("/tmp/test-tls-garbage.%d", (int) getpid());
        char err[512];
        FILE *f;

        o.ca_file = (char *) "/nonexistent/ca.pem";
        ck_assert_int_eq(tls_set_options(&o, err, sizeof err), -ENOENT);
        ck_assert_msg(strstr(err, "/nonexistent/ca.pem"), "%s", err);
        f = fopen(garbage, "we");
        ck_assert_ptr_nonnull(f);
        fputs("not a certificate\n", f);
        fclose(f);
        o.ca_file = garbage;
        ck_assert_int_eq(tls_set_options(&o, err, sizeof err), -EINVAL);
        ck_assert_msg(strstr(err, garbage), "%s", err);
        o.ca_file = NULL;
        o.cert_file = garbage;
        ck_assert_int_eq(tls_set_options(&o, err, sizeof err), -EINVAL);
        o.cert_file = NULL;
        o.key_file = garbage;
        ck_assert_int_eq(tls_set_options(&o, err, sizeof err), -EINVAL); /* a key without a certificate */
        (void) unlink(garbage);

        ck_assert_int_eq(setenv("COORD_TLS_CA_FILE", "/etc/ca.pem", 1), 0);
        ck_assert_int_eq(setenv("COORD_TLS_CERT_FILE", "", 1), 0);
        ck_assert_int_eq(tls_options_from_env(&o), 0);
        ck_assert_str_eq(o.ca_file, "/etc/ca.pem");
        ck_assert_ptr_null(o.cert_file);
        ck_assert_ptr_null(o.key_file);
        ck_assert(!o.insecure_skip_verify);
        tls_options_done(&o);
        ck_assert_int_eq(setenv("COORD_TLS_CA_FILE", "/nonexistent/env-ca.pem", 1), 0);
        ck_assert_int_eq(tls_setup_from_env(err, sizeof err), -ENOENT);
        ck_assert_msg(strstr(err, "COORD_TLS_") && strstr(err, "/nonexistent/env-ca.pem"), "%s", err);
        ck_assert_int_eq(tls_set_options(NULL, err, sizeof err), 0);
        unsetenv("COORD_TLS_CA_FILE");
        unsetenv("COORD_TLS_CERT_FILE");
}
END_TEST

/* A TCP listener on 127.0.0.1; *ret_port its port. */
static int listener(int *ret_port) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof sa;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(bind(fd, (struct sockaddr *) &sa, sizeof sa), 0);
        ck_assert_int_eq(listen(fd, 8), 0);
        ck_assert_int_eq(getsockname(fd, (struct sockaddr *) &sa, &len), 0);
        *ret_port = ntohs(sa.sin_port);
        return fd;
}

START_TEST(test_handshake_timeout) {
        _cleanup_close_ int l = -1;
        struct tls_peer peer = { .host = "127.0.0.1" };
        char err[512] = "";
        SSL *ssl = NULL;
        uint64_t t0 = now_usec();

        /* The kernel completes the TCP connect; nobody ever answers the ClientHello. */
        l = listener(&peer.port);
        ck_assert_int_eq(tls_open(&peer, t0 + SEC, -1, &ssl, err, sizeof err), -ETIMEDOUT);
        ck_assert_ptr_null(ssl);
        ck_assert_msg(now_usec() - t0 < 3 * SEC, "took %llu us", (unsigned long long) (now_usec() - t0));
        ck_assert_msg(strstr(err, "timed out") && strstr(err, "TLS port"), "%s", err);
}
END_TEST

START_TEST(test_handshake_abandoned) {
        _cleanup_close_ int l = -1;
        struct tls_peer peer = { .host = "127.0.0.1" };
        int sv[2];
        char err[512] = "";
        SSL *ssl = NULL;

        /* The async path gives up as soon as hiredis drops its end. */
        l = listener(&peer.port);
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        close(sv[0]);
        ck_assert_int_eq(tls_open(&peer, now_usec() + 10 * SEC, sv[1], &ssl, err, sizeof err), -ECANCELED);
        close(sv[1]);
}
END_TEST

/* A server that answers anything in RESP, as a plain-text Redis would. */
static void *resp_server(void *arg) {
        int l = *(int *) arg, fd = accept4(l, NULL, NULL, SOCK_CLOEXEC);
        char buf[4096];

        if (fd >= 0) {
                (void) read(fd, buf, sizeof buf);
                (void) write(fd, "-ERR unknown command\r\n", 22);
                close(fd);
        }
        return NULL;
}

START_TEST(test_plain_text_answer) {
        _cleanup_close_ int l = -1;
        struct tls_peer peer = { .host = "127.0.0.1" };
        char err[512] = "";
        SSL *ssl = NULL;
        pthread_t t;

        l = listener(&peer.port);
        ck_assert_int_eq(pthread_create(&t, NULL, resp_server, &l), 0);
        ck_assert_int_eq(tls_open(&peer, now_usec() + 5 * SEC, -1, &ssl, err, sizeof err), -EPROTO);
        ck_assert_msg(strstr(err, "plain text"), "%s", err);
        pthread_join(t, NULL);
}
END_TEST

START_TEST(test_connect_refused) {
        _cleanup_(redis_url_freep) struct redis_url *u = NULL;
        _cleanup_close_ int l = -1;
        _cleanup_free_ char *url = NULL;
        _cleanup_redis_ redisContext *c = NULL;
        char err[512] = "";
        int port;

        l = listener(&port);
        close(TAKE_FD(l)); /* nobody listens there now */
        url = strdup_printf("rediss://127.0.0.1:%d", port);
        ck_assert_int_eq(connect_str(url, SEC, &c, err, sizeof err), -ECONNREFUSED);
        ck_assert_msg(strstr(err, "127.0.0.1") && strstr(err, "refused"), "%s", err);
        /* No connection string says ssl=true for a unix socket, but a caller could. */
        ck_assert_int_eq(redis_url_parse("unix:///tmp/nonexistent.sock", &u, err, sizeof err), 0);
        u->ssl = true;
        ck_assert_int_eq(redis_connect(u, SEC, &c, err, sizeof err), -EINVAL);
        ck_assert_msg(strstr(err, "unix socket"), "%s", err);
}
END_TEST

/* ---- sync, against real servers ------------------------------------------------ */

START_TEST(test_sync_roundtrips) {
        _cleanup_free_ char *url = tls_url("TLS_PORT", NULL), *big = NULL;
        _cleanup_redis_ redisContext *c = NULL;
        size_t size = 6 * 1024 * 1024;
        redisReply *r;

        use_tls("ca.crt", NULL, NULL, false);
        c = connect_ok(url);
        /* TLS on the caller's thread, over hiredis' own TCP socket: no pump. */
        ck_assert(tls_redis_is_tls(c));
        ck_assert_int_eq(c->connection_type, REDIS_CONN_TCP);
        ck_assert_uint_eq(tls_pump_count(), 0);
        /* Replies of megabytes, both ways. */
        big = malloc(size);
        ck_assert_ptr_nonnull(big);
        for (size_t i = 0; i < size; i++)
                big[i] = (char) ('a' + i % 26);
        r = redis_ctx_command(c, "SET tls:big %b", big, size);
        ck_assert_ptr_nonnull(r);
        freeReplyObject(r);
        r = redis_ctx_command(c, "GET tls:big");
        ck_assert_ptr_nonnull(r);
        ck_assert_uint_eq(r->len, size);
        ck_assert_int_eq(memcmp(r->str, big, size), 0);
        freeReplyObject(r);
        /* Pipelining: 20,000 commands in, then 20,000 replies out. */
        for (int i = 0; i < 20000; i++)
                ck_assert_int_eq(redisAppendCommand(c, "INCR tls:counter"), REDIS_OK);
        for (long long i = 1; i <= 20000; i++) {
                ck_assert_int_eq(redis_ctx_get_reply(c, (void **) &r), REDIS_OK);
                ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
                ck_assert_int_ge(r->integer, i);
                freeReplyObject(r);
        }
        redis_ctx_free(TAKE_PTR(c));
        pumps_gone();
}
END_TEST

START_TEST(test_sync_names) {
        _cleanup_free_ char *local = NULL, *sni = NULL, *wrong = NULL;

        use_tls("ca.crt", NULL, NULL, false);
        local = strdup_printf("localhost:%s,ssl=True,connectTimeout=2000", env("TLS_PORT"));
        redis_ctx_free(connect_ok(local));
        sni = tls_url("TLS_PORT", ",sslHost=localhost");
        redis_ctx_free(connect_ok(sni));
        wrong = tls_url("TLS_PORT", ",sslHost=redis.example.net");
        expect_refusal(wrong, -EPERM, "hostname mismatch", "sslHost");
        pumps_gone();
}
END_TEST

START_TEST(test_sync_untrusted) {
        _cleanup_free_ char *url = tls_url("TLS_PORT", NULL);

        use_tls("other-ca.crt", NULL, NULL, false);
        expect_refusal(url, -EPERM, "certificate verify failed", "self-signed certificate in certificate chain");
        /* The system store does not know the test CA either. */
        use_tls(NULL, NULL, NULL, false);
        expect_refusal(url, -EPERM, "certificate verify failed", "CA file");
        pumps_gone();
}
END_TEST

static void insecure_connect(void *arg) {
        redis_ctx_free(connect_ok(arg));
}

START_TEST(test_sync_insecure) {
        _cleanup_free_ char *url = tls_url("TLS_PORT", ",sslHost=redis.example.net"), *log = NULL;

        use_tls("other-ca.crt", NULL, NULL, true);
        log = capture_stderr(insecure_connect, url);
        ck_assert_msg(strstr(log, "verification is OFF"), "no warning: %s", log);
        use_tls("ca.crt", NULL, NULL, false);
        pumps_gone();
}
END_TEST

START_TEST(test_sync_wrong_protocol) {
        _cleanup_free_ char *plain_port_tls = NULL, *tls_port_plain = NULL, *rediss = NULL;

        use_tls("ca.crt", NULL, NULL, false);
        /* ssl=true against plain text: never a downgrade; plain Redis waits
         * silently for the end of the "command". */
        plain_port_tls = strdup_printf("127.0.0.1:%s,ssl=true,connectTimeout=500", env("REDIS_PORT"));
        expect_refusal(plain_port_tls, -ETIMEDOUT, "TLS handshake", "TLS port");
        /* ssl=false against TLS: the server drops the connection; say why that may be. */
        tls_port_plain = strdup_printf("127.0.0.1:%s,password=Some-Secret-1", env("TLS_PORT"));
        expect_refusal(tls_port_plain, -ECONNRESET, "does it need ssl=true?", NULL);
        rediss = strdup_printf("127.0.0.1:%s,ssl=true,password=Some-Secret-1,connectTimeout=300", env("REDIS_PORT"));
        expect_password_hidden(rediss, 0, "Some-Secret-1");
        pumps_gone();
}
END_TEST

START_TEST(test_sync_client_certificates) {
        _cleanup_free_ char *url = tls_url("MTLS_PORT", NULL);

        use_tls("ca.crt", NULL, NULL, false);
        expect_refusal(url, -ECONNABORTED, "certificate required", NULL);
        use_tls("ca.crt", "expired.crt", "expired.key", false);
        expect_refusal(url, -ECONNABORTED, "certificate expired", "client certificate");
        use_tls("ca.crt", "client.crt", "client.key", false);
        redis_ctx_free(connect_ok(url));
        use_tls("ca.crt", NULL, NULL, false);
        pumps_gone();
}
END_TEST

START_TEST(test_sync_acl_user) {
        _cleanup_free_ char *good = NULL, *bad = NULL;
        _cleanup_redis_ redisContext *c = NULL;
        _cleanup_reply_ redisReply *r = NULL;
        char err[512];

        use_tls("ca.crt", NULL, NULL, false);
        good = strdup_printf("rediss://coord:%s@127.0.0.1:%s", ACL_PASSWORD, env("TLS_PORT"));
        c = connect_ok(good);
        ck_assert_int_eq(redis_command(c, &r, err, sizeof err, "ACL WHOAMI"), 0);
        ck_assert_str_eq(r->str, "coord");
        bad = tls_url("TLS_PORT", ",user=coord,password=Not-The-Acl-Pw3");
        expect_refusal(bad, -EACCES, "AUTH", "coord");
        expect_password_hidden(bad, -EACCES, "Not-The-Acl-Pw3");
        redis_ctx_free(TAKE_PTR(c));
        pumps_gone();
}
END_TEST

/* Pump threads and sockets must not reach a forked and exec'd child. */
START_TEST(test_sync_fork_exec) {
        _cleanup_free_ char *url = tls_url("TLS_PORT", NULL), *out = NULL;
        _cleanup_redis_ redisContext *c = NULL;
        _cleanup_reply_ redisReply *r = NULL;
        char path[] = "/tmp/test-tls-fds.XXXXXX", err[256];
        int fd, status;
        pid_t pid;

        use_tls("ca.crt", NULL, NULL, false);
        c = connect_ok(url);
        fd = mkstemp(path);
        ck_assert_int_ge(fd, 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                dup2(fd, STDOUT_FILENO);
                execl("/bin/sh", "sh", "-c", "for f in /proc/$$/fd/*; do readlink \"$f\"; done", (char *) NULL);
                _exit(127);
        }
        close(fd);
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_int_eq(fileio_read_string(path, 65536, false, &out), 0);
        (void) unlink(path);
        ck_assert_msg(!strstr(out, "socket:"), "the child inherited sockets:\n%s", out);
        /* The parent's connection does not notice. */
        ck_assert_int_eq(redis_command(c, &r, err, sizeof err, "PING"), 0);
        ck_assert_str_eq(r->str, "PONG");
        redis_ctx_free(TAKE_PTR(c));
        pumps_gone();
}
END_TEST

/* ---- the script's hands -------------------------------------------------------- */

static uint64_t mono_usec(void) {
        return now_usec();
}

/* Ask the e2e script to act on the redis and wait for it, keeping the loop turning. */
static void request(sd_event *e, const char *what) {
        test_request(e, env("CTL_DIR"), what, 60);
}

START_TEST(test_sync_frozen_server) {
        _cleanup_free_ char *url = tls_url("TLS_PORT", NULL);
        _cleanup_redis_ redisContext *c = NULL;
        _cleanup_reply_ redisReply *r = NULL;
        char err[256];
        uint64_t t0;

        use_tls("ca.crt", NULL, NULL, false);
        {
                _cleanup_(redis_url_freep) struct redis_url *u = NULL;

                ck_assert_int_eq(redis_url_parse(url, &u, err, sizeof err), 0);
                ck_assert_msg(redis_connect(u, 500000, &c, err, sizeof err) == 0, "%s", err);
        }
        request(NULL, "stop");
        t0 = mono_usec();
        ck_assert_int_eq(redis_command(c, &r, err, sizeof err, "PING"), -ETIMEDOUT);
        ck_assert_uint_lt(mono_usec() - t0, 3 * SEC);
        /* Giving up on a frozen server ends the pump too. */
        redis_ctx_free(TAKE_PTR(c));
        pumps_gone();
        request(NULL, "cont");
        redis_ctx_free(connect_ok(url));
        pumps_gone();
}
END_TEST

/* ---- async --------------------------------------------------------------------- */

struct obs {
        int state; /* -1 none yet, 0 down, 1 up */
        unsigned ups, downs, messages, replies;
        size_t last_len;
        char last[64];
};

static void on_state(struct redis_client *c, bool connected, void *userdata) {
        struct obs *o = userdata;

        (void) c;
        o->state = connected;
        if (connected)
                o->ups++;
        else
                o->downs++;
}

static void on_message(struct redis_client *c, const char *channel, const char *data, size_t len, void *userdata) {
        struct obs *o = userdata;

        (void) c;
        (void) channel;
        o->messages++;
        snprintf(o->last, sizeof o->last, "%.*s", (int) MIN(len, (size_t) 63), data);
}

static void on_reply(struct redis_client *c, redisReply *reply, void *userdata) {
        struct obs *o = userdata;

        (void) c;
        o->replies++;
        o->last_len = reply && reply->type == REDIS_REPLY_STRING ? reply->len : 0;
        if (reply && (reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_STATUS))
                snprintf(o->last, sizeof o->last, "%.63s", reply->str);
}

static void run_until(sd_event *e, const unsigned *counter, unsigned want, unsigned secs, const char *what) {
        uint64_t deadline = mono_usec() + secs * SEC;

        while (*counter < want) {
                ck_assert_int_ge(sd_event_run(e, 50000), 0);
                ck_assert_msg(mono_usec() < deadline, "timed out after %u s waiting for %s", secs, what);
        }
}

static struct redis_client *client_new(sd_event *e, const char *url, struct obs *o) {
        _cleanup_(redis_url_freep) struct redis_url *u = NULL;
        struct redis_client *c = NULL;
        char err[256];

        *o = (struct obs) { .state = -1 };
        ck_assert_msg(redis_url_parse(url, &u, err, sizeof err) == 0, "%s", err);
        ck_assert_int_eq(redis_client_new(e, u, on_state, o, &c), 0);
        return c;
}

/* Free the client and turn the loop until its pumps are gone. */
static void client_done(sd_event *e, struct redis_client *c) {
        uint64_t deadline = mono_usec() + 3 * SEC;

        redis_client_free(c);
        while (tls_pump_count() > 0 && mono_usec() < deadline)
                ck_assert_int_ge(sd_event_run(e, 10000), 0);
        pumps_gone();
}

static void publish(const char *channel, const char *msg) {
        _cleanup_free_ char *url = tls_url("TLS_PORT", NULL);
        _cleanup_redis_ redisContext *c = connect_ok(url);
        _cleanup_reply_ redisReply *r = NULL;
        char err[256];

        ck_assert_int_eq(redis_command(c, &r, err, sizeof err, "PUBLISH %s %s", channel, msg), 0);
}

START_TEST(test_async_roundtrips) {
        _cleanup_free_ char *url = tls_url("TLS_PORT", NULL), *big = NULL;
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        size_t size = 4 * 1024 * 1024;
        struct obs o;
        struct redis_client *c;

        use_tls("ca.crt", NULL, NULL, false);
        ck_assert_int_ge(sd_event_new(&e), 0);
        c = client_new(e, url, &o);
        ck_assert_int_eq(redis_client_subscribe(c, "coord:tls-test", on_message, &o), 0);
        run_until(e, &o.ups, 1, 10, "connected");
        big = malloc(size);
        ck_assert_ptr_nonnull(big);
        memset(big, 'x', size);
        ck_assert_int_eq(redis_client_command(c, on_reply, &o, "SET tls:async %b", big, size), 0);
        ck_assert_int_eq(redis_client_command(c, on_reply, &o, "GET tls:async"), 0);
        run_until(e, &o.replies, 2, 10, "SET and GET");
        ck_assert_uint_eq(o.last_len, size);
        publish("coord:tls-test", "hello-over-tls");
        run_until(e, &o.messages, 1, 10, "the message");
        ck_assert_str_eq(o.last, "hello-over-tls");
        client_done(e, c);
}
END_TEST

static void async_untrusted(void *arg) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        uint64_t until = mono_usec() + 1500000;
        struct obs o;
        struct redis_client *c;

        ck_assert_int_ge(sd_event_new(&e), 0);
        c = client_new(e, arg, &o);
        while (mono_usec() < until)
                ck_assert_int_ge(sd_event_run(e, 50000), 0);
        ck_assert_int_eq(o.ups, 0);
        client_done(e, c);
}

START_TEST(test_async_untrusted) {
        _cleanup_free_ char *url = tls_url("TLS_PORT", NULL), *log = NULL;

        use_tls("other-ca.crt", NULL, NULL, false);
        log = capture_stderr(async_untrusted, url);
        ck_assert_msg(strstr(log, "certificate verify failed: self-signed certificate in certificate chain"),
                      "the log does not say why: %s", log);
        use_tls("ca.crt", NULL, NULL, false);
}
END_TEST

START_TEST(test_async_acl_and_client_cert) {
        _cleanup_free_ char *acl = NULL, *mtls = tls_url("MTLS_PORT", NULL);
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        struct obs o;
        struct redis_client *c;

        use_tls("ca.crt", "client.crt", "client.key", false);
        ck_assert_int_ge(sd_event_new(&e), 0);
        acl = strdup_printf("127.0.0.1:%s,ssl=true,user=coord,password=%s", env("TLS_PORT"), ACL_PASSWORD);
        c = client_new(e, acl, &o);
        run_until(e, &o.ups, 1, 10, "connected as coord");
        ck_assert_int_eq(redis_client_command(c, on_reply, &o, "ACL WHOAMI"), 0);
        run_until(e, &o.replies, 1, 10, "ACL WHOAMI");
        ck_assert_str_eq(o.last, "coord");
        client_done(e, c);
        c = client_new(e, mtls, &o);
        run_until(e, &o.ups, 1, 10, "connected with a client certificate");
        client_done(e, c);
        use_tls("ca.crt", NULL, NULL, false);
}
END_TEST

START_TEST(test_async_restart_and_freeze) {
        _cleanup_free_ char *url = tls_url("TLS_PORT", NULL);
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        struct obs o;
        struct redis_client *c;

        use_tls("ca.crt", NULL, NULL, false);
        ck_assert_int_ge(sd_event_new(&e), 0);
        c = client_new(e, url, &o);
        redis_client_set_keepalive(c, 200000, 1000000);
        run_until(e, &o.ups, 1, 10, "connected");
        request(e, "kill");
        run_until(e, &o.downs, 1, 10, "the loss noticed");
        request(e, "start");
        run_until(e, &o.ups, 2, 15, "reconnected after the restart");
        /* A frozen server: the keepalive notices, the thaw reconnects. */
        request(e, "stop");
        run_until(e, &o.downs, 2, 10, "the frozen server noticed");
        request(e, "cont");
        run_until(e, &o.ups, 3, 15, "reconnected after the thaw");
        ck_assert_int_eq(redis_client_command(c, on_reply, &o, "PING"), 0);
        run_until(e, &o.replies, 1, 10, "PING");
        ck_assert_str_eq(o.last, "PONG");
        client_done(e, c);
}
END_TEST

/* ---- Sentinel ------------------------------------------------------------------- */

START_TEST(test_sentinel_sync) {
        _cleanup_free_ char *url = NULL, *host = NULL;
        _cleanup_(redis_url_freep) struct redis_url *u = NULL;
        _cleanup_reply_ redisReply *r = NULL;
        redisContext *c;
        char err[256];
        int port = 0, want;

        use_tls("ca.crt", NULL, NULL, false);
        url = strdup_printf("127.0.0.1:%s,serviceName=mymaster,ssl=true", env("SENTINEL_TLS_PORT"));
        ck_assert_int_eq(redis_url_parse(url, &u, err, sizeof err), 0);
        ck_assert_msg(redis_resolve_master(u, &host, &port, err, sizeof err) == 0, "%s", err);
        ck_assert_int_eq(parse_int(env("TLS_PORT"), &want), 0);
        ck_assert_int_eq(port, want);
        c = connect_ok(url);
        ck_assert_int_eq(redis_command(c, &r, err, sizeof err, "ROLE"), 0);
        ck_assert_str_eq(r->element[0]->str, "master");
        redis_ctx_free(c);
        /* The sentinel speaks only TLS. */
        url = mfree(url);
        url = strdup_printf("127.0.0.1:%s,serviceName=mymaster,connectTimeout=1000", env("SENTINEL_TLS_PORT"));
        expect_refusal(url, -EHOSTUNREACH, "does it need ssl=true?", NULL);
        pumps_gone();
}
END_TEST

/* Last: promotes the replica. */
START_TEST(test_sentinel_failover) {
        _cleanup_free_ char *url = NULL, *replica = NULL;
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_redis_ redisContext *rc = NULL;
        _cleanup_reply_ redisReply *r = NULL;
        char err[256];
        struct obs o;
        struct redis_client *c;

        use_tls("ca.crt", NULL, NULL, false);
        ck_assert_int_ge(sd_event_new(&e), 0);
        url = strdup_printf("127.0.0.1:%s,serviceName=mymaster,ssl=true", env("SENTINEL_TLS_PORT"));
        c = client_new(e, url, &o);
        run_until(e, &o.ups, 1, 10, "connected through the sentinel");
        request(e, "failover");
        /* The watch (TLS to the sentinel) hears +switch-master. */
        run_until(e, &o.ups, 2, 30, "reconnected to the new master");
        ck_assert_int_eq(redis_client_command(c, on_reply, &o, "SET tls:after-failover yes"), 0);
        run_until(e, &o.replies, 1, 10, "SET on the new master");
        ck_assert_str_eq(o.last, "OK");
        client_done(e, c);
        replica = tls_url("REPLICA_TLS_PORT", NULL);
        rc = connect_ok(replica);
        ck_assert_int_eq(redis_command(rc, &r, err, sizeof err, "GET tls:after-failover"), 0);
        ck_assert_str_eq(r->str, "yes");
        redis_ctx_free(TAKE_PTR(rc));
        pumps_gone();
}
END_TEST

static Suite *suite(void) {
        Suite *s = suite_create("tls");
        TCase *t = tcase_create("no server");

        tcase_add_test(t, test_options);
        tcase_add_test(t, test_handshake_timeout);
        tcase_add_test(t, test_handshake_abandoned);
        tcase_add_test(t, test_plain_text_answer);
        tcase_add_test(t, test_connect_refused);
        suite_add_tcase(s, t);
        if (getenv("TLS_UNIT_ONLY"))
                return s;
        t = tcase_create("servers");
        tcase_set_timeout(t, 120);
        tcase_add_test(t, test_sync_roundtrips);
        tcase_add_test(t, test_sync_names);
        tcase_add_test(t, test_sync_untrusted);
        tcase_add_test(t, test_sync_insecure);
        tcase_add_test(t, test_sync_wrong_protocol);
        tcase_add_test(t, test_sync_client_certificates);
        tcase_add_test(t, test_sync_acl_user);
        tcase_add_test(t, test_sync_fork_exec);
        tcase_add_test(t, test_sync_frozen_server);
        tcase_add_test(t, test_async_roundtrips);
        tcase_add_test(t, test_async_untrusted);
        tcase_add_test(t, test_async_acl_and_client_cert);
        tcase_add_test(t, test_async_restart_and_freeze);
        tcase_add_test(t, test_sentinel_sync);
        tcase_add_test(t, test_sentinel_failover);
        suite_add_tcase(s, t);
        return s;
}

int main(void) {
        log_open("test-tls");
        log_force_stderr(1);
        log_set_max_level(LOG_INFO);
        signal(SIGPIPE, SIG_IGN);
        return test_run(suite());
}
