/* See duration.h. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "duration.h"

struct unit {
        const char *suffix;
        uint64_t usec;
};

static const struct unit units[] = {
        /* Longest suffixes first so "ms" is not read as "m" + "s". */
        { "ms", USEC_PER_MSEC },
        { "us", 1 },
        { "h", 3600 * USEC_PER_SEC },
        { "m", 60 * USEC_PER_SEC },
        { "s", USEC_PER_SEC },
        { "d", 86400 * USEC_PER_SEC },
};

#define DIGITS "0123456789"

static const struct unit *unit_lookup(const char *s) {
        for (size_t j = 0; j < sizeof units / sizeof units[0]; j++)
                if (strncmp(s, units[j].suffix, strlen(units[j].suffix)) == 0)
                        return &units[j];
        return NULL;
}

/* floor(usec * 0.DIGITS) for digits[0..n), exact for any n.  usec is c * 10^e: the
 * first e digits are whole microseconds times c; the rest add floor(c * 0.REST),
 * which is the carry out of the long multiplication c * REST done right to left. */
static uint64_t fraction_usec(uint64_t usec, const char *digits, size_t n) {
        uint64_t c = usec, head = 0, carry = 0;
        size_t e = 0;

        while (c % 10 == 0) {
                c /= 10;
                e++;
        }
        for (size_t i = 0; i < e; i++)
                head = head * 10 + (i < n ? (uint64_t) (digits[i] - '0') : 0);
        for (size_t i = n; i > e; i--)
                carry = (c * (uint64_t) (digits[i - 1] - '0') + carry) / 10;
        return c * head + carry; /* < usec: cannot overflow */
}

/* One component "<digits>[.<digits>]<unit>" at *p, moving *p past it.  0 with *ret;
 * -EINVAL when malformed; -ERANGE (*p still moved) when it exceeds UINT64_MAX us. */
static int component_parse(const char **p, uint64_t *ret) {
        const char *s = *p, *frac = NULL;
        size_t nwhole = strspn(s, DIGITS), nfrac = 0;
        const struct unit *u;
        uint64_t whole = 0, part;
        bool overflow = false;

        for (size_t i = 0; i < nwhole && !overflow; i++)
                overflow = __builtin_mul_overflow(whole, 10, &whole) ||
                           __builtin_add_overflow(whole, (uint64_t) (s[i] - '0'), &whole);
        s += nwhole;
        if (*s == '.') {
                frac = ++s;
                nfrac = strspn(s, DIGITS);
                s += nfrac;
        }
        u = unit_lookup(s);
        if (nwhole + nfrac == 0 || !u)
                return -EINVAL; /* no digits, or a missing or unknown unit */
        *p = s + strlen(u->suffix);
        if (overflow || __builtin_mul_overflow(whole, u->usec, &part) ||
            __builtin_add_overflow(part, fraction_usec(u->usec, frac, nfrac), &part))
                return -ERANGE;
        *ret = part;
        return 0;
}

int duration_parse(const char *s, uint64_t *ret_usec) {
        uint64_t total = 0, part = 0;
        bool overflow = false;
        const char *p = s;

        if (!s || !*s)
                return -EINVAL;
        while (*p) {
                int r = component_parse(&p, &part);
                if (r == -EINVAL)
                        return r; /* malformed wins over too large: check the whole string */
                if (r < 0 || __builtin_add_overflow(total, part, &total))
                        overflow = true;
        }
        if (overflow)
                return -ERANGE;
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
