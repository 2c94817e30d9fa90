/* coordctl lock (being written). */
#include <stdio.h>

#include "coordctl.h"
#include "exitcode.h"

int coordctl_lock_main(int argc, char **argv, const struct coordctl_globals *g) {
        fprintf(stderr, "coordctl lock: not built yet\n");
        return EXIT_USAGE;
}
