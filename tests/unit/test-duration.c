/* Unit tests for lib/duration.c. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "duration.h"
#include "tests/duration-ref.h"
#include "test-main.h"

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
        /* Fractions are exact, truncated to whole microseconds. */
        { "1.999999999d", 0, 172799999913ULL },
        { "0.5000000000d", 0, 43200000000ULL },
        { "0.5000000001d", 0, 43200000008ULL },
        { "0.99999999999999999999999999999999999999999d", 0, 86399999999ULL },
        { "1.00000000000000000000000000000000000000001d", 0, 86400000000ULL },
        { "0.000000000000000000001d", 0, 0 },
        { "1.9999us", 0, 1 },
        { "0.0000001m", 0, 6 },
        { "0.00000002m", 0, 1 },
        { "1.5ms", 0, 1500 },
        { ".5s", 0, 500000 },
        { "1.s", 0, 1000000 },
        { "1h0.5m", 0, 3630000000ULL },
        /* The largest values, and one past them. */
        { "18446744073709551615us", 0, UINT64_MAX },
        { "18446744073709551.615ms", 0, UINT64_MAX },
        { "18446744073709.551615s", 0, UINT64_MAX },
        { "00000000000000000000000018446744073709551615us", 0, UINT64_MAX },
        { "18446744073709551616us", -ERANGE, 0 },
        { "18446744073709.551616s", -ERANGE, 0 },
        { "18446744073709551615us1us", -ERANGE, 0 },
        { "5124095576h", 0, 18446744073600000000ULL },
        { "5124095577h", -ERANGE, 0 },
        { "307445734561.8m", 0, 18446744073708000000ULL },
        { "213503982.3346d", 0, 18446744073709440000ULL },
        { "213503983d", -ERANGE, 0 },
        /* Overflowed silently before. */
        { "18446744073709.6s", -ERANGE, 0 },
        { "5124095576.1h", -ERANGE, 0 },
        /* Malformed wins over too large. */
        { "99999999999999999999x", -EINVAL, 0 },
        { "99999999999999999999s5x", -EINVAL, 0 },
        { ".", -EINVAL, 0 },
        { ".s", -EINVAL, 0 },
        { "1..5s", -EINVAL, 0 },
        { "1.5.s", -EINVAL, 0 },
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

static void check_against_reference(const char *in) {
        uint64_t v = 12345, w = 12345;
        int r = duration_parse(in, &v), rr = duration_ref_parse(in, &w);

        ck_assert_msg(r == rr, "'%s': got %d, reference %d", in, r, rr);
        ck_assert_msg(v == w, "'%s': got %llu, reference %llu", in, (unsigned long long) v, (unsigned long long) w);
}

START_TEST(test_parse_table_reference) {
        check_against_reference(table[_i].in);
}
END_TEST

static uint64_t xorshift(uint64_t *s) {
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        return *s;
}

/* n random digits; a run of 9s or 0s now and then, where carries and limits are. */
static size_t put_digits(uint64_t *rs, char *p, size_t n) {
        uint64_t style = xorshift(rs) % 4;

        for (size_t i = 0; i < n; i++)
                p[i] = style == 0 ? '9' : style == 1 ? '0' : (char) ('0' + xorshift(rs) % 10);
        return n;
}

/* A whole part near the largest one a unit of usec allows, or of random length. */
static size_t put_whole(uint64_t *rs, char *p, size_t size, uint64_t usec) {
        if (xorshift(rs) % 4 == 0)
                return (size_t) snprintf(p, size, "%llu", (unsigned long long) (UINT64_MAX / usec - 2 + xorshift(rs) % 5));
        return put_digits(rs, p, xorshift(rs) % 23);
}

/* A random string shaped like a duration of 1-3 components, sometimes malformed. */
static void random_duration(uint64_t *rs, char *buf, size_t size) {
        static const struct {
                const char *suffix;
                uint64_t usec;
        } unit[] = { { "us", 1 }, { "ms", 1000 }, { "s", 1000000 }, { "m", 60000000 }, { "h", 3600000000 },
                     { "d", 86400000000 }, { "", 1 }, { "x", 1 }, { " s", 1 }, { ".", 1 } };
        size_t o = 0, n = 1 + xorshift(rs) % 3;

        for (size_t k = 0; k < n && o + 80 < size; k++) {
                size_t u = xorshift(rs) % (xorshift(rs) % 16 == 0 ? 10 : 6);
                o += put_whole(rs, buf + o, size - o, unit[u].usec);
                if (xorshift(rs) % 3 != 0) {
                        buf[o++] = '.';
                        o += put_digits(rs, buf + o, xorshift(rs) % 45);
                }
                o += (size_t) snprintf(buf + o, size - o, "%s", unit[u].suffix);
        }
        buf[o] = '\0';
}

START_TEST(test_parse_random_reference) {
        uint64_t rs = UINT64_C(0x9e3779b97f4a7c15);
        char buf[512];

        for (int i = 0; i < 5000; i++) {
                random_duration(&rs, buf, sizeof buf);
                check_against_reference(buf);
        }
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

static void add_tests(TCase *tc) {
        tcase_add_loop_test(tc, test_parse_table, 0, (int) (sizeof table / sizeof table[0]));
        tcase_add_loop_test(tc, test_parse_table_reference, 0, (int) (sizeof table / sizeof table[0]));
        tcase_add_test(tc, test_parse_random_reference);
        tcase_add_test(tc, test_format_roundtrip);
        tcase_add_test(tc, test_rfc3339);
}

TEST_MAIN("duration", add_tests)
