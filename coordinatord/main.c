/* coordinatord: the central daemon (REST API, leader election, fleet view,
 * config advertisement).  See coordinatord.h for the threading model. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "api.h"
#include "auth.h"
#include "cd-config.h"
#include "coordinatord.h"
#include "duration.h"
#include "exitcode.h"
#include "fleet.h"
#include "http.h"
#include "jsonutil.h"
#include "leader.h"
#include "log.h"
#include "metrics.h"
#include "rconn.h"
#include "reconciler.h"
#include "redis_client.h"
#include "sse.h"
#include "strutil.h"

#define SHUTDOWN_GRACE_USEC (2 * USEC_PER_SEC)

static void help(void) {
        printf("Usage: coordinatord [--config PATH] [--check-config]\n"
               "\n"
               "The coord central daemon: REST API, leader election, fleet view, config advertisement.\n"
               "\n"
               "  --config PATH    configuration file (default /etc/coord/coordinatord.json)\n"
               "  --check-config   validate, print the effective config (secrets masked), exit 0 or 2\n"
               "  -h, --help       show this help\n"
               "  --version        show the version\n"
               "\n"
               "Environment: COORD_REDIS, COORD_LISTEN, COORD_NAMESPACE override the file;\n"
               "COORD_LOG_LEVEL sets the log level (error, warning, notice, info, debug).\n"
               "SIGHUP re-reads redis and tls_* (credential rotation, without losing leadership).\n");
}

static void on_redis_state(struct redis_client *c, bool connected, void *userdata) {
        struct server *s = userdata;

        if (connected) {
                log_info("Connected to Redis");
                atomic_fetch_add(&s->redis_connects, 1);
                rconn_invalidate();
        }
        else if (atomic_load(&s->redis_up))
                log_warning("Lost the Redis connection; reconnecting (the API answers 503 where it needs Redis)");
        atomic_store(&s->redis_up, connected);
        if (s->fleet)
                fleet_on_redis(s->fleet, connected);
        if (s->leader)
                leader_on_redis(s->leader, connected);
        if (s->reconciler)
                reconciler_on_redis(s->reconciler, connected);
        if (s->sse)
                sse_hub_on_redis(s->sse, connected);
        if (connected && !s->ready_sent && s->httpd) {
                s->ready_sent = true;
                (void) sd_notify(0, "READY=1\nSTATUS=Serving; connected to Redis");
        } else if (s->ready_sent)
                (void) sd_notifyf(0, "STATUS=%s", connected ? "Serving; connected to Redis"
                                                            : "Serving; Redis unreachable, reconnecting");
}

static void on_released(void *userdata) {
        struct server *s = userdata;
        sd_event_exit(s->event, 0);
}

static int on_shutdown_timeout(sd_event_source *es, uint64_t usec, void *userdata) {
        struct server *s = userdata;
        log_warning("Leadership release not answered in time; exiting anyway");
        sd_event_exit(s->event, 0);
        return 0;
}

static int on_signal(sd_event_source *es, const struct signalfd_siginfo *si, void *userdata) {
        struct server *s = userdata;

        if (atomic_exchange(&s->stopping, true)) {
                sd_event_exit(s->event, 0);
                return 0;
        }
        log_info("Received %s, shutting down", strsignal((int) si->ssi_signo));
        (void) sd_notify(0, "STOPPING=1\nSTATUS=Shutting down");
        if (leader_shutdown(s->leader, on_released, s) == 0) {
                sd_event_exit(s->event, 0);
                return 0;
        }
        (void) sd_event_add_time(s->event, NULL, CLOCK_MONOTONIC, now_usec() + SHUTDOWN_GRACE_USEC, 0,
                                 on_shutdown_timeout, s);
        return 0;
}

/* ---- SIGHUP: new Redis credentials and TLS files ---- */

/* Why the last reload changed nothing, for /health/ready and STATUS=
 * (masked: neither goes through the log); "" clears it. */
static void set_reload_error(struct server *s, const char *fmt, ...) _printf_(2, 3);
static void set_reload_error(struct server *s, const char *fmt, ...) {
        char msg[sizeof s->reload_error];
        va_list ap;

        va_start(ap, fmt);
        log_format_masked(msg, sizeof msg, fmt, ap);
        va_end(ap);
        pthread_mutex_lock(&s->reload_lock);
        snprintf(s->reload_error, sizeof s->reload_error, "%s", msg);
        s->reload_error_usec = now_realtime_usec();
        pthread_mutex_unlock(&s->reload_lock);
        if (msg[0])
                (void) sd_notifyf(0, "STATUS=Serving; last reload failed: %s", msg);
}

static void on_redis_swapped(struct redis_client *c, int error, const char *reason, void *userdata) {
        struct server *s = userdata;

        if (error == -ECANCELED) /* a newer reload took over */
                return;
        if (error < 0) {
                log_error("New Redis credentials or TLS settings do not work, keeping the working connection: %s",
                          reason);
                set_reload_error(s, "new Redis credentials: %s", reason);
                return;
        }
        /* cfg.redis is what was tried (server_reload() keeps it in step);
         * the API threads follow lazily. */
        if (rconn_set_url(s->cfg.redis) < 0)
                log_error("Out of memory giving the API threads the new Redis settings");
        set_reload_error(s, "%s", "");
        (void) sd_notify(0, "STATUS=Serving; connected to Redis");
        log_info("Redis credentials and TLS settings reloaded; every connection uses them now");
}

/* redis and tls_*, make before break (redis_client_reload()): the leader
 * lock, the fleet view and every subscription live on while a second
 * connection proves the new settings; after a failure the same settings are
 * tried again. */
static void reload_redis(struct server *s, const struct cd_config *n, bool retry) {
        char err[512] = "";
        int r;

        r = redis_client_reload(s->redis, &(struct redis_client_settings) { s->cfg.redis, &s->cfg.tls },
                                &(struct redis_client_settings) { n->redis, &n->tls }, retry, on_redis_swapped, s, err,
                                sizeof err);
        if (r < 0) {
                log_error("New Redis settings refused, keeping the working connection: %s", err[0] ? err : strerror(-r));
                set_reload_error(s, "new Redis settings: %s", err[0] ? err : strerror(-r));
        } else if (r == 0)
                log_info("Reload: redis and tls_* unchanged");
        else
                log_info("Trying the new Redis credentials and TLS settings on a second connection");
}

/* SIGHUP applies redis and tls_* only: say which other keys changed. */
static void warn_unapplied(const struct server *s, const struct cd_config *n) {
        static const char *const applied[] = { "redis", "tls_ca_file", "tls_cert_file", "tls_key_file",
                                               "tls_insecure_skip_verify" };
        _cleanup_json_ json_t *was = config_to_json_masked(cd_config_fields, &s->cfg);
        _cleanup_json_ json_t *now = config_to_json_masked(cd_config_fields, n);
        const char *key;
        json_t *v;

        if (!was || !now)
                return;
        for (size_t i = 0; i < ELEMENTSOF(applied); i++)
                (void) json_object_del(now, applied[i]);
        json_object_foreach(now, key, v)
                if (!json_equal(v, json_object_get(was, key)))
                        log_warning("%s changed: restart coordinatord to apply it (SIGHUP applies redis and tls_* only)",
                                    key);
}

static void server_reload(struct server *s) {
        struct cd_config n = {};
        char err[1024] = "";
        bool retry;
        int r;

        r = cd_config_load(s->config_path, &n, err, sizeof err);
        if (r < 0) {
                log_error("Reload refused, keeping the running configuration: %s", err);
                set_reload_error(s, "%s", err);
                return;
        }
        warn_unapplied(s, &n);
        pthread_mutex_lock(&s->reload_lock);
        retry = s->reload_error[0] != '\0';
        pthread_mutex_unlock(&s->reload_lock);
        set_reload_error(s, "%s", "");
        reload_redis(s, &n, retry);
        /* cfg holds what the file says (tried, or in use); redis_client_url() what is connected. */
        SWAP(s->cfg.redis, n.redis);
        SWAP(s->cfg.tls, n.tls);
        cd_config_free(&n);
}

static int on_sighup(sd_event_source *es, const struct signalfd_siginfo *si, void *userdata) {
        struct server *s = userdata;

        if (atomic_load(&s->stopping))
                return 0;
        log_info("Received SIGHUP: reloading redis and tls_* from %s", s->config_path);
        (void) sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu", (unsigned long long) now_usec());
        server_reload(s);
        (void) sd_notify(0, "READY=1");
        return 0;
}

static char *default_id(void) {
        char host[256] = "";

        if (gethostname(host, sizeof host - 1) < 0 || !*host)
                snprintf(host, sizeof host, "localhost");
        host[strcspn(host, ".")] = '\0';
        return strdup_printf("%s-%d", host, (int) getpid());
}

/* Parse the command line: 0 to go on, or an exit code (> 0 after --help). */
static int parse_argv(int argc, char **argv, const char **ret_config, bool *ret_check) {
        static const struct option opts[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                { "config", required_argument, NULL, 'c' },
                { "check-config", no_argument, NULL, 'C' },
                {}
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0)
                switch (c) {
                case 'h': help(); return -1;
                case 'V': printf("coordinatord %s\n", COORD_VERSION); return -1;
                case 'c': *ret_config = optarg; break;
                case 'C': *ret_check = true; break;
                default: return EXIT_USAGE;
                }
        if (optind < argc) {
                fprintf(stderr, "coordinatord: unexpected argument '%s'\n", argv[optind]);
                return EXIT_USAGE;
        }
        return 0;
}

/* The connection string and the TLS settings, before the first connection
 * (the tls_* keys, not the lazy COORD_TLS_* default): -EINVAL when invalid. */
static int setup_redis_url(struct server *s) {
        char err[1024];
        int r;

        r = redis_url_parse(s->cfg.redis, &s->url, err, sizeof err);
        if (r < 0) {
                log_error("Invalid configuration: %s: redis: %s", s->config_path, err);
                return r;
        }
        r = s->url->ssl ? tls_set_options(&s->cfg.tls, err, sizeof err) : 0;
        if (r < 0) {
                log_error("Invalid configuration: %s: %s", s->config_path, err);
                return r;
        }
        if (s->url->password)
                log_add_secret(s->url->password);
        return 0;
}

/* The loop and its signals (SIGTERM/SIGINT stop, SIGHUP reloads). */
static int setup_event(struct server *s) {
        sigset_t mask;
        int r;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);
        r = sd_event_default(&s->event);
        if (r < 0)
                return log_error_errno(r, "Failed to create the event loop: %m");
        (void) sd_event_add_signal(s->event, NULL, SIGTERM, on_signal, s);
        (void) sd_event_add_signal(s->event, NULL, SIGINT, on_signal, s);
        (void) sd_event_add_signal(s->event, NULL, SIGHUP, on_sighup, s);
        (void) sd_event_set_watchdog(s->event, true);
        return 0;
}

/* Tokens, the Redis client and the modules on it, then the HTTP server. */
static int setup_modules(struct server *s) {
        int r;

        s->auth = auth_new(s->cfg.tokens, s->cfg.n_tokens);
        if (!s->auth)
                return -ENOMEM;
        if (auth_disabled(s->auth))
                log_warning("No API tokens configured: insecure_no_auth is set, every request is admin (loopback only)");
        r = redis_client_new(s->event, s->url, on_redis_state, s, &s->redis);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the Redis client: %m");
        r = fleet_new(s, &s->fleet);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the fleet view: %m");
        r = leader_new(s, &s->leader);
        if (r < 0)
                return log_error_errno(r, "Failed to set up leader election: %m");
        r = reconciler_new(s, &s->reconciler);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the rollout reconciler: %m");
        r = sse_hub_new(s, &s->sse);
        if (r < 0)
                return log_error_errno(r, "Failed to set up event streams: %m");
        metrics_init(api_routes, api_n_routes);
        r = rconn_set_url(s->cfg.redis);
        if (r < 0)
                return r;
        return httpd_start(s, api_routes, api_n_routes, &s->httpd);
}

static void announce(struct server *s) {
        _cleanup_free_ char *shown = redis_url_to_string_masked(s->url);

        log_info("coordinatord %s (id %s, namespace %s) listening on %s (port %u), Redis %s", COORD_VERSION, s->id,
                 s->ns, s->cfg.listen, httpd_port(s->httpd), shown ? shown : "?");
        if (atomic_load(&s->redis_up) && !s->ready_sent) {
                s->ready_sent = true;
                (void) sd_notify(0, "READY=1\nSTATUS=Serving; connected to Redis");
        }
}

/* Stop and free in dependency order; safe on a partly set-up server. */
static void server_done(struct server *s) {
        atomic_store(&s->stopping, true);
        sse_hub_shutdown(s->sse);
        s->httpd = httpd_stop(s->httpd);
        s->redis = redis_client_free(s->redis);
        s->sse = sse_hub_free(s->sse);
        s->reconciler = reconciler_free(s->reconciler);
        s->leader = leader_free(s->leader);
        s->fleet = fleet_free(s->fleet);
        s->auth = auth_free(s->auth);
        s->event = sd_event_unref(s->event);
        s->url = redis_url_free(s->url);
        rconn_done();
        s->id = mfree(s->id);
        cd_config_free(&s->cfg);
}

int main(int argc, char **argv) {
        const char *config_path = "/etc/coord/coordinatord.json";
        bool check = false;
        struct server s = {};
        char err[1024];
        int r;

        log_open("coordinatord");
        r = parse_argv(argc, argv, &config_path, &check);
        if (r != 0)
                return r < 0 ? EXIT_OK : r;
        r = cd_config_load(config_path, &s.cfg, err, sizeof err);
        if (r < 0) {
                log_error("Invalid configuration: %s", err);
                return EXIT_USAGE;
        }
        if (check) {
                config_print_masked(cd_config_fields, &s.cfg);
                cd_config_free(&s.cfg);
                return EXIT_OK;
        }
        s.config_path = config_path;
        pthread_mutex_init(&s.reload_lock, NULL);
        if (setup_redis_url(&s) < 0) {
                server_done(&s);
                return EXIT_USAGE;
        }
        s.ns = s.cfg.namespace;
        s.id = s.cfg.id ? strdup(s.cfg.id) : default_id();
        s.started_usec = now_usec();
        r = s.id ? 0 : -ENOMEM;
        if (r >= 0)
                r = setup_event(&s);
        if (r >= 0)
                r = setup_modules(&s);
        if (r >= 0) {
                announce(&s);
                r = sd_event_loop(s.event);
                if (r < 0)
                        log_error_errno(r, "Event loop failed: %m");
        }
        server_done(&s);
        log_info("Stopped");
        return r < 0 ? EXIT_FAILED : EXIT_OK;
}
