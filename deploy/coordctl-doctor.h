/* coordctl doctor: the decisions, as pure functions over collected facts.
 *
 * deploy/coordctl-doctor.c gathers the facts (Redis, coordinatord's API, the
 * file system) and prints one line per check; everything here only decides.
 * Each doctor_check_*() returns a status and writes one line (what is wrong,
 * why it matters, the fix) into msg (always NUL-terminated, truncated to len).
 * No I/O, no clock: tests/unit/test-doctor.c covers them as tables. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "macro.h"

enum doctor_status {
        DOCTOR_OK,
        DOCTOR_SKIP, /* could not be checked; the message says why */
        DOCTOR_WARN,
        DOCTOR_FAIL,
        _DOCTOR_STATUS_MAX,
};
/* "ok", "skip", "warn", "fail" (JSON); text output shows FAIL in capitals. */
const char *doctor_status_to_string(enum doctor_status s);
int doctor_status_from_string(const char *s);

#define DOCTOR_MESSAGE_MAX 1024

/* Clock skew limits: warn above 500 ms, FAIL above a quarter of the default
 * 5 s leader lease (the margin a lease holder keeps before its lease could
 * expire on the server). */
#define DOCTOR_SKEW_WARN_MS 500
#define DOCTOR_SKEW_FAIL_MS 1250

/* ---- the report ---- */

struct doctor_check {
        char *name;
        enum doctor_status status;
        char *message;
};

struct doctor_report {
        struct doctor_check *checks;
        size_t n, cap;
};

/* Append a check (name and message copied); 0 or -ENOMEM. */
int doctor_report_add(struct doctor_report *r, const char *name, enum doctor_status status, const char *message);
int doctor_report_addf(struct doctor_report *r, const char *name, enum doctor_status status, const char *fmt, ...)
        _printf_(4, 5);
void doctor_report_done(struct doctor_report *r);
/* The worst status in the report (DOCTOR_OK when empty; SKIP counts as OK). */
enum doctor_status doctor_report_worst(const struct doctor_report *r);
/* 0 when no FAIL, 1 when any FAIL, 3 when nothing (neither Redis nor any
 * coordinatord) could be reached at all. */
int doctor_exit_code(const struct doctor_report *r, bool reached_anything);
/* One line per check: status (aligned, coloured when colour), name (aligned
 * to the longest), message with control characters replaced.  Caller frees;
 * NULL on ENOMEM. */
char *doctor_render_text(const struct doctor_report *r, bool colour);
/* {"checks":[{"name","status","message"}...]}; NULL on ENOMEM. */
json_t *doctor_render_json(const struct doctor_report *r);

/* ---- 1. Redis version ---- */

/* version: "redis_version" from INFO, or NULL when INFO was not permitted.
 * lmove: 1 when LMOVE worked, 0 when Redis did not know it, -1 not tried. */
enum doctor_status doctor_check_version(const char *version, int lmove, char *msg, size_t len);
/* Compare dotted versions numerically ("6.2.0" >= "6.2"); -EINVAL when
 * version does not start with a number. */
int doctor_version_at_least(const char *version, int major, int minor, bool *ret);

/* ---- 2. persistence ---- */

struct doctor_persistence {
        bool from_info;          /* facts from INFO persistence (CONFIG GET was refused) */
        const char *config_error; /* why CONFIG GET was not used, for the message; NULL */
        /* CONFIG GET appendonly / save (from_info false) */
        const char *appendonly;  /* "yes" or "no" */
        const char *save;        /* "" when RDB snapshots are off */
        /* INFO persistence and server (from_info true); -1 where unknown */
        int aof_enabled;
        int64_t rdb_changes_since_last_save;
        int64_t rdb_last_save_time; /* s since the epoch, Redis' clock */
        int64_t rdb_saves;          /* snapshots since start (Redis 7+) */
        int64_t uptime_s;
        int64_t now_s;              /* Redis TIME */
};
enum doctor_status doctor_check_persistence(const struct doctor_persistence *p, char *msg, size_t len);

/* ---- 3. eviction ---- */

/* policy: maxmemory-policy; maxmemory in bytes (-1 unknown); source names
 * where it came from ("CONFIG GET", "INFO memory"). */
enum doctor_status doctor_check_eviction(const char *policy, int64_t maxmemory, const char *source, char *msg,
                                         size_t len);

/* ---- 4. namespaces ---- */

struct doctor_ns {
        const char *name;
        size_t instances; /* members of coord:{NS}:instances examined */
        size_t alive;     /* of those, with their alive key present */
        bool leader;      /* coord:{NS:lock:leader} exists: a coordinatord leads there now */
        bool fence;       /* coord:{NS:lock:leader}:fence exists: one led there once */
};
/* focus: --namespace or NULL (all).  complete false: the key scan stopped
 * early or was not permitted, so the list may lack namespaces; note says how
 * (appended to the message) or is NULL. */
enum doctor_status doctor_check_namespaces(const struct doctor_ns *ns, size_t n, const char *focus, bool complete,
                                           const char *note, char *msg, size_t len);
/* Parse a key found by SCAN: "coord:{NS}:instances", "coord:{NS:lock:leader}"
 * or "coord:{NS:lock:leader}:fence".  Returns 1 (instances), 2 (leader lock),
 * 3 (fence) with the namespace copied into ns (NAME_MAX_LEN + 1 bytes), 0 for
 * any other key (including ones whose namespace is not a valid name). */
int doctor_classify_key(const char *key, char *ns, size_t nslen);

struct doctor_config_ns {
        const char *path;
        bool agent; /* agent.json; else coordinatord.json */
        const char *ns;
};
/* The namespaces of the --config files agree (SKIP when fewer than two). */
enum doctor_status doctor_check_config_namespaces(const struct doctor_config_ns *c, size_t n, char *msg, size_t len);

/* ---- 5. clock skew ---- */

/* The agent host's clock minus Redis' clock, in ms, as far as it can be
 * proven from one instance: last_seen (agent clock, ms) and the alive key are
 * written in one MULTI/EXEC with PX ttl_ms, so by Redis' clock that write
 * happened at redis_now - (ttl_ms - pttl_ms).  Without a usable PTTL
 * (pttl_ms < 0 or > ttl_ms) only "within the last ttl_ms" is known, and the
 * result is the distance of last_seen from that window (0 inside it). */
int64_t doctor_skew_ms(int64_t last_seen_ms, int64_t ttl_ms, int64_t pttl_ms, int64_t redis_now_ms);

struct doctor_skew {
        const char *host;
        int64_t skew_ms;
};
enum doctor_status doctor_check_skew(const struct doctor_skew *s, size_t n, char *msg, size_t len);
/* offset_usec: this machine's clock minus Redis TIME, taken at the midpoint
 * of a round trip of rtt_usec (so known to within rtt/2). */
enum doctor_status doctor_check_local_clock(int64_t offset_usec, uint64_t rtt_usec, char *msg, size_t len);

/* ---- 6. health checks ---- */

struct doctor_probe {
        const char *id, *host;
        const char *probe; /* the instance hash's "probe": http|tcp|exec|none; NULL when absent */
};
enum doctor_status doctor_check_probes(const struct doctor_probe *p, size_t n, char *msg, size_t len);

/* ---- 7. secret files and inline secrets ---- */

struct doctor_file {
        const char *path;
        const char *what;     /* "token_file in /etc/coord/coordinatord.json", "COORD_TOKEN_FILE" */
        mode_t mode;
        uid_t uid;
        const char *owner;    /* the owner's name, or NULL */
        bool owner_ok;        /* root, or the user expected to read it */
        bool group_expected;  /* group read is by design (the agent writes config_file 0640) */
};
enum doctor_status doctor_check_file(const struct doctor_file *f, char *msg, size_t len);

/* What one --config file says, from its JSON (not the daemons' loaders). */
struct doctor_config {
        bool agent;           /* has "services", or the file name says agent */
        char *ns;             /* "namespace", default "default" */
        char *redis;          /* inline "redis" (a secret: never print), or NULL */
        char *redis_file;     /* "redis_file", or NULL */
        char *listen;         /* "listen", or NULL */
        char **file_keys;     /* key paths of every *_file ("tokens[1].token_file") */
        char **file_paths;    /* the path each names */
        bool *file_group_ok;  /* group read by design (config_file) */
        size_t n_files;
        char **inline_secrets; /* descriptions ("redis password", "tokens[0].token"), never values */
        size_t n_inline;
};
/* Walk a parsed config (borrowed).  0, -EINVAL when not an object, -ENOMEM.
 * name_hint: the file name, to tell agent.json from coordinatord.json when
 * the content does not. */
int doctor_config_parse(json_t *root, const char *name_hint, struct doctor_config *ret);
void doctor_config_done(struct doctor_config *c);
/* True when a Redis connection string carries a password (either form). */
bool doctor_redis_has_password(const char *s);
/* http://HOST:PORT for coordinatord's "listen" (wildcards become loopback);
 * caller frees; NULL on ENOMEM or when listen has no port. */
char *doctor_listen_to_url(const char *listen);

/* ---- 8. coordinatord ---- */

struct doctor_leader {
        const char *url;
        long status;         /* of GET /v1/leader; 0 when not reached */
        const char *leader;  /* NULL: none */
        int64_t term;
        const char *ns;      /* the namespace whose leader lock names this leader and term, NULL unknown */
        size_t ns_alive;     /* live instances in ns */
        const char *agents_ns; /* another namespace with live instances, NULL none */
};
/* redis_checked: Redis facts were available to find each leader's namespace. */
enum doctor_status doctor_check_leader(const struct doctor_leader *v, size_t n, bool redis_checked, char *msg,
                                       size_t len);
/* Statuses of GET /v1/instances (read), POST /v1/deployments without a body
 * (deploy: 400 when allowed, 403 when not) and PUT /v1/config/NAME without a
 * body (admin: the same); 0 when not asked. */
enum doctor_status doctor_check_token(bool have_token, long read_status, long deploy_status, long admin_status,
                                      char *msg, size_t len);
