/* Checked string helpers (no atoi/strtok/sprintf in this project). */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Names of services, instances, hosts, locks: 1-64 characters from
 * [A-Za-z0-9._-], starting with a letter or digit.  Anything else (including
 * "/", "*", "..", NUL, spaces, braces) is invalid, so raw input never shapes a
 * Redis key. */
#define NAME_MAX_LEN 64
bool name_is_valid(const char *s);

/* Version strings (service versions, deploy targets): 1-128 characters from
 * [A-Za-z0-9._+~-], so they are safe in file names, env values and keys. */
bool version_is_valid(const char *s);

/* The error buffer of "char *errbuf, size_t errlen" parameters: format into buf, always
 * NUL-terminated, truncated to len; does nothing when buf is NULL or len is 0 (callers
 * that want no message pass NULL).  One helper for every module, so none keeps its own. */
void errbuf_printf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void errbuf_vprintf(char *buf, size_t len, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));

/* Whether a and b are equal strings, or both NULL. */
static inline bool streq_ptr(const char *a, const char *b) {
        return a == b || (a && b && strcmp(a, b) == 0);
}

/* Allocating printf; NULL on allocation failure. */
char *strdup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Constant-time comparison of two equal-length buffers; false when lengths differ. */
bool memeq_consttime(const void *a, size_t alen, const void *b, size_t blen);
/* Lower-case hex SHA-256 of data into out (65 bytes). */
void sha256_hex(const void *data, size_t len, char out[65]);
/* Fill buf with n random bytes from getrandom(); 0 or -errno. */
int random_bytes(void *buf, size_t n);
/* n random bytes as lower-case hex into out (2n+1). */
int random_hex(char *out, size_t nbytes);
