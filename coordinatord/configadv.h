/* Advertised configuration: versions in coord:{NS}:config:SERVICE (keys.h),
 * masking of secrets for display, and validation of what may be stored. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#define CONFIG_MAX_DEPTH 16

/* A deep copy of v with every secret masked as "*****": the whole value under
 * a key secret_key_is_secret() names (null stays null), and the secrets
 * secret_mask_string() finds in every other string.  NULL on OOM. */
json_t *configadv_mask(const json_t *v);

/* What the agents can render: object keys non-empty, at most 128 bytes,
 * without control characters or '='; nesting at most CONFIG_MAX_DEPTH; no two
 * values under one name, which ASP.NET would read as one key: "a__b" and
 * {"a":{"b":..}} (both the env name a__b), "a:b" and {"a":{"b":..}} (both the
 * key a:b), "Key" and "key".  0, or -EINVAL with errbuf naming the culprit
 * ("keys 'a__b' and 'a.b' both render as the env name a__b"); -ENOMEM. */
int configadv_validate(const json_t *config, char *errbuf, size_t errlen);

/* Read the current version; -ENOENT when none, -EIO on Redis errors.
 * *ret_config owns a reference. */
int configadv_get(redisContext *c, const char *ns, const char *service, int64_t *ret_version, json_t **ret_config,
                  int64_t *ret_updated_at_ms);
/* Store config as the next version and publish the change.  if_match NULL
 * for none, "*" for "any existing", else a version number that must be
 * current.  0 with *ret_version; -ESTALE when if_match does not hold
 * (*ret_current set); -EIO on Redis errors. */
int configadv_put(redisContext *c, const char *ns, const char *service, const json_t *config,
                  const char *if_match, int64_t *ret_version, int64_t *ret_current);
