/* The fleet view: instances as the agents write them to Redis (keys.h), plus
 * "lost" for those whose alive key expired.
 *
 * The loop thread owns the live table.  Every tick (250 ms) it reads the
 * instances ZSET (member = id, score = last_seen) and notes, on its own
 * monotonic clock, when each score last moved; an instance whose score has
 * not moved for its ttl is checked with EXISTS on its alive key, and marked
 * lost when that is gone, so detection lands within one tick of the alive
 * key's expiry, whatever the agents' clocks say.  State changes arrive on the
 * events channel (HGETALL of that instance); everything is re-read every 10 s
 * and after each reconnect because pub/sub is at-most-once.  The leader also
 * reaps instances lost for longer than deregister_after.
 *
 * Readers on other threads get immutable, refcounted snapshots sorted by id. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

struct server;
struct fleet;

struct instance_info {
        int ref;
        char *id, *service, *host, *address, *version, *state;
        char *health;    /* the probe's view (starting|healthy|unhealthy), also while draining; may be NULL */
        int64_t config_version;
        int64_t ttl_ms;
};

struct fleet_entry {
        struct instance_info *info;
        int64_t last_seen_ms;
        bool lost;
};

struct fleet_snapshot {
        int ref;
        struct fleet_entry *entries; /* sorted by id */
        size_t n;
        pthread_mutex_t render_lock;
        char *json_all;              /* {"instances":[...]}\n, rendered on first use */
        size_t json_all_len;
};

#define FLEET_TICK_USEC (250 * 1000)

/* Borrows s (the server outlives its fleet); *ret written only on success, 0 or -errno. */
int fleet_new(struct server *s, struct fleet **ret);
struct fleet *fleet_free(struct fleet *f);
/* Loop thread: the Redis connection came up (full resync) or went down. */
void fleet_on_redis(struct fleet *f, bool connected);

/* Loop thread: call cb(userdata) on the loop after each new snapshot.  userdata is
 * borrowed: it must outlive the fleet or be replaced first. */
void fleet_set_on_change(struct fleet *f, void (*cb)(void *userdata), void *userdata);

/* Any thread: the current snapshot (a reference; never NULL after fleet_new). */
struct fleet_snapshot *fleet_snapshot_get(struct fleet *f);
void fleet_snapshot_unref(struct fleet_snapshot *s);
const struct fleet_entry *fleet_snapshot_find(const struct fleet_snapshot *s, const char *id);
const char *fleet_entry_state(const struct fleet_entry *e);
/* The probe's view: "healthy", "unhealthy" or "starting" (from the state when the
 * agent did not write one); "lost" for a lost instance. */
const char *fleet_entry_health(const struct fleet_entry *e);
json_t *fleet_entry_to_json(const struct fleet_entry *e);
/* The unfiltered list, rendered once per snapshot; valid while the reference is held. */
int fleet_snapshot_json_all(struct fleet_snapshot *s, const char **ret, size_t *ret_len);
/* True after the first complete read since the last (re)connect. */
bool fleet_is_synced(struct fleet *f);

/* coordinatord_instances{service,state} lines. */
void fleet_write_metrics(struct fleet *f, FILE *out);

/* Valid instance states (the agent's, plus "lost"). */
bool fleet_state_is_valid(const char *s);
