/* Unit tests for agent/hook.c: exit codes, output tail, environment, timeouts
 * that kill the whole group, and background children that keep stdout open. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "duration.h"
#include "hook.h"
#include "log.h"
#include "strutil.h"

static sd_event *loop;

struct outcome {
        bool done;
        int exit_code, signal;
        bool timed_out;
        uint64_t duration;
        char output[HOOK_TAIL_BYTES + 1];
        char error[256];
};

static void on_done(hook *h, const struct hook_result *res, void *userdata) {
        struct outcome *o = userdata;

        o->done = true;
        o->exit_code = res->exit_code;
        o->signal = res->signal;
        o->timed_out = res->timed_out;
        o->duration = res->duration_usec;
        snprintf(o->output, sizeof o->output, "%s", res->output);
        snprintf(o->error, sizeof o->error, "%s", res->error ? res->error : "");
        sd_event_exit(loop, 0);
}

static struct outcome run(const char *cmd, const char *const *env, uint64_t timeout) {
        struct hook_spec spec = {
                .name = "test hook", .command = cmd, .env = env, .timeout_usec = timeout,
                .service = "svc", .instance = "svc-1", .output_level = LOG_DEBUG,
        };
        struct outcome o = {};
        hook *h = NULL;
        sigset_t ss;

        sigemptyset(&ss);
        sigaddset(&ss, SIGCHLD);
        sigprocmask(SIG_BLOCK, &ss, NULL);
        ck_assert_int_eq(sd_event_new(&loop), 0);
        ck_assert_int_eq(hook_start(loop, &spec, on_done, &o, &h), 0);
        ck_assert_int_ge(sd_event_loop(loop), 0);
        ck_assert(o.done);
        hook_free(h);
        hook_sinks_free();
        loop = sd_event_unref(loop);
        return o;
}

START_TEST(test_success_and_output) {
        struct outcome o = run("echo one; echo two >&2; printf 'no newline'", NULL, 0);

        ck_assert_int_eq(o.exit_code, 0);
        ck_assert_str_eq(o.error, "");
        ck_assert_str_eq(o.output, "one\ntwo\nno newline");
}
END_TEST

START_TEST(test_exit_code) {
        struct outcome o = run("echo failing; exit 3", NULL, 0);

        ck_assert_int_eq(o.exit_code, 3);
        ck_assert_str_eq(o.error, "test hook exited with status 3");
        o = run("kill -USR1 $$", NULL, 0);
        ck_assert_int_eq(o.signal, SIGUSR1);
        ck_assert_ptr_nonnull(strstr(o.error, "killed by signal USR1"));
}
END_TEST

START_TEST(test_tail_is_bounded) {
        struct outcome o = run("i=0; while [ $i -lt 100 ]; do echo line$i; i=$((i+1)); done", NULL, 0);

        /* The last HOOK_TAIL_LINES lines only. */
        ck_assert_ptr_null(strstr(o.output, "line79\n"));
        ck_assert_ptr_nonnull(strstr(o.output, "line80\n"));
        ck_assert_ptr_nonnull(strstr(o.output, "line99"));
        o = run("head -c 20000 /dev/zero | tr '\\0' x", NULL, 0);
        ck_assert_uint_lt(strlen(o.output), HOOK_TAIL_BYTES);
}
END_TEST

START_TEST(test_environment) {
        static const char *const env[] = { "COORD_VERSION=2.0", "HOME=/override", NULL };
        struct outcome o;

        setenv("NOTIFY_SOCKET", "/run/should-not-leak", 1);
        o = run("echo \"$COORD_VERSION $HOME ${NOTIFY_SOCKET:-none}\"", env, 0);
        ck_assert_str_eq(o.output, "2.0 /override none");
        unsetenv("NOTIFY_SOCKET");
}
END_TEST

START_TEST(test_timeout_kills_group) {
        char pidfile[] = "/tmp/test-hook-gc.XXXXXX";
        char cmd[512], *pid = NULL;
        struct outcome o;
        int fd, gc;

        fd = mkstemp(pidfile);
        ck_assert_int_ge(fd, 0);
        close(fd);
        /* A grandchild that ignores SIGTERM and holds stdout open. */
        snprintf(cmd, sizeof cmd, "(trap '' TERM; exec sleep 60) & echo $! >%s; echo started; sleep 60", pidfile);
        o = run(cmd, NULL, 300 * USEC_PER_MSEC);
        ck_assert(o.timed_out);
        ck_assert_int_eq(o.exit_code, -1);
        ck_assert_ptr_nonnull(strstr(o.error, "timed out after 300ms; its process group was killed"));
        ck_assert_str_eq(o.output, "started");
        ck_assert_uint_lt(o.duration, 3 * USEC_PER_SEC);
        ck_assert_int_eq(read_file_string(pidfile, 64, true, &pid), 0);
        ck_assert_int_eq(parse_int(pid, &gc), 0);
        for (int i = 0; i < 100 && kill(gc, 0) == 0; i++)
                usleep(20000);
        ck_assert_msg(kill(gc, 0) < 0, "grandchild %d survived", gc);
        free(pid);
        unlink(pidfile);
}
END_TEST

START_TEST(test_background_child_does_not_stall) {
        struct outcome o = run("sleep 2 & echo done", NULL, 0);

        ck_assert_int_eq(o.exit_code, 0);
        ck_assert_str_eq(o.output, "done");
        ck_assert_uint_lt(o.duration, 2 * USEC_PER_SEC);
}
END_TEST

int main(void) {
        Suite *s = suite_create("hook");
        TCase *tc = tcase_create("core");
        SRunner *sr;
        int failed;

        log_set_max_level(LOG_ERR);
        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, test_success_and_output);
        tcase_add_test(tc, test_exit_code);
        tcase_add_test(tc, test_tail_is_bounded);
        tcase_add_test(tc, test_environment);
        tcase_add_test(tc, test_timeout_kills_group);
        tcase_add_test(tc, test_background_child_does_not_stall);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
