/* See agent.h.  The agent core: instances, probe scheduling, state changes,
 * the Redis connection, signals, sd_notify and configuration reloads. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "agent.h"
#include "duration.h"
#include "keys.h"
#include "log.h"
#include "macro.h"
#include "state.h"
#include "strutil.h"
#include "strv.h"

struct instance *agent_find_instance(struct agent *a, const char *id) {
        for (size_t i = 0; i < a->n_instances; i++)
                if (strcmp(a->instances[i]->id, id) == 0)
                        return a->instances[i];
        return NULL;
}

const char *instance_state(const struct instance *in) {
        return instance_state_name(in->health.state, in->draining, in->stopped);
}

extern char **environ;

static bool names_tls(const char *const *env) {
        for (size_t i = 0; env && env[i]; i++)
                if (strncmp(env[i], "COORD_TLS_", 10) == 0)
                        return true;
        return false;
}

/* What hooks.env sets, after the agent's TLS files for coordctl: paths only
 * (a key from the tls_key credential by its path, readable by the agent's
 * user, which hooks run as).  A hooks.env naming any COORD_TLS_* (a hook
 * talking to another Redis) gets none of the agent's: never a certificate
 * from one place and its key from another.  NULL-terminated, or NULL. */
static char **instance_set_vars(const struct instance *in) {
        const struct tls_options *tls = &in->agent->config->tls;
        const char *const *env = (const char *const *) in->cfg->hooks.env;
        size_t n = 0, m = strv_length(in->cfg->hooks.env);
        char **l;

        l = calloc(m + 4, sizeof *l);
        if (!l)
                return NULL;
        if (!names_tls(env)) {
                if (tls->ca_file)
                        l[n++] = strdup_printf("COORD_TLS_CA_FILE=%s", tls->ca_file);
                if (tls->cert_file)
                        l[n++] = strdup_printf("COORD_TLS_CERT_FILE=%s", tls->cert_file);
                if (tls->key_file)
                        l[n++] = strdup_printf("COORD_TLS_KEY_FILE=%s", tls->key_file);
        }
        for (size_t i = 0; i < m; i++)
                l[n++] = strdup(env[i]);
        for (size_t i = 0; i < n; i++)
                if (!l[i])
                        return strv_free_n(l, n);
        return l;
}

/* The COORD_* variables of CONTRACT.md for in, NULL-terminated (strv_free()). */
static char **instance_coord_vars(const struct instance *in, const char *target_version, const char *deployment,
                                  const char *migrate_phase) {
        char **l = calloc(9, sizeof *l);
        size_t n = 0;

        if (!l)
                return NULL;
        l[n++] = strdup_printf("COORD_SERVICE=%s", in->cfg->name);
        l[n++] = strdup_printf("COORD_INSTANCE=%s", in->id);
        l[n++] = strdup_printf("COORD_VERSION=%s", target_version ? target_version : in->version);
        l[n++] = strdup_printf("COORD_NAMESPACE=%s", in->agent->config->namespace);
        l[n++] = strdup_printf("COORD_HOST=%s", in->agent->config->host);
        if (target_version) {
                l[n++] = strdup_printf("COORD_PREVIOUS_VERSION=%s", in->version);
                l[n++] = strdup_printf("COORD_DEPLOYMENT=%s", deployment ? deployment : "");
        }
        if (migrate_phase)
                l[n++] = strdup_printf("COORD_MIGRATE_PHASE=%s", migrate_phase);
        for (size_t i = 0; i < n; i++)
                if (!l[i])
                        return strv_free_n(l, n);
        return l;
}

char **instance_env(const struct instance *in, const char *target_version, const char *deployment,
                    const char *migrate_phase) {
        _cleanup_(strv_freep) char **coord = instance_coord_vars(in, target_version, deployment, migrate_phase);
        _cleanup_(strv_freep) char **set = instance_set_vars(in);
        char **env = NULL;

        if (!coord || !set ||
            hook_env_build((const char *const *) environ, (const char *const *) in->cfg->hooks.pass_env,
                           (const char *const *) set, (const char *const *) coord, &env) < 0)
                return NULL;
        return env;
}

void instance_set_detail(struct instance *in, const char *detail) {
        char *d = strdup(detail ? detail : "");

        if (!d)
                return;
        free(in->detail);
        in->detail = d;
}

void instance_save_state(struct instance *in) {
        int r = state_save_instance(in->agent->config->state_dir, in->id, in->version, in->config_version);
        if (r < 0)
                log_error_errno(r, "Failed to record the state of %s in %s: %m", in->id, in->agent->config->state_dir);
}

void agent_update_status(struct agent *a) {
        unsigned n[_INSTANCE_STATE_MAX] = { 0 };
        char buf[sizeof a->last_status];

        for (size_t i = 0; i < a->n_instances; i++) {
                const struct instance *in = a->instances[i];

                n[instance_state_of(in->health.state, in->draining, in->stopped)]++;
        }
        /* Stopped instances count as starting. */
        snprintf(buf, sizeof buf, "STATUS=%zu instance%s: %u healthy, %u unhealthy, %u starting, %u draining; redis %s%s%s",
                 a->n_instances, a->n_instances == 1 ? "" : "s", n[INSTANCE_HEALTHY], n[INSTANCE_UNHEALTHY],
                 n[INSTANCE_STARTING] + n[INSTANCE_STOPPED], n[INSTANCE_DRAINING],
                 a->redis && redis_client_is_connected(a->redis) ? "connected" : "disconnected",
                 a->reload_error[0] ? "; last reload failed: " : "", a->reload_error);
        if (strcmp(buf, a->last_status) == 0)
                return;
        snprintf(a->last_status, sizeof a->last_status, "%s", buf);
        (void) sd_notify(0, buf);
}

void instance_log(int level, const struct instance *in, const char *fmt, ...) {
        char fs[80], fi[96], msg[1024];
        const char *fields[] = { fs, fi, NULL };
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        snprintf(fs, sizeof fs, "COORD_SERVICE=%s", in->cfg->name);
        snprintf(fi, sizeof fi, "COORD_INSTANCE=%s", in->id);
        log_fields(level, fields, "%s", msg);
}

void instance_state_changed(struct instance *in) {
        const char *now = instance_state(in), *prev = in->published_state;

        if (prev && strcmp(prev, now) == 0) {
                /* The health under "draining" still matters to a deployment waiting on it. */
                if (in->published_health == in->health.state)
                        return;
                instance_log(LOG_NOTICE, in, "instance %s: %s, health %s -> %s", in->id, now,
                             health_state_to_string(in->published_health), health_state_to_string(in->health.state));
        } else
                instance_log(LOG_NOTICE, in, "instance %s: %s -> %s", in->id, prev ? prev : "new", now);
        in->published_state = now;
        in->published_health = in->health.state;
        registry_register(in->agent, in, prev ? prev : "");
        agent_update_status(in->agent);
}

/* ---- health probes ---- */

static void probe_schedule(struct instance *in, uint64_t delay);

static void on_probe_done(struct probe_run *run, bool ok, const char *reason, void *userdata) {
        struct instance *in = userdata;
        bool changed;

        in->probe = NULL;
        if (!ok && (!in->last_probe_error || strcmp(in->last_probe_error, reason ? reason : "") != 0))
                instance_log(LOG_DEBUG, in, "health probe of %s failed: %s", in->id, reason ? reason : "?");
        free(in->last_probe_error);
        in->last_probe_error = ok ? NULL : strdup(reason ? reason : "failed");
        changed = health_observe(&in->health, ok, now_usec());
        if (changed) {
                if (in->health.state == HEALTH_UNHEALTHY)
                        instance_set_detail(in, in->last_probe_error);
                else if (in->health.state == HEALTH_HEALTHY)
                        instance_set_detail(in, "");
                instance_state_changed(in);
        }
}

static int on_probe_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        struct instance *in = userdata;
        const struct agent_health_config *h = &in->cfg->health;
        struct probe_spec spec = {
                .timeout_usec = h->timeout,
                .service = in->cfg->name,
                .instance = in->id,
        };
        char **env = NULL;
        int r;

        uint64_t now = usec;

        /* Fixed rate: the next probe is due one interval after this one was due
         * (or after now, when the loop fell behind: no burst of catch-up probes). */
        (void) sd_event_now(in->agent->event, CLOCK_MONOTONIC, &now);
        (void) sd_event_source_set_time(s, (now > usec + h->interval ? now : usec) + h->interval);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ON);
        if (in->probe || in->stopped)
                return 0; /* still running (timeout >= interval): skip this tick */

        if (h->http) {
                spec.kind = PROBE_HTTP;
                spec.target = h->http;
        } else if (h->tcp) {
                spec.kind = PROBE_TCP;
                spec.target = h->tcp;
        } else {
                spec.kind = PROBE_EXEC;
                spec.target = h->exec;
                env = instance_env(in, NULL, NULL, NULL);
                spec.env = (const char *const *) env;
        }
        r = spec.kind == PROBE_EXEC && !env ? -ENOMEM
                                            : prober_start(in->agent->prober, &spec, on_probe_done, in, &in->probe);
        strv_free(env);
        if (r < 0) {
                log_error_errno(r, "Failed to start the health probe of %s: %m", in->id);
                in->probe = NULL;
                if (health_observe(&in->health, false, now_usec()))
                        instance_state_changed(in);
        }
        return 0;
}

static void probe_schedule(struct instance *in, uint64_t delay) {
        int r;

        if (!in->has_probe)
                return;
        if (in->probe_timer) {
                (void) sd_event_source_set_time_relative(in->probe_timer, delay);
                (void) sd_event_source_set_enabled(in->probe_timer, SD_EVENT_ON);
                return;
        }
        r = sd_event_add_time_relative(in->agent->event, &in->probe_timer, CLOCK_MONOTONIC, delay, 1000,
                                       on_probe_timer, in);
        if (r < 0)
                log_error_errno(r, "Failed to schedule health probes for %s: %m", in->id);
}

static void probe_stop(struct instance *in) {
        in->probe_timer = sd_event_source_disable_unref(in->probe_timer);
        if (in->probe) {
                probe_run_cancel(in->probe);
                in->probe = NULL;
        }
}

void instance_restart_health(struct instance *in) {
        health_restart(&in->health, now_usec());
        if (!in->has_probe)
                in->health.state = HEALTH_HEALTHY;
        else
                probe_schedule(in, 0);
        instance_state_changed(in);
}

/* ---- instances ---- */

static struct instance *instance_free(struct instance *in) {
        if (!in)
                return NULL;
        probe_stop(in);
        advertise_cancel(in);
        free(in->id);
        free(in->version);
        free(in->detail);
        free(in->last_probe_error);
        json_decref(in->applied_config);
        json_decref(in->pending_config);
        free(in);
        return NULL;
}

static void instance_apply_health_config(struct instance *in) {
        const struct agent_health_config *h = &in->cfg->health;

        in->has_probe = h->http || h->tcp || h->exec;
        in->health.rise = (unsigned) h->rise;
        in->health.fall = (unsigned) h->fall;
        in->health.grace_usec = h->grace;
}

static int instance_new(struct agent *a, const struct agent_service_config *cfg, struct instance **ret) {
        struct instance *in;
        char *v = NULL;
        int64_t cv = 0;
        int r;

        in = calloc(1, sizeof *in);
        if (!in)
                return -ENOMEM;
        in->agent = a;
        in->cfg = cfg;
        in->id = strdup(cfg->instance);
        in->detail = strdup("");
        if (!in->id || !in->detail) {
                instance_free(in);
                return -ENOMEM;
        }
        r = state_load_instance(a->config->state_dir, cfg->instance, &v, &cv);
        if (r >= 0) {
                in->version = v;
                in->config_version = cv;
                if (strcmp(v, cfg->version) != 0)
                        log_info("%s: version %s recorded in %s wins over the configured %s", in->id, v,
                                 a->config->state_dir, cfg->version);
        } else {
                if (r != -ENOENT)
                        log_warning_errno(r, "Ignoring the unreadable state record of %s: %m", in->id);
                in->version = strdup(cfg->version);
                if (!in->version) {
                        instance_free(in);
                        return -ENOMEM;
                }
        }
        /* Its secrets are masked before any hook or probe can print them. */
        advertise_restore(in);
        health_init(&in->health, (unsigned) cfg->health.rise, (unsigned) cfg->health.fall, cfg->health.grace,
                    now_usec());
        instance_apply_health_config(in);
        if (!in->has_probe)
                in->health.state = HEALTH_HEALTHY;
        in->registered_at_ms = now_realtime_msec();
        *ret = in;
        return 0;
}

/* ---- Redis ---- */

static void on_wake(struct redis_client *c, const char *channel, const char *data, size_t len, void *userdata) {
        struct agent *a = userdata;
        commands_kick(a->commands, false);
}

static void on_config_changed(struct redis_client *c, const char *channel, const char *data, size_t len,
                              void *userdata) {
        struct agent *a = userdata;
        char service[NAME_MAX_LEN + 1];

        if (len == 0 || len > NAME_MAX_LEN)
                return;
        memcpy(service, data, len);
        service[len] = '\0';
        if (!name_is_valid(service))
                return;
        advertise_on_changed(a, service);
}

static void on_redis_state(struct redis_client *c, bool connected, void *userdata) {
        struct agent *a = userdata;

        if (a->stopping)
                return;
        if (connected) {
                log_info("Connected to Redis: registering %zu instance%s", a->n_instances,
                         a->n_instances == 1 ? "" : "s");
                registry_heartbeat(a, true);
                commands_kick(a->commands, true);
                for (size_t i = 0; i < a->n_instances; i++)
                        advertise_reconcile(a->instances[i], false);
        } else
                log_warning("Lost the connection to Redis; probes keep running, reconnecting");
        agent_update_status(a);
}

static int on_heartbeat(sd_event_source *s, uint64_t usec, void *userdata) {
        struct agent *a = userdata;

        (void) sd_event_source_set_time(s, usec + a->config->heartbeat_interval);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ON);
        if (!a->stopping)
                registry_heartbeat(a, false);
        agent_reload_if_pending(a);
        agent_update_status(a);
        return 0;
}

/* ---- stop and reload ---- */

static void on_stopped(struct agent *a) {
        log_info("All instances marked stopped; exiting");
        (void) sd_event_exit(a->event, 0);
}

static int on_sigterm(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        struct agent *a = userdata;

        if (a->stopping)
                return 0;
        a->stopping = true;
        log_info("Received %s: marking instances stopped", si->ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
        (void) sd_notify(0, "STOPPING=1\nSTATUS=Stopping: marking instances stopped");
        for (size_t i = 0; i < a->n_instances; i++)
                probe_stop(a->instances[i]);
        commands_stop(a->commands);
        for (size_t i = 0; i < a->n_instances; i++)
                advertise_cancel(a->instances[i]);
        registry_stop_all(a, a->instances, a->n_instances, on_stopped);
        return 0;
}

/* Remember why a reload changed nothing, "" when it worked (masked: STATUS=
 * is no log line). */
static void set_reload_error(struct agent *a, const char *fmt, ...) _printf_(2, 3);
static void set_reload_error(struct agent *a, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        log_format_masked(a->reload_error, sizeof a->reload_error, fmt, ap);
        va_end(ap);
        a->last_status[0] = '\0';
        agent_update_status(a);
}

static void on_redis_swapped(struct redis_client *c, int error, const char *reason, void *userdata) {
        struct agent *a = userdata;

        if (error == -ECANCELED) /* a newer reload took over */
                return;
        if (error < 0) {
                log_error("New Redis credentials or TLS settings do not work, keeping the working connection: %s",
                          reason);
                set_reload_error(a, "new Redis credentials: %s", reason);
                return;
        }
        log_info("Redis credentials and TLS settings reloaded; the connection uses them now");
        set_reload_error(a, "%s", "");
}

/* redis and tls_* take effect at once, make before break: a second
 * connection tries them and replaces the working one only when it is up
 * (redis_client_reload()); after a failure, the same settings are tried
 * again. */
static void agent_reload_redis(struct agent *a, const struct agent_config *old, const struct agent_config *n,
                               bool retry) {
        char err[512] = "";
        int r;

        r = redis_client_reload(a->redis, &(struct redis_client_settings) { old->redis, &old->tls },
                                &(struct redis_client_settings) { n->redis, &n->tls }, retry, on_redis_swapped, a, err,
                                sizeof err);
        if (r < 0) {
                log_error("New Redis settings refused, keeping the working connection: %s", err[0] ? err : strerror(-r));
                set_reload_error(a, "new Redis settings: %s", err[0] ? err : strerror(-r));
        } else if (r > 0)
                log_info("Trying the new Redis credentials and TLS settings on a second connection");
}

/* namespace, host and state_dir need a restart: n keeps the running ones. */
static void agent_keep_fixed(struct agent_config *old, struct agent_config *n) {
        if (!streq_ptr(old->namespace, n->namespace))
                log_warning("namespace changed: restart coord-agent to apply it; keeping '%s'", old->namespace);
        if (!streq_ptr(old->host, n->host))
                log_warning("host changed: restart coord-agent to apply it; keeping '%s'", old->host);
        if (!streq_ptr(old->state_dir, n->state_dir))
                log_warning("state_dir changed: restart coord-agent to apply it; keeping '%s'", old->state_dir);
        SWAP(old->namespace, n->namespace);
        SWAP(old->host, n->host);
        SWAP(old->state_dir, n->state_dir);
}

static void agent_apply_reload(struct agent *a, struct agent_config *n) {
        struct agent_config *old = a->config;
        struct instance **list, **removed;
        size_t n_removed = 0;
        bool retry = a->reload_error[0] != '\0';

        a->reload_error[0] = '\0';
        agent_reload_redis(a, old, n, retry);
        agent_keep_fixed(old, n);

        list = calloc(n->n_services, sizeof *list);
        removed = calloc(a->n_instances + 1, sizeof *removed);
        if (!list || !removed) {
                free(list);
                free(removed);
                agent_config_free(n);
                log_error("Out of memory while reloading; keeping the old configuration");
                return;
        }
        a->config = n;
        for (size_t i = 0; i < n->n_services; i++) {
                struct instance *in = agent_find_instance(a, n->services[i].instance);
                if (in) {
                        bool had = in->has_probe;
                        in->cfg = &n->services[i];
                        instance_apply_health_config(in);
                        probe_stop(in);
                        if (in->has_probe)
                                probe_schedule(in, 0);
                        else if (had) {
                                in->health.state = HEALTH_HEALTHY;
                                instance_state_changed(in);
                        }
                } else if (instance_new(a, &n->services[i], &in) < 0) {
                        log_error("Failed to add instance %s", n->services[i].instance);
                        continue;
                } else {
                        log_info("Reload: new instance %s", in->id);
                        probe_schedule(in, 0);
                }
                list[i] = in;
        }
        for (size_t i = 0; i < a->n_instances; i++) {
                bool kept = false;
                for (size_t j = 0; j < n->n_services; j++)
                        kept = kept || list[j] == a->instances[i];
                if (!kept)
                        removed[n_removed++] = a->instances[i];
        }
        /* Compact out failed additions. */
        {
                size_t k = 0;
                for (size_t i = 0; i < n->n_services; i++)
                        if (list[i])
                                list[k++] = list[i];
                free(a->instances);
                a->instances = list;
                a->n_instances = k;
        }
        for (size_t i = 0; i < n_removed; i++) {
                log_info("Reload: instance %s removed, marking it stopped", removed[i]->id);
                probe_stop(removed[i]);
        }
        if (n_removed > 0)
                registry_stop_all(a, removed, n_removed, NULL);
        for (size_t i = 0; i < n_removed; i++)
                instance_free(removed[i]);
        free(removed);
        agent_config_free(old);

        for (size_t i = 0; i < a->n_instances; i++) {
                if (!a->instances[i]->published_state)
                        instance_state_changed(a->instances[i]);
                else
                        registry_register(a, a->instances[i], NULL);
                advertise_reconcile(a->instances[i], false);
        }
}

static void agent_reload(struct agent *a) {
        _cleanup_free_ char *msg = NULL;
        struct agent_config *n = NULL;
        char err[1024] = "";
        int r;

        if (commands_busy(a->commands)) {
                log_info("Reload requested while a command runs: reloading when it finishes");
                a->reload_pending = true;
                return;
        }
        a->reload_pending = false;
        r = agent_config_load(a->config_path, NULL, &n, err, sizeof err);
        if (r < 0) {
                log_error("Reload refused, keeping the running configuration: %s", err[0] ? err : strerror(-r));
                (void) sd_notify(0, "READY=1");
                set_reload_error(a, "%s", err[0] ? err : strerror(-r));
                return;
        }
        agent_apply_reload(a, n);
        log_info("Configuration reloaded from %s (%zu instance%s)", a->config_path, a->n_instances,
                 a->n_instances == 1 ? "" : "s");
        (void) sd_notify(0, "READY=1");
        a->last_status[0] = '\0';
        agent_update_status(a);
}

void agent_reload_if_pending(struct agent *a) {
        if (a->reload_pending && !a->stopping && !commands_busy(a->commands))
                agent_reload(a);
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        struct agent *a = userdata;
        char buf[128];

        if (a->stopping)
                return 0;
        log_info("Received SIGHUP: reloading %s", a->config_path);
        snprintf(buf, sizeof buf, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=Reloading configuration",
                 (unsigned long long) now_usec());
        (void) sd_notify(0, buf);
        agent_reload(a);
        return 0;
}

/* ---- lifecycle ---- */

int agent_new(sd_event *e, const char *config_path, struct agent_config *config, struct agent **ret) {
        struct agent *a;
        char err[512] = "";
        int r;

        a = calloc(1, sizeof *a);
        if (!a) {
                agent_config_free(config);
                return -ENOMEM;
        }
        a->event = sd_event_ref(e);
        a->config = config;
        a->config_path = strdup(config_path);
        if (!a->config_path) {
                agent_free(a);
                return -ENOMEM;
        }
        r = redis_url_parse(config->redis, &a->url, err, sizeof err);
        if (r < 0) {
                log_error("redis: %s", err);
                agent_free(a);
                return r;
        }
        /* Before the first connection: the tls_* keys, not the lazy COORD_TLS_* default. */
        r = a->url->ssl ? tls_set_options(&config->tls, err, sizeof err) : 0;
        if (r < 0) {
                log_error("%s: %s", config_path, err);
                agent_free(a);
                return -EINVAL;
        }
        r = prober_new(e, &a->prober);
        if (r < 0) {
                agent_free(a);
                return r;
        }
        a->instances = calloc(config->n_services, sizeof *a->instances);
        if (!a->instances) {
                agent_free(a);
                return -ENOMEM;
        }
        *ret = a;
        return 0;
}

struct agent *agent_free(struct agent *a) {
        if (!a)
                return NULL;
        /* Redis first: pending replies complete (with NULL) while their owners still exist. */
        a->stopping = true;
        a->redis = redis_client_free(a->redis);
        a->commands = commands_free(a->commands);
        for (size_t i = 0; i < a->n_instances; i++)
                instance_free(a->instances[i]);
        free(a->instances);
        a->prober = prober_free(a->prober);
        hook_sinks_free();
        a->heartbeat_timer = sd_event_source_disable_unref(a->heartbeat_timer);
        a->stop_timeout = sd_event_source_disable_unref(a->stop_timeout);
        a->sigterm = sd_event_source_disable_unref(a->sigterm);
        a->sigint = sd_event_source_disable_unref(a->sigint);
        a->sighup = sd_event_source_disable_unref(a->sighup);
        a->url = redis_url_free(a->url);
        agent_config_free(a->config);
        free(a->config_path);
        sd_event_unref(a->event);
        free(a);
        return NULL;
}

int agent_start(struct agent *a) {
        _cleanup_free_ char *wake = NULL, *changed = NULL;
        int r;

        r = state_init(a->config->state_dir);
        if (r < 0)
                return log_error_errno(r, "Cannot use state_dir %s: %m", a->config->state_dir);

        for (size_t i = 0; i < a->config->n_services; i++) {
                r = instance_new(a, &a->config->services[i], &a->instances[a->n_instances]);
                if (r < 0)
                        return log_error_errno(r, "Failed to set up instance %s: %m", a->config->services[i].instance);
                a->n_instances++;
        }

        r = sd_event_add_signal(a->event, &a->sigterm, SIGTERM, on_sigterm, a);
        if (r >= 0)
                r = sd_event_add_signal(a->event, &a->sigint, SIGINT, on_sigterm, a);
        if (r >= 0)
                r = sd_event_add_signal(a->event, &a->sighup, SIGHUP, on_sighup, a);
        if (r < 0)
                return log_error_errno(r, "Failed to set up signal handling: %m");
        r = sd_event_set_watchdog(a->event, true);
        if (r < 0)
                log_warning_errno(r, "Failed to enable the watchdog: %m");

        r = commands_new(a, &a->commands);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the command queue: %m");

        for (size_t i = 0; i < a->n_instances; i++) {
                struct instance *in = a->instances[i];
                in->published_state = NULL;
                instance_log(LOG_INFO, in, "instance %s: service %s version %s", in->id, in->cfg->name, in->version);
                /* Spread the first probes a little so many instances do not probe in lockstep. */
                probe_schedule(in, (uint64_t) i * 7 * USEC_PER_MSEC);
        }

        r = redis_client_new(a->event, a->url, on_redis_state, a, &a->redis);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the Redis client: %m");
        wake = key_agent_wake(a->config->namespace, a->config->host);
        changed = key_config_changed(a->config->namespace);
        if (!wake || !changed)
                return log_error_errno(ENOMEM, "Out of memory");
        r = redis_client_subscribe(a->redis, wake, on_wake, a);
        if (r >= 0)
                r = redis_client_subscribe(a->redis, changed, on_config_changed, a);
        if (r < 0)
                return log_error_errno(r, "Failed to subscribe: %m");

        r = sd_event_add_time_relative(a->event, &a->heartbeat_timer, CLOCK_MONOTONIC,
                                       a->config->heartbeat_interval, 1000, on_heartbeat, a);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the heartbeat: %m");
        agent_update_status(a);
        return 0;
}
