/* coordctl lock NAME --redis REDIS [--lease D] [--wait-timeout D] -- COMMAND [ARG...]
 *
 * Takes the fenced lock NAME (lib/lock.h), runs COMMAND in its own process
 * group with COORD_FENCING_TOKEN and COORD_LOCK_NAME in its environment, keeps
 * the lease renewed from the lock's keeper thread, and releases the lock when
 * COMMAND exits.  One sd-event loop watches the child, the signals we forward
 * and the keeper's "lost" notice. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "cleanup.h"
#include "coordctl-lock.h"
#include "coordctl.h"
#include "duration.h"
#include "exitcode.h"
#include "lock.h"
#include "log.h"
#include "redis_url.h"
#include "strutil.h"

#define LOST_GRACE_USEC (5 * USEC_PER_SEC)

extern char **environ;

static void help(void) {
        printf("Usage: coordctl lock NAME --redis REDIS [--lease D] [--wait-timeout D] -- COMMAND [ARG...]\n"
               "\n"
               "Run COMMAND while holding the distributed lock NAME (the peer of `etcdctl lock`\n"
               "and `consul lock`).  The lease is renewed every third of its length; if it is\n"
               "lost anyway (Redis unreachable, process stopped past its lease), COMMAND's\n"
               "process group gets SIGTERM, then SIGKILL after 5s, and coordctl exits 1.\n"
               "\n"
               "  --redis REDIS       Redis connection string (default: $COORD_REDIS)\n"
               "  --lease D           lease length, renewed while COMMAND runs (default 15s)\n"
               "  --wait-timeout D    give up waiting for the lock after D and exit 5\n"
               "                      (default: wait forever; 0s: try once)\n"
               "  -h, --help          show this help\n"
               "\n"
               "Durations take a unit: 250ms, 30s, 5m, 1h.  NAME: 1-64 characters from\n"
               "[A-Za-z0-9._-].  The namespace comes from $COORD_NAMESPACE (default \"default\").\n"
               "\n"
               "COMMAND runs in its own process group and sees COORD_FENCING_TOKEN (a number\n"
               "that strictly increases with every acquisition of NAME: pass it to the\n"
               "resources you write so they can refuse stale holders) and COORD_LOCK_NAME.\n"
               "SIGTERM, SIGINT and SIGHUP sent to coordctl are forwarded to COMMAND.  When\n"
               "COMMAND exits, what it left running in its group is stopped before the lock\n"
               "is released.\n"
               "\n"
               "Exit status: COMMAND's own (128+N when killed by signal N; 126/127 when it\n"
               "cannot be run), 1 when the lock was lost while COMMAND ran, 2 bad usage,\n"
               "3 Redis unreachable or refused, 5 timed out waiting (the message names the holder).\n");
}

static int set_err(char *errbuf, size_t errlen, const char *fmt, ...) _printf_(3, 4);
static int set_err(char *errbuf, size_t errlen, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

/* "--flag=v" or "--flag v"; 1 when argv[*i] is flag (value in *ret), 0 when
 * not, -EINVAL when the value is missing. */
static int flag_value(int argc, char **argv, int *i, const char *flag, const char **ret) {
        size_t n = strlen(flag);

        if (strncmp(argv[*i], flag, n) != 0)
                return 0;
        if (argv[*i][n] == '=') {
                *ret = argv[*i] + n + 1;
                return 1;
        }
        if (argv[*i][n] != '\0')
                return 0;
        if (*i + 1 >= argc)
                return -EINVAL;
        *ret = argv[++*i];
        return 1;
}

static int parse_duration_flag(const char *flag, const char *v, uint64_t *ret, char *errbuf, size_t errlen) {
        if (duration_parse(v, ret) < 0)
                return set_err(errbuf, errlen, "%s: invalid duration '%s' (use a unit: 250ms, 30s, 5m, 1h)", flag, v);
        return 0;
}

int lock_args_parse(int argc, char **argv, struct lock_args *ret, char *errbuf, size_t errlen) {
        struct lock_args a = {
                .lease_usec = LOCK_CMD_DEFAULT_LEASE_USEC,
                .wait_usec = UINT64_MAX,
        };
        static const char *const flags[] = { "--redis", "--lease", "--wait-timeout" };
        int i, r;

        for (i = 1; i < argc; i++) {
                const char *v = NULL;
                size_t f;

                if (strcmp(argv[i], "--") == 0) {
                        i++;
                        break;
                }
                if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
                        a.help = 1;
                        *ret = a;
                        return 0;
                }
                for (f = 0; f < ELEMENTSOF(flags); f++) {
                        r = flag_value(argc, argv, &i, flags[f], &v);
                        if (r < 0)
                                return set_err(errbuf, errlen, "%s needs a value", flags[f]);
                        if (r > 0)
                                break;
                }
                if (f == 0)
                        a.redis = v;
                else if (f == 1) {
                        if (parse_duration_flag("--lease", v, &a.lease_usec, errbuf, errlen) < 0)
                                return -EINVAL;
                        if (a.lease_usec < LOCK_CMD_MIN_LEASE_USEC)
                                return set_err(errbuf, errlen, "--lease: '%s' is too short (at least 100ms)", v);
                } else if (f == 2) {
                        if (parse_duration_flag("--wait-timeout", v, &a.wait_usec, errbuf, errlen) < 0)
                                return -EINVAL;
                } else if (argv[i][0] == '-' && argv[i][1] != '\0')
                        return set_err(errbuf, errlen, "unknown flag '%s' (see coordctl lock --help)", argv[i]);
                else if (!a.name)
                        a.name = argv[i];
                else
                        break; /* COMMAND starts here, "--" is optional */
        }

        if (!a.name)
                return set_err(errbuf, errlen, "missing lock NAME (coordctl lock NAME --redis REDIS -- COMMAND [ARG...])");
        if (!name_is_valid(a.name))
                return set_err(errbuf, errlen, "invalid lock name '%s': use 1-64 characters from [A-Za-z0-9._-]",
                               a.name);
        if (a.redis && !*a.redis)
                return set_err(errbuf, errlen, "--redis: empty connection string");
        if (i >= argc)
                return set_err(errbuf, errlen, "missing COMMAND to run under lock %s (... -- COMMAND [ARG...])", a.name);
        a.command = argv + i;
        *ret = a;
        return 0;
}

/* ---- running ---- */

struct runner {
        lock *lock;
        const char *name;
        const char *command;
        pid_t pid;
        int lost_fd;
        bool lost;
        bool exited;
        int status;
        sd_event_source *grace;
};

static void on_lost(lock *l, void *userdata) {
        int *fd = userdata;
        uint64_t one = 1;

        (void) l;
        /* From the keeper thread: just wake the loop. */
        (void) write(*fd, &one, sizeof one);
}

/* The command's leader has exited: stop whatever else is left in its process group
 * (background jobs) before the lock is released, SIGTERM first and SIGKILL after
 * the grace period, so no part of the command runs without the lock. */
static void stop_group(pid_t pgid, const char *command) {
        uint64_t deadline;

        if (kill(-pgid, 0) < 0)
                return; /* ESRCH: nothing left */
        fprintf(stderr, "coordctl lock: stopping what %s left running in its process group\n", command);
        (void) kill(-pgid, SIGTERM);
        (void) kill(-pgid, SIGCONT);
        deadline = now_usec() + LOST_GRACE_USEC;
        while (kill(-pgid, 0) == 0 && now_usec() < deadline)
                (void) usleep(20 * 1000);
        if (kill(-pgid, SIGKILL) == 0)
                while (kill(-pgid, 0) == 0 && now_usec() < deadline + USEC_PER_SEC)
                        (void) usleep(10 * 1000);
}

static int on_child(sd_event_source *s, const siginfo_t *si, void *userdata) {
        struct runner *r = userdata;

        (void) s;
        r->exited = true;
        if (si->si_code == CLD_EXITED)
                r->status = si->si_status;
        else
                r->status = 128 + si->si_status;
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        struct runner *r = userdata;

        (void) s;
        /* Forward; the lock is released when the child is gone. */
        if (r->pid > 0)
                (void) kill(-r->pid, (int) si->ssi_signo);
        return 0;
}

static int on_grace(sd_event_source *s, uint64_t usec, void *userdata) {
        struct runner *r = userdata;

        (void) s;
        (void) usec;
        fprintf(stderr, "coordctl lock: %s did not stop within %llus of SIGTERM, sending SIGKILL\n", r->command,
                (unsigned long long) (LOST_GRACE_USEC / USEC_PER_SEC));
        (void) kill(-r->pid, SIGKILL);
        return 0;
}

static int on_lost_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct runner *r = userdata;
        uint64_t v;
        int q;

        (void) revents;
        (void) read(fd, &v, sizeof v);
        if (r->lost)
                return 0;
        r->lost = true;
        fprintf(stderr, "coordctl lock: lost the lock %s (lease expired or taken over); stopping %s (pid %ld)\n",
                r->name, r->command, (long) r->pid);
        (void) kill(-r->pid, SIGTERM);
        (void) kill(-r->pid, SIGCONT);
        q = sd_event_add_time_relative(sd_event_source_get_event(s), &r->grace, CLOCK_MONOTONIC, LOST_GRACE_USEC,
                                       0, on_grace, r);
        if (q < 0)
                (void) kill(-r->pid, SIGKILL);
        return 0;
}

/* environ without any COORD_FENCING_TOKEN/COORD_LOCK_NAME, plus ours. */
static char **child_env(uint64_t fence, const char *name) {
        size_t n = 0, k = 0;
        char **env;

        while (environ && environ[n])
                n++;
        env = calloc(n + 3, sizeof(char *));
        if (!env)
                return NULL;
        for (size_t i = 0; i < n; i++)
                if (strncmp(environ[i], "COORD_FENCING_TOKEN=", 20) != 0 &&
                    strncmp(environ[i], "COORD_LOCK_NAME=", 16) != 0)
                        env[k++] = environ[i];
        env[k++] = strdup_printf("COORD_FENCING_TOKEN=%llu", (unsigned long long) fence);
        env[k++] = strdup_printf("COORD_LOCK_NAME=%s", name);
        if (!env[k - 1] || !env[k - 2]) {
                free(env[k - 1]);
                free(env[k - 2]);
                free(env);
                return NULL;
        }
        return env;
}

static void child_env_free(char **env) {
        size_t n = 0;

        if (!env)
                return;
        while (env[n])
                n++;
        /* Only the two we added are ours: they are the last two. */
        if (n >= 2) {
                free(env[n - 1]);
                free(env[n - 2]);
        }
        free(env);
}

/* fork + exec COMMAND in a new process group; exec errors come back over a
 * CLOEXEC pipe, so "not found" is reported by us, with the name. */
static int spawn(char **argv, char **envp, const sigset_t *orig_mask, pid_t *ret) {
        _cleanup_close_ int rd = -1;
        int p[2], err = 0;
        pid_t parent = getpid(), pid;
        ssize_t n;

        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        rd = p[0];
        pid = fork();
        if (pid < 0) {
                err = -errno;
                close(p[1]);
                return err;
        }
        if (pid == 0) {
                static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGPIPE, SIGQUIT };

                (void) setpgid(0, 0);
                /* Never outlive coordctl: without it nobody renews the lease. */
                (void) prctl(PR_SET_PDEATHSIG, SIGTERM);
                if (getppid() != parent)
                        _exit(EXIT_FAILED);
                for (size_t i = 0; i < ELEMENTSOF(sigs); i++)
                        (void) signal(sigs[i], SIG_DFL);
                (void) sigprocmask(SIG_SETMASK, orig_mask, NULL);
                execvpe(argv[0], argv, envp);
                err = errno;
                (void) write(p[1], &err, sizeof err);
                _exit(err == ENOENT ? 127 : 126);
        }
        close(p[1]);
        (void) setpgid(pid, pid); /* also here: no race with our first kill(-pid) */
        n = read(rd, &err, sizeof err);
        if (n == (ssize_t) sizeof err) {
                (void) waitpid(pid, NULL, 0);
                return -err;
        }
        *ret = pid;
        return 0;
}

/* A guard in COMMAND's process group, for when coordctl itself is killed with
 * SIGKILL: PR_SET_PDEATHSIG reaches only the direct child, so grandchildren
 * would run on without the lock.  The guard blocks on a pipe only coordctl
 * holds; EOF without coordctl's "done" byte means coordctl is gone, and the
 * guard stops the group (SIGTERM, SIGKILL after the grace period). */
static pid_t guard_start(pid_t pgid, int *ret_fd) {
        int p[2];
        pid_t g;

        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        g = fork();
        if (g < 0) {
                int err = -errno;
                close(p[0]);
                close(p[1]);
                return err;
        }
        if (g == 0) {
                static const int ign[] = { SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGQUIT };
                sigset_t none;
                ssize_t n;
                char c;

                (void) setpgid(0, pgid);
                for (size_t i = 0; i < ELEMENTSOF(ign); i++)
                        (void) signal(ign[i], SIG_IGN);
                sigemptyset(&none);
                (void) sigprocmask(SIG_SETMASK, &none, NULL);
                /* Hold nothing of coordctl's but the pipe (not the Redis connection). */
                for (int fd = 3; fd < 1024; fd++)
                        if (fd != p[0])
                                (void) close(fd);
                do
                        n = read(p[0], &c, 1);
                while (n < 0 && errno == EINTR);
                if (n == 1)
                        _exit(0);
                (void) kill(0, SIGTERM);
                (void) kill(0, SIGCONT);
                (void) sleep((unsigned) (LOST_GRACE_USEC / USEC_PER_SEC));
                (void) kill(0, SIGKILL); /* ourselves included */
                _exit(0);
        }
        close(p[0]);
        *ret_fd = p[1];
        return g;
}

/* coordctl is exiting normally: send the guard away and reap it. */
static void guard_stop(pid_t g, int fd) {
        if (g <= 0)
                return;
        (void) write(fd, "0", 1);
        close(fd);
        (void) waitpid(g, NULL, 0);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(lock *, lock_free)

int coordctl_lock_main(int argc, char **argv, const struct coordctl_globals *g) {
        _cleanup_(redis_url_freep) struct redis_url *url = NULL;
        _cleanup_(lock_freep) lock *l = NULL;
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(sd_event_source_unrefp) sd_event_source *child_src = NULL, *lost_src = NULL, *sig_term = NULL,
                                                          *sig_int = NULL, *sig_hup = NULL;
        _cleanup_close_ int lost_fd = -1;
        struct lock_args a;
        struct lock_options opts = { 0 };
        struct runner run = { .lost_fd = -1 };
        const char *redis, *ns;
        char err[512] = "", d[DURATION_MAX];
        char **envp = NULL;
        sigset_t mask, orig;
        pid_t guard = -1;
        int guard_fd = -1, r;

        (void) g;
        /* A write to a Redis connection that just died must fail, not kill us
         * while a child runs (the child gets the default back). */
        (void) signal(SIGPIPE, SIG_IGN);
        if (lock_args_parse(argc, argv, &a, err, sizeof err) < 0) {
                fprintf(stderr, "coordctl lock: %s\n", err);
                return EXIT_USAGE;
        }
        if (a.help) {
                help();
                return EXIT_OK;
        }

        redis = a.redis ? a.redis : getenv("COORD_REDIS");
        if (!redis || !*redis) {
                fprintf(stderr, "coordctl lock: no Redis given: pass --redis REDIS or set COORD_REDIS\n");
                return EXIT_USAGE;
        }
        if (redis_url_parse(redis, &url, err, sizeof err) < 0) {
                fprintf(stderr, "coordctl lock: %s: %s\n", a.redis ? "--redis" : "COORD_REDIS", err);
                return EXIT_USAGE;
        }
        log_add_secret(url->password);
        ns = getenv("COORD_NAMESPACE");
        if (ns && *ns && !name_is_valid(ns)) {
                fprintf(stderr, "coordctl lock: COORD_NAMESPACE: invalid namespace '%s'\n", ns);
                return EXIT_USAGE;
        }
        opts.ns = ns && *ns ? ns : "default";
        opts.lease_usec = a.lease_usec;
        opts.wait_timeout_usec = a.wait_usec;

        /* Signals keep their default action while we wait: nothing is held yet. */
        r = lock_acquire(url, a.name, &opts, &l, err, sizeof err);
        if (r < 0) {
                _cleanup_free_ char *masked = log_mask_secrets(err);

                if (r == -ETIMEDOUT) {
                        fprintf(stderr, "coordctl lock: %s\n", masked ? masked : err);
                        return EXIT_TIMEOUT;
                }
                if (exit_code_for_connect(r) == EXIT_USAGE) {
                        fprintf(stderr, "coordctl lock: %s\n", masked ? masked : err);
                        return EXIT_USAGE;
                }
                fprintf(stderr, "coordctl lock: could not take lock %s: %s\n", a.name,
                        masked ? masked : (err[0] ? err : strerror(-r)));
                return EXIT_UNAVAILABLE;
        }
        log_debug("lock %s acquired, fence %llu, lease %s", a.name, (unsigned long long) lock_fence(l),
                  duration_format(a.lease_usec, d, sizeof d));

        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, &orig);

        run.lock = l;
        run.name = a.name;
        run.command = a.command[0];
        lost_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (lost_fd < 0) {
                r = -errno;
                goto fail_release;
        }
        run.lost_fd = lost_fd;
        r = lock_keeper_start(l, on_lost, &run.lost_fd);
        if (r < 0)
                goto fail_release;

        envp = child_env(lock_fence(l), a.name);
        if (!envp) {
                r = -ENOMEM;
                goto fail_release;
        }
        r = spawn(a.command, envp, &orig, &run.pid);
        child_env_free(envp);
        if (r < 0) {
                fprintf(stderr, "coordctl lock: cannot run '%s': %s\n", a.command[0], strerror(-r));
                (void) lock_release(l);
                return r == -ENOENT ? 127 : 126;
        }
        guard = guard_start(run.pid, &guard_fd);
        if (guard < 0)
                fprintf(stderr, "coordctl lock: warning: no guard for %s's process group (%s): if coordctl is "
                        "killed with SIGKILL, its background jobs are not stopped\n", a.command[0], strerror((int) -guard));

        r = sd_event_new(&e);
        if (r >= 0)
                r = sd_event_add_child(e, &child_src, run.pid, WEXITED, on_child, &run);
        if (r >= 0)
                r = sd_event_add_io(e, &lost_src, lost_fd, EPOLLIN, on_lost_io, &run);
        if (r >= 0)
                r = sd_event_add_signal(e, &sig_term, SIGTERM, on_signal, &run);
        if (r >= 0)
                r = sd_event_add_signal(e, &sig_int, SIGINT, on_signal, &run);
        if (r >= 0)
                r = sd_event_add_signal(e, &sig_hup, SIGHUP, on_signal, &run);
        if (r >= 0)
                r = sd_event_loop(e);
        if (r < 0 || !run.exited) {
                fprintf(stderr, "coordctl lock: event loop failed: %s; stopping %s\n", strerror(-r), run.command);
                (void) kill(-run.pid, SIGKILL);
                (void) waitpid(run.pid, NULL, 0);
                run.status = EXIT_FAILED;
        }
        run.grace = sd_event_source_unref(run.grace);
        guard_stop(guard, guard_fd);
        stop_group(run.pid, run.command);

        lock_keeper_stop(l);
        if (run.lost || lock_is_lost(l)) {
                if (!run.lost)
                        fprintf(stderr, "coordctl lock: lost the lock %s while %s ran (lease expired)\n", a.name,
                                run.command);
                (void) lock_release(l); /* harmless if gone: compare-and-set on our token */
                fprintf(stderr, "coordctl lock: %s ended (status %d) after the lock %s was lost; exiting 1\n",
                        run.command, run.status, a.name);
                return EXIT_FAILED;
        }
        r = lock_release(l);
        if (r == -ENOLCK)
                fprintf(stderr, "coordctl lock: warning: lock %s was no longer ours at release\n", a.name);
        else if (r < 0)
                fprintf(stderr, "coordctl lock: warning: could not release lock %s (%s); it expires with its lease\n",
                        a.name, strerror(-r));
        return run.status;

fail_release:
        fprintf(stderr, "coordctl lock: %s\n", strerror(-r));
        (void) lock_release(l);
        return EXIT_FAILED;
}
