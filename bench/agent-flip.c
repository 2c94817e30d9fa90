/* agent-flip: time from a health flip of a demo app to the state change
 * visible in Redis (the agent publishes the event in the same MULTI/EXEC that
 * writes the instance hash, so the event's arrival is the moment it is visible).
 *
 *   agent-flip --port REDIS_PORT --namespace NS --instance ID --fail-file PATH
 *              [--flips N] [--interval-ms MS]
 *
 * Each flip creates (unhealthy) or removes (healthy) the demo app's fail file
 * at a random phase within one probe interval, then waits for the event.
 * Prints min, median, p90, p99 and max in milliseconds. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "duration.h"
#include "keys.h"
#include "parse-util.h"
#include "redis.h"
#include "strutil.h"

static int cmp(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

static double pct(const double *v, size_t n, double p) {
        size_t i = (size_t) (p * (double) (n - 1) + 0.5);
        return v[i < n ? i : n - 1];
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "port", required_argument, NULL, 'p' },
                { "namespace", required_argument, NULL, 'n' },
                { "instance", required_argument, NULL, 'i' },
                { "fail-file", required_argument, NULL, 'f' },
                { "flips", required_argument, NULL, 'N' },
                { "interval-ms", required_argument, NULL, 'I' },
                {}
        };
        const char *ns = "bench", *id = NULL, *fail_file = NULL;
        int port = 6379, flips = 50, interval_ms = 1000, c;
        redisContext *sub;
        redisReply *r;
        char *channel;
        double *lat;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0)
                switch (c) {
                case 'p': if (parse_int(optarg, &port) < 0) return 2; break;
                case 'n': ns = optarg; break;
                case 'i': id = optarg; break;
                case 'f': fail_file = optarg; break;
                case 'N': if (parse_int(optarg, &flips) < 0 || flips < 1) return 2; break;
                case 'I': if (parse_int(optarg, &interval_ms) < 0 || interval_ms < 1) return 2; break;
                default: return 2;
                }
        if (!id || !fail_file || !name_is_valid(ns) || !name_is_valid(id)) {
                fprintf(stderr, "usage: agent-flip --port P --namespace NS --instance ID --fail-file PATH [--flips N] [--interval-ms MS]\n");
                return 2;
        }
        sub = redisConnect("127.0.0.1", port);
        if (!sub || sub->err) {
                fprintf(stderr, "agent-flip: cannot connect to Redis on port %d\n", port);
                return 3;
        }
        channel = key_events(ns);
        r = redis_ctx_command(sub, "SUBSCRIBE %s", channel);
        freeReplyObject(r);
        lat = calloc((size_t) flips * 2, sizeof *lat);
        srand((unsigned) time(NULL));

        for (int i = 0; i < flips * 2; i++) {
                bool to_unhealthy = i % 2 == 0;
                const char *want = to_unhealthy ? "unhealthy" : "healthy";
                uint64_t t0;

                /* A random phase relative to the probe schedule. */
                usleep((useconds_t) (rand() % interval_ms) * 1000);
                t0 = now_usec();
                if (to_unhealthy) {
                        FILE *f = fopen(fail_file, "we");
                        if (!f) {
                                perror(fail_file);
                                return 1;
                        }
                        fclose(f);
                } else
                        unlink(fail_file);
                for (;;) {
                        json_t *ev;
                        bool match;

                        if (redis_ctx_get_reply(sub, (void **) &r) != REDIS_OK) {
                                fprintf(stderr, "agent-flip: Redis connection lost\n");
                                return 3;
                        }
                        if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 || r->element[2]->type != REDIS_REPLY_STRING) {
                                freeReplyObject(r);
                                continue;
                        }
                        ev = json_loads(r->element[2]->str, 0, NULL);
                        match = ev && strcmp(json_string_value(json_object_get(ev, "id")) ?: "", id) == 0 &&
                                strcmp(json_string_value(json_object_get(ev, "state")) ?: "", want) == 0;
                        json_decref(ev);
                        freeReplyObject(r);
                        if (match)
                                break;
                }
                lat[i] = (double) (now_usec() - t0) / 1000.0;
        }
        qsort(lat, (size_t) flips * 2, sizeof *lat, cmp);
        printf("flips=%d transitions=%d probe_interval=%dms  min=%.1fms median=%.1fms p90=%.1fms p99=%.1fms max=%.1fms\n",
               flips, flips * 2, interval_ms, lat[0], pct(lat, (size_t) flips * 2, 0.5),
               pct(lat, (size_t) flips * 2, 0.9), pct(lat, (size_t) flips * 2, 0.99), lat[flips * 2 - 1]);
        free(lat);
        free(channel);
        redis_ctx_free(sub);
        return 0;
}
