/* Rendering of an advertised config object into the file an app reads (pure).
 *   env:  ASP.NET-style KEY=value lines, nested keys joined by "__", array
 *         elements by index, booleans true/false, null as empty; values that
 *         are not plain are double-quoted with \ " $ ` escaped.  Keys must be
 *         [A-Za-z0-9_.-] (else -EINVAL naming the key).
 *   json: the object as an indented appsettings-style document. */
#pragma once

#include <stddef.h>

#include <jansson.h>

/* format is "env" or "json".  On success *ret (malloc'd, NUL-terminated) and
 * *ret_len; on failure -EINVAL with errbuf naming the culprit. */
int advertise_render(json_t *config, const char *format, char **ret, size_t *ret_len, char *errbuf, size_t errlen);

/* Call fn for every value in config that must never be logged: string values
 * whose key path contains "password", "secret", "token", "apikey" or "api_key"
 * (case-insensitive), and passwords inside connection strings
 * ("...password=X,...", "Password=X;...", "scheme://user:X@host"). */
void advertise_walk_secrets(json_t *config, void (*fn)(const char *secret, void *userdata), void *userdata);
