/* Leader election on the fenced lock "leader" (lock.h), driven from the
 * sd-event loop with the lock's Lua scripts over the async Redis client.
 *
 * Every coordinatord serves the API; only the leader runs background work.
 * A standby tries to take the lock every tick and at once when the holder
 * publishes its release.  The leader renews every lease/3 and steps down by
 * itself when no renewal succeeded for lease - lease/4 (measured from when the
 * last good renewal was sent), so it stops leading before the lease can
 * expire on the server and a standby take over.  The term is the lock's
 * fencing token.  The current leader's id is kept in the lock's holder key. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct server;
struct leader;

struct leader_view {
        bool is_leader;
        bool known;      /* leader and term were read from Redis */
        uint64_t term;   /* fencing token of the current term; 0 when none */
        char *leader;    /* id of the current leader, or NULL when nobody leads */
};

/* Borrows s (the server outlives its leader); *ret written only on success. */
int leader_new(struct server *s, struct leader **ret);
struct leader *leader_free(struct leader *l);
/* Loop thread: Redis came up or went down (down: stop leading at once). */
void leader_on_redis(struct leader *l, bool connected);
/* Any thread. */
bool leader_is_leader(struct leader *l);
void leader_get_view(struct leader *l, struct leader_view *ret);
void leader_view_done(struct leader_view *v);
/* Loop thread: while leading, what a fenced write checks: the leader lock's
 * key and owner token, the fence counter's key and the term (borrowed, valid
 * until the next call into the leader).  false when not leading. */
struct leader_fence {
        const char *lock_key, *token, *fence_key;
        uint64_t term;
};
bool leader_get_fence(struct leader *l, struct leader_fence *ret);
/* Loop thread, at shutdown: stop leading and release the lock so a standby
 * takes over at once; done(userdata) runs when the release was answered (or
 * could not be sent).  Returns 1 when a release is in flight, 0 when there was
 * nothing to release (done not called). */
int leader_shutdown(struct leader *l, void (*done)(void *userdata), void *userdata);
