/* Which configuration keys name secrets, and where the secrets are inside
 * strings (connection strings of every common shape), for masking them as
 * "*****" and for registering them with the logger.  One list and one
 * scanner for the whole project: coordinatord's GET /v1/config, the agent's
 * log masking and --check-config all use these. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define SECRET_MASK "*****"

/* Whether key names a secret whose whole value is masked.  The key is split
 * on '.', ':', '-', '_' ("__" included) and spaces; it is secret when its
 * last non-empty segment ends in (case-insensitively) password, passwd, pass,
 * pwd, passphrase, secret, token, key, credential or cred, optionally plural
 * ("ApiKey", "X-API-KEY", "Jwt:Key", "client_secret", "Credentials"), or is a
 * one-letter typo of "password" ("Pasword").  NULL is not secret. */
bool secret_key_is_secret(const char *key);

typedef void (*secret_span_fn)(const char *span, size_t len, void *userdata);

/* Call fn(span, len, userdata) for every secret inside s: passwords of URLs
 * (scheme://user:PW@host), of user:PW@host DSNs, and the values of secret keys
 * in key=value lists (ADO.NET/ODBC "Password=PW;", quoted "Password=\"a;b\"",
 * StackExchange "host,password=PW", libpq "password=PW dbname=..", query
 * "?password=PW&", JSON-ish "\"password\":\"PW\"").  A string that
 * redis_url_parse() accepts yields exactly the parser's password spans.
 * Spans point into s, are non-empty, in order and do not overlap. */
void secret_foreach(const char *s, secret_span_fn fn, void *userdata);

/* s with every span of secret_foreach() replaced by "*****"; caller frees.
 * NULL when s is NULL or on OOM. */
char *secret_mask_string(const char *s);
