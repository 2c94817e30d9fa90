/* Strict number and boolean parsers (no atoi/strtol without checks in this
 * project): the whole string must be the value, or the call fails. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* Whole string must be a decimal number in range; -EINVAL / -ERANGE otherwise. */
int parse_uint64(const char *s, uint64_t *ret);
int parse_int64(const char *s, int64_t *ret);
int parse_int(const char *s, int *ret);
/* "true/false", "yes/no", "1/0", "on/off" (case-insensitive). */
int parse_bool(const char *s, bool *ret);
