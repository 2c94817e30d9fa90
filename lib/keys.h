/* The Redis layout, in one place.  Every module builds keys only through these
 * functions; names must pass name_is_valid() first (callers check), so raw
 * input never shapes a key.  All return malloc'd strings (NULL on OOM).
 *
 * NS is the namespace ("prod"); "{...}" is the Redis Cluster hash tag.
 *
 * Locks (lock.h):
 *   coord:{NS:lock:NAME}                 STRING owner token, PX lease
 *   coord:{NS:lock:NAME}:fence           STRING counter (INCR), never expires
 *   coord:{NS:lock:NAME}:holder          STRING "host pid N, fence F", PX lease
 *   coord:{NS:lock:NAME}:released        channel, published on release when no queued
 *                                        waiter could be woken
 *   coord:{NS:lock:NAME}:waiters         ZSET member "TOKEN LEASE_MS host pid N" (or a
 *                                        bare token), score = expiry (ms epoch, refreshed
 *                                        at every failed attempt); PX
 *   coord:{NS:lock:NAME}:released:TOKEN  channel of one waiter: release hands the lock
 *                                        to the longest-idle live waiter ("handoff F T")
 *
 * Fleet (agent writes, coordinatord reads):
 *   coord:{NS}:instance:ID               HASH id service host address version state
 *                                        config_version last_seen(ms epoch) ttl_ms
 *                                        registered_at(ms) detail
 *                                        health(starting|healthy|unhealthy: the probe
 *                                        state, also while state is draining; agent)
 *                                        probe(http|tcp|exec|none: the configured health check; agent)
 *   coord:{NS}:alive:ID                  STRING "1", PX ttl_ms (about 3 heartbeats):
 *                                        gone => the instance is "lost" (unless its state
 *                                        is "stopped": a graceful agent stop writes
 *                                        state=stopped and deletes the alive key)
 *   coord:{NS}:instances                 ZSET member ID, score last_seen ms
 *   coord:{NS}:events                    channel: JSON {"type":"instance","id",..,"state"}
 *                                        on every state change, published immediately
 *                                        (agent adds service host version health previous
 *                                        config_version ts; also sent when only health
 *                                        changes under draining, and when a new advertised
 *                                        config version was applied: previous == state)
 *
 * Agent commands (coordinatord enqueues, agent executes, result written once).
 * Everything an agent writes about a command lives under its own host, so an
 * ACL user per host can be confined to it (docs/security.md, "ACL users"):
 *   coord:{NS}:agent:HOST:commands       LIST of command JSON (LPUSH by sender,
 *                                        agent moves it with LMOVE to :inflight)
 *   coord:{NS}:agent:HOST:inflight       LIST of commands taken but not finished
 *   coord:{NS}:agent:HOST:wake           channel: anything => check the queue
 *   coord:{NS}:agent:HOST:result:CMDID   HASH state(running|done|failed) exit_code
 *                                        duration_ms output error started_at finished_at;
 *                                        written with a "finished_at" guard so a
 *                                        result is written exactly once; HOST is the
 *                                        host whose queue the command was sent to
 *   coord:{NS}:command:CMDID             the same HASH as written by coord 0.1 agents:
 *                                        written by nothing any more; coordinatord
 *                                        reads it only where the host's result hash
 *                                        does not exist (an upgrade mixing versions)
 *   coord:{NS}:command-results           channel: CMDID when a result is written
 *                                        (agent: the result hash also holds type, instance;
 *                                        it is written, published and LREM'd from :inflight
 *                                        by one Lua script, and expires after 7 days;
 *                                        JSON and fields: command.h)
 *   Command JSON: {"id","type":"drain|undrain|deploy|migrate|restart|apply-config",
 *                  "instance","version","deployment","created_at"}
 *
 * Advertised config (coordinatord writes, agents follow):
 *   coord:{NS}:config:SERVICE            HASH version(N) config(JSON) updated_at(ms)
 *   coord:{NS}:config-changed            channel: SERVICE when a new version is stored
 *
 * Leadership: the lock named "leader" (LOCK_NAME_LEADER: coord:{NS:lock:leader}).
 * Migrations (coordctl migrate): the lock named "migrate-<24 hex of SHA-256 of
 *   system_identifier/database/schema/coord_schema_history>", one per schema;
 *   its fencing token is also written to PostgreSQL (docs/migrations.md).
 *
 * Probes (coordctl doctor, NS "doctor"):
 *   coord:{NS}:lmove-probe               never written: an LMOVE of it onto itself tells
 *                                        whether Redis knows LMOVE (6.2 or newer)
 *
 * Connection liveness (redis_client.c, no namespace: one per client):
 *   coord:keepalive:RANDOM               channel: the client's own probe, published on
 *                                        its command connection, received on its
 *                                        pub/sub connection (an ACL user of a daemon
 *                                        needs &coord:keepalive:*)
 * Deployments (coordinatord: the API creates, the leader's reconciler writes the
 * rest with fenced Lua scripts; docs/deployments.md):
 *   coord:{NS}:deployment:ID             HASH doc(JSON: the record, internal fields under "_")
 *                                        service state rev(N, +1 per write) seq(last event)
 *                                        requested(pause|resume|cancel|revert, set by the
 *                                        API, cleared by the leader when carried out)
 *   coord:{NS}:deployment:ID:instances   HASH instance id -> that instance's JSON (same "_"
 *                                        convention); a step rewrites only what it changed
 *   coord:{NS}:deployment:ID:events      STREAM, entry ids 0-SEQ (SEQ = 1, 2, ...), field
 *                                        "data" = the event JSON
 *   coord:{NS}:deployments               ZSET member ID, score created_at ms (all services)
 *   coord:{NS}:deployments:SERVICE       ZSET the same per service (history_limit kept)
 *   coord:{NS}:deployments-active        SET of IDs the leader drives
 *   coord:{NS}:active:SERVICE            STRING the service's active deployment ID
 *   coord:{NS}:idempotency:SHA256        STRING "ID SERVICE VERSION", EX 24 h
 *   coord:{NS}:deployment-events         channel: "ID SEQ" after an event is appended
 *   coord:{NS}:deployment-wake           channel: ID when created or a request is stored
 *   coord:{NS}:migration:SERVICE         HASH the last migrate command sent for the
 *                                        service: command service version phase instance
 *                                        host(its result's HOST; absent when written by
 *                                        coord 0.1) deployment requested_at(ms)
 *
 * ACL patterns (coordctl acl, docs/security.md): every name above passes
 * name_is_valid(), so no key holds a Redis glob character (* ? [ ] and backslash; { and }
 * are plain characters to Redis' glob), and a key function called with "*"
 * for a name gives the pattern of all such keys. */
#pragma once

#include <stdbool.h>

char *key_lock(const char *ns, const char *name);
char *key_lock_fence(const char *ns, const char *name);
char *key_lock_holder(const char *ns, const char *name);
char *key_lock_channel(const char *ns, const char *name);
char *key_lock_waiters(const char *ns, const char *name);
char *key_lock_wake(const char *ns, const char *name, const char *token);

char *key_instance(const char *ns, const char *id);
char *key_alive(const char *ns, const char *id);
char *key_instances(const char *ns);
char *key_events(const char *ns);

char *key_agent_commands(const char *ns, const char *host);
char *key_agent_inflight(const char *ns, const char *host);
char *key_agent_wake(const char *ns, const char *host);
char *key_agent_result(const char *ns, const char *host, const char *cmd_id);
/* coord 0.1's result hash coord:{NS}:command:CMDID: read-only fallback. */
char *key_command_legacy(const char *ns, const char *cmd_id);
char *key_command_results(const char *ns);

char *key_config(const char *ns, const char *service);
char *key_config_changed(const char *ns);

char *key_deployment(const char *ns, const char *id);
char *key_deployment_events(const char *ns, const char *id);
char *key_deployment_instances(const char *ns, const char *id);
char *key_deployments(const char *ns);
char *key_deployments_service(const char *ns, const char *service);
char *key_deployments_active(const char *ns);
char *key_active(const char *ns, const char *service);
char *key_idempotency(const char *ns, const char *sha256_hex);
char *key_deployment_events_channel(const char *ns);
char *key_deployment_wake(const char *ns);
char *key_migration(const char *ns, const char *service);
char *key_lmove_probe(const char *ns);

#define LOCK_NAME_LEADER "leader"
/* The ACL pattern of every key and channel of namespace ns but its locks: "coord:{NS}:*". */
char *key_namespace_pattern(const char *ns);
/* A client's liveness probe channel "coord:keepalive:RANDOM" (redis_client.c). */
char *key_keepalive(const char *random);
/* Whether channel is one of those (no client may subscribe to another's probes). */
bool key_is_keepalive(const char *channel);

/* The namespace from $COORD_NAMESPACE, else "default". */
const char *namespace_default(void);
