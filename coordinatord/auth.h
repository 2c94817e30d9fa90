/* Bearer-token authentication for the REST API.
 *
 * Tokens come from the configuration as SHA-256 hashes or as the token itself
 * (from "token"/"token_file"); only hashes are kept.  A presented token is
 * hashed and compared against every configured hash in constant time, so the
 * time taken says nothing about which (or whether any) token matched. */
#pragma once

#include <stdbool.h>

#include "cd-config.h"

enum role {
        ROLE_NONE = 0, /* no or wrong token */
        ROLE_READ = 1,
        ROLE_DEPLOY = 2,
        ROLE_ADMIN = 3,
        _ROLE_MAX,
};

struct auth;

/* Build from the configured tokens; with none, every request is admin
 * (insecure_no_auth, checked by the config loader).  tokens are read, not kept
 * (names copied, secrets kept only as SHA-256).  NULL on OOM. */
struct auth *auth_new(const struct cd_token *tokens, size_t n);
struct auth *auth_free(struct auth *a);
bool auth_disabled(const struct auth *a);

/* Role granted by an "Authorization" header value (may be NULL); *ret_name
 * points at the token's configured name (static for the auth's lifetime) or
 * NULL. */
enum role auth_check(const struct auth *a, const char *authorization, const char **ret_name);
/* "none", "read", "deploy", "admin" (NULL when out of range); role_from_string()
 * takes the last three only (-EINVAL otherwise). */
const char *role_to_string(enum role r);
int role_from_string(const char *s);
