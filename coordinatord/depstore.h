/* Reading a deployment record back from Redis (keys.h, "Deployments"): the
 * header hash and the per-instance hash, in one atomic script, put together
 * as the stored JSON (rollout.h, the "_" form).  Shared by the API (which
 * shows it) and the reconciler (which drives it). */
#pragma once

#include <stdint.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

/* KEYS[1] the record hash, KEYS[2] its instances hash; returns
 * {doc, rev, requested, {instance field/value ...}}. */
extern const char depstore_read_script[];

/* Parse the script's reply into the record JSON with its "instances" array
 * (sorted by id), its revision and the pending request (NULL when none;
 * caller frees).  -ENOENT when there is no record, -EPROTO for a Redis error
 * reply, -EBADMSG for anything unreadable, -ENOMEM. */
int depstore_parse_read(const redisReply *reply, json_t **ret_doc, int64_t *ret_rev, char **ret_requested);
