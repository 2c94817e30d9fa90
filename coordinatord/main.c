/* coordinatord: the central daemon (REST API, leader election, fleet view,
 * config advertisement).  See coordinatord.h for the threading model. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
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
               "COORD_LOG_LEVEL sets the log level (error, warning, notice, info, debug).\n");
}

static void on_redis_state(redis_client *c, bool connected, void *userdata) {
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

static char *default_id(void) {
        char host[256] = "";

        if (gethostname(host, sizeof host - 1) < 0 || !*host)
                snprintf(host, sizeof host, "localhost");
        host[strcspn(host, ".")] = '\0';
        return strdup_printf("%s-%d", host, (int) getpid());
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                { "config", required_argument, NULL, 'c' },
                { "check-config", no_argument, NULL, 'C' },
                {}
        };
        const char *config_path = "/etc/coord/coordinatord.json";
        bool check = false;
        struct server s = {};
        _cleanup_free_ char *shown = NULL;
        char err[1024];
        int c, r, ret = EXIT_FAILED;

        log_open("coordinatord");
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0)
                switch (c) {
                case 'h': help(); return EXIT_OK;
                case 'V': printf("coordinatord %s\n", COORD_VERSION); return EXIT_OK;
                case 'c': config_path = optarg; break;
                case 'C': check = true; break;
                default: return EXIT_USAGE;
                }
        if (optind < argc) {
                fprintf(stderr, "coordinatord: unexpected argument '%s'\n", argv[optind]);
                return EXIT_USAGE;
        }

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

        r = redis_url_parse(s.cfg.redis, &s.url, err, sizeof err);
        if (r < 0) {
                log_error("Invalid configuration: %s: redis: %s", config_path, err);
                cd_config_free(&s.cfg);
                return EXIT_USAGE;
        }
        if (s.url->password)
                log_add_secret(s.url->password);
        s.ns = s.cfg.namespace;
        s.id = s.cfg.id ? strdup(s.cfg.id) : default_id();
        s.started_usec = now_usec();
        if (!s.id)
                goto finish;

        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        r = sd_event_default(&s.event);
        if (r < 0) {
                log_error_errno(r, "Failed to create the event loop: %m");
                goto finish;
        }
        (void) sd_event_add_signal(s.event, NULL, SIGTERM, on_signal, &s);
        (void) sd_event_add_signal(s.event, NULL, SIGINT, on_signal, &s);
        (void) sd_event_set_watchdog(s.event, true);

        s.auth = auth_new(s.cfg.tokens, s.cfg.n_tokens);
        if (!s.auth)
                goto finish;
        if (auth_disabled(s.auth))
                log_warning("No API tokens configured: insecure_no_auth is set, every request is admin (loopback only)");

        r = redis_client_new(s.event, s.url, on_redis_state, &s, &s.redis);
        if (r < 0) {
                log_error_errno(r, "Failed to set up the Redis client: %m");
                goto finish;
        }
        r = fleet_new(&s, &s.fleet);
        if (r < 0) {
                log_error_errno(r, "Failed to set up the fleet view: %m");
                goto finish;
        }
        r = leader_new(&s, &s.leader);
        if (r < 0) {
                log_error_errno(r, "Failed to set up leader election: %m");
                goto finish;
        }

        r = reconciler_new(&s, &s.reconciler);
        if (r < 0) {
                log_error_errno(r, "Failed to set up the rollout reconciler: %m");
                goto finish;
        }
        r = sse_hub_new(&s, &s.sse);
        if (r < 0) {
                log_error_errno(r, "Failed to set up event streams: %m");
                goto finish;
        }

        metrics_init(api_routes, api_n_routes);
        rconn_setup(s.url);
        r = httpd_start(&s, api_routes, api_n_routes, &s.httpd);
        if (r < 0)
                goto finish;
        shown = redis_url_to_string_masked(s.url);
        log_info("coordinatord %s (id %s, namespace %s) listening on %s (port %u), Redis %s", COORD_VERSION, s.id,
                 s.ns, s.cfg.listen, httpd_port(s.httpd), shown ? shown : "?");
        if (atomic_load(&s.redis_up) && !s.ready_sent) {
                s.ready_sent = true;
                (void) sd_notify(0, "READY=1\nSTATUS=Serving; connected to Redis");
        }

        r = sd_event_loop(s.event);
        if (r < 0) {
                log_error_errno(r, "Event loop failed: %m");
                goto finish;
        }
        ret = EXIT_OK;

finish:
        atomic_store(&s.stopping, true);
        sse_hub_shutdown(s.sse);
        s.httpd = httpd_stop(s.httpd);
        s.redis = redis_client_free(s.redis);
        s.sse = sse_hub_free(s.sse);
        s.reconciler = reconciler_free(s.reconciler);
        s.leader = leader_free(s.leader);
        s.fleet = fleet_free(s.fleet);
        s.auth = auth_free(s.auth);
        s.event = sd_event_unref(s.event);
        s.url = redis_url_free(s.url);
        free(s.id);
        cd_config_free(&s.cfg);
        log_info("Stopped");
        return ret;
}
