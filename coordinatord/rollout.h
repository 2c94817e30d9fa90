/* The rolling-deployment state machine (docs/deployments.md), pure: no I/O,
 * no clock, no randomness.  The reconciler (reconciler.c) feeds it the
 * deployment record, the service's fleet snapshot, the results of the
 * commands it is waiting for, a pending control request and the time (Redis
 * server time, ms); it gets back the record changed in place plus the
 * commands to send and the events to append, which it commits atomically
 * (one fenced Lua script) before anything else happens.
 *
 * Command ids are "<deployment id>-<n>" with n from the record, so a step is
 * named before it is sent and a new leader awaits, never re-sends, it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "command.h"
#include "macro.h"

enum dep_state {
        DEP_PENDING,
        DEP_MIGRATING,
        DEP_CANARY,
        DEP_ROLLING,
        DEP_POST_MIGRATING,
        DEP_PAUSED,
        DEP_SUCCEEDED,
        DEP_FAILED,
        DEP_REVERTING,
        DEP_REVERTED,
        DEP_CANCELLED,
        _DEP_STATE_MAX,
};

enum step_state {
        STEP_PENDING,
        STEP_DRAINING,
        STEP_UPDATING,
        STEP_VERIFYING,
        STEP_DONE,
        STEP_FAILED,
        STEP_REVERTED,
        _STEP_STATE_MAX,
};

enum mig_state {
        MIG_NONE,
        MIG_RUNNING,
        MIG_DONE,
        MIG_FAILED,
        _MIG_STATE_MAX,
};

/* Where an instance stands in a revert. */
enum revert_state {
        RV_NONE,    /* nothing to revert (or no revert under way) */
        RV_WAIT,    /* a forward command is still running: await it first */
        RV_PENDING, /* to be reverted */
        RV_ACTIVE,  /* being reverted */
        RV_DONE,
        RV_FAILED,
        _RV_STATE_MAX,
};

const char *dep_state_to_string(enum dep_state s);
int dep_state_from_string(const char *s); /* -EINVAL when unknown */
bool dep_state_is_terminal(enum dep_state s);
const char *step_state_to_string(enum step_state s);
int step_state_from_string(const char *s);
const char *mig_state_to_string(enum mig_state s);
int mig_state_from_string(const char *s);
const char *revert_state_to_string(enum revert_state s);
int revert_state_from_string(const char *s);

struct rollout_strategy {
        int64_t max_parallel;        /* >= 1 */
        int64_t canary;              /* >= 0 */
        int64_t min_healthy_ms;
        int64_t healthy_deadline_ms;
        int64_t progress_deadline_ms;
        int64_t drain_delay_ms;
        bool auto_revert;
};

/* Defaults of CONTRACT.md: 1, 0, 10s, 5m, 10m, 0s, true. */
void rollout_strategy_default(struct rollout_strategy *ret);

struct rollout_migration {
        enum mig_state state;
        char *instance, *cmd, *error, *output;
        int64_t exit_code; /* valid once done or failed */
        bool has_exit;
};

struct rollout_instance {
        char *id, *host, *from, *to;
        enum step_state state;
        char *error;
        bool lost, skipped, canary;
        int64_t started_at, updated_at; /* ms; 0: never */
        /* internal */
        char *cmd;                      /* the command awaited, or NULL */
        enum command_type cmd_type;
        bool drained;                   /* drained by this deployment and not undrained since */
        bool changed;                   /* a deploy command was sent: a revert must undo it */
        int64_t wait_until;             /* end of drain_delay */
        int64_t deadline;               /* healthy deadline */
        int64_t healthy_since;          /* 0: not healthy (yet) */
        enum revert_state rv;
};

struct rollout {
        char *id, *service, *version, *previous_version;
        enum dep_state state;
        enum dep_state phase;    /* where a paused deployment resumes; == state otherwise */
        struct rollout_strategy strategy;
        bool migrate;
        bool planned;
        int64_t created_at, updated_at, finished_at; /* ms */
        int64_t progress_at;     /* the progress deadline counts from here */
        char *error;
        char *created_by;        /* the token's name */
        struct rollout_migration pre, post;
        struct rollout_instance *instances;
        size_t n_instances;
        uint64_t next_cmd;
};

struct rollout *rollout_free(struct rollout *d);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct rollout *, rollout_free)

/* A new pending deployment (strings copied).  -ENOMEM. */
int rollout_new(const char *id, const char *service, const char *version, const struct rollout_strategy *st,
                bool migrate, const char *created_by, int64_t now_ms, struct rollout **ret);

/* ---- inputs and outputs of a step ---- */

struct rollout_fleet_entry {
        const char *id, *host, *version;
        const char *state;  /* fleet state: starting healthy unhealthy draining stopped lost */
        const char *health; /* probe view: starting healthy unhealthy (also while draining) */
        bool lost;
};

struct rollout_result {
        const char *cmd;
        bool finished;      /* a final result was written */
        bool ok;
        int64_t exit_code;
        const char *error, *output;
};

struct rollout_input {
        const struct rollout_fleet_entry *fleet; /* the service's instances, any order */
        size_t n_fleet;
        const struct rollout_result *results;    /* for the commands the record awaits */
        size_t n_results;
        const char *request;                     /* pause resume cancel revert, or NULL */
        int64_t now;                             /* ms */
};

struct rollout_cmd {
        char *id;
        enum command_type type;
        char *instance, *host, *version;
        const char *phase;  /* static; migrate only */
};

struct rollout_output {
        struct rollout_cmd *cmds;
        size_t n_cmds;
        json_t *events;          /* array of event objects (docs/deployments.md) */
        bool changed;            /* the record must be written */
        bool *dirty;             /* [n_instances]: these instances changed (NULL: none) */
        bool request_consumed;   /* the request was carried out or refused: clear it */
};

void rollout_output_done(struct rollout_output *o);

/* Advance d by one step.  0, or -ENOMEM (d may then be half-changed: drop it
 * and reload). */
int rollout_step(struct rollout *d, const struct rollout_input *in, struct rollout_output *out);

/* The command ids the record awaits (instances and migrations), borrowed
 * from d; *ret_n of them in *ret (caller frees the array). */
int rollout_awaited(const struct rollout *d, const char ***ret, size_t *ret_n);

/* Counts for "progress". */
struct rollout_progress {
        size_t total, done, failed, lost, reverted;
};
void rollout_progress(const struct rollout *d, struct rollout_progress *ret);

/* ---- the record as JSON (rollout-json.c) ----
 * internal: also the fields only the controller needs, under "_" keys (the
 * stored form); public: the API's deployment JSON. */
json_t *rollout_to_json(const struct rollout *d, bool internal);
/* The record without "instances", and one instance: the stored form keeps
 * them apart (the header in the record hash, each instance in the instances
 * hash) so that a step writes only the instances it changed. */
json_t *rollout_header_to_json(const struct rollout *d, bool internal);
json_t *rollout_instance_to_json(const struct rollout_instance *x, bool internal);
/* Put the stored instances (hash field values, any order) back into a
 * header as its sorted "instances" array.  -EINVAL when one is not valid JSON. */
int rollout_json_attach_instances(json_t *header, const char *const *values, const size_t *lens, size_t n);
/* Parse the stored form.  -EINVAL with errbuf naming the field. */
int rollout_from_json(json_t *j, struct rollout **ret, char *errbuf, size_t errlen);
/* Remove the "_" keys of a stored record in place (the API shows the rest). */
void rollout_json_strip_internal(json_t *j);
/* Strategy from an API request's "strategy" object (NULL: defaults).  -EINVAL
 * with errbuf naming the field. */
int rollout_strategy_from_json(json_t *j, struct rollout_strategy *ret, char *errbuf, size_t errlen);
json_t *rollout_strategy_to_json(const struct rollout_strategy *s);
json_t *rollout_progress_to_json(const struct rollout_progress *p);
