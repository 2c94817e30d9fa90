/* The main() every check program shares: a file defines
 *
 *   static void add_tests(TCase *tc) { tcase_add_test(tc, test_x); ... }
 *   TEST_MAIN("module", add_tests)
 *
 * and gets one suite of that name with one test case, run in CK_NORMAL mode
 * (CK_FORK and CK_DEFAULT_TIMEOUT from the environment apply), exiting 0 only
 * when every test passed.  A file with fixtures or several test cases builds
 * its own Suite and returns test_run(suite) from main(). */
#pragma once

#include <check.h>
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

static inline int test_main_run(const char *name, void (*add_tests)(TCase *tc)) {
        Suite *s = suite_create(name);
        TCase *tc = tcase_create("core");

        add_tests(tc);
        suite_add_tcase(s, tc);
        return test_run(s);
}

#define TEST_MAIN(name, add_tests)                     \
        int main(void) {                               \
                return test_main_run(name, add_tests); \
        }
