/* Unit tests for agent/health.c: rise, fall, grace, overlays. */
#include <check.h>
#include <errno.h>

#include "health.h"
#include "test-main.h"

#define MS 1000ULL

START_TEST(test_rise_from_starting) {
        struct health h;

        health_init(&h, 2, 3, 0, 0);
        ck_assert_int_eq(h.state, HEALTH_STARTING);
        ck_assert(!health_observe(&h, true, 1 * MS));
        ck_assert_int_eq(h.state, HEALTH_STARTING);
        ck_assert(health_observe(&h, true, 2 * MS));
        ck_assert_int_eq(h.state, HEALTH_HEALTHY);
        ck_assert(!health_observe(&h, true, 3 * MS));
}
END_TEST

START_TEST(test_fall_and_back) {
        struct health h;

        health_init(&h, 2, 3, 0, 0);
        health_observe(&h, true, 1);
        health_observe(&h, true, 2);
        ck_assert_int_eq(h.state, HEALTH_HEALTHY);
        ck_assert(!health_observe(&h, false, 3));
        ck_assert(!health_observe(&h, false, 4));
        /* A success in between resets the count. */
        ck_assert(!health_observe(&h, true, 5));
        ck_assert(!health_observe(&h, false, 6));
        ck_assert(!health_observe(&h, false, 7));
        ck_assert_int_eq(h.state, HEALTH_HEALTHY);
        ck_assert(health_observe(&h, false, 8));
        ck_assert_int_eq(h.state, HEALTH_UNHEALTHY);
        ck_assert(!health_observe(&h, false, 9));
        ck_assert(!health_observe(&h, true, 10));
        ck_assert_int_eq(h.state, HEALTH_UNHEALTHY);
        ck_assert(!health_observe(&h, false, 11));
        ck_assert(!health_observe(&h, true, 12));
        ck_assert(health_observe(&h, true, 13));
        ck_assert_int_eq(h.state, HEALTH_HEALTHY);
}
END_TEST

START_TEST(test_grace_ignores_failures) {
        struct health h;

        health_init(&h, 1, 2, 1000 * MS, 0);
        for (unsigned i = 1; i < 10; i++) {
                ck_assert(!health_observe(&h, false, i * 100 * MS));
                ck_assert_int_eq(h.state, HEALTH_STARTING);
                ck_assert(health_in_grace(&h, i * 100 * MS));
        }
        ck_assert(!health_in_grace(&h, 1000 * MS));
        /* After grace: fall failures needed, none carried over from the grace period. */
        ck_assert(!health_observe(&h, false, 1000 * MS));
        ck_assert_int_eq(h.state, HEALTH_STARTING);
        ck_assert(health_observe(&h, false, 1100 * MS));
        ck_assert_int_eq(h.state, HEALTH_UNHEALTHY);
}
END_TEST

START_TEST(test_success_during_grace_counts) {
        struct health h;

        health_init(&h, 1, 1, 10000 * MS, 0);
        ck_assert(health_observe(&h, true, 1));
        ck_assert_int_eq(h.state, HEALTH_HEALTHY);
        /* Grace only covers "starting": a healthy instance falls at once. */
        ck_assert(health_observe(&h, false, 2));
        ck_assert_int_eq(h.state, HEALTH_UNHEALTHY);
}
END_TEST

START_TEST(test_restart) {
        struct health h;

        health_init(&h, 1, 1, 500 * MS, 0);
        health_observe(&h, true, 1);
        ck_assert_int_eq(h.state, HEALTH_HEALTHY);
        health_restart(&h, 10000 * MS);
        ck_assert_int_eq(h.state, HEALTH_STARTING);
        ck_assert(!health_observe(&h, false, 10100 * MS));
        ck_assert(health_observe(&h, false, 10600 * MS));
}
END_TEST

START_TEST(test_names) {
        ck_assert_str_eq(instance_state_name(HEALTH_HEALTHY, false, false), "healthy");
        ck_assert_str_eq(instance_state_name(HEALTH_UNHEALTHY, false, false), "unhealthy");
        ck_assert_str_eq(instance_state_name(HEALTH_STARTING, false, false), "starting");
        ck_assert_str_eq(instance_state_name(HEALTH_HEALTHY, true, false), "draining");
        ck_assert_str_eq(instance_state_name(HEALTH_HEALTHY, true, true), "stopped");
}
END_TEST

START_TEST(test_tables) {
        for (int s = 0; s < _HEALTH_STATE_MAX; s++) {
                ck_assert_int_eq(health_state_from_string(health_state_to_string((enum health_state) s)), s);
                /* the instance states begin with the health states */
                ck_assert_str_eq(instance_state_to_string((enum instance_state) s),
                                 health_state_to_string((enum health_state) s));
                ck_assert_int_eq(instance_state_of((enum health_state) s, false, false), s);
        }
        for (int s = 0; s < _INSTANCE_STATE_MAX; s++)
                ck_assert_int_eq(instance_state_from_string(instance_state_to_string((enum instance_state) s)), s);
        ck_assert_int_eq(instance_state_of(HEALTH_HEALTHY, true, false), INSTANCE_DRAINING);
        ck_assert_int_eq(instance_state_of(HEALTH_UNHEALTHY, false, true), INSTANCE_STOPPED);
        ck_assert_int_eq(health_state_from_string("draining"), -EINVAL);
        ck_assert_int_eq(health_state_from_string("unknown"), -EINVAL);
        ck_assert_int_eq(instance_state_from_string("lost"), -EINVAL);
        ck_assert_int_eq(instance_state_from_string(NULL), -EINVAL);
        ck_assert_ptr_null(health_state_to_string(_HEALTH_STATE_MAX));
        ck_assert_ptr_null(instance_state_to_string(_INSTANCE_STATE_MAX));
}
END_TEST

static void add_tests(TCase *tc) {
        tcase_add_test(tc, test_rise_from_starting);
        tcase_add_test(tc, test_fall_and_back);
        tcase_add_test(tc, test_grace_ignores_failures);
        tcase_add_test(tc, test_success_during_grace_counts);
        tcase_add_test(tc, test_restart);
        tcase_add_test(tc, test_names);
        tcase_add_test(tc, test_tables);
}

TEST_MAIN("health", add_tests)
