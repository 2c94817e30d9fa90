/* Strict JSON configuration loader: see config.h.
 *
 * Where a value comes from, first match wins:
 *   1. the environment variable field->env, when set and non-empty;
 *   2. the key in the file (JSON null counts as absent);
 *   3. for CONFIG_SECRET / CONFIG_REDIS_URL: "<key>_file" in the file (a path whose
 *      content, trailing newlines stripped, is the value), then
 *      $CREDENTIALS_DIRECTORY/<field->credential> when that file exists;
 *      for CONFIG_PATH: the path of that credential when it exists;
 *   4. field->def;
 *   otherwise a required key is an error.
 * Giving both "<key>" and "<key>_file" is an error even when the environment wins.
 * A missing optional object is filled with its defaults (its required keys are
 * then not demanded). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf-parser.h"
#include "duration.h"
#include "fileio.h"
#include "jsonutil.h"
#include "log.h"
#include "macro.h"
#include "parse-util.h"
#include "redis_url.h"
#include "secret.h"
#include "strutil.h"

#define CONFIG_FILE_MAX (1024 * 1024)
#define CONFIG_SECRET_FILE_MAX (64 * 1024)
#define CONFIG_PATH_MAX 512
#define MASK "*****"

struct ctx {
        const char *name;
        char *errbuf;
        size_t errlen;
};

_printf_(3, 4) static int cerr(const struct ctx *c, const char *path, const char *fmt, ...) {
        if (c->errbuf && c->errlen > 0) {
                char msg[512];
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(msg, sizeof msg, fmt, ap);
                va_end(ap);
                if (path && *path)
                        snprintf(c->errbuf, c->errlen, "%s: %s: %s", c->name, path, msg);
                else
                        snprintf(c->errbuf, c->errlen, "%s: %s", c->name, msg);
        }
        return -EINVAL;
}

static void *at(void *base, size_t offset) {
        return (char *) base + offset;
}

static const void *at_const(const void *base, size_t offset) {
        return (const char *) base + offset;
}

static bool is_secret(enum config_type t) {
        return t == CONFIG_SECRET || t == CONFIG_REDIS_URL;
}

static void child_path(char *out, size_t size, const char *prefix, const char *key) {
        if (prefix && *prefix)
                snprintf(out, size, "%s.%s", prefix, key);
        else
                snprintf(out, size, "%s", key);
}

static void free_secret(char **p) {
        if (*p) {
                explicit_bzero(*p, strlen(*p));
                free(*p);
                *p = NULL;
        }
}

/* Register what must never be logged: the secret itself, and for a Redis
 * connection string its password (decoded, and as written in the string). */
static void register_secret(enum config_type type, const char *value) {
        if (type == CONFIG_SECRET) {
                log_add_secret(value);
                return;
        }
        struct redis_url *u = NULL;
        if (redis_url_parse(value, &u, NULL, 0) == 0) {
                log_add_secret(u->password);
                redis_url_free(u);
        }
        /* the raw userinfo password of a URL, before percent-decoding */
        const char *scheme = strstr(value, "://");
        if (scheme && (size_t) (scheme - value) == strspn(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-")) {
                const char *a = strrchr(scheme + 3, '@');
                const char *colon = a ? memchr(scheme + 3, ':', (size_t) (a - (scheme + 3))) : NULL;
                const char *start = colon ? colon + 1 : scheme + 3;
                if (a && a > start) {
                        _cleanup_free_ char *raw = strndup(start, (size_t) (a - start));
                        if (raw) {
                                log_add_secret(raw);
                                explicit_bzero(raw, strlen(raw));
                        }
                }
        }
}

/* Store a text value (from the environment, a secret file or a default) into dst. */
static int set_from_text(const struct ctx *c, const char *path, const struct config_field *f, void *dst,
                         const char *text, const char *origin) {
        int r;

        switch (f->type) {
        case CONFIG_STRING:
        case CONFIG_PATH:
        case CONFIG_SECRET:
        case CONFIG_REDIS_URL: {
                if (f->type == CONFIG_REDIS_URL) {
                        char e[256];
                        struct redis_url *u = NULL;
                        if (redis_url_parse(text, &u, e, sizeof e) < 0)
                                return cerr(c, path, "%s%s", origin, e);
                        redis_url_free(u);
                }
                char *s = strdup(text);
                if (!s)
                        return -ENOMEM;
                char **p = dst;
                if (is_secret(f->type)) {
                        free_secret(p);
                        register_secret(f->type, s);
                } else
                        free(*p);
                *p = s;
                return 0;
        }
        case CONFIG_DURATION: {
                uint64_t u;
                int dr = duration_parse(text, &u);
                if (dr == -ERANGE)
                        return cerr(c, path, "%s'%s' is too large a duration", origin, text);
                if (dr < 0)
                        return cerr(c, path, "%s'%s' is not a duration (use 250ms, 30s, 5m, 1h)", origin, text);
                *(uint64_t *) dst = u;
                return 0;
        }
        case CONFIG_INT: {
                int64_t v;
                r = parse_int64(text, &v);
                if (r < 0)
                        return cerr(c, path, "%s'%s' is not an integer", origin, text);
                if ((f->min != 0 || f->max != 0) && (v < f->min || v > f->max))
                        return cerr(c, path, "%s%lld is out of range (%lld-%lld)", origin, (long long) v,
                                    (long long) f->min, (long long) f->max);
                *(int64_t *) dst = v;
                return 0;
        }
        case CONFIG_BOOL: {
                bool b;
                if (parse_bool(text, &b) < 0)
                        return cerr(c, path, "%s'%s' is not a boolean (true or false)", origin, text);
                *(bool *) dst = b;
                return 0;
        }
        case CONFIG_JSON: {
                json_error_t je;
                json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
                if (!j)
                        return cerr(c, path, "%snot valid JSON", origin);
                json_t **p = dst;
                json_decref(*p);
                *p = j;
                return 0;
        }
        case CONFIG_OBJECT:
        case CONFIG_ARRAY:
                break;
        }
        return cerr(c, path, "%scannot be given as text", origin);
}

static int load_object(const struct ctx *c, const char *prefix, const struct config_field *fields, json_t *obj,
                       void *base, bool absent);

static int load_value(const struct ctx *c, const char *path, const struct config_field *f, json_t *v, void *dst) {
        switch (f->type) {
        case CONFIG_STRING:
        case CONFIG_SECRET:
        case CONFIG_REDIS_URL:
                if (!json_is_string(v))
                        return cerr(c, path, "expected a string");
                if (strlen(json_string_value(v)) != json_string_length(v))
                        return cerr(c, path, "contains a NUL character");
                return set_from_text(c, path, f, dst, json_string_value(v), "");
        case CONFIG_PATH:
                if (!json_is_string(v) || json_string_value(v)[0] == '\0')
                        return cerr(c, path, "expected a file path string");
                if (strlen(json_string_value(v)) != json_string_length(v))
                        return cerr(c, path, "contains a NUL character");
                return set_from_text(c, path, f, dst, json_string_value(v), "");
        case CONFIG_DURATION:
                if (!json_is_string(v))
                        return cerr(c, path, "expected a duration string (use 250ms, 30s, 5m, 1h)");
                return set_from_text(c, path, f, dst, json_string_value(v), "");
        case CONFIG_INT: {
                if (!json_is_integer(v))
                        return cerr(c, path, "expected an integer");
                json_int_t i = json_integer_value(v);
                if ((f->min != 0 || f->max != 0) && (i < f->min || i > f->max))
                        return cerr(c, path, "%lld is out of range (%lld-%lld)", (long long) i, (long long) f->min,
                                    (long long) f->max);
                *(int64_t *) dst = (int64_t) i;
                return 0;
        }
        case CONFIG_BOOL:
                if (!json_is_boolean(v))
                        return cerr(c, path, "expected true or false");
                *(bool *) dst = json_is_true(v);
                return 0;
        case CONFIG_JSON: {
                json_t **p = dst;
                json_decref(*p);
                *p = json_incref(v);
                return 0;
        }
        case CONFIG_OBJECT:
                if (!json_is_object(v))
                        return cerr(c, path, "expected an object");
                return load_object(c, path, f->sub, v, dst, false);
        case CONFIG_ARRAY: {
                void **items = dst;
                size_t *n = (size_t *) ((char *) dst + sizeof(void *));
                size_t count;
                char ep[CONFIG_PATH_MAX + 32];

                if (!json_is_array(v))
                        return cerr(c, path, "expected an array of objects");
                count = json_array_size(v);
                if (count == 0)
                        return 0;
                if (*items)
                        return cerr(c, path, "given twice");
                *items = calloc(count, f->elem_size);
                if (!*items)
                        return -ENOMEM;
                for (size_t i = 0; i < count; i++) {
                        json_t *e = json_array_get(v, i);
                        snprintf(ep, sizeof ep, "%s[%zu]", path, i);
                        *n = i + 1; /* so config_free() sees what was filled */
                        if (!json_is_object(e))
                                return cerr(c, ep, "expected an object");
                        int r = load_object(c, ep, f->sub, e, (char *) *items + i * f->elem_size, false);
                        if (r < 0)
                                return r;
                }
                return 0;
        }
        }
        return cerr(c, path, "unsupported field type");
}

static const struct config_field *find_field(const struct config_field *fields, const char *key, bool *ret_is_file) {
        size_t kl = strlen(key);

        for (const struct config_field *f = fields; f->key; f++) {
                if (strcmp(f->key, key) == 0) {
                        *ret_is_file = false;
                        return f;
                }
                size_t fl = strlen(f->key);
                if (is_secret(f->type) && kl == fl + 5 && strncmp(key, f->key, fl) == 0 && strcmp(key + fl, "_file") == 0) {
                        *ret_is_file = true;
                        return f;
                }
        }
        return NULL;
}

/* Read a secret from a file; ENOENT is reported to the caller (credentials are optional). */
static int read_secret_file(const struct ctx *c, const char *path, const struct config_field *f, void *dst,
                            const char *file, const char *origin, bool enoent_ok) {
        _cleanup_free_ char *text = NULL;
        int r = fileio_read_string(file, CONFIG_SECRET_FILE_MAX, true, &text);

        if (r == -ENOENT && enoent_ok)
                return -ENOENT;
        if (r == -EFBIG)
                return cerr(c, path, "%s'%s' is larger than 64 KiB", origin, file);
        if (r < 0)
                return cerr(c, path, "%scannot read '%s': %s", origin, file, strerror(-r));
        if (text[0] == '\0')
                return cerr(c, path, "%s'%s' is empty", origin, file);
        if (strchr(text, '\n')) {
                explicit_bzero(text, strlen(text));
                return cerr(c, path, "%s'%s' holds more than one line", origin, file);
        }
        r = set_from_text(c, path, f, dst, text, origin);
        explicit_bzero(text, strlen(text));
        return r;
}

/* A CONFIG_PATH left out: the credential's path when the credential exists
 * (whether it is usable is for the program to check, naming the file). */
static int credential_path(const struct ctx *c, const char *path, const struct config_field *f, void *dst) {
        const char *dir = getenv("CREDENTIALS_DIRECTORY");
        _cleanup_free_ char *cp = NULL;

        if (!dir || !*dir)
                return 0;
        cp = strdup_printf("%s/%s", dir, f->credential);
        if (!cp)
                return -ENOMEM;
        if (access(cp, F_OK) < 0)
                return 0;
        return set_from_text(c, path, f, dst, cp, "");
}

static int load_field(const struct ctx *c, const char *prefix, const struct config_field *f, json_t *obj, void *base,
                      bool absent_parent) {
        char path[CONFIG_PATH_MAX], fpath[CONFIG_PATH_MAX + 8], origin[CONFIG_PATH_MAX + 32];
        void *dst = at(base, f->offset);
        json_t *v = obj ? json_object_get(obj, f->key) : NULL;
        json_t *vf = NULL;
        int r;

        child_path(path, sizeof path, prefix, f->key);
        if (json_is_null(v))
                v = NULL;
        if (is_secret(f->type) && obj) {
                char fk[256];
                snprintf(fk, sizeof fk, "%s_file", f->key);
                vf = json_object_get(obj, fk);
                if (json_is_null(vf))
                        vf = NULL;
                snprintf(fpath, sizeof fpath, "%s_file", path);
                if (v && vf)
                        return cerr(c, path, "both %s and %s_file given: use only one", f->key, f->key);
                if (vf && (!json_is_string(vf) || json_string_value(vf)[0] == '\0'))
                        return cerr(c, fpath, "expected a file path string");
        }

        /* 1. environment */
        if (f->env) {
                const char *e = getenv(f->env);
                if (e && *e) {
                        snprintf(origin, sizeof origin, "$%s: ", f->env);
                        if (f->type == CONFIG_OBJECT || f->type == CONFIG_ARRAY)
                                return cerr(c, path, "cannot come from $%s", f->env);
                        return set_from_text(c, path, f, dst, e, origin);
                }
        }
        /* 2. the file */
        if (v)
                return load_value(c, path, f, v, dst);
        /* 3. secret sources */
        if (vf) {
                origin[0] = '\0';
                return read_secret_file(c, fpath, f, dst, json_string_value(vf), origin, false);
        }
        if (f->type == CONFIG_PATH && f->credential)
                return credential_path(c, path, f, dst);
        if (is_secret(f->type) && f->credential) {
                const char *dir = getenv("CREDENTIALS_DIRECTORY");
                if (dir && *dir) {
                        char cp[CONFIG_PATH_MAX * 2];
                        snprintf(origin, sizeof origin, "credential %s: ", f->credential);
                        snprintf(cp, sizeof cp, "%s/%s", dir, f->credential);
                        r = read_secret_file(c, path, f, dst, cp, origin, true);
                        if (r != -ENOENT)
                                return r;
                }
        }
        /* 4. default, or the object's own defaults */
        if (f->type == CONFIG_OBJECT) {
                if (f->required && !absent_parent)
                        return cerr(c, path, "missing required key");
                return load_object(c, path, f->sub, NULL, dst, true);
        }
        if (f->def) {
                r = set_from_text(c, path, f, dst, f->def, "default: ");
                if (r < 0)
                        return r;
                return 0;
        }
        if (f->required && !absent_parent) {
                if (is_secret(f->type) && f->credential)
                        return cerr(c, path, "missing required key (or %s_file, or credential '%s' in $CREDENTIALS_DIRECTORY)",
                                    f->key, f->credential);
                if (is_secret(f->type))
                        return cerr(c, path, "missing required key (or %s_file)", f->key);
                return cerr(c, path, "missing required key");
        }
        return 0;
}

static int load_object(const struct ctx *c, const char *prefix, const struct config_field *fields, json_t *obj,
                       void *base, bool absent) {
        const char *key;
        json_t *value;
        int r;

        if (obj)
                json_object_foreach(obj, key, value) {
                        bool is_file;
                        char path[CONFIG_PATH_MAX];
                        if (!find_field(fields, key, &is_file)) {
                                child_path(path, sizeof path, prefix, key);
                                return cerr(c, path, "unknown key");
                        }
                }
        for (const struct config_field *f = fields; f->key; f++) {
                r = load_field(c, prefix, f, obj, base, absent);
                if (r < 0)
                        return r;
        }
        return 0;
}

int config_load_string(const char *json, const char *name, const struct config_field *fields, void *out, char *errbuf,
                       size_t errlen) {
        struct ctx c = { .name = name ? name : "config", .errbuf = errbuf, .errlen = errlen };
        _cleanup_json_ json_t *root = NULL;
        json_error_t je;
        int r;

        if (!json || !fields || !out)
                return -EINVAL;
        if (strlen(json) > CONFIG_FILE_MAX)
                return cerr(&c, NULL, "larger than 1 MiB");
        root = json_loads(json, JSON_REJECT_DUPLICATES, &je);
        if (!root) {
                /* jansson quotes the token "near" the error: it may be a secret, drop it. */
                char *near = strstr(je.text, " near '");
                if (near)
                        *near = '\0';
                return cerr(&c, NULL, "line %d column %d: %s", je.line, je.column, je.text);
        }
        if (!json_is_object(root))
                return cerr(&c, NULL, "the top level must be a JSON object");
        r = load_object(&c, "", fields, root, out, false);
        if (r < 0) {
                config_free(fields, out);
                return r;
        }
        return 0;
}

int config_load(const char *path, const struct config_field *fields, void *out, char *errbuf, size_t errlen) {
        struct ctx c = { .name = path, .errbuf = errbuf, .errlen = errlen };
        _cleanup_free_ char *text = NULL;
        int r;

        if (!path)
                return -EINVAL;
        r = fileio_read_string(path, CONFIG_FILE_MAX, false, &text);
        if (r == -EFBIG)
                return cerr(&c, NULL, "larger than 1 MiB");
        if (r < 0) {
                cerr(&c, NULL, "cannot read: %s", strerror(-r));
                return r;
        }
        r = config_load_string(text, path, fields, out, errbuf, errlen);
        explicit_bzero(text, strlen(text));
        return r;
}

void config_free(const struct config_field *fields, void *out) {
        if (!fields || !out)
                return;
        for (const struct config_field *f = fields; f->key; f++) {
                void *dst = at(out, f->offset);
                switch (f->type) {
                case CONFIG_STRING:
                case CONFIG_PATH: {
                        char **p = dst;
                        free(*p);
                        *p = NULL;
                        break;
                }
                case CONFIG_SECRET:
                case CONFIG_REDIS_URL:
                        free_secret(dst);
                        break;
                case CONFIG_JSON: {
                        json_t **p = dst;
                        json_decref(*p);
                        *p = NULL;
                        break;
                }
                case CONFIG_OBJECT:
                        config_free(f->sub, dst);
                        break;
                case CONFIG_ARRAY: {
                        void **items = dst;
                        size_t *n = (size_t *) ((char *) dst + sizeof(void *));
                        for (size_t i = 0; *items && i < *n; i++)
                                config_free(f->sub, (char *) *items + i * f->elem_size);
                        free(*items);
                        *items = NULL;
                        *n = 0;
                        break;
                }
                case CONFIG_DURATION:
                case CONFIG_INT:
                case CONFIG_BOOL:
                        break;
                }
        }
}

static json_t *masked_value(const struct config_field *f, const void *src) {
        switch (f->type) {
        case CONFIG_STRING:
        case CONFIG_PATH: {
                const char *s = *(char *const *) src;
                return s ? json_string(s) : json_null();
        }
        case CONFIG_SECRET:
                return *(char *const *) src ? json_string(MASK) : json_null();
        case CONFIG_REDIS_URL: {
                const char *s = *(char *const *) src;
                struct redis_url *u = NULL;
                _cleanup_free_ char *m = NULL;
                if (!s)
                        return json_null();
                if (redis_url_parse(s, &u, NULL, 0) == 0) {
                        m = redis_url_to_string_masked(u);
                        redis_url_free(u);
                } else
                        m = secret_mask_string(s);
                return json_string(m ? m : MASK);
        }
        case CONFIG_DURATION: {
                char buf[DURATION_MAX];
                return json_string(duration_format(*(const uint64_t *) src, buf, sizeof buf));
        }
        case CONFIG_INT:
                return json_integer((json_int_t) * (const int64_t *) src);
        case CONFIG_BOOL:
                return json_boolean(*(const bool *) src);
        case CONFIG_JSON: {
                json_t *j = *(json_t *const *) src;
                return j ? json_deep_copy(j) : json_null();
        }
        case CONFIG_OBJECT:
                return config_to_json_masked(f->sub, src);
        case CONFIG_ARRAY: {
                const void *items = *(void *const *) src;
                size_t n = *(const size_t *) ((const char *) src + sizeof(void *));
                json_t *a = json_array();
                if (!a)
                        return NULL;
                for (size_t i = 0; i < n; i++) {
                        json_t *e = config_to_json_masked(f->sub, (const char *) items + i * f->elem_size);
                        if (!e || json_array_append_new(a, e) < 0) {
                                json_decref(a);
                                return NULL;
                        }
                }
                return a;
        }
        }
        return json_null();
}

json_t *config_to_json_masked(const struct config_field *fields, const void *cfg) {
        _cleanup_json_ json_t *o = NULL;

        if (!fields || !cfg)
                return NULL;
        o = json_object();
        if (!o)
                return NULL;
        for (const struct config_field *f = fields; f->key; f++) {
                json_t *v = masked_value(f, at_const(cfg, f->offset));
                if (!v || json_object_set_new(o, f->key, v) < 0)
                        return NULL;
        }
        return TAKE_PTR(o);
}

void config_print_masked(const struct config_field *fields, const void *cfg) {
        _cleanup_json_ json_t *j = config_to_json_masked(fields, cfg);
        _cleanup_free_ char *s = NULL;

        if (!j)
                return;
        s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (s)
                printf("%s\n", s);
        fflush(stdout);
}

static const char *tls_key_of(enum tls_file f) {
        static const char *const keys[] = {
                [TLS_FILE_NONE] = "tls", [TLS_FILE_CA] = "tls_ca_file", [TLS_FILE_CERT] = "tls_cert_file",
                [TLS_FILE_KEY] = "tls_key_file",
        };
        return (size_t) f < ELEMENTSOF(keys) ? keys[f] : "tls";
}

static const char *tls_env_of(enum tls_file f) {
        static const char *const vars[] = {
                [TLS_FILE_NONE] = "COORD_TLS_*", [TLS_FILE_CA] = "COORD_TLS_CA_FILE",
                [TLS_FILE_CERT] = "COORD_TLS_CERT_FILE", [TLS_FILE_KEY] = "COORD_TLS_KEY_FILE",
        };
        return (size_t) f < ELEMENTSOF(vars) ? vars[f] : "COORD_TLS_*";
}

int config_tls_check(const char *name, struct tls_options *tls, char *errbuf, size_t errlen) {
        struct ctx c = { .name = name ? name : "config", .errbuf = errbuf, .errlen = errlen };
        enum tls_file culprit = TLS_FILE_NONE;
        bool from_env = false;
        char msg[400] = "", origin[32];
        int r;

        if (!tls)
                return -EINVAL;
        if (!tls->ca_file && !tls->cert_file && !tls->key_file && !tls->insecure_skip_verify) {
                r = tls_options_from_env(tls);
                if (r < 0)
                        return r;
                from_env = tls->ca_file || tls->cert_file || tls->key_file;
        }
        r = tls_options_check(tls, &culprit, msg, sizeof msg);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                snprintf(origin, sizeof origin, "$%s: ", tls_env_of(culprit));
                return cerr(&c, tls_key_of(culprit), "%s%s", from_env ? origin : "", msg);
        }
        return 0;
}
