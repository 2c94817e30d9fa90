/* Unit tests for lib/conf-parser.c with a schema shaped like the agent's config
 * (CONTRACT.md): nested objects, an array of objects, secrets from the file,
 * from <key>_file and from $CREDENTIALS_DIRECTORY, environment overrides,
 * errors with full key paths, and masking. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf-parser.h"
#include "duration.h"
#include "log.h"
#include "test-main.h"

struct health {
        char *http, *tcp, *exec;
        uint64_t interval, timeout, grace;
        int64_t rise, fall;
};

struct hooks {
        char *drain, *deploy;
        uint64_t timeout;
};

struct service {
        char *name, *instance, *address, *version;
        struct health health;
        struct hooks hooks;
        char *config_file, *config_format;
};

struct agent {
        char *redis;
        char *namespace;
        char *listen;
        char *host;
        uint64_t heartbeat_interval;
        char *state_dir;
        struct service *services;
        size_t n_services;
        char *api_token;
        bool verbose;
        int64_t max_parallel;
        json_t *labels;
};

static const struct config_field health_fields[] = {
        { .key = "http", .type = CONFIG_STRING, .offset = offsetof(struct health, http) },
        { .key = "tcp", .type = CONFIG_STRING, .offset = offsetof(struct health, tcp) },
        { .key = "exec", .type = CONFIG_STRING, .offset = offsetof(struct health, exec) },
        { .key = "interval", .type = CONFIG_DURATION, .offset = offsetof(struct health, interval), .def = "10s" },
        { .key = "timeout", .type = CONFIG_DURATION, .offset = offsetof(struct health, timeout), .def = "1s" },
        { .key = "rise", .type = CONFIG_INT, .offset = offsetof(struct health, rise), .def = "2", .min = 1, .max = 100 },
        { .key = "fall", .type = CONFIG_INT, .offset = offsetof(struct health, fall), .def = "3", .min = 1, .max = 100 },
        { .key = "grace", .type = CONFIG_DURATION, .offset = offsetof(struct health, grace), .def = "0s" },
        {},
};

static const struct config_field hooks_fields[] = {
        { .key = "drain", .type = CONFIG_STRING, .offset = offsetof(struct hooks, drain) },
        { .key = "deploy", .type = CONFIG_STRING, .offset = offsetof(struct hooks, deploy), .required = true },
        { .key = "timeout", .type = CONFIG_DURATION, .offset = offsetof(struct hooks, timeout), .def = "5m" },
        {},
};

static const struct config_field service_fields[] = {
        { .key = "name", .type = CONFIG_STRING, .offset = offsetof(struct service, name), .required = true },
        { .key = "instance", .type = CONFIG_STRING, .offset = offsetof(struct service, instance) },
        { .key = "address", .type = CONFIG_STRING, .offset = offsetof(struct service, address) },
        { .key = "version", .type = CONFIG_STRING, .offset = offsetof(struct service, version), .def = "0" },
        { .key = "health", .type = CONFIG_OBJECT, .offset = offsetof(struct service, health), .sub = health_fields },
        { .key = "hooks", .type = CONFIG_OBJECT, .offset = offsetof(struct service, hooks), .sub = hooks_fields },
        { .key = "config_file", .type = CONFIG_STRING, .offset = offsetof(struct service, config_file) },
        { .key = "config_format", .type = CONFIG_STRING, .offset = offsetof(struct service, config_format), .def = "env" },
        {},
};

static const struct config_field agent_fields[] = {
        { .key = "redis", .type = CONFIG_REDIS_URL, .offset = offsetof(struct agent, redis), .required = true,
          .credential = "redis", .env = "COORD_REDIS" },
        { .key = "namespace", .type = CONFIG_STRING, .offset = offsetof(struct agent, namespace), .def = "default",
          .env = "COORD_NAMESPACE" },
        { .key = "listen", .type = CONFIG_STRING, .offset = offsetof(struct agent, listen), .def = "127.0.0.1:8471",
          .env = "COORD_LISTEN" },
        { .key = "host", .type = CONFIG_STRING, .offset = offsetof(struct agent, host), .required = true },
        { .key = "heartbeat_interval", .type = CONFIG_DURATION, .offset = offsetof(struct agent, heartbeat_interval),
          .def = "1s" },
        { .key = "state_dir", .type = CONFIG_STRING, .offset = offsetof(struct agent, state_dir),
          .def = "/var/lib/coord-agent" },
        { .key = "services", .type = CONFIG_ARRAY, .offset = offsetof(struct agent, services), .sub = service_fields,
          .elem_size = sizeof(struct service) },
        { .key = "api_token", .type = CONFIG_SECRET, .offset = offsetof(struct agent, api_token),
          .credential = "api-token" },
        { .key = "verbose", .type = CONFIG_BOOL, .offset = offsetof(struct agent, verbose), .def = "false" },
        { .key = "max_parallel", .type = CONFIG_INT, .offset = offsetof(struct agent, max_parallel), .def = "4",
          .min = 1, .max = 100 },
        { .key = "labels", .type = CONFIG_JSON, .offset = offsetof(struct agent, labels) },
        {},
};

static char tmpdir[] = "/tmp/coord-test-config.XXXXXX";

static void clear_env(void) {
        unsetenv("COORD_REDIS");
        unsetenv("COORD_LISTEN");
        unsetenv("COORD_NAMESPACE");
        unsetenv("CREDENTIALS_DIRECTORY");
}

static void setup(void) {
        clear_env();
        ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        ck_assert_int_eq(system(cmd), 0);
        memcpy(tmpdir + strlen(tmpdir) - 6, "XXXXXX", 6);
}

static char *write_file(const char *name, const char *content) {
        static char path[512];
        FILE *f;

        snprintf(path, sizeof path, "%s/%s", tmpdir, name);
        f = fopen(path, "we");
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(fputs(content, f) >= 0, 1);
        ck_assert_int_eq(fclose(f), 0);
        return path;
}

/* Load text; return the result and leave the error in err. */
static int load(const char *json, struct agent *a, char *err, size_t errlen) {
        memset(a, 0, sizeof *a);
        err[0] = '\0';
        return config_load_string(json, "t.json", agent_fields, a, err, errlen);
}

static const char full[] =
        "{\n"
        "  \"redis\": \"redis://app:Pa55-w0rd@10.0.0.2:6380/1\",\n"
        "  \"namespace\": \"prod\",\n"
        "  \"host\": \"web-1\",\n"
        "  \"heartbeat_interval\": \"250ms\",\n"
        "  \"state_dir\": \"/var/lib/x\",\n"
        "  \"verbose\": true,\n"
        "  \"max_parallel\": 100,\n"
        "  \"labels\": {\"zone\": \"a\", \"n\": [1, 2]},\n"
        "  \"api_token\": \"tok-en-secret\",\n"
        "  \"services\": [{\n"
        "    \"name\": \"web\", \"instance\": \"web-1\", \"address\": \"10.0.0.5:8080\", \"version\": \"1.0\",\n"
        "    \"health\": {\"http\": \"http://127.0.0.1:8080/health/ready\", \"interval\": \"2s\",\n"
        "               \"timeout\": \"1s\", \"rise\": 5, \"fall\": 3, \"grace\": \"10s\"},\n"
        "    \"hooks\": {\"drain\": \"echo drain\", \"deploy\": \"echo deploy\", \"timeout\": \"1h30m\"},\n"
        "    \"config_file\": \"/run/coord/web.env\", \"config_format\": \"json\"\n"
        "  }, {\n"
        "    \"name\": \"worker\", \"hooks\": {\"deploy\": \"true\"}, \"reload\": null\n"
        "  }]\n"
        "}\n";

START_TEST(test_full) {
        struct agent a;
        char err[512];
        int r = load(full, &a, err, sizeof err);

        /* "reload": null is not in the schema: null does not excuse an unknown key */
        ck_assert_int_eq(r, -EINVAL);
        ck_assert_str_eq(err, "t.json: services[1].reload: unknown key");

        char *fixed = strdup(full);
        char *p = strstr(fixed, ", \"reload\": null");
        ck_assert_ptr_nonnull(p);
        memmove(p, p + strlen(", \"reload\": null"), strlen(p + strlen(", \"reload\": null")) + 1);
        r = load(fixed, &a, err, sizeof err);
        free(fixed);
        ck_assert_msg(r == 0, "load failed: %s", err);

        ck_assert_str_eq(a.redis, "redis://app:Pa55-w0rd@10.0.0.2:6380/1");
        ck_assert_str_eq(a.namespace, "prod");
        ck_assert_str_eq(a.listen, "127.0.0.1:8471");
        ck_assert_str_eq(a.host, "web-1");
        ck_assert_uint_eq(a.heartbeat_interval, 250 * USEC_PER_MSEC);
        ck_assert_str_eq(a.state_dir, "/var/lib/x");
        ck_assert(a.verbose);
        ck_assert_int_eq(a.max_parallel, 100);
        ck_assert_str_eq(json_string_value(json_object_get(a.labels, "zone")), "a");
        ck_assert_str_eq(a.api_token, "tok-en-secret");
        ck_assert_uint_eq(a.n_services, 2);

        struct service *s = &a.services[0];
        ck_assert_str_eq(s->name, "web");
        ck_assert_str_eq(s->address, "10.0.0.5:8080");
        ck_assert_str_eq(s->health.http, "http://127.0.0.1:8080/health/ready");
        ck_assert_ptr_null(s->health.tcp);
        ck_assert_uint_eq(s->health.interval, 2 * USEC_PER_SEC);
        ck_assert_uint_eq(s->health.grace, 10 * USEC_PER_SEC);
        ck_assert_int_eq(s->health.rise, 5);
        ck_assert_int_eq(s->health.fall, 3);
        ck_assert_str_eq(s->hooks.drain, "echo drain");
        ck_assert_uint_eq(s->hooks.timeout, 5400 * USEC_PER_SEC);
        ck_assert_str_eq(s->config_format, "json");

        /* defaults, including those of an absent nested object */
        s = &a.services[1];
        ck_assert_str_eq(s->name, "worker");
        ck_assert_str_eq(s->version, "0");
        ck_assert_ptr_null(s->instance);
        ck_assert_uint_eq(s->health.interval, 10 * USEC_PER_SEC);
        ck_assert_uint_eq(s->health.timeout, USEC_PER_SEC);
        ck_assert_int_eq(s->health.rise, 2);
        ck_assert_int_eq(s->health.fall, 3);
        ck_assert_uint_eq(s->hooks.timeout, 300 * USEC_PER_SEC);
        ck_assert_str_eq(s->config_format, "env");

        /* the secrets were registered with the logger */
        char *m = log_mask_secrets("redis pw Pa55-w0rd and token tok-en-secret");
        ck_assert_str_eq(m, "redis pw ***** and token *****");
        free(m);

        /* masked view */
        json_t *j = config_to_json_masked(agent_fields, &a);
        ck_assert_ptr_nonnull(j);
        ck_assert_str_eq(json_string_value(json_object_get(j, "redis")), "redis://app:*****@10.0.0.2:6380/1");
        ck_assert_str_eq(json_string_value(json_object_get(j, "api_token")), "*****");
        ck_assert_str_eq(json_string_value(json_object_get(j, "heartbeat_interval")), "250ms");
        ck_assert_int_eq(json_integer_value(json_object_get(j, "max_parallel")), 100);
        json_t *svc = json_array_get(json_object_get(j, "services"), 0);
        ck_assert_str_eq(json_string_value(json_object_get(json_object_get(svc, "health"), "interval")), "2s");
        ck_assert_str_eq(json_string_value(json_object_get(json_object_get(svc, "hooks"), "timeout")), "1h30m");
        char *dump = json_dumps(j, JSON_COMPACT);
        ck_assert_ptr_null(strstr(dump, "Pa55-w0rd"));
        ck_assert_ptr_null(strstr(dump, "tok-en-secret"));
        free(dump);
        json_decref(j);

        config_free(agent_fields, &a);
        ck_assert_ptr_null(a.redis);
        ck_assert_ptr_null(a.services);
        ck_assert_uint_eq(a.n_services, 0);
        ck_assert_ptr_null(a.labels);
        config_free(agent_fields, &a); /* idempotent */
}
END_TEST

struct bad {
        const char *json;
        const char *err;
};

#define R "\"redis\": \"redis://h:1\", \"host\": \"h\""

static const struct bad bads[] = {
        /* unknown keys, with their full path */
        { "{" R ", \"heartbeat\": \"1s\"}", "t.json: heartbeat: unknown key" },
        { "{" R ", \"services\": [{\"name\": \"w\", \"health\": {\"intervall\": \"2s\"}, \"hooks\": {\"deploy\": \"x\"}}]}",
          "t.json: services[0].health.intervall: unknown key" },
        { "{" R ", \"services\": [{\"name\": \"a\", \"hooks\": {\"deploy\": \"x\"}}, {\"name\": \"b\", \"hooks\": "
          "{\"deploy\": \"x\", \"dran\": \"y\"}}]}",
          "t.json: services[1].hooks.dran: unknown key" },
        { "{" R ", \"listen_file\": \"/x\"}", "t.json: listen_file: unknown key" },
        /* durations */
        { "{" R ", \"heartbeat_interval\": \"5x\"}",
          "t.json: heartbeat_interval: '5x' is not a duration (use 250ms, 30s, 5m, 1h)" },
        { "{" R ", \"heartbeat_interval\": \"5\"}",
          "t.json: heartbeat_interval: '5' is not a duration (use 250ms, 30s, 5m, 1h)" },
        { "{" R ", \"heartbeat_interval\": 5}",
          "t.json: heartbeat_interval: expected a duration string (use 250ms, 30s, 5m, 1h)" },
        { "{" R ", \"services\": [{\"name\": \"w\", \"health\": {\"interval\": \"\"}, \"hooks\": {\"deploy\": \"x\"}}]}",
          "t.json: services[0].health.interval: '' is not a duration (use 250ms, 30s, 5m, 1h)" },
        /* types */
        { "{" R ", \"listen\": 5}", "t.json: listen: expected a string" },
        { "{" R ", \"verbose\": \"yes\"}", "t.json: verbose: expected true or false" },
        { "{" R ", \"max_parallel\": \"4\"}", "t.json: max_parallel: expected an integer" },
        { "{" R ", \"max_parallel\": 1.5}", "t.json: max_parallel: expected an integer" },
        { "{" R ", \"services\": {}}", "t.json: services: expected an array of objects" },
        { "{" R ", \"services\": [\"web\"]}", "t.json: services[0]: expected an object" },
        { "{" R ", \"services\": [{\"name\": \"w\", \"health\": [], \"hooks\": {\"deploy\": \"x\"}}]}",
          "t.json: services[0].health: expected an object" },
        { "{" R ", \"api_token\": 42}", "t.json: api_token: expected a string" },
        { "{" R ", \"api_token_file\": 42}", "t.json: api_token_file: expected a file path string" },
        /* ranges */
        { "{" R ", \"max_parallel\": 0}", "t.json: max_parallel: 0 is out of range (1-100)" },
        { "{" R ", \"max_parallel\": 101}", "t.json: max_parallel: 101 is out of range (1-100)" },
        { "{" R ", \"services\": [{\"name\": \"w\", \"health\": {\"rise\": -1}, \"hooks\": {\"deploy\": \"x\"}}]}",
          "t.json: services[0].health.rise: -1 is out of range (1-100)" },
        /* required */
        { "{\"redis\": \"redis://h:1\"}", "t.json: host: missing required key" },
        { "{\"host\": \"h\"}",
          "t.json: redis: missing required key (or redis_file, or credential 'redis' in $CREDENTIALS_DIRECTORY)" },
        { "{" R ", \"services\": [{\"hooks\": {\"deploy\": \"x\"}}]}", "t.json: services[0].name: missing required key" },
        { "{" R ", \"services\": [{\"name\": \"w\", \"hooks\": {}}]}",
          "t.json: services[0].hooks.deploy: missing required key" },
        /* Redis connection strings are validated, errors name the key */
        { "{\"redis\": \"redis://h:99999\", \"host\": \"h\"}", "t.json: redis: bad port '99999' (1-65535)" },
        { "{\"redis\": \"h,sll=true\", \"host\": \"h\"}", "t.json: redis: unknown option 'sll'" },
        /* document level */
        { "[1, 2]", "t.json: the top level must be a JSON object" },
        { "{" R ", \"host\": \"dup\"}", "t.json: line 1 column" },
        { "{\"host\": ", "t.json: line 1 column" },
        { "", "t.json: line 1 column" },
};

START_TEST(test_bad) {
        struct agent a;
        char err[512];

        ck_assert_int_eq(load(bads[_i].json, &a, err, sizeof err), -EINVAL);
        ck_assert_msg(strncmp(err, bads[_i].err, strlen(bads[_i].err)) == 0, "for %s\n got: %s\nwant: %s", bads[_i].json,
                      err, bads[_i].err);
        /* everything allocated before the error was freed */
        ck_assert_ptr_null(a.redis);
        ck_assert_ptr_null(a.host);
        ck_assert_ptr_null(a.services);
}
END_TEST

START_TEST(test_duplicate_key_message) {
        struct agent a;
        char err[512];

        ck_assert_int_eq(load("{" R ", \"host\": \"dup\"}", &a, err, sizeof err), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "duplicate"));
}
END_TEST

START_TEST(test_errors_never_leak) {
        static const char *const docs[] = {
                "{\"redis\": \"redis://u:Sup3r-S3cret@h:99999\", \"host\": \"h\"}",
                "{\"redis\": \"h:1,password=Sup3r-S3cret,ssl=maybe\", \"host\": \"h\"}",
                "{\"redis\": \"redis://u:Sup3r-S3cret@h\" \"host\": \"h\"}",   /* syntax error near the secret */
                "{\"host\": \"h\", \"redis\": \"redis://u:Sup3r-S3cret@h\",}", /* trailing comma */
                "{\"host\": \"h\", \"api_token\": \"Sup3r-S3cret\", \"api_token_file\": \"/x\", " R "}",
        };
        for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
                struct agent a;
                char err[512];
                ck_assert_int_eq(load(docs[i], &a, err, sizeof err), -EINVAL);
                ck_assert_msg(err[0] && !strstr(err, "Sup3r-S3cret"), "error leaks or is empty: %s", err);
        }
}
END_TEST

START_TEST(test_secret_files) {
        struct agent a;
        char err[512], json[1024];
        char *p;

        p = write_file("redis", "redis://app:fil3-s3cret@redis.example:6379/2\n\n");
        snprintf(json, sizeof json, "{\"redis_file\": \"%s\", \"host\": \"h\"", p);
        p = write_file("token", "t0ken-from-file\n");
        snprintf(json + strlen(json), sizeof json - strlen(json), ", \"api_token_file\": \"%s\"}", p);
        ck_assert_msg(load(json, &a, err, sizeof err) == 0, "%s", err);
        ck_assert_str_eq(a.redis, "redis://app:fil3-s3cret@redis.example:6379/2");
        ck_assert_str_eq(a.api_token, "t0ken-from-file");
        char *m = log_mask_secrets("fil3-s3cret t0ken-from-file");
        ck_assert_str_eq(m, "***** *****");
        free(m);
        json_t *j = config_to_json_masked(agent_fields, &a);
        ck_assert_str_eq(json_string_value(json_object_get(j, "redis")), "redis://app:*****@redis.example:6379/2");
        ck_assert_str_eq(json_string_value(json_object_get(j, "api_token")), "*****");
        json_decref(j);
        config_free(agent_fields, &a);

        /* both key and key_file */
        snprintf(json, sizeof json, "{\"redis\": \"redis://h\", \"redis_file\": \"%s/redis\", \"host\": \"h\"}", tmpdir);
        ck_assert_int_eq(load(json, &a, err, sizeof err), -EINVAL);
        ck_assert_str_eq(err, "t.json: redis: both redis and redis_file given: use only one");

        /* a missing file names the key and the path */
        snprintf(json, sizeof json, "{\"redis_file\": \"%s/nope\", \"host\": \"h\"}", tmpdir);
        ck_assert_int_eq(load(json, &a, err, sizeof err), -EINVAL);
        ck_assert_msg(strstr(err, "t.json: redis_file: cannot read '") && strstr(err, "/nope': No such file"), "%s", err);

        /* an invalid connection string in the file: named, not shown */
        p = write_file("bad", "redis://u:an0ther-s3cret@h:0\n");
        snprintf(json, sizeof json, "{\"redis_file\": \"%s\", \"host\": \"h\"}", p);
        ck_assert_int_eq(load(json, &a, err, sizeof err), -EINVAL);
        ck_assert_str_eq(err, "t.json: redis_file: bad port '0' (1-65535)");

        /* empty and multi-line files */
        p = write_file("empty", "\n");
        snprintf(json, sizeof json, "{\"redis\": \"redis://h\", \"host\": \"h\", \"api_token_file\": \"%s\"}", p);
        ck_assert_int_eq(load(json, &a, err, sizeof err), -EINVAL);
        ck_assert_msg(strstr(err, "t.json: api_token_file: '") && strstr(err, "' is empty"), "%s", err);
        p = write_file("two", "line-one-secret\nline2\n");
        snprintf(json, sizeof json, "{\"redis\": \"redis://h\", \"host\": \"h\", \"api_token_file\": \"%s\"}", p);
        ck_assert_int_eq(load(json, &a, err, sizeof err), -EINVAL);
        ck_assert_msg(strstr(err, "more than one line") && !strstr(err, "line-one-secret"), "%s", err);
}
END_TEST

START_TEST(test_credentials_directory) {
        struct agent a;
        char err[512];

        write_file("redis", "h1:6379,password=cr3d-s3cret,ssl=false\n");
        write_file("api-token", "cr3d-t0ken");
        setenv("CREDENTIALS_DIRECTORY", tmpdir, 1);
        ck_assert_msg(load("{\"host\": \"h\"}", &a, err, sizeof err) == 0, "%s", err);
        ck_assert_str_eq(a.redis, "h1:6379,password=cr3d-s3cret,ssl=false");
        ck_assert_str_eq(a.api_token, "cr3d-t0ken");
        json_t *j = config_to_json_masked(agent_fields, &a);
        ck_assert_str_eq(json_string_value(json_object_get(j, "redis")), "redis://:*****@h1:6379/0");
        json_decref(j);
        config_free(agent_fields, &a);

        /* the key in the file wins over the credential */
        ck_assert_int_eq(load("{\"host\": \"h\", \"redis\": \"redis://other:1\"}", &a, err, sizeof err), 0);
        ck_assert_str_eq(a.redis, "redis://other:1");
        config_free(agent_fields, &a);

        /* a bad credential is named */
        write_file("redis", "h1:6379,bogus=1\n");
        ck_assert_int_eq(load("{\"host\": \"h\"}", &a, err, sizeof err), -EINVAL);
        ck_assert_str_eq(err, "t.json: redis: credential redis: unknown option 'bogus' (known: password, user, ssl, "
                              "sslHost, defaultDatabase, serviceName, connectTimeout, abortConnect)");

        /* a credential that is absent is just absent */
        unlink(write_file("redis", ""));
        ck_assert_int_eq(load("{\"host\": \"h\"}", &a, err, sizeof err), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "redis: missing required key"));
}
END_TEST

START_TEST(test_env_override) {
        struct agent a;
        char err[512];

        setenv("COORD_REDIS", "redis://:env-s3cret@envhost:7000/3", 1);
        setenv("COORD_LISTEN", "0.0.0.0:9999", 1);
        setenv("COORD_NAMESPACE", "staging", 1);
        ck_assert_msg(load("{" R ", \"namespace\": \"prod\", \"listen\": \"127.0.0.1:1\"}", &a, err, sizeof err) == 0,
                      "%s", err);
        ck_assert_str_eq(a.redis, "redis://:env-s3cret@envhost:7000/3");
        ck_assert_str_eq(a.listen, "0.0.0.0:9999");
        ck_assert_str_eq(a.namespace, "staging");
        char *m = log_mask_secrets("env-s3cret");
        ck_assert_str_eq(m, "*****");
        free(m);
        config_free(agent_fields, &a);

        /* also when the file does not have the key at all (required satisfied by env) */
        ck_assert_msg(load("{\"host\": \"h\"}", &a, err, sizeof err) == 0, "%s", err);
        ck_assert_str_eq(a.redis, "redis://:env-s3cret@envhost:7000/3");
        config_free(agent_fields, &a);

        /* empty means unset */
        setenv("COORD_NAMESPACE", "", 1);
        ck_assert_int_eq(load("{" R "}", &a, err, sizeof err), 0);
        ck_assert_str_eq(a.namespace, "default");
        config_free(agent_fields, &a);

        /* a bad value from the environment names the variable, never the password */
        setenv("COORD_REDIS", "redis://:env-s3cret@envhost:70000", 1);
        ck_assert_int_eq(load("{" R "}", &a, err, sizeof err), -EINVAL);
        ck_assert_str_eq(err, "t.json: redis: $COORD_REDIS: bad port '70000' (1-65535)");
}
END_TEST

START_TEST(test_files) {
        struct agent a;
        char err[512], path[512];

        memset(&a, 0, sizeof a);
        snprintf(path, sizeof path, "%s/missing.json", tmpdir);
        ck_assert_int_eq(config_load(path, agent_fields, &a, err, sizeof err), -ENOENT);
        ck_assert_ptr_nonnull(strstr(err, "missing.json: cannot read: No such file"));

        char *p = write_file("agent.json", "{" R ", \"heartbeat_interval\": \"5x\"}");
        snprintf(path, sizeof path, "%s", p);
        ck_assert_int_eq(config_load(path, agent_fields, &a, err, sizeof err), -EINVAL);
        char want[1024];
        snprintf(want, sizeof want, "%s: heartbeat_interval: '5x' is not a duration (use 250ms, 30s, 5m, 1h)", path);
        ck_assert_str_eq(err, want);

        write_file("agent.json", "{" R "}");
        ck_assert_int_eq(config_load(path, agent_fields, &a, err, sizeof err), 0);
        ck_assert_str_eq(a.host, "h");
        config_free(agent_fields, &a);

        /* larger than 1 MiB */
        FILE *f = fopen(path, "we");
        ck_assert_ptr_nonnull(f);
        fputs("{\"labels\": \"", f);
        for (int i = 0; i < 1100; i++)
                for (int k = 0; k < 1024; k++)
                        fputc('x', f);
        fputs("\"}", f);
        fclose(f);
        ck_assert_int_eq(config_load(path, agent_fields, &a, err, sizeof err), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "larger than 1 MiB"));
}
END_TEST

START_TEST(test_print_masked) {
        struct agent a;
        char err[512];
        char out[] = "/tmp/coord-test-config-out.XXXXXX";
        int fd = mkstemp(out);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(load("{\"redis\": \"h:1,h2:2,password=pr1nt-s3cret,serviceName=m\", \"host\": \"h\", "
                              "\"api_token\": \"pr1nt-t0ken\"}",
                              &a, err, sizeof err),
                         0);
        fflush(stdout);
        int saved = dup(STDOUT_FILENO);
        dup2(fd, STDOUT_FILENO);
        config_print_masked(agent_fields, &a);
        dup2(saved, STDOUT_FILENO);
        close(saved);
        config_free(agent_fields, &a);

        char buf[4096] = "";
        ck_assert_int_gt(pread(fd, buf, sizeof buf - 1, 0), 0);
        close(fd);
        unlink(out);
        ck_assert_ptr_null(strstr(buf, "pr1nt-s3cret"));
        ck_assert_ptr_null(strstr(buf, "pr1nt-t0ken"));
        ck_assert_ptr_nonnull(strstr(buf, "\"redis\": \"h:1,h2:2,password=*****,serviceName=m\""));
        ck_assert_ptr_nonnull(strstr(buf, "\"api_token\": \"*****\""));
        ck_assert_ptr_nonnull(strstr(buf, "\"heartbeat_interval\": \"1s\""));
}
END_TEST

/* CONFIG_PATH: a file's path, shown as it is; CONFIG_TLS_FIELDS and
 * config_tls_check(). */
struct paths {
        char *plain;
        struct tls_options tls;
};

static const struct config_field path_fields[] = {
        { .key = "plain", .type = CONFIG_PATH, .offset = offsetof(struct paths, plain) },
        CONFIG_TLS_FIELDS(struct paths, tls),
        {},
};

static int load_paths(const char *json, struct paths *p, char *err, size_t errlen) {
        memset(p, 0, sizeof *p);
        err[0] = '\0';
        return config_load_string(json, "p.json", path_fields, p, err, errlen);
}

START_TEST(test_paths) {
        struct paths p;
        char err[512], *key;
        json_t *j;

        ck_assert_msg(load_paths("{\"plain\": \"/etc/x.pem\", \"tls_ca_file\": \"/etc/ca.pem\"}", &p, err, sizeof err) == 0,
                      "%s", err);
        ck_assert_str_eq(p.plain, "/etc/x.pem");
        ck_assert_str_eq(p.tls.ca_file, "/etc/ca.pem");
        ck_assert_ptr_null(p.tls.key_file);
        ck_assert(!p.tls.insecure_skip_verify);
        j = config_to_json_masked(path_fields, &p);
        ck_assert_str_eq(json_string_value(json_object_get(j, "tls_ca_file")), "/etc/ca.pem"); /* a path is no secret */
        ck_assert(json_is_null(json_object_get(j, "tls_key_file")));
        ck_assert(json_is_false(json_object_get(j, "tls_insecure_skip_verify")));
        json_decref(j);
        config_free(path_fields, &p);

        ck_assert_int_eq(load_paths("{\"plain\": \"\"}", &p, err, sizeof err), -EINVAL);
        ck_assert_str_eq(err, "p.json: plain: expected a file path string");
        ck_assert_int_eq(load_paths("{\"plain\": [\"/a\"]}", &p, err, sizeof err), -EINVAL);
        ck_assert_int_eq(load_paths("{\"plain_file\": \"/a\"}", &p, err, sizeof err), -EINVAL);
        ck_assert_str_eq(err, "p.json: plain_file: unknown key");

        /* The credential's path when it exists (not its content), the file's key first. */
        key = strdup(write_file("tls_key", "-----BEGIN PRIVATE KEY-----\nnot really\n"));
        setenv("CREDENTIALS_DIRECTORY", tmpdir, 1);
        ck_assert_int_eq(load_paths("{}", &p, err, sizeof err), 0);
        ck_assert_str_eq(p.tls.key_file, key);
        ck_assert_ptr_null(p.plain);
        config_free(path_fields, &p);
        ck_assert_int_eq(load_paths("{\"tls_key_file\": \"/k.pem\"}", &p, err, sizeof err), 0);
        ck_assert_str_eq(p.tls.key_file, "/k.pem");
        config_free(path_fields, &p);
        unlink(key);
        ck_assert_int_eq(load_paths("{}", &p, err, sizeof err), 0);
        ck_assert_ptr_null(p.tls.key_file);
        config_free(path_fields, &p);
        free(key);
}
END_TEST

START_TEST(test_tls_check) {
        struct paths p;
        char err[512];

        unsetenv("COORD_TLS_CA_FILE");
        unsetenv("COORD_TLS_CERT_FILE");
        unsetenv("COORD_TLS_KEY_FILE");
        /* Nothing: the system store, no client certificate. */
        ck_assert_int_eq(load_paths("{}", &p, err, sizeof err), 0);
        ck_assert_msg(config_tls_check("p.json", &p.tls, err, sizeof err) == 0, "%s", err);
        config_free(path_fields, &p);

        /* Each file is named with its key. */
        ck_assert_int_eq(load_paths("{\"tls_ca_file\": \"/nonexistent/ca\"}", &p, err, sizeof err), 0);
        ck_assert_int_eq(config_tls_check("p.json", &p.tls, err, sizeof err), -EINVAL);
        ck_assert_str_eq(err, "p.json: tls_ca_file: TLS CA file /nonexistent/ca: No such file or directory");
        config_free(path_fields, &p);
        ck_assert_int_eq(load_paths("{\"tls_cert_file\": \"/dev/null\", \"tls_key_file\": \"/nonexistent/k\"}", &p, err,
                                    sizeof err),
                         0);
        ck_assert_int_eq(config_tls_check("p.json", &p.tls, err, sizeof err), -EINVAL);
        ck_assert_str_eq(err, "p.json: tls_key_file: TLS key file /nonexistent/k: No such file or directory");
        config_free(path_fields, &p);

        /* The environment, when the file sets nothing, named as such... */
        setenv("COORD_TLS_CERT_FILE", "/nonexistent/env-cert", 1);
        ck_assert_int_eq(load_paths("{}", &p, err, sizeof err), 0);
        ck_assert_int_eq(config_tls_check("p.json", &p.tls, err, sizeof err), -EINVAL);
        ck_assert_str_eq(err, "p.json: tls_cert_file: $COORD_TLS_CERT_FILE: TLS certificate file /nonexistent/env-cert: "
                              "No such file or directory");
        ck_assert_str_eq(p.tls.cert_file, "/nonexistent/env-cert"); /* shown by --check-config */
        config_free(path_fields, &p);
        /* ...and never mixed with what the file says. */
        ck_assert_int_eq(load_paths("{\"tls_insecure_skip_verify\": true}", &p, err, sizeof err), 0);
        ck_assert_msg(config_tls_check("p.json", &p.tls, err, sizeof err) == 0, "%s", err);
        ck_assert_ptr_null(p.tls.cert_file);
        config_free(path_fields, &p);
        unsetenv("COORD_TLS_CERT_FILE");
}
END_TEST

static Suite *config_suite(void) {
        Suite *s = suite_create("config");
        TCase *tc = tcase_create("core");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_full);
        tcase_add_loop_test(tc, test_bad, 0, (int) (sizeof bads / sizeof bads[0]));
        tcase_add_test(tc, test_duplicate_key_message);
        tcase_add_test(tc, test_errors_never_leak);
        tcase_add_test(tc, test_secret_files);
        tcase_add_test(tc, test_credentials_directory);
        tcase_add_test(tc, test_env_override);
        tcase_add_test(tc, test_files);
        tcase_add_test(tc, test_print_masked);
        tcase_add_test(tc, test_paths);
        tcase_add_test(tc, test_tls_check);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return test_run(config_suite());
}
