/* Files whole: reading one into memory with a size limit, and atomic
 * replacement (temporary file in the same directory, fsync, rename over the
 * target, fsync of the directory). */
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

/* Read fd to its end into a NUL-terminated buffer: *ret (the caller frees it)
 * and *ret_len (without the NUL), both written only on success.  More than max
 * bytes: -EFBIG (the rest is not read).  With FILEIO_READ_REGULAR the caller
 * vouches that fd is a regular file, so a short first read is its end: a small
 * file costs one read(), no fstat().  0 or -errno. */
#define FILEIO_READ_REGULAR 1u
int fileio_read_fd(int fd, size_t max, unsigned flags, char **ret, size_t *ret_len);
/* Open path and read it whole (<= max bytes) as a string; trailing newlines
 * (and CRs) stripped when strip_newline.  *ret written only on success.
 * -EFBIG when larger, -errno otherwise. */
int fileio_read_string(const char *path, size_t max, bool strip_newline, char **ret);
