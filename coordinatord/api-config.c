/* /v1/config/{service}: advertised distributed-mode configuration. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "configadv.h"
#include "coordinatord.h"
#include "duration.h"
#include "fleet.h"
#include "jsonutil.h"
#include "keys.h"
#include "log.h"
#include "parse-util.h"
#include "rconn.h"
#include "redis.h"
#include "strutil.h"

/* How many running (not lost, not stopped) instances of service there are, and how many of
 * them report exactly config_version == version, read live from their hashes.  Equality, not
 * >=: after Redis lost its data versions restart at 1 while agents still report older higher
 * numbers, which must not count as applied. */
static int count_applied(struct request *req, redisContext *c, const char *service, int64_t version,
                         int64_t *ret_applied, int64_t *ret_total) {
        struct fleet_snapshot *snap = fleet_snapshot_get(req->s->fleet);
        int64_t applied = 0, total = 0;
        int r = 0;

        for (size_t i = 0; i < snap->n; i++) {
                const struct fleet_entry *e = &snap->entries[i];
                if (!e->info->service || strcmp(e->info->service, service) != 0)
                        continue;
                /* Lost and stopped instances cannot apply anything: they do not count. */
                const char *st = fleet_entry_state(e);
                if (strcmp(st, "lost") == 0 || strcmp(st, "stopped") == 0)
                        continue;
                _cleanup_free_ char *k = key_instance(req->s->ns, e->info->id);
                if (!k || redisAppendCommand(c, "HGET %s config_version", k) != REDIS_OK) {
                        r = -ENOMEM;
                        break;
                }
                total++;
        }
        fleet_snapshot_unref(snap);
        for (int64_t i = 0; i < total; i++) {
                redisReply *rep = NULL;
                if (redis_ctx_get_reply(c, (void **) &rep) != REDIS_OK) {
                        rconn_reset();
                        return -EIO;
                }
                int64_t v;
                if (r == 0 && rep->type == REDIS_REPLY_STRING && parse_int64(rep->str, &v) == 0 && v == version)
                        applied++;
                freeReplyObject(rep);
        }
        if (r < 0)
                return r;
        *ret_applied = applied;
        *ret_total = total;
        return 0;
}

void api_config_get(struct request *req) {
        const char *reveal_s = http_query(req, "reveal");
        bool reveal = false;
        int64_t version, updated, applied, total;
        json_t *cfg = NULL;
        redisContext *c;
        char ts[40], etag[40];
        int r;

        if (reveal_s && parse_bool(reveal_s, &reveal) < 0) {
                http_reply_error(req, 400, "bad_request", "reveal: expected true or false");
                return;
        }
        if (reveal && req->role < ROLE_ADMIN) {
                http_reply_error(req, 403, "forbidden", "reveal=true needs the admin role");
                return;
        }
        if (!atomic_load(&req->s->redis_up) || rconn_get(&c) < 0) {
                http_reply_unavailable(req, "config");
                return;
        }
        r = configadv_get(c, req->s->ns, req->param, &version, &cfg, &updated);
        if (r == -ENOENT) {
                http_reply_error(req, 404, "not_found", "no config advertised for service '%s'", req->param);
                return;
        }
        if (r < 0) {
                rconn_reset();
                http_reply_unavailable(req, "config");
                return;
        }
        _cleanup_json_ json_t *shown = reveal ? json_incref(cfg) : configadv_mask(cfg);
        json_decref(cfg);
        if (!shown) {
                http_reply_error(req, 500, "internal", "out of memory");
                return;
        }
        r = count_applied(req, c, req->param, version, &applied, &total);
        if (r < 0) {
                http_reply_unavailable(req, "config");
                return;
        }
        format_rfc3339((uint64_t) updated * 1000, ts, sizeof ts);
        snprintf(etag, sizeof etag, "\"%lld\"", (long long) version);
        const char *hdr[] = { "ETag", etag, NULL };
        http_reply_json_headers(req, 200,
                                json_pack("{s:s,s:I,s:O,s:I,s:I,s:s}", "service", req->param, "version",
                                          (json_int_t) version, "config", shown, "applied", (json_int_t) applied,
                                          "instances", (json_int_t) total, "updated_at", ts),
                                hdr);
}

/* If-Match: N, "N", W/"N" or *; NULL when absent; -EINVAL when malformed. */
static int parse_if_match(const char *h, char *buf, size_t size) {
        uint64_t v;
        size_t n;

        while (*h == ' ')
                h++;
        if (strcmp(h, "*") == 0) {
                snprintf(buf, size, "*");
                return 0;
        }
        if (strncmp(h, "W/", 2) == 0)
                h += 2;
        n = strlen(h);
        while (n > 0 && h[n - 1] == ' ')
                n--;
        if (n >= 2 && h[0] == '"' && h[n - 1] == '"') {
                h++;
                n -= 2;
        }
        if (n == 0 || n >= size)
                return -EINVAL;
        memcpy(buf, h, n);
        buf[n] = '\0';
        if (parse_uint64(buf, &v) < 0)
                return -EINVAL;
        snprintf(buf, size, "%llu", (unsigned long long) v);
        return 0;
}

void api_config_put(struct request *req) {
        json_t *cfg = json_object_get(req->json, "config");
        const char *im = http_header(req, "If-Match");
        char ifm[32] = "", err[512];
        int64_t version = 0, current = 0;
        redisContext *c;
        int r;

        if (!cfg) {
                http_reply_error(req, 400, "bad_request", "config: missing");
                return;
        }
        if (!json_is_object(cfg)) {
                http_reply_error(req, 400, "bad_request", "config: expected an object");
                return;
        }
        if (im && parse_if_match(im, ifm, sizeof ifm) < 0) {
                http_reply_error(req, 400, "bad_request", "If-Match: expected a version number");
                return;
        }
        if (configadv_validate(cfg, err, sizeof err) < 0) {
                http_reply_error(req, 422, "unprocessable", "%s", err);
                return;
        }
        if (!atomic_load(&req->s->redis_up) || rconn_get(&c) < 0) {
                http_reply_unavailable(req, "config");
                return;
        }
        r = configadv_put(c, req->s->ns, req->param, cfg, im ? ifm : NULL, &version, &current);
        if (r == -ESTALE) {
                if (strcmp(ifm, "*") == 0)
                        http_reply_error(req, 409, "conflict", "If-Match: *: no config exists for service '%s'",
                                         req->param);
                else
                        http_reply_error(req, 409, "conflict", "If-Match: version %s is stale (current is %lld)",
                                         ifm, (long long) current);
                return;
        }
        if (r == -ENOMEM) {
                http_reply_error(req, 500, "internal", "out of memory");
                return;
        }
        if (r < 0) {
                rconn_reset();
                http_reply_unavailable(req, "config");
                return;
        }
        log_info("Config of service %s stored as version %lld (token %s)", req->param, (long long) version,
                 req->token_name ? req->token_name : "-");
        char etag[40];
        snprintf(etag, sizeof etag, "\"%lld\"", (long long) version);
        const char *hdr[] = { "ETag", etag, NULL };
        http_reply_json_headers(req, 200, json_pack("{s:I}", "version", (json_int_t) version), hdr);
}
