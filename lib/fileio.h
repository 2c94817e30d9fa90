/* Atomic file replacement: temporary file in the same directory, fsync,
 * rename over the target, fsync of the directory. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Write data to path atomically with mode (owner and group of an existing
 * file are kept when possible).  With keep_prev, the file being replaced stays
 * reachable as "<path>.coord-prev" until fileio_restore_prev() or
 * fileio_drop_prev().  Returns 0 or -errno; path is untouched on failure. */
int fileio_write_atomic(const char *path, const void *data, size_t len, mode_t mode, bool keep_prev);
/* Put "<path>.coord-prev" back in place (atomically); if there was no previous
 * file, remove path.  0 or -errno. */
int fileio_restore_prev(const char *path);
int fileio_drop_prev(const char *path);
/* mkdir -p with mode for missing components.  0 or -errno. */
int fileio_mkdir_p(const char *path, mode_t mode);
