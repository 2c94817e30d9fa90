/* See log.h.  Thread-safe: one mutex around formatting and output. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define SD_JOURNAL_SUPPRESS_LOCATION 1
#include <systemd/sd-journal.h>

#include "log.h"

#define LOG_LINE_MAX 8192
#define LOG_FIELDS_MAX 16
#define LOG_SECRETS_MAX 64

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int max_level = LOG_INFO;
static bool use_journal;
static bool force_stderr;
static char ident[64] = "coord";
static char *secrets[LOG_SECRETS_MAX];
static size_t n_secrets;

static bool stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

void log_open(const char *name) {
        const char *lvl;

        pthread_mutex_lock(&log_lock);
        if (name) {
                const char *slash = strrchr(name, '/');
                snprintf(ident, sizeof ident, "%s", slash ? slash + 1 : name);
        }
        use_journal = stderr_is_journal();
        pthread_mutex_unlock(&log_lock);

        lvl = getenv("COORD_LOG_LEVEL");
        if (lvl) {
                int l = log_level_from_string(lvl);
                if (l >= 0)
                        log_set_max_level(l);
        }
}

void log_force_stderr(int yes) {
        force_stderr = yes;
}

void log_set_max_level(int level) {
        max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

static const char *const log_level_table[LOG_DEBUG + 1] = {
        [LOG_EMERG] = "emerg",     [LOG_ALERT] = "alert",   [LOG_CRIT] = "crit", [LOG_ERR] = "error",
        [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice", [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};
DEFINE_STRING_TABLE_LOOKUP_TO_STRING(log_level, int, LOG_DEBUG + 1)

int log_level_from_string(const char *s) {
        int r = string_table_lookup(log_level_table, LOG_DEBUG + 1, s);

        if (r >= 0 || !s)
                return r;
        /* syslog's short names, and the numbers */
        if (strcmp(s, "err") == 0)
                return LOG_ERR;
        if (strcmp(s, "warn") == 0)
                return LOG_WARNING;
        if (s[0] >= '0' && s[0] <= '7' && s[1] == '\0')
                return s[0] - '0';
        return -EINVAL;
}

void log_add_secret(const char *secret) {
        if (!secret || strlen(secret) < 3)
                return;
        pthread_mutex_lock(&log_lock);
        for (size_t i = 0; i < n_secrets; i++)
                if (strcmp(secrets[i], secret) == 0)
                        goto out;
        if (n_secrets < LOG_SECRETS_MAX) {
                char *c = strdup(secret);
                if (c)
                        secrets[n_secrets++] = c;
        }
out:
        pthread_mutex_unlock(&log_lock);
}

void log_clear_secrets(void) {
        pthread_mutex_lock(&log_lock);
        for (size_t i = 0; i < n_secrets; i++)
                free(secrets[i]);
        n_secrets = 0;
        pthread_mutex_unlock(&log_lock);
}

/* Replace every registered secret in buf (in place, bounded by size).  Caller holds the lock. */
static void mask_locked(char *buf, size_t size) {
        static const char mask[] = "*****";

        for (size_t i = 0; i < n_secrets; i++) {
                size_t sl = strlen(secrets[i]);
                char *p = buf;

                while ((p = strstr(p, secrets[i]))) {
                        size_t pos = (size_t) (p - buf), tail;

                        if (pos + 5 + 1 > size) {
                                /* No room for the mask: cut the line before the secret. */
                                *p = '\0';
                                break;
                        }
                        tail = strlen(p + sl);
                        if (pos + 5 + tail + 1 > size)
                                tail = size - pos - 5 - 1;
                        memmove(p + 5, p + sl, tail);
                        p[5 + tail] = '\0';
                        memcpy(p, mask, 5);
                        p += 5;
                }
        }
}

char *log_mask_secrets(const char *s) {
        size_t n;
        char *r;

        if (!s)
                return NULL;
        /* Masks are at most 5 characters and secrets at least 3, so growth is bounded by 5/3. */
        n = strlen(s) * 2 + 8;
        r = malloc(n);
        if (!r)
                return NULL;
        snprintf(r, n, "%s", s);
        pthread_mutex_lock(&log_lock);
        mask_locked(r, n);
        pthread_mutex_unlock(&log_lock);
        return r;
}

int log_internalv(int level, int error, const char *file, int line, const char *func,
                  const char *const *fields, const char *fmt, va_list ap) {
        char msg[LOG_LINE_MAX];
        int saved_errno = errno;

        if (error < 0)
                error = -error;
        if (level > max_level) {
                errno = saved_errno;
                return -error;
        }

        errno = error;
        vsnprintf(msg, sizeof msg, fmt, ap);

        pthread_mutex_lock(&log_lock);
        mask_locked(msg, sizeof msg);

        if (use_journal && !force_stderr) {
                struct iovec iov[LOG_FIELDS_MAX + 8];
                char fbuf[LOG_FIELDS_MAX][512];
                char m[LOG_LINE_MAX + 16], p[32], id[96], cf[512], cl[32], fn[256], en[32];
                size_t n = 0;

                snprintf(m, sizeof m, "MESSAGE=%s", msg);
                snprintf(p, sizeof p, "PRIORITY=%d", level);
                snprintf(id, sizeof id, "SYSLOG_IDENTIFIER=%s", ident);
                snprintf(cf, sizeof cf, "CODE_FILE=%s", file);
                snprintf(cl, sizeof cl, "CODE_LINE=%d", line);
                snprintf(fn, sizeof fn, "CODE_FUNC=%s", func);
                iov[n++] = (struct iovec) { m, strlen(m) };
                iov[n++] = (struct iovec) { p, strlen(p) };
                iov[n++] = (struct iovec) { id, strlen(id) };
                iov[n++] = (struct iovec) { cf, strlen(cf) };
                iov[n++] = (struct iovec) { cl, strlen(cl) };
                iov[n++] = (struct iovec) { fn, strlen(fn) };
                if (error) {
                        snprintf(en, sizeof en, "ERRNO=%d", error);
                        iov[n++] = (struct iovec) { en, strlen(en) };
                }
                for (size_t i = 0; fields && fields[i] && i < LOG_FIELDS_MAX; i++) {
                        snprintf(fbuf[i], sizeof fbuf[i], "%s", fields[i]);
                        mask_locked(fbuf[i], sizeof fbuf[i]);
                        iov[n++] = (struct iovec) { fbuf[i], strlen(fbuf[i]) };
                }
                sd_journal_sendv(iov, (int) n);
        } else {
                char out[LOG_LINE_MAX + 1024], ts[40];
                struct timespec now;
                struct tm tm;
                size_t o;

                clock_gettime(CLOCK_REALTIME, &now);
                gmtime_r(&now.tv_sec, &tm);
                strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
                o = (size_t) snprintf(out, sizeof out, "%s.%03ldZ %s[%d]: %s: %s", ts, now.tv_nsec / 1000000,
                                      ident, (int) getpid(), log_level_to_string(level) ?: "?", msg);
                for (size_t i = 0; fields && fields[i] && o < sizeof out - 2; i++) {
                        const char *eq = strchr(fields[i], '=');
                        char key[64];
                        size_t kl;

                        if (!eq)
                                continue;
                        kl = MIN((size_t) (eq - fields[i]), sizeof key - 1);
                        /* COORD_INSTANCE=x shows as instance=x on a terminal. */
                        for (size_t k = 0; k < kl; k++) {
                                char c = fields[i][k];
                                key[k] = (char) (c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
                        }
                        key[kl] = '\0';
                        o += (size_t) snprintf(out + o, sizeof out - o, " %s=%s",
                                               strncmp(key, "coord_", 6) == 0 ? key + 6 : key, eq + 1);
                }
                if (o >= sizeof out - 1)
                        o = sizeof out - 2;
                out[o++] = '\n';
                out[o] = '\0';
                mask_locked(out, sizeof out);
                fputs(out, stderr);
                fflush(stderr);
        }
        pthread_mutex_unlock(&log_lock);

        errno = saved_errno;
        return -error;
}

int log_internal(int level, int error, const char *file, int line, const char *func,
                 const char *const *fields, const char *fmt, ...) {
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = log_internalv(level, error, file, line, func, fields, fmt, ap);
        va_end(ap);
        return r;
}

void log_format_masked(char *buf, size_t len, const char *fmt, va_list ap) {
        char *masked;

        vsnprintf(buf, len, fmt, ap);
        masked = log_mask_secrets(buf);
        snprintf(buf, len, "%s", masked ? masked : "(out of memory)");
        free(masked);
}
