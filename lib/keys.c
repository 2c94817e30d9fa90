/* See keys.h. */
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "strutil.h"

char *key_lock(const char *ns, const char *name) {
        return strdup_printf("coord:{%s:lock:%s}", ns, name);
}
char *key_lock_fence(const char *ns, const char *name) {
        return strdup_printf("coord:{%s:lock:%s}:fence", ns, name);
}
char *key_lock_holder(const char *ns, const char *name) {
        return strdup_printf("coord:{%s:lock:%s}:holder", ns, name);
}
char *key_lock_channel(const char *ns, const char *name) {
        return strdup_printf("coord:{%s:lock:%s}:released", ns, name);
}
char *key_lock_waiters(const char *ns, const char *name) {
        return strdup_printf("coord:{%s:lock:%s}:waiters", ns, name);
}
char *key_lock_wake(const char *ns, const char *name, const char *token) {
        return strdup_printf("coord:{%s:lock:%s}:released:%s", ns, name, token);
}

char *key_instance(const char *ns, const char *id) {
        return strdup_printf("coord:{%s}:instance:%s", ns, id);
}
char *key_alive(const char *ns, const char *id) {
        return strdup_printf("coord:{%s}:alive:%s", ns, id);
}
char *key_instances(const char *ns) {
        return strdup_printf("coord:{%s}:instances", ns);
}
char *key_events(const char *ns) {
        return strdup_printf("coord:{%s}:events", ns);
}

char *key_agent_commands(const char *ns, const char *host) {
        return strdup_printf("coord:{%s}:agent:%s:commands", ns, host);
}
char *key_agent_inflight(const char *ns, const char *host) {
        return strdup_printf("coord:{%s}:agent:%s:inflight", ns, host);
}
char *key_agent_wake(const char *ns, const char *host) {
        return strdup_printf("coord:{%s}:agent:%s:wake", ns, host);
}
char *key_agent_result(const char *ns, const char *host, const char *cmd_id) {
        return strdup_printf("coord:{%s}:agent:%s:result:%s", ns, host, cmd_id);
}
char *key_command_legacy(const char *ns, const char *cmd_id) {
        return strdup_printf("coord:{%s}:command:%s", ns, cmd_id);
}
char *key_command_results(const char *ns) {
        return strdup_printf("coord:{%s}:command-results", ns);
}

char *key_config(const char *ns, const char *service) {
        return strdup_printf("coord:{%s}:config:%s", ns, service);
}
char *key_config_changed(const char *ns) {
        return strdup_printf("coord:{%s}:config-changed", ns);
}

char *key_deployment(const char *ns, const char *id) {
        return strdup_printf("coord:{%s}:deployment:%s", ns, id);
}
char *key_deployment_events(const char *ns, const char *id) {
        return strdup_printf("coord:{%s}:deployment:%s:events", ns, id);
}
char *key_deployment_instances(const char *ns, const char *id) {
        return strdup_printf("coord:{%s}:deployment:%s:instances", ns, id);
}
char *key_deployments(const char *ns) {
        return strdup_printf("coord:{%s}:deployments", ns);
}
char *key_deployments_service(const char *ns, const char *service) {
        return strdup_printf("coord:{%s}:deployments:%s", ns, service);
}
char *key_deployments_active(const char *ns) {
        return strdup_printf("coord:{%s}:deployments-active", ns);
}
char *key_active(const char *ns, const char *service) {
        return strdup_printf("coord:{%s}:active:%s", ns, service);
}
char *key_idempotency(const char *ns, const char *sha256_hex) {
        return strdup_printf("coord:{%s}:idempotency:%s", ns, sha256_hex);
}
char *key_deployment_events_channel(const char *ns) {
        return strdup_printf("coord:{%s}:deployment-events", ns);
}
char *key_deployment_wake(const char *ns) {
        return strdup_printf("coord:{%s}:deployment-wake", ns);
}
char *key_migration(const char *ns, const char *service) {
        return strdup_printf("coord:{%s}:migration:%s", ns, service);
}

char *key_lmove_probe(const char *ns) {
        return strdup_printf("coord:{%s}:lmove-probe", ns);
}

char *key_namespace_pattern(const char *ns) {
        return strdup_printf("coord:{%s}:*", ns);
}
#define KEEPALIVE_PREFIX "coord:keepalive:"
char *key_keepalive(const char *random) {
        return strdup_printf(KEEPALIVE_PREFIX "%s", random);
}
bool key_is_keepalive(const char *channel) {
        return strncmp(channel, KEEPALIVE_PREFIX, strlen(KEEPALIVE_PREFIX)) == 0;
}

const char *namespace_default(void) {
        const char *e = getenv("COORD_NAMESPACE");
        return e && name_is_valid(e) ? e : "default";
}
