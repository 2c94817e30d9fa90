/* Unit tests for agent/hook.c: exit codes, output tail, the children's clean
 * environment (hook_env_build()), timeouts that kill the whole group, and
 * background children that keep stdout open. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "duration.h"
#include "fileio.h"
#include "hook.h"
#include "log.h"
#include "parse-util.h"
#include "strutil.h"
#include "strv.h"
#include "test-main.h"

static sd_event *loop;

struct outcome {
        bool done;
        int exit_code, signal;
        bool timed_out;
        uint64_t duration;
        char output[HOOK_TAIL_BYTES + 1];
        char error[256];
};

static void on_done(struct hook *h, const struct hook_result *res, void *userdata) {
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
        struct hook *h = NULL;
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

        /* spec->env is the child's whole environment. */
        setenv("NOTIFY_SOCKET", "/run/should-not-leak", 1);
        setenv("LEAK_ME", "agent-only", 1);
        setenv("LANG", "C.UTF-8", 1);
        o = run("echo \"$COORD_VERSION $HOME ${NOTIFY_SOCKET:-none} ${LEAK_ME:-none} ${LANG:-nolang}\"", env, 0);
        ck_assert_str_eq(o.output, "2.0 /override none none nolang");
        unsetenv("NOTIFY_SOCKET");
        unsetenv("LEAK_ME");
}
END_TEST

START_TEST(test_environment_default_is_clean) {
        struct outcome o;

        /* Without spec->env: only the allow-listed part of the agent's environment. */
        setenv("COORD_REDIS", "redis://:SECRETPW@127.0.0.1:6379/0", 1);
        setenv("CREDENTIALS_DIRECTORY", "/run/credentials/x", 1);
        setenv("LEAK_ME", "agent-only", 1);
        setenv("LANG", "C.UTF-8", 1);
        setenv("PATH", "/usr/bin:/bin", 1);
        o = run("env | sort | grep -v '^PWD=\\|^SHLVL=\\|^_='", NULL, 0);
        ck_assert_ptr_null(strstr(o.output, "SECRETPW"));
        ck_assert_ptr_null(strstr(o.output, "COORD_REDIS"));
        ck_assert_ptr_null(strstr(o.output, "CREDENTIALS_DIRECTORY"));
        ck_assert_ptr_null(strstr(o.output, "LEAK_ME"));
        ck_assert_ptr_nonnull(strstr(o.output, "LANG=C.UTF-8"));
        ck_assert_ptr_nonnull(strstr(o.output, "PATH=/usr/bin:/bin"));
        unsetenv("COORD_REDIS");
        unsetenv("CREDENTIALS_DIRECTORY");
        unsetenv("LEAK_ME");
}
END_TEST

static char *join(char **l) {
        size_t len = 1;
        char *s;

        for (char **p = l; *p; p++)
                len += strlen(*p) + 1;
        s = calloc(1, len);
        ck_assert_ptr_nonnull(s);
        for (char **p = l; *p; p++) {
                if (p != l)
                        strcat(s, " ");
                strcat(s, *p);
        }
        return s;
}

static const char *const base_env[] = {
        "PATH=/usr/bin", "HOME=/home/agent", "USER=coord", "LOGNAME=coord", "LANG=C.UTF-8", "LANGUAGE=en",
        "LC_ALL=C", "LC_TIME=de_DE.UTF-8", "TZ=UTC", "TMPDIR=/tmp/a", "COORD_REDIS=redis://:SECRETPW@h/0",
        "COORD_NAMESPACE=prod", "COORD_TEST_DIR=/tmp/t", "CREDENTIALS_DIRECTORY=/run/credentials/a",
        "NOTIFY_SOCKET=/run/systemd/notify", "WATCHDOG_USEC=1", "LISTEN_FDS=1", "INVOCATION_ID=abc",
        "DATABASE_URL=postgres://u:pw@db/app", "OTHER=x", "SHELL=/bin/bash", "NOEQUALS", NULL
};

static const struct {
        const char *const pass[5]; /* NULL-terminated, like the others */
        const char *const set[5];
        const char *const coord[5];
        const char *const *base;
        const char *want;
} env_table[] = {
        /* The allow-list only. */
        { {}, {}, {}, base_env,
          "PATH=/usr/bin HOME=/home/agent USER=coord LOGNAME=coord LANG=C.UTF-8 LANGUAGE=en LC_ALL=C "
          "LC_TIME=de_DE.UTF-8 TZ=UTC TMPDIR=/tmp/a" },
        /* pass_env adds names, never private ones (even when asked); set and coord replace, in that order. */
        { { "DATABASE_URL", "COORD_REDIS", "CREDENTIALS_DIRECTORY", "ABSENT" },
          { "PATH=/opt/bin", "EXTRA=1", "COORD_VERSION=set" },
          { "COORD_SERVICE=web", "COORD_VERSION=2.0", "EXTRA=2" },
          base_env,
          "PATH=/opt/bin HOME=/home/agent USER=coord LOGNAME=coord LANG=C.UTF-8 LANGUAGE=en LC_ALL=C "
          "LC_TIME=de_DE.UTF-8 TZ=UTC TMPDIR=/tmp/a DATABASE_URL=postgres://u:pw@db/app EXTRA=2 "
          "COORD_VERSION=2.0 COORD_SERVICE=web" },
        /* No PATH in the agent's environment: the default. */
        { {}, {}, { "COORD_SERVICE=web" }, (const char *const[]) { "HOME=/", "FOO=bar", NULL },
          "HOME=/ PATH=" HOOK_DEFAULT_PATH " COORD_SERVICE=web" },
        { {}, {}, {}, NULL, "PATH=" HOOK_DEFAULT_PATH },
};

START_TEST(test_env_build) {
        char **env = NULL;
        char *got;

        ck_assert_int_eq(hook_env_build(env_table[_i].base, env_table[_i].pass[0] ? env_table[_i].pass : NULL,
                                        env_table[_i].set, env_table[_i].coord, &env),
                         0);
        got = join(env);
        ck_assert_str_eq(got, env_table[_i].want);
        free(got);
        strv_free(env);
}
END_TEST

START_TEST(test_env_names) {
        static const char *const valid[] = { "A", "_", "PATH", "a_b9", "_9", NULL };
        static const char *const invalid[] = { "", "9A", "A-B", "A B", "A=B", "Ä", "A.B", NULL };
        char longname[HOOK_ENV_NAME_MAX + 2];

        for (size_t i = 0; valid[i]; i++)
                ck_assert_msg(hook_env_name_is_valid(valid[i]), "%s", valid[i]);
        for (size_t i = 0; invalid[i]; i++)
                ck_assert_msg(!hook_env_name_is_valid(invalid[i]), "%s", invalid[i]);
        ck_assert(!hook_env_name_is_valid(NULL));
        memset(longname, 'A', sizeof longname - 1);
        longname[sizeof longname - 1] = '\0';
        ck_assert(!hook_env_name_is_valid(longname));
        longname[HOOK_ENV_NAME_MAX] = '\0';
        ck_assert(hook_env_name_is_valid(longname));

        ck_assert(hook_env_name_is_private("COORD_REDIS"));
        ck_assert(hook_env_name_is_private("COORD_TLS_CA_FILE"));
        ck_assert(hook_env_name_is_private("CREDENTIALS_DIRECTORY"));
        ck_assert(!hook_env_name_is_private("COORDINATES"));
        ck_assert(!hook_env_name_is_private("CREDENTIALS_DIRECTORY_X"));
        ck_assert(hook_env_name_is_reserved("COORD_VERSION"));
        ck_assert(hook_env_name_is_reserved("COORD_MIGRATE_PHASE"));
        ck_assert(hook_env_name_is_reserved("CREDENTIALS_DIRECTORY"));
        ck_assert(!hook_env_name_is_reserved("COORD_TLS_CA_FILE"));
        ck_assert(!hook_env_name_is_reserved("PATH"));
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
        ck_assert_int_eq(fileio_read_string(pidfile, 64, true, &pid), 0);
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

static void add_tests(TCase *tc) {
        log_set_max_level(LOG_ERR);
        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, test_success_and_output);
        tcase_add_test(tc, test_exit_code);
        tcase_add_test(tc, test_tail_is_bounded);
        tcase_add_test(tc, test_environment);
        tcase_add_test(tc, test_environment_default_is_clean);
        tcase_add_loop_test(tc, test_env_build, 0, (int) (sizeof env_table / sizeof env_table[0]));
        tcase_add_test(tc, test_env_names);
        tcase_add_test(tc, test_timeout_kills_group);
        tcase_add_test(tc, test_background_child_does_not_stall);
}

TEST_MAIN("hook", add_tests)
