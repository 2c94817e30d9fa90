/* The strict JSON configuration loader (lib/conf-parser.c) with both real schemas:
 * coord-agent's (agent/agent-config.c, loaded from a string) and
 * coordinatord's (coordinatord/cd-config.c, loaded from a file: a memfd).
 * Properties: a loaded configuration masks every secret (a CONFIG_SECRET field
 * shows "*****", a Redis connection string with a password shows "*****"), and
 * a secret read from a "<key>_file" shows neither in an error message nor in the
 * masked configuration.  A "<key>_file" may only name one of the fixtures below,
 * in FIXTURES ("/tmp/coord-fuzz-config/secret"): a fuzzed path must not read
 * /dev/stdin or wander the file system. */
#include <errno.h>
#include <stdbool.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent-config.h"
#include "conf-parser.h"
#include "coordinatord/cd-config.h"
#include "log.h"
#include "redis_url.h"
#include "tests/fuzz/fuzz.h"

#define FIXTURES "/tmp/coord-fuzz-config/"
/* Every secret in the fixtures starts with this. */
#define FILE_SECRET "fuzz-file-secret"

static const struct {
        const char *name, *content;
} fixtures[] = {
        { "secret", FILE_SECRET "-token-0123456789\n" },
        { "redis", "redis://:" FILE_SECRET "-redis@127.0.0.1:6379/0\n" },
        { "bad-redis", "redis://:" FILE_SECRET "-bad@h:99999/0\n" },
        { "se-redis", "h1:6379,h2:6380,password=" FILE_SECRET "-se,serviceName=m\n" },
        { "empty", "" },
        { "two-lines", FILE_SECRET "-a\n" FILE_SECRET "-b\n" },
};

static int cd_fd = -1;
static char cd_path[64];

static bool is_fixture(const char *path) {
        if (strncmp(path, FIXTURES, strlen(FIXTURES)) != 0)
                return false;
        for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++)
                if (strcmp(path + strlen(FIXTURES), fixtures[i].name) == 0)
                        return true;
        return false;
}

/* Each fixture written to a temporary file renamed into place: runs may share FIXTURES. */
static void write_fixtures(void) {
        char tmp[PATH_MAX], path[PATH_MAX];

        if (mkdir(FIXTURES, 0700) < 0 && errno != EEXIST)
                abort();
        for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++) {
                snprintf(path, sizeof path, FIXTURES "%s", fixtures[i].name);
                snprintf(tmp, sizeof tmp, "%s.%d", path, (int) getpid());
                FILE *f = fopen(tmp, "we");
                if (!f || fputs(fixtures[i].content, f) < 0 || fclose(f) != 0 || rename(tmp, path) < 0)
                        abort();
        }
}

/* Whether every string value of a "..._file" key in j names a fixture. */
static bool file_keys_ok(json_t *j, int depth) {
        const char *key;
        json_t *v;
        size_t i;

        if (depth > 64)
                return false;
        if (json_is_array(j))
                json_array_foreach(j, i, v) if (!file_keys_ok(v, depth + 1)) return false;
        json_object_foreach(j, key, v) {
                size_t kl = strlen(key);
                if (kl >= 5 && strcmp(key + kl - 5, "_file") == 0 && json_is_string(v) &&
                    !is_fixture(json_string_value(v)))
                        return false;
                if (!file_keys_ok(v, depth + 1))
                        return false;
        }
        return true;
}

static const void *at(const void *base, size_t offset) {
        return (const char *) base + offset;
}

static void check_redis_masked(const char *key, const char *value, json_t *m) {
        struct redis_url *u = NULL;

        if (!value || redis_url_parse(value, &u, NULL, 0) < 0)
                return;
        FUZZ_CHECK(json_is_string(m), "%s: masked Redis connection string missing", key);
        if (u->password)
                FUZZ_CHECK(strstr(json_string_value(m), "*****"), "%s: '%s' shown without masking its password", key,
                           json_string_value(m));
        redis_url_free(u);
}

/* cfg (following fields) against its masked JSON form m. */
static void check_masked(const struct config_field *fields, const void *cfg, json_t *m) {
        for (const struct config_field *f = fields; f->key; f++) {
                json_t *v = json_object_get(m, f->key);
                const void *p = at(cfg, f->offset);

                if (f->type == CONFIG_SECRET && *(char *const *) p)
                        FUZZ_CHECK(json_is_string(v) && strcmp(json_string_value(v), "*****") == 0,
                                   "%s: secret not masked", f->key);
                else if (f->type == CONFIG_REDIS_URL)
                        check_redis_masked(f->key, *(char *const *) p, v);
                else if (f->type == CONFIG_OBJECT)
                        check_masked(f->sub, p, v);
                else if (f->type == CONFIG_ARRAY) {
                        const void *items = *(const void *const *) p;
                        size_t n = *(const size_t *) at(p, sizeof(void *));
                        FUZZ_CHECK(json_array_size(v) == n, "%s: %zu elements, masked %zu", f->key, n,
                                   json_array_size(v));
                        for (size_t i = 0; i < n; i++)
                                check_masked(f->sub, at(items, i * f->elem_size), json_array_get(v, i));
                }
        }
}

/* The loaded cfg masks its secrets; no file secret in err or in the masked form. */
static void check_result(const char *input, int r, const char *err, const struct config_field *fields,
                         const void *cfg) {
        bool file_secret_given = strstr(input, FILE_SECRET) != NULL;

        FUZZ_CHECK(file_secret_given || !strstr(err, FILE_SECRET), "error shows a file secret: %s", err);
        if (r < 0)
                return;
        json_t *m = config_to_json_masked(fields, cfg);
        char *text = json_dumps(m, JSON_COMPACT);
        FUZZ_CHECK(m && text, "no masked form");
        check_masked(fields, cfg, m);
        FUZZ_CHECK(file_secret_given || !strstr(text, FILE_SECRET), "masked config shows a file secret: %s", text);
        free(text);
        json_decref(m);
}

static void load_agent(const char *input) {
        struct agent_config *c = NULL;
        char err[1024] = "";
        int r = agent_config_load("agent.json", input, &c, err, sizeof err);

        check_result(input, r, err, agent_config_fields, c);
        if (r == 0) {
                FUZZ_CHECK(c->n_services > 0, "no services");
                FUZZ_CHECK(agent_config_find_instance(c, c->services[0].instance) == &c->services[0],
                           "first instance not found");
        }
        agent_config_free(c);
}

/* From the string first; from the file (cd_config_load(), which reads into a 1 MiB
 * buffer: slow) for its cross-field checks only when the schema accepts it. */
static void load_coordinatord(const char *input, const uint8_t *data, size_t size) {
        struct cd_config c = {};
        char err[1024] = "";
        int r = config_load_string(input, "cd.json", cd_config_fields, &c, err, sizeof err);

        check_result(input, r, err, cd_config_fields, &c);
        if (r < 0)
                return;
        cd_config_free(&c);
        c = (struct cd_config) {};
        if (ftruncate(cd_fd, 0) < 0 || pwrite(cd_fd, data, size, 0) != (ssize_t) size)
                abort();
        r = cd_config_load(cd_path, &c, err, sizeof err);
        check_result(input, r, err, cd_config_fields, &c);
        if (r == 0)
                cd_config_free(&c);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        write_fixtures();
        cd_fd = memfd_create("cd.json", MFD_CLOEXEC);
        if (cd_fd < 0)
                abort();
        snprintf(cd_path, sizeof cd_path, "/proc/self/fd/%d", cd_fd);
        /* The file's values, not the environment's. */
        unsetenv("COORD_REDIS");
        unsetenv("COORD_LISTEN");
        unsetenv("COORD_NAMESPACE");
        unsetenv("CREDENTIALS_DIRECTORY");
        log_set_max_level(-1);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *input = fuzz_string(data, size);
        json_t *j = json_loads(input, JSON_REJECT_DUPLICATES, NULL);
        bool ok = !j || file_keys_ok(j, 0);

        json_decref(j);
        if (ok) {
                load_agent(input);
                load_coordinatord(input, data, size);
                log_clear_secrets();
        }
        free(input);
        return 0;
}
