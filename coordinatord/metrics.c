/* See metrics.h. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <string.h>

#include "coordinatord.h"
#include "fleet.h"
#include "leader.h"
#include "macro.h"
#include "metrics.h"
#include "reconciler.h"
#include "sse.h"

static const unsigned codes[] = { 200, 201, 202, 204, 400, 401, 403, 404, 405, 409, 413, 415, 422, 500, 503 };
#define N_CODES (ELEMENTSOF(codes) + 1) /* last: any other */
static const double buckets[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5 };
#define N_BUCKETS ELEMENTSOF(buckets)

static const char *const *route_names;
static size_t n_routes;
static atomic_uint_fast64_t requests[METRICS_ROUTES_MAX + 1][ELEMENTSOF(codes) + 1];
static atomic_uint_fast64_t hist[METRICS_ROUTES_MAX + 1][N_BUCKETS + 1];
static atomic_uint_fast64_t hist_sum_usec[METRICS_ROUTES_MAX + 1];
static atomic_uint_fast64_t lock_acquisitions;

/* Rollout steps by type and result, with a duration histogram per type. */
static const char *const step_types[] = { "drain", "deploy", "undrain", "migrate", "other" };
#define N_STEP_TYPES ELEMENTSOF(step_types)
static const double step_buckets[] = { 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900 };
#define N_STEP_BUCKETS ELEMENTSOF(step_buckets)
static atomic_uint_fast64_t steps_total[N_STEP_TYPES][2];
static atomic_uint_fast64_t step_hist[N_STEP_TYPES][N_STEP_BUCKETS + 1];
static atomic_uint_fast64_t step_sum_ms[N_STEP_TYPES];
static const char *const finished_states[] = { "succeeded", "failed", "reverted", "cancelled" };
static atomic_uint_fast64_t deployments_finished[ELEMENTSOF(finished_states)];

void metrics_init(const char *const *names, size_t n) {
        route_names = names;
        n_routes = n < METRICS_ROUTES_MAX ? n : METRICS_ROUTES_MAX;
}

void metrics_http_observe(size_t route, unsigned code, uint64_t duration_usec) {
        size_t ci = ELEMENTSOF(codes);

        if (route > n_routes)
                route = n_routes;
        for (size_t i = 0; i < ELEMENTSOF(codes); i++)
                if (codes[i] == code) {
                        ci = i;
                        break;
                }
        atomic_fetch_add_explicit(&requests[route][ci], 1, memory_order_relaxed);
        size_t b = N_BUCKETS;
        for (size_t i = 0; i < N_BUCKETS; i++)
                if ((double) duration_usec / 1e6 <= buckets[i]) {
                        b = i;
                        break;
                }
        atomic_fetch_add_explicit(&hist[route][b], 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&hist_sum_usec[route], duration_usec, memory_order_relaxed);
}

void metrics_lock_acquired(void) {
        atomic_fetch_add_explicit(&lock_acquisitions, 1, memory_order_relaxed);
}

uint64_t metrics_lock_acquisitions(void) {
        return atomic_load(&lock_acquisitions);
}

void metrics_rollout_step(const char *type, bool ok, uint64_t duration_ms) {
        size_t t = N_STEP_TYPES - 1, b = N_STEP_BUCKETS;

        for (size_t i = 0; type && i + 1 < N_STEP_TYPES; i++)
                if (strcmp(step_types[i], type) == 0)
                        t = i;
        atomic_fetch_add_explicit(&steps_total[t][ok ? 1 : 0], 1, memory_order_relaxed);
        for (size_t i = 0; i < N_STEP_BUCKETS; i++)
                if ((double) duration_ms / 1e3 <= step_buckets[i]) {
                        b = i;
                        break;
                }
        atomic_fetch_add_explicit(&step_hist[t][b], 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&step_sum_ms[t], duration_ms, memory_order_relaxed);
}

void metrics_deployment_finished(const char *state) {
        for (size_t i = 0; state && i < ELEMENTSOF(finished_states); i++)
                if (strcmp(finished_states[i], state) == 0)
                        atomic_fetch_add_explicit(&deployments_finished[i], 1, memory_order_relaxed);
}

static void render_rollout(FILE *f) {
        fprintf(f, "# HELP coordinatord_deployments_finished_total Deployments this leader brought to a terminal state.\n"
                   "# TYPE coordinatord_deployments_finished_total counter\n");
        for (size_t i = 0; i < ELEMENTSOF(finished_states); i++)
                fprintf(f, "coordinatord_deployments_finished_total{state=\"%s\"} %llu\n", finished_states[i],
                        (unsigned long long) atomic_load(&deployments_finished[i]));
        fprintf(f, "# HELP coordinatord_rollout_steps_total Instance and migration steps of deployments by type and result.\n"
                   "# TYPE coordinatord_rollout_steps_total counter\n");
        for (size_t t = 0; t < N_STEP_TYPES; t++)
                for (int ok = 0; ok < 2; ok++)
                        fprintf(f, "coordinatord_rollout_steps_total{type=\"%s\",result=\"%s\"} %llu\n",
                                step_types[t], ok ? "ok" : "failed",
                                (unsigned long long) atomic_load(&steps_total[t][ok]));
        fprintf(f, "# HELP coordinatord_rollout_step_duration_seconds Hook durations of deployment steps.\n"
                   "# TYPE coordinatord_rollout_step_duration_seconds histogram\n");
        for (size_t t = 0; t < N_STEP_TYPES; t++) {
                uint64_t cum = 0;
                for (size_t b = 0; b < N_STEP_BUCKETS; b++) {
                        cum += atomic_load(&step_hist[t][b]);
                        fprintf(f, "coordinatord_rollout_step_duration_seconds_bucket{type=\"%s\",le=\"%g\"} %llu\n",
                                step_types[t], step_buckets[b], (unsigned long long) cum);
                }
                cum += atomic_load(&step_hist[t][N_STEP_BUCKETS]);
                fprintf(f, "coordinatord_rollout_step_duration_seconds_bucket{type=\"%s\",le=\"+Inf\"} %llu\n"
                           "coordinatord_rollout_step_duration_seconds_sum{type=\"%s\"} %.3f\n"
                           "coordinatord_rollout_step_duration_seconds_count{type=\"%s\"} %llu\n",
                        step_types[t], (unsigned long long) cum, step_types[t],
                        (double) atomic_load(&step_sum_ms[t]) / 1e3, step_types[t], (unsigned long long) cum);
        }
}

static const char *route_label(size_t i) {
        return i < n_routes ? route_names[i] : "unmatched";
}

char *metrics_render(struct server *s) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        if (!f)
                return NULL;

        fprintf(f, "# HELP coordinatord_build_info Build information.\n"
                   "# TYPE coordinatord_build_info gauge\n"
                   "coordinatord_build_info{version=\"%s\"} 1\n", COORD_VERSION);

        fprintf(f, "# HELP coordinatord_http_requests_total HTTP requests by route and status code.\n"
                   "# TYPE coordinatord_http_requests_total counter\n");
        for (size_t r = 0; r <= n_routes; r++)
                for (size_t c = 0; c <= ELEMENTSOF(codes); c++) {
                        uint64_t v = atomic_load_explicit(&requests[r][c], memory_order_relaxed);
                        if (v == 0)
                                continue;
                        if (c < ELEMENTSOF(codes))
                                fprintf(f, "coordinatord_http_requests_total{route=\"%s\",code=\"%u\"} %llu\n",
                                        route_label(r), codes[c], (unsigned long long) v);
                        else
                                fprintf(f, "coordinatord_http_requests_total{route=\"%s\",code=\"other\"} %llu\n",
                                        route_label(r), (unsigned long long) v);
                }

        fprintf(f, "# HELP coordinatord_http_request_duration_seconds HTTP request latency by route.\n"
                   "# TYPE coordinatord_http_request_duration_seconds histogram\n");
        for (size_t r = 0; r <= n_routes; r++) {
                uint64_t cum = 0, counts[N_BUCKETS + 1];
                for (size_t b = 0; b <= N_BUCKETS; b++) {
                        counts[b] = atomic_load_explicit(&hist[r][b], memory_order_relaxed);
                        cum += counts[b];
                }
                if (cum == 0)
                        continue;
                cum = 0;
                for (size_t b = 0; b < N_BUCKETS; b++) {
                        cum += counts[b];
                        fprintf(f, "coordinatord_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                                route_label(r), buckets[b], (unsigned long long) cum);
                }
                cum += counts[N_BUCKETS];
                fprintf(f, "coordinatord_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
                        route_label(r), (unsigned long long) cum);
                fprintf(f, "coordinatord_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n", route_label(r),
                        (double) atomic_load(&hist_sum_usec[r]) / 1e6);
                fprintf(f, "coordinatord_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
                        route_label(r), (unsigned long long) cum);
        }

        fprintf(f, "# HELP coordinatord_instances Instances by service and state.\n"
                   "# TYPE coordinatord_instances gauge\n");
        fleet_write_metrics(s->fleet, f);

        struct leader_view lv = {};
        leader_get_view(s->leader, &lv);
        fprintf(f, "# HELP coordinatord_leader 1 when this coordinatord leads.\n"
                   "# TYPE coordinatord_leader gauge\n"
                   "coordinatord_leader %d\n"
                   "# HELP coordinatord_leader_term Fencing token of the current leadership term (0: unknown).\n"
                   "# TYPE coordinatord_leader_term gauge\n"
                   "coordinatord_leader_term %llu\n",
                lv.is_leader ? 1 : 0, (unsigned long long) lv.term);
        leader_view_done(&lv);

        fprintf(f, "# HELP coordinatord_lock_acquisitions_total Leadership lock acquisitions by this process.\n"
                   "# TYPE coordinatord_lock_acquisitions_total counter\n"
                   "coordinatord_lock_acquisitions_total %llu\n",
                (unsigned long long) metrics_lock_acquisitions());
        fprintf(f, "# HELP coordinatord_redis_up 1 when the Redis connection is up.\n"
                   "# TYPE coordinatord_redis_up gauge\n"
                   "coordinatord_redis_up %d\n",
                atomic_load(&s->redis_up) ? 1 : 0);
        unsigned long connects = atomic_load(&s->redis_connects);
        fprintf(f, "# HELP coordinatord_redis_reconnects_total Redis reconnections after the first connection.\n"
                   "# TYPE coordinatord_redis_reconnects_total counter\n"
                   "coordinatord_redis_reconnects_total %lu\n",
                connects > 0 ? connects - 1 : 0);

        render_rollout(f);
        reconciler_write_metrics(s->reconciler, f);
        fprintf(f, "# HELP coordinatord_event_streams Open deployment event streams (SSE).\n"
                   "# TYPE coordinatord_event_streams gauge\n"
                   "coordinatord_event_streams %zu\n",
                sse_hub_streams(s->sse));

        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}
