/* What the libFuzzer targets (tests/fuzz/fuzz-*.c) share: the entry points,
 * a property check that aborts (so libFuzzer keeps the input as a crash), and
 * turning the raw input into strings. */
#pragma once

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond, ...)                                                   \
        do {                                                                    \
                if (!(cond)) {                                                  \
                        fprintf(stderr, "property violated: %s\n  ", #cond);    \
                        fprintf(stderr, __VA_ARGS__);                           \
                        fputc('\n', stderr);                                    \
                        abort();                                                \
                }                                                               \
        } while (0)

/* data[0..size) as a NUL-terminated string (cut at an embedded NUL); caller frees. */
static inline char *fuzz_string(const uint8_t *data, size_t size) {
        char *s = malloc(size + 1);

        if (!s)
                abort();
        memcpy(s, data, size);
        s[size] = '\0';
        return s;
}

/* The first line of *data (without its '\n') as a string; *data and *size move past it. */
static inline char *fuzz_line(const uint8_t **data, size_t *size) {
        const uint8_t *nl = memchr(*data, '\n', *size);
        size_t n = nl ? (size_t) (nl - *data) : *size;
        char *s = fuzz_string(*data, n);

        *data += nl ? n + 1 : n;
        *size -= nl ? n + 1 : n;
        return s;
}

/* Whether needle occurs in s[0..len) (any bytes). */
static inline int fuzz_contains(const char *s, size_t len, const char *needle) {
        return memmem(s, len, needle, strlen(needle)) != NULL;
}
