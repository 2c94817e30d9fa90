/* The leader's rollout reconciler: the Redis I/O around the pure state
 * machine (rollout.h), on the sd-event loop.
 *
 * Every pass (every RECONCILER_TICK, and at once when a command result, a
 * new deployment or a control request is announced) it reads Redis' clock,
 * the set of active deployments, each one's pending control request and the
 * results of the commands each awaits; then steps each deployment with the
 * fleet snapshot and commits what changed with one Lua script that checks
 * the leader lock's owner token and term, and the record's revision, and
 * only then writes the record, appends the events, queues the commands on
 * the agents' lists and wakes them: persisting a step and acting on it are
 * one atomic write, so a leader killed at any instant leaves either nothing
 * or both, and a deposed leader can write nothing at all.
 *
 * Records are cached between passes; the cache is dropped when leadership
 * (term) changes, and one entry is dropped (reloaded on the next pass)
 * whenever a commit was not acknowledged. */
#pragma once

#include <stdint.h>
#include <stdio.h>

struct server;
struct reconciler;

#define RECONCILER_TICK_USEC (100 * 1000)

/* Borrows s (the server outlives its reconciler); *ret written only on success,
 * 0 or -errno. */
int reconciler_new(struct server *s, struct reconciler **ret);
struct reconciler *reconciler_free(struct reconciler *r);
/* Loop thread: Redis came up or went down. */
void reconciler_on_redis(struct reconciler *r, bool connected);
/* coordinatord_deployments{state} for the deployments this leader drives,
 * and the reconciler's gauges.  Any thread. */
void reconciler_write_metrics(struct reconciler *r, FILE *out);
