/* Health probes on the sd-event loop, never blocking it:
 *   http: libcurl multi (socket API driven by sd-event); 2xx is healthy, no redirects followed.
 *   tcp:  libcurl multi with CURLOPT_CONNECT_ONLY; an established connection is healthy.
 *   exec: /bin/sh -c COMMAND through hook.h (own process group, killed at the timeout); exit 0 is healthy. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

struct prober;
struct probe_run;

enum probe_kind { PROBE_HTTP, PROBE_TCP, PROBE_EXEC };

struct probe_spec {
        enum probe_kind kind;
        const char *target;     /* URL, host:port or command */
        uint64_t timeout_usec;
        const char *const *env; /* exec: the whole environment (hook_spec.env: built by hook_env_build()) */
        const char *service, *instance;
};

/* ok: healthy; reason: why not (NULL when ok), valid during the callback. */
typedef void (*probe_done_cb)(struct probe_run *run, bool ok, const char *reason, void *userdata);

/* e gets a reference.  *ret written only on success; 0 or -errno. */
int prober_new(sd_event *e, struct prober **ret);
/* Cancels every outstanding run (without callbacks). */
struct prober *prober_free(struct prober *p);

/* Start one probe.  cb runs exactly once unless the run is cancelled first.
 * *ret is owned by the prober until the callback returns; keep it only to cancel.
 * spec is read during the call only (an exec probe copies what it keeps);
 * userdata is borrowed until the callback or the cancel. */
int prober_start(struct prober *p, const struct probe_spec *spec, probe_done_cb cb, void *userdata,
                 struct probe_run **ret);
void probe_run_cancel(struct probe_run *run);
