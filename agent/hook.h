/* Child processes for hooks, exec probes and reload commands, on the sd-event loop.
 *
 * The command runs as `/bin/sh -c COMMAND` in its own process group with stdin
 * on /dev/null and stdout+stderr on a pipe; each output line is logged with
 * the service and instance as fields, and the last lines are kept for the
 * result.  Past the timeout the whole group gets SIGTERM, then SIGKILL one
 * second later, and the run fails with a clear reason.  Once the shell has
 * exited, output still arriving from background children is waited for a
 * short while only: a grandchild holding stdout open never stalls completion.
 * Its later output is still logged (marked "background") until it closes the
 * pipe, so a daemon started by a hook never dies of SIGPIPE. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "macro.h"

struct hook;

struct hook_spec {
        const char *name;       /* "deploy", "probe", "reload": for logs and errors */
        const char *command;    /* /bin/sh -c command line */
        const char *const *env; /* the child's whole environment ("KEY=value", NULL-terminated) from
                                 * hook_env_build(); NULL: hook_env_build(environ, NULL, NULL, NULL) */
        uint64_t timeout_usec;  /* 0: none */
        const char *service;    /* log fields */
        const char *instance;
        int output_level;       /* log level of output lines (LOG_INFO for hooks) */
};

struct hook_result {
        int exit_code;          /* 0..255, or -1 when killed by a signal or timed out */
        int signal;             /* terminating signal, 0 if none */
        bool timed_out;
        uint64_t duration_usec;
        const char *output;     /* the last lines of output, "" if none; valid during the callback */
        const char *error;      /* NULL on success, else a human reason; valid during the callback */
};

/* Called once when the run is over (unless the hook is freed first). */
typedef void (*hook_done_cb)(struct hook *h, const struct hook_result *res, void *userdata);

/* Start spec on e.  Returns 0 and *ret (owned by the caller, free it with
 * hook_free(), also from inside the callback), or -errno.  spec is read during
 * the call only (its strings are copied or used before it returns); e gets a
 * reference; userdata is borrowed until the callback or hook_free(). */
int hook_start(sd_event *e, const struct hook_spec *spec, hook_done_cb cb, void *userdata, struct hook **ret);
/* Kill a still running group (SIGKILL) and free; no callback.  Returns NULL. */
struct hook *hook_free(struct hook *h);
bool hook_is_running(const struct hook *h);
/* Free the readers of background children's output (at exit). */
void hook_sinks_free(void);
pid_t hook_pid(const struct hook *h);

/* The environment of every child the agent starts (hooks, exec probes, reload
 * commands): never the agent's own environment wholesale, which may hold its
 * configuration (COORD_REDIS with a password) or $CREDENTIALS_DIRECTORY.
 * In order, later entries replacing earlier ones of the same name:
 *   1. from base (the agent's environ) the allow-listed names (PATH, HOME,
 *      USER, LOGNAME, LANG, LANGUAGE, LC_*, TZ, TMPDIR) and the names in pass,
 *      but never a private one (hook_env_name_is_private());
 *   2. PATH=HOOK_DEFAULT_PATH when base has no PATH;
 *   3. set ("NAME=value": the service's hooks.env);
 *   4. coord ("NAME=value": the COORD_* variables of CONTRACT.md).
 * (The agent passes its TLS files, COORD_TLS_*, at the head of set.)
 * pass, set and coord may be NULL.  Returns 0 and *ret (NULL-terminated, owned
 * by the caller: strv_free()), or -ENOMEM. */
int hook_env_build(const char *const *base, const char *const *pass, const char *const *set,
                   const char *const *coord, char ***ret);
/* A shell variable name: [A-Za-z_][A-Za-z0-9_]*, at most HOOK_ENV_NAME_MAX bytes. */
bool hook_env_name_is_valid(const char *name);
/* COORD_* (the agent's configuration and the variables it sets itself) or
 * CREDENTIALS_DIRECTORY: never taken from the agent's environment. */
bool hook_env_name_is_private(const char *name);
/* A variable the agent sets itself (hook_env_build()'s coord), or
 * CREDENTIALS_DIRECTORY: hooks.env may not set it. */
bool hook_env_name_is_reserved(const char *name);

#define HOOK_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define HOOK_ENV_NAME_MAX 128

/* Size of the output tail kept for results. */
#define HOOK_TAIL_LINES 20
#define HOOK_TAIL_BYTES 4096
#define HOOK_LINE_MAX 4096
