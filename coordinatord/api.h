/* REST API routes (CONTRACT.md "REST API").  Each api-*.c holds the handlers
 * of one resource; api.c holds the table. */
#pragma once

#include <stddef.h>

#include "http.h"

extern const struct route api_routes[];
extern const size_t api_n_routes;

void api_health_live(struct request *req);
void api_health_ready(struct request *req);
void api_metrics(struct request *req);
void api_leader(struct request *req);
void api_instances_list(struct request *req);
void api_instances_get(struct request *req);
void api_instances_drain(struct request *req);
void api_instances_undrain(struct request *req);
void api_config_get(struct request *req);
void api_config_put(struct request *req);
void api_deployments_create(struct request *req);
void api_deployments_list(struct request *req);
void api_deployments_get(struct request *req);
void api_deployments_events(struct request *req);
void api_deployments_pause(struct request *req);
void api_deployments_resume(struct request *req);
void api_deployments_cancel(struct request *req);
void api_deployments_revert(struct request *req);
void api_migrations_run(struct request *req);
void api_migrations_get(struct request *req);
