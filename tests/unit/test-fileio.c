/* Unit tests for lib/fileio.c: reading whole files and pipes with a limit,
 * atomic replacement, the kept previous file, modes (agent/state.c: test-state.c). */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "fileio.h"
#include "macro.h"
#include "strutil.h"
#include "test-main.h"

static char dir[] = "/tmp/test-fileio.XXXXXX";

static char *path_in(const char *name) {
        return strdup_printf("%s/%s", dir, name);
}

static char *slurp(const char *p) {
        char *s = NULL;
        ck_assert_int_eq(fileio_read_string(p, 65536, false, &s), 0);
        return s;
}

static void write_file(const char *p, const char *data, size_t len) {
        FILE *f = fopen(p, "we");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(data, 1, len, f), len);
        ck_assert_int_eq(fclose(f), 0);
}

/* Sizes around the 16 KiB first read and the limit, from a regular file (with
 * and without FILEIO_READ_REGULAR) and from a pipe fed by a child. */
START_TEST(test_read_fd_sizes) {
        static const size_t sizes[] = { 0, 1, 16383, 16384, 16385, 100000, 100001 };
        const size_t max = 100000;
        _cleanup_free_ char *p = path_in("read.bin"), *data = malloc(max + 1);

        ck_assert_ptr_nonnull(data);
        for (size_t i = 0; i <= max; i++)
                data[i] = (char) ('a' + i % 26);
        for (size_t i = 0; i < ELEMENTSOF(sizes); i++)
                for (int how = 0; how < 3; how++) {
                        size_t sz = sizes[i], n = 12345;
                        char *got = (char *) 1;
                        int fd, pipefd[2], r;
                        pid_t pid = -1;

                        if (how < 2) {
                                write_file(p, data, sz);
                                fd = open(p, O_RDONLY | O_CLOEXEC);
                        } else {
                                ck_assert_int_eq(pipe(pipefd), 0);
                                pid = fork();
                                ck_assert_int_ge(pid, 0);
                                if (pid == 0) {
                                        close(pipefd[0]);
                                        /* In pieces, so the reader sees short reads. */
                                        for (size_t off = 0; off < sz; off += 7000)
                                                if (write(pipefd[1], data + off, MIN((size_t) 7000, sz - off)) < 0)
                                                        _exit(1);
                                        _exit(0);
                                }
                                close(pipefd[1]);
                                fd = pipefd[0];
                        }
                        ck_assert_int_ge(fd, 0);
                        r = fileio_read_fd(fd, max, how == 1 ? FILEIO_READ_REGULAR : 0, &got, &n);
                        close(fd);
                        if (pid > 0)
                                ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
                        if (sz > max) {
                                ck_assert_msg(r == -EFBIG, "size %zu how %d: %d", sz, how, r);
                                ck_assert_ptr_eq(got, (char *) 1); /* untouched */
                                ck_assert_uint_eq(n, 12345);
                                continue;
                        }
                        ck_assert_msg(r == 0, "size %zu how %d: %d", sz, how, r);
                        ck_assert_uint_eq(n, sz);
                        ck_assert_int_eq(got[n], '\0');
                        ck_assert(memcmp(got, data, sz) == 0);
                        free(got);
                }
}
END_TEST

START_TEST(test_read_string) {
        _cleanup_free_ char *p = path_in("token"), *big = path_in("big"), *s = NULL;
        char *untouched = (char *) 1;

        write_file(p, "s3cret\r\n\n", 9);
        ck_assert_int_eq(fileio_read_string(p, 64, true, &s), 0);
        ck_assert_str_eq(s, "s3cret");
        free(s);
        ck_assert_int_eq(fileio_read_string(p, 64, false, &s), 0);
        ck_assert_str_eq(s, "s3cret\r\n\n");
        write_file(big, "0123456789", 10);
        ck_assert_int_eq(fileio_read_string(big, 9, false, &untouched), -EFBIG);
        ck_assert_int_eq(fileio_read_string(dir, 64, false, &untouched), -EISDIR);
        ck_assert_ptr_eq(untouched, (char *) 1);
        free(s);
        s = NULL;
        ck_assert_int_eq(fileio_read_string(big, 10, false, &s), 0);
        ck_assert_str_eq(s, "0123456789");
}
END_TEST

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
        tcase_add_test(tc, test_read_fd_sizes);
        tcase_add_test(tc, test_read_string);
        tcase_add_test(tc, test_write_and_restore);
        tcase_add_test(tc, test_restore_without_prev_removes);
        tcase_add_test(tc, test_failure_leaves_target);
}

TEST_MAIN_TMPDIR("fileio", dir, add_tests)
