/* /v1/deployments and /v1/migrations (docs/deployments.md).
 *
 * Any coordinatord serves these.  Creating a deployment and storing a
 * control request are single Lua scripts (one active deployment per service,
 * Idempotency-Key, history trimming, request-vs-state checks are atomic);
 * from there on the leader's reconciler owns the record. */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "command.h"
#include "coordinatord.h"
#include "depstore.h"
#include "duration.h"
#include "fleet.h"
#include "jsonutil.h"
#include "keys.h"
#include "log.h"
#include "parse-util.h"
#include "rconn.h"
#include "redis.h"
#include "rollout.h"
#include "sse.h"
#include "strutil.h"

#define LIST_LIMIT_DEFAULT 20
#define LIST_LIMIT_MAX 1000
#define IDEMPOTENCY_KEY_MAX 128
#define IDEMPOTENCY_TTL "86400"

/* KEYS[1] active:SERVICE, KEYS[2] record, KEYS[3] events, KEYS[4] all, KEYS[5] per service,
 * KEYS[6] active set, KEYS[7] idempotency key.
 * ARGV[1] id, ARGV[2] doc, ARGV[3] created ms, ARGV[4] service, ARGV[5] "1" with an
 * idempotency key, ARGV[6] its value, ARGV[7] first event, ARGV[8] history limit,
 * ARGV[9] events channel, ARGV[10] wake channel, ARGV[11] record key prefix. */
static const char create_script[] =
        "if ARGV[5] == '1' then\n"
        "  local prev = redis.call('GET', KEYS[7])\n"
        "  if prev then return {'idempotent', prev} end\n"
        "end\n"
        "local cur = redis.call('GET', KEYS[1])\n"
        "if cur then return {'conflict', cur} end\n"
        "redis.call('SET', KEYS[1], ARGV[1])\n"
        "redis.call('HSET', KEYS[2], 'doc', ARGV[2], 'service', ARGV[4], 'state', 'pending', 'rev', 1, 'seq', 1)\n"
        "redis.call('XADD', KEYS[3], '0-1', 'data', ARGV[7])\n"
        "redis.call('ZADD', KEYS[4], ARGV[3], ARGV[1])\n"
        "redis.call('ZADD', KEYS[5], ARGV[3], ARGV[1])\n"
        "redis.call('SADD', KEYS[6], ARGV[1])\n"
        "if ARGV[5] == '1' then redis.call('SET', KEYS[7], ARGV[6], 'EX', " IDEMPOTENCY_TTL ") end\n"
        "local n = redis.call('ZCARD', KEYS[5]) - tonumber(ARGV[8])\n"
        "if n > 0 then\n"
        "  for _, id in ipairs(redis.call('ZRANGE', KEYS[5], 0, n - 1)) do\n"
        "    if redis.call('SISMEMBER', KEYS[6], id) == 0 then\n"
        "      redis.call('DEL', ARGV[11] .. id, ARGV[11] .. id .. ':events', ARGV[11] .. id .. ':instances')\n"
        "      redis.call('ZREM', KEYS[5], id)\n"
        "      redis.call('ZREM', KEYS[4], id)\n"
        "    end\n"
        "  end\n"
        "end\n"
        "redis.call('PUBLISH', ARGV[9], ARGV[1] .. ' 1')\n"
        "redis.call('PUBLISH', ARGV[10], ARGV[1])\n"
        "return {'created', ARGV[1]}\n";

/* KEYS[1] record, KEYS[2] active:SERVICE, KEYS[3] active set, KEYS[4] per service.
 * ARGV[1] action, ARGV[2] id, ARGV[3] wake channel. */
static const char control_script[] =
        "local st = redis.call('HGET', KEYS[1], 'state')\n"
        "if not st then return {'notfound', ''} end\n"
        "local req = redis.call('HGET', KEYS[1], 'requested')\n"
        "local terminal = st == 'succeeded' or st == 'failed' or st == 'reverted' or st == 'cancelled'\n"
        "local a = ARGV[1]\n"
        "if req == 'cancel' or req == 'revert' then\n"
        "  return {'conflict', 'a ' .. req .. ' request is already pending'}\n"
        "end\n"
        "if a == 'pause' then\n"
        "  if terminal then return {'conflict', 'the deployment is ' .. st} end\n"
        "  if st == 'paused' and req ~= 'resume' then return {'conflict', 'the deployment is already paused'} end\n"
        "elseif a == 'resume' then\n"
        "  if st ~= 'paused' and req ~= 'pause' then return {'conflict', 'the deployment is not paused (' .. st .. ')'} end\n"
        "elseif a == 'cancel' then\n"
        "  if terminal then return {'conflict', 'the deployment is ' .. st} end\n"
        "elseif a == 'revert' then\n"
        "  if not terminal then return {'conflict', 'the deployment is still ' .. st .. ' (cancel it first)'} end\n"
        "  if st == 'reverted' then return {'conflict', 'the deployment is already reverted'} end\n"
        "  local newest = redis.call('ZREVRANGE', KEYS[4], 0, 0)[1]\n"
        "  if newest ~= ARGV[2] then\n"
        "    return {'conflict', 'only the newest deployment of the service can be reverted (' .. tostring(newest) .. ' is newer)'}\n"
        "  end\n"
        "  local cur = redis.call('GET', KEYS[2])\n"
        "  if cur and cur ~= ARGV[2] then return {'conflict', 'deployment ' .. cur .. ' of this service is active'} end\n"
        "  redis.call('SET', KEYS[2], ARGV[2])\n"
        "  redis.call('SADD', KEYS[3], ARGV[2])\n"
        "end\n"
        "redis.call('HSET', KEYS[1], 'requested', a)\n"
        "redis.call('PUBLISH', ARGV[3], ARGV[2])\n"
        "return {'ok', st}\n";

/* The "service" and "version" of a request body; false (400 sent) when invalid. */
static bool body_service_version(struct request *req, const char **ret_service, const char **ret_version) {
        const char *service = json_string_value(json_object_get(req->json, "service"));
        const char *version = json_string_value(json_object_get(req->json, "version"));

        if (!service || !name_is_valid(service)) {
                http_reply_error(req, 400, "bad_request", "service: %s", service ? "not a valid name" : "required (a string)");
                return false;
        }
        if (!version || !version_is_valid(version)) {
                http_reply_error(req, 400, "bad_request", "version: %s",
                                 version ? "not a valid version" : "required (a string)");
                return false;
        }
        *ret_service = service;
        *ret_version = version;
        return true;
}

static bool redis_ready(struct request *req, const char *what, redisContext **ret) {
        if (!atomic_load(&req->s->redis_up) || rconn_get(ret) < 0) {
                http_reply_unavailable(req, what);
                return false;
        }
        return true;
}

static void redis_failed(struct request *req, const char *what, int r, const char *err) {
        log_warning("%s: Redis error: %s", what, err);
        rconn_reset();
        if (r == -EPROTO)
                http_reply_error(req, 500, "internal", "%s: Redis refused the command", what);
        else
                http_reply_unavailable(req, what);
}

static int append_read(redisContext *c, const char *ns, const char *id) {
        _cleanup_free_ char *kd = key_deployment(ns, id), *ki = key_deployment_instances(ns, id);

        if (!kd || !ki)
                return -ENOMEM;
        const char *argv[] = { "EVAL", depstore_read_script, "2", kd, ki };
        return redisAppendCommandArgv(c, (int) ELEMENTSOF(argv), argv, NULL) == REDIS_OK ? 0 : -ENOMEM;
}

/* The public JSON of depstore_read_script's reply, or NULL with the error in *ret_r. */
static json_t *record_to_public(redisReply *rep, int *ret_r) {
        _cleanup_free_ char *requested = NULL;
        json_t *j = NULL;

        *ret_r = depstore_parse_read(rep, &j, NULL, &requested);
        if (*ret_r < 0)
                return NULL;
        rollout_json_strip_internal(j);
        json_object_set_new(j, "requested", requested ? json_string(requested) : json_null());
        return j;
}

/* 0 with the record, -ENOENT, -EBADMSG, or another -errno (reply sent). */
static int load_public(struct request *req, redisContext *c, const char *id, json_t **ret) {
        _cleanup_reply_ redisReply *rep = NULL;
        int r;

        if (append_read(c, req->s->ns, id) < 0)
                return -ENOMEM;
        if (redis_ctx_get_reply(c, (void **) &rep) != REDIS_OK || !rep) {
                rconn_reset();
                http_reply_unavailable(req, "deployment");
                return -EIO;
        }
        *ret = record_to_public(rep, &r);
        if (r == -EPROTO) {
                log_warning("deployment %s: Redis error: %s", id, rep->str);
                http_reply_error(req, 500, "internal", "deployment: Redis refused the command");
        }
        return r;
}

static bool service_has_instances(struct request *req, const char *service) {
        struct fleet_snapshot *snap = fleet_snapshot_get(req->s->fleet);
        bool any = false;

        for (size_t i = 0; i < snap->n && !any; i++) {
                const struct fleet_entry *e = &snap->entries[i];
                any = e->info->service && strcmp(e->info->service, service) == 0 &&
                      strcmp(fleet_entry_state(e), "stopped") != 0;
        }
        fleet_snapshot_unref(snap);
        return any;
}

static char *first_event(const struct rollout *d, const char *token_name) {
        _cleanup_json_ json_t *e = NULL;
        char ts[40], msg[256];

        format_rfc3339((uint64_t) d->created_at * USEC_PER_MSEC, ts, sizeof ts);
        snprintf(msg, sizeof msg, "created by %s: %s to %s", token_name ? token_name : "(no auth)", d->service,
                 d->version);
        e = json_pack("{s:s,s:s,s:s,s:n,s:s,s:n,s:{s:i,s:i,s:i,s:i,s:i},s:s}", "type", "state", "deployment", d->id,
                      "state", "pending", "previous", "message", msg, "error", "progress", "total", 0, "done", 0,
                      "failed", 0, "lost", 0, "reverted", 0, "ts", ts);
        return e ? json_dumps(e, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
}

static void reply_record(struct request *req, redisContext *c, unsigned status, const char *id) {
        _cleanup_free_ char *location = strdup_printf("/v1/deployments/%s", id);
        json_t *j = NULL;
        int r = load_public(req, c, id, &j);

        if (r == -ENOENT || r == -EBADMSG) {
                http_reply_error(req, 404, "not_found", "no deployment '%s'", id);
                return;
        }
        if (r < 0)
                return;
        const char *hdr[] = { "Location", location, NULL };
        http_reply_json_headers(req, status, j, status == 201 && location ? hdr : NULL);
}

struct create_args {
        const char *service, *version, *idem;
        bool migrate;
        struct rollout_strategy strategy;
};

/* The request body and headers of a new deployment; false (400 sent) when invalid. */
static bool create_parse(struct request *req, struct create_args *ret) {
        json_t *migrate = json_object_get(req->json, "migrate");
        const char *idem = http_header(req, "Idempotency-Key");
        char err[512];

        if (!body_service_version(req, &ret->service, &ret->version))
                return false;
        if (migrate && !json_is_boolean(migrate)) {
                http_reply_error(req, 400, "bad_request", "migrate: expected true or false");
                return false;
        }
        if (rollout_strategy_from_json(json_object_get(req->json, "strategy"), &ret->strategy, err, sizeof err) < 0) {
                http_reply_error(req, 400, "bad_request", "%s", err);
                return false;
        }
        if (idem) {
                size_t l = strlen(idem);
                bool ok = l > 0 && l <= IDEMPOTENCY_KEY_MAX;
                for (size_t i = 0; ok && i < l; i++)
                        ok = idem[i] > 0x20 && idem[i] < 0x7f;
                if (!ok) {
                        http_reply_error(req, 400, "bad_request",
                                         "Idempotency-Key: 1-%d printable characters without spaces",
                                         IDEMPOTENCY_KEY_MAX);
                        return false;
                }
        }
        ret->idem = idem;
        ret->migrate = !migrate || json_is_true(migrate);
        return true;
}

/* Run create_script for d; 0 with its reply, or -errno (answer sent). */
static int create_send(struct request *req, redisContext *c, const struct create_args *a, const struct rollout *d,
                       redisReply **ret) {
        const char *ns = req->s->ns;
        _cleanup_json_ json_t *doc = rollout_to_json(d, true);
        _cleanup_free_ char *doc_s = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL,
                            *ev = first_event(d, req->token_name), *k_active = key_active(ns, a->service),
                            *k_rec = key_deployment(ns, d->id), *k_ev = key_deployment_events(ns, d->id),
                            *k_all = key_deployments(ns), *k_svc = key_deployments_service(ns, a->service),
                            *k_set = key_deployments_active(ns), *k_idem = NULL,
                            *idem_val = strdup_printf("%s %s %s", d->id, a->service, a->version),
                            *created = strdup_printf("%" PRId64, d->created_at),
                            *limit = strdup_printf("%" PRId64, req->s->cfg.history_limit),
                            *chan = key_deployment_events_channel(ns), *wake = key_deployment_wake(ns),
                            *prefix = key_deployment(ns, "");
        char err[512], hash[65];
        int r;

        sha256_hex(a->idem ? a->idem : "", a->idem ? strlen(a->idem) : 0, hash);
        k_idem = key_idempotency(ns, hash);
        if (!doc_s || !ev || !k_active || !k_rec || !k_ev || !k_all || !k_svc || !k_set || !k_idem || !idem_val ||
            !created || !limit || !chan || !wake || !prefix) {
                http_reply_error(req, 500, "internal", "out of memory");
                return -ENOMEM;
        }
        const char *argv[] = { "EVAL", create_script, "7", k_active, k_rec, k_ev, k_all, k_svc, k_set, k_idem, d->id,
                               doc_s, created, a->service, a->idem ? "1" : "0", idem_val, ev, limit, chan, wake,
                               prefix };
        r = redis_commandargv(c, ret, err, sizeof err, (int) ELEMENTSOF(argv), argv, NULL);
        if (r < 0)
                redis_failed(req, "deployments", r, err);
        return r;
}

/* A retried request: "ID SERVICE VERSION" of the first one with this key. */
static void create_idempotent(struct request *req, redisContext *c, const struct create_args *a,
                              const char *first) {
        char prev_id[NAME_MAX_LEN + 1] = "", prev_service[NAME_MAX_LEN + 1] = "";
        const char *q = strchr(first, ' ');
        const char *q2 = q ? strchr(q + 1, ' ') : NULL;

        if (q && q2 && (size_t) (q - first) <= NAME_MAX_LEN && (size_t) (q2 - q - 1) <= NAME_MAX_LEN) {
                memcpy(prev_id, first, (size_t) (q - first));
                memcpy(prev_service, q + 1, (size_t) (q2 - q - 1));
        }
        if (!*prev_id || strcmp(prev_service, a->service) != 0 || strcmp(q2 + 1, a->version) != 0) {
                http_reply_error(req, 422, "unprocessable", "Idempotency-Key was already used for another request (%s)",
                                 *prev_id ? prev_id : "?");
                return;
        }
        log_info("Deployment %s returned again for a retried request (Idempotency-Key)", prev_id);
        reply_record(req, c, 201, prev_id);
}

void api_deployments_create(struct request *req) {
        struct server *s = req->s;
        _cleanup_(rollout_freep) struct rollout *d = NULL;
        _cleanup_reply_ redisReply *rep = NULL;
        struct create_args a;
        char id[21];
        redisContext *c;

        if (!create_parse(req, &a))
                return;
        if (!atomic_load(&s->redis_up) || !fleet_is_synced(s->fleet)) {
                http_reply_unavailable(req, "deployments");
                return;
        }
        if (!service_has_instances(req, a.service)) {
                http_reply_error(req, 422, "unprocessable", "service '%s' has no running instances", a.service);
                return;
        }
        if (random_hex(id, 10) < 0) {
                http_reply_error(req, 500, "internal", "no randomness");
                return;
        }
        if (rollout_new(id, a.service, a.version, &a.strategy, a.migrate, req->token_name,
                        (int64_t) now_realtime_msec(), &d) < 0) {
                http_reply_error(req, 500, "internal", "out of memory");
                return;
        }
        if (!redis_ready(req, "deployments", &c) || create_send(req, c, &a, d, &rep) < 0)
                return;
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 || rep->element[0]->type != REDIS_REPLY_STRING ||
            rep->element[1]->type != REDIS_REPLY_STRING) {
                http_reply_error(req, 500, "internal", "unexpected reply from Redis");
                return;
        }
        if (strcmp(rep->element[0]->str, "conflict") == 0)
                http_reply_error(req, 409, "conflict", "service %s has an active deployment: %s", a.service,
                                 rep->element[1]->str);
        else if (strcmp(rep->element[0]->str, "idempotent") == 0)
                create_idempotent(req, c, &a, rep->element[1]->str);
        else {
                log_info("Deployment %s created: %s to %s (token %s)", id, a.service, a.version,
                         req->token_name ? req->token_name : "-");
                reply_record(req, c, 201, id);
        }
}

void api_deployments_list(struct request *req) {
        const char *service = http_query(req, "service"), *limit_s = http_query(req, "limit");
        _cleanup_free_ char *k = NULL;
        _cleanup_reply_ redisReply *ids = NULL;
        _cleanup_json_ json_t *arr = NULL;
        char err[256];
        redisContext *c;
        int64_t limit = LIST_LIMIT_DEFAULT;
        int r;

        if (service && !name_is_valid(service)) {
                http_reply_error(req, 400, "bad_request", "service: not a valid name");
                return;
        }
        if (limit_s && (parse_int64(limit_s, &limit) < 0 || limit < 1 || limit > LIST_LIMIT_MAX)) {
                http_reply_error(req, 400, "bad_request", "limit: expected an integer from 1 to %d", LIST_LIMIT_MAX);
                return;
        }
        k = service ? key_deployments_service(req->s->ns, service) : key_deployments(req->s->ns);
        arr = json_array();
        if (!k || !arr) {
                http_reply_error(req, 500, "internal", "out of memory");
                return;
        }
        if (!redis_ready(req, "deployments", &c))
                return;
        r = redis_command(c, &ids, err, sizeof err, "ZREVRANGE %s 0 %" PRId64, k, limit - 1);
        if (r < 0) {
                redis_failed(req, "deployments", r, err);
                return;
        }
        for (size_t i = 0; ids->type == REDIS_REPLY_ARRAY && i < ids->elements; i++) {
                if (ids->element[i]->type != REDIS_REPLY_STRING || !name_is_valid(ids->element[i]->str) ||
                    append_read(c, req->s->ns, ids->element[i]->str) < 0) {
                        http_reply_error(req, 500, "internal", "out of memory");
                        rconn_reset();
                        return;
                }
        }
        for (size_t i = 0; ids->type == REDIS_REPLY_ARRAY && i < ids->elements; i++) {
                _cleanup_reply_ redisReply *rep = NULL;
                if (redis_ctx_get_reply(c, (void **) &rep) != REDIS_OK) {
                        rconn_reset();
                        http_reply_unavailable(req, "deployments");
                        return;
                }
                int rr;
                json_t *j = record_to_public(rep, &rr);
                if (j)
                        json_array_append_new(arr, j);
        }
        http_reply_json(req, 200, json_pack("{s:O}", "deployments", arr));
}

void api_deployments_get(struct request *req) {
        redisContext *c;

        if (!redis_ready(req, "deployments", &c))
                return;
        reply_record(req, c, 200, req->param);
}

void api_deployments_events(struct request *req) {
        _cleanup_free_ char *k = key_deployment(req->s->ns, req->param);
        _cleanup_reply_ redisReply *rep = NULL;
        const char *last = http_header(req, "Last-Event-ID");
        uint64_t last_seq = 0;
        char err[256];
        redisContext *c;
        int r;

        if (last && *last && parse_uint64(last, &last_seq) < 0) {
                http_reply_error(req, 400, "bad_request", "Last-Event-ID: expected a number (an event's id:)");
                return;
        }
        if (!k) {
                http_reply_error(req, 500, "internal", "out of memory");
                return;
        }
        if (!redis_ready(req, "events", &c))
                return;
        r = redis_command(c, &rep, err, sizeof err, "EXISTS %s", k);
        if (r < 0) {
                redis_failed(req, "events", r, err);
                return;
        }
        if (rep->type != REDIS_REPLY_INTEGER || rep->integer == 0) {
                http_reply_error(req, 404, "not_found", "no deployment '%s'", req->param);
                return;
        }
        sse_hub_attach(req->s->sse, req, req->param, last_seq);
}

static void control(struct request *req, const char *action) {
        struct server *s = req->s;
        _cleanup_free_ char *k_rec = key_deployment(s->ns, req->param), *service = NULL, *k_active = NULL,
                            *k_set = key_deployments_active(s->ns), *k_svc = NULL, *wake = key_deployment_wake(s->ns);
        _cleanup_reply_ redisReply *svc = NULL, *rep = NULL;
        char err[256];
        redisContext *c;
        int r;

        if (!k_rec || !k_set || !wake) {
                http_reply_error(req, 500, "internal", "out of memory");
                return;
        }
        if (!redis_ready(req, "deployments", &c))
                return;
        r = redis_command(c, &svc, err, sizeof err, "HGET %s service", k_rec);
        if (r < 0) {
                redis_failed(req, "deployments", r, err);
                return;
        }
        if (svc->type != REDIS_REPLY_STRING || !name_is_valid(svc->str)) {
                http_reply_error(req, 404, "not_found", "no deployment '%s'", req->param);
                return;
        }
        k_active = key_active(s->ns, svc->str);
        k_svc = key_deployments_service(s->ns, svc->str);
        if (!k_active || !k_svc) {
                http_reply_error(req, 500, "internal", "out of memory");
                return;
        }
        const char *argv[] = { "EVAL", control_script, "4", k_rec, k_active, k_set, k_svc, action, req->param, wake };
        r = redis_commandargv(c, &rep, err, sizeof err, (int) ELEMENTSOF(argv), argv, NULL);
        if (r < 0) {
                redis_failed(req, "deployments", r, err);
                return;
        }
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 || rep->element[0]->type != REDIS_REPLY_STRING) {
                http_reply_error(req, 500, "internal", "unexpected reply from Redis");
                return;
        }
        if (strcmp(rep->element[0]->str, "notfound") == 0) {
                http_reply_error(req, 404, "not_found", "no deployment '%s'", req->param);
                return;
        }
        if (strcmp(rep->element[0]->str, "conflict") == 0) {
                http_reply_error(req, 409, "conflict", "cannot %s deployment %s: %s", action, req->param,
                                 rep->element[1]->type == REDIS_REPLY_STRING ? rep->element[1]->str : "?");
                return;
        }
        log_info("Deployment %s: %s requested (token %s)", req->param, action,
                 req->token_name ? req->token_name : "-");
        reply_record(req, c, 202, req->param);
}

void api_deployments_pause(struct request *req) {
        control(req, "pause");
}

void api_deployments_resume(struct request *req) {
        control(req, "resume");
}

void api_deployments_cancel(struct request *req) {
        control(req, "cancel");
}

void api_deployments_revert(struct request *req) {
        control(req, "revert");
}

/* ---- /v1/migrations ---- */

static const char *pick_migrator(struct request *req, const char *service, char **ret_host) {
        struct fleet_snapshot *snap = fleet_snapshot_get(req->s->fleet);
        const char *id = NULL;

        *ret_host = NULL;
        for (size_t i = 0; i < snap->n && !id; i++) {
                const struct fleet_entry *e = &snap->entries[i];
                if (e->info->service && strcmp(e->info->service, service) == 0 &&
                    strcmp(fleet_entry_state(e), "healthy") == 0 && e->info->host && name_is_valid(e->info->host)) {
                        id = strdup(e->info->id);
                        *ret_host = strdup(e->info->host);
                }
        }
        fleet_snapshot_unref(snap);
        return id;
}

void api_migrations_run(struct request *req) {
        struct server *s = req->s;
        const char *service, *version;
        const char *phase = json_string_value(json_object_get(req->json, "phase"));
        _cleanup_free_ char *k_active = NULL, *k_mig = NULL, *host = NULL, *instance = NULL, *ts = NULL;
        _cleanup_(command_freep) struct command *cmd = NULL;
        _cleanup_reply_ redisReply *act = NULL, *rep = NULL;
        char err[256], when[40];
        redisContext *c;
        int r;

        if (!body_service_version(req, &service, &version))
                return;
        if (json_object_get(req->json, "phase") && !json_is_null(json_object_get(req->json, "phase")) &&
            !command_phase_is_valid(phase)) {
                http_reply_error(req, 400, "bad_request", "phase: must be one of pre, post, all");
                return;
        }
        if (!phase)
                phase = "all";
        if (!atomic_load(&s->redis_up) || !fleet_is_synced(s->fleet)) {
                http_reply_unavailable(req, "migrations");
                return;
        }
        k_active = key_active(s->ns, service);
        k_mig = key_migration(s->ns, service);
        if (!k_active || !k_mig) {
                http_reply_error(req, 500, "internal", "out of memory");
                return;
        }
        if (!redis_ready(req, "migrations", &c))
                return;
        r = redis_command(c, &act, err, sizeof err, "GET %s", k_active);
        if (r < 0) {
                redis_failed(req, "migrations", r, err);
                return;
        }
        if (act->type == REDIS_REPLY_STRING) {
                http_reply_error(req, 409, "conflict", "service %s has an active deployment: %s (it runs its own migrations)",
                                 service, act->str);
                return;
        }
        instance = (char *) pick_migrator(req, service, &host);
        if (!instance || !host) {
                http_reply_error(req, 409, "conflict", "service %s has no healthy instance to run the migration on",
                                 service);
                return;
        }
        if (command_new(COMMAND_MIGRATE, instance, version, NULL, &cmd) < 0 || command_set_phase(cmd, phase) < 0) {
                http_reply_error(req, 500, "internal", "out of memory");
                return;
        }
        r = command_enqueue(c, s->ns, host, cmd, err, sizeof err);
        if (r < 0) {
                redis_failed(req, "migrations", r, err);
                return;
        }
        ts = strdup_printf("%" PRIu64, cmd->created_at_ms);
        r = redis_command(c, &rep, err, sizeof err,
                          "HSET %s command %s service %s version %s phase %s instance %s host %s deployment %s "
                          "requested_at %s",
                          k_mig, cmd->id, service, version, phase, instance, host, "", ts ? ts : "0");
        if (r < 0) {
                redis_failed(req, "migrations", r, err);
                return;
        }
        log_info("Migration of %s to %s (phase %s) sent to %s (command %s, token %s)", service, version, phase,
                 instance, cmd->id, req->token_name ? req->token_name : "-");
        format_rfc3339(cmd->created_at_ms * USEC_PER_MSEC, when, sizeof when);
        http_reply_json(req, 202,
                        json_pack("{s:{s:s,s:s,s:s,s:s,s:s,s:n,s:s,s:s}}", "migration", "service", service, "version",
                                  version, "phase", phase, "instance", instance, "command", cmd->id, "deployment",
                                  "state", "queued", "requested_at", when));
}

static json_t *ms_time(const char *ms) {
        uint64_t v;
        char ts[40];

        if (!ms || parse_uint64(ms, &v) < 0 || v == 0)
                return json_null();
        return json_string(format_rfc3339(v * USEC_PER_MSEC, ts, sizeof ts));
}

/* The last migration run: m is the migration:SERVICE hash, res the command's
 * result hash (empty while queued). */
static json_t *migration_to_json(const char *service, const char *cmd, const redisReply *m, const redisReply *res) {
        const char *finished = redis_reply_field(res, "finished_at"), *state = redis_reply_field(res, "state");
        const char *dep = redis_reply_field(m, "deployment"), *exit_code = redis_reply_field(res, "exit_code");
        int64_t code;

        if (!finished)
                state = state ? "running" : "queued";
        return json_pack("{s:s,s:s?,s:s?,s:o,s:s?,s:s,s:s?,s:o,s:s?,s:s?,s:o,s:o}", "service", service, "version",
                         redis_reply_field(m, "version"), "phase", redis_reply_field(m, "phase"), "deployment",
                         dep && *dep ? json_string(dep) : json_null(), "instance", redis_reply_field(m, "instance"),
                         "command", cmd, "state", state, "exit_code",
                         finished && exit_code && parse_int64(exit_code, &code) == 0 ? json_integer((json_int_t) code)
                                                                                    : json_null(),
                         "output", redis_reply_field(res, "output"), "error", redis_reply_field(res, "error"),
                         "requested_at", ms_time(redis_reply_field(m, "requested_at")), "finished_at",
                         ms_time(finished));
}

/* The host whose agent ran the migration of record m: its "host" field, or
 * (a record of coord 0.1) where the fleet has its instance now; caller frees. */
static char *migration_host(struct request *req, const redisReply *m) {
        const char *host = redis_reply_field(m, "host"), *instance = redis_reply_field(m, "instance");
        struct fleet_snapshot *snap;
        const struct fleet_entry *e;
        char *ret = NULL;

        if (host && name_is_valid(host))
                return strdup(host);
        if (!instance || !name_is_valid(instance))
                return NULL;
        snap = fleet_snapshot_get(req->s->fleet);
        e = fleet_snapshot_find(snap, instance);
        if (e && e->info->host && name_is_valid(e->info->host))
                ret = strdup(e->info->host);
        fleet_snapshot_unref(snap);
        return ret;
}

/* The migrate command's result hash (HGETALL form; empty while queued). */
static int migration_result(struct request *req, redisContext *c, const redisReply *m, const char *cmd,
                            redisReply **ret, char *err, size_t errlen) {
        _cleanup_free_ char *host = migration_host(req, m), *kl = key_command_legacy(req->s->ns, cmd), *kc = NULL;

        kc = host ? key_agent_result(req->s->ns, host, cmd) : NULL;
        if (!kl || (host && !kc))
                return -ENOMEM;
        return redis_commandargv(c, ret, err, errlen, 5,
                                 (const char *[]) { "EVAL", command_result_read_script, "2", kc ? kc : kl, kl }, NULL);
}

void api_migrations_get(struct request *req) {
        _cleanup_free_ char *k = key_migration(req->s->ns, req->param);
        _cleanup_reply_ redisReply *m = NULL, *res = NULL;
        const char *cmd;
        char err[256];
        redisContext *c;
        int r;

        if (!k) {
                http_reply_error(req, 500, "internal", "out of memory");
                return;
        }
        if (!redis_ready(req, "migrations", &c))
                return;
        r = redis_command(c, &m, err, sizeof err, "HGETALL %s", k);
        if (r < 0) {
                redis_failed(req, "migrations", r, err);
                return;
        }
        cmd = redis_reply_field(m, "command");
        if (!cmd || !name_is_valid(cmd)) {
                http_reply_error(req, 404, "not_found", "no migration has run for service '%s'", req->param);
                return;
        }
        r = migration_result(req, c, m, cmd, &res, err, sizeof err);
        if (r == -ENOMEM) {
                http_reply_error(req, 500, "internal", "out of memory");
                return;
        }
        if (r < 0) {
                redis_failed(req, "migrations", r, err);
                return;
        }
        http_reply_json(req, 200, migration_to_json(req->param, cmd, m, res));
}
