/* See fileio.h. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "macro.h"
#include "strutil.h"

static int fsync_dir_of(const char *path) {
        _cleanup_free_ char *copy = strdup(path);
        _cleanup_close_ int fd = -1;

        if (!copy)
                return -ENOMEM;
        fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fsync(fd) < 0)
                return -errno;
        return 0;
}

static int write_all(int fd, const void *data, size_t len) {
        const char *p = data;

        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

int fileio_write_atomic(const char *path, const void *data, size_t len, mode_t mode, bool keep_prev) {
        _cleanup_free_ char *tmp = NULL, *prev = NULL, *copy = NULL;
        _cleanup_close_ int fd = -1;
        struct stat st;
        bool existed;
        int r;

        copy = strdup(path);
        tmp = strdup_printf("%s/.%s.coord-tmp-XXXXXX", dirname(copy), strrchr(path, '/') ? strrchr(path, '/') + 1 : path);
        prev = strdup_printf("%s.coord-prev", path);
        if (!copy || !tmp || !prev)
                return -ENOMEM;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        existed = stat(path, &st) == 0;
        if (fchmod(fd, mode) < 0)
                goto fail_errno;
        if (existed)
                (void) fchown(fd, st.st_uid, st.st_gid);
        r = write_all(fd, data, len);
        if (r < 0)
                goto fail;
        if (fsync(fd) < 0)
                goto fail_errno;
        if (keep_prev) {
                (void) unlink(prev);
                if (existed && link(path, prev) < 0)
                        goto fail_errno;
        }
        if (rename(tmp, path) < 0)
                goto fail_errno;
        return fsync_dir_of(path);

fail_errno:
        r = -errno;
fail:
        (void) unlink(tmp);
        return r;
}

int fileio_restore_prev(const char *path) {
        _cleanup_free_ char *prev = strdup_printf("%s.coord-prev", path);

        if (!prev)
                return -ENOMEM;
        if (rename(prev, path) < 0) {
                if (errno != ENOENT)
                        return -errno;
                if (unlink(path) < 0 && errno != ENOENT)
                        return -errno;
        }
        return fsync_dir_of(path);
}

int fileio_drop_prev(const char *path) {
        _cleanup_free_ char *prev = strdup_printf("%s.coord-prev", path);

        if (!prev)
                return -ENOMEM;
        if (unlink(prev) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

int fileio_mkdir_p(const char *path, mode_t mode) {
        _cleanup_free_ char *p = strdup(path);

        if (!p)
                return -ENOMEM;
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = '\0';
                if (mkdir(p, mode) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        if (mkdir(p, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}
