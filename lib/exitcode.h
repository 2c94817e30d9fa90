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

/* The exit code for a failure to connect to a dependency: a bad connection
 * string or unusable TLS files (-EINVAL) or a feature this build lacks
 * (-EPROTONOSUPPORT) is invalid input; everything else, TLS verification and
 * handshake failures included, means unreachable or refused. */
static inline int exit_code_for_connect(int r) {
        switch (r < 0 ? -r : r) {
        case 22 /* EINVAL */:
        case 93 /* EPROTONOSUPPORT */:
                return EXIT_USAGE;
        default:
                return EXIT_UNAVAILABLE;
        }
}
