/* The model of one deployment as coordctl shows it, and its rendering: load it
 * from the deployment JSON (GET /v1/deployments/ID), apply the event stream's
 * data objects to it, render the live view, the status summary, one plain line
 * per event and the final summary into strings.  Pure: no I/O; the clock is an
 * argument.  Every string from the server is rendered with control characters
 * replaced, so neither an error message nor hook output can drive the terminal. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

struct deploy_view_progress {
        int64_t total, done, failed, lost, reverted;
};

struct deploy_view_instance {
        char *id, *host, *state, *from, *to, *error;
        bool lost, skipped;
        uint64_t since_usec;   /* server time the current step began; 0 unknown */
        uint64_t started_usec; /* server time its first step began; 0 unknown */
        uint64_t ended_usec;   /* server time it reached done/failed/reverted; 0 while not */
};

struct deploy_view_migration {
        char *state, *instance, *error; /* state NULL: no such migration */
        bool has_exit_code;
        int64_t exit_code;
};

struct deploy_view {
        char *id, *service, *version, *previous_version;
        char *state, *phase, *requested, *error;
        json_t *last_event; /* the latest event applied (a reference), NULL before any */
        char *strategy; /* "max_parallel 1, canary 0, ...", from the deployment JSON */
        bool migrate;
        char *created_at, *updated_at, *finished_at; /* as the server wrote them */
        uint64_t created_usec, finished_usec;        /* parsed; 0 unknown */
        struct deploy_view_progress progress;
        struct deploy_view_migration pre, post;
        struct deploy_view_instance *instances;
        size_t n_instances;

        /* local clock minus server clock, estimated from the newest server
         * timestamps seen (an upper bound: each was in the past when seen) */
        int64_t skew_usec;
        bool has_skew;
};

struct deploy_view *deploy_view_new(void);
struct deploy_view *deploy_view_free(struct deploy_view *v);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct deploy_view *, deploy_view_free)
#define _cleanup_deploy_view_ _cleanup_(deploy_view_freep)

/* Replace the model's content with the deployment object d (borrowed).
 * now_usec is the local realtime clock when d arrived.  0, -EINVAL when d is
 * not an object with an "id", -ENOMEM. */
int deploy_view_load(struct deploy_view *v, json_t *d, uint64_t now_usec);
/* The event types deploy_view_apply() and deploy_event_describe() know (the
 * "type" of an event's data object); -EINVAL, NULL otherwise. */
enum deploy_event_type {
        DEPLOY_EVENT_STATE,
        DEPLOY_EVENT_INSTANCE,
        DEPLOY_EVENT_MIGRATION,
        _DEPLOY_EVENT_TYPE_MAX,
};
const char *deploy_event_type_to_string(enum deploy_event_type t);
int deploy_event_type_from_string(const char *s);

/* Apply one event's data object (borrowed): "state", "instance" and
 * "migration" events; other types only update progress and the message.
 * 0, -EINVAL when ev is not an object with a "type", -ENOMEM. */
int deploy_view_apply(struct deploy_view *v, json_t *ev, uint64_t now_usec);

/* Deployment states after which nothing changes any more (unless reverted). */
bool deploy_state_is_terminal(const char *state);
/* Instance steps in progress: draining, updating, verifying. */
bool deploy_step_is_active(const char *state);

/* One line describing an event, without its time stamp:
 * "web-1 updating 1.0 -> 2.0", "deployment rolling", "migration pre done on
 * web-1 (exit 0)".  utf8 picks "→" over "->".  Caller frees; NULL on ENOMEM. */
char *deploy_event_describe(json_t *ev, bool utf8);

struct deploy_view_render_opts {
        uint64_t now_usec;  /* local realtime clock */
        unsigned width;     /* columns per line, 0: no limit */
        unsigned height;    /* lines at most, 0: no limit (instances are elided to fit) */
        bool utf8;          /* "→", "█░" and "…" instead of "->", "#-" and "~" */
        const char *notice; /* an extra last line (connection trouble), or NULL */
};

/* The live view: header, progress bar with state and elapsed time, one line per
 * instance, migrations, the latest message.  Lines end in "\n"; *ret_lines is
 * their count.  Caller frees *ret.  0 or -ENOMEM. */
int deploy_view_render(const struct deploy_view *v, const struct deploy_view_render_opts *o, char **ret,
                       size_t *ret_lines);
/* The live view's first line, "Deployment ID: web 1.0 -> 2.0", without a line
 * end.  Caller frees; NULL on ENOMEM. */
char *deploy_view_render_header(const struct deploy_view *v, bool utf8);
/* The "coordctl status" summary: header, state, times, strategy, migrations,
 * error, then the instance lines of the live view.  Caller frees; NULL on ENOMEM. */
char *deploy_view_render_status(const struct deploy_view *v, const struct deploy_view_render_opts *o);
/* One line summing up where the deployment is, e.g. "Deployment ID succeeded
 * in 1m04s: web 1.0 -> 2.0, 3/3 instances done".  Caller frees; NULL on ENOMEM. */
char *deploy_view_summary(const struct deploy_view *v, const struct deploy_view_render_opts *o);

/* "2026-12-01T10:00:01.200Z" (also "+HH:MM"/"-HH:MM" offsets, any number of
 * fraction digits) to microseconds since the epoch.  0 or -EINVAL. */
int deploy_parse_timestamp(const char *s, uint64_t *ret_usec);
/* "4s", "1m05s", "2h03m": elapsed time compactly into buf (>= 16 bytes). */
char *deploy_format_elapsed(uint64_t usec, char *buf, size_t size);
/* Copy of s with C0/C1 control characters and DEL replaced by spaces (tabs and
 * newlines too), so server text is one harmless line.  NULL on ENOMEM. */
char *deploy_clean_text(const char *s);
