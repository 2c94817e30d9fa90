/* coordctl lock NAME --redis REDIS [--lease D] [--wait-timeout D] -- COMMAND [ARG...]
 *
 * Takes the fenced lock NAME (lib/lock.h), runs COMMAND in its own process
 * group with COORD_FENCING_TOKEN and COORD_LOCK_NAME in its environment, keeps
 * the lease renewed from the lock's keeper thread, and releases the lock when
 * COMMAND exits.  One sd-event loop watches the child, the signals we forward
 * and the keeper's "lost" notice. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
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

#include "coordctl-lock.h"
#include "coordctl.h"
#include "duration.h"
#include "exitcode.h"
#include "lock.h"
#include "log.h"
#include "macro.h"
#include "redis_url.h"
#include "strutil.h"
#include "strv.h"
#include "tls.h"

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

/* The flags that take a value; anything else starting with '-' is unknown. */
enum coordctl_lock_flag {
        FLAG_REDIS,
        FLAG_LEASE,
        FLAG_WAIT_TIMEOUT,
        _FLAG_MAX,
};

static const char *const coordctl_lock_flag_table[_FLAG_MAX] = {
        [FLAG_REDIS] = "--redis",
        [FLAG_LEASE] = "--lease",
        [FLAG_WAIT_TIMEOUT] = "--wait-timeout",
};
DEFINE_PRIVATE_STRING_TABLE_LOOKUP(coordctl_lock_flag, enum coordctl_lock_flag, _FLAG_MAX)

/* argv[*i] as one of our flags, "--flag=v" or "--flag v" (then *i moves to v): the flag,
 * with its value in *ret_value; -ENOENT when it is none of ours; -EINVAL (errbuf) when its
 * value is missing. */
static int flag_parse(int argc, char **argv, int *i, const char **ret_value, char *errbuf, size_t errlen) {
        const char *arg = argv[*i], *eq = strchr(arg, '=');
        size_t n = eq ? (size_t) (eq - arg) : strlen(arg);
        char name[32];
        int f;

        if (n >= sizeof name)
                return -ENOENT;
        memcpy(name, arg, n);
        name[n] = '\0';
        f = coordctl_lock_flag_from_string(name);
        if (f < 0)
                return -ENOENT;
        if (eq) {
                *ret_value = eq + 1;
                return f;
        }
        if (*i + 1 >= argc) {
                errbuf_printf(errbuf, errlen, "%s needs a value", name);
                return -EINVAL;
        }
        *ret_value = argv[++*i];
        return f;
}

static int parse_duration_flag(enum coordctl_lock_flag f, const char *v, uint64_t *ret, char *errbuf,
                               size_t errlen) {
        if (duration_parse(v, ret) < 0) {
                errbuf_printf(errbuf, errlen, "%s: invalid duration '%s' (use a unit: 250ms, 30s, 5m, 1h)",
                              coordctl_lock_flag_to_string(f), v);
                return -EINVAL;
        }
        return 0;
}

/* Flag f with value v into a.  0, or -EINVAL (errbuf). */
static int flag_set(struct coordctl_lock_args *a, enum coordctl_lock_flag f, const char *v, char *errbuf,
                    size_t errlen) {
        int r;

        switch (f) {
        case FLAG_REDIS:
                a->redis = v;
                return 0;
        case FLAG_LEASE:
                r = parse_duration_flag(f, v, &a->lease_usec, errbuf, errlen);
                if (r == 0 && a->lease_usec < COORDCTL_LOCK_MIN_LEASE_USEC) {
                        errbuf_printf(errbuf, errlen, "--lease: '%s' is too short (at least 100ms)", v);
                        r = -EINVAL;
                }
                return r;
        case FLAG_WAIT_TIMEOUT:
                return parse_duration_flag(f, v, &a->wait_usec, errbuf, errlen);
        default:
                assert(false);
                return -EINVAL;
        }
}

/* What follows the flags: NAME must be valid, COMMAND present (argv[i] on). */
static int args_check(const struct coordctl_lock_args *a, int argc, int i, char *errbuf, size_t errlen) {
        if (!a->name)
                errbuf_printf(errbuf, errlen,
                              "missing lock NAME (coordctl lock NAME --redis REDIS -- COMMAND [ARG...])");
        else if (!name_is_valid(a->name))
                errbuf_printf(errbuf, errlen, "invalid lock name '%s': use 1-64 characters from [A-Za-z0-9._-]",
                              a->name);
        else if (a->redis && !*a->redis)
                errbuf_printf(errbuf, errlen, "--redis: empty connection string");
        else if (i >= argc)
                errbuf_printf(errbuf, errlen, "missing COMMAND to run under lock %s (... -- COMMAND [ARG...])",
                              a->name);
        else
                return 0;
        return -EINVAL;
}

int coordctl_lock_args_parse(int argc, char **argv, struct coordctl_lock_args *ret, char *errbuf, size_t errlen) {
        struct coordctl_lock_args a = {
                .lease_usec = COORDCTL_LOCK_DEFAULT_LEASE_USEC,
                .wait_usec = UINT64_MAX,
        };
        int i, r;

        assert(argv);
        assert(ret);
        for (i = 1; i < argc; i++) {
                const char *v = NULL;

                if (strcmp(argv[i], "--") == 0) {
                        i++;
                        break;
                }
                if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
                        a.help = 1;
                        *ret = a;
                        return 0;
                }
                r = flag_parse(argc, argv, &i, &v, errbuf, errlen);
                if (r >= 0)
                        r = flag_set(&a, (enum coordctl_lock_flag) r, v, errbuf, errlen);
                if (r == -EINVAL)
                        return r;
                if (r == 0)
                        continue;
                if (argv[i][0] == '-' && argv[i][1] != '\0') {
                        errbuf_printf(errbuf, errlen, "unknown flag '%s' (see coordctl lock --help)", argv[i]);
                        return -EINVAL;
                }
                if (a.name)
                        break; /* COMMAND starts here, "--" is optional */
                a.name = argv[i];
        }
        r = args_check(&a, argc, i, errbuf, errlen);
        if (r < 0)
                return r;
        a.command = argv + i;
        *ret = a;
        return 0;
}

/* ---- running ---- */

struct coordctl_lock_run {
        struct lock *lock;
        const char *name;
        const char *command;
        pid_t pid;
        int lost_fd;   /* the keeper's "lost" notice (an eventfd) */
        bool lost;
        bool exited;
        int status;
        pid_t guard;   /* guard_start(), or -1 */
        int guard_fd;
        sd_event_source *grace;
};

static void on_lost(struct lock *l, void *userdata) {
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
        struct coordctl_lock_run *r = userdata;

        r->exited = true;
        if (si->si_code == CLD_EXITED)
                r->status = si->si_status;
        else
                r->status = 128 + si->si_status;
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        struct coordctl_lock_run *r = userdata;

        (void) s;
        /* Forward; the lock is released when the child is gone. */
        if (r->pid > 0)
                (void) kill(-r->pid, (int) si->ssi_signo);
        return 0;
}

static int on_grace(sd_event_source *s, uint64_t usec, void *userdata) {
        struct coordctl_lock_run *r = userdata;

        (void) s;
        (void) usec;
        fprintf(stderr, "coordctl lock: %s did not stop within %llus of SIGTERM, sending SIGKILL\n", r->command,
                (unsigned long long) (LOST_GRACE_USEC / USEC_PER_SEC));
        (void) kill(-r->pid, SIGKILL);
        return 0;
}

static int on_lost_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct coordctl_lock_run *r = userdata;
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

/* A copy of environ without any COORD_FENCING_TOKEN/COORD_LOCK_NAME, plus ours;
 * freed with strv_free().  NULL on allocation failure. */
static char **child_env(uint64_t fence, const char *name) {
        _cleanup_(strv_freep) char **env = NULL;
        size_t n = strv_length(environ), k = 0;

        env = calloc(n + 3, sizeof(char *)); /* zeroed: NULL-terminated at every step */
        if (!env)
                return NULL;
        for (size_t i = 0; i < n; i++)
                if (strncmp(environ[i], "COORD_FENCING_TOKEN=", 20) != 0 &&
                    strncmp(environ[i], "COORD_LOCK_NAME=", 16) != 0 && !(env[k++] = strdup(environ[i])))
                        return NULL;
        if (!(env[k++] = strdup_printf("COORD_FENCING_TOKEN=%llu", (unsigned long long) fence)) ||
            !(env[k] = strdup_printf("COORD_LOCK_NAME=%s", name)))
                return NULL;
        return TAKE_PTR(env);
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

/* The guard process itself: wait for coordctl's "done" byte on fd; at EOF without it
 * coordctl is gone, so stop the whole group.  Never returns. */
_noreturn_ static void guard_main(int fd) {
        static const int ign[] = { SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGQUIT };
        sigset_t none;
        ssize_t n;
        char c;

        for (size_t i = 0; i < ELEMENTSOF(ign); i++)
                (void) signal(ign[i], SIG_IGN);
        sigemptyset(&none);
        (void) sigprocmask(SIG_SETMASK, &none, NULL);
        /* Hold nothing of coordctl's but the pipe (not the Redis connection). */
        for (int k = 3; k < 1024; k++)
                if (k != fd)
                        (void) close(k);
        do
                n = read(fd, &c, 1);
        while (n < 0 && errno == EINTR);
        if (n == 1)
                _exit(0);
        (void) kill(0, SIGTERM);
        (void) kill(0, SIGCONT);
        (void) sleep((unsigned) (LOST_GRACE_USEC / USEC_PER_SEC));
        (void) kill(0, SIGKILL); /* ourselves included */
        _exit(0);
}

/* A guard in COMMAND's process group, for when coordctl itself is killed with
 * SIGKILL: PR_SET_PDEATHSIG reaches only the direct child, so grandchildren
 * would run on without the lock.  The guard blocks on a pipe only coordctl
 * holds; EOF without coordctl's "done" byte means coordctl is gone, and the
 * guard stops the group (SIGTERM, SIGKILL after the grace period).  0 with the
 * guard's pid in *ret_pid and the pipe's end in *ret_fd, or -errno. */
static int guard_start(pid_t pgid, pid_t *ret_pid, int *ret_fd) {
        int p[2], r;
        pid_t g;

        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        g = fork();
        if (g < 0) {
                r = -errno;
                close(p[0]);
                close(p[1]);
                return r;
        }
        if (g == 0) {
                (void) setpgid(0, pgid);
                guard_main(p[0]);
        }
        close(p[0]);
        *ret_pid = g;
        *ret_fd = p[1];
        return 0;
}

/* coordctl is exiting normally: send the guard away and reap it. */
static void guard_stop(pid_t g, int fd) {
        if (g <= 0)
                return;
        (void) write(fd, "0", 1);
        close(fd);
        (void) waitpid(g, NULL, 0);
}

/* Redis (--redis, else $COORD_REDIS) and the namespace ($COORD_NAMESPACE) for a, into
 * *ret_url and *ret_opts.  0, or -EINVAL (message printed; outputs untouched). */
static int lock_target(const struct coordctl_lock_args *a, struct redis_url **ret_url,
                       struct lock_options *ret_opts) {
        _cleanup_(redis_url_freep) struct redis_url *url = NULL;
        const char *redis = a->redis ?: getenv("COORD_REDIS"), *ns;
        char err[512] = "";

        if (!redis || !*redis) {
                fprintf(stderr, "coordctl lock: no Redis given: pass --redis REDIS or set COORD_REDIS\n");
                return -EINVAL;
        }
        if (redis_url_parse(redis, &url, err, sizeof err) < 0) {
                fprintf(stderr, "coordctl lock: %s: %s\n", a->redis ? "--redis" : "COORD_REDIS", err);
                return -EINVAL;
        }
        if (url->ssl && tls_setup_from_env(err, sizeof err) < 0) {
                fprintf(stderr, "coordctl lock: %s\n", err);
                return -EINVAL;
        }
        log_add_secret(url->password);
        ns = getenv("COORD_NAMESPACE");
        if (ns && *ns && !name_is_valid(ns)) {
                fprintf(stderr, "coordctl lock: COORD_NAMESPACE: invalid namespace '%s'\n", ns);
                return -EINVAL;
        }
        *ret_opts = (struct lock_options) {
                .ns = ns && *ns ? ns : "default",
                .lease_usec = a->lease_usec,
                .wait_timeout_usec = a->wait_usec,
        };
        *ret_url = TAKE_PTR(url);
        return 0;
}

/* Take the lock, waiting as a says.  Signals keep their default action while we wait:
 * nothing is held yet.  0 with *ret, or lock_acquire()'s -errno (message printed). */
static int lock_take(const struct redis_url *url, const struct coordctl_lock_args *a,
                     const struct lock_options *opts, struct lock **ret) {
        _cleanup_free_ char *masked = NULL;
        char err[512] = "", d[DURATION_MAX];
        struct lock *l = NULL;
        int r;

        r = lock_acquire(url, a->name, opts, &l, err, sizeof err);
        if (r >= 0) {
                log_debug("lock %s acquired, fence %llu, lease %s", a->name, (unsigned long long) lock_fence(l),
                          duration_format(a->lease_usec, d, sizeof d));
                *ret = l;
                return 0;
        }
        masked = log_mask_secrets(err);
        if (r == -ETIMEDOUT || exit_code_for_connect(r) == EXIT_USAGE)
                fprintf(stderr, "coordctl lock: %s\n", masked ?: err);
        else
                fprintf(stderr, "coordctl lock: could not take lock %s: %s\n", a->name,
                        masked ?: (err[0] ? err : strerror(-r)));
        return r;
}

/* The exit code for a failure before COMMAND ran: CONTRACT.md's, here in one place. */
static int lock_exit_code(int r) {
        assert(r < 0);
        if (r == -ETIMEDOUT)
                return EXIT_TIMEOUT;
        return exit_code_for_connect(r); /* -EINVAL: usage (2); anything else: unreachable (3) */
}

/* The keeper (waking the loop through run->lost_fd when the lock is lost) and COMMAND's
 * environment in *ret_env.  0, or -errno. */
static int run_prepare(struct coordctl_lock_run *run, char ***ret_env) {
        char **env;
        int r;

        run->lost_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (run->lost_fd < 0)
                return -errno;
        r = lock_keeper_start(run->lock, on_lost, &run->lost_fd);
        if (r < 0)
                return r;
        env = child_env(lock_fence(run->lock), run->name);
        if (!env)
                return -ENOMEM;
        *ret_env = env;
        return 0;
}

/* Watch the child, the signals we forward and the keeper's "lost" notice until the child
 * exits.  When that fails, the child's group is killed and its status is EXIT_FAILED. */
static void run_loop(struct coordctl_lock_run *run) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(sd_event_source_unrefp) sd_event_source *child_src = NULL, *lost_src = NULL, *sig_term = NULL,
                                                          *sig_int = NULL, *sig_hup = NULL;
        int r;

        r = sd_event_new(&e);
        if (r >= 0)
                r = sd_event_add_child(e, &child_src, run->pid, WEXITED, on_child, run);
        if (r >= 0)
                r = sd_event_add_io(e, &lost_src, run->lost_fd, EPOLLIN, on_lost_io, run);
        if (r >= 0)
                r = sd_event_add_signal(e, &sig_term, SIGTERM, on_signal, run);
        if (r >= 0)
                r = sd_event_add_signal(e, &sig_int, SIGINT, on_signal, run);
        if (r >= 0)
                r = sd_event_add_signal(e, &sig_hup, SIGHUP, on_signal, run);
        if (r >= 0)
                r = sd_event_loop(e);
        if (r < 0 || !run->exited) {
                fprintf(stderr, "coordctl lock: event loop failed: %s; stopping %s\n", strerror(-r), run->command);
                (void) kill(-run->pid, SIGKILL);
                (void) waitpid(run->pid, NULL, 0);
                run->status = EXIT_FAILED;
        }
        run->grace = sd_event_source_unref(run->grace);
}

/* COMMAND has exited: stop the guard and what is left of its group, then release the
 * lock.  The exit status: COMMAND's, or EXIT_FAILED when the lock was lost. */
static int run_finish(struct coordctl_lock_run *run) {
        int r;

        guard_stop(run->guard, run->guard_fd);
        stop_group(run->pid, run->command);
        lock_keeper_stop(run->lock);
        if (run->lost || lock_is_lost(run->lock)) {
                if (!run->lost)
                        fprintf(stderr, "coordctl lock: lost the lock %s while %s ran (lease expired)\n", run->name,
                                run->command);
                (void) lock_release(run->lock); /* harmless if gone: compare-and-set on our token */
                fprintf(stderr, "coordctl lock: %s ended (status %d) after the lock %s was lost; exiting 1\n",
                        run->command, run->status, run->name);
                return EXIT_FAILED;
        }
        r = lock_release(run->lock);
        if (r == -ENOLCK)
                fprintf(stderr, "coordctl lock: warning: lock %s was no longer ours at release\n", run->name);
        else if (r < 0)
                fprintf(stderr, "coordctl lock: warning: could not release lock %s (%s); it expires with its lease\n",
                        run->name, strerror(-r));
        return run->status;
}

/* Run a's COMMAND while holding l; the exit status (CONTRACT.md: COMMAND's own, 1 when the
 * lock was lost or the keeper could not start, 126/127 when COMMAND cannot be run). */
static int run_command(const struct coordctl_lock_args *a, struct lock *l) {
        struct coordctl_lock_run run = { .lock = l, .name = a->name, .command = a->command[0], .lost_fd = -1,
                                         .guard = -1, .guard_fd = -1 };
        _cleanup_close_ int lost_fd = -1;
        char **envp = NULL;
        sigset_t mask, orig;
        int r;

        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, &orig);

        r = run_prepare(&run, &envp);
        lost_fd = run.lost_fd;
        if (r < 0) {
                fprintf(stderr, "coordctl lock: %s\n", strerror(-r));
                (void) lock_release(l);
                return EXIT_FAILED;
        }
        r = spawn(a->command, envp, &orig, &run.pid);
        strv_free(envp);
        if (r < 0) {
                fprintf(stderr, "coordctl lock: cannot run '%s': %s\n", run.command, strerror(-r));
                (void) lock_release(l);
                return r == -ENOENT ? 127 : 126;
        }
        r = guard_start(run.pid, &run.guard, &run.guard_fd);
        if (r < 0)
                fprintf(stderr, "coordctl lock: warning: no guard for %s's process group (%s): if coordctl is "
                        "killed with SIGKILL, its background jobs are not stopped\n", run.command, strerror(-r));
        run_loop(&run);
        return run_finish(&run);
}

int coordctl_lock_main(int argc, char **argv, const struct coordctl_globals *g) {
        _cleanup_(redis_url_freep) struct redis_url *url = NULL;
        _cleanup_(lock_freep) struct lock *l = NULL;
        struct coordctl_lock_args a;
        struct lock_options opts;
        char err[512] = "";
        int r;

        (void) g;
        /* A write to a Redis connection that just died must fail, not kill us
         * while a child runs (the child gets the default back). */
        (void) signal(SIGPIPE, SIG_IGN);
        if (coordctl_lock_args_parse(argc, argv, &a, err, sizeof err) < 0) {
                fprintf(stderr, "coordctl lock: %s\n", err);
                return EXIT_USAGE;
        }
        if (a.help) {
                help();
                return EXIT_OK;
        }
        r = lock_target(&a, &url, &opts);
        if (r == 0)
                r = lock_take(url, &a, &opts, &l);
        if (r < 0)
                return lock_exit_code(r);
        return run_command(&a, l);
}
