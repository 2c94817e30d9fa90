/* The deployment record as JSON (rollout.h).  The stored form is the API's
 * deployment JSON plus "_" objects holding what only the controller needs
 * (times as ms, command ids, flags), so the API shows a record by deleting
 * the "_" keys. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"
#include "jsonutil.h"
#include "rollout.h"
#include "strutil.h"

#define MAX_PARALLEL_MAX 100000
#define CANARY_MAX 100000
#define INSTANCES_MAX 100000

static json_t *str_or_null(const char *s) {
        return s ? json_string(s) : json_null();
}

static json_t *time_or_null(int64_t ms) {
        char ts[40];

        if (ms <= 0)
                return json_null();
        return json_string(format_rfc3339((uint64_t) ms * USEC_PER_MSEC, ts, sizeof ts));
}

static json_t *duration_json(int64_t ms) {
        char buf[DURATION_MAX];
        return json_string(duration_format((uint64_t) ms * USEC_PER_MSEC, buf, sizeof buf));
}

json_t *rollout_strategy_to_json(const struct rollout_strategy *s) {
        return json_pack("{s:I,s:I,s:o,s:o,s:o,s:o,s:b}", "max_parallel", (json_int_t) s->max_parallel, "canary",
                         (json_int_t) s->canary, "min_healthy_time", duration_json(s->min_healthy_ms),
                         "healthy_deadline", duration_json(s->healthy_deadline_ms), "progress_deadline",
                         duration_json(s->progress_deadline_ms), "drain_delay", duration_json(s->drain_delay_ms),
                         "auto_revert", (int) s->auto_revert);
}

static json_t *migration_to_json(const struct rollout_migration *m, bool internal) {
        json_t *j;

        if (m->state == MIG_NONE)
                return json_null();
        j = json_pack("{s:s,s:o,s:o,s:o,s:o}", "state", mig_state_to_string(m->state), "instance",
                      str_or_null(m->instance), "exit_code",
                      m->has_exit ? json_integer((json_int_t) m->exit_code) : json_null(), "error",
                      str_or_null(m->error), "output", str_or_null(m->output));
        if (j && internal)
                json_object_set_new(j, "_", json_pack("{s:o}", "cmd", str_or_null(m->cmd)));
        return j;
}

json_t *rollout_instance_to_json(const struct rollout_instance *x, bool internal) {
        json_t *j = json_pack("{s:s,s:o,s:s,s:o,s:o,s:o,s:b,s:b,s:b,s:o,s:o}", "id", x->id, "host",
                              str_or_null(x->host), "state", step_state_to_string(x->state), "from",
                              str_or_null(x->from), "to", str_or_null(x->to), "error", str_or_null(x->error), "lost",
                              (int) x->lost, "skipped", (int) x->skipped, "canary", (int) x->canary, "started_at",
                              time_or_null(x->started_at), "updated_at", time_or_null(x->updated_at));

        if (j && internal)
                json_object_set_new(
                        j, "_",
                        json_pack("{s:o,s:s,s:b,s:b,s:I,s:I,s:I,s:s,s:I,s:I}", "cmd", str_or_null(x->cmd), "cmd_type",
                                  command_type_to_string(x->cmd_type), "drained", (int) x->drained, "changed",
                                  (int) x->changed, "wait_until", (json_int_t) x->wait_until, "deadline",
                                  (json_int_t) x->deadline, "healthy_since", (json_int_t) x->healthy_since, "rv",
                                  revert_state_to_string(x->rv), "started_at", (json_int_t) x->started_at,
                                  "updated_at", (json_int_t) x->updated_at));
        return j;
}

json_t *rollout_to_json(const struct rollout *d, bool internal) {
        _cleanup_json_ json_t *j = rollout_header_to_json(d, internal);
        json_t *arr = json_array();

        if (!j || !arr || json_object_set_new(j, "instances", arr) < 0)
                return NULL;
        for (size_t i = 0; i < d->n_instances; i++)
                if (json_array_append_new(arr, rollout_instance_to_json(&d->instances[i], internal)) < 0)
                        return NULL;
        return TAKE_PTR(j);
}

static int instance_json_cmp(const void *a, const void *b) {
        const char *x = json_string_value(json_object_get(*(json_t *const *) a, "id"));
        const char *y = json_string_value(json_object_get(*(json_t *const *) b, "id"));
        return strcmp(x ? x : "", y ? y : "");
}

int rollout_json_attach_instances(json_t *header, const char *const *values, const size_t *lens, size_t n) {
        _cleanup_free_ json_t **v = calloc(n + 1, sizeof *v);
        json_t *arr = json_array();
        int r = 0;

        if (!v || !arr) {
                json_decref(arr);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                v[i] = json_loadb(values[i], lens[i], 0, NULL);
                if (!json_is_object(v[i]))
                        r = -EINVAL;
        }
        if (r == 0) {
                qsort(v, n, sizeof *v, instance_json_cmp);
                for (size_t i = 0; i < n; i++)
                        json_array_append(arr, v[i]);
                r = json_object_set_new(header, "instances", arr) < 0 ? -ENOMEM : 0;
                arr = NULL;
        }
        for (size_t i = 0; i < n; i++)
                json_decref(v[i]);
        json_decref(arr);
        return r;
}

json_t *rollout_header_to_json(const struct rollout *d, bool internal) {
        _cleanup_json_ json_t *j = NULL;
        struct rollout_progress p;

        rollout_progress(d, &p);
        j = json_pack("{s:s,s:s,s:s,s:o,s:s,s:s,s:b,s:o,s:o,s:o,s:o,s:o,s:o,s:{s:o,s:o},s:o,s:o}", "id", d->id,
                      "service", d->service, "version", d->version, "previous_version",
                      str_or_null(d->previous_version), "state", dep_state_to_string(d->state), "phase",
                      dep_state_to_string(d->phase), "migrate", (int) d->migrate, "strategy",
                      rollout_strategy_to_json(&d->strategy), "created_at", time_or_null(d->created_at),
                      "updated_at", time_or_null(d->updated_at), "finished_at", time_or_null(d->finished_at),
                      "progress_deadline_at",
                      dep_state_is_terminal(d->state) || d->state == DEP_PAUSED
                              ? json_null()
                              : time_or_null(d->progress_at + d->strategy.progress_deadline_ms),
                      "progress", rollout_progress_to_json(&p), "migrations", "pre",
                      migration_to_json(&d->pre, internal), "post", migration_to_json(&d->post, internal),
                      "error", str_or_null(d->error), "created_by", str_or_null(d->created_by));
        if (!j)
                return NULL;
        if (internal) {
                const struct rollout_strategy *s = &d->strategy;
                json_t *in = json_pack("{s:{s:I,s:I,s:I,s:I,s:I,s:I,s:b},s:I,s:I,s:I,s:I,s:I,s:b}", "strategy",
                                       "max_parallel", (json_int_t) s->max_parallel, "canary",
                                       (json_int_t) s->canary, "min_healthy_ms", (json_int_t) s->min_healthy_ms,
                                       "healthy_deadline_ms", (json_int_t) s->healthy_deadline_ms,
                                       "progress_deadline_ms", (json_int_t) s->progress_deadline_ms,
                                       "drain_delay_ms", (json_int_t) s->drain_delay_ms, "auto_revert",
                                       (int) s->auto_revert, "created_at", (json_int_t) d->created_at, "updated_at",
                                       (json_int_t) d->updated_at, "finished_at", (json_int_t) d->finished_at,
                                       "progress_at", (json_int_t) d->progress_at, "next_cmd",
                                       (json_int_t) d->next_cmd, "planned", (int) d->planned);
                if (!in || json_object_set_new(j, "_", in) < 0)
                        return NULL;
        }
        return TAKE_PTR(j);
}

void rollout_json_strip_internal(json_t *j) {
        json_t *v, *m;
        size_t i;

        json_object_del(j, "_");
        json_array_foreach(json_object_get(j, "instances"), i, v)
                json_object_del(v, "_");
        m = json_object_get(j, "migrations");
        json_object_del(json_object_get(m, "pre"), "_");
        json_object_del(json_object_get(m, "post"), "_");
}

/* ---- parsing the stored form ---- */

struct parser {
        char *errbuf;
        size_t errlen;
        int r;
};

static void perr(struct parser *p, const char *fmt, ...) _printf_(2, 3);
static void perr(struct parser *p, const char *fmt, ...) {
        va_list ap;

        if (p->r < 0)
                return;
        p->r = -EINVAL;
        va_start(ap, fmt);
        errbuf_vprintf(p->errbuf, p->errlen, fmt, ap);
        va_end(ap);
}

static char *get_str(struct parser *p, json_t *o, const char *key, bool required) {
        json_t *v = json_object_get(o, key);
        char *s;

        if (!v || json_is_null(v)) {
                if (required)
                        perr(p, "%s: missing", key);
                return NULL;
        }
        if (!json_is_string(v)) {
                perr(p, "%s: expected a string", key);
                return NULL;
        }
        s = strdup(json_string_value(v));
        if (!s && p->r == 0)
                p->r = -ENOMEM;
        return s;
}

static int64_t get_int(json_t *o, const char *key) {
        json_t *v = json_object_get(o, key);
        return json_is_integer(v) ? (int64_t) json_integer_value(v) : 0;
}

static bool get_bool(json_t *o, const char *key) {
        return json_is_true(json_object_get(o, key));
}

static int get_enum(struct parser *p, json_t *o, const char *key, int (*from)(const char *), int def) {
        json_t *v = json_object_get(o, key);
        int k;

        if (!v || json_is_null(v))
                return def;
        k = from(json_string_value(v));
        if (k < 0) {
                perr(p, "%s: unknown value", key);
                return def;
        }
        return k;
}

static void parse_migration(struct parser *p, json_t *j, struct rollout_migration *m) {
        if (!j || json_is_null(j))
                return;
        m->state = (enum mig_state) get_enum(p, j, "state", mig_state_from_string, MIG_NONE);
        m->instance = get_str(p, j, "instance", false);
        m->error = get_str(p, j, "error", false);
        m->output = get_str(p, j, "output", false);
        m->has_exit = json_is_integer(json_object_get(j, "exit_code"));
        m->exit_code = get_int(j, "exit_code");
        m->cmd = get_str(p, json_object_get(j, "_"), "cmd", false);
}

static void parse_instance(struct parser *p, json_t *j, struct rollout_instance *x) {
        json_t *in = json_object_get(j, "_");

        x->id = get_str(p, j, "id", true);
        x->host = get_str(p, j, "host", false);
        x->from = get_str(p, j, "from", false);
        x->to = get_str(p, j, "to", false);
        x->error = get_str(p, j, "error", false);
        x->state = (enum step_state) get_enum(p, j, "state", step_state_from_string, STEP_PENDING);
        x->lost = get_bool(j, "lost");
        x->skipped = get_bool(j, "skipped");
        x->canary = get_bool(j, "canary");
        x->cmd = get_str(p, in, "cmd", false);
        x->cmd_type = (enum command_type) get_enum(p, in, "cmd_type", command_type_from_string, COMMAND_DRAIN);
        x->drained = get_bool(in, "drained");
        x->changed = get_bool(in, "changed");
        x->wait_until = get_int(in, "wait_until");
        x->deadline = get_int(in, "deadline");
        x->healthy_since = get_int(in, "healthy_since");
        x->rv = (enum revert_state) get_enum(p, in, "rv", revert_state_from_string, RV_NONE);
        x->started_at = get_int(in, "started_at");
        x->updated_at = get_int(in, "updated_at");
        if (x->id && !name_is_valid(x->id))
                perr(p, "instances: invalid id");
}

int rollout_from_json(json_t *j, struct rollout **ret, char *errbuf, size_t errlen) {
        _cleanup_(rollout_freep) struct rollout *d = calloc(1, sizeof *d);
        struct parser p = { .errbuf = errbuf, .errlen = errlen };
        json_t *in, *st, *arr, *m;
        size_t n;

        if (!d)
                return -ENOMEM;
        if (!json_is_object(j)) {
                perr(&p, "deployment: expected an object");
                return p.r;
        }
        in = json_object_get(j, "_");
        st = json_object_get(in, "strategy");
        if (!json_is_object(in) || !json_is_object(st)) {
                perr(&p, "_: missing (not a stored deployment record)");
                return p.r;
        }
        d->id = get_str(&p, j, "id", true);
        d->service = get_str(&p, j, "service", true);
        d->version = get_str(&p, j, "version", true);
        d->previous_version = get_str(&p, j, "previous_version", false);
        d->error = get_str(&p, j, "error", false);
        d->created_by = get_str(&p, j, "created_by", false);
        d->state = (enum dep_state) get_enum(&p, j, "state", dep_state_from_string, DEP_PENDING);
        d->phase = (enum dep_state) get_enum(&p, j, "phase", dep_state_from_string, d->state);
        d->migrate = get_bool(j, "migrate");
        d->strategy = (struct rollout_strategy) {
                .max_parallel = get_int(st, "max_parallel"),
                .canary = get_int(st, "canary"),
                .min_healthy_ms = get_int(st, "min_healthy_ms"),
                .healthy_deadline_ms = get_int(st, "healthy_deadline_ms"),
                .progress_deadline_ms = get_int(st, "progress_deadline_ms"),
                .drain_delay_ms = get_int(st, "drain_delay_ms"),
                .auto_revert = get_bool(st, "auto_revert"),
        };
        if (d->strategy.max_parallel < 1)
                perr(&p, "strategy.max_parallel: must be at least 1");
        d->created_at = get_int(in, "created_at");
        d->updated_at = get_int(in, "updated_at");
        d->finished_at = get_int(in, "finished_at");
        d->progress_at = get_int(in, "progress_at");
        d->next_cmd = (uint64_t) get_int(in, "next_cmd");
        d->planned = get_bool(in, "planned");
        m = json_object_get(j, "migrations");
        parse_migration(&p, json_object_get(m, "pre"), &d->pre);
        parse_migration(&p, json_object_get(m, "post"), &d->post);

        arr = json_object_get(j, "instances");
        n = json_array_size(arr);
        if (n > INSTANCES_MAX)
                perr(&p, "instances: more than %d", INSTANCES_MAX);
        if (n > 0 && p.r == 0) {
                d->instances = calloc(n, sizeof *d->instances);
                if (!d->instances)
                        return -ENOMEM;
                for (size_t i = 0; i < n && p.r == 0; i++) {
                        parse_instance(&p, json_array_get(arr, i), &d->instances[i]);
                        d->n_instances++;
                        if (i > 0 && d->instances[i].id && d->instances[i - 1].id &&
                            strcmp(d->instances[i - 1].id, d->instances[i].id) >= 0)
                                perr(&p, "instances: not sorted by id");
                }
        }
        if (p.r < 0)
                return p.r;
        if (d->id && !name_is_valid(d->id))
                perr(&p, "id: invalid");
        if (d->service && !name_is_valid(d->service))
                perr(&p, "service: invalid");
        if (p.r < 0)
                return p.r;
        *ret = TAKE_PTR(d);
        return 0;
}

/* ---- the API request's strategy ---- */

static int strategy_int(json_t *s, const char *key, int64_t min, int64_t max, int64_t *ret, char *errbuf,
                        size_t errlen) {
        json_t *v = json_object_get(s, key);

        if (!v || json_is_null(v))
                return 0;
        if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
                snprintf(errbuf, errlen, "strategy.%s: expected an integer from %lld to %lld", key, (long long) min,
                         (long long) max);
                return -EINVAL;
        }
        *ret = (int64_t) json_integer_value(v);
        return 0;
}

static int strategy_duration(json_t *s, const char *key, bool allow_zero, int64_t *ret, char *errbuf,
                             size_t errlen) {
        json_t *v = json_object_get(s, key);
        uint64_t usec;

        if (!v || json_is_null(v))
                return 0;
        if (!json_is_string(v) || duration_parse(json_string_value(v), &usec) < 0) {
                snprintf(errbuf, errlen, "strategy.%s: expected a duration with a unit (\"250ms\", \"30s\", \"5m\")",
                         key);
                return -EINVAL;
        }
        if (usec > (uint64_t) 7 * 24 * 3600 * USEC_PER_SEC || (!allow_zero && usec == 0)) {
                snprintf(errbuf, errlen, "strategy.%s: must be %sat most 7 days", key,
                         allow_zero ? "" : "more than 0 and ");
                return -EINVAL;
        }
        *ret = (int64_t) (usec / USEC_PER_MSEC);
        return 0;
}

int rollout_strategy_from_json(json_t *j, struct rollout_strategy *ret, char *errbuf, size_t errlen) {
        static const char *const known[] = { "max_parallel",      "canary",      "min_healthy_time",
                                             "healthy_deadline",  "progress_deadline", "drain_delay",
                                             "auto_revert",       NULL };
        struct rollout_strategy s;
        const char *key;
        json_t *v;

        rollout_strategy_default(&s);
        if (j && !json_is_null(j)) {
                if (!json_is_object(j)) {
                        snprintf(errbuf, errlen, "strategy: expected an object");
                        return -EINVAL;
                }
                json_object_foreach(j, key, v) {
                        bool ok = false;
                        for (size_t i = 0; known[i]; i++)
                                ok = ok || strcmp(known[i], key) == 0;
                        if (!ok) {
                                snprintf(errbuf, errlen, "strategy.%.64s: unknown field", key);
                                return -EINVAL;
                        }
                }
                if (strategy_int(j, "max_parallel", 1, MAX_PARALLEL_MAX, &s.max_parallel, errbuf, errlen) < 0 ||
                    strategy_int(j, "canary", 0, CANARY_MAX, &s.canary, errbuf, errlen) < 0 ||
                    strategy_duration(j, "min_healthy_time", true, &s.min_healthy_ms, errbuf, errlen) < 0 ||
                    strategy_duration(j, "healthy_deadline", false, &s.healthy_deadline_ms, errbuf, errlen) < 0 ||
                    strategy_duration(j, "progress_deadline", false, &s.progress_deadline_ms, errbuf, errlen) < 0 ||
                    strategy_duration(j, "drain_delay", true, &s.drain_delay_ms, errbuf, errlen) < 0)
                        return -EINVAL;
                v = json_object_get(j, "auto_revert");
                if (v && !json_is_null(v)) {
                        if (!json_is_boolean(v)) {
                                snprintf(errbuf, errlen, "strategy.auto_revert: expected true or false");
                                return -EINVAL;
                        }
                        s.auto_revert = json_is_true(v);
                }
        }
        *ret = s;
        return 0;
}
