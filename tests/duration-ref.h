/* A reference duration parser, written for obviousness rather than speed, that
 * tests/unit/test-duration.c and tests/fuzz/fuzz-duration.c compare
 * duration_parse() against.  It shares no code with lib/duration.c: whole
 * parts and sums are unsigned __int128 (saturated just above UINT64_MAX), and
 * the fraction of a component, floor(usec * 0.DIGITS), is found by binary search
 * over q, comparing q/usec with 0.DIGITS digit by digit (long division). */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef unsigned __int128 duration_ref_u128;

#define DURATION_REF_CAP ((duration_ref_u128) UINT64_MAX + 1)

static const struct {
        const char *suffix;
        uint64_t usec;
} duration_ref_units[] = {
        { "ms", 1000 }, { "us", 1 }, { "h", 3600000000 }, { "m", 60000000 }, { "s", 1000000 }, { "d", 86400000000 },
};

/* Whether q/usec <= 0.DIGITS (digits[0..n)), for q < usec. */
static inline bool duration_ref_le(uint64_t q, uint64_t usec, const char *digits, size_t n) {
        uint64_t r = q;

        for (size_t i = 0; i < n; i++) {
                uint64_t d;
                r *= 10;
                d = r / usec;
                r %= usec;
                if (d != (uint64_t) (digits[i] - '0'))
                        return d < (uint64_t) (digits[i] - '0');
        }
        return r == 0;
}

/* floor(usec * 0.DIGITS): the largest q in [0, usec) with q/usec <= 0.DIGITS. */
static inline uint64_t duration_ref_fraction(uint64_t usec, const char *digits, size_t n) {
        uint64_t lo = 0, hi = usec - 1;

        while (lo < hi) {
                uint64_t mid = lo + (hi - lo + 1) / 2;
                if (duration_ref_le(mid, usec, digits, n))
                        lo = mid;
                else
                        hi = mid - 1;
        }
        return lo;
}

static inline int duration_ref_parse(const char *s, uint64_t *ret) {
        duration_ref_u128 total = 0;

        if (!s || !*s)
                return -EINVAL;
        while (*s) {
                duration_ref_u128 whole = 0;
                const char *frac = "";
                size_t nw = 0, nf = 0, j, nu = sizeof duration_ref_units / sizeof duration_ref_units[0];

                for (; s[nw] >= '0' && s[nw] <= '9'; nw++) {
                        whole = whole * 10 + (duration_ref_u128) (s[nw] - '0');
                        if (whole > DURATION_REF_CAP)
                                whole = DURATION_REF_CAP;
                }
                s += nw;
                if (*s == '.') {
                        frac = ++s;
                        while (s[nf] >= '0' && s[nf] <= '9')
                                nf++;
                        s += nf;
                }
                for (j = 0; j < nu; j++)
                        if (strncmp(s, duration_ref_units[j].suffix, strlen(duration_ref_units[j].suffix)) == 0)
                                break;
                if (nw + nf == 0 || j == nu)
                        return -EINVAL;
                s += strlen(duration_ref_units[j].suffix);
                total += whole * duration_ref_units[j].usec + duration_ref_fraction(duration_ref_units[j].usec, frac, nf);
                if (total > DURATION_REF_CAP)
                        total = DURATION_REF_CAP;
        }
        if (total > UINT64_MAX)
                return -ERANGE;
        *ret = (uint64_t) total;
        return 0;
}
