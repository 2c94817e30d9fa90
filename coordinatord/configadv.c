/* See configadv.h. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cleanup.h"
#include "configadv.h"
#include "duration.h"
#include "keys.h"
#include "strutil.h"

#define MASK "*****"

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

bool configadv_key_is_secret(const char *key) {
        static const char *const words[] = { "password", "passwd", "pass", "pwd", "secret", "token", "apikey",
                                             "api_key", "privatekey", "private_key", "credential", NULL };
        size_t n = strlen(key);

        for (size_t w = 0; words[w]; w++) {
                size_t wl = strlen(words[w]);
                for (size_t i = 0; i + wl <= n; i++)
                        if (strncasecmp(key + i, words[w], wl) == 0)
                                return true;
        }
        return false;
}

/* Append s[0..n) to the growing buffer. */
struct sbuf {
        char *p;
        size_t len, cap;
        bool oom;
};

static void sb_add(struct sbuf *b, const char *s, size_t n) {
        if (b->oom)
                return;
        if (b->len + n + 1 > b->cap) {
                size_t nc = (b->len + n + 1) * 2;
                char *np = realloc(b->p, nc);
                if (!np) {
                        b->oom = true;
                        return;
                }
                b->p = np;
                b->cap = nc;
        }
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = '\0';
}

/* Does p start a new item of a StackExchange-style list: "name=" or "host:port"? */
static bool starts_item(const char *p) {
        size_t k = 0;

        while (p[k] == ' ')
                k++;
        if (isalpha((unsigned char) p[k])) {
                size_t j = k;
                while (isalnum((unsigned char) p[j]) || p[j] == '_')
                        j++;
                if (p[j] == '=')
                        return true;
        }
        for (size_t j = k; p[j] && p[j] != ','; j++)
                if (p[j] == ':') {
                        size_t d = j + 1;
                        while (isdigit((unsigned char) p[d]))
                                d++;
                        return d > j + 1 && (p[d] == ',' || p[d] == '\0');
                }
        return false;
}

char *configadv_mask_string(const char *s) {
        struct sbuf b = {};
        size_t n = strlen(s), i = 0;

        sb_add(&b, "", 0);
        while (i < n) {
                /* "scheme://[user:]pass@host": mask the password, everything up to the
                 * last '@' of the authority (which ends at '/', a space or ';'; RFC 3986
                 * allows ',' in a userinfo), with or without a user part. */
                if (strncmp(s + i, "://", 3) == 0) {
                        size_t start = i + 3, j = start, colon = 0, at = 0;
                        while (j < n && s[j] != '/' && s[j] != ' ' && s[j] != ';') {
                                if (s[j] == '@')
                                        at = j;
                                j++;
                        }
                        if (at) {
                                for (size_t c = start; c < at; c++)
                                        if (s[c] == ':') {
                                                colon = c;
                                                break;
                                        }
                                size_t keep = colon ? colon + 1 : start;
                                sb_add(&b, s + i, keep - i);
                                sb_add(&b, MASK, strlen(MASK));
                                i = at;
                                continue;
                        }
                }
                /* "password=..." / "pwd=..." at the start or after , ; or a space. */
                if (i == 0 || s[i - 1] == ',' || s[i - 1] == ';' || s[i - 1] == ' ') {
                        size_t kl = 0;
                        while (i + kl < n && s[i + kl] == ' ')
                                kl++;
                        const char *k = s + i + kl;
                        size_t m = 0;
                        if (strncasecmp(k, "password", 8) == 0)
                                m = 8;
                        else if (strncasecmp(k, "pwd", 3) == 0)
                                m = 3;
                        if (m) {
                                size_t e = m;
                                while (k[e] == ' ')
                                        e++;
                                if (k[e] == '=') {
                                        size_t v = i + kl + e + 1, end = v;
                                        /* As the StackExchange parser reads it: a ',' ends the
                                         * value only before "option=" or "host:port". */
                                        while (end < n && s[end] != ';' && !(s[end] == ',' && starts_item(s + end + 1)))
                                                end++;
                                        sb_add(&b, s + i, v - i);
                                        sb_add(&b, MASK, strlen(MASK));
                                        i = end;
                                        continue;
                                }
                        }
                }
                sb_add(&b, s + i, 1);
                i++;
        }
        if (b.oom) {
                free(b.p);
                return NULL;
        }
        return b.p;
}

static json_t *mask_rec(const json_t *v, int depth) {
        if (depth > CONFIG_MAX_DEPTH + 2)
                return json_string(MASK);
        if (json_is_object(v)) {
                json_t *o = json_object();
                const char *k;
                json_t *x;
                if (!o)
                        return NULL;
                json_object_foreach((json_t *) v, k, x) {
                        json_t *m = configadv_key_is_secret(k) && !json_is_null(x) ? json_string(MASK)
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
                _cleanup_free_ char *m = configadv_mask_string(json_string_value(v));
                return m ? json_string(m) : NULL;
        }
        return json_deep_copy(v);
}

json_t *configadv_mask(const json_t *v) {
        return mask_rec(v, 0);
}

static int validate_rec(const json_t *v, int depth, char *path, size_t pathsize, char *errbuf, size_t errlen) {
        size_t pl = strlen(path);

        if (depth > CONFIG_MAX_DEPTH) {
                snprintf(errbuf, errlen, "%s: nested deeper than %d levels", *path ? path : "config", CONFIG_MAX_DEPTH);
                return -EINVAL;
        }
        if (json_is_object(v)) {
                const char *k;
                json_t *x;
                json_object_foreach((json_t *) v, k, x) {
                        size_t kl = strlen(k);
                        bool bad = kl == 0 || kl > 128;
                        for (size_t i = 0; i < kl && !bad; i++)
                                if ((unsigned char) k[i] < 0x20 || k[i] == 0x7f || k[i] == '=')
                                        bad = true;
                        if (bad) {
                                /* Name the key, escaped and shortened: it may hold control characters. */
                                char shown[4 * 40 + 4];
                                size_t o = 0;
                                for (size_t i = 0; i < kl && i < 40; i++) {
                                        unsigned char ch = (unsigned char) k[i];
                                        if (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\')
                                                o += (size_t) snprintf(shown + o, sizeof shown - o, "\\x%02x", ch);
                                        else
                                                shown[o++] = (char) ch;
                                }
                                shown[o] = '\0';
                                snprintf(errbuf, errlen,
                                         "%s: key \"%s%s\" cannot be advertised (keys are 1-128 bytes without '=' or "
                                         "control characters)",
                                         *path ? path : "config", shown, kl > 40 ? "..." : "");
                                return -EINVAL;
                        }
                        snprintf(path + pl, pathsize - pl, "%s%s", pl ? "." : "", k);
                        int r = validate_rec(x, depth + 1, path, pathsize, errbuf, errlen);
                        path[pl] = '\0';
                        if (r < 0)
                                return r;
                }
        } else if (json_is_array(v)) {
                size_t i;
                json_t *x;
                json_array_foreach(v, i, x) {
                        snprintf(path + pl, pathsize - pl, "[%zu]", i);
                        int r = validate_rec(x, depth + 1, path, pathsize, errbuf, errlen);
                        path[pl] = '\0';
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

int configadv_validate(const json_t *config, char *errbuf, size_t errlen) {
        char path[512] = "";

        if (!json_is_object(config)) {
                snprintf(errbuf, errlen, "config: expected an object");
                return -EINVAL;
        }
        return validate_rec(config, 0, path, sizeof path, errbuf, errlen);
}

int configadv_get(redisContext *c, const char *ns, const char *service, int64_t *ret_version, json_t **ret_config,
                  int64_t *ret_updated_at_ms) {
        _cleanup_free_ char *k = key_config(ns, service);
        _cleanup_reply_ redisReply *r = NULL;
        int64_t version, updated = 0;
        json_t *cfg;

        if (!k)
                return -ENOMEM;
        r = redisCommand(c, "HMGET %s version config updated_at", k);
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
        r = redisCommandArgv(c, (int) ELEMENTSOF(argv), argv, NULL);
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
