/* Capped exponential backoff with full jitter (AWS "full jitter"). */
#pragma once

#include <stdint.h>

struct backoff {
        uint64_t base_usec;  /* first delay ceiling, e.g. 100ms */
        uint64_t cap_usec;   /* ceiling never exceeded, e.g. 5s */
        unsigned attempt;
};

void backoff_init(struct backoff *b, uint64_t base_usec, uint64_t cap_usec);
/* Next delay: uniform in [ceil/2, ceil] where ceil = min(cap, base * 2^attempt). */
uint64_t backoff_next(struct backoff *b);
void backoff_reset(struct backoff *b);
