/* See state.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "jsonutil.h"
#include "state.h"
#include "strutil.h"

#define STATE_FILE_MAX (256 * 1024)

int state_init(const char *state_dir) {
        _cleanup_free_ char *a = strdup_printf("%s/instances", state_dir);
        _cleanup_free_ char *b = strdup_printf("%s/commands", state_dir);
        int r;

        if (!a || !b)
                return -ENOMEM;
        r = fileio_mkdir_p(a, 0750);
        if (r < 0)
                return r;
        r = fileio_mkdir_p(b, 0750);
        if (r < 0)
                return r;
        return access(state_dir, W_OK) < 0 ? -errno : 0;
}

/* STATE_DIR/SUB/ID.SUFFIX: where the state of ID of one kind is kept. */
static char *state_path(const char *state_dir, const char *sub, const char *id, const char *suffix) {
        return strdup_printf("%s/%s/%s.%s", state_dir, sub, id, suffix);
}

static int read_json(const char *state_dir, const char *sub, const char *id, const char *suffix, json_t **ret) {
        _cleanup_free_ char *path = state_path(state_dir, sub, id, suffix), *s = NULL;
        json_t *j;
        int r;

        if (!path)
                return -ENOMEM;
        r = fileio_read_string(path, STATE_FILE_MAX, false, &s);
        if (r < 0)
                return r;
        j = json_loads(s, 0, NULL);
        /* Applied configs hold secrets: no copy left in freed memory. */
        explicit_bzero(s, strlen(s));
        if (!j || !json_is_object(j)) {
                json_decref(j);
                return -EBADMSG;
        }
        *ret = j;
        return 0;
}

static int write_json(const char *state_dir, const char *sub, const char *id, const char *suffix, json_t *j,
                      mode_t mode) {
        _cleanup_free_ char *path = state_path(state_dir, sub, id, suffix);
        _cleanup_free_ char *s = json_dumps(j, JSON_COMPACT);
        int r;

        if (!path || !s)
                return -ENOMEM;
        r = fileio_write_atomic(path, s, strlen(s), mode, false);
        explicit_bzero(s, strlen(s));
        return r;
}

int state_load_instance(const char *state_dir, const char *id, char **ret_version, int64_t *ret_config_version) {
        _cleanup_json_ json_t *j = NULL;
        const char *v;
        char *c;
        int r;

        r = read_json(state_dir, "instances", id, "json", &j);
        if (r < 0)
                return r;
        v = json_string_value(json_object_get(j, "version"));
        if (!v)
                return -EBADMSG;
        c = strdup(v);
        if (!c)
                return -ENOMEM;
        *ret_version = c;
        *ret_config_version = json_integer_value(json_object_get(j, "config_version"));
        return 0;
}

int state_save_instance(const char *state_dir, const char *id, const char *version, int64_t config_version) {
        _cleanup_json_ json_t *j = json_pack("{s:s, s:I}", "version", version, "config_version",
                                             (json_int_t) config_version);

        return write_json(state_dir, "instances", id, "json", j, 0640);
}

int state_load_config(const char *state_dir, const char *id, json_t **ret) {
        _cleanup_json_ json_t *j = NULL;
        json_t *config;
        int r;

        r = read_json(state_dir, "instances", id, "config.json", &j);
        if (r < 0)
                return r;
        config = json_object_get(j, "config");
        if (!config)
                return -EBADMSG;
        *ret = json_incref(config);
        return 0;
}

int state_save_config(const char *state_dir, const char *id, int64_t version, json_t *config) {
        _cleanup_json_ json_t *j = json_pack("{s:I, s:O}", "version", (json_int_t) version, "config", config);

        return write_json(state_dir, "instances", id, "config.json", j, 0600);
}

int state_command_get(const char *state_dir, const char *cmd_id, json_t **ret) {
        return read_json(state_dir, "commands", cmd_id, "json", ret);
}

int state_command_put(const char *state_dir, const char *cmd_id, json_t *record) {
        return write_json(state_dir, "commands", cmd_id, "json", record, 0640);
}

int state_command_remove(const char *state_dir, const char *cmd_id) {
        _cleanup_free_ char *path = state_path(state_dir, "commands", cmd_id, "json");

        if (!path)
                return -ENOMEM;
        if (unlink(path) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}
