/* coordctl lock: argument parsing, separate from running so it can be tested
 * (tests/unit/test-coordctl-lock.c). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define COORDCTL_LOCK_DEFAULT_LEASE_USEC (15 * UINT64_C(1000000))
#define COORDCTL_LOCK_MIN_LEASE_USEC (100 * UINT64_C(1000))

struct coordctl_lock_args {
        const char *name;
        const char *redis;      /* --redis, or NULL: the caller falls back to $COORD_REDIS */
        uint64_t lease_usec;    /* default 15s */
        uint64_t wait_usec;     /* UINT64_MAX (forever) unless --wait-timeout */
        char **command;         /* NULL-terminated, points into argv */
        int help;
};

/* Parse "lock NAME [FLAGS] [--] COMMAND [ARG...]" (argv[0] is "lock").
 * 0 with *ret; -EINVAL with a message naming the culprit in errbuf (ret untouched). */
int coordctl_lock_args_parse(int argc, char **argv, struct coordctl_lock_args *ret, char *errbuf, size_t errlen);
