/* coord-demo-app: a tiny HTTP app for tests and the quickstart (libmicrohttpd).
 *
 *   GET /health/ready  200 {"status":"ready","version":V} or 503 {"status":"unhealthy",..}
 *   GET /health/live   200 {"status":"live"}
 *   GET /version       200 {"version":V}
 *   GET /config        200 the config file it was given (--config-file), 404 when none
 *   GET /, GET /work   200 {"version":V} after --delay-ms (the "real" traffic)
 *
 * Unhealthy when V is listed with --unhealthy-version, or when the --fail-file
 * exists and is empty or lists V (one version per line).  With --version-file
 * the version is re-read from that file on every request (a deploy hook can
 * just write it).
 *
 * Shutdown behaves like an ASP.NET Core (Kestrel) app: on SIGTERM/SIGINT it
 * stops accepting connections at once (the listening socket is quiesced and
 * shut down, so new connections are refused instead of waiting in the
 * backlog), lets the requests in flight finish, answering them with
 * "Connection: close", for at most --shutdown-timeout (HostOptions.ShutdownTimeout),
 * then closes what is left and exits 0.  --shutdown-timeout 0s is an app
 * without graceful shutdown: in-flight requests are cut off.
 *
 * One thread per connection, so slow requests (--delay-ms) run concurrently. */
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "duration.h"
#include "exitcode.h"
#include "fileio.h"
#include "macro.h"
#include "parse-util.h"
#include "strutil.h"

#define MAX_UNHEALTHY 16
#define MAX_DELAY_MS 600000

static const char *arg_version = "1.0";
static const char *arg_version_file;
static const char *arg_config_file;
static const char *arg_fail_file;
static const char *arg_unhealthy[MAX_UNHEALTHY];
static size_t n_unhealthy;
static unsigned arg_delay_ms;
static uint64_t arg_shutdown_timeout = 5 * USEC_PER_SEC;

/* Requests between the handler's first call and MHD's completion callback,
 * whether shutdown has begun and whether its timeout passed; all under lock.
 * idle is signalled when n_inflight drops to 0, wake when aborting is set. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t idle, wake;
static unsigned n_inflight;
static bool shutting_down, aborting;
/* The per-request marker MHD keeps for us: its address says "counted". */
static char counted;

static char *current_version(void) {
        char *v = NULL;

        if (arg_version_file && fileio_read_string(arg_version_file, 256, true, &v) >= 0 && v[0])
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
        if (arg_fail_file && fileio_read_string(arg_fail_file, 4096, true, &f) >= 0)
                return f[0] != '\0' && !listed(f, v);
        return true;
}

/* CLOCK_MONOTONIC now plus usec, for pthread_cond_timedwait(). */
static struct timespec deadline_in(uint64_t usec) {
        struct timespec t;

        clock_gettime(CLOCK_MONOTONIC, &t);
        t.tv_sec += (time_t) (usec / USEC_PER_SEC);
        t.tv_nsec += (long) (usec % USEC_PER_SEC) * 1000L;
        if (t.tv_nsec >= 1000000000L) {
                t.tv_sec++;
                t.tv_nsec -= 1000000000L;
        }
        return t;
}

/* Sleep --delay-ms, cut short when the shutdown timeout aborts requests (as a
 * cancelled CancellationToken would). */
static void delay_request(void) {
        struct timespec until;

        if (arg_delay_ms == 0)
                return;
        until = deadline_in((uint64_t) arg_delay_ms * USEC_PER_MSEC);
        pthread_mutex_lock(&lock);
        while (!aborting)
                if (pthread_cond_timedwait(&wake, &lock, &until) == ETIMEDOUT)
                        break;
        pthread_mutex_unlock(&lock);
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type, const char *body) {
        struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *) body, MHD_RESPMEM_MUST_COPY);
        enum MHD_Result ret;
        bool closing;

        if (!r)
                return MHD_NO;
        MHD_add_response_header(r, "Content-Type", type);
        MHD_add_response_header(r, "Cache-Control", "no-store");
        pthread_mutex_lock(&lock);
        closing = shutting_down;
        pthread_mutex_unlock(&lock);
        /* While shutting down, no connection is kept alive past its request. */
        if (closing)
                MHD_add_response_header(r, "Connection", "close");
        ret = MHD_queue_response(conn, status, r);
        MHD_destroy_response(r);
        return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                              const char *ver, const char *upload_data, size_t *upload_size, void **ptr) {
        _cleanup_free_ char *v = NULL, *body = NULL, *cfg = NULL;

        if (!*ptr) {
                pthread_mutex_lock(&lock);
                n_inflight++;
                pthread_mutex_unlock(&lock);
                *ptr = &counted;
        }
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
        if (strcmp(url, "/") == 0 || strcmp(url, "/work") == 0) {
                delay_request();
                body = strdup_printf("{\"version\":\"%s\"}\n", v);
                return body ? reply(conn, 200, "application/json", body) : MHD_NO;
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
                if (fileio_read_string(arg_config_file, 1024 * 1024, false, &cfg) < 0)
                        return reply(conn, 404, "application/json", "{\"error\":\"config file not readable\"}\n");
                return reply(conn, 200, "text/plain", cfg);
        }
        return reply(conn, 404, "application/json", "{\"error\":\"not found\"}\n");
}

/* MHD_OPTION_NOTIFY_COMPLETED: the request was answered or its connection died. */
static void completed(void *cls, struct MHD_Connection *conn, void **ptr, enum MHD_RequestTerminationCode toe) {
        if (*ptr != &counted)
                return;
        *ptr = NULL;
        pthread_mutex_lock(&lock);
        assert(n_inflight > 0);
        if (--n_inflight == 0)
                pthread_cond_broadcast(&idle);
        pthread_mutex_unlock(&lock);
}

/* Wait until no request is in flight or timeout_usec passed; returns how many
 * are still in flight. */
static unsigned wait_idle(uint64_t timeout_usec) {
        struct timespec deadline = deadline_in(timeout_usec);
        unsigned n;

        pthread_mutex_lock(&lock);
        while (n_inflight > 0 && timeout_usec > 0)
                if (pthread_cond_timedwait(&idle, &lock, &deadline) == ETIMEDOUT)
                        break;
        n = n_inflight;
        pthread_mutex_unlock(&lock);
        return n;
}

/* The graceful stop: refuse new connections, finish what is in flight (bounded
 * by --shutdown-timeout), then close everything. */
static void stop_gracefully(struct MHD_Daemon *d) {
        char buf[DURATION_MAX];
        MHD_socket fd;
        unsigned n, left;

        pthread_mutex_lock(&lock);
        shutting_down = true;
        n = n_inflight;
        pthread_mutex_unlock(&lock);
        fd = MHD_quiesce_daemon(d);
        /* MHD stops accepting but the kernel would still complete handshakes into
         * the backlog, and those connections would be reset when the socket is
         * closed.  Shutting the listening socket down makes new connections fail
         * with "connection refused" right away, which a load balancer retries
         * elsewhere.  The fd itself may only be closed after MHD_stop_daemon(). */
        if (fd != MHD_INVALID_SOCKET)
                (void) shutdown(fd, SHUT_RDWR);
        fprintf(stderr, "coord-demo-app: stopping: no new connections, %u request(s) in flight, shutdown timeout %s\n",
                n, duration_format(arg_shutdown_timeout, buf, sizeof(buf)));
        left = wait_idle(arg_shutdown_timeout);
        if (left > 0) {
                fprintf(stderr, "coord-demo-app: shutdown timeout: aborting %u request(s) in flight\n", left);
                pthread_mutex_lock(&lock);
                aborting = true;
                pthread_cond_broadcast(&wake);
                pthread_mutex_unlock(&lock);
        }
        MHD_stop_daemon(d);
        if (fd != MHD_INVALID_SOCKET)
                close(fd);
        fprintf(stderr, "coord-demo-app: stopped%s\n", left > 0 ? "" : " gracefully");
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
               "  --delay-ms N              requests to / and /work take N ms (default 0)\n"
               "  --shutdown-timeout D      on SIGTERM, wait at most D for requests in flight (default 5s)\n"
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
                { "delay-ms", required_argument, NULL, 'd' },
                { "shutdown-timeout", required_argument, NULL, 't' },
                {}
        };
        struct sockaddr_in sa = { .sin_family = AF_INET };
        struct MHD_Daemon *d;
        pthread_condattr_t ca;
        const char *bind_addr = "127.0.0.1";
        int port = 0, delay, c, sig;
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
                case 'd':
                        if (parse_int(optarg, &delay) < 0 || delay < 0 || delay > MAX_DELAY_MS) {
                                fprintf(stderr, "coord-demo-app: --delay-ms: invalid delay '%s' (0-%d)\n", optarg,
                                        MAX_DELAY_MS);
                                return EXIT_USAGE;
                        }
                        arg_delay_ms = (unsigned) delay;
                        break;
                case 't':
                        if (duration_parse(optarg, &arg_shutdown_timeout) < 0) {
                                fprintf(stderr, "coord-demo-app: --shutdown-timeout: invalid duration '%s' (e.g. 5s)\n",
                                        optarg);
                                return EXIT_USAGE;
                        }
                        break;
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

        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&idle, &ca);
        pthread_cond_init(&wake, &ca);
        pthread_condattr_destroy(&ca);

        /* MHD_USE_ITC: required by MHD_quiesce_daemon() in the threaded modes. */
        d = MHD_start_daemon(MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                                     MHD_USE_ITC | MHD_USE_ERROR_LOG,
                             0, NULL, NULL, handle, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &sa,
                             MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) 10, MHD_OPTION_NOTIFY_COMPLETED, completed,
                             NULL, MHD_OPTION_END);
        if (!d) {
                fprintf(stderr, "coord-demo-app: cannot listen on %s:%d\n", bind_addr, port);
                return EXIT_FAILED;
        }
        fprintf(stderr, "coord-demo-app: version %s listening on %s:%d\n", arg_version, bind_addr, port);
        sigwait(&ss, &sig);
        stop_gracefully(d);
        return EXIT_OK;
}
