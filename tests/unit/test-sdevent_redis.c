/* Tests for lib/sdevent_redis.c (hiredis async on sd-event) against a real
 * redis started by tests/e2e/sdevent-redis.sh:
 *   REDIS_PORT                  redis for commands and pub/sub
 *   VICTIM_PORT, VICTIM_PID     a second redis this test kills (SIGKILL)
 * Missing variables are a failure, not a skip. */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/async.h>
#include <systemd/sd-event.h>

#include "parse-util.h"
#include "sdevent_redis.h"
#include "strutil.h"
#include "test-main.h"

static int env_int(const char *name) {
        const char *v = getenv(name);
        int i = 0;

        ck_assert_msg(v && *v, "environment variable %s is not set (run through tests/e2e/sdevent-redis.sh)", name);
        ck_assert_int_eq(parse_int(v, &i), 0);
        return i;
}

/* Set by callbacks to end run_loop(): sd_event_exit() would end the loop for good. */
static bool loop_done;
static void done(void) {
        loop_done = true;
}

static uint64_t mono_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

/* Run e until a callback calls done(), failing after secs. */
static void run_loop(sd_event *e, unsigned secs) {
        uint64_t deadline = mono_usec() + secs * 1000000ULL;

        loop_done = false;
        while (!loop_done) {
                ck_assert_int_ge(sd_event_run(e, 100000), 0);
                ck_assert_msg(mono_usec() < deadline, "event loop timed out after %u s", secs);
        }
}

static redisAsyncContext *connect_to(sd_event *e, int port) {
        redisAsyncContext *ac = redisAsyncConnect("127.0.0.1", port);

        ck_assert_ptr_nonnull(ac);
        ck_assert_msg(!ac->err, "connect: %s", ac->errstr);
        ck_assert_int_eq(sdevent_redis_attach(ac, e), 0);
        return ac;
}

static int connected_status = -100;
static void on_connect(const redisAsyncContext *ac, int status) {
        (void) ac;
        connected_status = status;
}

static int disconnected_status = -100;
static void on_disconnect(const redisAsyncContext *ac, int status) {
        disconnected_status = status;
        done();
}

/* --- commands and replies in order ------------------------------------- */

struct order_state {
        sd_event *e;
        int next, total;
};

static void order_cb(redisAsyncContext *ac, void *r, void *privdata) {
        struct order_state *st = ac->data;
        redisReply *reply = r;
        int idx = (int) (intptr_t) privdata;

        ck_assert_ptr_nonnull(reply);
        ck_assert_int_eq(idx, st->next);
        ck_assert_int_eq(reply->type, REDIS_REPLY_INTEGER);
        ck_assert_int_eq(reply->integer, idx + 1);
        if (++st->next == st->total)
                done();
}

START_TEST(test_order) {
        sd_event *e = NULL;
        struct order_state st = { .total = 200 };
        redisAsyncContext *ac;
        char key[64];

        ck_assert_int_ge(sd_event_new(&e), 0);
        st.e = e;
        ac = connect_to(e, env_int("REDIS_PORT"));
        ac->data = &st;
        connected_status = -100;
        ck_assert_int_eq(redisAsyncSetConnectCallback(ac, on_connect), REDIS_OK);
        snprintf(key, sizeof key, "order-%d", getpid());
        ck_assert_int_eq(redisAsyncCommand(ac, NULL, NULL, "DEL %s", key), REDIS_OK);
        for (int i = 0; i < st.total; i++)
                ck_assert_int_eq(redisAsyncCommand(ac, order_cb, (void *) (intptr_t) i, "INCR %s", key), REDIS_OK);
        run_loop(e, 10);
        ck_assert_int_eq(connected_status, REDIS_OK);
        ck_assert_int_eq(st.next, st.total);
        /* Second phase: commands issued after the loop went idle still flow. */
        st.next = 0;
        st.total = 1;
        ck_assert_int_eq(redisAsyncCommand(ac, NULL, NULL, "DEL %s", key), REDIS_OK);
        ck_assert_int_eq(redisAsyncCommand(ac, order_cb, (void *) (intptr_t) 0, "INCR %s", key), REDIS_OK);
        run_loop(e, 10);
        redisAsyncFree(ac);
        sd_event_unref(e);
}
END_TEST

/* --- 1000 pipelined commands, and a large value (partial writes) -------- */

struct pipe_state {
        sd_event *e;
        int replies;
        long long llen;
        size_t biglen;
};

static void pipe_cb(redisAsyncContext *ac, void *r, void *privdata) {
        struct pipe_state *st = ac->data;
        redisReply *reply = r;

        ck_assert_ptr_nonnull(reply);
        ck_assert_int_eq(reply->type, REDIS_REPLY_INTEGER);
        ck_assert_int_eq(reply->integer, (long long) (intptr_t) privdata + 1);
        st->replies++;
}

static void llen_cb(redisAsyncContext *ac, void *r, void *privdata) {
        struct pipe_state *st = ac->data;
        redisReply *reply = r;

        (void) privdata;
        ck_assert_ptr_nonnull(reply);
        st->llen = reply->integer;
}

static void big_cb(redisAsyncContext *ac, void *r, void *privdata) {
        struct pipe_state *st = ac->data;
        redisReply *reply = r;

        (void) privdata;
        ck_assert_ptr_nonnull(reply);
        ck_assert_int_eq(reply->type, REDIS_REPLY_STRING);
        st->biglen = reply->len;
        done();
}

START_TEST(test_pipeline) {
        sd_event *e = NULL;
        struct pipe_state st = { 0 };
        redisAsyncContext *ac;
        char key[64], bigkey[64];
        const size_t big = 4 * 1024 * 1024;
        char *value = malloc(big);

        ck_assert_ptr_nonnull(value);
        memset(value, 'x', big);
        ck_assert_int_ge(sd_event_new(&e), 0);
        st.e = e;
        ac = connect_to(e, env_int("REDIS_PORT"));
        ac->data = &st;
        snprintf(key, sizeof key, "pipe-%d", getpid());
        snprintf(bigkey, sizeof bigkey, "big-%d", getpid());
        ck_assert_int_eq(redisAsyncCommand(ac, NULL, NULL, "DEL %s", key), REDIS_OK);
        for (int i = 0; i < 1000; i++)
                ck_assert_int_eq(redisAsyncCommand(ac, pipe_cb, (void *) (intptr_t) i, "RPUSH %s %d", key, i),
                                 REDIS_OK);
        ck_assert_int_eq(redisAsyncCommand(ac, llen_cb, NULL, "LLEN %s", key), REDIS_OK);
        ck_assert_int_eq(redisAsyncCommand(ac, NULL, NULL, "SET %s %b", bigkey, value, big), REDIS_OK);
        ck_assert_int_eq(redisAsyncCommand(ac, big_cb, NULL, "GET %s", bigkey), REDIS_OK);
        run_loop(e, 20);
        ck_assert_int_eq(st.replies, 1000);
        ck_assert_int_eq(st.llen, 1000);
        ck_assert_uint_eq(st.biglen, big);
        redisAsyncFree(ac);
        sd_event_unref(e);
        free(value);
}
END_TEST

/* --- subscribe + publish ------------------------------------------------ */

struct sub_state {
        sd_event *e;
        redisAsyncContext *pub;
        char channel[64];
        int messages;
        bool subscribed;
};

static void sub_cb(redisAsyncContext *ac, void *r, void *privdata) {
        struct sub_state *st = privdata;
        redisReply *reply = r;

        (void) ac;
        if (!reply)
                return; /* freed at the end */
        ck_assert_int_eq(reply->type, REDIS_REPLY_ARRAY);
        ck_assert_int_eq(reply->elements, 3);
        if (strcmp(reply->element[0]->str, "subscribe") == 0) {
                st->subscribed = true;
                /* Now that the subscription is live, publish from the other connection. */
                ck_assert_int_eq(redisAsyncCommand(st->pub, NULL, NULL, "PUBLISH %s hello-%d", st->channel, 1),
                                 REDIS_OK);
                ck_assert_int_eq(redisAsyncCommand(st->pub, NULL, NULL, "PUBLISH %s hello-%d", st->channel, 2),
                                 REDIS_OK);
        } else if (strcmp(reply->element[0]->str, "message") == 0) {
                char want[32];

                st->messages++;
                ck_assert_str_eq(reply->element[1]->str, st->channel);
                snprintf(want, sizeof want, "hello-%d", st->messages);
                ck_assert_str_eq(reply->element[2]->str, want);
                if (st->messages == 2)
                        done();
        }
}

START_TEST(test_pubsub) {
        sd_event *e = NULL;
        struct sub_state st = { 0 };
        redisAsyncContext *sub, *pub;

        ck_assert_int_ge(sd_event_new(&e), 0);
        st.e = e;
        snprintf(st.channel, sizeof st.channel, "chan-%d", getpid());
        sub = connect_to(e, env_int("REDIS_PORT"));
        pub = connect_to(e, env_int("REDIS_PORT"));
        st.pub = pub;
        ck_assert_int_eq(redisAsyncCommand(sub, sub_cb, &st, "SUBSCRIBE %s", st.channel), REDIS_OK);
        run_loop(e, 10);
        ck_assert(st.subscribed);
        ck_assert_int_eq(st.messages, 2);
        redisAsyncFree(sub);
        redisAsyncFree(pub);
        sd_event_unref(e);
}
END_TEST

/* --- connect failure ----------------------------------------------------- */

static void exit_on_connect(const redisAsyncContext *ac, int status) {
        connected_status = status;
        done();
}

START_TEST(test_connect_refused) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof sa;
        sd_event *e = NULL;
        redisAsyncContext *ac;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(bind(fd, (struct sockaddr *) &sa, sizeof sa), 0);
        ck_assert_int_eq(getsockname(fd, (struct sockaddr *) &sa, &len), 0);
        close(fd);

        ck_assert_int_ge(sd_event_new(&e), 0);
        ac = redisAsyncConnect("127.0.0.1", ntohs(sa.sin_port));
        ck_assert_ptr_nonnull(ac);
        ac->data = e;
        ck_assert_int_eq(sdevent_redis_attach(ac, e), 0);
        ck_assert_int_eq(sdevent_redis_attach(ac, e), -EEXIST);
        connected_status = -100;
        /* No command issued: the adapter still waits for the connect to finish. */
        ck_assert_int_eq(redisAsyncSetConnectCallback(ac, exit_on_connect), REDIS_OK);
        run_loop(e, 10);
        /* hiredis freed ac (and the adapter) after reporting the failure. */
        ck_assert_int_eq(connected_status, REDIS_ERR);
        sd_event_unref(e);
}
END_TEST

/* --- disconnect callback when redis is killed ---------------------------- */

static int pending_null_replies;
static void count_null(redisAsyncContext *ac, void *r, void *privdata) {
        (void) ac;
        (void) privdata;
        if (!r)
                pending_null_replies++;
}

static void kill_on_pong(redisAsyncContext *ac, void *r, void *privdata) {
        redisReply *reply = r;

        (void) privdata;
        ck_assert_ptr_nonnull(reply);
        ck_assert_str_eq(reply->str, "PONG");
        /* A command in flight when the server dies gets a NULL reply. */
        ck_assert_int_eq(redisAsyncCommand(ac, count_null, NULL, "BLPOP never-pushed 30"), REDIS_OK);
        ck_assert_int_eq(kill((pid_t) env_int("VICTIM_PID"), SIGKILL), 0);
}

START_TEST(test_disconnect_on_kill) {
        sd_event *e = NULL;
        redisAsyncContext *ac;

        ck_assert_int_ge(sd_event_new(&e), 0);
        ac = connect_to(e, env_int("VICTIM_PORT"));
        ac->data = e;
        disconnected_status = -100;
        pending_null_replies = 0;
        ck_assert_int_eq(redisAsyncSetDisconnectCallback(ac, on_disconnect), REDIS_OK);
        ck_assert_int_eq(redisAsyncCommand(ac, kill_on_pong, NULL, "PING"), REDIS_OK);
        run_loop(e, 10);
        ck_assert_int_eq(disconnected_status, REDIS_ERR);
        ck_assert_int_eq(pending_null_replies, 1);
        /* hiredis freed the context; the loop holds no source of it any more. */
        sd_event_unref(e);
}
END_TEST

/* --- redisAsyncFree with pending callbacks -------------------------------- */

static int free_disconnects;
static void count_disconnect(const redisAsyncContext *ac, int status) {
        (void) ac;
        (void) status;
        free_disconnects++;
}

static void free_from_callback(redisAsyncContext *ac, void *r, void *privdata) {
        (void) privdata;
        ck_assert_ptr_nonnull(r);
        /* Freeing from inside a reply callback: hiredis defers it until we return. */
        redisAsyncFree(ac);
        done();
}

START_TEST(test_free_with_pending) {
        sd_event *e = NULL;
        redisAsyncContext *ac;

        ck_assert_int_ge(sd_event_new(&e), 0);

        /* 1: free before anything was sent. */
        pending_null_replies = 0;
        free_disconnects = 0;
        ac = connect_to(e, env_int("REDIS_PORT"));
        ck_assert_int_eq(redisAsyncSetDisconnectCallback(ac, count_disconnect), REDIS_OK);
        for (int i = 0; i < 50; i++)
                ck_assert_int_eq(redisAsyncCommand(ac, count_null, NULL, "PING"), REDIS_OK);
        redisAsyncFree(ac);
        ck_assert_int_eq(pending_null_replies, 50);
        ck_assert_int_eq(free_disconnects, 0); /* never connected: hiredis reports no disconnect */

        /* 2: free from a reply callback while more replies (and a blocked BLPOP) are pending. */
        pending_null_replies = 0;
        ac = connect_to(e, env_int("REDIS_PORT"));
        ck_assert_int_eq(redisAsyncCommand(ac, free_from_callback, e, "PING"), REDIS_OK);
        ck_assert_int_eq(redisAsyncCommand(ac, count_null, NULL, "BLPOP never-pushed 30"), REDIS_OK);
        for (int i = 0; i < 10; i++)
                ck_assert_int_eq(redisAsyncCommand(ac, count_null, NULL, "PING"), REDIS_OK);
        run_loop(e, 10);
        ck_assert_int_eq(pending_null_replies, 11);

        /* 3: free while connected and idle-waiting on a blocked command, outside any callback. */
        pending_null_replies = 0;
        free_disconnects = 0;
        ac = connect_to(e, env_int("REDIS_PORT"));
        ck_assert_int_eq(redisAsyncSetDisconnectCallback(ac, count_disconnect), REDIS_OK);
        ck_assert_int_eq(redisAsyncCommand(ac, count_null, NULL, "BLPOP never-pushed 30"), REDIS_OK);
        /* Run the loop briefly so the command is really on the wire. */
        for (int i = 0; i < 20; i++)
                ck_assert_int_ge(sd_event_run(e, 10000), 0);
        redisAsyncFree(ac);
        ck_assert_int_eq(pending_null_replies, 1);
        ck_assert_int_eq(free_disconnects, 1);
        /* The loop still runs: nothing of the freed contexts is left registered
         * (valgrind run: no leaked sources). */
        ck_assert_int_ge(sd_event_run(e, 0), 0);
        sd_event_unref(e);
}
END_TEST

static Suite *sdevent_redis_suite(void) {
        Suite *s = suite_create("sdevent_redis");
        TCase *tc = tcase_create("core");

        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_order);
        tcase_add_test(tc, test_pipeline);
        tcase_add_test(tc, test_pubsub);
        tcase_add_test(tc, test_connect_refused);
        tcase_add_test(tc, test_free_with_pending);
        tcase_add_test(tc, test_disconnect_on_kill); /* last: kills the victim redis */
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        signal(SIGPIPE, SIG_IGN);
        return test_run(sdevent_redis_suite());
}
