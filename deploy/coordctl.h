/* coordctl: shared state of the command line and the subcommand entry points. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

enum coordctl_output {
        OUTPUT_TEXT,
        OUTPUT_JSON,
        _OUTPUT_MAX,
};

struct coordctl_globals {
        const char *url;   /* --url, $COORD_URL, default http://127.0.0.1:8470; may list several, comma-separated */
        char *token;       /* --token, $COORD_TOKEN, or the content of $COORD_TOKEN_FILE; may be NULL */
        enum coordctl_output output;
};

/* Each returns a process exit code (exitcode.h).  argv[0] is the subcommand
 * name; global flags have been removed already. */
int coordctl_lock_main(int argc, char **argv, const struct coordctl_globals *g);
int coordctl_migrate_main(int argc, char **argv, const struct coordctl_globals *g);
int coordctl_instances_main(int argc, char **argv, const struct coordctl_globals *g);
int coordctl_config_main(int argc, char **argv, const struct coordctl_globals *g);
/* doctor: checks Redis, coordinatord and config files (coordctl-doctor.c). */
int coordctl_doctor_main(int argc, char **argv, const struct coordctl_globals *g);
/* acl agent|coordinatord|client: least-privilege Redis ACL users (coordctl-acl.c). */
int coordctl_acl_main(int argc, char **argv, const struct coordctl_globals *g);
/* deploy, status, deployments, pause, resume, cancel, revert (coordctl-deploy.c). */
int coordctl_deploy_main(int argc, char **argv, const struct coordctl_globals *g);

/* --url and $COORD_URL may list several base URLs separated by commas
 * ("http://a:8470,http://b:8470"): every coordinatord serves the whole API. */
size_t coordctl_url_count(const struct coordctl_globals *g);
/* Base URL number i (modulo the count), blanks and trailing slashes dropped.
 * Caller frees; NULL on allocation failure. */
char *coordctl_url_base(const struct coordctl_globals *g, size_t i);
/* The number of the base URL that answered last (0 until one did); requests start there. */
size_t coordctl_url_current(void);

/* One attempt of one request at base URL number i: path like "/v1/instances",
 * body NULL or JSON, headers NULL or NULL-terminated "Name: value" lines (an
 * "Accept:" among them replaces the default application/json).  0 with the
 * status and the body (caller frees); on a transport failure -ENOTCONN when
 * nothing was sent (safe to try elsewhere) or -EIO when the request may have
 * arrived, with "URL: reason" in *ret_error (caller frees); -ENOMEM.  Prints
 * nothing. */
int coordctl_http_once(const struct coordctl_globals *g, size_t i, const char *method, const char *path,
                       const char *body, const char *const *headers, long *ret_status, char **ret_body,
                       char **ret_error);
/* One request to coordinatord, trying the base URLs in turn from the current
 * one: it moves on after a failure that sent nothing, and after any transport
 * failure of a GET or of a request with an "Idempotency-Key:" header.  0 with
 * the status and the body (caller frees); -EHOSTUNREACH (each failure printed)
 * when none answered; -ENOMEM. */
int coordctl_http(const struct coordctl_globals *g, const char *method, const char *path, const char *body,
                  const char *const *headers, long *ret_status, char **ret_body);
/* Print an error answer ("coordctl WHAT: coordinatord answered 409: message")
 * and return its exit code: 401/403/503 → 3, 400/413/415/422 → 2, else 1. */
int coordctl_http_failure(const char *what, long status, const char *body);
