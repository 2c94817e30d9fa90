/* Following the advertised config (keys.h, "Advertised config").
 *
 * For each instance with a config_file: on start, on every (re)connect (pub/sub
 * loses messages while disconnected), on a config-changed message for its
 * service and on an apply-config command, read coord:{NS}:config:SERVICE; if
 * its version differs from the applied one, render it, replace the file
 * atomically (mode 0640, the old one kept aside), run `reload`, and report
 * the applied version in the instance hash.  A failed render, write or reload
 * puts the old file back and reports the failure in the instance's detail;
 * the same version is not retried automatically (a new version, a reconnect
 * after a restart or an apply-config command retries). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "advertise-render.h"
#include "agent.h"
#include "fileio.h"
#include "jsonutil.h"
#include "keys.h"
#include "log.h"
#include "parse-util.h"
#include "state.h"
#include "strutil.h"
#include "strv.h"

#define CONFIG_DOC_MAX (1024 * 1024)

struct fetch {
        struct agent *a;
        char id[NAME_MAX_LEN + 1];
        bool explicit_request;
};

static void notify_waiter(struct instance *in, bool ok, const char *error) {
        void (*w)(struct instance *, bool, const char *, void *) = in->config_waiter;
        void *ud = in->config_waiter_data;

        if (!w)
                return;
        in->config_waiter = NULL;
        in->config_waiter_data = NULL;
        w(in, ok, error, ud);
}

static void done(struct instance *in, bool explicit_request) {
        in->config_busy = false;
        if (in->config_waiter) {
                char err[512];
                if (in->config_version >= in->config_waiter_version)
                        notify_waiter(in, true, NULL);
                else {
                        snprintf(err, sizeof err, "config version %lld not applied (applied: %lld)%s%s",
                                 (long long) in->config_waiter_version, (long long) in->config_version,
                                 in->detail && in->detail[0] ? ": " : "", in->detail ? in->detail : "");
                        notify_waiter(in, false, err);
                }
        }
        if (in->config_again) {
                in->config_again = false;
                advertise_reconcile(in, false);
        }
}

static void add_secret(const char *s, void *userdata) {
        log_add_secret(s);
}

/* The log keeps a bounded set of secrets: rebuild it from what is still in
 * use (the Redis connection string, each instance's applied and pending
 * config) so rotated secrets never push current ones out. */
static void refresh_secrets(struct agent *a) {
        json_t *redis = json_string(a->config->redis);
        const struct redis_url *u = a->redis ? redis_client_url(a->redis) : a->url;

        log_clear_secrets();
        if (u)
                log_add_secret(u->password);
        if (redis)
                advertise_walk_secrets(redis, add_secret, NULL);
        json_decref(redis);
        for (size_t i = 0; i < a->n_instances; i++) {
                if (a->instances[i]->applied_config)
                        advertise_walk_secrets(a->instances[i]->applied_config, add_secret, NULL);
                if (a->instances[i]->pending_config)
                        advertise_walk_secrets(a->instances[i]->pending_config, add_secret, NULL);
        }
}

/* Config version `version` is not applied (the file as it was): say why, and keep the one in effect. */
static void not_applied(struct instance *in, int64_t version, const char *why) {
        char d[768];

        snprintf(d, sizeof d, "config version %lld not applied: %s", (long long) version, why);
        instance_log(LOG_ERR, in, "%s: %s; keeping version %lld", in->id, d, (long long) in->config_version);
        in->config_failed_version = version;
        instance_set_detail(in, d);
        registry_register(in->agent, in, NULL);
}

static void apply_failed(struct instance *in, int64_t version, const char *why) {
        int r;

        r = fileio_restore_prev(in->cfg->config_file);
        if (r < 0)
                instance_log(LOG_ERR, in, "Failed to put back the previous %s: %s", in->cfg->config_file, strerror(-r));
        not_applied(in, version, why);
}

/* Keep the applied config in state_dir: after a restart its secrets are
 * registered before any hook or probe runs (advertise_restore()). */
static void save_applied(struct instance *in, int64_t version) {
        int r;

        if (!in->applied_config)
                return;
        r = state_save_config(in->agent->config->state_dir, in->id, version, in->applied_config);
        if (r < 0)
                instance_log(LOG_WARNING, in, "Failed to record the applied config of %s in %s: %s", in->id,
                             in->agent->config->state_dir, strerror(-r));
}

void advertise_restore(struct instance *in) {
        json_t *config = NULL;
        int r;

        if (!in->cfg->config_file || in->config_version <= 0)
                return;
        r = state_load_config(in->agent->config->state_dir, in->id, &config);
        if (r < 0) {
                if (r != -ENOENT)
                        instance_log(LOG_WARNING, in, "Ignoring the unreadable applied config of %s: %s", in->id,
                                     strerror(-r));
                return;
        }
        json_decref(in->applied_config);
        in->applied_config = config;
        advertise_walk_secrets(config, add_secret, NULL);
}

/* The applied version is current but its document was not kept (state_dir
 * from an older agent): take it from Redis for its secrets. */
static void adopt_applied(struct instance *in, int64_t version, const char *doc, size_t len) {
        json_t *config;

        if (in->applied_config)
                return;
        config = json_loadb(doc, len, JSON_REJECT_DUPLICATES, NULL);
        if (!config)
                return;
        in->applied_config = config;
        refresh_secrets(in->agent);
        save_applied(in, version);
}

static void apply_succeeded(struct instance *in, int64_t version) {
        (void) fileio_drop_prev(in->cfg->config_file);
        if (in->pending_config) {
                json_decref(in->applied_config);
                in->applied_config = in->pending_config;
                in->pending_config = NULL;
                save_applied(in, version);
        }
        in->config_version = version;
        in->config_failed_version = 0;
        if (in->detail && strncmp(in->detail, "config version", 14) == 0)
                instance_set_detail(in, "");
        instance_save_state(in);
        instance_log(LOG_INFO, in, "%s: applied config version %lld to %s", in->id, (long long) version,
               in->cfg->config_file);
        /* Publish an event (state unchanged, config_version new) so coordinatord's
         * `applied` count follows at once instead of at its next poll. */
        registry_register(in->agent, in, instance_state(in));
}

static void on_reload_done(struct hook *h, const struct hook_result *res, void *userdata) {
        struct instance *in = userdata;
        int64_t version = in->config_pending_version;

        if (res->error)
                apply_failed(in, version, res->error);
        else
                apply_succeeded(in, version);
        in->reload_hook = hook_free(in->reload_hook);
        done(in, false);
}

static void apply(struct instance *in, int64_t version, const char *doc, size_t len) {
        _cleanup_json_ json_t *config = NULL;
        _cleanup_free_ char *text = NULL;
        json_error_t jerr;
        char err[512] = "";
        size_t tlen = 0;
        char **env;
        int r;

        config = json_loadb(doc, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!config) {
                snprintf(err, sizeof err, "invalid JSON in the advertised config: %s", jerr.text);
                goto fail;
        }
        /* Before anything can print them; the previous pending one is done with. */
        json_decref(in->pending_config);
        in->pending_config = json_incref(config);
        refresh_secrets(in->agent);
        r = advertise_render(config, in->cfg->config_format, &text, &tlen, err, sizeof err);
        if (r < 0) {
                if (!err[0])
                        snprintf(err, sizeof err, "%s", strerror(-r));
                goto fail;
        }
        {
                /* /run is empty after a reboot: create the file's directory. */
                _cleanup_free_ char *dir = strndup(in->cfg->config_file,
                                                   (size_t) (strrchr(in->cfg->config_file, '/') - in->cfg->config_file));
                if (dir && dir[0])
                        (void) fileio_mkdir_p(dir, 0755);
        }
        r = fileio_write_atomic(in->cfg->config_file, text, tlen, 0640, true);
        if (r < 0) {
                snprintf(err, sizeof err, "cannot write %s: %s", in->cfg->config_file, strerror(-r));
                goto fail; /* nothing was replaced */
        }
        if (!in->cfg->reload) {
                apply_succeeded(in, version);
                done(in, false);
                return;
        }
        in->config_pending_version = version;
        env = instance_env(in, NULL, NULL, NULL);
        {
                struct hook_spec spec = {
                        .name = "reload",
                        .command = in->cfg->reload,
                        .env = (const char *const *) env,
                        .timeout_usec = in->cfg->hooks.timeout,
                        .service = in->cfg->name,
                        .instance = in->id,
                        .output_level = LOG_INFO,
                };
                instance_log(LOG_INFO, in, "%s: wrote config version %lld to %s, running reload", in->id, (long long) version,
                       in->cfg->config_file);
                r = env ? hook_start(in->agent->event, &spec, on_reload_done, in, &in->reload_hook) : -ENOMEM;
        }
        strv_free(env);
        if (r < 0) {
                snprintf(err, sizeof err, "cannot start reload: %s", strerror(-r));
                apply_failed(in, version, err);
                done(in, false);
        }
        return;

fail:
        not_applied(in, version, err);
        done(in, false);
}

static void on_fetched(struct redis_client *rc, redisReply *reply, void *userdata) {
        struct fetch *f = userdata;
        struct instance *in = agent_find_instance(f->a, f->id);
        bool explicit_request = f->explicit_request;
        int64_t version;
        struct stat st;

        free(f);
        if (!in || !in->config_busy)
                return;
        if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
                if (reply && reply->type == REDIS_REPLY_ERROR)
                        instance_log(LOG_ERR, in, "Failed to read the advertised config of %s: %s", in->cfg->name, reply->str);
                if (in->config_waiter)
                        notify_waiter(in, false, "Redis unavailable while reading the advertised config");
                done(in, explicit_request);
                return;
        }
        if (reply->element[0]->type != REDIS_REPLY_STRING || reply->element[1]->type != REDIS_REPLY_STRING) {
                instance_log(LOG_DEBUG, in, "No advertised config for %s yet", in->cfg->name);
                done(in, explicit_request);
                return;
        }
        if (parse_int64(reply->element[0]->str, &version) < 0 || version < 0) {
                instance_log(LOG_ERR, in, "Ignoring advertised config of %s: bad version field", in->cfg->name);
                done(in, explicit_request);
                return;
        }
        if (version == in->config_version && stat(in->cfg->config_file, &st) == 0) {
                if (reply->element[1]->len <= CONFIG_DOC_MAX)
                        adopt_applied(in, version, reply->element[1]->str, reply->element[1]->len);
                done(in, explicit_request);
                return;
        }
        if (version == in->config_failed_version && !explicit_request) {
                done(in, explicit_request);
                return;
        }
        if (reply->element[1]->len > CONFIG_DOC_MAX) {
                char d[160];
                snprintf(d, sizeof d, "config version %lld not applied: larger than %d bytes", (long long) version,
                         CONFIG_DOC_MAX);
                instance_set_detail(in, d);
                in->config_failed_version = version;
                registry_register(in->agent, in, NULL);
                done(in, explicit_request);
                return;
        }
        apply(in, version, reply->element[1]->str, reply->element[1]->len);
}

void advertise_reconcile(struct instance *in, bool explicit_request) {
        struct agent *a = in->agent;
        _cleanup_free_ char *key = NULL;
        struct fetch *f;

        if (a->stopping)
                return;
        if (!in->cfg->config_file) {
                if (in->config_waiter)
                        notify_waiter(in, false, "no config_file is configured for this instance");
                return;
        }
        if (in->config_busy) {
                in->config_again = true;
                return;
        }
        if (!a->redis || !redis_client_is_connected(a->redis)) {
                if (in->config_waiter)
                        notify_waiter(in, false, "Redis unavailable");
                return;
        }
        key = key_config(a->config->namespace, in->cfg->name);
        f = calloc(1, sizeof *f);
        if (!key || !f) {
                free(f);
                return;
        }
        f->a = a;
        f->explicit_request = explicit_request;
        snprintf(f->id, sizeof f->id, "%s", in->id);
        in->config_busy = true;
        if (redis_client_command(a->redis, on_fetched, f, "HMGET %s version config", key) < 0) {
                free(f);
                in->config_busy = false;
                if (in->config_waiter)
                        notify_waiter(in, false, "Redis unavailable");
        }
}

void advertise_on_changed(struct agent *a, const char *service) {
        for (size_t i = 0; i < a->n_instances; i++)
                if (strcmp(a->instances[i]->cfg->name, service) == 0)
                        advertise_reconcile(a->instances[i], false);
}

void advertise_cancel(struct instance *in) {
        if (in->reload_hook) {
                in->reload_hook = hook_free(in->reload_hook);
                (void) fileio_restore_prev(in->cfg->config_file);
        }
        in->config_busy = false;
        if (in->config_waiter)
                notify_waiter(in, false, in->agent->stopping ? "cancelled: the agent is stopping" : "instance removed");
}
