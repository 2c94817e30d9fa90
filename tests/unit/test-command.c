/* Unit tests for lib/command.c: encode/decode round trip and validation; the
 * result keys (lib/keys.h) and the ACL patterns built from them. */
#include <check.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "keys.h"
#include "test-main.h"

START_TEST(test_roundtrip) {
        struct command *c = NULL, *d = NULL;
        char err[256];
        char *json;

        ck_assert_int_eq(command_new(COMMAND_DEPLOY, "web-1", "2.0", "dep1", &c), 0);
        ck_assert_uint_eq(strlen(c->id), 32);
        json = command_encode(c);
        ck_assert_ptr_nonnull(json);
        ck_assert_int_eq(command_decode(json, strlen(json), &d, err, sizeof err), 0);
        ck_assert_str_eq(d->id, c->id);
        ck_assert_int_eq(d->type, COMMAND_DEPLOY);
        ck_assert_str_eq(d->instance, "web-1");
        ck_assert_str_eq(d->version, "2.0");
        ck_assert_str_eq(d->deployment, "dep1");
        ck_assert_uint_eq(d->created_at_ms, c->created_at_ms);
        free(json);
        command_free(c);
        command_free(d);
}
END_TEST

static const struct {
        const char *json;
        const char *culprit;
} bad[] = {
        { "not json", "invalid JSON" },
        { "[1]", "object" },
        { "{\"type\":\"drain\"}", "id: missing" },
        { "{\"id\":\"a/b\",\"type\":\"drain\"}", "id: invalid" },
        { "{\"id\":\"c1\"}", "type: missing" },
        { "{\"id\":\"c1\",\"type\":\"reboot\"}", "type: unknown" },
        { "{\"id\":\"c1\",\"type\":\"deploy\"}", "version: required" },
        { "{\"id\":\"c1\",\"type\":\"deploy\",\"version\":\"1 0\"}", "version: invalid" },
        { "{\"id\":\"c1\",\"type\":\"drain\",\"instance\":\"*\"}", "instance: invalid" },
        { "{\"id\":\"c1\",\"type\":\"drain\",\"extra\":1}", "extra: unknown field" },
        { "{\"id\":1,\"type\":\"drain\"}", "id: expected a string" },
        { "{\"id\":\"c1\",\"type\":\"migrate\",\"version\":\"2\",\"phase\":\"middle\"}", "phase: 'middle'" },
        { "{\"id\":\"c1\",\"type\":\"drain\",\"phase\":\"pre\"}", "phase: only valid for migrate" },
};

START_TEST(test_bad) {
        struct command *c = NULL;
        char err[256] = "";

        ck_assert_int_eq(command_decode(bad[_i].json, strlen(bad[_i].json), &c, err, sizeof err), -EINVAL);
        ck_assert_ptr_null(c);
        ck_assert_msg(strstr(err, bad[_i].culprit), "'%s' does not name '%s'", err, bad[_i].culprit);
}
END_TEST

START_TEST(test_coordinatord_form) {
        static const char json[] = "{\"id\":\"ab12\",\"type\":\"drain\",\"instance\":\"web-1\","
                                   "\"version\":null,\"deployment\":null,\"created_at\":\"2026-11-23T04:00:00.000Z\"}";
        struct command *c = NULL;
        char err[256] = "";

        ck_assert_msg(command_decode(json, strlen(json), &c, err, sizeof err) == 0, "%s", err);
        ck_assert_int_eq(c->type, COMMAND_DRAIN);
        ck_assert_ptr_null(c->version);
        ck_assert_ptr_null(c->deployment);
        command_free(c);
}
END_TEST

START_TEST(test_phase) {
        struct command *c = NULL, *d = NULL;
        char err[256] = "";
        char *json;

        ck_assert_int_eq(command_new(COMMAND_MIGRATE, "web-1", "2.0", "dep1", &c), 0);
        ck_assert_int_eq(command_set_phase(c, "post"), 0);
        ck_assert_int_eq(command_set_phase(c, "later"), -EINVAL);
        ck_assert_int_eq(command_set_id(c, "dep1-7"), 0);
        ck_assert_int_eq(command_set_id(c, "a/b"), -EINVAL);
        json = command_encode(c);
        ck_assert_ptr_nonnull(strstr(json, "\"phase\":\"post\""));
        ck_assert_msg(command_decode(json, strlen(json), &d, err, sizeof err) == 0, "%s", err);
        ck_assert_str_eq(d->phase, "post");
        ck_assert_str_eq(d->id, "dep1-7");
        free(json);
        command_free(c);
        command_free(d);

        ck_assert_int_eq(command_new(COMMAND_DRAIN, "web-1", NULL, NULL, &c), 0);
        ck_assert_int_eq(command_set_phase(c, "pre"), -EINVAL);
        command_free(c);
}
END_TEST

START_TEST(test_types) {
        for (int t = 0; t < _COMMAND_TYPE_MAX; t++)
                ck_assert_int_eq(command_type_from_string(command_type_to_string((enum command_type) t)), t);
        ck_assert_int_eq(command_type_from_string("apply-config"), COMMAND_APPLY_CONFIG);
        ck_assert_int_eq(command_type_from_string("reboot"), -EINVAL);
        ck_assert_int_eq(command_type_from_string(NULL), -EINVAL);
        ck_assert_ptr_null(command_type_to_string(_COMMAND_TYPE_MAX));
        ck_assert(command_type_needs_version(COMMAND_MIGRATE));
        ck_assert(!command_type_needs_version(COMMAND_DRAIN));
}
END_TEST

/* pattern matches key, the way Redis' glob does for these patterns ("*" spans
 * any characters, "{" and "}" are plain: fnmatch() without flags agrees). */
static bool matches(char *pattern, char *key) {
        bool m = pattern && key && fnmatch(pattern, key, 0) == 0;

        free(pattern);
        free(key);
        return m;
}

START_TEST(test_result_keys) {
        char *k = key_agent_result("prod", "h1", "c1");

        ck_assert_str_eq(k, "coord:{prod}:agent:h1:result:c1");
        free(k);
        k = key_command_legacy("prod", "c1");
        ck_assert_str_eq(k, "coord:{prod}:command:c1");
        free(k);
        /* One host's result pattern: its results only. */
        ck_assert(matches(key_agent_result("prod", "h1", "*"), key_agent_result("prod", "h1", "c1")));
        ck_assert(!matches(key_agent_result("prod", "h1", "*"), key_agent_result("prod", "h10", "c1")));
        ck_assert(!matches(key_agent_result("prod", "h1", "*"), key_agent_commands("prod", "h1")));
        ck_assert(!matches(key_agent_result("prod", "h1", "*"), key_command_legacy("prod", "c1")));
        /* The namespace pattern: not its locks, not another namespace. */
        ck_assert(matches(key_namespace_pattern("prod"), key_agent_result("prod", "h1", "c1")));
        ck_assert(!matches(key_namespace_pattern("prod"), key_lock("prod", LOCK_NAME_LEADER)));
        ck_assert(!matches(key_namespace_pattern("prod"), key_instance("prod2", "web-1")));
        ck_assert(matches(key_lock_fence("prod", "migrate-*"), key_lock_fence("prod", "migrate-0a1b")));
        ck_assert(!matches(key_lock("prod", "*"), key_lock_fence("prod", "leader")));
}
END_TEST

static void add_tests(TCase *tc) {
        tcase_add_test(tc, test_roundtrip);
        tcase_add_loop_test(tc, test_bad, 0, (int) (sizeof bad / sizeof bad[0]));
        tcase_add_test(tc, test_types);
        tcase_add_test(tc, test_phase);
        tcase_add_test(tc, test_coordinatord_form);
        tcase_add_test(tc, test_result_keys);
}

TEST_MAIN("command", add_tests)
