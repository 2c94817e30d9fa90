/* See duration.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "duration.h"

static const struct {
        const char *suffix;
        uint64_t usec;
} units[] = {
        /* Longest suffixes first so "ms" is not read as "m" + "s". */
        { "ms", USEC_PER_MSEC },
        { "us", 1 },
        { "h", 3600 * USEC_PER_SEC },
        { "m", 60 * USEC_PER_SEC },
        { "s", USEC_PER_SEC },
        { "d", 86400 * USEC_PER_SEC },
};

int duration_parse(const char *s, uint64_t *ret_usec) {
        uint64_t total = 0;
        const char *p = s;

        if (!s || !*s)
                return -EINVAL;

        while (*p) {
                uint64_t whole = 0, frac = 0, frac_div = 1, part;
                size_t j, ndigits = 0;

                while (*p >= '0' && *p <= '9') {
                        if (whole > (UINT64_MAX - 9) / 10)
                                return -ERANGE;
                        whole = whole * 10 + (uint64_t) (*p - '0');
                        p++;
                        ndigits++;
                }
                if (*p == '.') {
                        p++;
                        while (*p >= '0' && *p <= '9') {
                                if (frac_div < UINT64_C(1000000000)) {
                                        frac = frac * 10 + (uint64_t) (*p - '0');
                                        frac_div *= 10;
                                }
                                p++;
                                ndigits++;
                        }
                }
                if (ndigits == 0)
                        return -EINVAL;
                for (j = 0; j < sizeof units / sizeof units[0]; j++)
                        if (strncmp(p, units[j].suffix, strlen(units[j].suffix)) == 0)
                                break;
                if (j == sizeof units / sizeof units[0])
                        return -EINVAL; /* missing or unknown unit */
                p += strlen(units[j].suffix);

                if (whole > UINT64_MAX / units[j].usec)
                        return -ERANGE;
                part = whole * units[j].usec + frac * units[j].usec / frac_div;
                if (total > UINT64_MAX - part)
                        return -ERANGE;
                total += part;
        }

        *ret_usec = total;
        return 0;
}

char *duration_format(uint64_t usec, char *buf, size_t size) {
        size_t o = 0;

        if (size == 0)
                return buf;
        buf[0] = '\0';
        if (usec == 0) {
                snprintf(buf, size, "0s");
                return buf;
        }
        if (usec % USEC_PER_MSEC != 0 || usec < USEC_PER_SEC) {
                if (usec % USEC_PER_MSEC == 0)
                        snprintf(buf, size, "%llums", (unsigned long long) (usec / USEC_PER_MSEC));
                else
                        snprintf(buf, size, "%lluus", (unsigned long long) usec);
                return buf;
        }
        for (size_t j = 2; j <= 4 && o < size; j++) { /* h, m, s */
                uint64_t n = usec / units[j].usec;
                if (n > 0) {
                        o += (size_t) snprintf(buf + o, size - o, "%llu%s", (unsigned long long) n, units[j].suffix);
                        usec -= n * units[j].usec;
                }
        }
        if (usec > 0 && o < size)
                snprintf(buf + o, size - o, "%llums", (unsigned long long) (usec / USEC_PER_MSEC));
        return buf;
}

static uint64_t ts_usec(clockid_t clk) {
        struct timespec ts;
        clock_gettime(clk, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

uint64_t now_usec(void) {
        return ts_usec(CLOCK_MONOTONIC);
}

uint64_t now_realtime_usec(void) {
        return ts_usec(CLOCK_REALTIME);
}

uint64_t now_realtime_msec(void) {
        return now_realtime_usec() / USEC_PER_MSEC;
}

char *format_rfc3339(uint64_t realtime_usec, char *buf, size_t size) {
        time_t t = (time_t) (realtime_usec / USEC_PER_SEC);
        struct tm tm;
        char b[32];

        gmtime_r(&t, &tm);
        strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf, size, "%s.%03uZ", b, (unsigned) (realtime_usec % USEC_PER_SEC / 1000));
        return buf;
}
