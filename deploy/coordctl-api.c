/* coordctl instances / config (being written). */
#include <stdio.h>

#include "coordctl.h"
#include "exitcode.h"

int coordctl_instances_main(int argc, char **argv, const struct coordctl_globals *g) {
        fprintf(stderr, "coordctl instances: not built yet\n");
        return EXIT_USAGE;
}

int coordctl_config_main(int argc, char **argv, const struct coordctl_globals *g) {
        fprintf(stderr, "coordctl config: not built yet\n");
        return EXIT_USAGE;
}
