/* coordctl: shared state of the command line and the subcommand entry points. */
#pragma once

#include <stdbool.h>

enum coordctl_output {
        OUTPUT_TEXT,
        OUTPUT_JSON,
};

struct coordctl_globals {
        const char *url;   /* --url, $COORD_URL, default http://127.0.0.1:8470 */
        char *token;       /* --token, $COORD_TOKEN, or the content of $COORD_TOKEN_FILE; may be NULL */
        enum coordctl_output output;
};

/* Each returns a process exit code (exitcode.h).  argv[0] is the subcommand
 * name; global flags have been removed already. */
int coordctl_lock_main(int argc, char **argv, const struct coordctl_globals *g);
int coordctl_migrate_main(int argc, char **argv, const struct coordctl_globals *g);
int coordctl_instances_main(int argc, char **argv, const struct coordctl_globals *g);
int coordctl_config_main(int argc, char **argv, const struct coordctl_globals *g);
/* deploy, status, deployments, pause, resume, cancel, revert: the rollout issue. */
int coordctl_deploy_main(int argc, char **argv, const struct coordctl_globals *g);

/* One request to coordinatord (coordctl-api.c): path like "/v1/instances",
 * body NULL or JSON, headers NULL or NULL-terminated "Name: value" lines.
 * 0 with the status and the body (caller frees); -EHOSTUNREACH (message
 * printed) when coordinatord cannot be reached. */
int coordctl_http(const struct coordctl_globals *g, const char *method, const char *path, const char *body,
                  const char *const *headers, long *ret_status, char **ret_body);
