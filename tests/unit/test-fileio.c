/* Unit tests for lib/fileio.c: atomic replacement, the kept previous file,
 * modes (agent/state.c: test-state.c). */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cleanup.h"
#include "fileio.h"
#include "strutil.h"
#include "test-main.h"

static char dir[] = "/tmp/test-fileio.XXXXXX";

static char *path_in(const char *name) {
        return strdup_printf("%s/%s", dir, name);
}

static char *slurp(const char *p) {
        char *s = NULL;
        ck_assert_int_eq(read_file_string(p, 65536, false, &s), 0);
        return s;
}

START_TEST(test_write_and_restore) {
        char *p = path_in("sub/app.env"), *prev = path_in("sub/app.env.coord-prev"), *sub = path_in("sub"), *s;
        struct stat st, st2;

        ck_assert_int_eq(fileio_mkdir_p(sub, 0755), 0);
        ck_assert_int_eq(fileio_mkdir_p(sub, 0755), 0); /* idempotent */
        ck_assert_int_eq(fileio_write_atomic(p, "A=1\n", 4, 0640, true), 0);
        ck_assert_int_eq(stat(p, &st), 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0640);
        ck_assert_int_eq(access(prev, F_OK), -1); /* nothing to keep the first time */

        ck_assert_int_eq(fileio_write_atomic(p, "A=2\n", 4, 0640, true), 0);
        ck_assert_int_eq(stat(p, &st2), 0);
        ck_assert_uint_ne(st.st_ino, st2.st_ino); /* renamed over, not rewritten in place */
        s = slurp(prev);
        ck_assert_str_eq(s, "A=1\n");
        free(s);
        ck_assert_int_eq(fileio_restore_prev(p), 0);
        s = slurp(p);
        ck_assert_str_eq(s, "A=1\n");
        free(s);
        ck_assert_int_eq(access(prev, F_OK), -1);

        ck_assert_int_eq(fileio_write_atomic(p, "A=3\n", 4, 0640, true), 0);
        ck_assert_int_eq(fileio_drop_prev(p), 0);
        ck_assert_int_eq(access(prev, F_OK), -1);
        s = slurp(p);
        ck_assert_str_eq(s, "A=3\n");
        free(s);
        free(p);
        free(prev);
        free(sub);
}
END_TEST

START_TEST(test_restore_without_prev_removes) {
        char *p = path_in("new.env");

        ck_assert_int_eq(fileio_write_atomic(p, "X\n", 2, 0600, true), 0);
        ck_assert_int_eq(fileio_restore_prev(p), 0);
        ck_assert_int_eq(access(p, F_OK), -1);
        free(p);
}
END_TEST

START_TEST(test_failure_leaves_target) {
        _cleanup_free_ char *p = path_in("keep.env"), *got = NULL, *missing = path_in("missing-dir/x.env");
        DIR *d;
        struct rlimit old, small = { .rlim_cur = 4, .rlim_max = RLIM_INFINITY };
        struct dirent *de;

        ck_assert_int_eq(fileio_write_atomic(missing, "X\n", 2, 0640, true), -ENOENT);

        /* A target that exists, then a write that fails half-way (a file size
         * limit: EFBIG, also for root): the target keeps its content, and no
         * temporary file is left next to it. */
        ck_assert_int_eq(fileio_write_atomic(p, "OLD=1\n", 6, 0640, false), 0);
        ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
        small.rlim_max = old.rlim_max;
        (void) signal(SIGXFSZ, SIG_IGN);
        ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
        ck_assert_int_eq(fileio_write_atomic(p, "NEW=1234567890\n", 15, 0640, true), -EFBIG);
        ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
        got = slurp(p);
        ck_assert_str_eq(got, "OLD=1\n");
        d = opendir(dir);
        ck_assert_ptr_nonnull(d);
        while ((de = readdir(d)))
                ck_assert_msg(!strstr(de->d_name, "coord-tmp"), "temporary file left: %s", de->d_name);
        closedir(d);
}
END_TEST

static void add_tests(TCase *tc) {
        tcase_add_test(tc, test_write_and_restore);
        tcase_add_test(tc, test_restore_without_prev_removes);
        tcase_add_test(tc, test_failure_leaves_target);
}

TEST_MAIN_TMPDIR("fileio", dir, add_tests)
