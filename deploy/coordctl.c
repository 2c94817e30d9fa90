/* coordctl: the command line for people and CI/CD.  This file parses the
 * global flags and dispatches; each subcommand lives in coordctl-*.c. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coordctl.h"
#include "exitcode.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "strutil.h"

static const char *const coordctl_output_table[_OUTPUT_MAX] = {
        [OUTPUT_TEXT] = "text",
        [OUTPUT_JSON] = "json",
};
DEFINE_PRIVATE_STRING_TABLE_LOOKUP(coordctl_output, enum coordctl_output, _OUTPUT_MAX)

static void help(void) {
        printf("Usage: coordctl [GLOBAL FLAGS] COMMAND [ARGS...]\n"
               "\n"
               "Commands:\n"
               "  deploy SERVICE VERSION [...]   start a rolling deployment and follow it\n"
               "  status [DEPLOYMENT_ID]         one deployment, or the active ones\n"
               "  deployments [SERVICE]          deployment history\n"
               "  pause|resume|cancel|revert ID  control a deployment (revert --follow: watch it)\n"
               "  instances [--service S]        the fleet, with state and version\n"
               "  config get SERVICE [--reveal]  advertised distributed-mode config\n"
               "  config set SERVICE FILE|-      store a new config version\n"
               "  migrate [SUBCOMMAND] --dir DIR --database PGURL [--redis REDIS]\n"
               "                                 the migration and seeding sequencer\n"
               "  lock NAME --redis REDIS [--lease D] [--wait-timeout D] -- COMMAND [ARG...]\n"
               "                                 run COMMAND under a fenced distributed lock\n"
               "  doctor [--redis REDIS] [--namespace NS] [--config PATH]...\n"
               "                                 check Redis, coordinatord, agents and config files\n"
               "  acl agent|coordinatord|client [--namespace NS] ...\n"
               "                                 print a least-privilege Redis ACL user for a role\n"
               "\n"
               "Global flags:\n"
               "  --url URL[,URL...] coordinatord address (env COORD_URL, default http://127.0.0.1:8470);\n"
               "                     with several, each is tried in turn when one cannot be reached\n"
               "  --token TOKEN      bearer token (env COORD_TOKEN, or a file in COORD_TOKEN_FILE)\n"
               "  --output text|json output format (default text)\n"
               "  -h, --help         show this help\n"
               "  --version          show the version\n"
               "\n"
               "Exit codes: 0 ok, 1 failed, 2 usage, 3 dependency unreachable or auth refused,\n"
               "4 validation failed, 5 timed out, 130 interrupted (deploy stops following;\n"
               "the deployment goes on).\n"
               "Run 'coordctl COMMAND --help' for a command's flags.\n");
}

/* Each command and the coordctl-*.c entry point that runs it. */
static const struct {
        const char *name;
        int (*run)(int argc, char **argv, const struct coordctl_globals *g);
} commands[] = {
        { "lock", coordctl_lock_main },
        { "migrate", coordctl_migrate_main },
        { "instances", coordctl_instances_main },
        { "config", coordctl_config_main },
        { "doctor", coordctl_doctor_main },
        { "acl", coordctl_acl_main },
        { "deploy", coordctl_deploy_main },
        { "status", coordctl_deploy_main },
        { "deployments", coordctl_deploy_main },
        { "pause", coordctl_deploy_main },
        { "resume", coordctl_deploy_main },
        { "cancel", coordctl_deploy_main },
        { "revert", coordctl_deploy_main },
};

static int run_command(int argc, char **argv, const struct coordctl_globals *g) {
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (strcmp(argv[0], commands[i].name) == 0)
                        return commands[i].run(argc, argv, g);
        fprintf(stderr, "coordctl: unknown command '%s' (see coordctl --help)\n", argv[0]);
        return EXIT_USAGE;
}

/* Take a global flag's value from "--flag=v" or "--flag v"; NULL when absent. */
static const char *flag_value(int argc, char **argv, int *i, const char *flag) {
        size_t n = strlen(flag);

        if (strncmp(argv[*i], flag, n) != 0)
                return NULL;
        if (argv[*i][n] == '=')
                return argv[*i] + n + 1;
        if (argv[*i][n] == '\0') {
                if (*i + 1 >= argc) {
                        fprintf(stderr, "coordctl: %s needs a value\n", flag);
                        exit(EXIT_USAGE);
                }
                return argv[++*i];
        }
        return NULL;
}

int main(int argc, char **argv) {
        struct coordctl_globals g = { .output = OUTPUT_TEXT };
        char **rest;
        const char *output = NULL, *token = NULL, *v;
        int n = 0, r;

        log_open("coordctl");

        g.url = getenv("COORD_URL");
        if (!g.url || !*g.url)
                g.url = "http://127.0.0.1:8470";

        /* Global flags may appear anywhere before "--"; everything else is kept in order. */
        rest = calloc((size_t) argc + 1, sizeof(char *));
        if (!rest)
                return EXIT_FAILED;
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--") == 0) {
                        for (; i < argc; i++)
                                rest[n++] = argv[i];
                        break;
                }
                if ((v = flag_value(argc, argv, &i, "--url")))
                        g.url = v;
                else if ((v = flag_value(argc, argv, &i, "--token")))
                        token = v;
                else if ((v = flag_value(argc, argv, &i, "--output")))
                        output = v;
                else if (n == 0 && (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)) {
                        help();
                        free(rest);
                        return EXIT_OK;
                } else if (n == 0 && strcmp(argv[i], "--version") == 0) {
                        printf("coordctl %s\n", COORD_VERSION);
                        free(rest);
                        return EXIT_OK;
                } else
                        rest[n++] = argv[i];
        }

        if (output) {
                int o = coordctl_output_from_string(output);
                if (o >= 0)
                        g.output = (enum coordctl_output) o;
                else {
                        fprintf(stderr, "coordctl: --output: '%s' is not one of text, json\n", output);
                        free(rest);
                        return EXIT_USAGE;
                }
        }

        if (token)
                g.token = strdup(token);
        else if ((v = getenv("COORD_TOKEN")) && *v)
                g.token = strdup(v);
        else if ((v = getenv("COORD_TOKEN_FILE")) && *v) {
                r = fileio_read_string(v, 4096, true, &g.token);
                if (r < 0) {
                        fprintf(stderr, "coordctl: COORD_TOKEN_FILE=%s: %s\n", v, strerror(-r));
                        free(rest);
                        return EXIT_USAGE;
                }
        }

        if (n == 0) {
                help();
                free(rest);
                free(g.token);
                return EXIT_USAGE;
        }

        r = run_command(n, rest, &g);

        free(rest);
        free(g.token);
        return r;
}
