/* coordctl doctor: a one-screen check of what a new installation most often
 * gets wrong.  The first half of this file decides (pure functions over
 * collected facts, declared in coordctl-doctor.h and unit-tested); the second
 * half collects the facts from Redis (directly), from coordinatord (its API)
 * and from the file system, and prints one line per check. */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "coordctl-doctor.h"
#include "coordctl.h"
#include "deploy-view.h"
#include "duration.h"
#include "exitcode.h"
#include "fileio.h"
#include "jsonutil.h"
#include "keys.h"
#include "parse-util.h"
#include "redis.h"
#include "redis_url.h"
#include "secret.h"
#include "strutil.h"
#include "strv.h"
#include "tls.h"

/* ======================================================================
 * Decisions (pure)
 * ====================================================================== */

static const char *const doctor_status_table[_DOCTOR_STATUS_MAX] = {
        [DOCTOR_OK] = "ok",
        [DOCTOR_SKIP] = "skip",
        [DOCTOR_WARN] = "warn",
        [DOCTOR_FAIL] = "fail",
};
DEFINE_STRING_TABLE_LOOKUP(doctor_status, enum doctor_status, _DOCTOR_STATUS_MAX)

_printf_(3, 0) static void msg_vappend(char *msg, size_t len, const char *fmt, va_list ap) {
        size_t used;
        int k;

        if (len == 0)
                return;
        used = strnlen(msg, len - 1);
        msg[used] = '\0';
        k = vsnprintf(msg + used, len - used, fmt, ap);
        /* Truncated: say so rather than cut a word silently. */
        if (k >= 0 && (size_t) k >= len - used && len > 4)
                memcpy(msg + len - 4, "...", 4);
}

_printf_(3, 4) static void msg_append(char *msg, size_t len, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        msg_vappend(msg, len, fmt, ap);
        va_end(ap);
}

/* Reset msg to the formatted text and return st. */
_printf_(4, 5) static enum doctor_status say(enum doctor_status st, char *msg, size_t len, const char *fmt, ...) {
        va_list ap;

        if (len > 0)
                msg[0] = '\0';
        va_start(ap, fmt);
        msg_vappend(msg, len, fmt, ap);
        va_end(ap);
        return st;
}

/* A list of names for messages: "'a', 'b' and 'c'", at most NAMES_SHOWN, then "and N more". */
#define NAMES_SHOWN 4
struct names {
        const char *v[NAMES_SHOWN];
        size_t n;
};

static void names_add(struct names *l, const char *s) {
        if (l->n < NAMES_SHOWN)
                l->v[l->n] = s;
        l->n++;
}

static void names_append(char *msg, size_t len, const struct names *l) {
        size_t shown = MIN(l->n, (size_t) NAMES_SHOWN);

        for (size_t i = 0; i < shown; i++)
                msg_append(msg, len, "%s'%s'", i == 0 ? "" : i + 1 == shown && shown == l->n ? " and " : ", ",
                           l->v[i]);
        if (l->n > shown)
                msg_append(msg, len, " and %zu more", l->n - shown);
}

/* ---- report ---- */

int doctor_report_add(struct doctor_report *r, const char *name, enum doctor_status status, const char *message) {
        _cleanup_free_ char *n = strdup(name), *m = strdup(message ? message : "");

        if (!n || !m)
                return -ENOMEM;
        if (r->n == r->cap) {
                size_t cap = r->cap ? r->cap * 2 : 16;
                struct doctor_check *c = reallocarray(r->checks, cap, sizeof *c);
                if (!c)
                        return -ENOMEM;
                r->checks = c;
                r->cap = cap;
        }
        r->checks[r->n++] = (struct doctor_check) { .name = TAKE_PTR(n), .status = status, .message = TAKE_PTR(m) };
        return 0;
}

int doctor_report_addf(struct doctor_report *r, const char *name, enum doctor_status status, const char *fmt, ...) {
        char msg[DOCTOR_MESSAGE_MAX] = "";
        va_list ap;

        va_start(ap, fmt);
        msg_vappend(msg, sizeof msg, fmt, ap);
        va_end(ap);
        return doctor_report_add(r, name, status, msg);
}

void doctor_report_done(struct doctor_report *r) {
        for (size_t i = 0; i < r->n; i++) {
                free(r->checks[i].name);
                free(r->checks[i].message);
        }
        free(r->checks);
        *r = (struct doctor_report) {};
}

enum doctor_status doctor_report_worst(const struct doctor_report *r) {
        enum doctor_status w = DOCTOR_OK;

        for (size_t i = 0; i < r->n; i++)
                if (r->checks[i].status == DOCTOR_FAIL)
                        return DOCTOR_FAIL;
                else if (r->checks[i].status == DOCTOR_WARN)
                        w = DOCTOR_WARN;
        return w;
}

int doctor_exit_code(const struct doctor_report *r, bool reached_anything) {
        if (!reached_anything)
                return EXIT_UNAVAILABLE;
        return doctor_report_worst(r) == DOCTOR_FAIL ? EXIT_FAILED : EXIT_OK;
}

char *doctor_render_text(const struct doctor_report *r, bool colour) {
        static const char *const label[_DOCTOR_STATUS_MAX] = {
                [DOCTOR_OK] = "ok", [DOCTOR_SKIP] = "skip", [DOCTOR_WARN] = "warn", [DOCTOR_FAIL] = "FAIL",
        };
        static const char *const sgr[_DOCTOR_STATUS_MAX] = {
                [DOCTOR_OK] = "\033[32m", [DOCTOR_SKIP] = "\033[2m", [DOCTOR_WARN] = "\033[33m",
                [DOCTOR_FAIL] = "\033[1;31m",
        };
        char *text = NULL;
        size_t size = 0, width = 0;
        FILE *f = open_memstream(&text, &size);
        bool oom = false;

        if (!f)
                return NULL;
        for (size_t i = 0; i < r->n; i++)
                width = MAX(width, strlen(r->checks[i].name));
        for (size_t i = 0; i < r->n; i++) {
                const struct doctor_check *c = &r->checks[i];
                _cleanup_free_ char *m = deploy_clean_text(c->message);
                unsigned s = (unsigned) c->status < _DOCTOR_STATUS_MAX ? (unsigned) c->status : DOCTOR_FAIL;

                if (!m) {
                        oom = true;
                        break;
                }
                fprintf(f, "%s%-4s%s  %-*s  %s\n", colour ? sgr[s] : "", label[s], colour ? "\033[0m" : "",
                        (int) width, c->name, m);
        }
        if (fclose(f) != 0 || oom) {
                free(text);
                return NULL;
        }
        return text;
}

json_t *doctor_render_json(const struct doctor_report *r) {
        _cleanup_json_ json_t *arr = json_array();

        if (!arr)
                return NULL;
        for (size_t i = 0; i < r->n; i++) {
                const char *st = doctor_status_to_string(r->checks[i].status);
                json_t *o = json_pack("{s:s, s:s, s:s}", "name", r->checks[i].name, "status", st ? st : "fail",
                                      "message", r->checks[i].message);
                if (!o || json_array_append_new(arr, o) < 0)
                        return NULL;
        }
        return json_pack("{s:O}", "checks", arr);
}

/* ---- 1. version ---- */

static int parse_leading_uint(const char **p, int *ret) {
        long v = 0;

        if (**p < '0' || **p > '9')
                return -EINVAL;
        while (**p >= '0' && **p <= '9') {
                v = v * 10 + (**p - '0');
                if (v > 100000)
                        return -ERANGE;
                (*p)++;
        }
        *ret = (int) v;
        return 0;
}

int doctor_version_at_least(const char *version, int major, int minor, bool *ret) {
        const char *p = version;
        int ma, mi = 0;

        if (!p || parse_leading_uint(&p, &ma) < 0)
                return -EINVAL;
        if (*p == '.') {
                p++;
                if (parse_leading_uint(&p, &mi) < 0)
                        mi = 0;
        }
        *ret = ma > major || (ma == major && mi >= minor);
        return 0;
}

enum doctor_status doctor_check_version(const char *version, int lmove, char *msg, size_t len) {
        bool ok;

        if (version) {
                if (doctor_version_at_least(version, 6, 2, &ok) < 0)
                        return say(DOCTOR_WARN, msg, len,
                                   "Redis reports version '%.32s': cannot tell whether it is 6.2 or newer "
                                   "(needed for LMOVE and ACL channel rules)",
                                   version);
                if (ok)
                        return say(DOCTOR_OK, msg, len, "Redis %.32s (6.2 or newer: LMOVE and ACL channel rules)",
                                   version);
                return say(DOCTOR_FAIL, msg, len,
                           "Redis %.32s is older than 6.2: agents cannot take commands (LMOVE) and ACL channel "
                           "rules (&coord:*) do not exist; upgrade to Redis 6.2 or newer",
                           version);
        }
        if (lmove > 0)
                return say(DOCTOR_OK, msg, len,
                           "version not shown (INFO is not permitted), but LMOVE works: Redis 6.2 or newer");
        if (lmove == 0)
                return say(DOCTOR_FAIL, msg, len,
                           "Redis does not know LMOVE: it is older than 6.2 and agents cannot take commands; "
                           "upgrade to Redis 6.2 or newer");
        return say(DOCTOR_SKIP, msg, len, "INFO is not permitted and LMOVE could not be tried");
}

/* ---- 2. persistence ---- */

static bool save_is_on(const char *save) {
        for (const char *p = save ? save : ""; *p; p++)
                if (*p != ' ' && *p != '"' && *p != '\'')
                        return true;
        return false;
}

enum doctor_status doctor_check_persistence(const struct doctor_persistence *p, char *msg, size_t len) {
        if (!p->from_info) {
                bool aof = p->appendonly && strcasecmp(p->appendonly, "yes") == 0;
                bool rdb = save_is_on(p->save);

                if (aof)
                        return say(DOCTOR_OK, msg, len,
                                   "AOF on (appendonly yes%s, from CONFIG GET): locks, deployments and configs "
                                   "survive a Redis restart",
                                   rdb ? ", RDB snapshots too" : "");
                if (rdb)
                        return say(DOCTOR_WARN, msg, len,
                                   "RDB snapshots only (save '%.64s', appendonly no, from CONFIG GET): a Redis "
                                   "restart loses what was written since the last snapshot (deployment steps, "
                                   "queued agent commands, config versions); set `appendonly yes`",
                                   p->save);
                return say(DOCTOR_FAIL, msg, len,
                           "Redis has neither AOF nor RDB snapshots (appendonly no, save '', from CONFIG GET): a "
                           "Redis restart loses locks and deployments; set `appendonly yes`");
        }

        /* INFO persistence shows what happened, not what is configured: AOF is
         * visible; for RDB, a snapshot since the start proves snapshots run, and
         * an hour of changes without one (the loosest default rule, "save 3600
         * 1", would have fired) means they are off. */
        char src[192];
        snprintf(src, sizeof src, "from INFO persistence: CONFIG GET %.140s",
                 p->config_error ? p->config_error : "was refused");

        if (p->aof_enabled == 1)
                return say(DOCTOR_OK, msg, len,
                           "AOF on (aof_enabled:1, %s): locks, deployments and configs survive a Redis restart", src);
        if (p->aof_enabled < 0)
                return say(DOCTOR_SKIP, msg, len, "INFO persistence shows no aof_enabled (%s)", src);

        int64_t start = p->uptime_s >= 0 && p->now_s > 0 ? p->now_s - p->uptime_s : -1;
        bool snapshot_seen = p->rdb_saves > 0 ||
                             (start >= 0 && p->rdb_last_save_time > start + 2 && p->rdb_saves != 0);
        if (snapshot_seen) {
                int64_t ago = p->now_s > 0 && p->rdb_last_save_time > 0 ? p->now_s - p->rdb_last_save_time : -1;
                return say(DOCTOR_WARN, msg, len,
                           "RDB snapshots only (the last one %llds ago), AOF off (%s): a Redis restart loses what "
                           "was written since the last snapshot; set `appendonly yes`",
                           (long long) ago, src);
        }
        if (p->rdb_changes_since_last_save > 0 && p->uptime_s > 3600 + 60)
                return say(DOCTOR_FAIL, msg, len,
                           "Redis has neither AOF nor RDB snapshots (aof_enabled:0, no snapshot in %llds with %lld "
                           "changes, %s): a Redis restart loses locks and deployments; set `appendonly yes`",
                           (long long) p->uptime_s, (long long) p->rdb_changes_since_last_save, src);
        return say(DOCTOR_WARN, msg, len,
                   "AOF off (aof_enabled:0, %s); whether RDB snapshots are configured cannot be told yet (none "
                   "since the start); without either a Redis restart loses locks and deployments: set "
                   "`appendonly yes`",
                   src);
}

/* ---- 3. eviction ---- */

enum doctor_status doctor_check_eviction(const char *policy, int64_t maxmemory, const char *source, char *msg,
                                         size_t len) {
        char limit[96] = "";

        if (!policy)
                return say(DOCTOR_SKIP, msg, len, "maxmemory-policy unknown");
        if (maxmemory == 0)
                snprintf(limit, sizeof limit, "; maxmemory 0 (no limit yet)");
        else if (maxmemory > 0)
                snprintf(limit, sizeof limit, "; maxmemory %lld MiB", (long long) (maxmemory / (1024 * 1024)));

        if (strcmp(policy, "noeviction") == 0)
                return say(DOCTOR_OK, msg, len,
                           "maxmemory-policy noeviction (%s): a full Redis refuses writes rather than drop coord's "
                           "keys%s",
                           source, limit);
        if (strcmp(policy, "volatile-lru") == 0 || strcmp(policy, "volatile-lfu") == 0)
                return say(DOCTOR_OK, msg, len,
                           "maxmemory-policy %s (%s): only keys with a TTL are evicted, least used first; coord's "
                           "leases are renewed every few seconds and its deployments and configs have no TTL%s",
                           policy, source, limit);
        if (strncmp(policy, "volatile-", 9) == 0)
                return say(DOCTOR_WARN, msg, len,
                           "maxmemory-policy %.32s (%s): coord's lock leases and alive keys are keys with short "
                           "TTLs and could be evicted (a lock taken twice, instances shown lost); use noeviction or "
                           "volatile-lru%s",
                           policy, source, limit);
        if (strncmp(policy, "allkeys-", 8) == 0)
                return say(DOCTOR_WARN, msg, len,
                           "maxmemory-policy %.32s (%s): a full Redis may evict any key, locks and deployments "
                           "included; use noeviction (or volatile-lru with TTLs on the app's cache keys)%s",
                           policy, source, limit);
        return say(DOCTOR_WARN, msg, len, "maxmemory-policy '%.32s' (%s) is not one coord knows", policy, source);
}

/* ---- 4. namespaces ---- */

int doctor_classify_key(const char *key, char *ns, size_t nslen) {
        static const char prefix[] = "coord:{", lock[] = ":lock:" LOCK_NAME_LEADER;
        const char *in, *close, *rest;
        size_t inner, nl;
        int kind;

        if (!key || strncmp(key, prefix, sizeof prefix - 1) != 0)
                return 0;
        in = key + sizeof prefix - 1;
        close = strchr(in, '}');
        if (!close)
                return 0;
        inner = (size_t) (close - in);
        rest = close + 1;
        if (strcmp(rest, ":instances") == 0) {
                nl = inner;
                kind = 1;
        } else if (inner > sizeof lock - 1 && memcmp(close - (sizeof lock - 1), lock, sizeof lock - 1) == 0 &&
                   (rest[0] == '\0' || strcmp(rest, ":fence") == 0)) {
                nl = inner - (sizeof lock - 1);
                kind = rest[0] == '\0' ? 2 : 3;
        } else
                return 0;
        if (nl == 0 || nl > NAME_MAX_LEN || nl >= nslen)
                return 0;
        memcpy(ns, in, nl);
        ns[nl] = '\0';
        return name_is_valid(ns) ? kind : 0;
}

static const struct doctor_ns *ns_find(const struct doctor_ns *ns, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(ns[i].name, name) == 0)
                        return &ns[i];
        return NULL;
}

static const char fix_ns[] =
        "; set the same \"namespace\" in coordinatord.json and agent.json (or COORD_NAMESPACE for both)";

/* "HERE namespace 'FOCUS' but THERE 'a', 'b'; set the same namespace...": FAIL. */
static enum doctor_status say_split(char *msg, size_t len, const char *here, const char *focus, const char *there,
                                    const struct names *l) {
        say(DOCTOR_FAIL, msg, len, "%s namespace '%s' but %s ", here, focus, there);
        names_append(msg, len, l);
        msg_append(msg, len, "%s", fix_ns);
        return DOCTOR_FAIL;
}

static enum doctor_status namespaces_focus(const struct doctor_ns *ns, size_t n, const char *focus, char *msg,
                                           size_t len) {
        const struct doctor_ns *f = ns_find(ns, n, focus);
        bool agents = f && f->alive > 0, cd = f && f->leader;
        struct names oa = {}, oc = {};

        for (size_t i = 0; i < n; i++) {
                if (strcmp(ns[i].name, focus) == 0)
                        continue;
                if (ns[i].alive > 0)
                        names_add(&oa, ns[i].name);
                if (ns[i].leader)
                        names_add(&oc, ns[i].name);
        }
        if (agents && cd)
                return say(DOCTOR_OK, msg, len, "namespace '%s': %zu live instance%s and a leading coordinatord",
                           focus, f->alive, f->alive == 1 ? "" : "s");
        if (agents) {
                if (oc.n > 0)
                        return say_split(msg, len, "agents register in", focus, "coordinatord runs in", &oc);
                return say(DOCTOR_FAIL, msg, len,
                           "agents register in namespace '%s' but no coordinatord leads there%s; start coordinatord "
                           "with namespace '%s' on this Redis and database",
                           focus, f->fence ? " now (one did before)" : " (none ever did)", focus);
        }
        if (cd) {
                if (oa.n > 0)
                        return say_split(msg, len, "coordinatord runs in", focus, "agents register in", &oa);
                return say(DOCTOR_WARN, msg, len,
                           "coordinatord leads namespace '%s' but no agent is alive there (%zu registered) nor in "
                           "any other namespace; start coord-agent with namespace '%s'",
                           focus, f->instances, focus);
        }
        if (oa.n > 0 || oc.n > 0) {
                say(DOCTOR_FAIL, msg, len, "nothing runs in namespace '%s'", focus);
                if (oa.n > 0) {
                        msg_append(msg, len, "; agents register in ");
                        names_append(msg, len, &oa);
                }
                if (oc.n > 0) {
                        msg_append(msg, len, "; coordinatord runs in ");
                        names_append(msg, len, &oc);
                }
                msg_append(msg, len, "; check --namespace, or the \"namespace\" of the daemons");
                return DOCTOR_FAIL;
        }
        return say(DOCTOR_WARN, msg, len,
                   "namespace '%s' is empty and nothing else runs in this Redis database: no live agent, no leading "
                   "coordinatord (are the daemons using this Redis and database?)",
                   focus);
}

static enum doctor_status namespaces_all(const struct doctor_ns *ns, size_t n, char *msg, size_t len) {
        struct names a = {}, c = {}, ua = {}, uc = {}, paired = {}, stale = {};

        for (size_t i = 0; i < n; i++) {
                bool ag = ns[i].alive > 0, cd = ns[i].leader;
                if (ag)
                        names_add(&a, ns[i].name);
                if (cd)
                        names_add(&c, ns[i].name);
                if (ag && !cd)
                        names_add(&ua, ns[i].name);
                if (cd && !ag)
                        names_add(&uc, ns[i].name);
                if (ag && cd)
                        names_add(&paired, ns[i].name);
                if (!ag && !cd && (ns[i].instances > 0 || ns[i].fence))
                        names_add(&stale, ns[i].name);
        }
        if (a.n == 0 && c.n == 0) {
                if (stale.n > 0) {
                        say(DOCTOR_WARN, msg, len,
                            "no agent is alive and no coordinatord leads in any namespace (used before: ");
                        names_append(msg, len, &stale);
                        msg_append(msg, len, "); are the daemons running, against this Redis and database?");
                        return DOCTOR_WARN;
                }
                return say(DOCTOR_WARN, msg, len,
                           "no coord data in this Redis database: no agent has registered and no coordinatord has "
                           "led here (are the daemons using this Redis and database?)");
        }
        if (ua.n > 0) {
                say(DOCTOR_FAIL, msg, len, "agents register in namespace%s ", ua.n == 1 ? "" : "s");
                names_append(msg, len, &ua);
                if (c.n == 0) {
                        msg_append(msg, len, " but no coordinatord leads in any namespace; start coordinatord with "
                                             "that namespace on this Redis and database");
                        return DOCTOR_FAIL;
                }
                msg_append(msg, len, " but coordinatord runs %sin ", uc.n > 0 ? "" : "only ");
                names_append(msg, len, uc.n > 0 ? &uc : &c);
                msg_append(msg, len, "%s", fix_ns);
                return DOCTOR_FAIL;
        }
        if (uc.n > 0) {
                if (a.n == 0) {
                        say(DOCTOR_WARN, msg, len, "coordinatord leads in ");
                        names_append(msg, len, &uc);
                        msg_append(msg, len, " but no agent is alive in any namespace yet");
                        return DOCTOR_WARN;
                }
                say(DOCTOR_FAIL, msg, len, "coordinatord runs in ");
                names_append(msg, len, &uc);
                msg_append(msg, len, " where no agent is alive, while agents register in ");
                names_append(msg, len, &a);
                msg_append(msg, len, "%s", fix_ns);
                return DOCTOR_FAIL;
        }
        say(DOCTOR_OK, msg, len, "agents and a leading coordinatord in namespace%s ", paired.n == 1 ? "" : "s");
        names_append(msg, len, &paired);
        return DOCTOR_OK;
}

enum doctor_status doctor_check_namespaces(const struct doctor_ns *ns, size_t n, const char *focus, bool complete,
                                           const char *note, char *msg, size_t len) {
        enum doctor_status st = focus ? namespaces_focus(ns, n, focus, msg, len) : namespaces_all(ns, n, msg, len);

        if (!complete && note)
                msg_append(msg, len, " (%s)", note);
        return st;
}

/* The first two config files (in order) whose namespaces differ; with mixed,
 * only an agent/coordinatord pair counts. */
static bool config_ns_differ(const struct doctor_config_ns *c, size_t n, bool mixed, size_t *ret_i, size_t *ret_j) {
        for (size_t i = 0; i < n; i++)
                for (size_t j = i + 1; j < n; j++)
                        if (strcmp(c[i].ns, c[j].ns) != 0 && (!mixed || c[i].agent != c[j].agent)) {
                                *ret_i = i;
                                *ret_j = j;
                                return true;
                        }
        return false;
}

enum doctor_status doctor_check_config_namespaces(const struct doctor_config_ns *c, size_t n, char *msg,
                                                  size_t len) {
        const struct doctor_config_ns *x, *y;
        size_t i, j;

        if (n < 2)
                return say(DOCTOR_SKIP, msg, len, "fewer than two config files to compare");
        /* Prefer an agent/coordinatord pair that differ (the agent named first):
         * that is the mistake that matters. */
        if (config_ns_differ(c, n, true, &i, &j)) {
                x = c[i].agent ? &c[i] : &c[j];
                y = c[i].agent ? &c[j] : &c[i];
        } else if (config_ns_differ(c, n, false, &i, &j)) {
                x = &c[i];
                y = &c[j];
        } else
                return say(DOCTOR_OK, msg, len, "all %zu config files use namespace '%s'", n, c[0].ns);
        return say(DOCTOR_FAIL, msg, len,
                   "%s uses namespace '%s' but %s uses '%s': agents and coordinatords of one fleet need the same "
                   "namespace",
                   x->path, x->ns, y->path, y->ns);
}

/* ---- 5. clock skew ---- */

int64_t doctor_skew_ms(int64_t last_seen_ms, int64_t ttl_ms, int64_t pttl_ms, int64_t redis_now_ms) {
        int64_t lo, hi;

        if (ttl_ms > 0 && pttl_ms >= 0 && pttl_ms <= ttl_ms)
                lo = hi = redis_now_ms - (ttl_ms - pttl_ms);
        else {
                hi = redis_now_ms;
                lo = ttl_ms > 0 ? redis_now_ms - ttl_ms : INT64_MIN;
        }
        if (last_seen_ms > hi)
                return last_seen_ms - hi;
        if (last_seen_ms < lo)
                return last_seen_ms - lo;
        return 0;
}

static int64_t abs64(int64_t v) {
        return v < 0 ? (v == INT64_MIN ? INT64_MAX : -v) : v;
}

static void skew_append(char *msg, size_t len, const char *host, int64_t skew, bool first) {
        msg_append(msg, len, "%s%s %lld ms %s", first ? "" : ", ", host, (long long) abs64(skew),
                   skew > 0 ? "ahead" : "behind");
}

enum doctor_status doctor_check_skew(const struct doctor_skew *s, size_t n, char *msg, size_t len) {
        char list[DOCTOR_MESSAGE_MAX] = "";
        size_t hosts = 0, bad = 0;
        int64_t worst = 0;
        const char *worst_host = NULL;
        enum doctor_status st = DOCTOR_OK;

        if (n == 0)
                return say(DOCTOR_SKIP, msg, len, "no live instance to compare");
        /* One verdict per host: its largest skew (n is bounded by the collector). */
        for (size_t i = 0; i < n; i++) {
                bool seen = false;
                int64_t m = s[i].skew_ms;
                for (size_t j = 0; j < i && !seen; j++)
                        seen = strcmp(s[j].host, s[i].host) == 0;
                if (seen)
                        continue;
                for (size_t j = i + 1; j < n; j++)
                        if (strcmp(s[j].host, s[i].host) == 0 && abs64(s[j].skew_ms) > abs64(m))
                                m = s[j].skew_ms;
                hosts++;
                if (!worst_host || abs64(m) > abs64(worst)) {
                        worst = m;
                        worst_host = s[i].host;
                }
                if (abs64(m) <= DOCTOR_SKEW_WARN_MS)
                        continue;
                if (abs64(m) > DOCTOR_SKEW_FAIL_MS)
                        st = DOCTOR_FAIL;
                else if (st == DOCTOR_OK)
                        st = DOCTOR_WARN;
                if (++bad <= NAMES_SHOWN)
                        skew_append(list, sizeof list, s[i].host, m, bad == 1);
        }
        if (bad == 0)
                return say(DOCTOR_OK, msg, len, "%zu host%s within %d ms of Redis' clock (largest: %s, %+lld ms)",
                           hosts, hosts == 1 ? "" : "s", DOCTOR_SKEW_WARN_MS, worst_host, (long long) worst);
        say(st, msg, len, "agent host clocks off from Redis' clock: %s", list);
        if (bad > NAMES_SHOWN)
                msg_append(msg, len, " and %zu more host%s", bad - NAMES_SHOWN, bad - NAMES_SHOWN == 1 ? "" : "s");
        msg_append(msg, len,
                   " (warn > %d ms, FAIL > %d ms: a quarter of the default 5 s leader lease); run NTP (chrony or "
                   "systemd-timesyncd) on %s",
                   DOCTOR_SKEW_WARN_MS, DOCTOR_SKEW_FAIL_MS, bad == 1 ? "that host" : "those hosts");
        return st;
}

enum doctor_status doctor_check_local_clock(int64_t offset_usec, uint64_t rtt_usec, char *msg, size_t len) {
        int64_t half = (int64_t) MIN(rtt_usec / 2, (uint64_t) INT64_MAX);
        int64_t at_least = abs64(offset_usec) > half ? abs64(offset_usec) - half : 0;
        enum doctor_status st = at_least > DOCTOR_SKEW_FAIL_MS * 1000 ? DOCTOR_FAIL
                                : at_least > DOCTOR_SKEW_WARN_MS * 1000 ? DOCTOR_WARN
                                                                        : DOCTOR_OK;

        double off_ms = (double) offset_usec / 1000.0;

        if (off_ms > -0.05 && off_ms < 0.05)
                off_ms = 0.0; /* no "-0.0" */
        say(st, msg, len, "this machine's clock is %+.1f ms off Redis' (+/- %.1f ms)", off_ms, (double) half / 1000.0);
        if (st != DOCTOR_OK)
                msg_append(msg, len, ": beyond %d ms; run NTP (chrony or systemd-timesyncd) here",
                           st == DOCTOR_FAIL ? DOCTOR_SKEW_FAIL_MS : DOCTOR_SKEW_WARN_MS);
        return st;
}

/* ---- 6. health checks ---- */

enum doctor_status doctor_check_probes(const struct doctor_probe *p, size_t n, char *msg, size_t len) {
        size_t unknown = 0, http = 0, tcp = 0, exec = 0;
        struct names none = {}; /* without a health check: "ID' on 'HOST" */
        char shown[NAMES_SHOWN][2 * 64 + 16];

        if (n == 0)
                return say(DOCTOR_SKIP, msg, len, "no live instance to examine");
        for (size_t i = 0; i < n; i++) {
                const char *k = p[i].probe;
                if (!k || !*k)
                        unknown++;
                else if (strcmp(k, "http") == 0)
                        http++;
                else if (strcmp(k, "tcp") == 0)
                        tcp++;
                else if (strcmp(k, "exec") == 0)
                        exec++;
                else if (none.n < NAMES_SHOWN) {
                        snprintf(shown[none.n], sizeof shown[none.n], "%.64s' on '%.64s", p[i].id,
                                 p[i].host ? p[i].host : "?");
                        names_add(&none, shown[none.n]);
                } else
                        names_add(&none, NULL); /* counted, not shown */
        }
        if (none.n > 0) {
                say(DOCTOR_WARN, msg, len, "%zu instance%s without a health check (", none.n,
                    none.n == 1 ? "" : "s");
                names_append(msg, len, &none);
                msg_append(msg, len,
                           "): %s healthy as soon as %s, so a deployment cannot tell a broken version; add "
                           "\"health\": {\"http\": ...} (or tcp, exec) to the service in agent.json",
                           none.n == 1 ? "it counts as" : "they count as", none.n == 1 ? "it starts" : "they start");
                return DOCTOR_WARN;
        }
        if (unknown == n)
                return say(DOCTOR_SKIP, msg, len,
                           "%zu live instance%s do%s not publish a \"probe\" field (agents older than this check, or "
                           "registered by something else)",
                           n, n == 1 ? "" : "s", n == 1 ? "es" : "");
        say(DOCTOR_OK, msg, len, "every live instance has a health check (http %zu, tcp %zu, exec %zu)", http, tcp,
            exec);
        if (unknown > 0)
                msg_append(msg, len, "; %zu do%s not say (older agents)", unknown, unknown == 1 ? "es" : "");
        return DOCTOR_OK;
}

/* ---- 7. files ---- */

enum doctor_status doctor_check_file(const struct doctor_file *f, char *msg, size_t len) {
        unsigned m = (unsigned) (f->mode & 07777);
        char owner[96];

        if (f->owner)
                snprintf(owner, sizeof owner, "%s", f->owner);
        else
                snprintf(owner, sizeof owner, "uid %u", (unsigned) f->uid);

        if (f->mode & (S_IROTH | S_IWOTH))
                return say(DOCTOR_FAIL, msg, len, "%s (%s) is %s by everyone (mode %04o): chmod 0600 %s", f->path,
                           f->what, f->mode & S_IROTH ? "readable" : "writable", m, f->path);
        if (f->mode & S_IWGRP)
                return say(DOCTOR_WARN, msg, len, "%s (%s) is writable by its group (mode %04o): chmod 0600 %s",
                           f->path, f->what, m, f->path);
        if ((f->mode & S_IRGRP) && !f->group_expected)
                return say(DOCTOR_WARN, msg, len, "%s (%s) is readable by its group (mode %04o): chmod 0600 %s",
                           f->path, f->what, m, f->path);
        if (!f->owner_ok)
                return say(DOCTOR_WARN, msg, len,
                           "%s (%s) is owned by %s: expected root or the user the daemon runs as (chown root %s)",
                           f->path, f->what, owner, f->path);
        return say(DOCTOR_OK, msg, len, "%s (%s): mode %04o, owner %s", f->path, f->what, m, owner);
}

bool doctor_redis_has_password(const char *s) {
        _cleanup_(redis_url_freep) struct redis_url *u = NULL;
        const char *scheme;

        if (!s)
                return false;
        if (redis_url_parse(s, &u, NULL, 0) == 0)
                return u->password && *u->password;
        /* Not parseable: be conservative about what might be a secret. */
        if (strcasestr(s, "password="))
                return true;
        scheme = strstr(s, "://");
        return scheme && strchr(scheme + 3, '@');
}

/* Files named by *_file keys that hold public material, not secrets. */
static bool file_key_is_public(const char *k) {
        return strcmp(k, "tls_ca_file") == 0 || strcmp(k, "tls_cert_file") == 0;
}

static int config_add_file(struct doctor_config *c, const char *keypath, const char *path, bool group_ok) {
        bool *g;
        int r;

        g = reallocarray(c->file_group_ok, c->n_files + 1, sizeof(bool));
        if (!g)
                return -ENOMEM;
        c->file_group_ok = g;
        r = strv_push(&c->file_keys, c->n_files, strdup(keypath));
        if (r < 0)
                return r;
        r = strv_push(&c->file_paths, c->n_files, strdup(path));
        if (r < 0) {
                free(c->file_keys[c->n_files]);
                return r;
        }
        c->file_group_ok[c->n_files++] = group_ok;
        return 0;
}

#define CONFIG_DEPTH_MAX 8
#define KEYPATH_MAX 256

static int config_walk(struct doctor_config *c, json_t *v, const char *path, unsigned depth) {
        char sub[KEYPATH_MAX];
        const char *k;
        json_t *x;
        size_t i;
        int r;

        if (depth > CONFIG_DEPTH_MAX)
                return 0;
        if (json_is_array(v)) {
                json_array_foreach(v, i, x) {
                        snprintf(sub, sizeof sub, "%s[%zu]", path, i);
                        r = config_walk(c, x, sub, depth + 1);
                        if (r < 0)
                                return r;
                }
                return 0;
        }
        if (!json_is_object(v))
                return 0;
        json_object_foreach(v, k, x) {
                size_t kl = strlen(k);
                snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", k);
                if (json_is_string(x) && kl > 5 && strcmp(k + kl - 5, "_file") == 0) {
                        if (!file_key_is_public(k) && json_string_length(x) > 0) {
                                r = config_add_file(c, sub, json_string_value(x), strcmp(k, "config_file") == 0);
                                if (r < 0)
                                        return r;
                        }
                } else if (json_is_string(x) && json_string_length(x) > 0 &&
                           (secret_key_is_secret(k) || (strcmp(k, "redis") == 0 &&
                                                 doctor_redis_has_password(json_string_value(x))))) {
                        r = strv_push(&c->inline_secrets, c->n_inline,
                                      strcmp(k, "redis") == 0 ? strdup_printf("the password in %s", sub) : strdup(sub));
                        if (r < 0)
                                return r;
                        c->n_inline++;
                } else if (json_is_object(x) || json_is_array(x)) {
                        r = config_walk(c, x, sub, depth + 1);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int dup_string_key(json_t *root, const char *key, char **ret) {
        const char *s = json_string_value(json_object_get(root, key));

        *ret = NULL;
        if (!s)
                return 0;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

int doctor_config_parse(json_t *root, const char *name_hint, struct doctor_config *ret) {
        _cleanup_(doctor_config_done) struct doctor_config c = {};
        const char *base = name_hint ? strrchr(name_hint, '/') : NULL;
        const char *ns;
        int r;

        if (!json_is_object(root))
                return -EINVAL;
        base = base ? base + 1 : name_hint;
        c.agent = json_object_get(root, "services") ||
                  (!json_object_get(root, "tokens") && !json_object_get(root, "listen") && base &&
                   strstr(base, "agent"));
        ns = json_string_value(json_object_get(root, "namespace"));
        c.ns = strdup(ns && *ns ? ns : "default");
        if (!c.ns)
                return -ENOMEM;
        r = dup_string_key(root, "redis", &c.redis);
        if (r >= 0)
                r = dup_string_key(root, "redis_file", &c.redis_file);
        if (r >= 0)
                r = dup_string_key(root, "listen", &c.listen);
        if (r < 0)
                return r;
        r = config_walk(&c, root, "", 0);
        if (r < 0)
                return r;
        *ret = c;
        c = (struct doctor_config) {};
        return 0;
}

void doctor_config_done(struct doctor_config *c) {
        free(c->ns);
        free(c->redis);
        free(c->redis_file);
        free(c->listen);
        strv_free_n(c->file_keys, c->n_files);
        strv_free_n(c->file_paths, c->n_files);
        free(c->file_group_ok);
        strv_free_n(c->inline_secrets, c->n_inline);
        *c = (struct doctor_config) {};
}

char *doctor_listen_to_url(const char *listen) {
        const char *colon = listen ? strrchr(listen, ':') : NULL;
        _cleanup_free_ char *host = NULL;
        int port;

        if (!colon || parse_int(colon + 1, &port) < 0 || port <= 0 || port > 65535)
                return NULL;
        host = strndup(listen, (size_t) (colon - listen));
        if (!host)
                return NULL;
        if (!*host || strcmp(host, "*") == 0 || strcmp(host, "0.0.0.0") == 0)
                return strdup_printf("http://127.0.0.1:%d", port);
        if (strcmp(host, "[::]") == 0)
                return strdup_printf("http://[::1]:%d", port);
        return strdup_printf("http://%s:%d", host, port);
}

/* ---- 8. coordinatord ---- */

enum doctor_status doctor_check_leader(const struct doctor_leader *v, size_t n, bool redis_checked, char *msg,
                                       size_t len) {
        const struct doctor_leader *first = NULL;
        bool refused = false;
        size_t answered = 0;

        for (size_t i = 0; i < n; i++) {
                if (v[i].status == 200) {
                        answered++;
                        if (!first)
                                first = &v[i];
                } else if (v[i].status == 401 || v[i].status == 403)
                        refused = true;
                else if (v[i].status == 503)
                        return say(DOCTOR_FAIL, msg, len,
                                   "%s answers 503 to GET /v1/leader: that coordinatord cannot reach Redis (check its "
                                   "redis setting and the network)",
                                   v[i].url);
        }
        if (!first)
                return say(DOCTOR_SKIP, msg, len, "%s",
                           refused ? "GET /v1/leader needs a valid token with the read role (--token, COORD_TOKEN, "
                                     "COORD_TOKEN_FILE)"
                                   : "no coordinatord answered GET /v1/leader");
        for (size_t i = 0; i < n; i++) {
                if (v[i].status != 200)
                        continue;
                if (!v[i].leader)
                        return say(DOCTOR_FAIL, msg, len,
                                   "%s sees no leader: no coordinatord leads its namespace (Redis unreachable from "
                                   "all of them, or just started); nothing rolls out until one does",
                                   v[i].url);
                if (strcmp(v[i].leader, first->leader) != 0 || v[i].term != first->term)
                        return say(DOCTOR_FAIL, msg, len,
                                   "coordinatords disagree on the leader: %s says '%s' (term %lld), %s says '%s' "
                                   "(term %lld); they use different namespaces or different Redis servers or "
                                   "databases",
                                   first->url, first->leader, (long long) first->term, v[i].url, v[i].leader,
                                   (long long) v[i].term);
        }
        if (redis_checked && !first->ns)
                return say(DOCTOR_WARN, msg, len,
                           "%s follows leader '%s' (term %lld), which holds no leader lock in this Redis: coordinatord "
                           "uses another Redis or database than the one checked here (or leadership just moved)",
                           first->url, first->leader, (long long) first->term);
        if (first->ns && first->ns_alive == 0 && first->agents_ns)
                return say(DOCTOR_FAIL, msg, len,
                           "%s runs in namespace '%s' (leader '%s', term %lld) where no agent is alive, while agents "
                           "register in '%s'%s",
                           first->url, first->ns, first->leader, (long long) first->term, first->agents_ns, fix_ns);
        say(DOCTOR_OK, msg, len, "leader '%s' (term %lld)", first->leader, (long long) first->term);
        if (first->ns)
                msg_append(msg, len, " in namespace '%s'", first->ns);
        if (answered > 1)
                msg_append(msg, len, "; all %zu coordinatords agree", answered);
        return DOCTOR_OK;
}

enum doctor_status doctor_check_token(bool have_token, long read_status, long deploy_status, long admin_status,
                                      char *msg, size_t len) {
        const char *role;

        if (read_status == 0)
                return say(DOCTOR_SKIP, msg, len, "no coordinatord answered");
        if (read_status == 401 || read_status == 403) {
                if (!have_token)
                        return say(DOCTOR_SKIP, msg, len,
                                   "no token given (--token, COORD_TOKEN, COORD_TOKEN_FILE): its role not checked");
                return say(DOCTOR_FAIL, msg, len,
                           "coordinatord refuses the token (%ld): compare it with the tokens in coordinatord.json "
                           "(sha256 of the token, or token_file)",
                           read_status);
        }
        if (read_status != 200)
                return say(DOCTOR_WARN, msg, len, "GET /v1/instances answered %ld", read_status);
        role = admin_status == 400 ? "admin" : deploy_status == 400 ? "deploy" : "read";
        if (!have_token)
                return say(DOCTOR_WARN, msg, len,
                           "coordinatord answers without a token (insecure_no_auth): whoever reaches it has the %s "
                           "role",
                           role);
        if (strcmp(role, "read") == 0)
                return say(DOCTOR_OK, msg, len,
                           "the token has the read role: instances and status work; deploy, drain and config set "
                           "answer 403");
        if (strcmp(role, "deploy") == 0)
                return say(DOCTOR_OK, msg, len,
                           "the token has the deploy role: deploy, drain, pause and revert work; config set and "
                           "--reveal answer 403");
        return say(DOCTOR_OK, msg, len, "the token has the admin role: everything, config set and --reveal included");
}

/* ======================================================================
 * Collecting the facts (I/O)
 * ====================================================================== */

#define DOCTOR_CONFIG_MAX 16
#define DOCTOR_CONFIG_BYTES (1024 * 1024)
#define DOCTOR_SECRET_BYTES (64 * 1024)
#define DOCTOR_NS_MAX 64
#define DOCTOR_SCAN_CALLS_MAX 1000 /* SCAN ... COUNT 1000: about a million keys */
#define DOCTOR_SCAN_USEC (3 * USEC_PER_SEC)
#define DOCTOR_NS_INSTANCES_MAX 1000
#define DOCTOR_INSTANCES_MAX 4000
#define DOCTOR_BATCH 100
#define DOCTOR_CMD_TIMEOUT_USEC (2 * USEC_PER_SEC)
#define DOCTOR_INFO_MAX (64 * 1024)

struct doctor_args {
        const char *redis;
        const char *ns;
        const char *configs[DOCTOR_CONFIG_MAX];
        size_t n_configs;
};

struct ns_fact {
        char name[NAME_MAX_LEN + 1];
        size_t instances, alive;
        bool leader, fence;
        char *holder; /* "ID, fence F" of the leader lock, or NULL */
};

struct inst_fact {
        size_t ns; /* index into redis_facts.ns */
        char *id, *host, *probe;
        int64_t last_seen, ttl_ms, pttl, now_ms; /* -1 where unknown */
};

struct redis_facts {
        bool connected;
        struct ns_fact ns[DOCTOR_NS_MAX];
        size_t n_ns;
        bool scan_complete;
        char scan_note[160];
        struct inst_fact *inst;
        size_t n_inst;
};

static void redis_facts_done(struct redis_facts *f) {
        for (size_t i = 0; i < f->n_ns; i++)
                free(f->ns[i].holder);
        for (size_t i = 0; i < f->n_inst; i++) {
                free(f->inst[i].id);
                free(f->inst[i].host);
                free(f->inst[i].probe);
        }
        free(f->inst);
}

struct loaded_config {
        const char *path;
        struct doctor_config cfg;
        struct stat st;
};

/* ---- helpers ---- */

static void doctor_help(void) {
        printf("Usage: coordctl doctor [--redis REDIS] [--namespace NS] [--config PATH]...\n"
               "\n"
               "Checks what a new installation most often gets wrong, one line per check:\n"
               "ok, warn, FAIL, or skip (with the reason it could not be checked).\n"
               "Redis: reachable, version, persistence, eviction policy, namespaces of agents\n"
               "and coordinatords, agents' clock skew, health checks.  coordinatord (--url):\n"
               "ready, leader, the token's role.  Config files: namespaces, secret file modes,\n"
               "inline secrets.\n"
               "\n"
               "  --redis REDIS      the fleet's Redis (default $COORD_REDIS, else the redis or\n"
               "                     redis_file of a --config file); both connection-string forms\n"
               "  --namespace NS     judge only this namespace (default: every one found)\n"
               "  --config PATH      a coordinatord.json or agent.json to check (repeatable)\n"
               "\n"
               "coordinatord comes from the global --url (or $COORD_URL, or the listen of a\n"
               "coordinatord.json given with --config), the token from --token, $COORD_TOKEN\n"
               "or $COORD_TOKEN_FILE.  --output json prints {\"checks\":[{\"name\",\"status\",\"message\"}]}.\n"
               "\n"
               "Exit codes: 0 no FAIL (warnings allowed), 1 any FAIL, 2 usage,\n"
               "3 nothing (neither Redis nor coordinatord) could be reached.\n");
}

static int parse_args(int argc, char **argv, struct doctor_args *a) {
        static const struct option opts[] = {
                { "redis", required_argument, NULL, 'r' },
                { "namespace", required_argument, NULL, 'n' },
                { "config", required_argument, NULL, 'c' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        int c;

        optind = 1;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0)
                switch (c) {
                case 'r':
                        a->redis = optarg;
                        break;
                case 'n':
                        if (!name_is_valid(optarg)) {
                                fprintf(stderr, "coordctl doctor: --namespace: '%s' is not a valid namespace "
                                                "(1-64 of A-Z a-z 0-9 . _ -)\n", optarg);
                                return -EINVAL;
                        }
                        a->ns = optarg;
                        break;
                case 'c':
                        if (a->n_configs >= DOCTOR_CONFIG_MAX) {
                                fprintf(stderr, "coordctl doctor: at most %d --config files\n", DOCTOR_CONFIG_MAX);
                                return -EINVAL;
                        }
                        a->configs[a->n_configs++] = optarg;
                        break;
                case 'h':
                        doctor_help();
                        return 1;
                default:
                        return -EINVAL;
                }
        if (optind < argc) {
                fprintf(stderr, "coordctl doctor: unexpected argument '%s'\n", argv[optind]);
                return -EINVAL;
        }
        return 0;
}

static int load_config(const char *path, struct loaded_config *ret) {
        _cleanup_free_ char *text = NULL;
        _cleanup_json_ json_t *root = NULL;
        json_error_t je;
        int r;

        if (stat(path, &ret->st) < 0) {
                fprintf(stderr, "coordctl doctor: --config %s: %s\n", path, strerror(errno));
                return -errno;
        }
        r = fileio_read_string(path, DOCTOR_CONFIG_BYTES, false, &text);
        if (r < 0) {
                fprintf(stderr, "coordctl doctor: --config %s: %s\n", path,
                        r == -EFBIG ? "larger than 1 MiB" : strerror(-r));
                return r;
        }
        /* Never echo the text near a syntax error: it could be a secret. */
        root = json_loads(text, JSON_REJECT_DUPLICATES, &je);
        if (!root) {
                fprintf(stderr, "coordctl doctor: --config %s: invalid JSON at line %d column %d\n", path, je.line,
                        je.column);
                return -EINVAL;
        }
        r = doctor_config_parse(root, path, &ret->cfg);
        if (r < 0) {
                fprintf(stderr, "coordctl doctor: --config %s: %s\n", path,
                        r == -EINVAL ? "not a JSON object" : strerror(-r));
                return r;
        }
        ret->path = path;
        return 0;
}

static bool reply_is_error(const redisReply *r) {
        return !r || r->type == REDIS_REPLY_ERROR;
}

/* Value of "field:" in an INFO text into buf; false when absent. */
static bool info_field(const char *info, const char *field, char *buf, size_t len) {
        size_t fl = strlen(field);

        for (const char *p = info; p && *p;) {
                const char *eol = strpbrk(p, "\r\n");
                size_t ll = eol ? (size_t) (eol - p) : strlen(p);
                if (ll > fl && strncmp(p, field, fl) == 0 && p[fl] == ':') {
                        size_t vl = MIN(ll - fl - 1, len - 1);
                        memcpy(buf, p + fl + 1, vl);
                        buf[vl] = '\0';
                        return true;
                }
                if (!eol)
                        break;
                p = eol + strspn(eol, "\r\n");
        }
        return false;
}

static int64_t info_int(const char *info, const char *field) {
        char buf[32];
        int64_t v;

        if (!info || !info_field(info, field, buf, sizeof buf) || parse_int64(buf, &v) < 0)
                return -1;
        return v;
}

/* INFO SECTION as a string (caller frees); NULL with why in err when refused. */
static char *redis_info(redisContext *c, const char *section, char *err, size_t errlen) {
        _cleanup_reply_ redisReply *rep = NULL;

        if (redis_command(c, &rep, err, errlen, "INFO %s", section) < 0)
                return NULL;
        if (rep->type != REDIS_REPLY_STRING) {
                snprintf(err, errlen, "unexpected INFO reply");
                return NULL;
        }
        return strndup(rep->str, MIN(rep->len, (size_t) DOCTOR_INFO_MAX));
}

/* CONFIG GET NAME into buf; -errno with why in err. */
static int redis_config_get(redisContext *c, const char *name, char *buf, size_t len, char *err, size_t errlen) {
        _cleanup_reply_ redisReply *rep = NULL;
        int r = redis_command(c, &rep, err, errlen, "CONFIG GET %s", name);

        if (r < 0)
                return r;
        /* [name, value] (hiredis 0.14 speaks RESP2). */
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 2 ||
            rep->element[1]->type != REDIS_REPLY_STRING) {
                snprintf(err, errlen, "CONFIG GET %s: no such parameter", name);
                return -ENOENT;
        }
        snprintf(buf, len, "%s", rep->element[1]->str);
        return 0;
}

/* Shorten a Redis error for a message: its first line, at most 100 characters. */
static const char *short_error(char *err) {
        err[strcspn(err, "\r\n")] = '\0';
        if (strlen(err) > 100)
                memcpy(err + 96, "...", 4);
        return err;
}

/* A reply to TIME as microseconds; -EPROTO when it is not one. */
static int time_reply_usec(const redisReply *rep, int64_t *ret) {
        int64_t s, us;

        if (reply_is_error(rep) || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
            rep->element[0]->type != REDIS_REPLY_STRING || rep->element[1]->type != REDIS_REPLY_STRING ||
            parse_int64(rep->element[0]->str, &s) < 0 || parse_int64(rep->element[1]->str, &us) < 0)
                return -EPROTO;
        *ret = s * 1000000 + us;
        return 0;
}

/* TIME as microseconds; -errno. */
static int redis_time_usec(redisContext *c, int64_t *ret) {
        _cleanup_reply_ redisReply *rep = NULL;
        char err[256];

        if (redis_command(c, &rep, err, sizeof err, "TIME") < 0)
                return -EIO;
        return time_reply_usec(rep, ret);
}

/* ---- Redis: server ---- */

/* Round trip and role ("redis"). */
static void check_redis_role(struct doctor_report *rep, redisContext *c, const char *where, const char *source) {
        char err[512] = "", msg[DOCTOR_MESSAGE_MAX];
        _cleanup_reply_ redisReply *role = NULL;
        uint64_t best = UINT64_MAX;
        enum doctor_status st = DOCTOR_OK;
        const char *role_name = NULL;

        for (int i = 0; i < 3; i++) {
                _cleanup_reply_ redisReply *pong = NULL;
                uint64_t t0 = now_usec();
                if (redis_command(c, &pong, err, sizeof err, "PING") < 0)
                        break;
                best = MIN(best, now_usec() - t0);
        }
        if (redis_command(c, &role, err, sizeof err, "ROLE") == 0 && role->type == REDIS_REPLY_ARRAY &&
            role->elements > 0 && role->element[0]->type == REDIS_REPLY_STRING)
                role_name = role->element[0]->str;
        if (role_name && strcmp(role_name, "master") != 0)
                st = DOCTOR_FAIL;
        snprintf(msg, sizeof msg, "%s (%s) answers in %.2f ms", where, source,
                 best == UINT64_MAX ? 0.0 : (double) best / 1000.0);
        if (role_name)
                msg_append(msg, sizeof msg, ", role %s", role_name);
        if (st == DOCTOR_FAIL)
                msg_append(msg, sizeof msg, ": coord writes to a replica fail; give the master (or the Sentinels "
                                            "with serviceName=)");
        (void) doctor_report_add(rep, "redis", st, msg);
}

/* "redis-version" from INFO server (server: its text, NULL when refused), else
 * whether Redis knows LMOVE. */
static void check_redis_version(struct doctor_report *rep, redisContext *c, const char *server) {
        char buf[128], msg[DOCTOR_MESSAGE_MAX];
        const char *version = server && info_field(server, "redis_version", buf, sizeof buf) ? buf : NULL;
        int lmove = -1;

        if (!version) {
                /* LMOVE on a key that does not exist changes nothing; Redis < 6.2 does not know it. */
                _cleanup_reply_ redisReply *lm = NULL;
                _cleanup_free_ char *probe = key_lmove_probe("doctor");
                char lerr[256] = "";
                int r = probe ? redis_command(c, &lm, lerr, sizeof lerr, "LMOVE %s %s LEFT LEFT", probe, probe)
                              : -ENOMEM;
                lmove = r == 0 ? 1 : strstr(lerr, "unknown command") ? 0 : -1;
        }
        (void) doctor_report_add(rep, "redis-version", doctor_check_version(version, lmove, msg, sizeof msg), msg);
}

/* server: the INFO server text (for uptime_in_seconds), NULL when refused. */
static void check_persistence(struct doctor_report *rep, redisContext *c, const char *server) {
        struct doctor_persistence p = { .aof_enabled = -1, .rdb_changes_since_last_save = -1,
                                        .rdb_last_save_time = -1, .rdb_saves = -1, .uptime_s = -1 };
        char aof[16], save[256], err[512] = "", msg[DOCTOR_MESSAGE_MAX];
        _cleanup_free_ char *pers = NULL;
        int64_t now;

        if (redis_config_get(c, "appendonly", aof, sizeof aof, err, sizeof err) == 0 &&
            redis_config_get(c, "save", save, sizeof save, err, sizeof err) == 0) {
                p.appendonly = aof;
                p.save = save;
        } else {
                char ierr[256] = "";
                p.from_info = true;
                p.config_error = short_error(err);
                pers = redis_info(c, "persistence", ierr, sizeof ierr);
                if (!pers) {
                        (void) doctor_report_addf(rep, "persistence", DOCTOR_SKIP,
                                                  "neither CONFIG GET (%s) nor INFO persistence (%s) is permitted; "
                                                  "ask whoever runs this Redis whether `appendonly yes` is set",
                                                  p.config_error, short_error(ierr));
                        return;
                }
                p.aof_enabled = (int) info_int(pers, "aof_enabled");
                p.rdb_changes_since_last_save = info_int(pers, "rdb_changes_since_last_save");
                p.rdb_last_save_time = info_int(pers, "rdb_last_save_time");
                p.rdb_saves = info_int(pers, "rdb_saves");
                p.uptime_s = info_int(server, "uptime_in_seconds");
                if (redis_time_usec(c, &now) == 0)
                        p.now_s = now / 1000000;
        }
        (void) doctor_report_add(rep, "persistence", doctor_check_persistence(&p, msg, sizeof msg), msg);
}

static void check_eviction(struct doctor_report *rep, redisContext *c) {
        char policy[64], maxmem[32], err[512] = "", ierr[256] = "", msg[DOCTOR_MESSAGE_MAX];
        _cleanup_free_ char *mem = NULL;
        int64_t mm = -1;

        if (redis_config_get(c, "maxmemory-policy", policy, sizeof policy, err, sizeof err) == 0) {
                if (redis_config_get(c, "maxmemory", maxmem, sizeof maxmem, err, sizeof err) < 0 ||
                    parse_int64(maxmem, &mm) < 0)
                        mm = -1;
                (void) doctor_report_add(rep, "eviction",
                                         doctor_check_eviction(policy, mm, "CONFIG GET", msg, sizeof msg), msg);
                return;
        }
        mem = redis_info(c, "memory", ierr, sizeof ierr);
        if (!mem || !info_field(mem, "maxmemory_policy", policy, sizeof policy)) {
                (void) doctor_report_addf(rep, "eviction", DOCTOR_SKIP,
                                          "neither CONFIG GET (%s) nor INFO memory (%s) is permitted",
                                          short_error(err), mem ? "no maxmemory_policy" : short_error(ierr));
                return;
        }
        mm = info_int(mem, "maxmemory");
        (void) doctor_report_add(rep, "eviction", doctor_check_eviction(policy, mm, "INFO memory", msg, sizeof msg),
                                 msg);
}

/* ---- Redis: namespaces and instances ---- */

static struct ns_fact *ns_get(struct redis_facts *f, const char *name, bool create) {
        for (size_t i = 0; i < f->n_ns; i++)
                if (strcmp(f->ns[i].name, name) == 0)
                        return &f->ns[i];
        if (!create || f->n_ns >= DOCTOR_NS_MAX || !name_is_valid(name))
                return NULL;
        snprintf(f->ns[f->n_ns].name, sizeof f->ns[f->n_ns].name, "%s", name);
        return &f->ns[f->n_ns++];
}

/* SCAN for the keys that show a namespace is used, bounded in calls and time;
 * f->scan_complete stays false when SCAN is refused or stops early. */
static void scan_namespaces(struct redis_facts *f, redisContext *c) {
        char cursor[32] = "0", err[512] = "";
        uint64_t deadline = now_usec() + DOCTOR_SCAN_USEC;
        size_t calls = 0;
        bool overflow = false;

        do {
                _cleanup_reply_ redisReply *rep = NULL;
                if (redis_command(c, &rep, err, sizeof err, "SCAN %s MATCH coord:{* COUNT 1000", cursor) < 0) {
                        snprintf(f->scan_note, sizeof f->scan_note, "SCAN not permitted (%s): looked only at the "
                                 "namespaces named by --namespace, --config, COORD_NAMESPACE and 'default'",
                                 short_error(err));
                        return;
                }
                if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
                    rep->element[0]->type != REDIS_REPLY_STRING || rep->element[1]->type != REDIS_REPLY_ARRAY)
                        break;
                snprintf(cursor, sizeof cursor, "%s", rep->element[0]->str);
                for (size_t i = 0; i < rep->element[1]->elements; i++) {
                        redisReply *k = rep->element[1]->element[i];
                        char name[NAME_MAX_LEN + 1];
                        int kind;
                        struct ns_fact *n;

                        if (k->type != REDIS_REPLY_STRING)
                                continue;
                        kind = doctor_classify_key(k->str, name, sizeof name);
                        if (kind == 0)
                                continue;
                        n = ns_get(f, name, true);
                        if (!n) {
                                overflow = true;
                                continue;
                        }
                        if (kind == 2)
                                n->leader = true;
                        else if (kind == 3)
                                n->fence = true;
                }
                calls++;
        } while (strcmp(cursor, "0") != 0 && calls < DOCTOR_SCAN_CALLS_MAX && now_usec() < deadline);

        f->scan_complete = strcmp(cursor, "0") == 0 && !overflow;
        if (!f->scan_complete)
                snprintf(f->scan_note, sizeof f->scan_note, "%s", overflow
                         ? "more than 64 namespaces: only the first 64 are judged"
                         : "the key scan stopped early (over a million keys or 3 s): namespaces may be missing");
}

/* Per namespace: the leader lock, its fence and holder; into *ret_ids the
 * ZRANGE reply of its instance ids (the most recent DOCTOR_NS_INSTANCES_MAX),
 * NULL when they could not be read.  0 or -ENOMEM. */
static int read_namespace(redisContext *c, struct ns_fact *n, redisReply **ret_ids) {
        _cleanup_free_ char *kl = key_lock(n->name, LOCK_NAME_LEADER),
                            *kf = key_lock_fence(n->name, LOCK_NAME_LEADER),
                            *kh = key_lock_holder(n->name, LOCK_NAME_LEADER), *ki = key_instances(n->name);
        _cleanup_reply_ redisReply *rl = NULL, *rf = NULL, *rh = NULL, *rz = NULL;
        char err[512];

        if (!kl || !kf || !kh || !ki)
                return -ENOMEM;
        if (redis_command(c, &rl, err, sizeof err, "EXISTS %s", kl) == 0 && rl->type == REDIS_REPLY_INTEGER)
                n->leader = rl->integer > 0;
        if (redis_command(c, &rf, err, sizeof err, "EXISTS %s", kf) == 0 && rf->type == REDIS_REPLY_INTEGER)
                n->fence = n->fence || rf->integer > 0;
        if (redis_command(c, &rh, err, sizeof err, "GET %s", kh) == 0 && rh->type == REDIS_REPLY_STRING) {
                free(n->holder);
                n->holder = strndup(rh->str, MIN(rh->len, (size_t) 256));
        }
        /* ZRANGE with negative indexes: the newest, and +zrange is all the minimal ACL user has. */
        if (redis_command(c, &rz, err, sizeof err, "ZRANGE %s -%d -1", ki, DOCTOR_NS_INSTANCES_MAX) == 0 &&
            rz->type == REDIS_REPLY_ARRAY)
                *ret_ids = TAKE_PTR(rz);
        else
                *ret_ids = NULL;
        return 0;
}

static char *reply_str(redisReply *r, size_t max) {
        if (!r || r->type != REDIS_REPLY_STRING)
                return NULL;
        return strndup(r->str, MIN(r->len, max));
}

static int64_t reply_int_str(redisReply *r) {
        int64_t v;

        if (!r || r->type != REDIS_REPLY_STRING || parse_int64(r->str, &v) < 0)
                return -1;
        return v;
}

/* One pipelined batch: TIME, then per instance HMGET of its hash and PTTL of
 * its alive key.  TIME and the PTTLs run back to back on the server, so the
 * write time computed from a PTTL is on the same clock as that TIME. */
static int read_instances_batch(struct redis_facts *f, redisContext *c, struct ns_fact *n, const char *const *ids,
                                size_t cnt) {
        size_t sent = 0, total = 1 + 2 * cnt;
        redisReply **reps = calloc(total, sizeof *reps);
        int64_t now_ms = -1, now_us;
        int r = 0;

        if (!reps)
                return -ENOMEM;
        if (redisAppendCommand(c, "TIME") != REDIS_OK)
                r = -EIO;
        else
                sent++;
        for (size_t i = 0; i < cnt && r == 0; i++) {
                _cleanup_free_ char *kh = key_instance(n->name, ids[i]), *ka = key_alive(n->name, ids[i]);
                if (!kh || !ka)
                        r = -ENOMEM;
                else if (redisAppendCommand(c, "HMGET %s host last_seen ttl_ms probe", kh) != REDIS_OK ||
                         redisAppendCommand(c, "PTTL %s", ka) != REDIS_OK)
                        r = -EIO;
                else
                        sent += 2;
        }
        for (size_t i = 0; i < sent; i++) {
                void *p = NULL;
                if (redis_ctx_get_reply(c, &p) != REDIS_OK) {
                        r = -EIO;
                        break;
                }
                reps[i] = p;
        }
        if (r == 0 && time_reply_usec(reps[0], &now_us) == 0)
                now_ms = now_us / 1000;
        for (size_t i = 0; r == 0 && i < cnt; i++) {
                redisReply *h = reps[1 + 2 * i], *t = reps[2 + 2 * i];
                struct inst_fact *x;

                if (reply_is_error(h) || h->type != REDIS_REPLY_ARRAY || h->elements != 4 || reply_is_error(t) ||
                    t->type != REDIS_REPLY_INTEGER)
                        continue;
                if (t->integer == -2)
                        continue; /* alive key gone: lost or stopped, nothing to compare */
                n->alive++;
                if (f->n_inst >= DOCTOR_INSTANCES_MAX)
                        continue; /* counted, not examined */
                x = &f->inst[f->n_inst];
                *x = (struct inst_fact) {
                        .ns = (size_t) (n - f->ns),
                        .id = strdup(ids[i]),
                        .host = reply_str(h->element[0], NAME_MAX_LEN),
                        .probe = reply_str(h->element[3], 16),
                        .last_seen = reply_int_str(h->element[1]),
                        .ttl_ms = reply_int_str(h->element[2]),
                        .pttl = t->integer,
                        .now_ms = now_ms,
                };
                f->n_inst++;
                if (!x->id) {
                        r = -ENOMEM;
                        break;
                }
        }
        for (size_t i = 0; i < total; i++)
                if (reps[i])
                        freeReplyObject(reps[i]);
        free(reps);
        return r;
}

/* The instances named in ids (a ZRANGE reply; invalid names skipped), counted
 * into n->instances and read DOCTOR_BATCH a round trip. */
static int read_instances(struct redis_facts *f, redisContext *c, struct ns_fact *n, const redisReply *ids) {
        const char *batch[DOCTOR_BATCH];
        size_t k = 0;
        int r = 0;

        for (size_t i = 0; i < ids->elements && r == 0; i++) {
                const redisReply *e = ids->element[i];

                if (e->type != REDIS_REPLY_STRING || !name_is_valid(e->str))
                        continue;
                n->instances++;
                batch[k++] = e->str;
                if (k == DOCTOR_BATCH) {
                        r = read_instances_batch(f, c, n, batch, k);
                        k = 0;
                }
        }
        if (r == 0 && k > 0)
                r = read_instances_batch(f, c, n, batch, k);
        return r;
}

static int collect_namespaces(struct redis_facts *f, redisContext *c, const struct doctor_args *a,
                              const struct loaded_config *cfgs, size_t n_cfgs) {
        int r;

        f->inst = calloc(DOCTOR_INSTANCES_MAX, sizeof *f->inst);
        if (!f->inst)
                return -ENOMEM;
        /* Names we were told about are looked at even when SCAN misses or refuses
         * them; first, so they always have a place. */
        if (a->ns)
                (void) ns_get(f, a->ns, true);
        for (size_t i = 0; i < n_cfgs; i++)
                (void) ns_get(f, cfgs[i].cfg.ns, true);
        (void) ns_get(f, namespace_default(), true); /* $COORD_NAMESPACE when valid */
        (void) ns_get(f, "default", true);
        scan_namespaces(f, c);

        for (size_t i = 0; i < f->n_ns; i++) {
                _cleanup_reply_ redisReply *ids = NULL;

                r = read_namespace(c, &f->ns[i], &ids);
                if (r == 0 && ids)
                        r = read_instances(f, c, &f->ns[i], ids);
                if (r < 0)
                        return r;
        }
        /* Candidates that turned out empty add nothing: drop them, the scan's finds stay. */
        for (size_t i = f->n_ns; i-- > 0;) {
                struct ns_fact *n = &f->ns[i];
                if (n->instances == 0 && !n->leader && !n->fence && !(a->ns && strcmp(a->ns, n->name) == 0)) {
                        free(n->holder);
                        memmove(n, n + 1, (f->n_ns - i - 1) * sizeof *n);
                        f->n_ns--;
                        for (size_t k = 0; k < f->n_inst; k++)
                                if (f->inst[k].ns > i)
                                        f->inst[k].ns--;
                }
        }
        return 0;
}

static const char *safe_name(const char *s) {
        return s && name_is_valid(s) ? s : "(unnamed)";
}

static int check_instances(struct doctor_report *rep, const struct redis_facts *f, const char *focus) {
        _cleanup_free_ struct doctor_skew *sk = calloc(f->n_inst + 1, sizeof *sk);
        _cleanup_free_ struct doctor_probe *pr = calloc(f->n_inst + 1, sizeof *pr);
        char msg[DOCTOR_MESSAGE_MAX];
        size_t ns = 0, np = 0;

        if (!sk || !pr)
                return -ENOMEM;
        for (size_t i = 0; i < f->n_inst; i++) {
                const struct inst_fact *x = &f->inst[i];

                /* The per-instance checks look at --namespace only, else everywhere. */
                if (focus && strcmp(focus, f->ns[x->ns].name) != 0)
                        continue;
                pr[np++] = (struct doctor_probe) { .id = safe_name(x->id), .host = safe_name(x->host),
                                                   .probe = x->probe };
                if (x->last_seen > 0 && x->now_ms > 0)
                        sk[ns++] = (struct doctor_skew) {
                                .host = safe_name(x->host),
                                .skew_ms = doctor_skew_ms(x->last_seen, x->ttl_ms, x->pttl, x->now_ms),
                        };
        }
        (void) doctor_report_add(rep, "clock-skew", doctor_check_skew(sk, ns, msg, sizeof msg), msg);
        (void) doctor_report_add(rep, "health-checks", doctor_check_probes(pr, np, msg, sizeof msg), msg);
        return 0;
}

static void check_local_clock(struct doctor_report *rep, redisContext *c) {
        int64_t best_off = 0;
        uint64_t best_rtt = UINT64_MAX;
        char msg[DOCTOR_MESSAGE_MAX];

        /* Three samples; the shortest round trip bounds the error best. */
        for (int i = 0; i < 3; i++) {
                uint64_t t0 = now_realtime_usec(), m0 = now_usec(), rtt;
                int64_t redis_us;
                if (redis_time_usec(c, &redis_us) < 0)
                        break;
                rtt = now_usec() - m0;
                if (rtt < best_rtt) {
                        best_rtt = rtt;
                        best_off = (int64_t) (t0 + rtt / 2) - redis_us;
                }
        }
        if (best_rtt == UINT64_MAX) {
                (void) doctor_report_add(rep, "local-clock", DOCTOR_SKIP, "TIME is not permitted");
                return;
        }
        (void) doctor_report_add(rep, "local-clock", doctor_check_local_clock(best_off, best_rtt, msg, sizeof msg),
                                 msg);
}

static void report_redis_skipped(struct doctor_report *rep, const char *why) {
        static const char *const dependent[] = { "redis-version", "persistence", "eviction", "namespaces",
                                                 "clock-skew",    "local-clock", "health-checks" };

        for (size_t i = 0; i < ELEMENTSOF(dependent); i++)
                (void) doctor_report_add(rep, dependent[i], DOCTOR_SKIP, why);
}

static void report_namespaces(struct doctor_report *rep, const struct redis_facts *f, const char *focus) {
        _cleanup_free_ struct doctor_ns *ns = calloc(f->n_ns + 1, sizeof *ns);
        char msg[DOCTOR_MESSAGE_MAX];

        if (!ns) {
                (void) doctor_report_add(rep, "namespaces", DOCTOR_SKIP, "out of memory");
                return;
        }
        for (size_t i = 0; i < f->n_ns; i++)
                ns[i] = (struct doctor_ns) { .name = f->ns[i].name, .instances = f->ns[i].instances,
                                             .alive = f->ns[i].alive, .leader = f->ns[i].leader,
                                             .fence = f->ns[i].fence };
        (void) doctor_report_add(rep, "namespaces",
                                 doctor_check_namespaces(ns, f->n_ns, focus, f->scan_complete,
                                                         f->scan_note[0] ? f->scan_note : NULL, msg, sizeof msg),
                                 msg);
}

/* The Redis half of the checks.  Returns true when Redis answered. */
static bool check_redis(struct doctor_report *rep, struct redis_facts *f, const struct redis_url *u,
                        const char *source, const struct doctor_args *a, const struct loaded_config *cfgs,
                        size_t n_cfgs) {
        _cleanup_(redis_ctx_freep) redisContext *c = NULL;
        _cleanup_free_ char *where = u ? redis_url_to_string_masked(u) : NULL, *server = NULL;
        char err[512] = "";
        int r;

        if (!u) {
                (void) doctor_report_add(rep, "redis", DOCTOR_SKIP,
                                         "no Redis given (--redis, COORD_REDIS, or a --config file with redis or a "
                                         "readable redis_file)");
                report_redis_skipped(rep, "no Redis given");
                return false;
        }
        r = redis_connect(u, DOCTOR_CMD_TIMEOUT_USEC, &c, err, sizeof err);
        if (r < 0) {
                (void) doctor_report_addf(rep, "redis", DOCTOR_FAIL, "cannot reach %s (%s): %s%s",
                                          where ? where : "Redis", source, err,
                                          r == -EACCES ? "; check the user and password" : "");
                report_redis_skipped(rep, "Redis not reachable");
                return false;
        }
        f->connected = true;
        check_redis_role(rep, c, where ? where : "Redis", source);
        /* Asked once: the version and, when CONFIG GET is refused, the uptime. */
        server = redis_info(c, "server", err, sizeof err);
        check_redis_version(rep, c, server);
        check_persistence(rep, c, server);
        check_eviction(rep, c);

        r = collect_namespaces(f, c, a, cfgs, n_cfgs);
        if (r < 0)
                (void) doctor_report_addf(rep, "namespaces", DOCTOR_SKIP, "reading the fleet failed: %s",
                                          c->err ? c->errstr : strerror(-r));
        else
                report_namespaces(rep, f, a->ns);
        (void) check_instances(rep, f, a->ns);
        if (!c->err)
                check_local_clock(rep, c);
        else
                (void) doctor_report_add(rep, "local-clock", DOCTOR_SKIP, "the Redis connection failed");
        return true;
}

/* ---- coordinatord ---- */

struct url_fact {
        char *url;
        long leader_status;
        char *leader;
        int64_t term;
};

static char *json_str_dup(json_t *o, const char *k) {
        const char *s = json_string_value(json_object_get(o, k));
        return s ? deploy_clean_text(s) : NULL;
}

/* Find the namespace whose leader lock holder is "LEADER, fence TERM". */
static const struct ns_fact *leader_namespace(const struct redis_facts *f, const char *leader, int64_t term) {
        char want[NAME_MAX_LEN * 4 + 64];

        if (!leader)
                return NULL;
        snprintf(want, sizeof want, "%s, fence %lld", leader, (long long) term);
        for (size_t i = 0; i < f->n_ns; i++)
                if (f->ns[i].holder && strcmp(f->ns[i].holder, want) == 0)
                        return &f->ns[i];
        return NULL;
}

static long http_status(const struct coordctl_globals *g, size_t i, const char *method, const char *path,
                        char **ret_body) {
        _cleanup_free_ char *body = NULL, *err = NULL;
        long status = 0;

        if (coordctl_http_once(g, i, method, path, NULL, NULL, &status, &body, &err) < 0)
                return 0;
        if (ret_body)
                *ret_body = TAKE_PTR(body);
        return status;
}

/* /health/ready and /v1/leader of base URL number i; false when it cannot be reached. */
static bool probe_url(struct doctor_report *rep, const struct coordctl_globals *g, size_t i, bool url_explicit,
                      struct url_fact *u) {
        _cleanup_free_ char *body = NULL, *err = NULL, *lbody = NULL;
        long status = 0;

        u->url = coordctl_url_base(g, i);
        if (!u->url)
                return false;
        if (coordctl_http_once(g, i, "GET", "/health/ready", NULL, NULL, &status, &body, &err) < 0) {
                if (url_explicit)
                        (void) doctor_report_addf(rep, "coordinatord", DOCTOR_FAIL,
                                                  "cannot reach %s; is coordinatord running there, and is --url right?",
                                                  err ? err : u->url);
                else
                        (void) doctor_report_addf(rep, "coordinatord", DOCTOR_SKIP,
                                                  "nothing answers at the default %s (give --url or COORD_URL)",
                                                  u->url);
                return false;
        }
        if (status == 200)
                (void) doctor_report_addf(rep, "coordinatord", DOCTOR_OK, "%s is ready (Redis up, fleet loaded)",
                                          u->url);
        else {
                _cleanup_json_ json_t *j = json_loads(body, 0, NULL);
                json_t *redis = json_object_get(json_object_get(j, "checks"), "redis");
                const char *rstat = json_string_value(json_object_get(redis, "status"));
                _cleanup_free_ char *rerr = json_str_dup(redis, "error");
                bool down = rstat && strcmp(rstat, "up") != 0;

                (void) doctor_report_addf(rep, "coordinatord", DOCTOR_FAIL, "%s is not ready (%ld)%s%s%s", u->url,
                                          status, down ? ": Redis " : "", down ? (rerr ? rerr : rstat) : "",
                                          down ? "; check coordinatord's redis setting and the network" : "");
        }
        u->leader_status = http_status(g, i, "GET", "/v1/leader", &lbody);
        if (u->leader_status == 200) {
                _cleanup_json_ json_t *j = json_loads(lbody, 0, NULL);
                u->leader = json_str_dup(j, "leader");
                u->term = (int64_t) json_integer_value(json_object_get(j, "term"));
        }
        return true;
}

/* The token's role, asked of base URL number i.  Auth is checked before the
 * body: without one, the deploy and admin requests answer 403 (role too low) or
 * 400 (allowed, body missing), and change nothing. */
static void report_token(struct doctor_report *rep, const struct coordctl_globals *g, size_t i) {
        char msg[DOCTOR_MESSAGE_MAX];
        long rs, ds = 0, as = 0;

        rs = http_status(g, i, "GET", "/v1/instances?state=healthy", NULL);
        if (rs == 200) {
                ds = http_status(g, i, "POST", "/v1/deployments", NULL);
                if (ds == 400)
                        as = http_status(g, i, "PUT", "/v1/config/coord-doctor", NULL);
        }
        (void) doctor_report_add(rep, "token", doctor_check_token(g->token != NULL, rs, ds, as, msg, sizeof msg),
                                 msg);
}

/* The API half.  Returns true when some coordinatord answered. */
static bool check_coordinatord(struct doctor_report *rep, const struct coordctl_globals *g, bool url_explicit,
                               const struct redis_facts *f) {
        size_t n = MAX(coordctl_url_count(g), (size_t) 1), first = SIZE_MAX;
        _cleanup_free_ struct url_fact *u = calloc(n, sizeof *u);
        _cleanup_free_ struct doctor_leader *lv = calloc(n, sizeof *lv);
        char msg[DOCTOR_MESSAGE_MAX];

        if (!u || !lv)
                return false;
        for (size_t i = 0; i < n; i++)
                if (probe_url(rep, g, i, url_explicit, &u[i]) && first == SIZE_MAX)
                        first = i;
        for (size_t i = 0; i < n; i++) {
                const struct ns_fact *ns = f->connected ? leader_namespace(f, u[i].leader, u[i].term) : NULL;
                const char *other = NULL;
                for (size_t k = 0; ns && k < f->n_ns && !other; k++)
                        if (&f->ns[k] != ns && f->ns[k].alive > 0)
                                other = f->ns[k].name;
                lv[i] = (struct doctor_leader) { .url = u[i].url ? u[i].url : "?", .status = u[i].leader_status,
                                                 .leader = u[i].leader, .term = u[i].term,
                                                 .ns = ns ? ns->name : NULL, .ns_alive = ns ? ns->alive : 0,
                                                 .agents_ns = other };
        }
        if (first != SIZE_MAX) {
                (void) doctor_report_add(rep, "leader", doctor_check_leader(lv, n, f->connected, msg, sizeof msg),
                                         msg);
                report_token(rep, g, first);
        } else {
                (void) doctor_report_add(rep, "leader", DOCTOR_SKIP, "no coordinatord reached");
                (void) doctor_report_add(rep, "token", DOCTOR_SKIP, "no coordinatord reached");
        }
        for (size_t i = 0; i < n; i++) {
                free(u[i].url);
                free(u[i].leader);
        }
        return first != SIZE_MAX;
}

/* ---- files ---- */

/* A systemd credential: it exists only while its unit runs, owned by the unit's user. */
static bool path_is_credential(const char *path) {
        static const char dir[] = "/run/credentials/";

        return strncmp(path, dir, sizeof dir - 1) == 0;
}

static void check_one_file(struct doctor_report *rep, const char *path, const char *what, bool group_ok,
                           uid_t expected_uid, bool any_owner) {
        char msg[DOCTOR_MESSAGE_MAX], owner[64];
        struct passwd pw, *pwr = NULL;
        char pwbuf[1024];
        struct stat st;

        if (stat(path, &st) < 0) {
                if (errno == ENOENT && path_is_credential(path))
                        (void) doctor_report_addf(rep, "secret-file", DOCTOR_SKIP,
                                                  "%s (%s) does not exist here: systemd credentials exist only "
                                                  "while their unit runs (check the LoadCredential= source file)",
                                                  path, what);
                else if (errno == ENOENT && group_ok)
                        (void) doctor_report_addf(rep, "secret-file", DOCTOR_SKIP,
                                                  "%s (%s) does not exist yet (the agent writes it)", path, what);
                else
                        (void) doctor_report_addf(rep, "secret-file", DOCTOR_WARN, "%s (%s): %s", path, what,
                                                  strerror(errno));
                return;
        }
        if (getpwuid_r(st.st_uid, &pw, pwbuf, sizeof pwbuf, &pwr) == 0 && pwr)
                snprintf(owner, sizeof owner, "%s", pwr->pw_name);
        else
                owner[0] = '\0';
        struct doctor_file df = {
                .path = path,
                .what = what,
                .mode = st.st_mode,
                .uid = st.st_uid,
                .owner = owner[0] ? owner : NULL,
                .owner_ok = any_owner || st.st_uid == 0 || st.st_uid == expected_uid,
                .group_expected = group_ok,
        };
        (void) doctor_report_add(rep, "secret-file", doctor_check_file(&df, msg, sizeof msg), msg);
}

/* Secrets written into the config itself (named, never shown): WARN, FAIL when
 * everyone can read the file. */
static void report_inline_secrets(struct doctor_report *rep, const struct loaded_config *lc) {
        const struct doctor_config *c = &lc->cfg;
        bool everyone = lc->st.st_mode & S_IROTH;
        char msg[DOCTOR_MESSAGE_MAX];

        snprintf(msg, sizeof msg, "%s holds ", lc->path);
        for (size_t k = 0; k < c->n_inline && k < NAMES_SHOWN; k++)
                msg_append(msg, sizeof msg, "%s%s", k == 0 ? "" : ", ", c->inline_secrets[k]);
        if (c->n_inline > NAMES_SHOWN)
                msg_append(msg, sizeof msg, " and %zu more", c->n_inline - NAMES_SHOWN);
        msg_append(msg, sizeof msg,
                   " inline%s; move %s to a file named by the *_file key (or a systemd credential)%s",
                   everyone ? " and is readable by everyone" : "", c->n_inline == 1 ? "it" : "them",
                   everyone ? ", and chmod 0600 the config" : "");
        (void) doctor_report_add(rep, "inline-secret", everyone ? DOCTOR_FAIL : DOCTOR_WARN, msg);
}

static void check_files(struct doctor_report *rep, const struct loaded_config *cfgs, size_t n) {
        const char *tf = getenv("COORD_TOKEN_FILE");
        char what[KEYPATH_MAX + 128], msg[DOCTOR_MESSAGE_MAX];

        if (n >= 2) {
                struct doctor_config_ns cn[DOCTOR_CONFIG_MAX];
                for (size_t i = 0; i < n; i++)
                        cn[i] = (struct doctor_config_ns) { .path = cfgs[i].path, .agent = cfgs[i].cfg.agent,
                                                            .ns = cfgs[i].cfg.ns };
                (void) doctor_report_add(rep, "config-namespace",
                                         doctor_check_config_namespaces(cn, n, msg, sizeof msg), msg);
        }
        for (size_t i = 0; i < n; i++) {
                const struct doctor_config *c = &cfgs[i].cfg;
                /* /run/credentials/ files belong to the unit's user; elsewhere root or the
                 * owner of the config file that names them (the user the daemon runs as). */
                for (size_t k = 0; k < c->n_files; k++) {
                        snprintf(what, sizeof what, "%s in %s", c->file_keys[k], cfgs[i].path);
                        check_one_file(rep, c->file_paths[k], what, c->file_group_ok[k], cfgs[i].st.st_uid,
                                       path_is_credential(c->file_paths[k]));
                }
                if (c->n_inline > 0)
                        report_inline_secrets(rep, &cfgs[i]);
        }
        if (tf && *tf)
                check_one_file(rep, tf, "COORD_TOKEN_FILE", false, getuid(), false);
}

/* ---- main ---- */

static int pick_redis(const struct doctor_args *a, const struct loaded_config *cfgs, size_t n, char **ret,
                      char **ret_source) {
        const char *env = getenv("COORD_REDIS");

        *ret = NULL;
        if (a->redis) {
                *ret_source = strdup("--redis");
                *ret = strdup(a->redis);
        } else if (env && *env) {
                *ret_source = strdup("COORD_REDIS");
                *ret = strdup(env);
        } else {
                for (size_t i = 0; i < n && !*ret; i++)
                        if (cfgs[i].cfg.redis) {
                                *ret_source = strdup_printf("redis in %s", cfgs[i].path);
                                *ret = strdup(cfgs[i].cfg.redis);
                        }
                for (size_t i = 0; i < n && !*ret; i++)
                        if (cfgs[i].cfg.redis_file &&
                            fileio_read_string(cfgs[i].cfg.redis_file, DOCTOR_SECRET_BYTES, true, ret) == 0)
                                *ret_source = strdup_printf("redis_file of %s", cfgs[i].path);
                if (!*ret) {
                        *ret_source = NULL;
                        return 0;
                }
        }
        if (!*ret || !*ret_source) {
                *ret = mfree(*ret);
                *ret_source = mfree(*ret_source);
                return -ENOMEM;
        }
        return 0;
}

int coordctl_doctor_main(int argc, char **argv, const struct coordctl_globals *g) {
        struct doctor_args a = {};
        struct loaded_config cfgs[DOCTOR_CONFIG_MAX] = {};
        struct doctor_report rep = {};
        struct redis_facts facts = {};
        _cleanup_(redis_url_freep) struct redis_url *u = NULL;
        _cleanup_free_ char *redis = NULL, *source = NULL, *listen_url = NULL;
        struct coordctl_globals gg = *g;
        const char *env_url = getenv("COORD_URL");
        bool url_explicit, reached;
        char err[512];
        int r, ret = EXIT_FAILED;

        r = parse_args(argc, argv, &a);
        if (r != 0)
                return r > 0 ? EXIT_OK : EXIT_USAGE;
        (void) signal(SIGPIPE, SIG_IGN);

        for (size_t i = 0; i < a.n_configs; i++)
                if (load_config(a.configs[i], &cfgs[i]) < 0) {
                        ret = EXIT_USAGE;
                        goto out;
                }

        if (pick_redis(&a, cfgs, a.n_configs, &redis, &source) < 0)
                goto out;
        if (redis && redis_url_parse(redis, &u, err, sizeof err) < 0) {
                fprintf(stderr, "coordctl doctor: %s: %s\n", source, err);
                ret = EXIT_USAGE;
                goto out;
        }
        if (u && u->ssl && tls_setup_from_env(err, sizeof err) < 0) {
                fprintf(stderr, "coordctl doctor: %s\n", err);
                ret = EXIT_USAGE;
                goto out;
        }

        /* The built-in default URL counts as "not given": nothing there is a skip, not a FAIL. */
        url_explicit = (env_url && *env_url) || strcmp(g->url, "http://127.0.0.1:8470") != 0;
        for (size_t i = 0; i < a.n_configs && !url_explicit; i++) {
                if (cfgs[i].cfg.agent || !cfgs[i].cfg.listen)
                        continue;
                listen_url = doctor_listen_to_url(cfgs[i].cfg.listen);
                if (listen_url) {
                        gg.url = listen_url;
                        url_explicit = true;
                }
        }

        reached = check_redis(&rep, &facts, u, source, &a, cfgs, a.n_configs);
        reached = check_coordinatord(&rep, &gg, url_explicit, &facts) || reached;
        check_files(&rep, cfgs, a.n_configs);

        if (g->output == OUTPUT_JSON) {
                _cleanup_json_ json_t *j = doctor_render_json(&rep);
                _cleanup_free_ char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
                if (!s)
                        goto out;
                printf("%s\n", s);
        } else {
                const char *term = getenv("TERM"), *nc = getenv("NO_COLOR");
                bool colour = isatty(STDOUT_FILENO) && term && *term && strcmp(term, "dumb") != 0 && !(nc && *nc);
                _cleanup_free_ char *s = doctor_render_text(&rep, colour);
                if (!s)
                        goto out;
                fputs(s, stdout);
        }
        fflush(stdout);
        ret = doctor_exit_code(&rep, reached);
out:
        for (size_t i = 0; i < a.n_configs; i++)
                doctor_config_done(&cfgs[i].cfg);
        redis_facts_done(&facts);
        doctor_report_done(&rep);
        return ret;
}
