/* coordctl migrate (being written). */
#include <stdio.h>

#include "coordctl.h"
#include "exitcode.h"

int coordctl_migrate_main(int argc, char **argv, const struct coordctl_globals *g) {
        fprintf(stderr, "coordctl migrate: not built yet\n");
        return EXIT_USAGE;
}
