/* Tests for lib/redis_client.c, run by tests/e2e/redis-client.sh against real
 * servers:
 *   REDIS_PORT                 a redis the script kills/restarts/freezes on request
 *   SENTINEL_URL               a sentinel monitoring it as "mymaster"
 *   REPLICA_PORT               its replica, promoted by the last test (failover)
 *   AUTH_PORT, AUTH_PASSWORD   a redis with --requirepass, and on it the ACL user
 *                              "coord" (Coord-Acl-Pw9) limited to ~coord:* &coord:*;
 *                              the set_url tests add users "rot" and "rot2"
 *   CTL_DIR                    requests to the script: write CTL_DIR/request,
 *                              wait for CTL_DIR/ack
 * Missing variables are a failure, not a skip. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "macro.h"
#include "redis.h"
#include "redis_client.h"
#include "redis_url.h"
#include "strutil.h"
#include "test-main.h"
#include "test-request.h"

static const char *env(const char *name) {
        const char *v = getenv(name);
        ck_assert_msg(v && *v, "environment variable %s is not set (run through tests/e2e/redis-client.sh)", name);
        return v;
}

static uint64_t mono_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

/* Everything a test observes. */
struct obs {
        int states[16];
        unsigned n_states;
        unsigned messages;
        char last_message[128];
        unsigned replies, null_replies;
        char last_reply[128];
        bool free_in_callback;
};

static void on_state(struct redis_client *c, bool connected, void *userdata) {
        struct obs *o = userdata;

        ck_assert_int_eq(redis_client_is_connected(c), connected);
        if (o->n_states < ELEMENTSOF(o->states))
                o->states[o->n_states++] = connected;
}

static void on_message(struct redis_client *c, const char *channel, const char *data, size_t len, void *userdata) {
        struct obs *o = userdata;

        (void) c;
        (void) channel;
        o->messages++;
        snprintf(o->last_message, sizeof o->last_message, "%.*s", (int) len, data);
}

static void on_reply(struct redis_client *c, redisReply *reply, void *userdata) {
        struct obs *o = userdata;

        (void) c;
        if (!reply) {
                o->null_replies++;
                return;
        }
        o->replies++;
        if (reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_STATUS || reply->type == REDIS_REPLY_ERROR)
                snprintf(o->last_reply, sizeof o->last_reply, "%s", reply->str);
        else if (reply->type == REDIS_REPLY_INTEGER)
                snprintf(o->last_reply, sizeof o->last_reply, "%lld", reply->integer);
        else
                snprintf(o->last_reply, sizeof o->last_reply, "type %d", reply->type);
}

/* Run the loop until cond(o) holds; fail after secs. Returns elapsed usec. */
static uint64_t run_until(sd_event *e, struct obs *o, bool (*cond)(struct obs *o), unsigned secs, const char *what) {
        uint64_t t0 = mono_usec(), deadline = t0 + secs * 1000000ULL;

        while (!cond(o)) {
                ck_assert_int_ge(sd_event_run(e, 50000), 0);
                ck_assert_msg(mono_usec() < deadline, "timed out after %u s waiting for %s", secs, what);
        }
        return mono_usec() - t0;
}

static bool last_state_up(struct obs *o) {
        return o->n_states > 0 && o->states[o->n_states - 1] == 1;
}
static bool last_state_down(struct obs *o) {
        return o->n_states > 0 && o->states[o->n_states - 1] == 0;
}
static unsigned want_replies, want_messages;
static bool got_replies(struct obs *o) {
        return o->replies + o->null_replies >= want_replies;
}
static bool got_messages(struct obs *o) {
        return o->messages >= want_messages;
}

/* Run the loop until sub has n messages; the last one must be want. */
static void expect_message(sd_event *e, struct obs *sub, unsigned n, const char *want, const char *what) {
        want_messages = n;
        run_until(e, sub, got_messages, 10, what);
        ck_assert_str_eq(sub->last_message, want);
}

/* Turn the loop n times, each turn waiting at most usec. */
static void run_turns(sd_event *e, unsigned n, uint64_t usec) {
        for (unsigned i = 0; i < n; i++)
                ck_assert_int_ge(sd_event_run(e, usec), 0);
}

/* Turn the loop for usec (each turn waiting at most 50 ms). */
static void run_for(sd_event *e, uint64_t usec) {
        for (uint64_t until = mono_usec() + usec; mono_usec() < until;)
                ck_assert_int_ge(sd_event_run(e, 50000), 0);
}

/* Ask the e2e script to act on the redis and wait for it, keeping the loop turning. */
static void request(sd_event *e, const char *what) {
        test_request(e, env("CTL_DIR"), what, 30);
}

static struct redis_url *parse(const char *s) {
        struct redis_url *u = NULL;
        char err[256];

        ck_assert_msg(redis_url_parse(s, &u, err, sizeof err) == 0, "%s: %s", s, err);
        return u;
}

/* Publish from a separate synchronous connection. */
static void publish_sync(const char *url, const char *channel, const char *msg) {
        struct redis_url *u = parse(url);
        _cleanup_redis_ redisContext *rc = NULL;
        _cleanup_reply_ redisReply *reply = NULL;
        char err[256];

        ck_assert_msg(redis_connect(u, 2000000, &rc, err, sizeof err) == 0, "%s", err);
        ck_assert_int_eq(redis_command(rc, &reply, err, sizeof err, "PUBLISH %s %s", channel, msg), 0);
        redis_url_free(u);
}

static char *plain_url(void) {
        return strdup_printf("127.0.0.1:%s", env("REDIS_PORT"));
}

/* A new event loop in *e and on it a client of url reporting to o (not
 * connected yet; the client keeps its own copy of the parsed url). */
static struct redis_client *client_new(sd_event **e, const char *url, struct obs *o) {
        struct redis_url *u = parse(url);
        struct redis_client *c = NULL;

        ck_assert_int_ge(sd_event_new(e), 0);
        ck_assert_int_eq(redis_client_new(*e, u, on_state, o, &c), 0);
        redis_url_free(u);
        return c;
}

static void client_done(struct redis_client *c, sd_event *e) {
        redis_client_free(c);
        sd_event_unref(e);
}

START_TEST(test_commands) {
        sd_event *e = NULL;
        struct obs o = { 0 };
        _cleanup_free_ char *url = plain_url();
        struct redis_client *c = client_new(&e, url, &o);
        const char *argv[] = { "SET", "client-bin", "x\0y" };
        const size_t argvlen[] = { 3, 10, 3 };

        /* Not connected yet: refused at once, callback not called. */
        ck_assert(!redis_client_is_connected(c));
        ck_assert_int_eq(redis_client_command(c, on_reply, &o, "PING"), -ENOTCONN);
        run_until(e, &o, last_state_up, 10, "connect");
        ck_assert_int_eq(o.n_states, 1);

        ck_assert_int_eq(redis_client_command(c, on_reply, &o, "SET %s %s", "client-key", "v1"), 0);
        ck_assert_int_eq(redis_client_command(c, on_reply, &o, "GET %s", "client-key"), 0);
        want_replies = 2;
        run_until(e, &o, got_replies, 10, "replies");
        ck_assert_str_eq(o.last_reply, "v1");
        ck_assert_int_eq(redis_client_commandargv(c, on_reply, &o, 3, argv, argvlen), 0);
        ck_assert_int_eq(redis_client_command(c, NULL, NULL, "INCR client-counter"), 0); /* no callback */
        ck_assert_int_eq(redis_client_command(c, on_reply, &o, "INCR %s", "client-key"), 0);
        want_replies = 4;
        run_until(e, &o, got_replies, 10, "replies");
        /* Error replies are passed through. */
        ck_assert_msg(strstr(o.last_reply, "not an integer"), "%s", o.last_reply);
        ck_assert_int_eq(o.null_replies, 0);
        ck_assert_uint_eq(redis_client_reconnects(c), 0);

        client_done(c, e);
}
END_TEST

static void test_restart_via(const char *url) {
        sd_event *e = NULL;
        struct obs o = { 0 }, sub = { 0 };
        struct redis_client *c = client_new(&e, url, &o);
        _cleanup_free_ char *direct = plain_url();
        char channel[64];

        snprintf(channel, sizeof channel, "restart-%d", getpid());
        /* Subscribed before the first connect. */
        ck_assert_int_eq(redis_client_subscribe(c, channel, on_message, &sub), 0);
        run_until(e, &o, last_state_up, 10, "connect");
        publish_sync(direct, channel, "before");
        expect_message(e, &sub, 1, "before", "message before restart");

        /* A command in flight when redis dies gets a NULL reply. */
        ck_assert_int_eq(redis_client_command(c, on_reply, &o, "BLPOP never-pushed 30"), 0);
        request(NULL, "kill");
        run_until(e, &o, last_state_down, 15, "loss noticed");
        ck_assert_int_eq(o.null_replies, 1);
        ck_assert(!redis_client_is_connected(c));
        /* Commands while down fail at once; nothing crashes, no callback. */
        for (int i = 0; i < 100; i++)
                ck_assert_int_eq(redis_client_command(c, on_reply, &o, "PING"), -ENOTCONN);
        ck_assert_int_eq(o.replies, 0);
        /* Let a few reconnect attempts fail against the dead port. */
        run_turns(e, 10, 50000);
        ck_assert(!redis_client_is_connected(c));

        request(e, "start");
        run_until(e, &o, last_state_up, 20, "reconnect");
        ck_assert_int_eq(o.n_states, 3);
        ck_assert_int_eq(o.states[0], 1);
        ck_assert_int_eq(o.states[1], 0);
        ck_assert_int_eq(o.states[2], 1);
        ck_assert_uint_eq(redis_client_reconnects(c), 1);

        /* Re-subscribed: a publish after the restart is delivered. */
        publish_sync(direct, channel, "after");
        expect_message(e, &sub, 2, "after", "message after restart");
        /* And commands work again. */
        ck_assert_int_eq(redis_client_command(c, on_reply, &o, "PING"), 0);
        want_replies = 2;
        run_until(e, &o, got_replies, 10, "PING after restart");
        ck_assert_str_eq(o.last_reply, "PONG");

        client_done(c, e);
}

START_TEST(test_restart) {
        _cleanup_free_ char *url = plain_url();
        test_restart_via(url);
}
END_TEST

START_TEST(test_restart_sentinel) {
        test_restart_via(env("SENTINEL_URL"));
}
END_TEST

START_TEST(test_hung_server) {
        sd_event *e = NULL;
        struct obs o = { 0 };
        _cleanup_free_ char *url = plain_url();
        struct redis_client *c = client_new(&e, url, &o);
        uint64_t took;

        redis_client_set_keepalive(c, 200000, 1000000);
        run_until(e, &o, last_state_up, 10, "connect");
        /* Idle but alive: keepalive must not flap the connection. */
        run_for(e, 1500000);
        ck_assert_int_eq(o.n_states, 1);

        /* A frozen server keeps TCP up; only the keepalive notices. */
        request(e, "stop");
        took = run_until(e, &o, last_state_down, 10, "hung server noticed");
        ck_assert_msg(took < 5000000, "noticed after %llu us", (unsigned long long) took);
        request(e, "cont");
        run_until(e, &o, last_state_up, 20, "reconnect after SIGCONT");
        ck_assert_uint_ge(redis_client_reconnects(c), 1);

        client_done(c, e);
}
END_TEST

START_TEST(test_auth_db) {
        sd_event *e = NULL;
        struct obs o = { 0 };
        struct redis_client *c = NULL;
        _cleanup_free_ char *url = NULL, *direct = NULL;
        struct redis_url *u;
        _cleanup_redis_ redisContext *rc = NULL;
        _cleanup_reply_ redisReply *reply = NULL;
        char err[256];

        url = strdup_printf("127.0.0.1:%s,password=%s,defaultDatabase=5", env("AUTH_PORT"), env("AUTH_PASSWORD"));
        c = client_new(&e, url, &o);
        run_until(e, &o, last_state_up, 10, "connect with auth");
        ck_assert_int_eq(redis_client_command(c, on_reply, &o, "SET in-db-5 yes"), 0);
        want_replies = 1;
        run_until(e, &o, got_replies, 10, "SET");
        client_done(c, e);

        /* It landed in db 5. */
        direct = strdup_printf("redis://:%s@127.0.0.1:%s/5", env("AUTH_PASSWORD"), env("AUTH_PORT"));
        u = parse(direct);
        ck_assert_msg(redis_connect(u, 2000000, &rc, err, sizeof err) == 0, "%s", err);
        redis_url_free(u);
        ck_assert_int_eq(redis_command(rc, &reply, err, sizeof err, "GET in-db-5"), 0);
        ck_assert_int_eq(reply->type, REDIS_REPLY_STRING);
        ck_assert_str_eq(reply->str, "yes");
}
END_TEST

/* An ACL user that may only use coord:* keys and channels: the client's own
 * keepalive channel must be within that, or it would never come up. */
START_TEST(test_acl_user_limited) {
        sd_event *e = NULL;
        struct obs o = { 0 }, sub = { 0 };
        struct redis_client *c = NULL;
        _cleanup_free_ char *url = NULL, *direct = NULL;

        url = strdup_printf("redis://coord:Coord-Acl-Pw9@127.0.0.1:%s", env("AUTH_PORT"));
        c = client_new(&e, url, &o);
        redis_client_set_keepalive(c, 100000, 2000000);
        ck_assert_int_eq(redis_client_subscribe(c, "coord:test:acl", on_message, &sub), 0);
        run_until(e, &o, last_state_up, 10, "connect as a limited ACL user");
        direct = strdup_printf("redis://coord:Coord-Acl-Pw9@127.0.0.1:%s", env("AUTH_PORT"));
        publish_sync(direct, "coord:test:acl", "acl-ok");
        expect_message(e, &sub, 1, "acl-ok", "message as a limited ACL user");
        /* Keepalive probes flow (100 ms interval): still up after several. */
        run_for(e, 700000);
        ck_assert_int_eq(o.n_states, 1);
        ck_assert(redis_client_is_connected(c));
        client_done(c, e);
}
END_TEST

START_TEST(test_wrong_password) {
        sd_event *e = NULL;
        struct obs o = { 0 };
        _cleanup_free_ char *url = strdup_printf("127.0.0.1:%s,password=Not-The-Password", env("AUTH_PORT"));
        struct redis_client *c = client_new(&e, url, &o);

        /* It keeps trying (with backoff) but never reports connected. */
        run_for(e, 1500000);
        ck_assert_int_eq(o.n_states, 0);
        ck_assert(!redis_client_is_connected(c));
        client_done(c, e);
}
END_TEST

START_TEST(test_tls_refused) {
        sd_event *e = NULL;
        struct redis_client *c = NULL;
        _cleanup_free_ char *url = strdup_printf("127.0.0.1:%s,ssl=true", env("REDIS_PORT"));
        struct redis_url *u = parse(url);
        uint64_t until = mono_usec() + 1500000;

        /* TLS against a plain-text server: it never connects (no fallback). */
        ck_assert_int_ge(sd_event_new(&e), 0);
        u->connect_timeout_ms = 300;
        ck_assert_int_eq(redis_client_new(e, u, NULL, NULL, &c), 0);
        while (mono_usec() < until)
                ck_assert_int_ge(sd_event_run(e, 50000), 0);
        ck_assert(!redis_client_is_connected(c));
        redis_client_free(c);
        redis_url_free(u);
        sd_event_unref(e);
}
END_TEST

/* ---- redis_client_set_url(): new credentials, make before break ---- */

struct swap {
        unsigned calls;
        int error;
        char reason[256];
};

static void on_swap(struct redis_client *c, int error, const char *reason, void *userdata) {
        struct swap *w = userdata;

        (void) c;
        w->calls++;
        w->error = error;
        snprintf(w->reason, sizeof w->reason, "%s", reason ? reason : "");
}

static struct swap *swap_watched;
static bool swap_done(struct obs *o) {
        (void) o;
        return swap_watched->calls > 0;
}

static void wait_swap(sd_event *e, struct obs *o, struct swap *w, const char *what) {
        swap_watched = w;
        run_until(e, o, swap_done, 15, what);
}

/* Run a command on the admin (default) user of the AUTH server. */
static void admin(const char *fmt, const char *a1, const char *a2) {
        _cleanup_free_ char *url = strdup_printf("redis://:%s@127.0.0.1:%s", env("AUTH_PASSWORD"), env("AUTH_PORT"));
        struct redis_url *u = parse(url);
        _cleanup_redis_ redisContext *rc = NULL;
        _cleanup_reply_ redisReply *reply = NULL;
        char err[256];

        ck_assert_msg(redis_connect(u, 2000000, &rc, err, sizeof err) == 0, "%s", err);
        redis_url_free(u);
        ck_assert_msg(redis_command(rc, &reply, err, sizeof err, fmt, a1, a2) == 0, "%s: %s", fmt, err);
}

static char *user_url_string(const char *user, const char *password) {
        return strdup_printf("redis://%s:%s@127.0.0.1:%s", user, password, env("AUTH_PORT"));
}

static struct redis_url *user_url(const char *user, const char *password) {
        _cleanup_free_ char *url = user_url_string(user, password);
        return parse(url);
}

/* Give c the URL of user on the AUTH server (redis_client_set_url()) and wait
 * until the attempt reports to w (cleared first). */
static void swap_to(sd_event *e, struct redis_client *c, struct obs *o, struct swap *w, const char *user,
                    const char *password,
                    const char *what) {
        struct redis_url *u = user_url(user, password);
        char err[256] = "";

        memset(w, 0, sizeof *w);
        ck_assert_int_eq(redis_client_set_url(c, u, NULL, on_swap, w, err, sizeof err), 0);
        redis_url_free(u);
        wait_swap(e, o, w, what);
}

/* ACL WHOAMI through the client: who the command connection is. */
static void expect_whoami(sd_event *e, struct redis_client *c, struct obs *o, const char *user) {
        ck_assert_int_eq(redis_client_command(c, on_reply, o, "ACL WHOAMI"), 0);
        want_replies = o->replies + o->null_replies + 1;
        run_until(e, o, got_replies, 10, "ACL WHOAMI");
        ck_assert_str_eq(o->last_reply, user);
}

/* Rotation as an operator does it: the password changes on the server (the
 * connections already authenticated stay so), then the client is given it. */
START_TEST(test_set_url_rotation) {
        sd_event *e = NULL;
        struct obs o = { 0 }, sub = { 0 }, held = { 0 };
        struct swap w = { 0 };
        struct redis_client *c = NULL;
        _cleanup_free_ char *url = user_url_string("rot", "Rot-Old-Pw1");

        admin("ACL SETUSER %s on resetpass >%s ~coord:* &coord:* +@all", "rot", "Rot-Old-Pw1");
        c = client_new(&e, url, &o);
        ck_assert_int_eq(redis_client_subscribe(c, "coord:test:swap", on_message, &sub), 0);
        run_until(e, &o, last_state_up, 10, "connect as rot");
        admin("ACL SETUSER %s resetpass >%s", "rot", "Rot-New-Pw2");

        /* A wrong password: refused, the working connection stays. */
        swap_to(e, c, &o, &w, "rot", "Rot-Wrong-Pw3", "the wrong password refused");
        ck_assert_int_eq(w.error, -EACCES);
        ck_assert_msg(strstr(w.reason, "WRONGPASS") && !strstr(w.reason, "Rot-Wrong-Pw3"), "%s", w.reason);
        ck_assert(redis_client_is_connected(c));
        expect_whoami(e, c, &o, "rot");

        /* The right one: swapped without a disconnection; a command in flight
         * on the old connection still gets its real reply. */
        ck_assert_int_eq(redis_client_command(c, on_reply, &held, "BLPOP coord:never-pushed 1"), 0);
        swap_to(e, c, &o, &w, "rot", "Rot-New-Pw2", "the new password taken");
        ck_assert_msg(w.error == 0, "swap failed: %s", w.reason);
        ck_assert_int_eq(held.replies + held.null_replies, 0); /* still blocked on the old connection */
        want_replies = 1;
        run_until(e, &held, got_replies, 5, "BLPOP on the retired connection");
        ck_assert_int_eq(held.null_replies, 0);
        ck_assert_int_eq(o.n_states, 1);
        ck_assert_uint_eq(redis_client_reconnects(c), 0);

        /* Now another user: commands and the subscription moved with it. */
        admin("ACL SETUSER %s on >%s ~coord:* &coord:* +@all", "rot2", "Rot2-Pw4");
        swap_to(e, c, &o, &w, "rot2", "Rot2-Pw4", "the second user taken");
        ck_assert_msg(w.error == 0, "swap failed: %s", w.reason);
        expect_whoami(e, c, &o, "rot2");
        admin("ACL SETUSER %s off %s", "rot", "resetpass"); /* the old user may go now */
        admin("CLIENT KILL USER %s%s", "rot", "");
        admin("PUBLISH %s %s", "coord:test:swap", "after-swap");
        expect_message(e, &sub, 1, "after-swap", "message after the swap");
        run_turns(e, 10, 20000);
        ck_assert_int_eq(sub.messages, 1);
        ck_assert_int_eq(o.n_states, 1);
        ck_assert(redis_client_is_connected(c));

        client_done(c, e);
}
END_TEST

/* A newer call supersedes a pending one; a dead endpoint fails; freeing the
 * client with an attempt pending calls nobody. */
START_TEST(test_set_url_edges) {
        sd_event *e = NULL;
        struct obs o = { 0 };
        struct swap w1 = { 0 }, w2 = { 0 }, w3 = { 0 };
        struct redis_client *c = NULL;
        _cleanup_free_ char *plain = plain_url();
        struct redis_url *u = parse(plain), *dead;
        char err[256] = "";

        ck_assert_int_ge(sd_event_new(&e), 0);
        ck_assert_int_eq(redis_client_new(e, u, on_state, &o, &c), 0);
        run_until(e, &o, last_state_up, 10, "connect");
        ck_assert_int_eq(redis_client_set_url(c, u, NULL, on_swap, &w1, err, sizeof err), 0);
        ck_assert_int_eq(redis_client_set_url(c, u, NULL, on_swap, &w2, err, sizeof err), 0);
        ck_assert_int_eq(w1.calls, 1); /* at once, from within the second call */
        ck_assert_int_eq(w1.error, -ECANCELED);
        wait_swap(e, &o, &w2, "the second attempt");
        ck_assert_int_eq(w2.error, 0);
        ck_assert_int_eq(w1.calls, 1);

        dead = parse("127.0.0.1:1,connectTimeout=500");
        ck_assert_int_eq(redis_client_set_url(c, dead, NULL, on_swap, &w3, err, sizeof err), 0);
        wait_swap(e, &o, &w3, "the dead endpoint");
        ck_assert_int_lt(w3.error, 0);
        ck_assert(redis_client_is_connected(c));
        ck_assert_int_eq(o.n_states, 1);

        memset(&w3, 0, sizeof w3);
        ck_assert_int_eq(redis_client_set_url(c, dead, NULL, on_swap, &w3, err, sizeof err), 0);
        redis_client_free(c);
        run_turns(e, 10, 20000);
        ck_assert_int_eq(w3.calls, 0);
        redis_url_free(dead);
        redis_url_free(u);
        sd_event_unref(e);
}
END_TEST

/* Freeing the client from inside its own callbacks. */
static void free_on_reply(struct redis_client *c, redisReply *reply, void *userdata) {
        struct obs *o = userdata;

        ck_assert_ptr_nonnull(reply);
        o->replies++;
        redis_client_free(c);
}

static void free_on_state(struct redis_client *c, bool connected, void *userdata) {
        struct obs *o = userdata;

        if (o->n_states < ELEMENTSOF(o->states))
                o->states[o->n_states++] = connected;
        if (o->free_in_callback)
                redis_client_free(c);
}

static void count_only(struct redis_client *c, redisReply *reply, void *userdata) {
        struct obs *o = userdata;

        /* Completed by the free with a NULL reply; the client refuses new work. */
        ck_assert_ptr_null(reply);
        ck_assert(!redis_client_is_connected(c));
        ck_assert_int_eq(redis_client_command(c, NULL, NULL, "PING"), -ENOTCONN);
        ck_assert_ptr_null(redis_client_free(c)); /* a second free is harmless */
        o->null_replies++;
}

START_TEST(test_free_in_callbacks) {
        sd_event *e = NULL;
        struct obs o = { 0 };
        struct redis_client *c = NULL;
        _cleanup_free_ char *url = plain_url();
        struct redis_url *u = parse(url);

        ck_assert_int_ge(sd_event_new(&e), 0);

        /* From a reply callback, with more commands pending behind it. */
        ck_assert_int_eq(redis_client_new(e, u, on_state, &o, &c), 0);
        run_until(e, &o, last_state_up, 10, "connect");
        ck_assert_int_eq(redis_client_command(c, free_on_reply, &o, "PING"), 0);
        for (int i = 0; i < 20; i++)
                ck_assert_int_eq(redis_client_command(c, count_only, &o, "PING"), 0);
        ck_assert_int_eq(redis_client_subscribe(c, "free-test", on_message, &o), 0);
        want_replies = 1;
        run_until(e, &o, got_replies, 10, "reply");
        /* The 20 commands behind it were completed with NULL by the free. */
        ck_assert_int_eq(o.null_replies, 20);
        ck_assert_int_eq(o.replies, 1);
        run_turns(e, 10, 10000);
        ck_assert_int_eq(o.null_replies, 20);

        /* From on_state(true). */
        memset(&o, 0, sizeof o);
        o.free_in_callback = true;
        ck_assert_int_eq(redis_client_new(e, u, free_on_state, &o, &c), 0);
        run_until(e, &o, last_state_up, 10, "connect");
        run_turns(e, 10, 10000);
        ck_assert_int_eq(o.n_states, 1);

        /* Free while still connecting, and right after creation. */
        ck_assert_int_eq(redis_client_new(e, u, on_state, &o, &c), 0);
        redis_client_free(c);
        run_turns(e, 10, 10000);

        redis_url_free(u);
        sd_event_unref(e);
}
END_TEST

/* Through sentinel, across a failover: the client ends up on the new master. */
static bool reconnected_once(struct obs *o) {
        return o->n_states >= 3 && o->states[o->n_states - 1] == 1;
}

START_TEST(test_sentinel_failover) {
        sd_event *e = NULL;
        struct obs o = { 0 }, sub = { 0 };
        struct redis_client *c = client_new(&e, env("SENTINEL_URL"), &o);
        _cleanup_free_ char *replica = strdup_printf("127.0.0.1:%s", env("REPLICA_PORT"));
        char channel[64];
        uint64_t t0, took;

        snprintf(channel, sizeof channel, "failover-%d", getpid());
        ck_assert_int_eq(redis_client_subscribe(c, channel, on_message, &sub), 0);
        run_until(e, &o, last_state_up, 10, "connect via sentinel");
        ck_assert_int_eq(redis_client_command(c, on_reply, &o, "CONFIG GET port"), 0);
        want_replies = 1;
        run_until(e, &o, got_replies, 10, "CONFIG GET");
        ck_assert_str_eq(o.last_reply, "type 2"); /* an array */

        request(e, "failover");
        /* The client hears "+switch-master" from the sentinel and moves at once;
         * without that it would keep writing to the old master until sentinel
         * demotes it about 10 s later (then READONLY or a killed connection). */
        t0 = mono_usec();
        while (!reconnected_once(&o) && mono_usec() < t0 + 20000000) {
                (void) redis_client_command(c, NULL, NULL, "SET failover-probe 1");
                run_turns(e, 4, 50000);
        }
        ck_assert_msg(reconnected_once(&o), "client did not reconnect after the failover (%u states)", o.n_states);
        took = mono_usec() - t0;
        ck_assert_msg(took < 5000000, "reconnect to the new master took %llu us after the switch",
                      (unsigned long long) took);

        /* Now on the promoted replica: it is a master and takes writes. */
        ck_assert_int_eq(redis_client_command(c, on_reply, &o, "SET after-failover %s", "new-master"), 0);
        want_replies = o.replies + o.null_replies + 1;
        run_until(e, &o, got_replies, 10, "SET after failover");
        ck_assert_str_eq(o.last_reply, "OK");
        {
                struct redis_url *d = parse(replica);
                _cleanup_redis_ redisContext *rc = NULL;
                _cleanup_reply_ redisReply *reply = NULL;
                char err[256];

                ck_assert_msg(redis_connect(d, 2000000, &rc, err, sizeof err) == 0, "%s", err);
                redis_url_free(d);
                ck_assert_int_eq(redis_command(rc, &reply, err, sizeof err, "GET after-failover"), 0);
                ck_assert_int_eq(reply->type, REDIS_REPLY_STRING);
                ck_assert_str_eq(reply->str, "new-master");
        }
        /* Subscriptions followed: a publish on the new master arrives. */
        publish_sync(replica, channel, "on-new-master");
        expect_message(e, &sub, 1, "on-new-master", "message on the new master");

        client_done(c, e);
}
END_TEST

static Suite *redis_client_suite(void) {
        Suite *s = suite_create("redis_client");
        TCase *tc = tcase_create("core");

        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_commands);
        tcase_add_test(tc, test_tls_refused);
        tcase_add_test(tc, test_auth_db);
        tcase_add_test(tc, test_acl_user_limited);
        tcase_add_test(tc, test_wrong_password);
        tcase_add_test(tc, test_set_url_rotation);
        tcase_add_test(tc, test_set_url_edges);
        tcase_add_test(tc, test_free_in_callbacks);
        tcase_add_test(tc, test_restart);
        tcase_add_test(tc, test_restart_sentinel);
        tcase_add_test(tc, test_hung_server);
        tcase_add_test(tc, test_sentinel_failover); /* last: the replica becomes master */
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        signal(SIGPIPE, SIG_IGN);
        return test_run(redis_client_suite());
}
