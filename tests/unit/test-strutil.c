/* Unit tests for lib/strutil.c (number parsers: test-parse-util.c; log masking: test-log.c). */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "strutil.h"
#include "test-main.h"

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

START_TEST(test_consttime_sha) {
        char hex[65];

        ck_assert(memeq_consttime("abc", 3, "abc", 3));
        ck_assert(!memeq_consttime("abc", 3, "abd", 3));
        ck_assert(!memeq_consttime("abc", 3, "abcd", 4));
        sha256_hex("abc", 3, hex);
        ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
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

START_TEST(test_errbuf) {
        char buf[8];

        errbuf_printf(NULL, 0, "x %d", 1); /* no buffer: nothing, no crash */
        errbuf_printf(NULL, 16, "x %d", 1);
        memset(buf, 'z', sizeof buf);
        errbuf_printf(buf, 0, "x %d", 1);
        ck_assert_int_eq(buf[0], 'z'); /* len 0: untouched */
        errbuf_printf(buf, sizeof buf, "%s", "abc");
        ck_assert_str_eq(buf, "abc");
        errbuf_printf(buf, sizeof buf, "%s-%d", "truncated", 42);
        ck_assert_str_eq(buf, "truncat"); /* cut, always terminated */
}
END_TEST

static void add_tests(TCase *tc) {
        tcase_add_test(tc, test_names);
        tcase_add_test(tc, test_versions);
        tcase_add_test(tc, test_consttime_sha);
        tcase_add_test(tc, test_random_hex);
        tcase_add_test(tc, test_errbuf);
}

TEST_MAIN("strutil", add_tests)
