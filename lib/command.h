/* Agent commands: the JSON coordinatord enqueues and coord-agent executes
 * (Redis layout in keys.h: coord:{NS}:agent:HOST:commands, :inflight, :wake,
 * :result:CMDID, coord:{NS}:command-results).
 *
 * Command JSON (one list element):
 *   {"id":"<hex or name>","type":"drain|undrain|deploy|migrate|restart|apply-config",
 *    "instance":"web-1","version":"2.0","deployment":"<id>","phase":"pre|post|all",
 *    "created_at":<ms epoch or RFC 3339>}
 * id, type required; version required for deploy, migrate and apply-config;
 * phase only with migrate (absent: "all");
 * instance may be omitted when the agent manages one instance only; null
 * counts as absent; unknown fields are rejected.
 *
 * Result hash coord:{NS}:agent:HOST:result:CMDID, written once by the agent of HOST:
 *   state       running | done | failed    ("running" set when execution starts)
 *   instance, type, started_at (ms), finished_at (ms: present => final, never rewritten)
 *   exit_code   hook exit code (-1: killed or timed out; 0 for a no-op)
 *   duration_ms, output (last lines, secrets masked), error (reason, "" on success)
 * then PUBLISH coord:{NS}:command-results CMDID. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "macro.h"

enum command_type {
        COMMAND_DRAIN,
        COMMAND_UNDRAIN,
        COMMAND_DEPLOY,
        COMMAND_MIGRATE,
        COMMAND_RESTART,
        COMMAND_APPLY_CONFIG,
        _COMMAND_TYPE_MAX,
};

struct command {
        char *id;
        enum command_type type;
        char *instance;   /* NULL when omitted */
        char *version;    /* NULL unless deploy / migrate / apply-config */
        char *deployment; /* NULL when omitted */
        char *phase;      /* migrate only: "pre", "post" or "all"; NULL when omitted */
        uint64_t created_at_ms;
};

#define COMMAND_JSON_MAX (16 * 1024)

/* NULL when out of range; -EINVAL when unknown. */
const char *command_type_to_string(enum command_type t);
int command_type_from_string(const char *s);
bool command_type_needs_version(enum command_type t);
/* Versions are checked with version_is_valid() (strutil.h). */

/* A new command with a random 32-hex-digit id and created_at = now.
 * instance, version, deployment may be NULL (copied). */
int command_new(enum command_type type, const char *instance, const char *version, const char *deployment,
                struct command **ret);
struct command *command_free(struct command *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct command *, command_free)
/* Replace the id or the phase (copied); -EINVAL for an invalid value (names:
 * name_is_valid(); phases: command_phase_is_valid()). */
int command_set_id(struct command *c, const char *id);
int command_set_phase(struct command *c, const char *phase);
bool command_phase_is_valid(const char *phase);

/* Compact JSON; caller frees.  NULL on OOM. */
char *command_encode(const struct command *c);
/* Parse and validate (ids and instances must pass name_is_valid()).  -EINVAL
 * with errbuf naming the field; *ret untouched on failure. */
int command_decode(const char *json, size_t len, struct command **ret, char *errbuf, size_t errlen);

/* The Lua script that writes a result exactly once: KEYS[1] the result hash,
 * KEYS[2] the host's :inflight list; ARGV[1] the raw command as queued, ARGV[2]
 * its id, ARGV[3] the command-results channel, ARGV[4] the hash's expiry (ms),
 * ARGV[5..] field/value pairs.  Sets the fields only when "finished_at" is
 * absent, publishes the id, and removes the command from :inflight; returns 1
 * when it wrote, 0 when a result was there already. */
extern const char command_result_script[];
#define COMMAND_RESULT_EXPIRE_MS "604800000"

/* The Lua script that reads a result: KEYS[1] the host's result hash
 * (key_agent_result()), KEYS[2] coord 0.1's (key_command_legacy()), read only
 * when KEYS[1] does not exist; ARGV the fields to HMGET, or none for HGETALL. */
extern const char command_result_read_script[];

/* Synchronous enqueue for tools and tests: LPUSH onto the host's queue, then
 * PUBLISH its wake channel.  0 or -errno with errbuf. */
int command_enqueue(redisContext *c, const char *ns, const char *host, const struct command *cmd, char *errbuf,
                    size_t errlen);
