/* See configadv.h. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "configadv.h"
#include "duration.h"
#include "jsonutil.h"
#include "keys.h"
#include "parse-util.h"
#include "redis.h"
#include "secret.h"
#include "strutil.h"

static const char put_script[] =
        "local cur = tonumber(redis.call('HGET', KEYS[1], 'version') or '0') or 0\n"
        "if ARGV[2] == '*' then\n"
        "  if cur == 0 then return {-1, cur} end\n"
        "elseif ARGV[2] ~= '' and tonumber(ARGV[2]) ~= cur then\n"
        "  return {-1, cur}\n"
        "end\n"
        "local v = cur + 1\n"
        "redis.call('HSET', KEYS[1], 'version', v, 'config', ARGV[1], 'updated_at', ARGV[3])\n"
        "redis.call('PUBLISH', KEYS[2], ARGV[4])\n"
        "return {v, cur}\n";

static json_t *mask_rec(const json_t *v, int depth) {
        if (depth > CONFIG_MAX_DEPTH + 2)
                return json_string(SECRET_MASK);
        if (json_is_object(v)) {
                json_t *o = json_object();
                const char *k;
                json_t *x;
                if (!o)
                        return NULL;
                json_object_foreach((json_t *) v, k, x) {
                        json_t *m = secret_key_is_secret(k) && !json_is_null(x) ? json_string(SECRET_MASK)
                                                                                : mask_rec(x, depth + 1);
                        if (!m || json_object_set_new(o, k, m) < 0) {
                                json_decref(o);
                                return NULL;
                        }
                }
                return o;
        }
        if (json_is_array(v)) {
                json_t *a = json_array();
                size_t i;
                json_t *x;
                if (!a)
                        return NULL;
                json_array_foreach(v, i, x) {
                        json_t *m = mask_rec(x, depth + 1);
                        if (!m || json_array_append_new(a, m) < 0) {
                                json_decref(a);
                                return NULL;
                        }
                }
                return a;
        }
        if (json_is_string(v)) {
                _cleanup_free_ char *m = secret_mask_string(json_string_value(v));
                return m ? json_string(m) : NULL;
        }
        return json_deep_copy(v);
}

json_t *configadv_mask(const json_t *v) {
        return mask_rec(v, 0);
}

/* A key the agents cannot render: named escaped and shortened, since it may
 * hold control characters. */
static int bad_key(const char *path, const char *k, char *errbuf, size_t errlen) {
        size_t kl = strlen(k), o = 0;
        char shown[4 * 40 + 4];

        for (size_t i = 0; i < kl && i < 40; i++) {
                unsigned char ch = (unsigned char) k[i];
                if (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\')
                        o += (size_t) snprintf(shown + o, sizeof shown - o, "\\x%02x", ch);
                else
                        shown[o++] = (char) ch;
        }
        shown[o] = '\0';
        snprintf(errbuf, errlen,
                 "%s: key \"%s%s\" cannot be advertised (keys are 1-128 bytes without '=' or control characters)",
                 *path ? path : "config", shown, kl > 40 ? "..." : "");
        return -EINVAL;
}

static bool key_renderable(const char *k) {
        size_t kl = strlen(k);

        if (kl == 0 || kl > 128)
                return false;
        for (size_t i = 0; i < kl; i++)
                if ((unsigned char) k[i] < 0x20 || k[i] == 0x7f || k[i] == '=')
                        return false;
        return true;
}

static int validate_rec(const json_t *v, int depth, char *path, size_t pathsize, char *errbuf, size_t errlen) {
        size_t pl = strlen(path);
        const char *k;
        json_t *x;
        size_t i;
        int r = 0;

        if (depth > CONFIG_MAX_DEPTH) {
                snprintf(errbuf, errlen, "%s: nested deeper than %d levels", *path ? path : "config", CONFIG_MAX_DEPTH);
                return -EINVAL;
        }
        if (json_is_object(v))
                json_object_foreach((json_t *) v, k, x) {
                        if (!key_renderable(k))
                                return bad_key(path, k, errbuf, errlen);
                        snprintf(path + pl, pathsize - pl, "%s%s", pl ? "." : "", k);
                        r = validate_rec(x, depth + 1, path, pathsize, errbuf, errlen);
                        path[pl] = '\0';
                        if (r < 0)
                                return r;
                }
        else if (json_is_array(v))
                json_array_foreach(v, i, x) {
                        snprintf(path + pl, pathsize - pl, "[%zu]", i);
                        r = validate_rec(x, depth + 1, path, pathsize, errbuf, errlen);
                        path[pl] = '\0';
                        if (r < 0)
                                return r;
                }
        return 0;
}

/* Collisions: every value is rendered under a name, in an env file its keys
 * joined by "__" ("a__b"), for ASP.NET's JSON provider joined by ':' ("a:b");
 * ASP.NET compares them ignoring case.  seen maps each folded name, prefixed
 * by its kind, to [path, name] of the first value rendered under it. */
struct names {
        json_t *seen;
        char *errbuf;
        size_t errlen;
};

static int name_add(struct names *n, char kind, const char *name, const char *path) {
        _cleanup_free_ char *folded = strdup_printf("%c%s", kind, name);
        json_t *prev;

        if (!folded)
                return -ENOMEM;
        for (char *c = folded; *c; c++)
                *c = (char) tolower((unsigned char) *c);
        prev = json_object_get(n->seen, folded);
        if (!prev)
                return json_object_set_new(n->seen, folded, json_pack("[ss]", path, name)) < 0 ? -ENOMEM : 0;
        const char *prev_name = json_string_value(json_array_get(prev, 1));
        snprintf(n->errbuf, n->errlen, "keys '%s' and '%s' both %s %s%s",
                 json_string_value(json_array_get(prev, 0)), path,
                 kind == 'e' ? "render as the env name" : "name the ASP.NET configuration key", name,
                 strcmp(prev_name, name) != 0 ? " (ASP.NET ignores case)" : "");
        return -EINVAL;
}

static char *join(const char *a, const char *sep, const char *b) {
        return *a ? strdup_printf("%s%s%s", a, sep, b) : strdup(b);
}

static int names_rec(struct names *n, const json_t *v, const char *env, const char *key, const char *path);

/* The child named k (an object key or an array index) of the value at env/key/path. */
static int names_child(struct names *n, const json_t *x, const char *env, const char *key, const char *path,
                       const char *k, bool index) {
        _cleanup_free_ char *e = join(env, "__", k), *c = join(key, ":", k);
        _cleanup_free_ char *p = index ? strdup_printf("%s[%s]", path, k) : join(path, ".", k);

        if (!e || !c || !p)
                return -ENOMEM;
        return names_rec(n, x, e, c, p);
}

static int names_rec(struct names *n, const json_t *v, const char *env, const char *key, const char *path) {
        const char *k;
        json_t *x;
        size_t i;
        int r;

        if (json_is_object(v)) {
                json_object_foreach((json_t *) v, k, x)
                        if ((r = names_child(n, x, env, key, path, k, false)) < 0)
                                return r;
        } else if (json_is_array(v)) {
                json_array_foreach(v, i, x) {
                        char idx[24];
                        snprintf(idx, sizeof idx, "%zu", i);
                        if ((r = names_child(n, x, env, key, path, idx, true)) < 0)
                                return r;
                }
        } else if ((r = name_add(n, 'e', env, path)) < 0 || (r = name_add(n, 'k', key, path)) < 0)
                return r;
        return 0;
}

int configadv_validate(const json_t *config, char *errbuf, size_t errlen) {
        _cleanup_json_ json_t *seen = json_object();
        char path[512] = "";
        int r;

        if (!json_is_object(config)) {
                snprintf(errbuf, errlen, "config: expected an object");
                return -EINVAL;
        }
        r = validate_rec(config, 0, path, sizeof path, errbuf, errlen);
        if (r < 0)
                return r;
        if (!seen)
                return -ENOMEM;
        r = names_rec(&(struct names){ seen, errbuf, errlen }, config, "", "", "");
        if (r == -ENOMEM)
                snprintf(errbuf, errlen, "out of memory");
        return r;
}

int configadv_get(redisContext *c, const char *ns, const char *service, int64_t *ret_version, json_t **ret_config,
                  int64_t *ret_updated_at_ms) {
        _cleanup_free_ char *k = key_config(ns, service);
        _cleanup_reply_ redisReply *r = NULL;
        int64_t version, updated = 0;
        json_t *cfg;

        if (!k)
                return -ENOMEM;
        r = redis_ctx_command(c, "HMGET %s version config updated_at", k);
        if (!r)
                return -EIO;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 3)
                return -EPROTO;
        if (r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING)
                return -ENOENT;
        if (parse_int64(r->element[0]->str, &version) < 0)
                return -EPROTO;
        if (r->element[2]->type == REDIS_REPLY_STRING)
                (void) parse_int64(r->element[2]->str, &updated);
        cfg = json_loadb(r->element[1]->str, r->element[1]->len, 0, NULL);
        if (!cfg)
                return -EPROTO;
        *ret_version = version;
        *ret_config = cfg;
        *ret_updated_at_ms = updated;
        return 0;
}

int configadv_put(redisContext *c, const char *ns, const char *service, const json_t *config,
                  const char *if_match, int64_t *ret_version, int64_t *ret_current) {
        _cleanup_free_ char *k = key_config(ns, service), *ch = key_config_changed(ns);
        _cleanup_free_ char *doc = json_dumps(config, JSON_COMPACT);
        _cleanup_reply_ redisReply *r = NULL;
        char now[32];

        if (!k || !ch || !doc)
                return -ENOMEM;
        snprintf(now, sizeof now, "%llu", (unsigned long long) now_realtime_msec());
        const char *argv[] = { "EVAL", put_script, "2", k, ch, doc, if_match ? if_match : "", now, service };
        r = redis_ctx_commandargv(c, (int) ELEMENTSOF(argv), argv, NULL);
        if (!r)
                return -EIO;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_INTEGER ||
            r->element[1]->type != REDIS_REPLY_INTEGER)
                return -EPROTO;
        if (r->element[0]->integer < 0) {
                *ret_current = r->element[1]->integer;
                return -ESTALE;
        }
        *ret_version = r->element[0]->integer;
        *ret_current = r->element[1]->integer;
        return 0;
}
