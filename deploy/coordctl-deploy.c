/* coordctl deploy/status/deployments/pause/resume/cancel/revert: rollouts are a
 * later issue; until then these commands say so and exit 2. */
#include <stdio.h>

#include "coordctl.h"
#include "exitcode.h"

int coordctl_deploy_main(int argc, char **argv, const struct coordctl_globals *g) {
        fprintf(stderr, "coordctl %s: rolling deployments are not available in this version yet\n", argv[0]);
        return EXIT_USAGE;
}
