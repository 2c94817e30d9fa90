/* Unit tests for lib/duration.c. */
#include <check.h>
#include <errno.h>
#include <stdint.h>

#include "duration.h"

static const struct {
        const char *in;
        int r;
        uint64_t usec;
} table[] = {
        { "250ms", 0, 250000 },
        { "30s", 0, 30000000 },
        { "5m", 0, 300000000 },
        { "1h", 0, 3600000000ULL },
        { "1h30m", 0, 5400000000ULL },
        { "1.5s", 0, 1500000 },
        { "0s", 0, 0 },
        { "10us", 0, 10 },
        { "2d", 0, 172800000000ULL },
        { "", -EINVAL, 0 },
        { "30", -EINVAL, 0 },          /* no unit */
        { "s", -EINVAL, 0 },
        { "5x", -EINVAL, 0 },
        { "-1s", -EINVAL, 0 },
        { "1 s", -EINVAL, 0 },
        { "5m3", -EINVAL, 0 },
        { "99999999999999999999s", -ERANGE, 0 },
        { "18446744073709h", -ERANGE, 0 },
};

START_TEST(test_parse_table) {
        uint64_t v = 12345;
        int r = duration_parse(table[_i].in, &v);

        ck_assert_msg(r == table[_i].r, "'%s': got %d want %d", table[_i].in, r, table[_i].r);
        if (r == 0)
                ck_assert_msg(v == table[_i].usec, "'%s': got %llu", table[_i].in, (unsigned long long) v);
        else
                ck_assert_msg(v == 12345, "'%s': output touched on failure", table[_i].in);
}
END_TEST

START_TEST(test_format_roundtrip) {
        static const char *const in[] = { "250ms", "30s", "5m", "1h", "1h30m", "1h0m5s", "0s", "1m500ms" };
        static const char *const out[] = { "250ms", "30s", "5m", "1h", "1h30m", "1h5s", "0s", "1m500ms" };
        char buf[DURATION_MAX];
        uint64_t v, w;

        for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
                ck_assert_int_eq(duration_parse(in[i], &v), 0);
                ck_assert_str_eq(duration_format(v, buf, sizeof buf), out[i]);
                ck_assert_int_eq(duration_parse(buf, &w), 0);
                ck_assert_uint_eq(v, w);
        }
}
END_TEST

START_TEST(test_rfc3339) {
        char buf[40];
        ck_assert_str_eq(format_rfc3339(1795000000123456ULL, buf, sizeof buf), "2026-11-18T11:06:40.123Z");
}
END_TEST

int main(void) {
        Suite *s = suite_create("duration");
        TCase *tc = tcase_create("core");
        SRunner *sr;
        int failed;

        tcase_add_loop_test(tc, test_parse_table, 0, (int) (sizeof table / sizeof table[0]));
        tcase_add_test(tc, test_format_roundtrip);
        tcase_add_test(tc, test_rfc3339);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
