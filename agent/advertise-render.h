/* Rendering of an advertised config object into the file an app reads (pure).
 *   env:  ASP.NET-style KEY=value lines, nested keys joined by "__", array
 *         elements by index, booleans true/false, null as empty; values that
 *         are not plain are double-quoted with \ " $ ` escaped and newlines
 *         kept inside the quotes (read alike by systemd's EnvironmentFile= and
 *         DotNetEnv; see advertise-render.c).  -EINVAL naming the key for a key
 *         not of [A-Za-z0-9_.-], a value with another control character, and
 *         two values rendering under one name ("a__b" and {"a":{"b":..}}, or
 *         names differing only in case, which ASP.NET reads as one key).
 *   json: the object as an indented appsettings-style document. */
#pragma once

#include <stddef.h>

#include <jansson.h>

/* format is "env" or "json".  On success *ret (malloc'd, NUL-terminated) and
 * *ret_len; on failure -EINVAL with errbuf naming the culprit. */
int advertise_render(json_t *config, const char *format, char **ret, size_t *ret_len, char *errbuf, size_t errlen);

/* Call fn for every value in config that must never be logged: string and
 * integer values under a key secret_key_is_secret() names (at any depth below
 * it), and the secrets secret_foreach() finds inside every string. */
void advertise_walk_secrets(json_t *config, void (*fn)(const char *secret, void *userdata), void *userdata);
