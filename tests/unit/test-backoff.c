/* Unit tests for lib/backoff.c: the delay of attempt k is uniform in
 * [ceil/2, ceil] with ceil = min(cap, base * 2^k); init's bounds; reset.
 * The jitter comes from random_bytes() (no seed to fix), so the range is
 * checked over many draws and both halves of it must be seen. */
#include <check.h>
#include <stdint.h>

#include "backoff.h"
#include "test-main.h"

#define DRAWS 2000

/* DRAWS fresh delays at attempt k: all in [lo, hi], at least one in each half. */
static void check_attempt(uint64_t base, uint64_t cap, unsigned k, uint64_t lo, uint64_t hi) {
        uint64_t min = UINT64_MAX, max = 0, mid = lo + (hi - lo) / 2;
        unsigned below = 0, above = 0;

        for (unsigned d = 0; d < DRAWS; d++) {
                struct backoff b;
                uint64_t v;

                backoff_init(&b, base, cap);
                for (unsigned i = 0; i < k; i++)
                        (void) backoff_next(&b);
                v = backoff_next(&b);
                min = v < min ? v : min;
                max = v > max ? v : max;
                below += v < mid;
                above += v > mid;
        }
        ck_assert_msg(min >= lo && max <= hi, "attempt %u: [%llu, %llu] outside [%llu, %llu]", k,
                      (unsigned long long) min, (unsigned long long) max, (unsigned long long) lo,
                      (unsigned long long) hi);
        ck_assert_msg(below > 0 && above > 0, "attempt %u: no jitter (%u below, %u above %llu)", k, below, above,
                      (unsigned long long) mid);
}

static const struct {
        uint64_t base, cap;
        unsigned attempt;
        uint64_t lo, hi;
} attempts[] = {
        /* growth: 100 ms base, 5 s cap, in usec */
        { 100000, 5000000, 0, 50000, 100000 },
        { 100000, 5000000, 1, 100000, 200000 },
        { 100000, 5000000, 2, 200000, 400000 },
        { 100000, 5000000, 3, 400000, 800000 },
        { 100000, 5000000, 5, 1600000, 3200000 },
        /* the cap: 100 * 2^6 = 6400 > 5000, from attempt 6 on the cap is the ceiling */
        { 100, 5000, 5, 1600, 3200 },
        { 100, 5000, 6, 2500, 5000 },
        { 100, 5000, 7, 2500, 5000 },
        { 100, 5000, 40, 2500, 5000 },
};

START_TEST(test_attempts) {
        check_attempt(attempts[_i].base, attempts[_i].cap, attempts[_i].attempt, attempts[_i].lo, attempts[_i].hi);
}
END_TEST

START_TEST(test_attempt_saturates) {
        struct backoff b;

        backoff_init(&b, 100, 5000);
        ck_assert_uint_eq(b.attempt, 0);
        (void) backoff_next(&b);
        ck_assert_uint_eq(b.attempt, 1);
        for (unsigned i = 1; i < 200; i++) {
                uint64_t v = backoff_next(&b);
                if (i >= 6) /* capped from attempt 6 (100 * 2^6 > 5000) */
                        ck_assert(v >= 2500 && v <= 5000);
        }
        ck_assert_uint_eq(b.attempt, 64);
}
END_TEST

START_TEST(test_init_bounds) {
        struct backoff b;

        backoff_init(&b, 0, 0); /* base 0 is taken as 1, the cap never below the base */
        ck_assert_uint_eq(b.base_usec, 1);
        ck_assert_uint_eq(b.cap_usec, 1);
        for (unsigned i = 0; i < 100; i++)
                ck_assert_uint_le(backoff_next(&b), 1);

        backoff_init(&b, 1000, 10); /* cap below base: raised to it */
        ck_assert_uint_eq(b.base_usec, 1000);
        ck_assert_uint_eq(b.cap_usec, 1000);
        for (unsigned i = 0; i < 100; i++) {
                uint64_t v = backoff_next(&b);
                ck_assert(v >= 500 && v <= 1000);
        }

        backoff_init(&b, 1000, 1000); /* base == cap: constant ceiling */
        check_attempt(1000, 1000, 0, 500, 1000);
        check_attempt(1000, 1000, 10, 500, 1000);
}
END_TEST

START_TEST(test_reset) {
        struct backoff b;
        uint64_t v;

        backoff_init(&b, 100, 5000);
        for (unsigned i = 0; i < 10; i++)
                (void) backoff_next(&b);
        ck_assert_uint_eq(b.attempt, 10);
        backoff_reset(&b);
        ck_assert_uint_eq(b.attempt, 0);
        ck_assert_uint_eq(b.base_usec, 100); /* the bounds are kept */
        ck_assert_uint_eq(b.cap_usec, 5000);
        v = backoff_next(&b);
        ck_assert(v >= 50 && v <= 100);
        v = backoff_next(&b);
        ck_assert(v >= 100 && v <= 200);
}
END_TEST

static void add_tests(TCase *tc) {
        tcase_add_loop_test(tc, test_attempts, 0, (int) (sizeof attempts / sizeof attempts[0]));
        tcase_add_test(tc, test_attempt_saturates);
        tcase_add_test(tc, test_init_bounds);
        tcase_add_test(tc, test_reset);
}

TEST_MAIN("backoff", add_tests)
