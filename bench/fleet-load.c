/* fleet-load: simulate N agents heartbeating at 1 Hz through Redis (pipelined,
 * exactly the writes of lib/keys.h: instance hash last_seen, alive key with PX
 * ttl, instances ZSET score), let K of them go silent one after another, and
 * measure how long coordinatord takes to show each as "lost", plus
 * coordinatord's CPU and RSS while it follows the whole fleet.
 *
 *   fleet-load --redis-port P --ns NS --url URL --token T --pid PID
 *              [--agents 10000] [--ttl-ms 3000] [--duration 40] [--silent 20] [--warmup 8]
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include "parse-util.h"
#include "redis.h"
#include "strutil.h"

static int arg_port, arg_agents = 10000, arg_ttl = 3000, arg_duration = 40, arg_silent = 20, arg_warmup = 8;
static const char *arg_ns = "bench", *arg_url, *arg_token;
static int arg_pid;

static _Atomic int64_t *last_hb;    /* monotonic ms of each agent's last heartbeat */
static atomic_bool *silent;
static int64_t *lost_ms;            /* detection latency, -1 until seen */
static atomic_bool stop;

static int64_t mono_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void drain(redisContext *c, int n) {
        for (int i = 0; i < n; i++) {
                redisReply *r = NULL;
                if (redis_ctx_get_reply(c, (void **) &r) != REDIS_OK) {
                        fprintf(stderr, "fleet-load: redis: %s\n", c->errstr);
                        exit(1);
                }
                freeReplyObject(r);
        }
}

static void heartbeat(redisContext *c, int i, int64_t now_wall) {
        char id[32], k[160], ka[160], kz[160], ttl[16], ls[24];

        snprintf(id, sizeof id, "sim-%05d", i);
        snprintf(k, sizeof k, "coord:{%s}:instance:%s", arg_ns, id);
        snprintf(ka, sizeof ka, "coord:{%s}:alive:%s", arg_ns, id);
        snprintf(kz, sizeof kz, "coord:{%s}:instances", arg_ns);
        snprintf(ttl, sizeof ttl, "%d", arg_ttl);
        snprintf(ls, sizeof ls, "%lld", (long long) now_wall);
        redisAppendCommand(c, "HSET %s last_seen %s", k, ls);
        redisAppendCommand(c, "SET %s 1 PX %s", ka, ttl);
        redisAppendCommand(c, "ZADD %s %s %s", kz, ls, id);
}

static void register_all(redisContext *c) {
        int64_t now = wall_ms();
        int pending = 0;

        for (int i = 0; i < arg_agents; i++) {
                char id[32], k[160], host[32], addr[32], ls[24], ttl[16];
                snprintf(id, sizeof id, "sim-%05d", i);
                snprintf(k, sizeof k, "coord:{%s}:instance:%s", arg_ns, id);
                snprintf(host, sizeof host, "simhost-%05d", i);
                snprintf(addr, sizeof addr, "10.%d.%d.%d:8080", i / 65536, (i / 256) % 256, i % 256);
                snprintf(ls, sizeof ls, "%lld", (long long) now);
                snprintf(ttl, sizeof ttl, "%d", arg_ttl);
                redisAppendCommand(c,
                                   "HSET %s id %s service %s host %s address %s version 1.0 state healthy "
                                   "config_version 0 last_seen %s ttl_ms %s registered_at %s",
                                   k, id, i % 2 ? "web" : "api", host, addr, ls, ttl, ls);
                pending++;
                heartbeat(c, i, now);
                pending += 3;
                last_hb[i] = mono_ms();
                if (pending >= 4000) {
                        drain(c, pending);
                        pending = 0;
                }
        }
        drain(c, pending);
}

struct mem {
        char *p;
        size_t n;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud) {
        struct mem *m = ud;
        size_t n = size * nmemb;
        char *np = realloc(m->p, m->n + n + 1);
        if (!np)
                return 0;
        memcpy(np + m->n, ptr, n);
        m->p = np;
        m->n += n;
        m->p[m->n] = '\0';
        return n;
}

/* Poll GET /v1/instances?state=lost and note when each silent agent shows up. */
static void *poller(void *arg) {
        CURL *c = curl_easy_init();
        char url[512], auth[256];
        struct curl_slist *h = NULL;

        snprintf(url, sizeof url, "%s/v1/instances?state=lost", arg_url);
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", arg_token);
        h = curl_slist_append(h, auth);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 2000L);
        while (!atomic_load(&stop)) {
                struct mem m = {};
                curl_easy_setopt(c, CURLOPT_WRITEDATA, &m);
                if (curl_easy_perform(c) == CURLE_OK && m.p) {
                        int64_t now = mono_ms();
                        json_t *j = json_loads(m.p, 0, NULL);
                        json_t *arr = json_object_get(j, "instances"), *o;
                        size_t i;
                        json_array_foreach(arr, i, o) {
                                const char *id = json_string_value(json_object_get(o, "id"));
                                int k;
                                if (!id || sscanf(id, "sim-%d", &k) != 1 || k < 0 || k >= arg_agents)
                                        continue;
                                if (atomic_load(&silent[k]) && lost_ms[k] < 0)
                                        lost_ms[k] = now - last_hb[k];
                        }
                        json_decref(j);
                }
                free(m.p);
                usleep(20000);
        }
        curl_slist_free_all(h);
        curl_easy_cleanup(c);
        return NULL;
}

static int proc_cpu_ticks(int pid, unsigned long long *ret) {
        char path[64], buf[2048];
        FILE *f;
        unsigned long long ut, st;

        snprintf(path, sizeof path, "/proc/%d/stat", pid);
        f = fopen(path, "re");
        if (!f)
                return -errno;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        char *p = strrchr(buf, ')');
        if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
                return -EINVAL;
        *ret = ut + st;
        return 0;
}

static long proc_status_kb(int pid, const char *field) {
        char path[64], line[256];
        FILE *f;
        long v = -1;

        snprintf(path, sizeof path, "/proc/%d/status", pid);
        f = fopen(path, "re");
        if (!f)
                return -1;
        while (fgets(line, sizeof line, f))
                if (strncmp(line, field, strlen(field)) == 0)
                        v = strtol(line + strlen(field) + 1, NULL, 10);
        fclose(f);
        return v;
}

static int cmp64(const void *a, const void *b) {
        int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
        return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "redis-port", required_argument, NULL, 'p' }, { "ns", required_argument, NULL, 'n' },
                { "agents", required_argument, NULL, 'a' },     { "ttl-ms", required_argument, NULL, 't' },
                { "duration", required_argument, NULL, 'd' },   { "silent", required_argument, NULL, 's' },
                { "warmup", required_argument, NULL, 'w' },     { "url", required_argument, NULL, 'u' },
                { "token", required_argument, NULL, 'k' },      { "pid", required_argument, NULL, 'P' },
                {}
        };
        int c;
#define INT_ARG(v)                                                                  \
        do {                                                                        \
                if (parse_int(optarg, &(v)) < 0) {                                  \
                        fprintf(stderr, "fleet-load: not a number: '%s'\n", optarg); \
                        return 2;                                                   \
                }                                                                   \
        } while (0)

        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0)
                switch (c) {
                case 'p': INT_ARG(arg_port); break;
                case 'n': arg_ns = optarg; break;
                case 'a': INT_ARG(arg_agents); break;
                case 't': INT_ARG(arg_ttl); break;
                case 'd': INT_ARG(arg_duration); break;
                case 's': INT_ARG(arg_silent); break;
                case 'w': INT_ARG(arg_warmup); break;
                case 'u': arg_url = optarg; break;
                case 'k': arg_token = optarg; break;
                case 'P': INT_ARG(arg_pid); break;
                default: return 2;
                }
        if (!arg_port || !arg_url || !arg_token || !arg_pid || arg_agents <= 0 || arg_silent > arg_agents) {
                fprintf(stderr, "usage: fleet-load --redis-port P --url URL --token T --pid PID [--agents N] ...\n");
                return 2;
        }
        int span = arg_duration - arg_warmup - arg_ttl / 1000 - 3;
        if (span < arg_silent / 4) {
                fprintf(stderr, "fleet-load: --duration too short for --silent and --ttl-ms\n");
                return 2;
        }

        last_hb = calloc((size_t) arg_agents, sizeof *last_hb);
        silent = calloc((size_t) arg_agents, sizeof *silent);
        lost_ms = malloc((size_t) arg_agents * sizeof *lost_ms);
        for (int i = 0; i < arg_agents; i++)
                lost_ms[i] = -1;

        redisContext *rc = redisConnect("127.0.0.1", arg_port);
        if (!rc || rc->err) {
                fprintf(stderr, "fleet-load: cannot connect to Redis\n");
                return 1;
        }
        curl_global_init(CURL_GLOBAL_DEFAULT);
        int64_t t_reg = mono_ms();
        register_all(rc);
        printf("registered %d agents in %lld ms\n", arg_agents, (long long) (mono_ms() - t_reg));

        pthread_t th;
        pthread_create(&th, NULL, poller, NULL);

        const int slots = 50; /* 20 ms each */
        int64_t start = mono_ms(), next_silence = start + arg_warmup * 1000;
        int64_t silence_every = (int64_t) span * 1000 / (arg_silent > 0 ? arg_silent : 1);
        int n_silenced = 0;
        unsigned long long cpu0 = 0, cpu1 = 0;
        int64_t t_cpu0 = 0;
        long rss_max = 0;
        unsigned long long heartbeats = 0, hb_measured = 0;
        int64_t last_rss_sample = 0;

        for (long tick = 0;; tick++) {
                int64_t slot_start = start + tick * (1000 / slots);
                int64_t now = mono_ms();
                if (now - start >= (int64_t) arg_duration * 1000)
                        break;
                if (slot_start > now)
                        usleep((useconds_t) (slot_start - now) * 1000);
                if (!t_cpu0 && mono_ms() - start >= (int64_t) arg_warmup * 1000) {
                        proc_cpu_ticks(arg_pid, &cpu0);
                        t_cpu0 = mono_ms();
                }
                if (arg_silent > 0 && n_silenced < arg_silent && mono_ms() >= next_silence) {
                        /* Spread the silent ones across the id space and the slots. */
                        int k = (int) (((long long) n_silenced * 7919 + 13) % arg_agents);
                        atomic_store(&silent[k], true);
                        n_silenced++;
                        next_silence += silence_every;
                }
                int64_t wall = wall_ms();
                int pending = 0;
                for (int i = (int) (tick % slots); i < arg_agents; i += slots) {
                        if (atomic_load(&silent[i]))
                                continue;
                        heartbeat(rc, i, wall);
                        pending += 3;
                        last_hb[i] = mono_ms();
                        heartbeats++;
                        if (t_cpu0)
                                hb_measured++;
                }
                drain(rc, pending);
                if (mono_ms() - last_rss_sample >= 500) {
                        long rss = proc_status_kb(arg_pid, "VmRSS:");
                        if (rss > rss_max)
                                rss_max = rss;
                        last_rss_sample = mono_ms();
                }
        }
        proc_cpu_ticks(arg_pid, &cpu1);
        int64_t t_cpu1 = mono_ms();
        /* Give the last silent ones time to be detected. */
        int64_t wait_until = mono_ms() + arg_ttl + 3000;
        for (;;) {
                bool all = true;
                for (int i = 0; i < arg_agents; i++)
                        if (atomic_load(&silent[i]) && lost_ms[i] < 0)
                                all = false;
                if (all || mono_ms() > wait_until)
                        break;
                usleep(50000);
        }
        atomic_store(&stop, true);
        pthread_join(th, NULL);

        double secs = (double) (t_cpu1 - t_cpu0) / 1000.0;
        double cpu = (double) (cpu1 - cpu0) / (double) sysconf(_SC_CLK_TCK) / secs;
        long hwm = proc_status_kb(arg_pid, "VmHWM:");
        int64_t lat[1024];
        int nl = 0, missed = 0;
        for (int i = 0; i < arg_agents && nl < 1024; i++)
                if (atomic_load(&silent[i])) {
                        if (lost_ms[i] >= 0)
                                lat[nl++] = lost_ms[i];
                        else
                                missed++;
                }
        qsort(lat, (size_t) nl, sizeof *lat, cmp64);
        int64_t med = nl ? lat[nl / 2] : -1, p99 = nl ? lat[(nl * 99 + 99) / 100 - 1] : -1, mx = nl ? lat[nl - 1] : -1;

        printf("agents %d at 1 Hz: %.0f heartbeats/s sent (3 pipelined writes each)\n", arg_agents,
               (double) hb_measured / secs);
        printf("coordinatord CPU %.1f%% of one core over %.0f s (goal < 50%%)\n", cpu * 100.0, secs);
        printf("coordinatord RSS max %.1f MB, peak (VmHWM) %.1f MB (goal < 200 MB)\n", rss_max / 1024.0,
               hwm / 1024.0);
        printf("silent -> lost (ttl %d ms): n=%d median %lld ms, p99 %lld ms, max %lld ms, missed %d (goal p99 < %d ms)\n",
               arg_ttl, nl, (long long) med, (long long) p99, (long long) mx, missed, arg_ttl + 1000);
        bool ok = cpu < 0.5 && hwm < 200 * 1024 && missed == 0 && p99 >= 0 && p99 < arg_ttl + 1000;
        printf("%s\n", ok ? "all goals met" : "GOALS NOT MET");
        redis_ctx_free(rc);
        return ok ? 0 : 1;
}
