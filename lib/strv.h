/* NULL-terminated string vectors (char **), systemd's strv idea, kept small. */
#pragma once

#include <stddef.h>

#include "macro.h"

/* Free every string up to the terminating NULL, then l.  NULL is fine.
 * Returns NULL: v = strv_free(v). */
char **strv_free(char **l);
/* Free the first n entries of l, then l: for a vector still being built, which
 * may hold NULL holes.  Returns NULL. */
char **strv_free_n(char **l, size_t n);
/* Entries before the terminating NULL (0 for NULL). */
size_t strv_length(char *const *l);
/* Append s (taken, also on failure) as entry n of *v, growing it by one; the
 * caller keeps the count and adds the terminating NULL when done.  0, or
 * -ENOMEM (s freed, *v unchanged). */
int strv_push(char ***v, size_t n, char *s);

DEFINE_TRIVIAL_CLEANUP_FUNC(char **, strv_free)
