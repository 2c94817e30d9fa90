/* Exit codes shared by every program (CONTRACT.md). */
#pragma once

enum {
        EXIT_OK = 0,          /* success, or nothing to do */
        EXIT_FAILED = 1,      /* ran and failed: migration error, deployment failed, hook failed */
        EXIT_USAGE = 2,       /* bad flag, bad config, bad input; message names the culprit */
        EXIT_UNAVAILABLE = 3, /* could not reach Redis/PostgreSQL/coordinatord, or refused by auth */
        EXIT_VALIDATION = 4,  /* an applied migration changed or vanished */
        EXIT_TIMEOUT = 5,     /* lock wait or deployment --timeout expired */
};

/* Map a negative errno from connecting to a dependency to an exit code. */
static inline int exit_code_from_errno(int r) {
        switch (r < 0 ? -r : r) {
        case 0: return EXIT_OK;
        case 110 /* ETIMEDOUT */: return EXIT_TIMEOUT;
        case 22 /* EINVAL */: return EXIT_USAGE;
        default: return EXIT_UNAVAILABLE;
        }
}
