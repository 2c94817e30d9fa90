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

#define R(m, p, r, h, ...) { .method = m, .pattern = p, .role = r, .handler = h, __VA_ARGS__ }
const struct route api_routes[] = {
        R("GET", "/health/live", ROLE_NONE, api_health_live, .query = NULL),
        R("GET", "/health/ready", ROLE_NONE, api_health_ready, .query = NULL),
        R("GET", "/metrics", ROLE_READ, api_metrics, .query = NULL),
        R("GET", "/v1/leader", ROLE_READ, api_leader, .query = NULL),
        R("GET", "/v1/instances", ROLE_READ, api_instances_list, .query = q_instances),
        R("GET", "/v1/instances/{}", ROLE_READ, api_instances_get, .query = NULL),
        R("POST", "/v1/instances/{}/drain", ROLE_DEPLOY, api_instances_drain, .fields = f_none),
        R("POST", "/v1/instances/{}/undrain", ROLE_DEPLOY, api_instances_undrain, .fields = f_none),
        R("GET", "/v1/config/{}", ROLE_READ, api_config_get, .query = q_reveal),
        R("PUT", "/v1/config/{}", ROLE_ADMIN, api_config_put, .fields = f_config, .body_required = true),
        R("POST", "/v1/deployments", ROLE_DEPLOY, api_deployments_create, .fields = f_deployment,
          .body_required = true),
        R("GET", "/v1/deployments", ROLE_READ, api_deployments_list, .query = q_deployments),
        R("GET", "/v1/deployments/{}", ROLE_READ, api_deployments_get, .query = NULL),
        R("GET", "/v1/deployments/{}/events", ROLE_READ, api_deployments_events, .query = NULL),
        R("POST", "/v1/deployments/{}/pause", ROLE_DEPLOY, api_deployments_pause, .fields = f_none),
        R("POST", "/v1/deployments/{}/resume", ROLE_DEPLOY, api_deployments_resume, .fields = f_none),
        R("POST", "/v1/deployments/{}/cancel", ROLE_DEPLOY, api_deployments_cancel, .fields = f_none),
        R("POST", "/v1/deployments/{}/revert", ROLE_DEPLOY, api_deployments_revert, .fields = f_none),
        R("POST", "/v1/migrations", ROLE_DEPLOY, api_migrations_run, .fields = f_migration, .body_required = true),
        R("GET", "/v1/migrations/{}", ROLE_READ, api_migrations_get, .query = NULL),
};
#undef R
const size_t api_n_routes = sizeof api_routes / sizeof api_routes[0];

/* Metric labels: the route template, with the method where one path has several. */
const char *const api_route_labels[] = {
        "/health/live",
        "/health/ready",
        "/metrics",
        "/v1/leader",
        "/v1/instances",
        "/v1/instances/{id}",
        "/v1/instances/{id}/drain",
        "/v1/instances/{id}/undrain",
        "GET /v1/config/{service}",
        "PUT /v1/config/{service}",
        "POST /v1/deployments",
        "GET /v1/deployments",
        "/v1/deployments/{id}",
        "/v1/deployments/{id}/events",
        "/v1/deployments/{id}/pause",
        "/v1/deployments/{id}/resume",
        "/v1/deployments/{id}/cancel",
        "/v1/deployments/{id}/revert",
        "POST /v1/migrations",
        "/v1/migrations/{service}",
};
_Static_assert(sizeof api_route_labels / sizeof api_route_labels[0] == sizeof api_routes / sizeof api_routes[0],
               "one label per route");
