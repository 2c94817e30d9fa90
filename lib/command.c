/* See command.h. */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "duration.h"
#include "jsonutil.h"
#include "keys.h"
#include "redis.h"
#include "strutil.h"

const char command_result_script[] =
        "local n = 0\n"
        "if redis.call('HEXISTS', KEYS[1], 'finished_at') == 0 then\n"
        "  redis.call('HSET', KEYS[1], unpack(ARGV, 5))\n"
        "  redis.call('PEXPIRE', KEYS[1], ARGV[4])\n"
        "  redis.call('PUBLISH', ARGV[3], ARGV[2])\n"
        "  n = 1\n"
        "end\n"
        "redis.call('LREM', KEYS[2], 1, ARGV[1])\n"
        "return n\n";

const char command_result_read_script[] =
        "local k = KEYS[1]\n"
        "if redis.call('EXISTS', k) == 0 then k = KEYS[2] end\n"
        "if #ARGV == 0 then return redis.call('HGETALL', k) end\n"
        "return redis.call('HMGET', k, unpack(ARGV))\n";

static const char *const command_type_table[_COMMAND_TYPE_MAX] = {
        [COMMAND_DRAIN] = "drain",
        [COMMAND_UNDRAIN] = "undrain",
        [COMMAND_DEPLOY] = "deploy",
        [COMMAND_MIGRATE] = "migrate",
        [COMMAND_RESTART] = "restart",
        [COMMAND_APPLY_CONFIG] = "apply-config",
};
DEFINE_STRING_TABLE_LOOKUP(command_type, enum command_type, _COMMAND_TYPE_MAX)

bool command_type_needs_version(enum command_type t) {
        return t == COMMAND_DEPLOY || t == COMMAND_MIGRATE || t == COMMAND_APPLY_CONFIG;
}

struct command *command_free(struct command *c) {
        if (!c)
                return NULL;
        free(c->id);
        free(c->instance);
        free(c->version);
        free(c->deployment);
        free(c->phase);
        free(c);
        return NULL;
}

bool command_phase_is_valid(const char *phase) {
        return phase && (strcmp(phase, "pre") == 0 || strcmp(phase, "post") == 0 || strcmp(phase, "all") == 0);
}

int command_set_id(struct command *c, const char *id) {
        char *d;

        assert(c);
        if (!name_is_valid(id))
                return -EINVAL;
        d = strdup(id);
        if (!d)
                return -ENOMEM;
        free(c->id);
        c->id = d;
        return 0;
}

int command_set_phase(struct command *c, const char *phase) {
        char *d;

        assert(c);
        if (!command_phase_is_valid(phase) || c->type != COMMAND_MIGRATE)
                return -EINVAL;
        d = strdup(phase);
        if (!d)
                return -ENOMEM;
        free(c->phase);
        c->phase = d;
        return 0;
}

static int dup_opt(const char *s, char **ret) {
        if (!s) {
                *ret = NULL;
                return 0;
        }
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

int command_new(enum command_type type, const char *instance, const char *version, const char *deployment,
                struct command **ret) {
        _cleanup_(command_freep) struct command *c = NULL;
        char id[33];
        int r;

        if (type < 0 || type >= _COMMAND_TYPE_MAX)
                return -EINVAL;
        r = random_hex(id, 16);
        if (r < 0)
                return r;
        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->type = type;
        c->created_at_ms = now_realtime_msec();
        c->id = strdup(id);
        if (!c->id || dup_opt(instance, &c->instance) < 0 || dup_opt(version, &c->version) < 0 ||
            dup_opt(deployment, &c->deployment) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(c);
        return 0;
}

char *command_encode(const struct command *c) {
        _cleanup_json_ json_t *j = json_object();

        if (!j)
                return NULL;
        json_object_set_new(j, "id", json_string(c->id));
        json_object_set_new(j, "type", json_string(command_type_to_string(c->type)));
        if (c->instance)
                json_object_set_new(j, "instance", json_string(c->instance));
        if (c->version)
                json_object_set_new(j, "version", json_string(c->version));
        if (c->deployment)
                json_object_set_new(j, "deployment", json_string(c->deployment));
        if (c->phase)
                json_object_set_new(j, "phase", json_string(c->phase));
        json_object_set_new(j, "created_at", json_integer((json_int_t) c->created_at_ms));
        return json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
}

#define FAIL(...)                                                  \
        do {                                                       \
                if (errbuf && errlen)                              \
                        snprintf(errbuf, errlen, __VA_ARGS__);     \
                return -EINVAL;                                    \
        } while (0)

static int get_opt_string(json_t *j, const char *key, const char **ret, char *errbuf, size_t errlen) {
        json_t *v = json_object_get(j, key);

        if (!v || json_is_null(v)) {
                *ret = NULL;
                return 0;
        }
        if (!json_is_string(v))
                FAIL("command: %s: expected a string", key);
        *ret = json_string_value(v);
        return 0;
}

int command_decode(const char *json, size_t len, struct command **ret, char *errbuf, size_t errlen) {
        _cleanup_json_ json_t *j = NULL;
        _cleanup_(command_freep) struct command *c = NULL;
        const char *id, *type, *instance, *version, *deployment, *phase, *key;
        json_t *v;
        json_error_t jerr;
        int t;

        if (len > COMMAND_JSON_MAX)
                FAIL("command: larger than %d bytes", COMMAND_JSON_MAX);
        j = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!j)
                FAIL("command: invalid JSON: %s", jerr.text);
        if (!json_is_object(j))
                FAIL("command: expected a JSON object");
        json_object_foreach(j, key, v) {
                static const char *const known[] = { "id", "type", "instance", "version", "deployment",
                                                     "phase", "created_at" };
                bool ok = false;
                for (size_t i = 0; i < ELEMENTSOF(known); i++)
                        ok = ok || strcmp(key, known[i]) == 0;
                if (!ok)
                        FAIL("command: %.64s: unknown field", key);
        }
        if (get_opt_string(j, "id", &id, errbuf, errlen) < 0 || get_opt_string(j, "type", &type, errbuf, errlen) < 0 ||
            get_opt_string(j, "instance", &instance, errbuf, errlen) < 0 ||
            get_opt_string(j, "version", &version, errbuf, errlen) < 0 ||
            get_opt_string(j, "deployment", &deployment, errbuf, errlen) < 0 ||
            get_opt_string(j, "phase", &phase, errbuf, errlen) < 0)
                return -EINVAL;
        if (!id)
                FAIL("command: id: missing");
        if (!name_is_valid(id))
                FAIL("command: id: invalid");
        if (!type)
                FAIL("command: type: missing");
        t = command_type_from_string(type);
        if (t < 0)
                FAIL("command: type: unknown type '%.32s'", type);
        if (instance && !name_is_valid(instance))
                FAIL("command: instance: invalid name");
        if (command_type_needs_version((enum command_type) t) && !version)
                FAIL("command: version: required for %s", type);
        if (version && !version_is_valid(version))
                FAIL("command: version: invalid version");
        if (deployment && (strlen(deployment) > 128 || !*deployment))
                FAIL("command: deployment: invalid");
        if (phase && !command_phase_is_valid(phase))
                FAIL("command: phase: '%.16s' is not one of pre, post, all", phase);
        if (phase && t != COMMAND_MIGRATE)
                FAIL("command: phase: only valid for migrate");

        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->type = (enum command_type) t;
        v = json_object_get(j, "created_at");
        if (json_is_integer(v) && json_integer_value(v) > 0)
                c->created_at_ms = (uint64_t) json_integer_value(v);
        c->id = strdup(id);
        if (!c->id || dup_opt(instance, &c->instance) < 0 || dup_opt(version, &c->version) < 0 ||
            dup_opt(deployment, &c->deployment) < 0 || dup_opt(phase, &c->phase) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(c);
        return 0;
}

int command_enqueue(redisContext *c, const char *ns, const char *host, const struct command *cmd, char *errbuf,
                    size_t errlen) {
        _cleanup_free_ char *json = NULL, *queue = NULL, *wake = NULL;
        _cleanup_reply_ redisReply *r1 = NULL, *r2 = NULL;
        int r;

        if (!name_is_valid(ns) || !name_is_valid(host))
                return -EINVAL;
        json = command_encode(cmd);
        queue = key_agent_commands(ns, host);
        wake = key_agent_wake(ns, host);
        if (!json || !queue || !wake)
                return -ENOMEM;
        r = redis_command(c, &r1, errbuf, errlen, "LPUSH %s %s", queue, json);
        if (r < 0)
                return r;
        return redis_command(c, &r2, errbuf, errlen, "PUBLISH %s %s", wake, cmd->id);
}
