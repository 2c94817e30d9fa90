/* See health.h. */
#include <errno.h>
#include <string.h>

#include "health.h"
#include "macro.h"

void health_init(struct health *h, unsigned rise, unsigned fall, uint64_t grace_usec, uint64_t now_usec) {
        *h = (struct health) {
                .rise = rise ? rise : 1,
                .fall = fall ? fall : 1,
                .grace_usec = grace_usec,
        };
        health_restart(h, now_usec);
}

void health_restart(struct health *h, uint64_t now_usec) {
        h->state = HEALTH_STARTING;
        h->started_usec = now_usec;
        h->successes = h->failures = 0;
}

bool health_in_grace(const struct health *h, uint64_t now_usec) {
        return h->state == HEALTH_STARTING && now_usec - h->started_usec < h->grace_usec;
}

bool health_observe(struct health *h, bool ok, uint64_t now_usec) {
        enum health_state old = h->state;

        if (ok) {
                h->failures = 0;
                if (h->successes < h->rise)
                        h->successes++;
                if (h->state != HEALTH_HEALTHY && h->successes >= h->rise)
                        h->state = HEALTH_HEALTHY;
        } else {
                h->successes = 0;
                if (health_in_grace(h, now_usec))
                        h->failures = 0;
                else if (h->failures < h->fall)
                        h->failures++;
                if (h->state != HEALTH_UNHEALTHY && h->failures >= h->fall)
                        h->state = HEALTH_UNHEALTHY;
        }
        return h->state != old;
}

static const char *const health_state_table[_HEALTH_STATE_MAX] = {
        [HEALTH_STARTING] = "starting",
        [HEALTH_HEALTHY] = "healthy",
        [HEALTH_UNHEALTHY] = "unhealthy",
};
DEFINE_STRING_TABLE_LOOKUP(health_state, enum health_state, _HEALTH_STATE_MAX)

static const char *const instance_state_table[_INSTANCE_STATE_MAX] = {
        [INSTANCE_STARTING] = "starting",
        [INSTANCE_HEALTHY] = "healthy",
        [INSTANCE_UNHEALTHY] = "unhealthy",
        [INSTANCE_DRAINING] = "draining",
        [INSTANCE_STOPPED] = "stopped",
};
DEFINE_STRING_TABLE_LOOKUP(instance_state, enum instance_state, _INSTANCE_STATE_MAX)

enum instance_state instance_state_of(enum health_state s, bool draining, bool stopped) {
        if (stopped)
                return INSTANCE_STOPPED;
        if (draining)
                return INSTANCE_DRAINING;
        return (enum instance_state) s;
}

const char *instance_state_name(enum health_state s, bool draining, bool stopped) {
        return instance_state_to_string(instance_state_of(s, draining, stopped));
}
