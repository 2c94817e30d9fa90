/* Unit tests for agent/agent-config.c: the schema and its extra checks. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent-config.h"
#include "log.h"

#define SVC "\"name\":\"web\",\"version\":\"1.0\""
#define BASE "\"redis\":\"redis://127.0.0.1:6379/0\",\"host\":\"h1\","

static const struct {
        const char *json;
        const char *culprit; /* substring of the error; NULL: valid */
} table[] = {
        { "{" BASE "\"services\":[{" SVC "}]}", NULL },
        { "{" BASE "\"services\":[{" SVC ",\"health\":{\"tcp\":\"127.0.0.1:80\"}}]}", NULL },
        { "{" BASE "\"services\":[{" SVC ",\"health\":{\"intervall\":\"1s\"}}]}", "services[0].health.intervall: unknown key" },
        { "{" BASE "\"bogus\":1,\"services\":[{" SVC "}]}", "bogus: unknown key" },
        { "{" BASE "\"services\":[{" SVC ",\"health\":{\"interval\":\"10\"}}]}", "services[0].health.interval" },
        { "{" BASE "\"heartbeat_interval\":\"fast\",\"services\":[{" SVC "}]}", "heartbeat_interval" },
        { "{" BASE "\"services\":[{\"version\":\"1.0\"}]}", "services[0].name" },
        { "{" BASE "\"services\":[{\"name\":\"we b\",\"version\":\"1\"}]}", "services[0].name: invalid name" },
        { "{" BASE "\"services\":[{\"name\":\"web\"}]}", "services[0].version" },
        { "{" BASE "\"services\":[]}", "services: at least one" },
        { "{" BASE "\"services\":[{" SVC "},{" SVC "}]}", "services[1].instance: 'h1-web' is already used" },
        { "{" BASE "\"services\":[{" SVC ",\"health\":{\"http\":\"http://x/\",\"tcp\":\"x:1\"}}]}", "services[0].health: only one" },
        { "{" BASE "\"services\":[{" SVC ",\"health\":{\"http\":\"ftp://x/\"}}]}", "services[0].health.http" },
        { "{" BASE "\"services\":[{" SVC ",\"health\":{\"tcp\":\"noport\"}}]}", "services[0].health.tcp" },
        { "{" BASE "\"services\":[{" SVC ",\"health\":{\"rise\":0}}]}", "services[0].health.rise" },
        { "{" BASE "\"services\":[{" SVC ",\"config_format\":\"yaml\"}]}", "services[0].config_format" },
        { "{" BASE "\"services\":[{" SVC ",\"config_file\":\"rel/path\"}]}", "services[0].config_file" },
        { "{" BASE "\"services\":[{" SVC ",\"reload\":\"true\"}]}", "services[0].reload" },
        { "{" BASE "\"services\":[{" SVC ",\"hooks\":{\"timeout\":\"5 minutes\"}}]}", "services[0].hooks.timeout" },
        { "{" BASE "\"state_dir\":\"var/lib\",\"services\":[{" SVC "}]}", "state_dir" },
        { "{\"redis\":\"redis://:pw@127.0.0.1:99999/0\",\"services\":[{" SVC "}]}", "redis" },
        { "{\"host\":\"h1\",\"services\":[{" SVC "}]}", "redis" },
        { "{" BASE "\"namespace\":\"a/b\",\"services\":[{" SVC "}]}", "namespace" },
};

START_TEST(test_table) {
        struct agent_config *c = NULL;
        char err[1024] = "";
        int r;

        unsetenv("COORD_REDIS");
        unsetenv("COORD_NAMESPACE");
        unsetenv("CREDENTIALS_DIRECTORY");
        r = agent_config_load("agent.json", table[_i].json, &c, err, sizeof err);
        if (!table[_i].culprit) {
                ck_assert_msg(r == 0, "%s: %s", table[_i].json, err);
                agent_config_free(c);
                return;
        }
        ck_assert_msg(r == -EINVAL, "%s: got %d", table[_i].json, r);
        ck_assert_ptr_null(c);
        ck_assert_msg(strstr(err, table[_i].culprit), "error '%s' does not name '%s'", err, table[_i].culprit);
        ck_assert_msg(strncmp(err, "agent.json: ", 12) == 0, "error '%s' does not name the file", err);
}
END_TEST

START_TEST(test_defaults) {
        struct agent_config *c = NULL;
        char err[512] = "";

        unsetenv("COORD_NAMESPACE");
        ck_assert_int_eq(agent_config_load("agent.json", "{" BASE "\"services\":[{" SVC "}]}", &c, err, sizeof err), 0);
        ck_assert_str_eq(c->namespace, "default");
        ck_assert_uint_eq(c->heartbeat_interval, 1000000);
        ck_assert_str_eq(c->state_dir, "/var/lib/coord-agent");
        ck_assert_uint_eq(c->n_services, 1);
        ck_assert_str_eq(c->services[0].instance, "h1-web");
        ck_assert_str_eq(c->services[0].config_format, "env");
        ck_assert_uint_eq(c->services[0].health.interval, 10000000);
        ck_assert_uint_eq(c->services[0].health.timeout, 1000000);
        ck_assert_int_eq(c->services[0].health.rise, 2);
        ck_assert_int_eq(c->services[0].health.fall, 3);
        ck_assert_uint_eq(c->services[0].hooks.timeout, 300000000);
        ck_assert_ptr_eq(agent_config_find_instance(c, "h1-web"), &c->services[0]);
        ck_assert_ptr_null(agent_config_find_instance(c, "nope"));
        agent_config_free(c);
}
END_TEST

START_TEST(test_password_masked_in_errors) {
        struct agent_config *c = NULL;
        char err[512] = "";

        ck_assert_int_eq(agent_config_load("agent.json",
                                           "{\"redis\":\"redis://:hunter22@127.0.0.1:6379/0\",\"services\":[{\"name\":\"x y\",\"version\":\"1\"}]}",
                                           &c, err, sizeof err),
                         -EINVAL);
        ck_assert_ptr_null(strstr(err, "hunter22"));
}
END_TEST

int main(void) {
        Suite *s = suite_create("agent-config");
        TCase *tc = tcase_create("core");
        SRunner *sr;
        int failed;

        tcase_add_loop_test(tc, test_table, 0, (int) (sizeof table / sizeof table[0]));
        tcase_add_test(tc, test_defaults);
        tcase_add_test(tc, test_password_masked_in_errors);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
