/* See hook.h. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "duration.h"
#include "hook.h"
#include "log.h"
#include "macro.h"
#include "strutil.h"
#include "strv.h"

extern char **environ;

/* How long output from background children is still read once the shell exited. */
#define HOOK_DRAIN_USEC (200 * USEC_PER_MSEC)
/* Between SIGTERM and SIGKILL after a timeout. */
#define HOOK_KILL_GRACE_USEC USEC_PER_SEC

struct hook {
        sd_event *event;
        sd_event_source *child_source, *io_source, *timer_source;
        pid_t pid;
        int fd;
        char name[32];
        char *service, *instance;
        int output_level;
        uint64_t started, timeout;
        hook_done_cb cb;
        void *userdata;

        char line[HOOK_LINE_MAX + 1];
        size_t line_len;
        char *tail[HOOK_TAIL_LINES];
        size_t tail_first, tail_n, tail_bytes;

        bool exited, eof, timed_out, killed, done;
        int exit_code, signal;
};

static void hook_close_io(struct hook *h) {
        h->io_source = sd_event_source_disable_unref(h->io_source);
        if (h->fd >= 0)
                close(h->fd);
        h->fd = -1;
}

struct hook *hook_free(struct hook *h) {
        if (!h)
                return NULL;
        if (h->pid > 0 && !h->exited) {
                (void) kill(-h->pid, SIGKILL);
                (void) kill(h->pid, SIGKILL);
                /* Reap it here: the child source goes away with us. */
                h->child_source = sd_event_source_disable_unref(h->child_source);
                (void) waitpid(h->pid, NULL, 0);
        }
        h->child_source = sd_event_source_disable_unref(h->child_source);
        h->timer_source = sd_event_source_disable_unref(h->timer_source);
        hook_close_io(h);
        for (size_t i = 0; i < HOOK_TAIL_LINES; i++)
                free(h->tail[i]);
        free(h->service);
        free(h->instance);
        sd_event_unref(h->event);
        free(h);
        return NULL;
}

bool hook_is_running(const struct hook *h) {
        return h && !h->done;
}

pid_t hook_pid(const struct hook *h) {
        return h ? h->pid : 0;
}

static void tail_add(struct hook *h, const char *line) {
        size_t len = strlen(line);
        char *c;

        while (h->tail_n > 0 && (h->tail_n == HOOK_TAIL_LINES || h->tail_bytes + len + 1 > HOOK_TAIL_BYTES)) {
                char **oldest = &h->tail[h->tail_first];
                h->tail_bytes -= strlen(*oldest) + 1;
                free(*oldest);
                *oldest = NULL;
                h->tail_first = (h->tail_first + 1) % HOOK_TAIL_LINES;
                h->tail_n--;
        }
        if (len + 1 > HOOK_TAIL_BYTES)
                len = HOOK_TAIL_BYTES - 1;
        c = strndup(line, len);
        if (!c)
                return;
        h->tail[(h->tail_first + h->tail_n) % HOOK_TAIL_LINES] = c;
        h->tail_n++;
        h->tail_bytes += len + 1;
}

static void emit_line(struct hook *h) {
        char fs[80], fi[96], fh[64];
        const char *fields[] = { fs, fi, fh, NULL };

        if (h->line_len > 0 && h->line[h->line_len - 1] == '\r')
                h->line_len--;
        h->line[h->line_len] = '\0';
        snprintf(fs, sizeof fs, "COORD_SERVICE=%s", h->service ? h->service : "");
        snprintf(fi, sizeof fi, "COORD_INSTANCE=%s", h->instance ? h->instance : "");
        snprintf(fh, sizeof fh, "COORD_HOOK=%.*s", (int) strcspn(h->name, " "), h->name);
        log_fields(h->output_level, fields, "%s: %s", h->name, h->line);
        tail_add(h, h->line);
        h->line_len = 0;
}

static void feed(struct hook *h, const char *buf, size_t n) {
        for (size_t i = 0; i < n; i++) {
                if (buf[i] == '\n') {
                        emit_line(h);
                        continue;
                }
                h->line[h->line_len++] = buf[i] ? buf[i] : '?';
                if (h->line_len == HOOK_LINE_MAX)
                        emit_line(h);
        }
}

/* Output of background children that outlived their hook: still logged, line
 * by line, until they close it, so a daemon started by a hook never dies of
 * SIGPIPE.  Detached from the hook; all freed by hook_sinks_free(). */
struct sink {
        struct sink *next;
        sd_event_source *source;
        int fd;
        char fields[3][96];
        char name[32];
        char line[HOOK_LINE_MAX + 1];
        size_t len;
};
static struct sink *sinks;

static void sink_free(struct sink *k) {
        for (struct sink **p = &sinks; *p; p = &(*p)->next)
                if (*p == k) {
                        *p = k->next;
                        break;
                }
        sd_event_source_disable_unref(k->source);
        if (k->fd >= 0)
                close(k->fd);
        free(k);
}

static void sink_emit(struct sink *k) {
        const char *fields[] = { k->fields[0], k->fields[1], k->fields[2], NULL };

        k->line[k->len] = '\0';
        log_fields(LOG_INFO, fields, "%s (background): %s", k->name, k->line);
        k->len = 0;
}

static int on_sink_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct sink *k = userdata;
        char buf[4096];
        ssize_t n;

        n = read(fd, buf, sizeof buf);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (n <= 0) {
                if (k->len > 0)
                        sink_emit(k);
                sink_free(k);
                return 0;
        }
        for (ssize_t i = 0; i < n; i++) {
                if (buf[i] == '\n' || k->len == HOOK_LINE_MAX) {
                        sink_emit(k);
                        if (buf[i] == '\n')
                                continue;
                }
                k->line[k->len++] = buf[i] ? buf[i] : '?';
        }
        return 0;
}

/* Hand h's still open pipe to a sink; false when that is not possible. */
static bool hook_detach_output(struct hook *h) {
        struct sink *k = calloc(1, sizeof *k);

        if (!k)
                return false;
        k->fd = h->fd;
        snprintf(k->fields[0], sizeof k->fields[0], "COORD_SERVICE=%s", h->service ? h->service : "");
        snprintf(k->fields[1], sizeof k->fields[1], "COORD_INSTANCE=%s", h->instance ? h->instance : "");
        snprintf(k->fields[2], sizeof k->fields[2], "COORD_HOOK=%.*s", (int) strcspn(h->name, " "), h->name);
        snprintf(k->name, sizeof k->name, "%s", h->name);
        /* One epoll registration per fd: drop the hook's first. */
        h->io_source = sd_event_source_disable_unref(h->io_source);
        if (sd_event_add_io(h->event, &k->source, k->fd, EPOLLIN, on_sink_io, k) < 0) {
                free(k);
                return false;
        }
        h->fd = -1;
        k->next = sinks;
        sinks = k;
        return true;
}

void hook_sinks_free(void) {
        while (sinks)
                sink_free(sinks);
}

static void hook_finish(struct hook *h) {
        char err[256];
        _cleanup_free_ char *out = NULL;
        struct hook_result res = {};
        size_t len = 0;

        if (h->done)
                return;
        h->done = true;
        if (h->line_len > 0)
                emit_line(h);
        /* Only a normal exit leaves background children to listen to; after a
         * timeout the whole group is gone or going. */
        if (h->fd >= 0 && !h->eof && !h->timed_out && !hook_detach_output(h))
                log_warning("%s: background children keep its output open; no longer reading it", h->name);
        hook_close_io(h);
        h->timer_source = sd_event_source_disable_unref(h->timer_source);

        out = malloc(h->tail_bytes + 1);
        if (out) {
                for (size_t i = 0; i < h->tail_n; i++) {
                        const char *l = h->tail[(h->tail_first + i) % HOOK_TAIL_LINES];
                        size_t ll = strlen(l);
                        memcpy(out + len, l, ll);
                        len += ll;
                        if (i + 1 < h->tail_n)
                                out[len++] = '\n';
                }
                out[len] = '\0';
        }

        res.exit_code = h->exit_code;
        res.signal = h->signal;
        res.timed_out = h->timed_out;
        res.duration_usec = now_usec() - h->started;
        res.output = out ? out : "";
        if (h->timed_out) {
                char d[DURATION_MAX];
                snprintf(err, sizeof err, "%s timed out after %s; its process group was killed", h->name,
                         duration_format(h->timeout, d, sizeof d));
                res.exit_code = -1;
                res.error = err;
        } else if (h->signal) {
                snprintf(err, sizeof err, "%s killed by signal %s", h->name, sigabbrev_np(h->signal) ?: "?");
                res.error = err;
        } else if (h->exit_code == 127) {
                snprintf(err, sizeof err, "%s exited with status 127 (command not found?)", h->name);
                res.error = err;
        } else if (h->exit_code != 0) {
                snprintf(err, sizeof err, "%s exited with status %d", h->name, h->exit_code);
                res.error = err;
        }
        /* May free h. */
        h->cb(h, &res, h->userdata);
}

static void maybe_finish(struct hook *h);

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        struct hook *h = userdata;

        if (h->exited) {
                /* Drain period over: a background child still holds the pipe. */
                maybe_finish(h);
                if (!h->done)
                        hook_finish(h);
                return 0;
        }
        if (!h->timed_out) {
                h->timed_out = true;
                log_warning("%s (pid %d) timed out, sending SIGTERM to its process group", h->name, (int) h->pid);
                (void) kill(-h->pid, SIGTERM);
                (void) sd_event_source_set_time(s, usec + HOOK_KILL_GRACE_USEC);
                (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
                return 0;
        }
        if (!h->killed) {
                h->killed = true;
                log_warning("%s (pid %d) still running, sending SIGKILL to its process group", h->name,
                            (int) h->pid);
                (void) kill(-h->pid, SIGKILL);
        }
        return 0;
}

static void maybe_finish(struct hook *h) {
        if (h->done || !h->exited)
                return;
        if (h->eof || h->fd < 0) {
                hook_finish(h);
                return;
        }
        /* Give background children a moment to flush, then stop listening. */
        if (!h->timer_source) {
                if (sd_event_add_time_relative(h->event, &h->timer_source, CLOCK_MONOTONIC, HOOK_DRAIN_USEC, 0,
                                               on_timer, h) < 0)
                        hook_finish(h);
        } else {
                (void) sd_event_source_set_time_relative(h->timer_source, HOOK_DRAIN_USEC);
                (void) sd_event_source_set_enabled(h->timer_source, SD_EVENT_ONESHOT);
        }
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct hook *h = userdata;
        char buf[4096];

        for (int rounds = 0; rounds < 16; rounds++) {
                ssize_t n = read(fd, buf, sizeof buf);
                if (n > 0) {
                        feed(h, buf, (size_t) n);
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return 0;
                /* EOF or error: every writer is gone. */
                h->eof = true;
                hook_close_io(h);
                maybe_finish(h);
                return 0;
        }
        return 0;
}

static int on_child(sd_event_source *s, const siginfo_t *si, void *userdata) {
        struct hook *h = userdata;

        h->exited = true;
        if (si->si_code == CLD_EXITED)
                h->exit_code = si->si_status;
        else {
                h->exit_code = -1;
                h->signal = si->si_status;
        }
        h->child_source = sd_event_source_disable_unref(h->child_source);
        if (h->timed_out) {
                /* Whatever is left of the group goes too, even if it ignored SIGTERM. */
                (void) kill(-h->pid, SIGKILL);
                h->timer_source = sd_event_source_disable_unref(h->timer_source);
        } else if (h->timer_source)
                (void) sd_event_source_set_enabled(h->timer_source, SD_EVENT_OFF);
        maybe_finish(h);
        return 0;
}

/* ---- the environment of children ---- */

/* Harmless variables a hook may expect: the search path, who and where it is,
 * its locale (LC_* too) and time zone. */
static const char *const env_allowed[] = { "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR" };
/* What the agent sets itself (agent.c instance_coord_vars()).  Not the TLS
 * files: hooks.env may name others (agent.c instance_env()). */
static const char *const env_coord[] = { "COORD_SERVICE", "COORD_INSTANCE", "COORD_VERSION", "COORD_PREVIOUS_VERSION",
                                         "COORD_DEPLOYMENT", "COORD_NAMESPACE", "COORD_HOST", "COORD_MIGRATE_PHASE" };

static bool name_in(const char *name, const char *const *list, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(name, list[i]) == 0)
                        return true;
        return false;
}

bool hook_env_name_is_valid(const char *name) {
        size_t n = name ? strlen(name) : 0;

        if (n == 0 || n > HOOK_ENV_NAME_MAX || (name[0] >= '0' && name[0] <= '9'))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!(name[i] == '_' || (name[i] >= 'A' && name[i] <= 'Z') || (name[i] >= 'a' && name[i] <= 'z') ||
                      (name[i] >= '0' && name[i] <= '9')))
                        return false;
        return true;
}

bool hook_env_name_is_private(const char *name) {
        return strncmp(name, "COORD_", 6) == 0 || strcmp(name, "CREDENTIALS_DIRECTORY") == 0;
}

bool hook_env_name_is_reserved(const char *name) {
        return name_in(name, env_coord, ELEMENTSOF(env_coord)) || strcmp(name, "CREDENTIALS_DIRECTORY") == 0;
}

/* Length of the name of "NAME=value" (all of it when there is no '='). */
static size_t entry_name_len(const char *entry) {
        return strcspn(entry, "=");
}

/* The entries being built: add() replaces one of the same name. */
struct envlist {
        char **v;
        size_t n, cap;
};

static int envlist_add(struct envlist *l, const char *entry) {
        size_t nl = entry_name_len(entry);
        char *c = strdup(entry);

        if (!c)
                return -ENOMEM;
        for (size_t i = 0; i < l->n; i++)
                if (entry_name_len(l->v[i]) == nl && strncmp(l->v[i], entry, nl) == 0) {
                        free(l->v[i]);
                        l->v[i] = c;
                        return 0;
                }
        if (l->n + 1 >= l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 32;
                char **v = reallocarray(l->v, cap, sizeof *v);
                if (!v) {
                        free(c);
                        return -ENOMEM;
                }
                l->v = v;
                l->cap = cap;
        }
        l->v[l->n++] = c;
        l->v[l->n] = NULL;
        return 0;
}

static int envlist_add_all(struct envlist *l, const char *const *entries) {
        for (size_t i = 0; entries && entries[i]; i++) {
                int r = envlist_add(l, entries[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Whether base's entry may be inherited: allow-listed or in pass, never private. */
static bool env_inherits(const char *entry, const char *const *pass) {
        size_t nl = entry_name_len(entry);
        char name[HOOK_ENV_NAME_MAX + 1];

        if (entry[nl] != '=' || nl > HOOK_ENV_NAME_MAX)
                return false;
        memcpy(name, entry, nl);
        name[nl] = '\0';
        if (hook_env_name_is_private(name))
                return false;
        if (strncmp(name, "LC_", 3) == 0 || name_in(name, env_allowed, ELEMENTSOF(env_allowed)))
                return true;
        for (size_t i = 0; pass && pass[i]; i++)
                if (strcmp(name, pass[i]) == 0)
                        return true;
        return false;
}

static int envlist_inherit(struct envlist *l, const char *const *base, const char *const *pass) {
        bool has_path = false;
        int r;

        for (size_t i = 0; base && base[i]; i++) {
                if (!env_inherits(base[i], pass))
                        continue;
                has_path = has_path || strncmp(base[i], "PATH=", 5) == 0;
                r = envlist_add(l, base[i]);
                if (r < 0)
                        return r;
        }
        return has_path ? 0 : envlist_add(l, "PATH=" HOOK_DEFAULT_PATH);
}

int hook_env_build(const char *const *base, const char *const *pass, const char *const *set,
                   const char *const *coord, char ***ret) {
        struct envlist l = {};
        int r;

        r = envlist_inherit(&l, base, pass);
        if (r >= 0)
                r = envlist_add_all(&l, set);
        if (r >= 0)
                r = envlist_add_all(&l, coord);
        if (r < 0) {
                strv_free(l.v);
                return r;
        }
        *ret = l.v;
        return 0;
}

_noreturn_ static void child_exec(int nullfd, int wfd, char *const *argv, char *const *envp) {
        sigset_t ss;
        struct sigaction sa = { .sa_handler = SIG_DFL };

        (void) setpgid(0, 0);
        for (int sig = 1; sig < NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        (void) sigaction(sig, &sa, NULL);
        sigemptyset(&ss);
        (void) sigprocmask(SIG_SETMASK, &ss, NULL);
        if (dup2(nullfd, STDIN_FILENO) < 0 || dup2(wfd, STDOUT_FILENO) < 0 || dup2(wfd, STDERR_FILENO) < 0)
                _exit(127);
        if (close_range(3, ~0U, 0) < 0)
                for (int fd = 3; fd < 4096; fd++)
                        (void) close(fd);
        execve("/bin/sh", argv, envp);
        _exit(127);
}

int hook_start(sd_event *e, const struct hook_spec *spec, hook_done_cb cb, void *userdata, struct hook **ret) {
        _cleanup_close_ int nullfd = -1, rfd = -1, wfd = -1;
        _cleanup_(strv_freep) char **envp = NULL;
        char *argv[] = { (char *) "sh", (char *) "-c", (char *) spec->command, NULL };
        int pipefd[2];
        struct hook *h;
        pid_t pid;
        int r;

        if (!spec->command || !cb)
                return -EINVAL;
        nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (nullfd < 0)
                return -errno;
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;
        rfd = pipefd[0];
        wfd = pipefd[1];
        if (fcntl(rfd, F_SETFL, O_NONBLOCK) < 0)
                return -errno;
        /* Never the agent's own environment: the caller's, or the allow-listed part of it. */
        if (!spec->env) {
                r = hook_env_build((const char *const *) environ, NULL, NULL, NULL, &envp);
                if (r < 0)
                        return r;
        }

        h = calloc(1, sizeof *h);
        if (!h)
                return -ENOMEM;
        h->fd = -1;
        h->event = sd_event_ref(e);
        snprintf(h->name, sizeof h->name, "%s", spec->name ? spec->name : "hook");
        h->service = spec->service ? strdup(spec->service) : NULL;
        h->instance = spec->instance ? strdup(spec->instance) : NULL;
        h->output_level = spec->output_level;
        h->timeout = spec->timeout_usec;
        h->cb = cb;
        h->userdata = userdata;
        h->started = now_usec();

        pid = fork();
        if (pid < 0) {
                r = -errno;
                hook_free(h);
                return r;
        }
        if (pid == 0)
                child_exec(nullfd, wfd, argv, envp ? envp : (char *const *) spec->env);

        /* Both sides set the group, whichever runs first. */
        (void) setpgid(pid, pid);
        h->pid = pid;
        h->fd = TAKE_FD(rfd);

        r = sd_event_add_child(e, &h->child_source, pid, WEXITED, on_child, h);
        if (r < 0)
                goto fail;
        r = sd_event_add_io(e, &h->io_source, h->fd, EPOLLIN, on_io, h);
        if (r < 0)
                goto fail;
        if (h->timeout > 0) {
                r = sd_event_add_time_relative(e, &h->timer_source, CLOCK_MONOTONIC, h->timeout, 0, on_timer, h);
                if (r < 0)
                        goto fail;
        }
        *ret = h;
        return 0;
fail:
        hook_free(h);
        return r;
}
