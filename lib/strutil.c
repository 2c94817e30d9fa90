/* See strutil.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "macro.h"
#include "strutil.h"

int parse_uint64(const char *s, uint64_t *ret) {
        unsigned long long v;
        char *end;

        if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno == ERANGE)
                return -ERANGE;
        if (*end || end == s)
                return -EINVAL;
        *ret = (uint64_t) v;
        return 0;
}

int parse_int64(const char *s, int64_t *ret) {
        long long v;
        char *end;

        if (!s || !*s || *s == ' ')
                return -EINVAL;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno == ERANGE)
                return -ERANGE;
        if (*end || end == s)
                return -EINVAL;
        *ret = (int64_t) v;
        return 0;
}

int parse_int(const char *s, int *ret) {
        int64_t v;
        int r = parse_int64(s, &v);
        if (r < 0)
                return r;
        if (v < INT32_MIN || v > INT32_MAX)
                return -ERANGE;
        *ret = (int) v;
        return 0;
}

int parse_bool(const char *s, bool *ret) {
        static const char *const yes[] = { "true", "yes", "1", "on" };
        static const char *const no[] = { "false", "no", "0", "off" };

        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                if (strcasecmp(s, yes[i]) == 0) {
                        *ret = true;
                        return 0;
                }
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                if (strcasecmp(s, no[i]) == 0) {
                        *ret = false;
                        return 0;
                }
        return -EINVAL;
}

bool name_is_valid(const char *s) {
        size_t n;

        if (!s || !*s)
                return false;
        n = strlen(s);
        if (n > NAME_MAX_LEN)
                return false;
        if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= '0' && s[0] <= '9')))
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '_' || c == '-'))
                        return false;
        }
        if (strstr(s, ".."))
                return false;
        return true;
}

bool version_is_valid(const char *s) {
        size_t n;

        if (!s)
                return false;
        n = strlen(s);
        if (n == 0 || n > 128)
                return false;
        for (size_t i = 0; i < n; i++) {
                char ch = s[i];
                if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                      strchr("._-+~", ch)))
                        return false;
        }
        return true;
}

void errbuf_vprintf(char *buf, size_t len, const char *fmt, va_list ap) {
        if (!buf || len == 0)
                return;
        (void) vsnprintf(buf, len, fmt, ap);
}

void errbuf_printf(char *buf, size_t len, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        errbuf_vprintf(buf, len, fmt, ap);
        va_end(ap);
}

char *strdup_printf(const char *fmt, ...) {
        va_list ap;
        char *r;
        int n;

        va_start(ap, fmt);
        n = vasprintf(&r, fmt, ap);
        va_end(ap);
        return n < 0 ? NULL : r;
}

bool memeq_consttime(const void *a, size_t alen, const void *b, size_t blen) {
        const unsigned char *x = a, *y = b;
        unsigned char d = 0;

        if (alen != blen)
                return false;
        for (size_t i = 0; i < alen; i++)
                d |= (unsigned char) (x[i] ^ y[i]);
        return d == 0;
}

void sha256_hex(const void *data, size_t len, char out[65]) {
        unsigned char md[32];
        unsigned int mdlen = 0;

        EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
        /* A table, not snprintf(): status hashes thousands of migration files. */
        for (unsigned i = 0; i < 32; i++) {
                out[2 * i] = "0123456789abcdef"[md[i] >> 4];
                out[2 * i + 1] = "0123456789abcdef"[md[i] & 15];
        }
        out[64] = '\0';
}

int random_bytes(void *buf, size_t n) {
        size_t got = 0;

        while (got < n) {
                ssize_t k = getrandom((char *) buf + got, n - got, 0);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                got += (size_t) k;
        }
        return 0;
}

int random_hex(char *out, size_t nbytes) {
        unsigned char b[64];
        int r;

        if (nbytes > sizeof b)
                return -EINVAL;
        r = random_bytes(b, nbytes);
        if (r < 0)
                return r;
        for (size_t i = 0; i < nbytes; i++)
                snprintf(out + 2 * i, 3, "%02x", b[i]);
        out[2 * nbytes] = '\0';
        return 0;
}

int read_file_string(const char *path, size_t max, bool strip_newline, char **ret) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        size_t n = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        buf = malloc(max + 2);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t k = read(fd, buf + n, max + 1 - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                n += (size_t) k;
                if (n > max)
                        return -EFBIG;
        }
        buf[n] = '\0';
        if (strip_newline)
                while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
                        buf[--n] = '\0';
        *ret = TAKE_PTR(buf);
        return 0;
}
