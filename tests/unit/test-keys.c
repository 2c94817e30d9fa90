/* Unit tests for lib/keys.c: every key and channel name, exactly as keys.h
 * documents the Redis layout.  A change here is a change of the on-Redis
 * format (agents, coordinatord and coordctl of other versions read it). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "test-main.h"

static void check_key(char *got, const char *want) {
        ck_assert_ptr_nonnull(got);
        ck_assert_str_eq(got, want);
        free(got);
}

/* Locks: the hash tag covers namespace, "lock" and the name, so all keys of
 * one lock live in one Redis Cluster slot. */
START_TEST(test_lock_keys) {
        check_key(key_lock("prod", "db"), "coord:{prod:lock:db}");
        check_key(key_lock_fence("prod", "db"), "coord:{prod:lock:db}:fence");
        check_key(key_lock_holder("prod", "db"), "coord:{prod:lock:db}:holder");
        check_key(key_lock_channel("prod", "db"), "coord:{prod:lock:db}:released");
        check_key(key_lock_waiters("prod", "db"), "coord:{prod:lock:db}:waiters");
        check_key(key_lock_wake("prod", "db", "t0k"), "coord:{prod:lock:db}:released:t0k");
        check_key(key_lock("prod", LOCK_NAME_LEADER), "coord:{prod:lock:leader}");
        ck_assert_str_eq(LOCK_NAME_LEADER, "leader");
}
END_TEST

/* Everything else: the hash tag is the namespace alone. */
START_TEST(test_fleet_keys) {
        check_key(key_instance("prod", "web-1"), "coord:{prod}:instance:web-1");
        check_key(key_alive("prod", "web-1"), "coord:{prod}:alive:web-1");
        check_key(key_instances("prod"), "coord:{prod}:instances");
        check_key(key_events("prod"), "coord:{prod}:events");
}
END_TEST

START_TEST(test_command_keys) {
        check_key(key_agent_commands("prod", "h1"), "coord:{prod}:agent:h1:commands");
        check_key(key_agent_inflight("prod", "h1"), "coord:{prod}:agent:h1:inflight");
        check_key(key_agent_wake("prod", "h1"), "coord:{prod}:agent:h1:wake");
        check_key(key_agent_result("prod", "h1", "c-42"), "coord:{prod}:agent:h1:result:c-42");
        check_key(key_command_legacy("prod", "c-42"), "coord:{prod}:command:c-42");
        check_key(key_command_results("prod"), "coord:{prod}:command-results");
}
END_TEST

START_TEST(test_config_keys) {
        check_key(key_config("prod", "web"), "coord:{prod}:config:web");
        check_key(key_config_changed("prod"), "coord:{prod}:config-changed");
}
END_TEST

START_TEST(test_deployment_keys) {
        check_key(key_deployment("prod", "d1"), "coord:{prod}:deployment:d1");
        check_key(key_deployment_events("prod", "d1"), "coord:{prod}:deployment:d1:events");
        check_key(key_deployment_instances("prod", "d1"), "coord:{prod}:deployment:d1:instances");
        check_key(key_deployments("prod"), "coord:{prod}:deployments");
        check_key(key_deployments_service("prod", "web"), "coord:{prod}:deployments:web");
        check_key(key_deployments_active("prod"), "coord:{prod}:deployments-active");
        check_key(key_active("prod", "web"), "coord:{prod}:active:web");
        check_key(key_idempotency("prod", "ab12"), "coord:{prod}:idempotency:ab12");
        check_key(key_deployment_events_channel("prod"), "coord:{prod}:deployment-events");
        check_key(key_deployment_wake("prod"), "coord:{prod}:deployment-wake");
        check_key(key_migration("prod", "web"), "coord:{prod}:migration:web");
}
END_TEST

START_TEST(test_probe_keys) {
        check_key(key_lmove_probe("doctor"), "coord:{doctor}:lmove-probe");
}
END_TEST

/* Only the keepalive channels are refused to subscribers. */
START_TEST(test_keepalive_channel) {
        char *k = key_keepalive("0123abcd");

        ck_assert_ptr_nonnull(k);
        ck_assert(key_is_keepalive(k));
        free(k);
        ck_assert(key_is_keepalive("coord:keepalive:"));
        ck_assert(!key_is_keepalive("coord:keepalive"));
        ck_assert(!key_is_keepalive("coord:{prod}:events"));
        ck_assert(!key_is_keepalive(""));
}
END_TEST

/* ACL patterns: "*" for a name gives the pattern of all such keys, and the
 * namespace pattern covers every key but the locks. */
START_TEST(test_patterns) {
        check_key(key_namespace_pattern("prod"), "coord:{prod}:*");
        check_key(key_instance("prod", "*"), "coord:{prod}:instance:*");
        check_key(key_lock("prod", "*"), "coord:{prod:lock:*}");
        check_key(key_keepalive("0123abcd"), "coord:keepalive:0123abcd");
}
END_TEST

/* The namespace is inside the tag in every key, so two namespaces never share one. */
START_TEST(test_namespace_separates) {
        char *a = key_instances("a"), *b = key_instances("b");

        ck_assert_ptr_nonnull(a);
        ck_assert_ptr_nonnull(b);
        ck_assert_str_ne(a, b);
        ck_assert_str_eq(a, "coord:{a}:instances");
        free(a);
        free(b);
}
END_TEST

START_TEST(test_namespace_default) {
        ck_assert_int_eq(unsetenv("COORD_NAMESPACE"), 0);
        ck_assert_str_eq(namespace_default(), "default");
        ck_assert_int_eq(setenv("COORD_NAMESPACE", "staging", 1), 0);
        ck_assert_str_eq(namespace_default(), "staging");
        /* An invalid name never reaches a key. */
        ck_assert_int_eq(setenv("COORD_NAMESPACE", "a b", 1), 0);
        ck_assert_str_eq(namespace_default(), "default");
        ck_assert_int_eq(setenv("COORD_NAMESPACE", "", 1), 0);
        ck_assert_str_eq(namespace_default(), "default");
        ck_assert_int_eq(unsetenv("COORD_NAMESPACE"), 0);
}
END_TEST

static void add_tests(TCase *tc) {
        tcase_add_test(tc, test_lock_keys);
        tcase_add_test(tc, test_fleet_keys);
        tcase_add_test(tc, test_command_keys);
        tcase_add_test(tc, test_config_keys);
        tcase_add_test(tc, test_deployment_keys);
        tcase_add_test(tc, test_probe_keys);
        tcase_add_test(tc, test_keepalive_channel);
        tcase_add_test(tc, test_patterns);
        tcase_add_test(tc, test_namespace_separates);
        tcase_add_test(tc, test_namespace_default);
}

TEST_MAIN("keys", add_tests)
