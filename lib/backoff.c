/* See backoff.h. */
#include "backoff.h"
#include "strutil.h"

void backoff_init(struct backoff *b, uint64_t base_usec, uint64_t cap_usec) {
        b->base_usec = base_usec ? base_usec : 1;
        b->cap_usec = cap_usec < b->base_usec ? b->base_usec : cap_usec;
        b->attempt = 0;
}

uint64_t backoff_next(struct backoff *b) {
        uint64_t ceil = b->base_usec, r = 0;

        for (unsigned i = 0; i < b->attempt && ceil < b->cap_usec; i++)
                ceil *= 2;
        if (ceil > b->cap_usec)
                ceil = b->cap_usec;
        if (b->attempt < 64)
                b->attempt++;
        (void) random_bytes(&r, sizeof r);
        /* Half fixed, half jitter: never hammer, never all wake together. */
        return ceil / 2 + (ceil - ceil / 2 > 0 ? r % (ceil - ceil / 2 + 1) : 0);
}

void backoff_reset(struct backoff *b) {
        b->attempt = 0;
}
