/* Unit tests for lib/strutil.c and the secret masking of lib/log.c. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "strutil.h"

START_TEST(test_names) {
        static const char *const good[] = { "web", "web-1", "a", "Web_2.0", "0abc", "x-y.z_w" };
        static const char *const bad[] = { "", "-web", ".web", "web/1", "web*", "../etc", "a..b", "web 1",
                                           "web{1}", "web:1", "é", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" };
        for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
                ck_assert_msg(name_is_valid(good[i]), "%s should be valid", good[i]);
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
                ck_assert_msg(!name_is_valid(bad[i]), "%s should be invalid", bad[i]);
        ck_assert(!name_is_valid(NULL));
}
END_TEST

START_TEST(test_versions) {
        static const char *const good[] = { "1.0", "2.0.1-rc.1", "1.0+build.5", "1~3", "v2", "a" };
        static const char *const bad[] = { "", "1.0 beta", "1/2", "$(id)", "1;2", "a\nb" };
        char longv[130];

        for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
                ck_assert_msg(version_is_valid(good[i]), "%s should be valid", good[i]);
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
                ck_assert_msg(!version_is_valid(bad[i]), "%s should be invalid", bad[i]);
        memset(longv, '1', 129);
        longv[129] = '\0';
        ck_assert(!version_is_valid(longv));
        longv[128] = '\0';
        ck_assert(version_is_valid(longv));
        ck_assert(!version_is_valid(NULL));
}
END_TEST

START_TEST(test_numbers) {
        uint64_t u = 7;
        int i = 7;
        bool b;

        ck_assert_int_eq(parse_uint64("42", &u), 0);
        ck_assert_uint_eq(u, 42);
        ck_assert_int_eq(parse_uint64("-1", &u), -EINVAL);
        ck_assert_int_eq(parse_uint64("4x", &u), -EINVAL);
        ck_assert_int_eq(parse_uint64("", &u), -EINVAL);
        ck_assert_int_eq(parse_uint64("99999999999999999999999", &u), -ERANGE);
        ck_assert_uint_eq(u, 42);
        ck_assert_int_eq(parse_int("-5", &i), 0);
        ck_assert_int_eq(i, -5);
        ck_assert_int_eq(parse_int("4294967296", &i), -ERANGE);
        ck_assert_int_eq(parse_bool("True", &b), 0);
        ck_assert(b);
        ck_assert_int_eq(parse_bool("off", &b), 0);
        ck_assert(!b);
        ck_assert_int_eq(parse_bool("maybe", &b), -EINVAL);
}
END_TEST

START_TEST(test_consttime_sha) {
        char hex[65];

        ck_assert(memeq_consttime("abc", 3, "abc", 3));
        ck_assert(!memeq_consttime("abc", 3, "abd", 3));
        ck_assert(!memeq_consttime("abc", 3, "abcd", 4));
        sha256_hex("abc", 3, hex);
        ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
END_TEST

START_TEST(test_mask_secrets) {
        char *m;
        char path[] = "/tmp/coord-test-log.XXXXXX";
        int fd, saved;
        char buf[4096];
        ssize_t n;

        log_clear_secrets();
        log_add_secret("s3cr3t,p@ss");
        log_add_secret("ab"); /* too short: ignored */
        m = log_mask_secrets("password=s3cr3t,p@ss and again s3cr3t,p@ss; ab");
        ck_assert_str_eq(m, "password=***** and again *****; ab");
        free(m);

        /* The secret never reaches stderr, in the message or in fields. */
        fd = mkstemp(path);
        ck_assert_int_ge(fd, 0);
        saved = dup(STDERR_FILENO);
        dup2(fd, STDERR_FILENO);
        log_open("test");
        log_force_stderr(1);
        {
                const char *fields[] = { "COORD_INSTANCE=web-1", "COORD_REDIS=redis://:s3cr3t,p@ss@h", NULL };
                log_fields(LOG_ERR, fields, "connecting with s3cr3t,p@ss failed");
        }
        fflush(stderr);
        dup2(saved, STDERR_FILENO);
        close(saved);
        lseek(fd, 0, SEEK_SET);
        n = read(fd, buf, sizeof buf - 1);
        ck_assert_int_gt(n, 0);
        buf[n] = '\0';
        close(fd);
        unlink(path);
        ck_assert_msg(strstr(buf, "s3cr3t") == NULL, "secret leaked: %s", buf);
        ck_assert_msg(strstr(buf, "connecting with ***** failed"), "got: %s", buf);
        ck_assert_msg(strstr(buf, "instance=web-1"), "field missing: %s", buf);
}
END_TEST

/* Secrets shorter than the mask, repeated up to the end of a line that must be
 * cut: the line shrinks safely and never shows a secret (ASan checks the bounds). */
START_TEST(test_mask_long_line) {
        static const char *const secrets[] = { "abc", "abcd" };
        char path[] = "/tmp/coord-test-log2.XXXXXX";
        static char big[9000], buf[20000];
        int fd, saved;
        ssize_t n;

        for (size_t k = 0; k < 2; k++) {
                size_t sl = strlen(secrets[k]), o = 0;

                log_clear_secrets();
                log_add_secret(secrets[k]);
                while (o + sl < sizeof big - 1) {
                        memcpy(big + o, secrets[k], sl);
                        o += sl;
                }
                big[o] = '\0';
                fd = mkstemp(path);
                ck_assert_int_ge(fd, 0);
                saved = dup(STDERR_FILENO);
                dup2(fd, STDERR_FILENO);
                log_force_stderr(1);
                log_error("%s", big);
                log_error("x%s", big + 1);
                fflush(stderr);
                dup2(saved, STDERR_FILENO);
                close(saved);
                lseek(fd, 0, SEEK_SET);
                n = read(fd, buf, sizeof buf - 1);
                close(fd);
                unlink(path);
                memcpy(path + strlen(path) - 6, "XXXXXX", 6);
                ck_assert_int_gt(n, 0);
                buf[n] = '\0';
                ck_assert_msg(strstr(buf, secrets[k]) == NULL, "secret %s shown", secrets[k]);
                ck_assert_msg(strstr(buf, "*****"), "nothing masked");
        }
        log_clear_secrets();
}
END_TEST

START_TEST(test_random_hex) {
        char a[33], b[33];
        ck_assert_int_eq(random_hex(a, 16), 0);
        ck_assert_int_eq(random_hex(b, 16), 0);
        ck_assert_uint_eq(strlen(a), 32);
        ck_assert_str_ne(a, b);
}
END_TEST

int main(void) {
        Suite *s = suite_create("strutil");
        TCase *tc = tcase_create("core");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_names);
        tcase_add_test(tc, test_versions);
        tcase_add_test(tc, test_numbers);
        tcase_add_test(tc, test_consttime_sha);
        tcase_add_test(tc, test_mask_secrets);
        tcase_add_test(tc, test_mask_long_line);
        tcase_add_test(tc, test_random_hex);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
