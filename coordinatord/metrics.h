/* Prometheus metrics (text exposition format 0.0.4).
 *
 * HTTP counters are lock-free atomics updated from the libmicrohttpd threads;
 * the gauges (instances, leader, Redis) are read from their owners when
 * /metrics is scraped. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http-guard.h"

struct server;

#define METRICS_ROUTES_MAX 32

struct route;
/* The routes whose labels the HTTP metrics use, by index (index n_routes is
 * "unmatched").  Call once before the HTTP server starts; routes must stay
 * valid. */
void metrics_init(const struct route *routes, size_t n_routes);
/* Record one finished request. */
void metrics_http_observe(size_t route, unsigned code, uint64_t duration_usec);
/* n connections refused at accept or closed by the request head deadline. */
void metrics_http_rejected(enum http_reject why, uint64_t n);
/* One more leadership acquisition. */
void metrics_lock_acquired(void);
uint64_t metrics_lock_acquisitions(void);
/* A deployment's instance or migration step finished (type: drain, deploy,
 * undrain, migrate; the hook's duration as the agent measured it). */
void metrics_rollout_step(const char *type, bool ok, uint64_t duration_ms);
/* A deployment reached a terminal state (succeeded failed reverted cancelled). */
void metrics_deployment_finished(const char *state);
/* The whole exposition as a malloc'd string (NULL on OOM). */
char *metrics_render(struct server *s);
