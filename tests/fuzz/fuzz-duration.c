/* duration_parse() against the exact 128-bit reference (tests/duration-ref.h),
 * and duration_format() read back by duration_parse(). */
#include <errno.h>

#include "duration.h"
#include "tests/duration-ref.h"
#include "tests/fuzz/fuzz.h"

/* The reference costs a binary search per component: keep inputs short. */
#define INPUT_MAX 512

static void check_format(uint64_t v) {
        char buf[DURATION_MAX];
        uint64_t back = 0;
        int r;

        duration_format(v, buf, sizeof buf);
        r = duration_parse(buf, &back);
        FUZZ_CHECK(r == 0 && back == v, "%llu formats as '%s', which parses as %d %llu", (unsigned long long) v, buf,
                   r, (unsigned long long) back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        uint64_t v = 1, ref = 1, raw;
        char *s;
        int r, rr;

        if (size > INPUT_MAX)
                return 0;
        s = fuzz_string(data, size);
        r = duration_parse(s, &v);
        rr = duration_ref_parse(s, &ref);
        FUZZ_CHECK(r == rr && v == ref, "'%s': %d %llu, the reference says %d %llu", s, r, (unsigned long long) v,
                   rr, (unsigned long long) ref);
        if (r == 0)
                check_format(v);
        if (size >= sizeof raw) {
                memcpy(&raw, data, sizeof raw);
                check_format(raw);
        }
        free(s);
        return 0;
}
