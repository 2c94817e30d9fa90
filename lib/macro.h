/* Small macros every module uses: cleanup attributes and ownership transfer.
 * Modelled on systemd's macro.h. */
#pragma once

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _noreturn_ __attribute__((noreturn))
#define _likely_(x) __builtin_expect(!!(x), 1)
#define _unlikely_(x) __builtin_expect(!!(x), 0)

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define MIN(a, b) ((a) < (b) ? (a) : (b))

/* Hand ownership out of a _cleanup_ variable: returns the pointer, leaves NULL. */
#define TAKE_PTR(p)                     \
        ({                              \
                typeof(p) _p_ = (p);    \
                (p) = NULL;             \
                _p_;                    \
        })
#define TAKE_FD(fd)                     \
        ({                              \
                int _fd_ = (fd);        \
                (fd) = -1;              \
                _fd_;                   \
        })

/* enum <-> string through one table (systemd's DEFINE_STRING_TABLE_LOOKUP):
 * needs "static const char *const name##_table[max]"; defines
 * name##_to_string() (NULL when out of range) and name##_from_string()
 * (-EINVAL when unknown). */
#define DEFINE_STRING_TABLE_LOOKUP(name, type, max)                                     \
        const char *name##_to_string(type i) {                                          \
                return (int) i >= 0 && (int) i < (max) ? name##_table[i] : NULL;        \
        }                                                                               \
        int name##_from_string(const char *s) {                                         \
                if (!s)                                                                 \
                        return -EINVAL;                                                 \
                for (int i = 0; i < (max); i++)                                         \
                        if (name##_table[i] && strcmp(name##_table[i], s) == 0)         \
                                return i;                                               \
                return -EINVAL;                                                         \
        }

/* The index of s in table[0..n) (entries may be NULL), or -EINVAL (also for a NULL s):
 * what every *_from_string() below does. */
static inline int string_table_lookup(const char *const *table, int n, const char *s) {
        if (!s)
                return -EINVAL;
        for (int i = 0; i < n; i++)
                if (table[i] && strcmp(table[i], s) == 0)
                        return i;
        return -EINVAL;
}

/* The halves of DEFINE_STRING_TABLE_LOOKUP, for a table that needs only one of them or a
 * from_string() of another shape (one that writes *ret, say, built on
 * string_table_lookup()); scope is empty or "static". */
#define _DEFINE_STRING_TABLE_LOOKUP_TO_STRING(name, type, max, scope)                     \
        scope const char *name##_to_string(type i) {                                    \
                return (int) i >= 0 && (int) i < (max) ? name##_table[i] : NULL;        \
        }
#define _DEFINE_STRING_TABLE_LOOKUP_FROM_STRING(name, type, max, scope)                   \
        scope int name##_from_string(const char *s) {                                   \
                return string_table_lookup(name##_table, (max), s);                     \
        }
#define DEFINE_STRING_TABLE_LOOKUP_TO_STRING(name, type, max) \
        _DEFINE_STRING_TABLE_LOOKUP_TO_STRING(name, type, max, )
#define DEFINE_STRING_TABLE_LOOKUP_FROM_STRING(name, type, max) \
        _DEFINE_STRING_TABLE_LOOKUP_FROM_STRING(name, type, max, )
/* Both, static, for a table private to one file (either may go unused). */
#define DEFINE_PRIVATE_STRING_TABLE_LOOKUP(name, type, max)                               \
        _DEFINE_STRING_TABLE_LOOKUP_TO_STRING(name, type, max, static _unused_)         \
        _DEFINE_STRING_TABLE_LOOKUP_FROM_STRING(name, type, max, static _unused_)

/* Define a cleanup helper that calls func(*p) when *p is not NULL. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)          \
        static inline void func##p(type *p) {            \
                if (*p)                                  \
                        func(*p);                        \
        }

/* Exchange two lvalues of the same type. */
#define SWAP(x, y)                          \
        do {                                \
                typeof(x) _swap_t = (x);    \
                (x) = (y);                  \
                (y) = _swap_t;              \
        } while (0)

/* free(p) and return NULL: x = mfree(x); */
static inline void *mfree(void *p) {
        free(p);
        return NULL;
}

static inline void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline void closep(int *fd) {
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f) {
        if (*f)
                fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Turn a negative errno into a positive one for strerror()/%m. */
#define ERRNO_VALUE(r) ((r) < 0 ? -(r) : (r))
