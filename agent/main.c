/* coord-agent (skeleton: being written). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "exitcode.h"
#include "log.h"

static void help(void) {
        printf("Usage: coord-agent [--config PATH] [--check-config]\n"
               "  --config PATH    configuration file (default /etc/coord/agent.json)\n"
               "  --check-config   validate, print the effective config (secrets masked), exit\n"
               "  -h, --help       show this help\n"
               "  --version        show the version\n");
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                { "config", required_argument, NULL, 'c' },
                { "check-config", no_argument, NULL, 'C' },
                {}
        };
        int c;

        log_open("coord-agent");
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0)
                switch (c) {
                case 'h': help(); return EXIT_OK;
                case 'V': printf("coord-agent %s\n", COORD_VERSION); return EXIT_OK;
                case 'c': case 'C': break;
                default: return EXIT_USAGE;
                }
        log_error("not built yet");
        return EXIT_USAGE;
}
