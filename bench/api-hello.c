/* api-hello PORT [THREADS] [close]: the minimal libmicrohttpd server
 * bench/api.sh compares coordinatord against.  Same threading model as
 * coordinatord's HTTP layer (internal epoll thread pool), answers every
 * request with a small constant JSON body.  By default it answers on the
 * second handler call and keeps connections alive, like coordinatord; with
 * "close" it answers on the first call as libmicrohttpd's textbook hello
 * world does, which makes libmicrohttpd close every connection. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

static const char body[] = "{\"status\":\"ok\"}\n";
static int close_mode;

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload, size_t *upload_size, void **con_cls) {
        static int marker;
        struct MHD_Response *r;
        enum MHD_Result ret;

        /* Answer on the second call, as a real handler does: a response queued
         * on the first call makes libmicrohttpd close the connection. */
        if (!*con_cls && !close_mode) {
                *con_cls = &marker;
                return MHD_YES;
        }
        r = MHD_create_response_from_buffer(sizeof body - 1, (void *) body, MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        ret = MHD_queue_response(c, MHD_HTTP_OK, r);
        MHD_destroy_response(r);
        return ret;
}

int main(int argc, char **argv) {
        struct MHD_Daemon *d;
        unsigned threads = 4;
        sigset_t mask;
        int sig;

        if (argc < 2) {
                fprintf(stderr, "usage: api-hello PORT [THREADS] [close]\n");
                return 2;
        }
        if (argc > 2)
                threads = (unsigned) strtoul(argv[2], NULL, 10);
        close_mode = argc > 3 && strcmp(argv[3], "close") == 0;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, (uint16_t) strtoul(argv[1], NULL, 10),
                             NULL, NULL, handler, NULL, MHD_OPTION_THREAD_POOL_SIZE, threads,
                             MHD_OPTION_CONNECTION_LIMIT, 512u, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
                             MHD_OPTION_END);
        if (!d) {
                fprintf(stderr, "api-hello: cannot listen on port %s\n", argv[1]);
                return 1;
        }
        sigwait(&mask, &sig);
        MHD_stop_daemon(d);
        return 0;
}
