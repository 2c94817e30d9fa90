/* See agent-config.h. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent-config.h"
#include "hook.h"
#include "log.h"
#include "macro.h"
#include "parse-util.h"
#include "strutil.h"
#include "strv.h"

#define H(m) offsetof(struct agent_health_config, m)
static const struct config_field health_fields[] = {
        { .key = "http", .type = CONFIG_STRING, .offset = H(http) },
        { .key = "tcp", .type = CONFIG_STRING, .offset = H(tcp) },
        { .key = "exec", .type = CONFIG_STRING, .offset = H(exec) },
        { .key = "interval", .type = CONFIG_DURATION, .offset = H(interval), .def = "10s" },
        { .key = "timeout", .type = CONFIG_DURATION, .offset = H(timeout), .def = "1s" },
        { .key = "rise", .type = CONFIG_INT, .offset = H(rise), .def = "2", .min = 1, .max = 1000 },
        { .key = "fall", .type = CONFIG_INT, .offset = H(fall), .def = "3", .min = 1, .max = 1000 },
        { .key = "grace", .type = CONFIG_DURATION, .offset = H(grace), .def = "0s" },
        {}
};
#undef H

#define K(m) offsetof(struct agent_hooks_config, m)
static const struct config_field hooks_fields[] = {
        { .key = "drain", .type = CONFIG_STRING, .offset = K(drain) },
        { .key = "deploy", .type = CONFIG_STRING, .offset = K(deploy) },
        { .key = "undrain", .type = CONFIG_STRING, .offset = K(undrain) },
        { .key = "migrate", .type = CONFIG_STRING, .offset = K(migrate) },
        { .key = "restart", .type = CONFIG_STRING, .offset = K(restart) },
        { .key = "timeout", .type = CONFIG_DURATION, .offset = K(timeout), .def = "5m" },
        { .key = "env", .type = CONFIG_JSON, .offset = K(env_json) },
        { .key = "pass_env", .type = CONFIG_JSON, .offset = K(pass_env_json) },
        {}
};
#undef K

#define S(m) offsetof(struct agent_service_config, m)
static const struct config_field service_fields[] = {
        { .key = "name", .type = CONFIG_STRING, .offset = S(name), .required = true },
        { .key = "instance", .type = CONFIG_STRING, .offset = S(instance) },
        { .key = "address", .type = CONFIG_STRING, .offset = S(address) },
        { .key = "version", .type = CONFIG_STRING, .offset = S(version), .required = true },
        { .key = "health", .type = CONFIG_OBJECT, .offset = S(health), .sub = health_fields },
        { .key = "hooks", .type = CONFIG_OBJECT, .offset = S(hooks), .sub = hooks_fields },
        { .key = "config_file", .type = CONFIG_STRING, .offset = S(config_file) },
        { .key = "config_format", .type = CONFIG_STRING, .offset = S(config_format), .def = "env" },
        { .key = "reload", .type = CONFIG_STRING, .offset = S(reload) },
        {}
};
#undef S

#define A(m) offsetof(struct agent_config, m)
const struct config_field agent_config_fields[] = {
        { .key = "redis", .type = CONFIG_REDIS_URL, .offset = A(redis), .required = true,
          .credential = "redis", .env = "COORD_REDIS" },
        CONFIG_TLS_FIELDS(struct agent_config, tls),
        { .key = "namespace", .type = CONFIG_STRING, .offset = A(namespace), .def = "default",
          .env = "COORD_NAMESPACE" },
        { .key = "host", .type = CONFIG_STRING, .offset = A(host) },
        { .key = "heartbeat_interval", .type = CONFIG_DURATION, .offset = A(heartbeat_interval), .def = "1s" },
        { .key = "state_dir", .type = CONFIG_STRING, .offset = A(state_dir), .def = "/var/lib/coord-agent" },
        { .key = "services", .type = CONFIG_ARRAY, .offset = A(services), .required = true,
          .sub = service_fields, .elem_size = sizeof(struct agent_service_config) },
        {}
};
#undef A

struct agent_config *agent_config_free(struct agent_config *c) {
        if (!c)
                return NULL;
        for (size_t i = 0; c->services && i < c->n_services; i++) {
                c->services[i].hooks.env = strv_free(c->services[i].hooks.env);
                c->services[i].hooks.pass_env = strv_free(c->services[i].hooks.pass_env);
        }
        config_free(agent_config_fields, c);
        free(c);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(struct agent_config *, agent_config_free)

/* "host:port" or "[v6]:port" with a numeric port 1-65535. */
static bool host_port_is_valid(const char *s) {
        const char *colon = strrchr(s, ':');
        int port;

        if (!colon || colon == s || strlen(s) > 255)
                return false;
        if (parse_int(colon + 1, &port) < 0 || port < 1 || port > 65535)
                return false;
        for (const char *p = s; p < colon; p++)
                if (*p <= ' ' || *p == '/' || *p == '@' || *p == '#' || *p == '?')
                        return false;
        return true;
}

static int short_hostname(char **ret) {
        char buf[256] = "";
        char *dot;

        if (gethostname(buf, sizeof buf - 1) < 0)
                return -errno;
        dot = strchr(buf, '.');
        if (dot)
                *dot = '\0';
        *ret = strdup(buf);
        return *ret ? 0 : -ENOMEM;
}

#define FAIL(...)                                           \
        do {                                                \
                snprintf(errbuf, errlen, __VA_ARGS__);      \
                return -EINVAL;                             \
        } while (0)

#define NAME_RULE "A-Z a-z 0-9 _, not starting with a digit, at most 128"

/* hooks.env: {"NAME": "value"} into h->env ("NAME=value"). */
static int parse_hooks_env(const char *path, size_t i, struct agent_hooks_config *h, char *errbuf, size_t errlen) {
        const char *name;
        json_t *v;
        size_t n = 0;

        if (!h->env_json || json_is_null(h->env_json))
                return 0;
        if (!json_is_object(h->env_json))
                FAIL("%s: services[%zu].hooks.env: expected an object of \"NAME\": \"value\"", path, i);
        h->env = calloc(json_object_size(h->env_json) + 1, sizeof *h->env);
        if (!h->env)
                return -ENOMEM;
        json_object_foreach(h->env_json, name, v) {
                if (!hook_env_name_is_valid(name))
                        FAIL("%s: services[%zu].hooks.env: '%.64s' is not a variable name (" NAME_RULE ")", path, i,
                             name);
                if (hook_env_name_is_reserved(name))
                        FAIL("%s: services[%zu].hooks.env.%s: %s", path, i, name,
                             strcmp(name, "CREDENTIALS_DIRECTORY") == 0 ? "never given to hooks"
                                                                        : "set by the agent itself");
                if (!json_is_string(v))
                        FAIL("%s: services[%zu].hooks.env.%s: expected a string", path, i, name);
                if (strlen(json_string_value(v)) != json_string_length(v))
                        FAIL("%s: services[%zu].hooks.env.%s: contains a NUL character", path, i, name);
                h->env[n] = strdup_printf("%s=%s", name, json_string_value(v));
                if (!h->env[n++])
                        return -ENOMEM;
        }
        return 0;
}

/* hooks.pass_env: ["NAME", ...] into h->pass_env. */
static int parse_hooks_pass_env(const char *path, size_t i, struct agent_hooks_config *h, char *errbuf,
                                size_t errlen) {
        size_t j;
        json_t *v;

        if (!h->pass_env_json || json_is_null(h->pass_env_json))
                return 0;
        if (!json_is_array(h->pass_env_json))
                FAIL("%s: services[%zu].hooks.pass_env: expected an array of variable names", path, i);
        h->pass_env = calloc(json_array_size(h->pass_env_json) + 1, sizeof *h->pass_env);
        if (!h->pass_env)
                return -ENOMEM;
        json_array_foreach(h->pass_env_json, j, v) {
                const char *name = json_string_value(v);
                if (!name)
                        FAIL("%s: services[%zu].hooks.pass_env[%zu]: expected a variable name (a string)", path, i, j);
                if (strlen(name) != json_string_length(v) || !hook_env_name_is_valid(name))
                        FAIL("%s: services[%zu].hooks.pass_env[%zu]: '%.64s' is not a variable name (" NAME_RULE ")",
                             path, i, j, name);
                if (hook_env_name_is_private(name))
                        FAIL("%s: services[%zu].hooks.pass_env[%zu]: '%s' is the agent's own: COORD_* and "
                             "CREDENTIALS_DIRECTORY are never passed to hooks",
                             path, i, j, name);
                h->pass_env[j] = strdup(name);
                if (!h->pass_env[j])
                        return -ENOMEM;
        }
        return 0;
}

/* An absent "health" object leaves zeros: apply the defaults, then check. */
static int validate_health(const char *path, size_t i, struct agent_health_config *h, char *errbuf,
                           size_t errlen) {
        int kinds = !!h->http + !!h->tcp + !!h->exec;

        if (kinds > 1)
                FAIL("%s: services[%zu].health: only one of http, tcp, exec may be set", path, i);
        if (h->http && strncmp(h->http, "http://", 7) != 0 && strncmp(h->http, "https://", 8) != 0)
                FAIL("%s: services[%zu].health.http: must be an http:// or https:// URL", path, i);
        if (h->tcp && !host_port_is_valid(h->tcp))
                FAIL("%s: services[%zu].health.tcp: must be host:port", path, i);
        if (h->exec && !*h->exec)
                FAIL("%s: services[%zu].health.exec: empty command", path, i);
        if (h->interval == 0)
                h->interval = 10 * 1000 * 1000;
        if (h->timeout == 0)
                h->timeout = 1000 * 1000;
        if (h->rise == 0)
                h->rise = 2;
        if (h->fall == 0)
                h->fall = 3;
        if (h->interval < 10 * 1000)
                FAIL("%s: services[%zu].health.interval: must be at least 10ms", path, i);
        if (h->rise < 1 || h->rise > 1000)
                FAIL("%s: services[%zu].health.rise: must be between 1 and 1000", path, i);
        if (h->fall < 1 || h->fall > 1000)
                FAIL("%s: services[%zu].health.fall: must be between 1 and 1000", path, i);
        return 0;
}

static int validate_service(const char *path, struct agent_config *c, size_t i, char *errbuf, size_t errlen) {
        struct agent_service_config *s = &c->services[i];
        int r;

        if (!name_is_valid(s->name))
                FAIL("%s: services[%zu].name: invalid name '%s' (1-64 of A-Z a-z 0-9 . _ -)", path, i, s->name);
        if (!s->instance) {
                s->instance = strdup_printf("%s-%s", c->host, s->name);
                if (!s->instance)
                        return -ENOMEM;
        }
        if (!name_is_valid(s->instance))
                FAIL("%s: services[%zu].instance: invalid name '%s' (1-64 of A-Z a-z 0-9 . _ -)", path, i,
                     s->instance);
        for (size_t j = 0; j < i; j++)
                if (strcmp(c->services[j].instance, s->instance) == 0)
                        FAIL("%s: services[%zu].instance: '%s' is already used by services[%zu]", path, i,
                             s->instance, j);
        if (!version_is_valid(s->version))
                FAIL("%s: services[%zu].version: invalid version '%s' (1-128 of A-Z a-z 0-9 . _ - + ~)", path, i,
                     s->version);
        if (s->address && strlen(s->address) > 255)
                FAIL("%s: services[%zu].address: too long", path, i);
        r = validate_health(path, i, &s->health, errbuf, errlen);
        if (r >= 0)
                r = parse_hooks_env(path, i, &s->hooks, errbuf, errlen);
        if (r >= 0)
                r = parse_hooks_pass_env(path, i, &s->hooks, errbuf, errlen);
        if (r < 0)
                return r;
        if (s->hooks.timeout == 0)
                s->hooks.timeout = 5 * 60 * UINT64_C(1000000);
        if (!s->config_format) {
                s->config_format = strdup("env");
                if (!s->config_format)
                        return -ENOMEM;
        }
        if (strcmp(s->config_format, "env") != 0 && strcmp(s->config_format, "json") != 0)
                FAIL("%s: services[%zu].config_format: must be \"env\" or \"json\", not '%s'", path, i,
                     s->config_format);
        if (s->config_file && s->config_file[0] != '/')
                FAIL("%s: services[%zu].config_file: must be an absolute path", path, i);
        if (!s->config_file && s->reload)
                FAIL("%s: services[%zu].reload: set without config_file", path, i);
        return 0;
}

static int validate(const char *path, struct agent_config *c, char *errbuf, size_t errlen) {
        int r;

        if (!name_is_valid(c->namespace))
                FAIL("%s: namespace: invalid name '%s' (1-64 of A-Z a-z 0-9 . _ -)", path, c->namespace);
        if (!c->host) {
                r = short_hostname(&c->host);
                if (r < 0)
                        FAIL("%s: host: cannot determine the host name: %s", path, strerror(-r));
        }
        if (!name_is_valid(c->host))
                FAIL("%s: host: invalid name '%s' (1-64 of A-Z a-z 0-9 . _ -)", path, c->host);
        if (c->heartbeat_interval < 10 * 1000)
                FAIL("%s: heartbeat_interval: must be at least 10ms", path);
        if (!c->state_dir || c->state_dir[0] != '/')
                FAIL("%s: state_dir: must be an absolute path", path);
        if (c->n_services == 0)
                FAIL("%s: services: at least one service is required", path);
        for (size_t i = 0; i < c->n_services; i++) {
                r = validate_service(path, c, i, errbuf, errlen);
                if (r < 0)
                        return r;
        }
        return config_tls_check(path, &c->tls, errbuf, errlen);
}

int agent_config_load(const char *path, const char *json, struct agent_config **ret, char *errbuf,
                      size_t errlen) {
        _cleanup_(agent_config_freep) struct agent_config *c = NULL;
        int r;

        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        if (json)
                r = config_load_string(json, path, agent_config_fields, c, errbuf, errlen);
        else
                r = config_load(path, agent_config_fields, c, errbuf, errlen);
        if (r < 0) {
                if (r != -EINVAL && errbuf && errlen && !errbuf[0])
                        snprintf(errbuf, errlen, "%s: %s", path, strerror(-r));
                return r;
        }
        r = validate(path, c, errbuf, errlen);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

void agent_config_print(const struct agent_config *c) {
        config_print_masked(agent_config_fields, c);
}

const struct agent_service_config *agent_config_find_instance(const struct agent_config *c, const char *id) {
        for (size_t i = 0; i < c->n_services; i++)
                if (strcmp(c->services[i].instance, id) == 0)
                        return &c->services[i];
        return NULL;
}
