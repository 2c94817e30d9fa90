/* lock-handoff: release -> next-acquire latency of coord's lock and its peers.
 *
 *   lock-handoff --redis URL [--etcd HOST:PORT] [--pg PGURL] [--contenders 8]
 *                [--handoffs 2000] [--pg-interval MS[,MS...]] [--pg-slow-handoffs N]
 *                [--hold MS]
 *
 * Every system gets N contenders for one lock.  A holder keeps the lock --hold
 * ms (default 20, not measured) and releases; it competes again only after
 * someone else took the lock, and the hold gives it time to become a settled
 * waiter again (subscribed / polling / a fresh etcdctl started), so every
 * hand-off goes to a contender that was already waiting.  The latency is from
 * the moment the holder starts releasing to the moment the next holder has
 * the lock.
 *
 *   coord:  lib/lock.c, one thread per contender (each acquisition connects,
 *           subscribes to the release notice, tries, waits).
 *   etcd:   `etcdctl lock NAME` processes (they print the key once they hold
 *           the lock and unlock on SIGTERM); a replacement is started for each
 *           finished one while the next holder holds.
 *   pg:     one libpq connection per contender polling pg_try_advisory_lock
 *           with a sleep between tries, as Flyway does (RetryStrategy sleeps
 *           1000 ms in Flyway 9/10; Flyway 5-8 slept 100 ms).  A contender
 *           comes back after its turn at a random phase of the interval, so
 *           the pollers are spread out: polling's best case.  Intervals above
 *           250 ms run --pg-slow-handoffs hand-offs (default 200) to keep the
 *           run short.
 *
 *   CLI:    with --coordctl, also `coordctl lock NAME -- JOB` against `etcdctl
 *           lock NAME -- JOB` (--cli-handoffs, default 500): JOB (a shell that
 *           prints "acquired PID" and execs sleep) is terminated to release,
 *           so both include the tool's reaction to its job's end and the
 *           start of the next job (process costs dominate both).
 *
 * Run it through bench/lock-handoff.sh, which starts the servers. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "duration.h"
#include "lock.h"
#include "log.h"
#include "parse-util.h"
#include "redis_url.h"
#include "strutil.h"

#define MAX_CONTENDERS 64
#define PG_LOCK_KEY 4711470811LL

struct result {
        char label[64];
        uint64_t *lat;
        size_t n;
        bool ok;
};

struct shared {
        pthread_mutex_t m;
        pthread_cond_t cv;
        uint64_t last_release;
        int last_holder;
        size_t count, target;
        bool done;
        bool failed;
        uint64_t last_fence;
        uint64_t *lat;
};

static void shared_init(struct shared *s, size_t target) {
        memset(s, 0, sizeof *s);
        pthread_mutex_init(&s->m, NULL);
        pthread_cond_init(&s->cv, NULL);
        s->last_holder = -1;
        s->target = target;
        s->lat = calloc(target, sizeof(uint64_t));
        if (!s->lat) {
                fprintf(stderr, "out of memory\n");
                exit(1);
        }
}

/* Wait for the n contender threads, then hand the latencies to res. */
static int join_all(pthread_t *t, int n, struct shared *s, size_t handoffs, struct result *res) {
        for (int i = 0; i < n; i++)
                pthread_join(t[i], NULL);
        res->lat = s->lat;
        res->n = s->count;
        res->ok = !s->failed && s->count == handoffs;
        return res->ok ? 0 : -EIO;
}

/* Called by the new holder: record the hand-off.  Returns false when the run
 * is over (the caller releases and stops). */
static bool shared_acquired(struct shared *s, int me, uint64_t t) {
        bool go;

        pthread_mutex_lock(&s->m);
        go = !s->done;
        if (go) {
                if (s->last_holder >= 0)
                        s->lat[s->count++] = t - s->last_release;
                s->last_holder = me;
                if (s->count >= s->target)
                        s->done = true;
                pthread_cond_broadcast(&s->cv);
        }
        pthread_mutex_unlock(&s->m);
        return go;
}

static unsigned hold_ms = 20;

static void sleep_ms(unsigned ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long) (ms % 1000) * 1000000L };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* Hold the lock for --hold ms (so the previous holder is a settled waiter
 * again), then mark the start of the release. */
static void shared_hold_then_release(struct shared *s) {
        sleep_ms(hold_ms);
        pthread_mutex_lock(&s->m);
        s->last_release = now_usec();
        pthread_mutex_unlock(&s->m);
}

/* Compete again only once someone else holds the lock. */
static void shared_wait_other(struct shared *s, int me) {
        pthread_mutex_lock(&s->m);
        while (!s->done && s->last_holder == me)
                pthread_cond_wait(&s->cv, &s->m);
        pthread_mutex_unlock(&s->m);
}

static void shared_fail(struct shared *s) {
        pthread_mutex_lock(&s->m);
        s->failed = s->done = true;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->m);
}

/* ---- coord ---- */

struct coord_ctx {
        struct shared *s;
        const struct redis_url *url;
        int id;
};

static void *coord_main(void *p) {
        struct coord_ctx *c = p;
        struct lock_options o = {
                .lease_usec = 15 * USEC_PER_SEC,
                .wait_timeout_usec = 60 * USEC_PER_SEC,
        };

        for (;;) {
                struct lock *l = NULL;
                char err[256];
                uint64_t t;
                bool go;
                int r;

                r = lock_acquire(c->url, "bench-handoff", &o, &l, err, sizeof err);
                t = now_usec();
                if (r < 0) {
                        fprintf(stderr, "coord contender %d: %s\n", c->id, err);
                        shared_fail(c->s);
                        return NULL;
                }
                pthread_mutex_lock(&c->s->m);
                if (lock_fence(l) <= c->s->last_fence) {
                        fprintf(stderr, "coord: fence %llu after %llu!\n", (unsigned long long) lock_fence(l),
                                (unsigned long long) c->s->last_fence);
                        c->s->failed = true;
                }
                c->s->last_fence = lock_fence(l);
                pthread_mutex_unlock(&c->s->m);
                go = shared_acquired(c->s, c->id, t);
                if (go)
                        shared_hold_then_release(c->s);
                (void) lock_release(l);
                lock_free(l);
                if (!go)
                        return NULL;
                shared_wait_other(c->s, c->id);
                pthread_mutex_lock(&c->s->m);
                go = !c->s->done;
                pthread_mutex_unlock(&c->s->m);
                if (!go)
                        return NULL;
        }
}

static int run_coord(const struct redis_url *url, int n, size_t handoffs, struct result *res) {
        struct shared s;
        struct coord_ctx ctx[MAX_CONTENDERS];
        pthread_t t[MAX_CONTENDERS];

        shared_init(&s, handoffs);
        for (int i = 0; i < n; i++) {
                ctx[i] = (struct coord_ctx) { .s = &s, .url = url, .id = i };
                pthread_create(&t[i], NULL, coord_main, &ctx[i]);
        }
        return join_all(t, n, &s, handoffs, res);
}

/* ---- PostgreSQL advisory lock polling ---- */

static uint64_t random_u64(void) {
        uint64_t v = 0;

        (void) random_bytes(&v, sizeof v);
        return v;
}

struct pg_ctx {
        struct shared *s;
        const char *url;
        int id;
        uint64_t interval_usec;
};

static bool pg_bool(PGconn *c, const char *sql, bool *ret) {
        PGresult *r = PQexec(c, sql);
        bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;

        if (ok)
                *ret = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
        else
                fprintf(stderr, "pg: %s", PQerrorMessage(c));
        PQclear(r);
        return ok;
}

static void *pg_main(void *p) {
        struct pg_ctx *c = p;
        PGconn *conn = PQconnectdb(c->url);
        char try_sql[96], unlock_sql[96];
        struct timespec ts = { .tv_sec = (time_t) (c->interval_usec / USEC_PER_SEC),
                               .tv_nsec = (long) (c->interval_usec % USEC_PER_SEC) * 1000 };

        snprintf(try_sql, sizeof try_sql, "SELECT pg_try_advisory_lock(%lld)", PG_LOCK_KEY);
        snprintf(unlock_sql, sizeof unlock_sql, "SELECT pg_advisory_unlock(%lld)", PG_LOCK_KEY);
        if (PQstatus(conn) != CONNECTION_OK) {
                fprintf(stderr, "pg contender %d: %s", c->id, PQerrorMessage(conn));
                shared_fail(c->s);
                PQfinish(conn);
                return NULL;
        }
        for (;;) {
                bool got = false, unlocked = false, go;

                if (!pg_bool(conn, try_sql, &got)) {
                        shared_fail(c->s);
                        break;
                }
                if (!got) {
                        pthread_mutex_lock(&c->s->m);
                        go = !c->s->done;
                        pthread_mutex_unlock(&c->s->m);
                        if (!go)
                                break;
                        nanosleep(&ts, NULL);
                        continue;
                }
                go = shared_acquired(c->s, c->id, now_usec());
                if (go)
                        shared_hold_then_release(c->s);
                if (!pg_bool(conn, unlock_sql, &unlocked) || !unlocked) {
                        shared_fail(c->s);
                        break;
                }
                if (!go)
                        break;
                shared_wait_other(c->s, c->id);
                /* Come back at a random phase of the poll interval, like a
                 * replica started at an arbitrary time: polling's best case
                 * (replicas started together poll in step and wait longer). */
                sleep_ms((unsigned) (random_u64() % (c->interval_usec / USEC_PER_MSEC)));
        }
        PQfinish(conn);
        return NULL;
}

static int run_pg(const char *url, int n, size_t handoffs, uint64_t interval_usec, struct result *res) {
        struct shared s;
        struct pg_ctx ctx[MAX_CONTENDERS];
        pthread_t t[MAX_CONTENDERS];

        shared_init(&s, handoffs);
        for (int i = 0; i < n; i++) {
                ctx[i] = (struct pg_ctx) { .s = &s, .url = url, .id = i, .interval_usec = interval_usec };
                pthread_create(&t[i], NULL, pg_main, &ctx[i]);
        }
        return join_all(t, n, &s, handoffs, res);
}

/* ---- etcdctl lock ---- */

struct slot {
        pid_t pid;
        int fd;
        size_t len;
        char buf[256];
};

/* Contender processes: a lock tool per slot, its stdout on a pipe.
 *   PROC_ETCD:       etcdctl lock NAME            (prints the key; SIGTERM unlocks)
 *   PROC_ETCD_CMD:   etcdctl lock NAME -- JOB     (JOB prints "acquired PID")
 *   PROC_COORDCTL:   coordctl lock NAME -- JOB
 * For the command forms the holder's JOB is terminated to release, as when a
 * locked job ends; the tool then releases and exits. */
enum proc_kind { PROC_ETCD, PROC_ETCD_CMD, PROC_COORDCTL };

/* The job: report, then wait to be terminated (sleep replaces the shell, so
 * the reported pid is the one to kill). */
#define JOB "echo acquired $$; exec sleep 3600"

struct proc_cfg {
        enum proc_kind kind;
        const char *tool;     /* etcdctl or coordctl path */
        const char *endpoint; /* etcd endpoint or Redis URL */
};

static int proc_spawn(struct slot *s, const struct proc_cfg *cfg) {
        char ep[512];
        int p[2];

        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        s->pid = fork();
        if (s->pid < 0) {
                close(p[0]);
                close(p[1]);
                return -errno;
        }
        if (s->pid == 0) {
                int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);

                dup2(p[1], STDOUT_FILENO);
                if (devnull >= 0)
                        dup2(devnull, STDERR_FILENO);
                setenv("ETCDCTL_API", "3", 1);
                if (cfg->kind == PROC_COORDCTL) {
                        snprintf(ep, sizeof ep, "--redis=%s", cfg->endpoint);
                        execl(cfg->tool, cfg->tool, "lock", "bench-cli", ep, "--", "/bin/sh", "-c", JOB, (char *) NULL);
                } else {
                        snprintf(ep, sizeof ep, "--endpoints=%s", cfg->endpoint);
                        if (cfg->kind == PROC_ETCD)
                                execlp(cfg->tool, cfg->tool, ep, "lock", "bench-handoff", (char *) NULL);
                        else
                                execlp(cfg->tool, cfg->tool, ep, "lock", "bench-cli", "--", "/bin/sh", "-c", JOB,
                                       (char *) NULL);
                }
                _exit(127);
        }
        close(p[1]);
        s->fd = p[0];
        s->len = 0;
        return 0;
}

static void proc_reap(struct slot *s) {
        if (s->fd >= 0)
                close(s->fd);
        s->fd = -1;
        if (s->pid > 0)
                (void) waitpid(s->pid, NULL, 0);
        s->pid = 0;
}

static int run_procs(const struct proc_cfg *cfg, int n, size_t handoffs, struct result *res) {
        struct slot slots[MAX_CONTENDERS];
        struct pollfd pfd[MAX_CONTENDERS];
        uint64_t *lat = calloc(handoffs, sizeof(uint64_t)), last_release = 0;
        size_t count = 0;
        int prev = -1, r = 0;
        bool first = true;

        if (!lat)
                return -ENOMEM;
        for (int i = 0; i < n; i++) {
                slots[i].fd = -1;
                slots[i].pid = 0;
        }
        for (int i = 0; i < n; i++)
                if ((r = proc_spawn(&slots[i], cfg)) < 0)
                        goto out;
        while (count < handoffs) {
                int k;

                for (int i = 0; i < n; i++)
                        pfd[i] = (struct pollfd) { .fd = slots[i].fd, .events = POLLIN };
                k = poll(pfd, (nfds_t) n, 30000);
                if (k <= 0) {
                        fprintf(stderr, "%s: no acquisition within 30s\n", cfg->tool);
                        r = -ETIMEDOUT;
                        goto out;
                }
                for (int i = 0; i < n && count < handoffs; i++) {
                        struct slot *s = &slots[i];
                        pid_t victim;
                        ssize_t m;
                        uint64_t t;
                        char *nl;

                        if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                                continue;
                        m = read(s->fd, s->buf + s->len, sizeof s->buf - 1 - s->len);
                        t = now_usec();
                        if (m <= 0) {
                                fprintf(stderr, "%s %ld ended without the lock\n", cfg->tool, (long) s->pid);
                                r = -EIO;
                                goto out;
                        }
                        s->len += (size_t) m;
                        s->buf[s->len] = '\0';
                        nl = memchr(s->buf, '\n', s->len);
                        if (!nl)
                                continue;
                        /* Contender i holds the lock. */
                        victim = s->pid;
                        if (cfg->kind != PROC_ETCD) {
                                int child = 0;

                                *nl = '\0';
                                if (strncmp(s->buf, "acquired ", 9) != 0 || parse_int(s->buf + 9, &child) < 0 ||
                                    child <= 0) {
                                        fprintf(stderr, "%s: unexpected output '%s'\n", cfg->tool, s->buf);
                                        r = -EPROTO;
                                        goto out;
                                }
                                victim = (pid_t) child;
                        }
                        if (!first)
                                lat[count++] = t - last_release;
                        first = false;
                        if (prev >= 0) {
                                proc_reap(&slots[prev]);
                                if ((r = proc_spawn(&slots[prev], cfg)) < 0)
                                        goto out;
                        }
                        sleep_ms(hold_ms);
                        last_release = now_usec();
                        kill(victim, SIGTERM);
                        close(s->fd);
                        s->fd = -1; /* poll ignores negative fds */
                        prev = i;
                }
        }
out:
        for (int i = 0; i < n; i++)
                if (slots[i].pid > 0)
                        kill(slots[i].pid, SIGTERM);
        for (int i = 0; i < n; i++)
                proc_reap(&slots[i]);
        res->lat = lat;
        res->n = count;
        res->ok = r == 0 && count == handoffs;
        return r;
}

/* ---- report ---- */

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

static double pct(const struct result *r, double q) {
        size_t i;

        if (r->n == 0)
                return 0;
        i = (size_t) (q * (double) (r->n - 1) + 0.5);
        return (double) r->lat[i] / 1000.0;
}

static double mean(const struct result *r) {
        double s = 0;

        for (size_t i = 0; i < r->n; i++)
                s += (double) r->lat[i];
        return r->n ? s / (double) r->n / 1000.0 : 0;
}

static void usage(void) {
        fprintf(stderr, "usage: lock-handoff --redis URL [--etcd HOST:PORT] [--etcdctl PATH] [--pg PGURL]\n"
                        "       [--coordctl PATH] [--contenders N] [--handoffs N] [--cli-handoffs N]\n"
                        "       [--pg-interval MS[,MS...]] [--pg-slow-handoffs N] [--hold MS]\n");
        exit(2);
}

/* One more row: run the tool's contenders into res[*nres]. */
static int add_procs(struct result *res, size_t *nres, const char *label, enum proc_kind kind, const char *tool,
                     const char *endpoint, int n, size_t handoffs) {
        struct proc_cfg cfg = { .kind = kind, .tool = tool, .endpoint = endpoint };

        res[*nres] = (struct result) {};
        snprintf(res[*nres].label, sizeof res[*nres].label, "%s", label);
        return run_procs(&cfg, n, handoffs, &res[(*nres)++]);
}

int main(int argc, char **argv) {
        const char *redis = NULL, *etcd = NULL, *etcdctl = "etcdctl", *pg = NULL, *intervals = "100,1000",
                   *coordctl = NULL;
        int n = 8, slow = 200, hold = (int) hold_ms, handoffs = 2000, cli_handoffs = 500;
        struct result res[10];
        size_t nres = 0;
        struct redis_url *url = NULL;
        char err[256];
        int rc = 0;

        log_open("lock-handoff");
        signal(SIGPIPE, SIG_IGN);
        setvbuf(stdout, NULL, _IOLBF, 0);
        log_set_max_level(LOG_ERR);
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

                if (!v)
                        usage();
                if (strcmp(a, "--redis") == 0)
                        redis = v;
                else if (strcmp(a, "--etcd") == 0)
                        etcd = v;
                else if (strcmp(a, "--etcdctl") == 0)
                        etcdctl = v;
                else if (strcmp(a, "--pg") == 0)
                        pg = v;
                else if (strcmp(a, "--pg-interval") == 0)
                        intervals = v;
                else if (strcmp(a, "--coordctl") == 0)
                        coordctl = v;
                else if (strcmp(a, "--cli-handoffs") == 0) {
                        if (parse_int(v, &cli_handoffs) < 0 || cli_handoffs < 1)
                                usage();
                }
                else if (strcmp(a, "--contenders") == 0) {
                        if (parse_int(v, &n) < 0 || n < 2 || n > MAX_CONTENDERS)
                                usage();
                } else if (strcmp(a, "--handoffs") == 0) {
                        if (parse_int(v, &handoffs) < 0 || handoffs < 1)
                                usage();
                } else if (strcmp(a, "--pg-slow-handoffs") == 0) {
                        if (parse_int(v, &slow) < 0 || slow < 1)
                                usage();
                } else if (strcmp(a, "--hold") == 0) {
                        if (parse_int(v, &hold) < 0 || hold < 0)
                                usage();
                } else
                        usage();
                i++;
        }
        if (!redis)
                usage();
        hold_ms = (unsigned) hold;
        if (redis_url_parse(redis, &url, err, sizeof err) < 0) {
                fprintf(stderr, "--redis: %s\n", err);
                return 2;
        }

        printf("lock hand-off latency: %d contenders, %d hand-offs, each holder keeps the lock %ums,\n"
               "measured from the start of the release to the next holder having the lock\n",
               n, handoffs, hold_ms);
        fflush(stdout);

        res[nres] = (struct result) { .label = "coord (Redis, lib/lock.c)" };
        if (run_coord(url, n, (size_t) handoffs, &res[nres]) < 0)
                rc = 1;
        nres++;

        fprintf(stderr, "# coord done\n");
        if (etcd && add_procs(res, &nres, "etcdctl lock", PROC_ETCD, etcdctl, etcd, n, (size_t) handoffs) < 0)
                rc = 1;
        /* The command-line tools, each running a job under the lock. */
        if (coordctl &&
            add_procs(res, &nres, "coordctl lock -- JOB", PROC_COORDCTL, coordctl, redis, n, (size_t) cli_handoffs) < 0)
                rc = 1;
        if (etcd &&
            add_procs(res, &nres, "etcdctl lock -- JOB", PROC_ETCD_CMD, etcdctl, etcd, n, (size_t) cli_handoffs) < 0)
                rc = 1;
        if (pg) {
                const char *p = intervals;

                while (*p && nres < ELEMENTSOF(res)) {
                        const char *comma = strchr(p, ',');
                        size_t len = comma ? (size_t) (comma - p) : strlen(p);
                        char tok[16];
                        int ms;

                        if (len == 0 || len >= sizeof tok)
                                usage();
                        memcpy(tok, p, len);
                        tok[len] = '\0';
                        p += len + (comma ? 1 : 0);
                        if (parse_int(tok, &ms) < 0 || ms < 1)
                                usage();
                        res[nres] = (struct result) { .n = 0 };
                        snprintf(res[nres].label, sizeof res[nres].label, "pg_try_advisory_lock, %dms poll", ms);
                        if (run_pg(pg, n, (size_t) (ms > 250 ? slow : handoffs), (uint64_t) ms * USEC_PER_MSEC,
                                   &res[nres]) < 0)
                                rc = 1;
                        nres++;
                }
        }

        printf("\n%-36s %9s %11s %11s %11s %11s\n", "system", "hand-offs", "median ms", "p99 ms", "mean ms",
               "max ms");
        for (size_t i = 0; i < nres; i++) {
                qsort(res[i].lat, res[i].n, sizeof(uint64_t), cmp_u64);
                printf("%-36s %9zu %11.3f %11.3f %11.3f %11.3f%s\n", res[i].label, res[i].n, pct(&res[i], 0.5),
                       pct(&res[i], 0.99), mean(&res[i]), res[i].n ? (double) res[i].lat[res[i].n - 1] / 1000.0 : 0,
                       res[i].ok ? "" : "  (INCOMPLETE)");
        }
        if (nres > 1 && res[0].n > 0) {
                const struct result *cli = NULL;

                printf("\nratio to coord's lock (peer / coord):\n");
                for (size_t i = 1; i < nres; i++) {
                        if (strncmp(res[i].label, "coordctl", 8) == 0) {
                                cli = &res[i];
                                continue;
                        }
                        if (cli && strstr(res[i].label, "-- JOB"))
                                printf("  %-36s median %8.1fx   p99 %8.1fx   (vs coordctl lock -- JOB)\n", res[i].label,
                                       pct(&res[i], 0.5) / pct(cli, 0.5), pct(&res[i], 0.99) / pct(cli, 0.99));
                        else
                                printf("  %-36s median %8.1fx   p99 %8.1fx\n", res[i].label,
                                       pct(&res[i], 0.5) / pct(&res[0], 0.5), pct(&res[i], 0.99) / pct(&res[0], 0.99));
                }
        }
        printf("\ngoal: coord median < 0.5 ms (%s), >= 10x better than every peer (%s)\n",
               pct(&res[0], 0.5) < 0.5 ? "met" : "NOT met",
               ({
                       bool all = nres > 1;
                       for (size_t i = 1; i < nres; i++)
                               if (!strstr(res[i].label, "-- JOB") && pct(&res[i], 0.5) < 10 * pct(&res[0], 0.5))
                                       all = false;
                       all ? "met" : "NOT met";
               }));
        for (size_t i = 0; i < nres; i++)
                free(res[i].lat);
        redis_url_free(url);
        return rc;
}
