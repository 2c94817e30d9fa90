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

typedef struct hook hook;

struct hook_spec {
        const char *name;       /* "deploy", "probe", "reload": for logs and errors */
        const char *command;    /* /bin/sh -c command line */
        const char *const *env; /* extra "KEY=value" entries (NULL-terminated), or NULL */
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
typedef void (*hook_done_cb)(hook *h, const struct hook_result *res, void *userdata);

/* Start spec on e.  Returns 0 and *ret (owned by the caller, free it with
 * hook_free(), also from inside the callback), or -errno. */
int hook_start(sd_event *e, const struct hook_spec *spec, hook_done_cb cb, void *userdata, hook **ret);
/* Kill a still running group (SIGKILL) and free; no callback.  Returns NULL. */
hook *hook_free(hook *h);
bool hook_is_running(const hook *h);
/* Free the readers of background children's output (at exit). */
void hook_sinks_free(void);
pid_t hook_pid(const hook *h);

/* Size of the output tail kept for results. */
#define HOOK_TAIL_LINES 20
#define HOOK_TAIL_BYTES 4096
#define HOOK_LINE_MAX 4096
