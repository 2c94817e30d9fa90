/* /health/live, /health/ready, /metrics, /v1/leader. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "coordinatord.h"
#include "duration.h"
#include "fleet.h"
#include "leader.h"
#include "metrics.h"

void api_health_live(struct request *req) {
        http_reply_static(req, 200, "{\"status\":\"ok\"}\n");
}

/* After a SIGHUP whose new Redis credentials or TLS files did not work, the
 * daemon still serves on the connection it has: readiness is unchanged (a
 * load balancer has no reason to drop it), but the check says so until a
 * reload works: "credentials":{"status":"stale","error","since"}. */
static void add_credentials(struct server *s, json_t *redis) {
        char error[sizeof s->reload_error], since[64] = "";
        uint64_t at;

        pthread_mutex_lock(&s->reload_lock);
        snprintf(error, sizeof error, "%s", s->reload_error);
        at = s->reload_error_usec;
        pthread_mutex_unlock(&s->reload_lock);
        if (!redis || !error[0])
                return;
        (void) format_rfc3339(at, since, sizeof since);
        (void) json_object_set_new(redis, "credentials",
                                   json_pack("{s:s,s:s,s:s}", "status", "stale", "error", error, "since", since));
}

void api_health_ready(struct request *req) {
        struct server *s = req->s;
        bool redis_up = atomic_load(&s->redis_up);
        bool synced = fleet_is_synced(s->fleet);
        bool stopping = atomic_load(&s->stopping);
        bool ready = redis_up && synced && !stopping;
        json_t *redis = redis_up ? json_pack("{s:s}", "status", "up")
                                 : json_pack("{s:s,s:s}", "status", "down", "error", "not connected (reconnecting)");
        json_t *fleet = json_pack("{s:s}", "status", synced ? "up" : "down");

        add_credentials(s, redis);

        http_reply_json(req, ready ? 200 : 503,
                        json_pack("{s:s,s:{s:o,s:o}}", "status",
                                  stopping ? "stopping" : ready ? "ready" : "unavailable", "checks", "redis", redis,
                                  "fleet", fleet));
}

void api_metrics(struct request *req) {
        char *text = metrics_render(req->s);

        if (!text) {
                http_reply_error(req, 500, "internal", "out of memory");
                return;
        }
        http_reply(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, NULL);
}

void api_leader(struct request *req) {
        struct server *s = req->s;
        struct leader_view v;

        if (!atomic_load(&s->redis_up)) {
                http_reply_unavailable(req, "leader");
                return;
        }
        leader_get_view(s->leader, &v);
        if (v.is_leader)
                http_reply_json(req, 200, json_pack("{s:s,s:s,s:b,s:I}", "leader", s->id, "self", s->id,
                                                    "is_leader", 1, "term", (json_int_t) v.term));
        else
                http_reply_json(req, 200, json_pack("{s:s?,s:s,s:b,s:I}", "leader", v.leader, "self", s->id,
                                                    "is_leader", 0, "term", (json_int_t) v.term));
        leader_view_done(&v);
}
