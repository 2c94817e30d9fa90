/* coord-agent's configuration file (CONTRACT.md, "Agent configuration"):
 * the schema for config_load() and the checks the schema cannot express
 * (valid names, one probe kind, unique instances, known formats). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "conf-parser.h"
#include "tls.h"

struct agent_health_config {
        char *http;           /* URL; 2xx is healthy */
        char *tcp;            /* host:port; a completed connect is healthy */
        char *exec;           /* /bin/sh -c command; exit 0 is healthy */
        uint64_t interval;
        uint64_t timeout;
        int64_t rise;
        int64_t fall;
        uint64_t grace;
};

struct agent_hooks_config {
        char *drain;
        char *deploy;
        char *undrain;
        char *migrate;
        char *restart;        /* extension: run by the "restart" command */
        uint64_t timeout;
        json_t *env_json;     /* "env": {"NAME": "value"} as loaded */
        json_t *pass_env_json;/* "pass_env": ["NAME", ...] as loaded */
        /* Derived from the two above by agent_config_load(), NULL-terminated, owned: */
        char **env;           /* "NAME=value" set for hooks, exec probes and reload */
        char **pass_env;      /* names passed through from the agent's environment */
};

struct agent_service_config {
        char *name;
        char *instance;       /* defaults to "<host>-<name>" */
        char *address;
        char *version;
        struct agent_health_config health;
        struct agent_hooks_config hooks;
        char *config_file;
        char *config_format;  /* "env" (default) or "json" */
        char *reload;
};

struct agent_config {
        char *redis;          /* connection string (secret: password masked) */
        struct tls_options tls; /* tls_* keys (or COORD_TLS_*, or the tls_key credential), checked */
        char *namespace;
        char *host;           /* defaults to the host name */
        uint64_t heartbeat_interval;
        char *state_dir;
        struct agent_service_config *services;
        size_t n_services;
};

#define AGENT_CONFIG_DEFAULT_PATH "/etc/coord/agent.json"

extern const struct config_field agent_config_fields[];

/* Load and validate path (or, with json != NULL, that document named path).
 * Returns 0, -EINVAL with errbuf naming the key, or -errno when unreadable.
 * On success *ret owns a new config (free with agent_config_free()). */
int agent_config_load(const char *path, const char *json, struct agent_config **ret, char *errbuf,
                      size_t errlen);
struct agent_config *agent_config_free(struct agent_config *c);
/* Print the effective config with secrets masked (--check-config). */
void agent_config_print(const struct agent_config *c);
/* The service entry whose instance id is id, or NULL. */
const struct agent_service_config *agent_config_find_instance(const struct agent_config *c, const char *id);
