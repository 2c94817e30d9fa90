/* See strutil.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <openssl/evp.h>

#include "macro.h"
#include "strutil.h"

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
