/* See fileio.h. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
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

/* Read into buf[*n..cap) until end of file or until cap is full. */
static int read_into(int fd, char *buf, size_t cap, size_t *n) {
        while (*n < cap) {
                ssize_t k = read(fd, buf + *n, cap - *n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        return 0;
                *n += (size_t) k;
        }
        return 0;
}

static int take_buffer(char *buf, size_t n, char **ret, size_t *ret_len) {
        buf[n] = '\0';
        *ret = buf;
        *ret_len = n;
        return 0;
}

int fileio_read_fd(int fd, size_t max, unsigned flags, char **ret, size_t *ret_len) {
        _cleanup_free_ char *buf = NULL;
        char small[16384];
        size_t want = MIN(sizeof(small), max + 1), n, cap;
        struct stat st;
        ssize_t k;
        int r;

        assert(fd >= 0 && ret && ret_len);
        do
                k = read(fd, small, want);
        while (k < 0 && errno == EINTR);
        if (k < 0)
                return -errno;
        n = (size_t) k;
        if (n > max)
                return -EFBIG;
        if (n == 0 || ((flags & FILEIO_READ_REGULAR) && n < want)) {
                buf = malloc(n + 1);
                if (!buf)
                        return -ENOMEM;
                memcpy(buf, small, n);
                return take_buffer(TAKE_PTR(buf), n, ret, ret_len);
        }
        /* A regular file's size is the first guess, a pipe grows by doubling; at
         * most one byte more than the limit is asked for, so more is detected. */
        cap = n * 2;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t) st.st_size >= n)
                cap = (uint64_t) st.st_size < max ? (size_t) st.st_size + 1 : max + 1;
        cap = MIN(cap, max + 1);
        buf = malloc(cap + 1);
        if (!buf)
                return -ENOMEM;
        memcpy(buf, small, n);
        for (;;) {
                r = read_into(fd, buf, cap, &n);
                if (r < 0)
                        return r;
                if (n > max)
                        return -EFBIG;
                if (n < cap)
                        return take_buffer(TAKE_PTR(buf), n, ret, ret_len);
                /* Full below the limit: grow (a pipe, or a file that grew since fstat()). */
                size_t ncap = MIN(cap * 2, max + 1);
                char *nb = realloc(buf, ncap + 1);
                if (!nb)
                        return -ENOMEM;
                buf = nb;
                cap = ncap;
        }
}

int fileio_read_string(const char *path, size_t max, bool strip_newline, char **ret) {
        _cleanup_close_ int fd = -1;
        char *buf;
        size_t n;
        int r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        r = fileio_read_fd(fd, max, 0, &buf, &n);
        if (r < 0)
                return r;
        if (strip_newline)
                while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
                        buf[--n] = '\0';
        *ret = buf;
        return 0;
}
