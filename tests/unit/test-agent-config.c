/* Unit tests for agent/agent-config.c: the schema and its extra checks. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent-config.h"
#include "log.h"
#include "test-main.h"

#define SVC "\"name\":\"web\",\"version\":\"1.0\""
#define BASE "\"redis\":\"redis://127.0.0.1:6379/0\",\"host\":\"h1\","
#define HOOKS(x) "\"hooks\":{" x "}"
/* A whole file: top-level keys x (each with its comma) before the services. */
#define TOP(x) "{" BASE x "\"services\":[{" SVC "}]}"
/* A whole file with the services array x. */
#define SERVICES(x) "{" BASE "\"services\":[" x "]}"
/* A whole file with one service "web" and its further keys x (each after a comma). */
#define SERVICE(x) SERVICES("{" SVC x "}")
#define HOOKED(x) SERVICE("," HOOKS(x))

static const struct {
        const char *json;
        const char *culprit; /* substring of the error; NULL: valid */
} table[] = {
        { SERVICE(""), NULL },
        { SERVICE(",\"health\":{\"tcp\":\"127.0.0.1:80\"}"), NULL },
        { SERVICE(",\"health\":{\"intervall\":\"1s\"}"), "services[0].health.intervall: unknown key" },
        { TOP("\"bogus\":1,"), "bogus: unknown key" },
        { SERVICE(",\"health\":{\"interval\":\"10\"}"), "services[0].health.interval" },
        { TOP("\"heartbeat_interval\":\"fast\","), "heartbeat_interval" },
        { SERVICES("{\"version\":\"1.0\"}"), "services[0].name" },
        { SERVICES("{\"name\":\"we b\",\"version\":\"1\"}"), "services[0].name: invalid name" },
        { SERVICES("{\"name\":\"web\"}"), "services[0].version" },
        { SERVICES(""), "services: at least one" },
        { SERVICES("{" SVC "},{" SVC "}"), "services[1].instance: 'h1-web' is already used" },
        { SERVICE(",\"health\":{\"http\":\"http://x/\",\"tcp\":\"x:1\"}"), "services[0].health: only one" },
        { SERVICE(",\"health\":{\"http\":\"ftp://x/\"}"), "services[0].health.http" },
        { SERVICE(",\"health\":{\"tcp\":\"noport\"}"), "services[0].health.tcp" },
        { SERVICE(",\"health\":{\"rise\":0}"), "services[0].health.rise" },
        { SERVICE(",\"config_format\":\"yaml\""), "services[0].config_format" },
        { SERVICE(",\"config_file\":\"rel/path\""), "services[0].config_file" },
        { SERVICE(",\"reload\":\"true\""), "services[0].reload" },
        { HOOKED("\"timeout\":\"5 minutes\""), "services[0].hooks.timeout" },
        { TOP("\"state_dir\":\"var/lib\","), "state_dir" },
        { "{\"redis\":\"redis://:pw@127.0.0.1:99999/0\",\"services\":[{" SVC "}]}", "redis" },
        { "{\"host\":\"h1\",\"services\":[{" SVC "}]}", "redis" },
        { TOP("\"namespace\":\"a/b\","), "namespace" },
        /* hooks.env and hooks.pass_env */
        { HOOKED("\"env\":{\"A\":\"1\",\"COORD_TLS_CA_FILE\":\"/ca\"},\"pass_env\":[\"DATABASE_URL\"]"), NULL },
        /* tls_* (CONTRACT.md "TLS to Redis"): checked at load, naming the key and the file */
        { TOP("\"tls_insecure_skip_verify\":true,"), NULL },
        { TOP("\"tls_ca_file\":null,\"tls_cert_file\":null,"), NULL },
        { TOP("\"tls_ca_file\":\"/nonexistent/ca.pem\","), "tls_ca_file: TLS CA file /nonexistent/ca.pem: No such file or directory" },
        { TOP("\"tls_ca_file\":\"/dev/null\","), "tls_ca_file: TLS CA file /dev/null: " },
        { TOP("\"tls_cert_file\":\"/dev/null\","), "tls_cert_file: TLS certificate file /dev/null: " },
        { TOP("\"tls_cert_file\":\"/nonexistent/c.pem\",\"tls_key_file\":\"/dev/null\","), "tls_cert_file: TLS certificate file /nonexistent/c.pem: No such file" },
        { TOP("\"tls_key_file\":\"/dev/null\","), "tls_key_file: TLS key file /dev/null given without a certificate file" },
        { TOP("\"tls_ca_file\":\"\","), "tls_ca_file: expected a file path string" },
        { TOP("\"tls_ca_file\":5,"), "tls_ca_file: expected a file path string" },
        { TOP("\"tls_insecure_skip_verify\":\"yes\","), "tls_insecure_skip_verify: expected true or false" },
        { TOP("\"tls_key_file_file\":\"/x\","), "tls_key_file_file: unknown key" },
        { HOOKED("\"env\":null,\"pass_env\":[]"), NULL },
        { HOOKED("\"env\":[\"A=1\"]"), "services[0].hooks.env: expected an object" },
        { HOOKED("\"env\":{\"9LIVES\":\"x\"}"), "services[0].hooks.env: '9LIVES' is not a variable name" },
        { HOOKED("\"env\":{\"A-B\":\"x\"}"), "services[0].hooks.env: 'A-B' is not a variable name" },
        { HOOKED("\"env\":{\"A=B\":\"x\"}"), "services[0].hooks.env: 'A=B' is not a variable name" },
        { HOOKED("\"env\":{\"\":\"x\"}"), "services[0].hooks.env: '' is not a variable name" },
        { HOOKED("\"env\":{\"N\":1}"), "services[0].hooks.env.N: expected a string" },
        { HOOKED("\"env\":{\"COORD_VERSION\":\"9\"}"), "services[0].hooks.env.COORD_VERSION: set by the agent itself" },
        { HOOKED("\"env\":{\"CREDENTIALS_DIRECTORY\":\"/x\"}"), "services[0].hooks.env.CREDENTIALS_DIRECTORY: never given to hooks" },
        { HOOKED("\"pass_env\":\"HOME\""), "services[0].hooks.pass_env: expected an array" },
        { HOOKED("\"pass_env\":[\"HOME\",7]"), "services[0].hooks.pass_env[1]: expected a variable name" },
        { HOOKED("\"pass_env\":[\"BAD NAME\"]"), "services[0].hooks.pass_env[0]: 'BAD NAME' is not a variable name" },
        { HOOKED("\"pass_env\":[\"HOME\",\"COORD_REDIS\"]"), "services[0].hooks.pass_env[1]: 'COORD_REDIS' is the agent's own" },
        { HOOKED("\"pass_env\":[\"COORD_TEST_DIR\"]"), "services[0].hooks.pass_env[0]: 'COORD_TEST_DIR' is the agent's own" },
        { HOOKED("\"pass_env\":[\"CREDENTIALS_DIRECTORY\"]"), "services[0].hooks.pass_env[0]: 'CREDENTIALS_DIRECTORY' is the agent's own" },
        { SERVICES("{" SVC "},{\"name\":\"api\",\"version\":\"1\"," HOOKS("\"pass_env\":[\"X\",\"Y.Z\"]") "}"), "services[1].hooks.pass_env[1]: 'Y.Z' is not a variable name" },
};

/* agent_config_load() of json as "agent.json". */
static int load(const char *json, struct agent_config **c, char *err, size_t errlen) {
        return agent_config_load("agent.json", json, c, err, errlen);
}

static void clear_env(void) {
        unsetenv("COORD_REDIS");
        unsetenv("COORD_NAMESPACE");
        unsetenv("CREDENTIALS_DIRECTORY");
        unsetenv("COORD_TLS_CA_FILE");
        unsetenv("COORD_TLS_CERT_FILE");
        unsetenv("COORD_TLS_KEY_FILE");
}

START_TEST(test_table) {
        struct agent_config *c = NULL;
        char err[1024] = "";
        int r;

        clear_env();
        r = load(table[_i].json, &c, err, sizeof err);
        if (!table[_i].culprit) {
                ck_assert_msg(r == 0, "%s: %s", table[_i].json, err);
                agent_config_free(c);
                return;
        }
        ck_assert_msg(r == -EINVAL, "%s: got %d", table[_i].json, r);
        ck_assert_ptr_null(c);
        ck_assert_msg(table[_i].culprit[0], "%s: the case names no culprit to look for", table[_i].json);
        ck_assert_msg(strstr(err, table[_i].culprit), "error '%s' does not name '%s'", err, table[_i].culprit);
        ck_assert_msg(strncmp(err, "agent.json: ", 12) == 0, "error '%s' does not name the file", err);
}
END_TEST

START_TEST(test_defaults) {
        struct agent_config *c = NULL;
        char err[512] = "";

        clear_env();
        ck_assert_int_eq(load(SERVICE(""), &c, err, sizeof err), 0);
        ck_assert_str_eq(c->namespace, "default");
        ck_assert_ptr_null(c->tls.ca_file);
        ck_assert_ptr_null(c->tls.cert_file);
        ck_assert_ptr_null(c->tls.key_file);
        ck_assert(!c->tls.insecure_skip_verify);
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

START_TEST(test_hooks_env) {
        struct agent_config *c = NULL;
        char err[512] = "";

        ck_assert_int_eq(load(SERVICES("{" SVC "," HOOKS("\"env\":{\"B\":\"two=2\",\"A\":\"\"},"
                                                        "\"pass_env\":[\"DATABASE_URL\",\"LC_ALL\"]") "},"
                                       "{\"name\":\"api\",\"version\":\"1\"}"),
                              &c, err, sizeof err),
                         0);
        ck_assert_str_eq(c->services[0].hooks.env[0], "B=two=2");
        ck_assert_str_eq(c->services[0].hooks.env[1], "A=");
        ck_assert_ptr_null(c->services[0].hooks.env[2]);
        ck_assert_str_eq(c->services[0].hooks.pass_env[0], "DATABASE_URL");
        ck_assert_str_eq(c->services[0].hooks.pass_env[1], "LC_ALL");
        ck_assert_ptr_null(c->services[0].hooks.pass_env[2]);
        ck_assert_ptr_null(c->services[1].hooks.env);
        ck_assert_ptr_null(c->services[1].hooks.pass_env);
        agent_config_free(c);
}
END_TEST

START_TEST(test_password_masked_in_errors) {
        struct agent_config *c = NULL;
        char err[512] = "";

        ck_assert_int_eq(load("{\"redis\":\"redis://:hunter22@127.0.0.1:6379/0\",\"services\":[{\"name\":\"x y\",\"version\":\"1\"}]}",
                              &c, err, sizeof err),
                         -EINVAL);
        ck_assert_msg(strstr(err, "agent.json: services[0].name: invalid name"), "error '%s' does not name the culprit",
                      err);
        ck_assert_ptr_null(strstr(err, "hunter22"));
}
END_TEST

/* COORD_TLS_* when the file sets no tls_* key (all of them, never mixed). */
START_TEST(test_tls_env) {
        struct agent_config *c = NULL;
        char err[1024] = "";

        clear_env();
        setenv("COORD_TLS_CA_FILE", "/nonexistent/env-ca.pem", 1);
        ck_assert_int_eq(load(SERVICE(""), &c, err, sizeof err), -EINVAL);
        ck_assert_msg(strstr(err, "agent.json: tls_ca_file: $COORD_TLS_CA_FILE: TLS CA file /nonexistent/env-ca.pem"),
                      "%s", err);
        /* The file sets one: the environment is not read at all. */
        ck_assert_msg(load(TOP("\"tls_insecure_skip_verify\":true,"), &c, err, sizeof err) == 0, "%s", err);
        ck_assert_ptr_null(c->tls.ca_file);
        agent_config_free(c);
        /* Readable, usable: taken. */
        setenv("COORD_TLS_CA_FILE", "/etc/ssl/certs/ca-certificates.crt", 1);
        if (access("/etc/ssl/certs/ca-certificates.crt", R_OK) == 0) {
                ck_assert_msg(load(SERVICE(""), &c, err, sizeof err) == 0, "%s", err);
                ck_assert_str_eq(c->tls.ca_file, "/etc/ssl/certs/ca-certificates.crt");
                agent_config_free(c);
        }
        clear_env();
}
END_TEST

/* tls_key_file defaults to the credential tls_key (its path, for hooks too). */
START_TEST(test_tls_key_credential) {
        struct agent_config *c = NULL;
        char dir[] = "/tmp/coord-test-agent-config.XXXXXX", path[256], err[1024] = "";
        FILE *f;

        clear_env();
        ck_assert_ptr_nonnull(mkdtemp(dir));
        setenv("CREDENTIALS_DIRECTORY", dir, 1);
        /* absent: absent */
        ck_assert_msg(load(SERVICE(""), &c, err, sizeof err) == 0, "%s", err);
        ck_assert_ptr_null(c->tls.key_file);
        agent_config_free(c);
        /* present: its path, checked like the key (here: no certificate for it) */
        snprintf(path, sizeof path, "%s/tls_key", dir);
        f = fopen(path, "we");
        ck_assert_ptr_nonnull(f);
        fputs("not a key\n", f);
        ck_assert_int_eq(fclose(f), 0);
        ck_assert_int_eq(load(SERVICE(""), &c, err, sizeof err), -EINVAL);
        ck_assert_msg(strstr(err, "tls_key_file: TLS key file ") && strstr(err, "/tls_key given without a certificate"),
                      "%s", err);
        ck_assert_ptr_null(strstr(err, "not a key"));
        /* the file's key wins over the credential */
        ck_assert_int_eq(load(TOP("\"tls_key_file\":\"/nonexistent/k\","), &c, err, sizeof err), -EINVAL);
        ck_assert_msg(strstr(err, "TLS key file /nonexistent/k given without"), "%s", err);
        unlink(path);
        rmdir(dir);
        clear_env();
}
END_TEST

static void add_tests(TCase *tc) {
        tcase_add_loop_test(tc, test_table, 0, (int) (sizeof table / sizeof table[0]));
        tcase_add_test(tc, test_defaults);
        tcase_add_test(tc, test_hooks_env);
        tcase_add_test(tc, test_password_masked_in_errors);
        tcase_add_test(tc, test_tls_env);
        tcase_add_test(tc, test_tls_key_credential);
}

TEST_MAIN("agent-config", add_tests)
