/* /v1/instances: the fleet view, and drain/undrain commands to agents. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "command.h"
#include "coordinatord.h"
#include "duration.h"
#include "fleet.h"
#include "keys.h"
#include "log.h"
#include "macro.h"
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

static void send_command(struct request *req, enum command_type type) {
        struct server *s = req->s;
        struct fleet_snapshot *snap;
        const struct fleet_entry *e;
        _cleanup_free_ char *host = NULL, *doc = NULL;
        struct command *cmd = NULL;
        char err[256];
        redisContext *c;
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

        r = command_new(type, req->param, NULL, NULL, &cmd);
        if (r < 0) {
                http_reply_error(req, 500, "internal", "cannot create the command");
                return;
        }
        doc = command_encode(cmd);
        if (!doc) {
                command_free(cmd);
                http_reply_error(req, 500, "internal", "out of memory");
                return;
        }
        if (rconn_get(&c) < 0) {
                command_free(cmd);
                http_reply_unavailable(req, command_type_to_string(type));
                return;
        }
        r = command_enqueue(c, s->ns, host, cmd, err, sizeof err);
        if (r < 0) {
                log_warning("Failed to queue %s of %s: %s", command_type_to_string(type), req->param, err);
                command_free(cmd);
                rconn_reset();
                http_reply_unavailable(req, command_type_to_string(type));
                return;
        }
        log_info("Queued %s of instance %s on host %s (command %s, token %s)", command_type_to_string(type),
                 req->param, host, cmd->id, req->token_name ? req->token_name : "-");
        {
                /* The queue carries milliseconds; the API speaks RFC 3339 like everywhere else. */
                json_t *shown = json_loads(doc, 0, NULL);
                char ts[40];

                if (shown)
                        json_object_set_new(shown, "created_at",
                                            json_string(format_rfc3339(cmd->created_at_ms * USEC_PER_MSEC, ts, sizeof ts)));
                command_free(cmd);
                http_reply_json(req, 202, json_pack("{s:o}", "command", shown));
        }
}

void api_instances_drain(struct request *req) {
        send_command(req, COMMAND_DRAIN);
}

void api_instances_undrain(struct request *req) {
        send_command(req, COMMAND_UNDRAIN);
}
