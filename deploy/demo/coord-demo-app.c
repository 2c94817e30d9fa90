/* coord-demo-app: a tiny HTTP app for tests and the quickstart (libmicrohttpd).
 *
 *   GET /health/ready  200 {"status":"ready","version":V} or 503 {"status":"unhealthy",..}
 *   GET /health/live   200 {"status":"live"}
 *   GET /version       200 {"version":V}
 *   GET /config        200 the config file it was given (--config-file), 404 when none
 *
 * Unhealthy when V is listed with --unhealthy-version, or when the --fail-file
 * exists and is empty or lists V (one version per line).  With --version-file
 * the version is re-read from that file on every request (a deploy hook can
 * just write it). */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

#include "exitcode.h"
#include "macro.h"
#include "strutil.h"

#define MAX_UNHEALTHY 16

static const char *arg_version = "1.0";
static const char *arg_version_file;
static const char *arg_config_file;
static const char *arg_fail_file;
static const char *arg_unhealthy[MAX_UNHEALTHY];
static size_t n_unhealthy;

static char *current_version(void) {
        char *v = NULL;

        if (arg_version_file && read_file_string(arg_version_file, 256, true, &v) >= 0 && v[0])
                return v;
        free(v);
        return strdup(arg_version);
}

static bool listed(const char *list, const char *v) {
        size_t vl = strlen(v);

        for (const char *p = list; *p;) {
                size_t l = strcspn(p, "\n");
                if (l == vl && strncmp(p, v, vl) == 0)
                        return true;
                p += l;
                if (*p)
                        p++;
        }
        return false;
}

static bool is_healthy(const char *v) {
        _cleanup_free_ char *f = NULL;

        for (size_t i = 0; i < n_unhealthy; i++)
                if (strcmp(arg_unhealthy[i], v) == 0)
                        return false;
        if (arg_fail_file && read_file_string(arg_fail_file, 4096, true, &f) >= 0)
                return f[0] != '\0' && !listed(f, v);
        return true;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type, const char *body) {
        struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *) body, MHD_RESPMEM_MUST_COPY);
        enum MHD_Result ret;

        if (!r)
                return MHD_NO;
        MHD_add_response_header(r, "Content-Type", type);
        MHD_add_response_header(r, "Cache-Control", "no-store");
        ret = MHD_queue_response(conn, status, r);
        MHD_destroy_response(r);
        return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                              const char *ver, const char *upload_data, size_t *upload_size, void **ptr) {
        _cleanup_free_ char *v = NULL, *body = NULL, *cfg = NULL;

        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
                return reply(conn, 405, "application/json", "{\"error\":\"method not allowed\"}\n");
        v = current_version();
        if (!v)
                return MHD_NO;
        if (strcmp(url, "/health/ready") == 0 || strcmp(url, "/health") == 0) {
                bool ok = is_healthy(v);
                body = strdup_printf("{\"status\":\"%s\",\"version\":\"%s\"}\n", ok ? "ready" : "unhealthy", v);
                return body ? reply(conn, ok ? 200 : 503, "application/json", body) : MHD_NO;
        }
        if (strcmp(url, "/health/live") == 0)
                return reply(conn, 200, "application/json", "{\"status\":\"live\"}\n");
        if (strcmp(url, "/version") == 0) {
                body = strdup_printf("{\"version\":\"%s\"}\n", v);
                return body ? reply(conn, 200, "application/json", body) : MHD_NO;
        }
        if (strcmp(url, "/config") == 0) {
                if (!arg_config_file)
                        return reply(conn, 404, "application/json", "{\"error\":\"no --config-file given\"}\n");
                if (read_file_string(arg_config_file, 1024 * 1024, false, &cfg) < 0)
                        return reply(conn, 404, "application/json", "{\"error\":\"config file not readable\"}\n");
                return reply(conn, 200, "text/plain", cfg);
        }
        return reply(conn, 404, "application/json", "{\"error\":\"not found\"}\n");
}

static void help(void) {
        printf("Usage: coord-demo-app --port PORT [OPTIONS]\n"
               "  --port PORT               listen on 127.0.0.1:PORT (or --bind ADDR)\n"
               "  --bind ADDR               IPv4 address to listen on (default 127.0.0.1)\n"
               "  --version V               the version it reports (default 1.0)\n"
               "  --version-file PATH       read the version from PATH on every request\n"
               "  --config-file PATH        served at /config\n"
               "  --unhealthy-version V     report unhealthy when running V (repeatable)\n"
               "  --fail-file PATH          unhealthy while PATH exists and is empty or lists the version\n"
               "  -h, --help\n");
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "help", no_argument, NULL, 'h' },
                { "port", required_argument, NULL, 'p' },
                { "bind", required_argument, NULL, 'b' },
                { "version", required_argument, NULL, 'v' },
                { "version-file", required_argument, NULL, 'F' },
                { "config-file", required_argument, NULL, 'c' },
                { "unhealthy-version", required_argument, NULL, 'u' },
                { "fail-file", required_argument, NULL, 'f' },
                {}
        };
        struct sockaddr_in sa = { .sin_family = AF_INET };
        struct MHD_Daemon *d;
        const char *bind_addr = "127.0.0.1";
        int port = 0, c, sig;
        sigset_t ss;

        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0)
                switch (c) {
                case 'h': help(); return EXIT_OK;
                case 'p':
                        if (parse_int(optarg, &port) < 0 || port < 1 || port > 65535) {
                                fprintf(stderr, "coord-demo-app: --port: invalid port '%s'\n", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case 'b': bind_addr = optarg; break;
                case 'v': arg_version = optarg; break;
                case 'F': arg_version_file = optarg; break;
                case 'c': arg_config_file = optarg; break;
                case 'f': arg_fail_file = optarg; break;
                case 'u':
                        if (n_unhealthy == MAX_UNHEALTHY) {
                                fprintf(stderr, "coord-demo-app: --unhealthy-version: at most %d\n", MAX_UNHEALTHY);
                                return EXIT_USAGE;
                        }
                        arg_unhealthy[n_unhealthy++] = optarg;
                        break;
                default: return EXIT_USAGE;
                }
        if (port == 0) {
                fprintf(stderr, "coord-demo-app: --port is required\n");
                return EXIT_USAGE;
        }
        if (inet_pton(AF_INET, bind_addr, &sa.sin_addr) != 1) {
                fprintf(stderr, "coord-demo-app: --bind: invalid IPv4 address '%s'\n", bind_addr);
                return EXIT_USAGE;
        }
        sa.sin_port = htons((uint16_t) port);

        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        sigprocmask(SIG_BLOCK, &ss, NULL);

        d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, handle, NULL,
                             MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &sa, MHD_OPTION_CONNECTION_TIMEOUT,
                             (unsigned) 10, MHD_OPTION_END);
        if (!d) {
                fprintf(stderr, "coord-demo-app: cannot listen on %s:%d\n", bind_addr, port);
                return EXIT_FAILED;
        }
        fprintf(stderr, "coord-demo-app: version %s listening on %s:%d\n", arg_version, bind_addr, port);
        sigwait(&ss, &sig);
        MHD_stop_daemon(d);
        return EXIT_OK;
}
