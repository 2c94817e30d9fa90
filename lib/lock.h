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
 * owner token).  Waiters queue in "coord:{NS:lock:NAME}:waiters" and listen on
 * their own channel; release hands the lock straight to the longest-idle live
 * waiter (one notice, no thundering herd, no extra round trip), or PUBLISHes
 * on "coord:{NS:lock:NAME}:released" when none can be told.  Waiters also
 * re-check every recheck interval (pub/sub is at-most-once) and when the
 * current lease would expire.  A waiter that gets a hand-off maps the server's
 * hand-off time onto its own clock (from a TIME sample taken with its last
 * attempt) and refuses a hand-off that arrives too late to be safe (it was
 * stopped), passing it on.  See docs/lock.md. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "macro.h"
#include "redis_url.h"

struct lock;

/* hiredis writes with write(): programs using locks should ignore SIGPIPE (the
 * keeper thread blocks it, so its writes to a dead connection just fail). */

struct lock_options {
        const char *ns;             /* namespace; NULL means $COORD_NAMESPACE or "default" */
        uint64_t lease_usec;        /* default 15s */
        uint64_t wait_timeout_usec; /* 0: try once; UINT64_MAX: forever */
        uint64_t recheck_usec;      /* bounded re-check while waiting; default 1s */
};

/* Connect (own connections, from a private copy of u) and take the lock NAME,
 * waiting up to wait_timeout.  opts NULL means all defaults (try once).
 * 0 on success; -ETIMEDOUT when the wait expired (errbuf then says who holds
 * it); -EINVAL for a bad name, namespace or lease; connection errors as
 * redis_connect() when Redis cannot be reached at the start (while waiting,
 * outages are retried with backoff until the deadline), except that a
 * connection timeout is returned as -ENOTCONN: -ETIMEDOUT always means the
 * wait expired.  A waiter that saw the
 * lock held and then finds the fence counter gone after a reconnect (Redis
 * restarted without its data) waits one lease before trying, so a holder that
 * has not yet noticed is not overlapped.  On success *ret is held with
 * lock_fence() set (untouched on failure).  u, name and ret must not be NULL. */
int lock_acquire(const struct redis_url *u, const char *name, const struct lock_options *opts, struct lock **ret,
                 char *errbuf, size_t errlen);
/* The fencing token of this acquisition (> 0). */
uint64_t lock_fence(const struct lock *l);
const char *lock_name(const struct lock *l);
/* Extend the lease by lease_usec.  0 renewed; -ENOLCK the lock is no longer ours;
 * other -errno: Redis unreachable (reconnect attempted once).  Thread-safe
 * against the keeper. */
int lock_renew(struct lock *l);
/* Stop the keeper, then release if still ours (compare-and-set on the token,
 * and publish the wake-up); 0 or -ENOLCK or -errno.  Afterwards the lock
 * counts as lost. */
int lock_release(struct lock *l);
/* Release nothing; close connections, stop the keeper, free.  Accepts NULL. */
struct lock *lock_free(struct lock *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct lock *, lock_free)

/* Renew every lease/3 from a background thread.  When a renewal says the lock
 * is gone, or no renewal succeeded within lease - lease/4 of the last good one
 * (so the holder learns before the lease expires on the server), marks the lock
 * lost and calls on_lost once from that thread.  All keeper I/O (reconnects
 * included) is bounded by that deadline.  on_lost must not stop, release or
 * free the lock: wake your own loop instead.  The keeper blocks all signals.
 * userdata is borrowed: it must outlive the keeper (lock_keeper_stop()). */
int lock_keeper_start(struct lock *l, void (*on_lost)(struct lock *l, void *userdata), void *userdata);
void lock_keeper_stop(struct lock *l);
/* True once lost, released, or when lease - lease/4 has passed since the last
 * good renewal (the keeper may not have run yet, e.g. after SIGSTOP). */
bool lock_is_lost(const struct lock *l);

/* Describe the current holder of NAME ("host pid N, fence F, expires in Xms"),
 * or NULL if free; caller frees.  For "who holds it" messages. */
int lock_describe_holder(const struct redis_url *u, const char *ns, const char *name, char **ret);

/* The scripts, for asynchronous callers (coordinatord's leader election).
 * Call them with EVAL (or EVALSHA after SCRIPT LOAD); replies are integers.
 * The bracketed keys and arguments are optional: the plain forms are all a
 * caller that does not queue needs.
 * acquire: KEYS lock fence holder [waiters]
 *          ARGV token lease_ms holder_desc ("host pid N") [waiter_ttl_ms [waiter_entry]]
 *          -> the fence (> 0) when taken, with the holder key set to
 *             "<holder_desc>, fence F"; when held by another: -PTTL (the holder's
 *             remaining lease in ms, negated) or 0 when it has no expiry.
 *             With waiters, a failed attempt queues waiter_entry (default the
 *             token; "TOKEN LEASE_MS DESC" lets release hand the lock over).
 *             If the lock already carries the token (handed over, notice lost)
 *             the lease is renewed and the fence returned.
 *             The fence counter never expires; when missing (first use, or Redis
 *             lost its data) it is seeded with the server clock in microseconds,
 *             so fences keep increasing across a restart without persistence
 *             (they are large numbers, about 1.8e15: store them as 64-bit).
 * renew:   KEYS lock holder; ARGV token lease_ms -> 1 renewed, 0 not ours
 * release: KEYS lock holder [waiters [fence]]; ARGV token channel [own_waiter_entry]
 *          -> 1 released, 0 not ours.  Without waiters, "released" is published
 *          on channel.  With waiters, only the longest-idle queued waiter that
 *          still listens on "<channel>:<TOKEN>" is told: with fence too and a
 *          "TOKEN LEASE_MS DESC" entry the lock is handed to it directly and
 *          "handoff FENCE SERVER_TIME_US" published; otherwise "released".
 *          When no queued waiter can be told, "released" goes to channel. */
extern const char lock_script_acquire[];
extern const char lock_script_renew[];
extern const char lock_script_release[];
