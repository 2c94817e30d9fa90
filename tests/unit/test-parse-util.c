/* Unit tests for lib/parse-util.c: the strict number and boolean parsers. */
#include <check.h>
#include <errno.h>
#include <stdint.h>

#include "parse-util.h"
#include "test-main.h"

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

START_TEST(test_int64_edges) {
        int64_t v = 7;
        uint64_t u = 0;
        bool b = false;

        ck_assert_int_eq(parse_int64("-9223372036854775808", &v), 0);
        ck_assert(v == INT64_MIN);
        ck_assert_int_eq(parse_int64("9223372036854775808", &v), -ERANGE);
        ck_assert(v == INT64_MIN); /* untouched on failure */
        ck_assert_int_eq(parse_int64(" 1", &v), -EINVAL);
        ck_assert_int_eq(parse_int64("1 ", &v), -EINVAL);
        ck_assert_int_eq(parse_int64(NULL, &v), -EINVAL);
        ck_assert_int_eq(parse_uint64("+1", &u), -EINVAL);
        ck_assert_int_eq(parse_bool(NULL, &b), -EINVAL);
        ck_assert_int_eq(parse_bool("YES", &b), 0);
        ck_assert(b);
        ck_assert_int_eq(parse_bool("", &b), -EINVAL);
}
END_TEST

static void add_tests(TCase *tc) {
        tcase_add_test(tc, test_numbers);
        tcase_add_test(tc, test_int64_edges);
}

TEST_MAIN("parse-util", add_tests)
