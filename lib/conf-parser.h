/* Strict JSON configuration files, schema-driven.
 *
 * A program describes its file as a table of struct config_field; config_load()
 * reads the file with jansson, rejects unknown keys with their full path
 * ("services[0].health.intervall: unknown key"), type errors, bad durations,
 * missing required keys, and fills a C struct.  Secrets (CONFIG_SECRET) may
 * also come from "<key>_file" (a path, content trimmed of trailing newlines) or
 * from $CREDENTIALS_DIRECTORY/<credential> (systemd LoadCredential=); their
 * values are registered with log_add_secret() so they never reach a log line.
 * File paths (CONFIG_PATH) may likewise default to a credential's path. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "tls.h"

enum config_type {
        CONFIG_STRING,   /* char *                  */
        CONFIG_SECRET,   /* char *, also <key>_file, $CREDENTIALS_DIRECTORY/<credential> */
        CONFIG_DURATION, /* uint64_t usec           */
        CONFIG_INT,      /* int64_t, bounded by min/max */
        CONFIG_BOOL,     /* bool                    */
        CONFIG_OBJECT,   /* nested struct: fields in sub; value at offset (no allocation) */
        CONFIG_ARRAY,    /* array of objects: sub describes one element of elem_size bytes;
                          * at offset: void *items; at offset+sizeof(void*): size_t n */
        CONFIG_JSON,     /* json_t * (any JSON value, reference taken) */
        CONFIG_REDIS_URL,/* char *, a secret like CONFIG_SECRET, validated with redis_url_parse();
                          * shown with only its password masked */
        CONFIG_PATH,     /* char *, a file path (not its content: shown as it is); when the key is
                          * absent and $CREDENTIALS_DIRECTORY/<credential> exists, that path */
};

struct config_field {
        const char *key;
        enum config_type type;
        size_t offset;                  /* offsetof(struct, member) */
        bool required;
        const char *def;                /* default as text ("5s", "100", "true"), or NULL */
        int64_t min, max;               /* CONFIG_INT bounds (both 0: unbounded) */
        const struct config_field *sub; /* CONFIG_OBJECT / CONFIG_ARRAY: NULL-key terminated */
        size_t elem_size;               /* CONFIG_ARRAY element size */
        const char *credential;         /* CONFIG_SECRET, CONFIG_PATH: name under $CREDENTIALS_DIRECTORY */
        const char *env;                /* environment variable that overrides the file */
};

/* The TLS keys of both daemons (CONTRACT.md "TLS to Redis") for the struct
 * tls_options member of struct stype: tls_ca_file, tls_cert_file, tls_key_file (also
 * the credential CONFIG_TLS_KEY_CREDENTIAL) and tls_insecure_skip_verify.
 * After loading, config_tls_check() completes and checks them. */
#define CONFIG_TLS_KEY_CREDENTIAL "tls_key"
#define CONFIG_TLS_FIELDS(stype, member)                                                                    \
        { .key = "tls_ca_file", .type = CONFIG_PATH, .offset = offsetof(stype, member.ca_file) },         \
        { .key = "tls_cert_file", .type = CONFIG_PATH, .offset = offsetof(stype, member.cert_file) },     \
        { .key = "tls_key_file", .type = CONFIG_PATH, .offset = offsetof(stype, member.key_file),         \
          .credential = CONFIG_TLS_KEY_CREDENTIAL },                                                      \
        { .key = "tls_insecure_skip_verify", .type = CONFIG_BOOL,                                         \
          .offset = offsetof(stype, member.insecure_skip_verify), .def = "false" }

/* The TLS settings a daemon loaded with CONFIG_TLS_FIELDS: when the file (and
 * the credential) set none of them, they come from COORD_TLS_CA_FILE,
 * COORD_TLS_CERT_FILE and COORD_TLS_KEY_FILE, all of them, as for coordctl
 * (never mixed with the file's).  Then the files are loaded as a connection
 * would (tls_options_check()).  0, or -EINVAL with "<name>: <key>: <problem>"
 * in errbuf (the variable named when it came from the environment), -ENOMEM. */
int config_tls_check(const char *name, struct tls_options *tls, char *errbuf, size_t errlen);

/* Load path into out (zeroed by the caller) following fields.  Returns 0, or
 * -EINVAL with errbuf naming the culprit ("<path>: <key path>: <problem>"),
 * -errno when the file cannot be read.  A missing file is -ENOENT. */
int config_load(const char *path, const struct config_field *fields, void *out, char *errbuf, size_t errlen);
/* Same, from an in-memory JSON document (tests, reloads). name labels errors. */
int config_load_string(const char *json, const char *name, const struct config_field *fields, void *out,
                       char *errbuf, size_t errlen);
/* Free every string/JSON/array the loader allocated in out. */
void config_free(const struct config_field *fields, void *out);
/* Effective configuration as JSON, secrets replaced by "*****" (Redis connection
 * strings keep their host but mask the password).  Caller owns the result. */
json_t *config_to_json_masked(const struct config_field *fields, const void *cfg);
/* Print config_to_json_masked() indented on stdout (for --check-config). */
void config_print_masked(const struct config_field *fields, const void *cfg);
