/* See auth.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "macro.h"
#include "strutil.h"

#define TOKEN_MAX_LEN 4096

struct auth_entry {
        char *name;
        enum role role;
        char hash[65]; /* lower-case hex */
};

struct auth {
        struct auth_entry *entries;
        size_t n;
};

static const char *const role_table[_ROLE_MAX] = {
        [ROLE_NONE] = "none",
        [ROLE_READ] = "read",
        [ROLE_DEPLOY] = "deploy",
        [ROLE_ADMIN] = "admin",
};
DEFINE_STRING_TABLE_LOOKUP_TO_STRING(role, enum role, _ROLE_MAX)

/* "none" only names the absence of a token: no token is configured with it. */
int role_from_string(const char *s) {
        int r = string_table_lookup(role_table, _ROLE_MAX, s);

        return r == ROLE_NONE ? -EINVAL : r;
}

struct auth *auth_new(const struct cd_token *tokens, size_t n) {
        struct auth *a = calloc(1, sizeof *a);

        if (!a)
                return NULL;
        if (n > 0) {
                a->entries = calloc(n, sizeof *a->entries);
                if (!a->entries)
                        return auth_free(a);
        }
        for (size_t i = 0; i < n; i++) {
                struct auth_entry *e = &a->entries[i];
                int r = role_from_string(tokens[i].role);

                e->name = strdup(tokens[i].name);
                if (!e->name || r < 0)
                        return auth_free(a);
                a->n++;
                e->role = (enum role) r;
                if (tokens[i].token)
                        sha256_hex(tokens[i].token, strlen(tokens[i].token), e->hash);
                else {
                        for (size_t k = 0; k < 64; k++) {
                                char c = tokens[i].sha256[k];
                                e->hash[k] = (char) ((c >= 'A' && c <= 'F') ? c - 'A' + 'a' : c);
                        }
                        e->hash[64] = '\0';
                }
        }
        return a;
}

struct auth *auth_free(struct auth *a) {
        if (!a)
                return NULL;
        for (size_t i = 0; i < a->n; i++)
                free(a->entries[i].name);
        free(a->entries);
        free(a);
        return NULL;
}

bool auth_disabled(const struct auth *a) {
        return a->n == 0;
}

enum role auth_check(const struct auth *a, const char *authorization, const char **ret_name) {
        const char *tok;
        char hash[65];
        enum role best = ROLE_NONE;
        const char *name = NULL;
        size_t len;

        if (ret_name)
                *ret_name = NULL;
        if (auth_disabled(a))
                return ROLE_ADMIN;
        if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0)
                return ROLE_NONE;
        tok = authorization + 7;
        while (*tok == ' ')
                tok++;
        len = strlen(tok);
        while (len > 0 && tok[len - 1] == ' ')
                len--;
        if (len == 0 || len > TOKEN_MAX_LEN)
                return ROLE_NONE;

        sha256_hex(tok, len, hash);
        /* Compare against every entry, no early exit. */
        for (size_t i = 0; i < a->n; i++) {
                bool eq = memeq_consttime(hash, 64, a->entries[i].hash, 64);
                if (eq && a->entries[i].role > best) {
                        best = a->entries[i].role;
                        name = a->entries[i].name;
                }
        }
        if (ret_name)
                *ret_name = name;
        return best;
}
