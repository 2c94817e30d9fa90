/* See api.h. */
#include <stdbool.h>
#include <stddef.h>

#include "api.h"

static const char *const q_instances[] = { "service", "state", NULL };
static const char *const q_reveal[] = { "reveal", NULL };
static const char *const f_none[] = { NULL };
static const char *const f_config[] = { "config", NULL };
static const char *const q_deployments[] = { "service", "limit", NULL };
static const char *const f_deployment[] = { "service", "version", "strategy", "migrate", NULL };
static const char *const f_migration[] = { "service", "version", "phase", NULL };

/* L is the metrics label: the route template with named parameters, with the
 * method where one path has several. */
#define R(m, p, L, r, h, ...) { .method = m, .pattern = p, .label = L, .role = r, .handler = h, __VA_ARGS__ }
const struct route api_routes[] = {
        R("GET", "/health/live", "/health/live", ROLE_NONE, api_health_live, .query = NULL),
        R("GET", "/health/ready", "/health/ready", ROLE_NONE, api_health_ready, .query = NULL),
        R("GET", "/metrics", "/metrics", ROLE_READ, api_metrics, .query = NULL),
        R("GET", "/v1/leader", "/v1/leader", ROLE_READ, api_leader, .query = NULL),
        R("GET", "/v1/instances", "/v1/instances", ROLE_READ, api_instances_list, .query = q_instances),
        R("GET", "/v1/instances/{}", "/v1/instances/{id}", ROLE_READ, api_instances_get, .query = NULL),
        R("POST", "/v1/instances/{}/drain", "/v1/instances/{id}/drain", ROLE_DEPLOY, api_instances_drain,
          .fields = f_none),
        R("POST", "/v1/instances/{}/undrain", "/v1/instances/{id}/undrain", ROLE_DEPLOY, api_instances_undrain,
          .fields = f_none),
        R("GET", "/v1/config/{}", "GET /v1/config/{service}", ROLE_READ, api_config_get, .query = q_reveal),
        R("PUT", "/v1/config/{}", "PUT /v1/config/{service}", ROLE_ADMIN, api_config_put, .fields = f_config,
          .body_required = true),
        R("POST", "/v1/deployments", "POST /v1/deployments", ROLE_DEPLOY, api_deployments_create,
          .fields = f_deployment, .body_required = true),
        R("GET", "/v1/deployments", "GET /v1/deployments", ROLE_READ, api_deployments_list, .query = q_deployments),
        R("GET", "/v1/deployments/{}", "/v1/deployments/{id}", ROLE_READ, api_deployments_get, .query = NULL),
        R("GET", "/v1/deployments/{}/events", "/v1/deployments/{id}/events", ROLE_READ, api_deployments_events,
          .query = NULL),
        R("POST", "/v1/deployments/{}/pause", "/v1/deployments/{id}/pause", ROLE_DEPLOY, api_deployments_pause,
          .fields = f_none),
        R("POST", "/v1/deployments/{}/resume", "/v1/deployments/{id}/resume", ROLE_DEPLOY, api_deployments_resume,
          .fields = f_none),
        R("POST", "/v1/deployments/{}/cancel", "/v1/deployments/{id}/cancel", ROLE_DEPLOY, api_deployments_cancel,
          .fields = f_none),
        R("POST", "/v1/deployments/{}/revert", "/v1/deployments/{id}/revert", ROLE_DEPLOY, api_deployments_revert,
          .fields = f_none),
        R("POST", "/v1/migrations", "POST /v1/migrations", ROLE_DEPLOY, api_migrations_run, .fields = f_migration,
          .body_required = true),
        R("GET", "/v1/migrations/{}", "/v1/migrations/{service}", ROLE_READ, api_migrations_get, .query = NULL),
};
#undef R
const size_t api_n_routes = sizeof api_routes / sizeof api_routes[0];
