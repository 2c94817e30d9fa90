/* Unit tests for `coordctl lock` (deploy/coordctl-lock.c): argument parsing.
 * The lock itself (lib/lock.c) is tested against a real Redis in
 * tests/unit/test-lock.c and tests/e2e/lock-*.sh. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deploy/coordctl-lock.h"
#include "test-main.h"

/* -Wwrite-strings: literals are const, argv is not: copy, and free the copies
 * at the end of each test. */
static char **pool[64];
static size_t n_pool;

static void pool_free(void) {
        for (size_t i = 0; i < n_pool; i++) {
                for (char **p = pool[i]; *p; p++)
                        free(*p);
                free(pool[i]);
        }
        n_pool = 0;
}

static char **mkargv(const char *const *src) {
        size_t n = 0;
        char **v;

        while (src[n])
                n++;
        v = calloc(n + 1, sizeof(char *));
        ck_assert_ptr_nonnull(v);
        for (size_t i = 0; i < n; i++)
                ck_assert_ptr_nonnull(v[i] = strdup(src[i]));
        ck_assert_uint_lt(n_pool, sizeof pool / sizeof pool[0]);
        pool[n_pool++] = v;
        return v;
}
#define ARGV(...) mkargv((const char *const[]) { __VA_ARGS__, NULL })

static int parse(char **argv, int argc, struct coordctl_lock_args *a, char *err, size_t errlen) {
        return coordctl_lock_args_parse(argc, argv, a, err, errlen);
}

START_TEST(test_parse_good) {
        struct coordctl_lock_args a;
        char err[256] = "";
        char **v;

        v = ARGV("lock", "deploy", "--redis", "redis://h:1", "--", "echo", "hi");
        ck_assert_int_eq(parse(v, 7, &a, err, sizeof err), 0);
        ck_assert_str_eq(a.name, "deploy");
        ck_assert_str_eq(a.redis, "redis://h:1");
        ck_assert_uint_eq(a.lease_usec, 15 * UINT64_C(1000000));
        ck_assert(a.wait_usec == UINT64_MAX);
        ck_assert_str_eq(a.command[0], "echo");
        ck_assert_str_eq(a.command[1], "hi");
        ck_assert_ptr_null(a.command[2]);

        v = ARGV("lock", "--lease=2s", "--wait-timeout", "250ms", "x.y_z-1", "--redis=r:1", "--", "sh", "-c", "--lease");
        ck_assert_int_eq(parse(v, 10, &a, err, sizeof err), 0);
        ck_assert_str_eq(a.name, "x.y_z-1");
        ck_assert_uint_eq(a.lease_usec, 2000000);
        ck_assert_uint_eq(a.wait_usec, 250000);
        ck_assert_str_eq(a.command[2], "--lease"); /* after "--" nothing is ours */

        /* "--" is optional: the second word starts COMMAND, whose flags are its own. */
        v = ARGV("lock", "n", "ls", "-l", "--redis");
        ck_assert_int_eq(parse(v, 5, &a, err, sizeof err), 0);
        ck_assert_ptr_null(a.redis);
        ck_assert_str_eq(a.command[0], "ls");
        ck_assert_str_eq(a.command[2], "--redis");

        v = ARGV("lock", "n", "--wait-timeout", "0s", "--", "true");
        ck_assert_int_eq(parse(v, 6, &a, err, sizeof err), 0);
        ck_assert_uint_eq(a.wait_usec, 0);

        v = ARGV("lock", "--help");
        ck_assert_int_eq(parse(v, 2, &a, err, sizeof err), 0);
        ck_assert(a.help);
        pool_free();
}
END_TEST

START_TEST(test_parse_bad) {
        static const struct {
                const char *argv[8];
                const char *culprit;
        } bad[] = {
                { { "lock", "n", "--bogus", "--", "true" }, "'--bogus'" },
                { { "lock", "n", "--lease", "15", "--", "true" }, "--lease: invalid duration '15'" },
                { { "lock", "n", "--lease", "50ms", "--", "true" }, "too short" },
                { { "lock", "n", "--wait-timeout", "soon", "--", "true" }, "--wait-timeout: invalid duration 'soon'" },
                { { "lock", "n", "--redis" }, "--redis needs a value" },
                { { "lock", "n", "--redis", "r:1" }, "missing COMMAND" },
                { { "lock", "n", "--redis", "r:1", "--" }, "missing COMMAND" },
                { { "lock", "--redis", "r:1", "--", "true" }, "missing lock NAME" },
                { { "lock" }, "missing lock NAME" },
                { { "lock", "a/b", "--", "true" }, "invalid lock name 'a/b'" },
                { { "lock", "x{y}", "--", "true" }, "invalid lock name 'x{y}'" },
                { { "lock", "n", "--redis=", "--", "true" }, "--redis: empty" },
        };

        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                struct coordctl_lock_args a = { .name = "untouched" };
                char err[256] = "";
                int argc = 0;

                while (bad[i].argv[argc])
                        argc++;
                ck_assert_int_eq(coordctl_lock_args_parse(argc, mkargv(bad[i].argv), &a, err, sizeof err), -EINVAL);
                ck_assert_msg(strstr(err, bad[i].culprit), "case %zu: '%s' does not name '%s'", i, err,
                              bad[i].culprit);
                ck_assert_str_eq(a.name, "untouched");
        }
        pool_free();
}
END_TEST

static void add_tests(TCase *tc) {
        tcase_add_test(tc, test_parse_good);
        tcase_add_test(tc, test_parse_bad);
}

TEST_MAIN("coordctl-lock", add_tests)
