/* Durations: strings with a unit ("250ms", "30s", "5m", "1h", "1h30m", "1.5s"),
 * held as microseconds.  A bare number without a unit is rejected.
 *
 * A duration is one or more components <digits>[.<digits>]<unit>, unit one of
 * us, ms, s, m, h, d.  A fraction is exact whatever its number of digits: each
 * component is the exact product rounded down (truncated) to whole microseconds
 * ("1.9999us" is 1us, "0.5000000001d" is 12h and 8us, "1.999999999d" is
 * 47h59m59s999ms913us). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define USEC_PER_MSEC UINT64_C(1000)
#define USEC_PER_SEC UINT64_C(1000000)

/* Parse s into *ret_usec.  0 on success; -EINVAL (no unit, unknown unit,
 * garbage, empty: checked first, over the whole string) or -ERANGE (well-formed
 * but more than UINT64_MAX microseconds, about 584542 years, in a component or
 * in the sum).  *ret_usec untouched on failure. */
int duration_parse(const char *s, uint64_t *ret_usec);
/* Render usec compactly ("1h30m", "250ms", "0s") into buf; returns buf. */
char *duration_format(uint64_t usec, char *buf, size_t size);
#define DURATION_MAX 32

/* Monotonic and wall clocks in microseconds / milliseconds. */
uint64_t now_usec(void);
uint64_t now_realtime_usec(void);
uint64_t now_realtime_msec(void);
/* RFC 3339 UTC with milliseconds ("2026-11-23T04:00:00.123Z") into buf (>= 32). */
char *format_rfc3339(uint64_t realtime_usec, char *buf, size_t size);
