/* Tests for lib/lock.c against a real redis-server that this test starts itself, on a
 * free loopback port in a temporary directory (stopped at the end; it also dies with the
 * test through PR_SET_PDEATHSIG).  A missing redis-server is a failure, not a skip.
 *
 * The scripts are checked by what they do, not by their text: each one is loaded with
 * SCRIPT LOAD (a syntax error fails), then run by hand (fencing tokens, stale tokens)
 * and through the API (lease expiry, the keeper, a waiter handed the lock).  Outages,
 * restarts and stopped holders are tested in tests/e2e/lock-*.sh. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "duration.h"
#include "keys.h"
#include "lock.h"
#include "redis.h"
#include "redis_url.h"
#include "strutil.h"
#include "test-main.h"

#define NS "test"

static char server_dir[] = "/tmp/coord-test-lock.XXXXXX";
static pid_t server_pid = -1;
static int server_port;
static char server_url[64];

/* ---- the server -------------------------------------------------------------------------------- */

/* A port nobody listens on now (bound, then closed: the server may still lose a race for it,
 * which redis_start() notices and retries). */
static int free_port(void) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof sa;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port;

        if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0 ||
            getsockname(fd, (struct sockaddr *) &sa, &len) < 0) {
                perror("free_port");
                exit(EXIT_FAILURE);
        }
        port = ntohs(sa.sin_port);
        close(fd);
        return port;
}

static pid_t redis_spawn(int port) {
        char p[16], log[sizeof server_dir + 16];
        pid_t pid;

        snprintf(p, sizeof p, "%d", port);
        snprintf(log, sizeof log, "%s/redis.log", server_dir);
        pid = fork();
        if (pid < 0) {
                perror("fork");
                exit(EXIT_FAILURE);
        }
        if (pid == 0) {
                int null = open("/dev/null", O_RDWR | O_CLOEXEC);

                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (null >= 0) {
                        (void) dup2(null, STDIN_FILENO);
                        (void) dup2(null, STDOUT_FILENO);
                }
                execlp("redis-server", "redis-server", "--port", p, "--bind", "127.0.0.1", "--dir", server_dir,
                       "--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", log, (char *) NULL);
                fprintf(stderr, "test-lock: cannot run redis-server: %m (it must be installed)\n");
                _exit(127);
        }
        return pid;
}

/* Whether the server on port answers, and is ours (INFO names its process id): with tests
 * running in parallel, another test's server may hold the port we picked. */
static bool redis_is_ours(int port, pid_t pid) {
        _cleanup_redis_ redisContext *c = redisConnect("127.0.0.1", port);
        _cleanup_reply_ redisReply *info = NULL;
        char want[32];

        if (!c || c->err)
                return false;
        info = redis_ctx_command(c, "INFO server");
        snprintf(want, sizeof want, "process_id:%ld\r", (long) pid);
        return info && info->type == REDIS_REPLY_STRING && strstr(info->str, want);
}

static void redis_start(void) {
        if (!mkdtemp(server_dir)) {
                perror("mkdtemp");
                exit(EXIT_FAILURE);
        }
        for (int attempt = 0; attempt < 5; attempt++) {
                int port = free_port(), status = 0;
                pid_t pid = redis_spawn(port);
                uint64_t until = now_usec() + 10 * USEC_PER_SEC;
                bool exited = false;

                while (now_usec() < until && !(exited = waitpid(pid, &status, WNOHANG) == pid)) {
                        if (redis_is_ours(port, pid)) {
                                server_pid = pid;
                                server_port = port;
                                snprintf(server_url, sizeof server_url, "redis://127.0.0.1:%d/0", port);
                                return;
                        }
                        (void) usleep(20 * 1000);
                }
                if (!exited) {
                        (void) kill(pid, SIGKILL);
                        (void) waitpid(pid, NULL, 0);
                } else if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
                        break; /* no redis-server */
        }
        fprintf(stderr, "test-lock: redis-server did not start (see %s/redis.log)\n", server_dir);
        exit(EXIT_FAILURE);
}

static void redis_stop(void) {
        char log[sizeof server_dir + 16];

        if (server_pid > 0) {
                (void) kill(server_pid, SIGTERM);
                (void) waitpid(server_pid, NULL, 0);
        }
        snprintf(log, sizeof log, "%s/redis.log", server_dir);
        (void) unlink(log);
        (void) rmdir(server_dir);
}

/* ---- helpers ----------------------------------------------------------------------------------- */

static redisContext *raw(void) {
        redisContext *c = redisConnect("127.0.0.1", server_port);

        ck_assert_msg(c && !c->err, "cannot connect to the test redis: %s", c ? c->errstr : "out of memory");
        return c;
}

static struct redis_url *url(void) {
        struct redis_url *u = NULL;
        char err[256];

        ck_assert_msg(redis_url_parse(server_url, &u, err, sizeof err) == 0, "%s", err);
        return u;
}

/* EVAL one of the scripts on the keys of lock name; its integer reply. */
static long long eval(redisContext *c, const char *script, const char *name, int nkeys, int nargs,
                      const char *const *args) {
        _cleanup_free_ char *k = key_lock(NS, name), *kf = key_lock_fence(NS, name), *kh = key_lock_holder(NS, name);
        _cleanup_reply_ redisReply *reply = NULL;
        const char *argv[16];
        char n[8];
        int argc = 0;

        ck_assert(k && kf && kh);
        snprintf(n, sizeof n, "%d", nkeys);
        argv[argc++] = "EVAL";
        argv[argc++] = script;
        argv[argc++] = n;
        if (script == lock_script_acquire) {
                argv[argc++] = k;
                argv[argc++] = kf;
                argv[argc++] = kh;
        } else {
                argv[argc++] = k;
                argv[argc++] = kh;
        }
        ck_assert_int_eq(argc - 3, nkeys);
        for (int i = 0; i < nargs; i++)
                argv[argc++] = args[i];
        reply = redis_ctx_commandargv(c, argc, argv, NULL);
        ck_assert_ptr_nonnull(reply);
        ck_assert_msg(reply->type == REDIS_REPLY_INTEGER, "script reply type %d: %s", reply->type,
                      reply->type == REDIS_REPLY_ERROR ? reply->str : "");
        return reply->integer;
}

static long long acquire_raw(redisContext *c, const char *name, const char *token) {
        const char *args[] = { token, "5000", "test pid 1" };
        return eval(c, lock_script_acquire, name, 3, 3, args);
}

static long long renew_raw(redisContext *c, const char *name, const char *token) {
        const char *args[] = { token, "5000" };
        return eval(c, lock_script_renew, name, 2, 2, args);
}

static long long release_raw(redisContext *c, const char *name, const char *token) {
        _cleanup_free_ char *channel = key_lock_channel(NS, name);
        const char *args[] = { token, channel };
        return eval(c, lock_script_release, name, 2, 2, args);
}

static char *get(redisContext *c, const char *key) {
        _cleanup_reply_ redisReply *reply = redis_ctx_command(c, "GET %s", key);

        ck_assert_ptr_nonnull(reply);
        return reply->type == REDIS_REPLY_STRING ? strdup(reply->str) : NULL;
}

static struct lock *take(const char *name, uint64_t lease_usec, uint64_t wait_usec, int expect) {
        _cleanup_(redis_url_freep) struct redis_url *u = url();
        struct lock_options o = { .ns = NS, .lease_usec = lease_usec, .wait_timeout_usec = wait_usec };
        struct lock *l = NULL;
        char err[512] = "";
        int r;

        r = lock_acquire(u, name, &o, &l, err, sizeof err);
        ck_assert_msg(r == expect, "lock_acquire(%s): %d, expected %d (%s)", name, r, expect, err);
        ck_assert(r == 0 ? l != NULL : l == NULL);
        return l;
}

/* ---- the scripts ------------------------------------------------------------------------------- */

/* The next reply on the subscribed connection sub: a "message" on channel
 * (with its text in *msg, caller frees) or the answer to a PING (NULL). */
static char *next_push(redisContext *sub, const char *channel) {
        _cleanup_reply_ redisReply *r = NULL;

        ck_assert_int_eq(redis_ctx_get_reply(sub, (void **) &r), REDIS_OK);
        ck_assert_ptr_nonnull(r);
        ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
        ck_assert_uint_ge(r->elements, 2);
        if (strcmp(r->element[0]->str, "pong") == 0)
                return NULL;
        ck_assert_str_eq(r->element[0]->str, "message");
        ck_assert_uint_eq(r->elements, 3);
        ck_assert_str_eq(r->element[1]->str, channel);
        return strdup(r->element[2]->str);
}

/* Whatever sub was told up to now, as the text of its first message (NULL: nothing). */
static char *pushed_so_far(redisContext *sub, const char *channel) {
        char *first = NULL, *m;

        ck_assert_int_eq(redisAppendCommand(sub, "PING"), REDIS_OK);
        while ((m = next_push(sub, channel))) {
                if (!first)
                        first = m;
                else
                        free(m);
        }
        return first;
}

START_TEST(test_scripts) {
        _cleanup_redis_ redisContext *c = raw(), *sub = raw();
        _cleanup_free_ char *k = key_lock(NS, "scripts"), *kh = key_lock_holder(NS, "scripts"),
                            *channel = key_lock_channel(NS, "scripts"), *msg = NULL;
        const char *const scripts[] = { lock_script_acquire, lock_script_renew, lock_script_release };
        long long ttl;

        /* Each one compiles: Redis refuses a script with a syntax error at SCRIPT LOAD. */
        for (size_t i = 0; i < sizeof scripts / sizeof scripts[0]; i++) {
                _cleanup_reply_ redisReply *r = redis_ctx_command(c, "SCRIPT LOAD %s", scripts[i]);

                ck_assert_ptr_nonnull(r);
                ck_assert_msg(r->type == REDIS_REPLY_STRING && r->len == 40, "script %zu does not load: %s", i,
                              r->type == REDIS_REPLY_ERROR ? r->str : "(not a SHA)");
        }
        /* And the check is real: a broken script is refused. */
        {
                _cleanup_reply_ redisReply *r = redis_ctx_command(c, "SCRIPT LOAD %s", "if then end");
                ck_assert_ptr_nonnull(r);
                ck_assert_int_eq(r->type, REDIS_REPLY_ERROR);
        }

        /* What they do on a real server (compare-and-set on the token: test_scripts_fencing).
         * Acquire sets the lock with its lease (SET NX PX) and a fence (INCR), and
         * wakes nobody; renew wakes nobody; only release publishes, on the lock's
         * channel (the one a waiter subscribes to). */
        {
                _cleanup_reply_ redisReply *r = redis_ctx_command(sub, "SUBSCRIBE %s", channel);
                ck_assert_ptr_nonnull(r);
                ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
        }
        ck_assert_int_gt(acquire_raw(c, "scripts", "aaaa"), 0);
        {
                _cleanup_reply_ redisReply *r = redis_ctx_command(c, "PTTL %s", k);
                ck_assert_ptr_nonnull(r);
                ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
                ttl = r->integer;
        }
        ck_assert_msg(ttl > 0 && ttl <= 5000, "lock lease %lld ms, want (0, 5000]", ttl);
        msg = get(c, kh);
        ck_assert_ptr_nonnull(msg);
        free(TAKE_PTR(msg));
        ck_assert_int_lt(acquire_raw(c, "scripts", "bbbb"), 0); /* NX: held */
        ck_assert_int_eq(renew_raw(c, "scripts", "aaaa"), 1);
        msg = pushed_so_far(sub, channel);
        ck_assert_msg(!msg, "acquire or renew published '%s'", msg);
        ck_assert_int_eq(release_raw(c, "scripts", "aaaa"), 1);
        msg = pushed_so_far(sub, channel);
        ck_assert_msg(msg, "release published nothing on %s", channel);
        ck_assert_str_eq(msg, "released");
}
END_TEST

START_TEST(test_scripts_fencing) {
        _cleanup_redis_ redisContext *c = raw();
        _cleanup_free_ char *k = key_lock(NS, "raw"), *kf = key_lock_fence(NS, "raw"), *holder = NULL, *now = NULL;
        _cleanup_free_ char *kh = key_lock_holder(NS, "raw");
        long long f1, f2, f3;

        /* Taken: a fence; held by another: the holder's lease left, negated. */
        f1 = acquire_raw(c, "raw", "aaaa");
        ck_assert_int_gt(f1, 0);
        ck_assert_int_lt(acquire_raw(c, "raw", "bbbb"), 0);
        holder = get(c, kh);
        ck_assert_ptr_nonnull(holder);
        ck_assert_ptr_nonnull(strstr(holder, "test pid 1, fence "));

        /* Only the token's owner renews and releases. */
        ck_assert_int_eq(renew_raw(c, "raw", "aaaa"), 1);
        ck_assert_int_eq(renew_raw(c, "raw", "bbbb"), 0);
        ck_assert_int_eq(release_raw(c, "raw", "bbbb"), 0);
        now = get(c, k);
        ck_assert_str_eq(now, "aaaa");
        ck_assert_int_eq(release_raw(c, "raw", "aaaa"), 1);
        free(now);
        now = get(c, k);
        ck_assert_ptr_null(now);

        /* The next holder gets a higher fence; the old token is stale now. */
        f2 = acquire_raw(c, "raw", "bbbb");
        ck_assert_int_gt(f2, f1);
        ck_assert_int_eq(renew_raw(c, "raw", "aaaa"), 0);
        ck_assert_int_eq(release_raw(c, "raw", "aaaa"), 0);
        now = get(c, k);
        ck_assert_str_eq(now, "bbbb");

        /* Fences keep increasing when Redis loses the counter (restart without persistence). */
        ck_assert_int_eq(release_raw(c, "raw", "bbbb"), 1);
        freeReplyObject(redis_ctx_command(c, "DEL %s", kf));
        f3 = acquire_raw(c, "raw", "cccc");
        ck_assert_int_gt(f3, f2);
        ck_assert_int_eq(release_raw(c, "raw", "cccc"), 1);
}
END_TEST

/* ---- the API ----------------------------------------------------------------------------------- */

START_TEST(test_fences_increase) {
        struct lock *l1, *l2, *l3;
        uint64_t f1, f2;

        l1 = take("api", 5 * USEC_PER_SEC, 0, 0);
        f1 = lock_fence(l1);
        ck_assert_uint_gt(f1, 0);
        ck_assert_int_eq(lock_renew(l1), 0);
        ck_assert(!lock_is_lost(l1));
        ck_assert_ptr_null(take("api", 5 * USEC_PER_SEC, 0, -ETIMEDOUT)); /* try once: held */
        ck_assert_int_eq(lock_release(l1), 0);
        ck_assert(lock_is_lost(l1)); /* never ours again */
        ck_assert_int_eq(lock_renew(l1), -ENOLCK);

        l2 = take("api", 5 * USEC_PER_SEC, 0, 0);
        f2 = lock_fence(l2);
        ck_assert_uint_gt(f2, f1);
        ck_assert_int_eq(lock_release(l2), 0);
        l3 = take("api", 5 * USEC_PER_SEC, 0, 0);
        ck_assert_uint_gt(lock_fence(l3), f2);
        ck_assert_int_eq(lock_release(l3), 0);
        lock_free(l1);
        lock_free(l2);
        lock_free(l3);
}
END_TEST

START_TEST(test_timeout_names_holder) {
        _cleanup_(redis_url_freep) struct redis_url *u = url();
        struct lock_options o = { .ns = NS, .lease_usec = 5 * USEC_PER_SEC, .wait_timeout_usec = 200 * USEC_PER_MSEC };
        _cleanup_(lock_freep) struct lock *l1 = take("busy", 5 * USEC_PER_SEC, 0, 0);
        _cleanup_free_ char *who = NULL;
        struct lock *l2 = NULL;
        char err[512] = "", fence[32];
        uint64_t t0 = now_usec();

        ck_assert_int_eq(lock_acquire(u, "busy", &o, &l2, err, sizeof err), -ETIMEDOUT);
        ck_assert_ptr_null(l2);
        ck_assert_uint_ge(now_usec() - t0, 200 * USEC_PER_MSEC);
        snprintf(fence, sizeof fence, "fence %" PRIu64, lock_fence(l1));
        ck_assert_msg(strstr(err, "held by") && strstr(err, fence), "%s", err);
        ck_assert_int_eq(lock_describe_holder(u, NS, "busy", &who), 0);
        ck_assert_ptr_nonnull(who);
        ck_assert_ptr_nonnull(strstr(who, fence));
        ck_assert_int_eq(lock_release(l1), 0);
        who = mfree(who);
        ck_assert_int_eq(lock_describe_holder(u, NS, "busy", &who), 0);
        ck_assert_ptr_null(who); /* free */
}
END_TEST

/* A holder that stops renewing loses the lock when its lease ends: it counts itself lost
 * after lease - lease/4, the server lets the lock go after the lease, another takes it with
 * a higher fence, and the old holder's stale token can neither renew nor release. */
START_TEST(test_lease_expiry) {
        _cleanup_redis_ redisContext *c = raw();
        _cleanup_free_ char *k = key_lock(NS, "expiry");
        struct lock *l1, *l2;
        uint64_t t0 = now_usec(), until = t0 + 10 * USEC_PER_SEC;
        long long exists = 1;

        l1 = take("expiry", 300 * USEC_PER_MSEC, 0, 0);
        ck_assert(!lock_is_lost(l1));
        while (!lock_is_lost(l1))
                (void) usleep(5 * 1000);
        ck_assert_uint_ge(now_usec() - t0, 225 * USEC_PER_MSEC - 10 * USEC_PER_MSEC);
        while (exists && now_usec() < until) {
                _cleanup_reply_ redisReply *ex = redis_ctx_command(c, "EXISTS %s", k);
                ck_assert_ptr_nonnull(ex);
                exists = ex->integer;
                if (exists)
                        (void) usleep(5 * 1000);
        }
        ck_assert_int_eq(exists, 0); /* expired on the server, nobody renewed it */
        ck_assert_uint_ge(now_usec() - t0, 300 * USEC_PER_MSEC - 10 * USEC_PER_MSEC);
        l2 = take("expiry", 5 * USEC_PER_SEC, 0, 0);
        ck_assert_uint_gt(lock_fence(l2), lock_fence(l1));
        ck_assert_int_eq(lock_renew(l1), -ENOLCK);   /* the script refuses the stale token */
        ck_assert_int_eq(lock_release(l1), -ENOLCK); /* and leaves the new holder alone */
        ck_assert_int_eq(lock_renew(l2), 0);
        ck_assert_int_eq(lock_release(l2), 0);
        lock_free(l1);
        lock_free(l2);
}
END_TEST

static void on_lost_flag(struct lock *l, void *userdata) {
        (void) l;
        __atomic_store_n((bool *) userdata, true, __ATOMIC_SEQ_CST);
}

/* The keeper renews every lease/3: the lock outlives its lease. */
START_TEST(test_keeper) {
        _cleanup_redis_ redisContext *c = raw();
        _cleanup_free_ char *k = key_lock(NS, "kept");
        struct lock *l = take("kept", USEC_PER_SEC, 0, 0);
        bool lost = false;

        ck_assert_int_eq(lock_keeper_start(l, on_lost_flag, &lost), 0);
        (void) usleep(2500 * 1000);
        ck_assert(!__atomic_load_n(&lost, __ATOMIC_SEQ_CST));
        ck_assert(!lock_is_lost(l));
        {
                _cleanup_reply_ redisReply *t = redis_ctx_command(c, "PTTL %s", k);
                ck_assert_ptr_nonnull(t);
                ck_assert_int_gt(t->integer, 0);
        }
        /* Taken over behind its back: the keeper's next renewal says so. */
        freeReplyObject(redis_ctx_command(c, "SET %s someone-else PX 5000", k));
        while (!__atomic_load_n(&lost, __ATOMIC_SEQ_CST))
                (void) usleep(5 * 1000);
        ck_assert(lock_is_lost(l));
        ck_assert_int_eq(lock_release(l), -ENOLCK);
        lock_free(l);
        freeReplyObject(redis_ctx_command(c, "DEL %s", k));
}
END_TEST

struct waiter {
        const char *name;
        int r;
        uint64_t fence;
        uint64_t done_usec;
        char err[256];
};

static void *waiter_main(void *p) {
        _cleanup_(redis_url_freep) struct redis_url *u = url();
        struct waiter *w = p;
        /* No re-check before the test's end: only the release can hand it over in time. */
        struct lock_options o = { .ns = NS, .lease_usec = 5 * USEC_PER_SEC, .wait_timeout_usec = 20 * USEC_PER_SEC,
                                  .recheck_usec = 30 * USEC_PER_SEC };
        struct lock *l = NULL;

        w->r = lock_acquire(u, w->name, &o, &l, w->err, sizeof w->err);
        w->done_usec = now_usec();
        if (w->r == 0) {
                w->fence = lock_fence(l);
                (void) lock_release(l);
        }
        lock_free(l);
        return NULL;
}

/* A queued waiter is handed the lock by the release itself, at once, with the next fence. */
START_TEST(test_handoff) {
        _cleanup_redis_ redisContext *c = raw();
        _cleanup_free_ char *waiters = key_lock_waiters(NS, "handoff");
        struct waiter w = { .name = "handoff" };
        struct lock *l = take("handoff", 5 * USEC_PER_SEC, 0, 0);
        uint64_t until = now_usec() + 10 * USEC_PER_SEC, t0;
        long long queued = 0;
        pthread_t th;

        ck_assert_int_eq(pthread_create(&th, NULL, waiter_main, &w), 0);
        while (queued == 0 && now_usec() < until) {
                _cleanup_reply_ redisReply *n = redis_ctx_command(c, "ZCARD %s", waiters);
                ck_assert_ptr_nonnull(n);
                queued = n->integer;
                if (queued == 0)
                        (void) usleep(5 * 1000);
        }
        ck_assert_int_eq(queued, 1);
        t0 = now_usec();
        ck_assert_int_eq(lock_release(l), 0);
        ck_assert_int_eq(pthread_join(th, NULL), 0);
        ck_assert_msg(w.r == 0, "waiter: %d (%s)", w.r, w.err);
        ck_assert_uint_gt(w.fence, lock_fence(l));
        ck_assert_msg(w.done_usec - t0 < 2 * USEC_PER_SEC, "hand-off took %" PRIu64 "ms",
                      (w.done_usec - t0) / USEC_PER_MSEC);
        {
                _cleanup_reply_ redisReply *n = redis_ctx_command(c, "ZCARD %s", waiters);
                ck_assert_ptr_nonnull(n);
                ck_assert_int_eq(n->integer, 0); /* dequeued */
        }
        lock_free(l);
}
END_TEST

int main(void) {
        Suite *s = suite_create("lock");
        TCase *tc = tcase_create("redis");
        int r;

        (void) signal(SIGPIPE, SIG_IGN);
        redis_start();
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_scripts);
        tcase_add_test(tc, test_scripts_fencing);
        tcase_add_test(tc, test_fences_increase);
        tcase_add_test(tc, test_timeout_names_holder);
        tcase_add_test(tc, test_lease_expiry);
        tcase_add_test(tc, test_keeper);
        tcase_add_test(tc, test_handoff);
        suite_add_tcase(s, tc);
        r = test_run(s);
        redis_stop();
        return r;
}
