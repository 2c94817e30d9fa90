/* Fenced distributed lock on Redis.
 *
 * Keys (see keys.h): the lock "coord:{NS:lock:NAME}" holds "<owner-token>" with a
 * lease (PX); "coord:{NS:lock:NAME}:fence" is a counter INCRed by every
 * successful acquisition, so fencing tokens strictly increase across all
 * holders ever; "coord:{NS:lock:NAME}:holder" describes the holder ("host pid
 * N, fence F") for messages, with the same lease.  All keys of one lock share a
 * hash tag, so the scripts are valid on a clustered Redis.
 *
 * acquire, renew and release are single Lua scripts (compare-and-set on the
 * owner token).  release PUBLISHes on "coord:{NS:lock:NAME}:released" so
 * waiters retry at once; waiters also re-check every recheck interval (pub/sub
 * is at-most-once) and when the current lease would expire. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "redis_url.h"

typedef struct lock lock;

struct lock_options {
        const char *ns;             /* namespace; NULL means "default" */
        uint64_t lease_usec;        /* default 15s */
        uint64_t wait_timeout_usec; /* 0: try once; UINT64_MAX: forever */
        uint64_t recheck_usec;      /* bounded re-check while waiting; default 1s */
};

/* Connect (own connections, from u) and take the lock NAME, waiting up to
 * wait_timeout.  0 on success; -ETIMEDOUT when the wait expired (errbuf then
 * says who holds it); -EINVAL for a bad name; connection errors as
 * redis_connect().  On success *ret is held with lock_fence() set. */
int lock_acquire(const struct redis_url *u, const char *name, const struct lock_options *opts, lock **ret,
                 char *errbuf, size_t errlen);
/* The fencing token of this acquisition (> 0). */
uint64_t lock_fence(const lock *l);
const char *lock_name(const lock *l);
/* Extend the lease by lease_usec.  0 renewed; -ENOLCK the lock is no longer ours;
 * other -errno: Redis unreachable (reconnect attempted once). */
int lock_renew(lock *l);
/* Release if still ours (and publish the wake-up); 0 or -ENOLCK or -errno. */
int lock_release(lock *l);
/* Release nothing; close connections, stop the keeper, free.  Accepts NULL. */
lock *lock_free(lock *l);

/* Renew every lease/3 from a background thread.  When a renewal says the lock
 * is gone, or no renewal succeeded within lease - lease/4 of the last good one
 * (so the holder learns before the lease expires on the server), marks the lock
 * lost and calls on_lost once from that thread. */
int lock_keeper_start(lock *l, void (*on_lost)(lock *l, void *userdata), void *userdata);
void lock_keeper_stop(lock *l);
bool lock_is_lost(const lock *l);

/* Describe the current holder of NAME ("host pid N, fence F, expires in Xms"),
 * or NULL if free; caller frees.  For "who holds it" messages. */
int lock_describe_holder(const struct redis_url *u, const char *ns, const char *name, char **ret);

/* The scripts, for asynchronous callers (coordinatord's leader election).
 * acquire: KEYS lock fence holder; ARGV token lease_ms holder_desc
 *          -> fence (integer > 0) when taken, 0 when held by another (or the pttl as negative?)
 *          see lock.c for the exact reply.
 * renew:   KEYS lock holder; ARGV token lease_ms -> 1 renewed, 0 not ours
 * release: KEYS lock holder; ARGV token channel -> 1 released, 0 not ours */
extern const char lock_script_acquire[];
extern const char lock_script_renew[];
extern const char lock_script_release[];
