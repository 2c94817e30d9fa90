/* The health state machine of one instance (pure: no I/O, time passed in).
 *
 *   starting --rise successes--> healthy --fall failures--> unhealthy
 *       \                          ^                           |
 *        \--fall failures after grace--> unhealthy --rise successes--/
 *
 * Failures during the start-up grace period (counted from health_init() or
 * health_restart()) are ignored; successes count at once.  draining and
 * stopped are administrative overlays on top (instance_state_name()). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

enum health_state {
        HEALTH_STARTING,
        HEALTH_HEALTHY,
        HEALTH_UNHEALTHY,
        _HEALTH_STATE_MAX,
};

/* The state shown to the fleet: the health state (same values) unless an
 * administrative overlay, draining or stopped, hides it. */
enum instance_state {
        INSTANCE_STARTING = HEALTH_STARTING,
        INSTANCE_HEALTHY = HEALTH_HEALTHY,
        INSTANCE_UNHEALTHY = HEALTH_UNHEALTHY,
        INSTANCE_DRAINING = _HEALTH_STATE_MAX,
        INSTANCE_STOPPED,
        _INSTANCE_STATE_MAX,
};

struct health {
        unsigned rise, fall;
        uint64_t grace_usec;
        uint64_t started_usec;
        enum health_state state;
        unsigned successes, failures; /* consecutive */
};

void health_init(struct health *h, unsigned rise, unsigned fall, uint64_t grace_usec, uint64_t now_usec);
/* Back to starting with a fresh grace period (after a deploy or restart). */
void health_restart(struct health *h, uint64_t now_usec);
/* Feed one probe result.  Returns true when h->state changed. */
bool health_observe(struct health *h, bool ok, uint64_t now_usec);
/* True while failures are still ignored. */
bool health_in_grace(const struct health *h, uint64_t now_usec);
/* "starting", "healthy", "unhealthy" (NULL when out of range); -EINVAL when unknown. */
const char *health_state_to_string(enum health_state s);
int health_state_from_string(const char *s);
/* The health states' names, "draining", "stopped"; as above. */
const char *instance_state_to_string(enum instance_state s);
int instance_state_from_string(const char *s);
/* Stopped, else draining, else the health state. */
enum instance_state instance_state_of(enum health_state s, bool draining, bool stopped);
/* instance_state_to_string(instance_state_of(...)). */
const char *instance_state_name(enum health_state s, bool draining, bool stopped);
