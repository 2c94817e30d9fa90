/* The main() every check program shares: a file defines
 *
 *   static void add_tests(TCase *tc) { tcase_add_test(tc, test_x); ... }
 *   TEST_MAIN("module", add_tests)
 *
 * and gets one suite of that name with one test case, run in CK_NORMAL mode
 * (CK_FORK and CK_DEFAULT_TIMEOUT from the environment apply), exiting 0 only
 * when every test passed.  A file with fixtures or several test cases builds
 * its own Suite and returns test_run(suite) from main().
 *
 *   static char dir[] = "/tmp/test-x.XXXXXX";
 *   TEST_MAIN_TMPDIR("module", dir, add_tests)
 *
 * is the same in CK_NOFORK mode (the tests share the process) around a
 * temporary directory: dir is made with mkdtemp() first and removed after. */
#pragma once

#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

/* Run s (taken: freed with its runner); the exit status. */
static inline int test_run(Suite *s) {
        SRunner *sr = srunner_create(s);
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

static inline Suite *test_suite(const char *name, void (*add_tests)(TCase *tc)) {
        Suite *s = suite_create(name);
        TCase *tc = tcase_create("core");

        add_tests(tc);
        suite_add_tcase(s, tc);
        return s;
}

static inline int test_main_run(const char *name, void (*add_tests)(TCase *tc)) {
        return test_run(test_suite(name, add_tests));
}

/* mkdtemp(dir), the suite in CK_NOFORK mode, rm -rf dir (its failure fails the run). */
static inline int test_main_tmpdir(const char *name, char *dir, void (*add_tests)(TCase *tc)) {
        SRunner *sr;
        char cmd[PATH_MAX + 16];
        int failed;

        if (!mkdtemp(dir))
                return EXIT_FAILURE;
        sr = srunner_create(test_suite(name, add_tests));
        srunner_set_fork_status(sr, CK_NOFORK);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        if ((size_t) snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir) >= sizeof cmd || system(cmd) != 0)
                failed++;
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#define TEST_MAIN(name, add_tests)                     \
        int main(void) {                               \
                return test_main_run(name, add_tests); \
        }

#define TEST_MAIN_TMPDIR(name, dir, add_tests)                 \
        int main(void) {                                       \
                return test_main_tmpdir(name, dir, add_tests); \
        }
