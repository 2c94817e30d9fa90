/* See metrics.h. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coordinatord.h"
#include "fleet.h"
#include "http.h"
#include "leader.h"
#include "macro.h"
#include "metrics.h"
#include "reconciler.h"
#include "sse.h"

static const unsigned codes[] = { 200, 201, 202, 204, 400, 401, 403, 404, 405, 409, 413, 414, 415, 422, 431, 500, 503, 505 };
#define N_CODES (ELEMENTSOF(codes) + 1) /* last: any other */
static const double buckets[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5 };
#define N_BUCKETS ELEMENTSOF(buckets)

static const struct route *routes;
static size_t n_routes;
static atomic_uint_fast64_t requests[METRICS_ROUTES_MAX + 1][ELEMENTSOF(codes) + 1];
static atomic_uint_fast64_t hist[METRICS_ROUTES_MAX + 1][N_BUCKETS + 1];
static atomic_uint_fast64_t hist_sum_usec[METRICS_ROUTES_MAX + 1];
static atomic_uint_fast64_t lock_acquisitions;
static atomic_uint_fast64_t http_rejected[_HTTP_REJECT_MAX];

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

/* The bucket of value among the upper bounds b[0..n-1]; n for +Inf. */
static size_t bucket_of(const double *b, size_t n, double value) {
        for (size_t i = 0; i < n; i++)
                if (value <= b[i])
                        return i;
        return n;
}

/* One labelled series of a histogram: the cumulative buckets, +Inf, sum and
 * count.  counts has n + 1 slots (the last is +Inf); sum is printed with
 * sum_digits decimals. */
static void render_histogram(FILE *f, const char *name, const char *label, const char *value, const double *b,
                             size_t n, atomic_uint_fast64_t *counts, double sum, int sum_digits) {
        uint64_t cum = 0;

        for (size_t i = 0; i < n; i++) {
                cum += atomic_load_explicit(&counts[i], memory_order_relaxed);
                fprintf(f, "%s_bucket{%s=\"%s\",le=\"%g\"} %llu\n", name, label, value, b[i], (unsigned long long) cum);
        }
        cum += atomic_load_explicit(&counts[n], memory_order_relaxed);
        fprintf(f, "%s_bucket{%s=\"%s\",le=\"+Inf\"} %llu\n", name, label, value, (unsigned long long) cum);
        fprintf(f, "%s_sum{%s=\"%s\"} %.*f\n", name, label, value, sum_digits, sum);
        fprintf(f, "%s_count{%s=\"%s\"} %llu\n", name, label, value, (unsigned long long) cum);
}

static uint64_t total_of(atomic_uint_fast64_t *counts, size_t n) {
        uint64_t t = 0;

        for (size_t i = 0; i <= n; i++)
                t += atomic_load_explicit(&counts[i], memory_order_relaxed);
        return t;
}

void metrics_init(const struct route *r, size_t n) {
        routes = r;
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
        atomic_fetch_add_explicit(&hist[route][bucket_of(buckets, N_BUCKETS, (double) duration_usec / 1e6)], 1,
                                  memory_order_relaxed);
        atomic_fetch_add_explicit(&hist_sum_usec[route], duration_usec, memory_order_relaxed);
}

void metrics_http_rejected(enum http_reject why, uint64_t n) {
        if ((int) why >= 0 && why < _HTTP_REJECT_MAX)
                atomic_fetch_add_explicit(&http_rejected[why], n, memory_order_relaxed);
}

static void render_http_edge(FILE *f, struct server *s) {
        fprintf(f, "# HELP coordinatord_http_connections Open HTTP connections.\n"
                   "# TYPE coordinatord_http_connections gauge\n"
                   "coordinatord_http_connections %u\n"
                   "# HELP coordinatord_http_connections_rejected_total HTTP connections refused at accept (per_client, limit) or closed without a complete request head (head_timeout).\n"
                   "# TYPE coordinatord_http_connections_rejected_total counter\n",
                httpd_connections(s->httpd));
        for (int i = 0; i < _HTTP_REJECT_MAX; i++)
                fprintf(f, "coordinatord_http_connections_rejected_total{reason=\"%s\"} %llu\n",
                        http_reject_to_string(i),
                        (unsigned long long) atomic_load_explicit(&http_rejected[i], memory_order_relaxed));
}

void metrics_lock_acquired(void) {
        atomic_fetch_add_explicit(&lock_acquisitions, 1, memory_order_relaxed);
}

uint64_t metrics_lock_acquisitions(void) {
        return atomic_load(&lock_acquisitions);
}

void metrics_rollout_step(const char *type, bool ok, uint64_t duration_ms) {
        size_t t = N_STEP_TYPES - 1, b = bucket_of(step_buckets, N_STEP_BUCKETS, (double) duration_ms / 1e3);

        for (size_t i = 0; type && i + 1 < N_STEP_TYPES; i++)
                if (strcmp(step_types[i], type) == 0)
                        t = i;
        atomic_fetch_add_explicit(&steps_total[t][ok ? 1 : 0], 1, memory_order_relaxed);
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
        for (size_t t = 0; t < N_STEP_TYPES; t++)
                render_histogram(f, "coordinatord_rollout_step_duration_seconds", "type", step_types[t], step_buckets,
                                 N_STEP_BUCKETS, step_hist[t], (double) atomic_load(&step_sum_ms[t]) / 1e3, 3);
}

static const char *route_label(size_t i) {
        return i < n_routes ? routes[i].label : "unmatched";
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
        for (size_t r = 0; r <= n_routes; r++)
                if (total_of(hist[r], N_BUCKETS) > 0)
                        render_histogram(f, "coordinatord_http_request_duration_seconds", "route", route_label(r),
                                         buckets, N_BUCKETS, hist[r], (double) atomic_load(&hist_sum_usec[r]) / 1e6, 6);

        render_http_edge(f, s);

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
