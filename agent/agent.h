/* coord-agent's core: the agent and its instances, on one sd-event loop.
 *
 * Modules (one concern each):
 *   agent.c      lifecycle, probes scheduling, state changes, sd_notify, reload
 *   registry.c   Redis registration, heartbeats, state-change events
 *   commands.c   the durable command queue (exactly-once results)
 *   advertise.c  following advertised config and writing it
 *   hook.c probe.c health.c state.c fileio.c advertise-render.c: building blocks */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <systemd/sd-event.h>

#include "macro.h"

#include "agent-config.h"
#include "health.h"
#include "hook.h"
#include "probe.h"
#include "redis_client.h"

struct agent;
struct instance;

struct instance {
        struct agent *agent;
        const struct agent_service_config *cfg; /* points into agent->config */
        char *id;
        char *version;             /* installed */
        struct health health;
        bool has_probe;
        bool draining;
        bool stopped;
        int64_t config_version;    /* applied advertised config version */
        char *detail;              /* last problem, "" when none */
        uint64_t registered_at_ms;
        const char *published_state; /* last state written to Redis */
        enum health_state published_health;
        bool registered;           /* written to Redis at least once since start */

        sd_event_source *probe_timer;
        struct probe_run *probe;
        char *last_probe_error;

        /* advertise.c */
        bool config_busy, config_again;
        int64_t config_failed_version;
        struct hook *reload_hook;
        char *config_pending_text;  /* the rendered content being applied */
        int64_t config_pending_version;
        json_t *applied_config;     /* kept only to re-register its secrets */
        json_t *pending_config;

        /* a command waiting for the config to reach a version (apply-config) */
        void (*config_waiter)(struct instance *in, bool ok, const char *error, void *userdata);
        void *config_waiter_data;
        int64_t config_waiter_version;
};

struct agent {
        sd_event *event;
        char *config_path;
        struct agent_config *config;
        struct redis_url *url; /* redis as configured at start; in use: redis_client_url() */
        struct redis_client *redis;
        struct prober *prober;
        struct instance **instances;
        size_t n_instances;

        sd_event_source *heartbeat_timer;
        sd_event_source *sigterm, *sigint, *sighup;
        bool ready_sent;
        bool stopping;
        bool reload_pending;
        char last_status[512];
        /* Why the last SIGHUP changed nothing ("" when it worked): a refused
         * file, or new Redis credentials that did not work.  In STATUS=. */
        char reload_error[256];

        /* registry.c: the final "stopped" round */
        unsigned stop_pending;
        void (*stop_done)(struct agent *a);
        sd_event_source *stop_timeout;

        /* commands.c */
        struct commands *commands;
};

/* main.c entry points.  agent_new() takes ownership of config, also on
 * failure (it is freed then); e is referenced, config_path copied.  *ret is
 * written only on success. */
int agent_new(sd_event *e, const char *config_path, struct agent_config *config, struct agent **ret);
struct agent *agent_free(struct agent *a);
int agent_start(struct agent *a);

/* Called by modules */
struct instance *agent_find_instance(struct agent *a, const char *id);
const char *instance_state(const struct instance *in);
/* Log with the instance's COORD_SERVICE= and COORD_INSTANCE= fields. */
void instance_log(int level, const struct instance *in, const char *fmt, ...) _printf_(3, 4);
/* Recompute the fleet state of in and, if it changed, publish it at once. */
void instance_state_changed(struct instance *in);
/* Persist version/config_version into state_dir (logs failures). */
void instance_save_state(struct instance *in);
void instance_set_detail(struct instance *in, const char *detail);
/* Health back to starting (after deploy or restart). */
void instance_restart_health(struct instance *in);
/* The whole environment of in's hooks, exec probe and reload command (hook_env_build():
 * the allow-listed and hooks.pass_env variables of the agent's environment,
 * the agent's TLS files as COORD_TLS_CA_FILE, COORD_TLS_CERT_FILE and
 * COORD_TLS_KEY_FILE unless hooks.env names any COORD_TLS_*, hooks.env, then
 * the COORD_* variables of CONTRACT.md): "K=V" strings,
 * NULL-terminated, freed with strv_free(); NULL when out of memory.
 * target_version NULL: no COORD_PREVIOUS_VERSION/COORD_DEPLOYMENT, COORD_VERSION
 * is the installed one.  migrate_phase (COORD_MIGRATE_PHASE) may be NULL. */
char **instance_env(const struct instance *in, const char *target_version, const char *deployment,
                    const char *migrate_phase);
void agent_update_status(struct agent *a);
/* Run a reload deferred while a command was running. */
void agent_reload_if_pending(struct agent *a);

/* registry.c */
void registry_register(struct agent *a, struct instance *in, const char *event_prev_state);
/* Refresh every instance; announce: also publish each one's state (after a (re)connect). */
void registry_heartbeat(struct agent *a, bool announce);
/* Mark instances stopped in Redis; done() is called when written or after a timeout. */
void registry_stop_all(struct agent *a, struct instance **list, size_t n, void (*done)(struct agent *a));

/* commands.c */
/* Borrows a (the agent owns its command queue).  *ret only on success. */
int commands_new(struct agent *a, struct commands **ret);
struct commands *commands_free(struct commands *c);
/* Redis (re)connected or a wake-up arrived: look at the queue. */
void commands_kick(struct commands *c, bool reconnected);
bool commands_busy(struct commands *c);
/* Shutting down: kill a running hook (its command is reported interrupted on the next start). */
void commands_stop(struct commands *c);

/* advertise.c */
/* Fetch the advertised config of in's service and apply it if newer. */
void advertise_reconcile(struct instance *in, bool explicit_request);
void advertise_on_changed(struct agent *a, const char *service);
void advertise_cancel(struct instance *in);
/* At start: load in's applied config recorded in state_dir (when config_version
 * says one was applied) and register its secrets with the logger. */
void advertise_restore(struct instance *in);
