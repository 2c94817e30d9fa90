/* coord-agent: per-host registration, heartbeats, health probes, lifecycle
 * hooks and advertised config.  See agent.h for the module map. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "agent.h"
#include "exitcode.h"
#include "log.h"

static void help(void) {
        printf("Usage: coord-agent [--config PATH] [--check-config]\n"
               "\n"
               "Registers this host's app instances in Redis, heartbeats, probes their\n"
               "health, runs lifecycle hooks on the coordinator's commands and writes\n"
               "advertised config.  Run by systemd (Type=notify, WatchdogSec=, ExecReload=kill -HUP).\n"
               "\n"
               "  --config PATH    configuration file (default " AGENT_CONFIG_DEFAULT_PATH ")\n"
               "  --check-config   validate, print the effective config (secrets masked), exit 0 or 2\n"
               "  -h, --help       show this help\n"
               "  --version        show the version\n"
               "\n"
               "Environment: COORD_REDIS, COORD_NAMESPACE override the file; COORD_TLS_CA_FILE,\n"
               "COORD_TLS_CERT_FILE, COORD_TLS_KEY_FILE when it sets no tls_* key; COORD_LOG_LEVEL\n"
               "(error, warning, notice, info, debug); $CREDENTIALS_DIRECTORY/redis and /tls_key.\n"
               "Hooks, exec probes and reload commands get none of these: only PATH, HOME, USER,\n"
               "LOGNAME, LANG, LANGUAGE, LC_*, TZ, TMPDIR, hooks.pass_env, hooks.env, COORD_SERVICE\n"
               "etc. and the agent's TLS files as COORD_TLS_*.\n"
               "SIGHUP re-reads the file; redis and tls_* apply without a restart (credential rotation).\n"
               "Exit codes: 0 stopped cleanly, 1 failed at runtime, 2 bad flag or config.\n");
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                { "config", required_argument, NULL, 'c' },
                { "check-config", no_argument, NULL, 'C' },
                {}
        };
        const char *config_path = AGENT_CONFIG_DEFAULT_PATH;
        struct agent_config *config = NULL;
        bool check = false;
        char err[1024] = "";
        sd_event *e = NULL;
        struct agent *a = NULL;
        sigset_t ss;
        int c, r;

        log_open("coord-agent");
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return EXIT_OK;
                case 'V':
                        printf("coord-agent %s\n", COORD_VERSION);
                        return EXIT_OK;
                case 'c':
                        config_path = optarg;
                        break;
                case 'C':
                        check = true;
                        break;
                default:
                        fprintf(stderr, "Try 'coord-agent --help'.\n");
                        return EXIT_USAGE;
                }
        if (optind < argc) {
                fprintf(stderr, "coord-agent: unexpected argument '%s'\n", argv[optind]);
                return EXIT_USAGE;
        }

        r = agent_config_load(config_path, NULL, &config, err, sizeof err);
        if (r < 0) {
                if (check)
                        fprintf(stderr, "coord-agent: %s\n", err[0] ? err : strerror(-r));
                else
                        log_error("Invalid configuration: %s", err[0] ? err : strerror(-r));
                return EXIT_USAGE;
        }
        if (check) {
                agent_config_print(config);
                agent_config_free(config);
                return EXIT_OK;
        }

        /* Signals arrive through sd-event; SIGCHLD for hook children. */
        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        sigaddset(&ss, SIGHUP);
        sigaddset(&ss, SIGCHLD);
        sigprocmask(SIG_BLOCK, &ss, NULL);
        signal(SIGPIPE, SIG_IGN);
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
                log_error("Failed to initialise libcurl");
                agent_config_free(config);
                return EXIT_FAILED;
        }

        r = sd_event_default(&e);
        if (r < 0) {
                log_error_errno(r, "Failed to create the event loop: %m");
                agent_config_free(config);
                return EXIT_FAILED;
        }
        r = agent_new(e, config_path, TAKE_PTR(config), &a);
        if (r < 0) {
                sd_event_unref(e);
                return r == -EINVAL ? EXIT_USAGE : EXIT_FAILED;
        }
        r = agent_start(a);
        if (r >= 0) {
                log_info("coord-agent %s started: namespace %s, host %s, %zu instance%s", COORD_VERSION,
                         a->config->namespace, a->config->host, a->n_instances, a->n_instances == 1 ? "" : "s");
                r = sd_event_loop(e);
                if (r < 0)
                        log_error_errno(r, "Event loop failed: %m");
        }
        agent_free(a);
        sd_event_unref(e);
        curl_global_cleanup();
        return r < 0 ? EXIT_FAILED : EXIT_OK;
}
