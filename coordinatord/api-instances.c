/* /v1/instances: the fleet view, and drain/undrain commands to agents. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cleanup.h"
#include "coordinatord.h"
#include "duration.h"
#include "fleet.h"
#include "keys.h"
#include "log.h"
#include "rconn.h"
#include "strutil.h"

static void snapshot_release(void *cls) {
        fleet_snapshot_unref(cls);
}

static bool fleet_available(struct request *req) {
        if (!atomic_load(&req->s->redis_up) || !fleet_is_synced(req->s->fleet)) {
                http_reply_unavailable(req, "instances");
                return false;
        }
        return true;
}

void api_instances_list(struct request *req) {
        const char *service = http_query(req, "service"), *state = http_query(req, "state");
        struct fleet_snapshot *snap;

        if (service && !name_is_valid(service)) {
                http_reply_error(req, 400, "bad_request", "service: not a valid name");
                return;
        }
        if (state && !fleet_state_is_valid(state)) {
                http_reply_error(req, 400, "bad_request",
                                 "state: must be one of starting, healthy, unhealthy, draining, stopped, lost");
                return;
        }
        if (!fleet_available(req))
                return;

        snap = fleet_snapshot_get(req->s->fleet);
        if (!service && !state) {
                const char *data;
                size_t len;
                if (fleet_snapshot_json_all(snap, &data, &len) < 0) {
                        fleet_snapshot_unref(snap);
                        http_reply_error(req, 500, "internal", "out of memory");
                        return;
                }
                /* The snapshot reference travels with the response. */
                http_reply_shared(req, 200, data, len, snapshot_release, snap);
                return;
        }

        json_t *arr = json_array();
        for (size_t i = 0; arr && i < snap->n; i++) {
                const struct fleet_entry *e = &snap->entries[i];
                if (service && (!e->info->service || strcmp(e->info->service, service) != 0))
                        continue;
                if (state && strcmp(fleet_entry_state(e), state) != 0)
                        continue;
                json_array_append_new(arr, fleet_entry_to_json(e));
        }
        fleet_snapshot_unref(snap);
        http_reply_json(req, 200, json_pack("{s:o}", "instances", arr));
}

void api_instances_get(struct request *req) {
        struct fleet_snapshot *snap;
        const struct fleet_entry *e;

        if (!fleet_available(req))
                return;
        snap = fleet_snapshot_get(req->s->fleet);
        e = fleet_snapshot_find(snap, req->param);
        if (e)
                http_reply_json(req, 200, fleet_entry_to_json(e));
        else
                http_reply_error(req, 404, "not_found", "no instance '%s'", req->param);
        fleet_snapshot_unref(snap);
}

static void send_command(struct request *req, const char *type) {
        struct server *s = req->s;
        struct fleet_snapshot *snap;
        const struct fleet_entry *e;
        _cleanup_free_ char *host = NULL, *kq = NULL, *kw = NULL, *doc = NULL;
        char id[33], ts[40];
        redisContext *c;
        redisReply *r1 = NULL, *r2 = NULL;
        int r;

        if (!fleet_available(req))
                return;
        snap = fleet_snapshot_get(s->fleet);
        e = fleet_snapshot_find(snap, req->param);
        if (!e) {
                fleet_snapshot_unref(snap);
                http_reply_error(req, 404, "not_found", "no instance '%s'", req->param);
                return;
        }
        if (e->lost) {
                fleet_snapshot_unref(snap);
                http_reply_error(req, 409, "conflict", "instance '%s' is lost: its agent cannot act on it",
                                 req->param);
                return;
        }
        host = e->info->host ? strdup(e->info->host) : NULL;
        fleet_snapshot_unref(snap);
        if (!host || !name_is_valid(host)) {
                http_reply_error(req, 409, "conflict", "instance '%s' has no valid host registered", req->param);
                return;
        }

        if (random_hex(id, 16) < 0) {
                http_reply_error(req, 500, "internal", "no randomness");
                return;
        }
        format_rfc3339(now_realtime_usec(), ts, sizeof ts);
        _cleanup_json_ json_t *cmd = json_pack("{s:s,s:s,s:s,s:n,s:n,s:s}", "id", id, "type", type, "instance",
                                               req->param, "version", "deployment", "created_at", ts);
        doc = cmd ? json_dumps(cmd, JSON_COMPACT) : NULL;
        kq = key_agent_commands(s->ns, host);
        kw = key_agent_wake(s->ns, host);
        if (!doc || !kq || !kw) {
                http_reply_error(req, 500, "internal", "out of memory");
                return;
        }
        r = rconn_get(&c);
        if (r < 0) {
                http_reply_unavailable(req, type);
                return;
        }
        redisAppendCommand(c, "LPUSH %s %s", kq, doc);
        redisAppendCommand(c, "PUBLISH %s %s", kw, id);
        if (redisGetReply(c, (void **) &r1) != REDIS_OK || redisGetReply(c, (void **) &r2) != REDIS_OK) {
                if (r1)
                        freeReplyObject(r1);
                rconn_reset();
                http_reply_unavailable(req, type);
                return;
        }
        bool ok = r1->type == REDIS_REPLY_INTEGER;
        freeReplyObject(r1);
        freeReplyObject(r2);
        if (!ok) {
                http_reply_error(req, 500, "internal", "Redis refused the command");
                return;
        }
        log_info("Queued %s of instance %s on host %s (command %s, token %s)", type, req->param, host, id,
                 req->token_name ? req->token_name : "-");
        http_reply_json(req, 202, json_pack("{s:O}", "command", cmd));
}

void api_instances_drain(struct request *req) {
        send_command(req, "drain");
}

void api_instances_undrain(struct request *req) {
        send_command(req, "undrain");
}
