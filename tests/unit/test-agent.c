/* Unit tests for agent/agent.c: the ownership contract of agent_new() on its
 * failure paths (run under ASan by tests/run --sanitize: a double free or a
 * leak of the config fails the test). */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent-config.h"
#include "agent.h"
#include "macro.h"
#include "test-main.h"

static const char config_json[] =
        "{\"redis\": \"redis://127.0.0.1:1/0\", \"host\": \"h1\", \"state_dir\": \"/tmp/coord-test-agent\","
        " \"services\": [{\"name\": \"web\", \"instance\": \"web-1\", \"address\": \"127.0.0.1:8080\","
        " \"version\": \"1.0\"}]}";

static struct agent_config *load(void) {
        struct agent_config *c = NULL;
        char err[256] = "";

        ck_assert_msg(agent_config_load("test.json", config_json, &c, err, sizeof err) == 0, "%s", err);
        return c;
}

START_TEST(test_new_failure_takes_config) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        struct agent_config *c = load();
        struct agent *a = (struct agent *) 0x1;

        ck_assert_int_eq(sd_event_new(&e), 0);
        /* An unparsable connection string (config validation normally stops it
         * earlier): agent_new() fails and frees c; the caller must not. */
        free(c->redis);
        c->redis = strdup("redis://[::1");
        ck_assert_ptr_nonnull(c->redis);
        ck_assert_int_eq(agent_new(e, "test.json", c, &a), -EINVAL);
        ck_assert_ptr_eq(a, (struct agent *) 0x1); /* untouched on failure */
}
END_TEST

START_TEST(test_new_success_owns_config) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        struct agent *a = NULL;

        ck_assert_int_eq(sd_event_new(&e), 0);
        ck_assert_int_eq(agent_new(e, "test.json", load(), &a), 0);
        ck_assert_ptr_nonnull(a);
        ck_assert_str_eq(a->config->host, "h1");
        ck_assert_ptr_null(agent_free(a)); /* frees the config too */
}
END_TEST

static void add_tests(TCase *tc) {
        tcase_add_test(tc, test_new_failure_takes_config);
        tcase_add_test(tc, test_new_success_owns_config);
}

TEST_MAIN("agent", add_tests)
