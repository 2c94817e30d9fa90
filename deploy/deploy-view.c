/* See deploy-view.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deploy-view.h"
#include "duration.h"
#include "macro.h"

#define ID_COLUMN_MAX 32
#define STEP_COLUMN 9 /* strlen("verifying") */
#define BAR_WIDTH 20

/* A growable string; an allocation failure sticks in oom and is reported once, at the end. */
struct sbuf {
        char *p;
        size_t len, alloc;
        bool oom;
};

static void sbuf_putn(struct sbuf *b, const char *s, size_t n) {
        if (b->oom)
                return;
        if (b->len + n + 1 > b->alloc) {
                size_t a = b->alloc ? b->alloc : 128;
                while (a < b->len + n + 1)
                        a *= 2;
                char *np = realloc(b->p, a);
                if (!np) {
                        b->oom = true;
                        return;
                }
                b->p = np;
                b->alloc = a;
        }
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = '\0';
}

static void sbuf_puts(struct sbuf *b, const char *s) {
        sbuf_putn(b, s, strlen(s));
}

/* Hand out the string built (never NULL while no allocation failed); NULL and
 * nothing kept when one did. */
static char *sbuf_finish(struct sbuf *b) {
        sbuf_putn(b, "", 0);
        if (b->oom)
                return mfree(b->p);
        return b->p;
}

_printf_(2, 3) static void sbuf_printf(struct sbuf *b, const char *fmt, ...) {
        char small[256];
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(small, sizeof small, fmt, ap);
        va_end(ap);
        if (n < 0) {
                b->oom = true;
                return;
        }
        if ((size_t) n < sizeof small) {
                sbuf_putn(b, small, (size_t) n);
                return;
        }
        char *big = malloc((size_t) n + 1);
        if (!big) {
                b->oom = true;
                return;
        }
        va_start(ap, fmt);
        vsnprintf(big, (size_t) n + 1, fmt, ap);
        va_end(ap);
        sbuf_putn(b, big, (size_t) n);
        free(big);
}

/* Server text, made harmless: C0 controls, DEL and C1 controls (U+0080-U+009F,
 * "\xC2\x80"-"\xC2\x9F" in UTF-8, which some terminals obey) become spaces. */
static void sbuf_put_clean(struct sbuf *b, const char *s) {
        const unsigned char *u = (const unsigned char *) (s ? s : "");

        while (*u) {
                size_t run = 0;
                while (u[run] >= 0x20 && u[run] != 0x7f && !(u[run] == 0xc2 && u[run + 1] >= 0x80 && u[run + 1] <= 0x9f))
                        run++;
                sbuf_putn(b, (const char *) u, run);
                u += run;
                if (!*u)
                        break;
                sbuf_putn(b, " ", 1);
                u += *u == 0xc2 ? 2 : 1;
        }
}

char *deploy_clean_text(const char *s) {
        struct sbuf b = {};

        sbuf_put_clean(&b, s);
        return sbuf_finish(&b);
}

/* Display columns of UTF-8 text: one per character (no wide characters here). */
static size_t columns(const char *s, size_t n) {
        size_t c = 0;
        for (size_t i = 0; i < n; i++)
                if (((unsigned char) s[i] & 0xc0) != 0x80)
                        c++;
        return c;
}

/* Byte length of the first cols characters of s. */
static size_t prefix_bytes(const char *s, size_t n, size_t cols) {
        size_t c = 0, i = 0;
        for (; i < n; i++) {
                if (((unsigned char) s[i] & 0xc0) != 0x80) {
                        if (c == cols)
                                break;
                        c++;
                }
        }
        return i;
}

struct glyphs {
        const char *arrow, *full, *empty, *ellipsis;
};

static const struct glyphs *glyphs(bool utf8) {
        static const struct glyphs u = { "\xe2\x86\x92", "\xe2\x96\x88", "\xe2\x96\x91", "\xe2\x80\xa6" };
        static const struct glyphs a = { "->", "#", "-", "~" };
        return utf8 ? &u : &a;
}

/* Append line (without its end) to out, cut to width columns, then "\n". */
static void emit_line(struct sbuf *out, struct sbuf *line, const struct deploy_view_render_opts *o, size_t *n_lines) {
        const char *s = line->p ? line->p : "";
        size_t n = line->len;

        if (o->width > 0 && columns(s, n) > o->width) {
                if (o->width >= 2) {
                        sbuf_putn(out, s, prefix_bytes(s, n, o->width - 1));
                        sbuf_puts(out, glyphs(o->utf8)->ellipsis);
                } else
                        sbuf_putn(out, s, prefix_bytes(s, n, o->width));
        } else
                sbuf_putn(out, s, n);
        sbuf_putn(out, "\n", 1);
        if (line->oom)
                out->oom = true;
        line->len = 0;
        if (line->p)
                line->p[0] = '\0';
        (*n_lines)++;
}

static const char *const deploy_event_type_table[_DEPLOY_EVENT_TYPE_MAX] = {
        [DEPLOY_EVENT_STATE] = "state",
        [DEPLOY_EVENT_INSTANCE] = "instance",
        [DEPLOY_EVENT_MIGRATION] = "migration",
};
DEFINE_STRING_TABLE_LOOKUP(deploy_event_type, enum deploy_event_type, _DEPLOY_EVENT_TYPE_MAX)

/* Sets of the server's state names (not enum maps: the names come from the
 * server, and only membership matters); NULL is in none. */
#define IN_SET(s, set) (string_table_lookup((set), (int) ELEMENTSOF(set), (s)) >= 0)

bool deploy_state_is_terminal(const char *state) {
        static const char *const terminal_states[] = { "succeeded", "failed", "reverted", "cancelled" };

        return IN_SET(state, terminal_states);
}

bool deploy_step_is_active(const char *state) {
        static const char *const active_steps[] = { "draining", "updating", "verifying" };

        return IN_SET(state, active_steps);
}

static bool step_is_finished(const char *state) {
        static const char *const finished_steps[] = { "done", "failed", "reverted" };

        return IN_SET(state, finished_steps);
}

/* Howard Hinnant's days_from_civil: days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
        y -= m <= 2;
        int64_t era = (y >= 0 ? y : y - 399) / 400;
        unsigned yoe = (unsigned) (y - era * 400);
        unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
        unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + (int64_t) doe - 719468;
}

static bool digits(const char *s, size_t n, unsigned *ret) {
        unsigned v = 0;
        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return false;
                v = v * 10 + (unsigned) (s[i] - '0');
        }
        *ret = v;
        return true;
}

int deploy_parse_timestamp(const char *s, uint64_t *ret_usec) {
        unsigned Y, M, D, h, m, sec, oh = 0, om = 0;
        uint64_t frac = 0, frac_div = 1;
        int64_t t, off = 0;
        const char *p;

        if (!s || strlen(s) < 20)
                return -EINVAL;
        if (!digits(s, 4, &Y) || s[4] != '-' || !digits(s + 5, 2, &M) || s[7] != '-' || !digits(s + 8, 2, &D) ||
            !(s[10] == 'T' || s[10] == 't' || s[10] == ' ') || !digits(s + 11, 2, &h) || s[13] != ':' ||
            !digits(s + 14, 2, &m) || s[16] != ':' || !digits(s + 17, 2, &sec))
                return -EINVAL;
        if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
                return -EINVAL;
        p = s + 19;
        if (*p == '.') {
                p++;
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                for (; *p >= '0' && *p <= '9'; p++)
                        if (frac_div < 1000000) {
                                frac = frac * 10 + (uint64_t) (*p - '0');
                                frac_div *= 10;
                        }
        }
        if (*p == 'Z' || *p == 'z')
                p++;
        else if (*p == '+' || *p == '-') {
                if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om) || oh > 23 || om > 59)
                        return -EINVAL;
                off = (int64_t) (oh * 3600 + om * 60) * (*p == '+' ? 1 : -1);
                p += 6;
        } else
                return -EINVAL;
        if (*p)
                return -EINVAL;
        t = days_from_civil((int64_t) Y, M, D) * 86400 + (int64_t) (h * 3600 + m * 60 + sec) - off;
        if (t < 0)
                return -EINVAL;
        *ret_usec = (uint64_t) t * USEC_PER_SEC + frac * USEC_PER_SEC / frac_div;
        return 0;
}

char *deploy_format_elapsed(uint64_t usec, char *buf, size_t size) {
        uint64_t s = usec / USEC_PER_SEC;

        if (s < 60)
                snprintf(buf, size, "%" PRIu64 "s", s);
        else if (s < 3600)
                snprintf(buf, size, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
        else
                snprintf(buf, size, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, (s / 60) % 60);
        return buf;
}

/* ---- JSON access ---- */

static const char *jstr(json_t *o, const char *k) {
        return json_string_value(json_object_get(o, k));
}

/* Error fields are null, a string, or {"message": ...}. */
static const char *jtext(json_t *o, const char *k) {
        json_t *v = json_object_get(o, k);
        if (json_is_object(v))
                v = json_object_get(v, "message");
        return json_string_value(v);
}

static bool jint(json_t *o, const char *k, int64_t *ret) {
        json_t *v = json_object_get(o, k);
        if (!json_is_integer(v))
                return false;
        *ret = (int64_t) json_integer_value(v);
        return true;
}

static uint64_t jtime(json_t *o, const char *k) {
        uint64_t t = 0;
        (void) deploy_parse_timestamp(jstr(o, k), &t);
        return t;
}

/* *dst = copy of src (NULL allowed); -ENOMEM leaves *dst alone. */
static int set_str(char **dst, const char *src) {
        char *c = NULL;
        if (src && !(c = strdup(src)))
                return -ENOMEM;
        free(*dst);
        *dst = c;
        return 0;
}

/* ---- the model ---- */

struct deploy_view *deploy_view_new(void) {
        return calloc(1, sizeof(struct deploy_view));
}

static void instance_done(struct deploy_view_instance *i) {
        free(i->id);
        free(i->host);
        free(i->state);
        free(i->from);
        free(i->to);
        free(i->error);
}

static void migration_done(struct deploy_view_migration *m) {
        free(m->state);
        free(m->instance);
        free(m->error);
        *m = (struct deploy_view_migration) {};
}

static void view_done(struct deploy_view *v) {
        free(v->id);
        free(v->service);
        free(v->version);
        free(v->previous_version);
        free(v->state);
        free(v->phase);
        free(v->requested);
        free(v->error);
        free(v->strategy);
        free(v->created_at);
        free(v->updated_at);
        free(v->finished_at);
        json_decref(v->last_event);
        migration_done(&v->pre);
        migration_done(&v->post);
        for (size_t i = 0; i < v->n_instances; i++)
                instance_done(&v->instances[i]);
        free(v->instances);
}

struct deploy_view *deploy_view_free(struct deploy_view *v) {
        if (!v)
                return NULL;
        view_done(v);
        free(v);
        return NULL;
}

static void observe_clock(struct deploy_view *v, uint64_t server_usec, uint64_t now_usec) {
        if (server_usec == 0 || now_usec == 0)
                return;
        int64_t d = (int64_t) now_usec - (int64_t) server_usec;
        if (!v->has_skew || d < v->skew_usec) {
                v->skew_usec = d;
                v->has_skew = true;
        }
}

static uint64_t server_now(const struct deploy_view *v, uint64_t now_usec) {
        int64_t t = (int64_t) now_usec - (v->has_skew ? v->skew_usec : 0);
        return t > 0 ? (uint64_t) t : 0;
}

static void progress_load(struct deploy_view_progress *p, json_t *o) {
        if (!json_is_object(o))
                return;
        (void) jint(o, "total", &p->total);
        (void) jint(o, "done", &p->done);
        (void) jint(o, "failed", &p->failed);
        (void) jint(o, "lost", &p->lost);
        (void) jint(o, "reverted", &p->reverted);
}

static int migration_load(struct deploy_view_migration *m, json_t *o) {
        if (!json_is_object(o))
                return 0;
        if (set_str(&m->state, jstr(o, "state")) < 0 || set_str(&m->instance, jstr(o, "instance")) < 0 ||
            set_str(&m->error, jtext(o, "error")) < 0)
                return -ENOMEM;
        m->has_exit_code = jint(o, "exit_code", &m->exit_code);
        return 0;
}

static char *strategy_text(json_t *s) {
        struct sbuf b = {};
        const char *k;
        json_t *val;

        if (!json_is_object(s))
                return NULL;
        json_object_foreach(s, k, val) {
                if (b.len > 0)
                        sbuf_puts(&b, ", ");
                sbuf_put_clean(&b, k);
                if (json_is_integer(val))
                        sbuf_printf(&b, " %" JSON_INTEGER_FORMAT, json_integer_value(val));
                else if (json_is_string(val)) {
                        sbuf_puts(&b, " ");
                        sbuf_put_clean(&b, json_string_value(val));
                } else if (json_is_boolean(val))
                        sbuf_puts(&b, json_is_true(val) ? " true" : " false");
        }
        return sbuf_finish(&b);
}

static int instance_load(struct deploy_view_instance *i, json_t *o) {
        if (set_str(&i->id, jstr(o, "id")) < 0 || set_str(&i->host, jstr(o, "host")) < 0 ||
            set_str(&i->state, jstr(o, "state")) < 0 || set_str(&i->from, jstr(o, "from")) < 0 ||
            set_str(&i->to, jstr(o, "to")) < 0 || set_str(&i->error, jtext(o, "error")) < 0)
                return -ENOMEM;
        i->lost = json_is_true(json_object_get(o, "lost"));
        i->skipped = json_is_true(json_object_get(o, "skipped"));
        i->started_usec = jtime(o, "started_at");
        /* The record has no "step began" time; its last update is when it entered this step. */
        i->since_usec = jtime(o, "updated_at");
        i->ended_usec = step_is_finished(i->state) ? i->since_usec : 0;
        return 0;
}

int deploy_view_load(struct deploy_view *v, json_t *d, uint64_t now_usec) {
        struct deploy_view n = {};
        json_t *arr, *req, *o;
        size_t idx;
        int r = -ENOMEM;

        if (!json_is_object(d) || !jstr(d, "id"))
                return -EINVAL;
        req = json_object_get(d, "requested");
        if (json_is_object(req))
                req = json_object_get(req, "action");
        if (set_str(&n.id, jstr(d, "id")) < 0 || set_str(&n.service, jstr(d, "service")) < 0 ||
            set_str(&n.version, jstr(d, "version")) < 0 ||
            set_str(&n.previous_version, jstr(d, "previous_version")) < 0 ||
            set_str(&n.state, jstr(d, "state")) < 0 ||
            set_str(&n.phase, jstr(d, "phase") ? jstr(d, "phase") : jstr(d, "state")) < 0 ||
            set_str(&n.requested, json_is_string(req) ? json_string_value(req) : req && !json_is_null(req) ? "a change" : NULL) < 0 ||
            set_str(&n.error, jtext(d, "error")) < 0 || set_str(&n.created_at, jstr(d, "created_at")) < 0 ||
            set_str(&n.updated_at, jstr(d, "updated_at")) < 0 || set_str(&n.finished_at, jstr(d, "finished_at")) < 0)
                goto fail;
        if (json_is_object(json_object_get(d, "strategy")) && !(n.strategy = strategy_text(json_object_get(d, "strategy"))))
                goto fail;
        n.migrate = !json_is_false(json_object_get(d, "migrate"));
        n.created_usec = jtime(d, "created_at");
        n.finished_usec = jtime(d, "finished_at");
        progress_load(&n.progress, json_object_get(d, "progress"));
        o = json_object_get(d, "migrations");
        if (migration_load(&n.pre, json_object_get(o, "pre")) < 0 || migration_load(&n.post, json_object_get(o, "post")) < 0)
                goto fail;
        arr = json_object_get(d, "instances");
        if (json_array_size(arr) > 0) {
                n.instances = calloc(json_array_size(arr), sizeof *n.instances);
                if (!n.instances)
                        goto fail;
                json_array_foreach(arr, idx, o) {
                        if (!json_is_object(o) || !jstr(o, "id"))
                                continue;
                        if (instance_load(&n.instances[n.n_instances++], o) < 0)
                                goto fail;
                }
        }

        /* What the stream taught us outlives a reload. */
        n.last_event = v->last_event ? json_incref(v->last_event) : NULL;
        n.skew_usec = v->skew_usec;
        n.has_skew = v->has_skew;
        observe_clock(&n, jtime(d, "updated_at"), now_usec);
        view_done(v);
        *v = n;
        return 0;
fail:
        view_done(&n);
        return r;
}

static struct deploy_view_instance *instance_get(struct deploy_view *v, const char *id) {
        for (size_t i = 0; i < v->n_instances; i++)
                if (v->instances[i].id && strcmp(v->instances[i].id, id) == 0)
                        return &v->instances[i];

        struct deploy_view_instance *a = reallocarray(v->instances, v->n_instances + 1, sizeof *a);
        if (!a)
                return NULL;
        v->instances = a;
        a = &v->instances[v->n_instances];
        *a = (struct deploy_view_instance) { .id = strdup(id) };
        if (!a->id)
                return NULL;
        v->n_instances++;
        return a;
}

static int apply_state(struct deploy_view *v, json_t *ev, uint64_t ts) {
        const char *state = jstr(ev, "state");

        if (state) {
                if (strcmp(state, "paused") != 0) {
                        if (set_str(&v->phase, state) < 0)
                                return -ENOMEM;
                } else if (!v->phase && set_str(&v->phase, jstr(ev, "previous")) < 0)
                        return -ENOMEM;
                if (set_str(&v->state, state) < 0)
                        return -ENOMEM;
                /* The leader acted: whatever was requested has been taken up. */
                v->requested = mfree(v->requested);
                v->finished_usec = deploy_state_is_terminal(state) ? ts : 0;
        }
        if (jtext(ev, "error") && set_str(&v->error, jtext(ev, "error")) < 0)
                return -ENOMEM;
        return 0;
}

static int apply_instance(struct deploy_view *v, json_t *ev, uint64_t ts) {
        const char *id = jstr(ev, "instance"), *state = jstr(ev, "state");
        struct deploy_view_instance *i;
        json_t *x;

        if (!id)
                return 0;
        i = instance_get(v, id);
        if (!i)
                return -ENOMEM;
        if (state && (!i->state || strcmp(i->state, state) != 0)) {
                if (set_str(&i->state, state) < 0)
                        return -ENOMEM;
                i->since_usec = ts;
                if (i->started_usec == 0 && strcmp(state, "pending") != 0)
                        i->started_usec = ts;
                i->ended_usec = step_is_finished(state) ? ts : 0;
        }
        if ((jstr(ev, "host") && set_str(&i->host, jstr(ev, "host")) < 0) ||
            (jstr(ev, "from") && set_str(&i->from, jstr(ev, "from")) < 0) ||
            (jstr(ev, "to") && set_str(&i->to, jstr(ev, "to")) < 0))
                return -ENOMEM;
        if (json_object_get(ev, "error") && set_str(&i->error, jtext(ev, "error")) < 0)
                return -ENOMEM;
        if ((x = json_object_get(ev, "lost")) && json_is_boolean(x))
                i->lost = json_is_true(x);
        if ((x = json_object_get(ev, "skipped")) && json_is_boolean(x))
                i->skipped = json_is_true(x);
        return 0;
}

static int apply_migration(struct deploy_view *v, json_t *ev) {
        const char *phase = jstr(ev, "phase");
        struct deploy_view_migration *m;

        if (!phase)
                return 0;
        if (strcmp(phase, "pre") == 0 || strcmp(phase, "all") == 0)
                m = &v->pre;
        else if (strcmp(phase, "post") == 0)
                m = &v->post;
        else
                return 0;
        return migration_load(m, ev);
}

int deploy_view_apply(struct deploy_view *v, json_t *ev, uint64_t now_usec) {
        const char *type = jstr(ev, "type");
        uint64_t ts;
        int r = 0;

        if (!json_is_object(ev) || !type)
                return -EINVAL;
        ts = jtime(ev, "ts");
        observe_clock(v, ts, now_usec);
        if (!v->id && jstr(ev, "deployment") && set_str(&v->id, jstr(ev, "deployment")) < 0)
                return -ENOMEM;
        progress_load(&v->progress, json_object_get(ev, "progress"));
        switch (deploy_event_type_from_string(type)) {
        case DEPLOY_EVENT_STATE:
                r = apply_state(v, ev, ts);
                break;
        case DEPLOY_EVENT_INSTANCE:
                r = apply_instance(v, ev, ts);
                break;
        case DEPLOY_EVENT_MIGRATION:
                r = apply_migration(v, ev);
                break;
        default:
                break;
        }
        if (r < 0)
                return r;
        json_decref(v->last_event);
        v->last_event = json_incref(ev);
        return 0;
}

/* ---- rendering ---- */

static void describe_instance(struct sbuf *b, json_t *ev, const struct glyphs *g) {
        int64_t code;

        sbuf_put_clean(b, jstr(ev, "instance") ? jstr(ev, "instance") : "?");
        sbuf_puts(b, " ");
        bool revert = json_is_true(json_object_get(ev, "revert"));
        const char *from = jstr(ev, revert ? "to" : "from"), *to = jstr(ev, revert ? "from" : "to");

        sbuf_put_clean(b, jstr(ev, "state") ? jstr(ev, "state") : "?");
        if (from || to) {
                sbuf_puts(b, " ");
                sbuf_put_clean(b, from ? from : "?");
                sbuf_printf(b, " %s ", g->arrow);
                sbuf_put_clean(b, to ? to : "?");
        }
        if (revert)
                sbuf_puts(b, " (revert)");
        if (json_is_true(json_object_get(ev, "lost")))
                sbuf_puts(b, " (lost)");
        if (json_is_true(json_object_get(ev, "skipped")))
                sbuf_puts(b, " (skipped)");
        if (jint(ev, "exit_code", &code)) {
                /* A hook finished: say which, so a step's two lines differ. */
                if (jstr(ev, "hook")) {
                        sbuf_puts(b, ", ");
                        sbuf_put_clean(b, jstr(ev, "hook"));
                        sbuf_printf(b, " hook exit %" PRId64, code);
                } else if (code != 0)
                        sbuf_printf(b, " (exit %" PRId64 ")", code);
        }
        if (jtext(ev, "error")) {
                sbuf_puts(b, ": ");
                sbuf_put_clean(b, jtext(ev, "error"));
        }
}

static void describe_state(struct sbuf *b, json_t *ev) {
        const char *msg = jstr(ev, "message"), *err = jtext(ev, "error");

        sbuf_puts(b, "deployment ");
        sbuf_put_clean(b, jstr(ev, "state") ? jstr(ev, "state") : "?");
        if (msg && *msg) {
                sbuf_puts(b, ": ");
                sbuf_put_clean(b, msg);
        }
        if (err && (!msg || strcmp(err, msg) != 0)) {
                sbuf_puts(b, msg && *msg ? "; error: " : ": ");
                sbuf_put_clean(b, err);
        }
}

static void describe_migration(struct sbuf *b, bool prefix, const char *phase, const char *state,
                               const char *instance, bool has_code, int64_t code, const char *error) {
        if (prefix)
                sbuf_puts(b, "migration ");
        sbuf_put_clean(b, phase ? phase : "?");
        sbuf_puts(b, " ");
        sbuf_put_clean(b, state ? state : "?");
        if (instance) {
                sbuf_puts(b, " on ");
                sbuf_put_clean(b, instance);
        }
        if (has_code)
                sbuf_printf(b, " (exit %" PRId64 ")", code);
        if (error) {
                sbuf_puts(b, ": ");
                sbuf_put_clean(b, error);
        }
}

static void describe(struct sbuf *b, json_t *ev, bool utf8) {
        const char *type = jstr(ev, "type");
        int64_t code = 0;

        bool has;

        if (!type) {
                sbuf_puts(b, "event");
                return;
        }
        switch (deploy_event_type_from_string(type)) {
        case DEPLOY_EVENT_INSTANCE:
                describe_instance(b, ev, glyphs(utf8));
                break;
        case DEPLOY_EVENT_STATE:
                describe_state(b, ev);
                break;
        case DEPLOY_EVENT_MIGRATION:
                has = jint(ev, "exit_code", &code);
                describe_migration(b, true, jstr(ev, "phase"), jstr(ev, "state"), jstr(ev, "instance"), has, code,
                                   jtext(ev, "error"));
                break;
        default:
                sbuf_put_clean(b, type);
                sbuf_puts(b, " event");
        }
}

char *deploy_event_describe(json_t *ev, bool utf8) {
        struct sbuf b = {};

        describe(&b, ev, utf8);
        return sbuf_finish(&b);
}

/* "web 1.0 -> 2.0" */
static void put_versions(struct sbuf *b, const struct deploy_view *v, const struct glyphs *g) {
        sbuf_put_clean(b, v->service ? v->service : "?");
        if (v->previous_version) {
                sbuf_puts(b, " ");
                sbuf_put_clean(b, v->previous_version);
        }
        sbuf_printf(b, " %s ", g->arrow);
        sbuf_put_clean(b, v->version ? v->version : "?");
}

static void put_header(struct sbuf *b, const struct deploy_view *v, const struct glyphs *g) {
        sbuf_puts(b, "Deployment ");
        sbuf_put_clean(b, v->id ? v->id : "?");
        sbuf_puts(b, ": ");
        put_versions(b, v, g);
}

char *deploy_view_render_header(const struct deploy_view *v, bool utf8) {
        struct sbuf b = {};

        put_header(&b, v, glyphs(utf8));
        return sbuf_finish(&b);
}

/* "1/3 done, 1 failed", with label ("done", "instances done") after the counts. */
static void put_counts(struct sbuf *b, const struct deploy_view_progress *p, const char *label) {
        sbuf_printf(b, "%" PRId64 "/%" PRId64 " %s", p->done, p->total, label);
        if (p->failed)
                sbuf_printf(b, ", %" PRId64 " failed", p->failed);
        if (p->lost)
                sbuf_printf(b, ", %" PRId64 " lost", p->lost);
        if (p->reverted)
                sbuf_printf(b, ", %" PRId64 " reverted", p->reverted);
}

static void put_state(struct sbuf *b, const struct deploy_view *v) {
        sbuf_put_clean(b, v->state ? v->state : "unknown");
        if (v->state && v->phase && strcmp(v->state, "paused") == 0 && strcmp(v->phase, "paused") != 0) {
                sbuf_puts(b, " (in ");
                sbuf_put_clean(b, v->phase);
                sbuf_puts(b, ")");
        }
        if (v->requested) {
                sbuf_puts(b, ", ");
                sbuf_put_clean(b, v->requested);
                sbuf_puts(b, " requested");
        }
}

/* The server's "now" for the view's clocks: a finished deployment's clocks
 * stopped with it, steps left half-way included. */
static uint64_t clock_end(const struct deploy_view *v, uint64_t now_usec) {
        return v->finished_usec && deploy_state_is_terminal(v->state) ? v->finished_usec : server_now(v, now_usec);
}

/* Elapsed time of the deployment: to its end when it ended, else to now. */
static bool deployment_elapsed(const struct deploy_view *v, uint64_t now_usec, uint64_t *ret) {
        uint64_t end = clock_end(v, now_usec);

        if (v->created_usec == 0)
                return false;
        *ret = end > v->created_usec ? end - v->created_usec : 0;
        return true;
}

static void put_progress(struct sbuf *b, const struct deploy_view *v, const struct deploy_view_render_opts *o) {
        const struct glyphs *g = glyphs(o->utf8);
        unsigned w = o->width > 0 && o->width < 60 ? BAR_WIDTH / 2 : BAR_WIDTH, fill = 0;
        char el[16];
        uint64_t e;

        if (v->progress.total > 0 && v->progress.done > 0)
                fill = (unsigned) (MIN(v->progress.done, v->progress.total) * (int64_t) w / v->progress.total);
        sbuf_puts(b, "[");
        for (unsigned i = 0; i < w; i++)
                sbuf_puts(b, i < fill ? g->full : g->empty);
        sbuf_puts(b, "] ");
        put_counts(b, &v->progress, "done");
        sbuf_puts(b, "  ");
        put_state(b, v);
        if (deployment_elapsed(v, o->now_usec, &e))
                sbuf_printf(b, "  %s", deploy_format_elapsed(e, el, sizeof el));
}

static size_t id_column(const struct deploy_view *v) {
        size_t w = 2;
        for (size_t i = 0; i < v->n_instances; i++)
                if (v->instances[i].id)
                        w = MAX(w, MIN(strlen(v->instances[i].id), (size_t) ID_COLUMN_MAX));
        return w;
}

static void put_padded(struct sbuf *b, const char *s, size_t width) {
        size_t before = b->len;
        sbuf_put_clean(b, s);
        for (size_t n = b->oom ? width : columns(b->p + before, b->len - before); n < width; n++)
                sbuf_puts(b, " ");
}

static void put_instance(struct sbuf *b, const struct deploy_view *v, const struct deploy_view_instance *i,
                         size_t idw, const struct deploy_view_render_opts *o, const char *indent) {
        const struct glyphs *g = glyphs(o->utf8);
        uint64_t now = clock_end(v, o->now_usec), t = 0;
        char el[16];

        sbuf_puts(b, indent);
        put_padded(b, i->id, idw);
        sbuf_puts(b, "  ");
        put_padded(b, i->state ? i->state : "?", STEP_COLUMN);
        sbuf_puts(b, "  ");
        sbuf_put_clean(b, i->from ? i->from : "?");
        sbuf_printf(b, " %s ", g->arrow);
        sbuf_put_clean(b, i->to ? i->to : "?");
        /* Time in the current step; for a finished one, how long its steps took. */
        if (deploy_step_is_active(i->state) && i->since_usec)
                t = now > i->since_usec ? now - i->since_usec : 0;
        else if (step_is_finished(i->state) && i->started_usec && i->ended_usec >= i->started_usec)
                t = i->ended_usec - i->started_usec;
        if (t > 0 || (deploy_step_is_active(i->state) && i->since_usec))
                sbuf_printf(b, "  %s", deploy_format_elapsed(t, el, sizeof el));
        if (i->lost)
                sbuf_puts(b, "  lost");
        if (i->skipped)
                sbuf_puts(b, "  skipped");
        if (i->error) {
                sbuf_puts(b, "  ");
                sbuf_put_clean(b, i->error);
        }
}

static void put_migration(struct sbuf *b, bool prefix, const char *phase, const struct deploy_view_migration *m) {
        describe_migration(b, prefix, phase, m->state, m->instance, m->has_exit_code, m->exit_code, m->error);
}

/* Rank for the instances shown when not all fit: steps in progress, then
 * failures, then the rest. */
static int instance_rank(const struct deploy_view_instance *i) {
        if (deploy_step_is_active(i->state))
                return 0;
        if (i->state && strcmp(i->state, "failed") == 0)
                return 1;
        return 2;
}

static void put_instances(struct sbuf *out, struct sbuf *line, const struct deploy_view *v,
                          const struct deploy_view_render_opts *o, size_t rows, const char *indent, size_t *n_lines) {
        size_t idw = id_column(v), count[3] = {}, take[3] = {}, seen[3] = {}, budget, shown = 0;
        int64_t done = 0, pending = 0, other = 0;

        if (rows == 0)
                return;
        /* When not all fit, keep one row for "... and N more" and fill the
         * others by rank, each rank in list order. */
        budget = v->n_instances <= rows ? v->n_instances : rows - 1;
        for (size_t i = 0; i < v->n_instances; i++)
                count[instance_rank(&v->instances[i])]++;
        for (int r = 0; r < 3; r++) {
                take[r] = MIN(count[r], budget - shown);
                shown += take[r];
        }
        for (size_t i = 0; i < v->n_instances; i++) {
                const struct deploy_view_instance *in = &v->instances[i];
                int r = instance_rank(in);

                if (seen[r]++ < take[r]) {
                        put_instance(line, v, in, idw, o, indent);
                        emit_line(out, line, o, n_lines);
                } else if (in->state && strcmp(in->state, "done") == 0)
                        done++;
                else if (in->state && strcmp(in->state, "pending") == 0)
                        pending++;
                else
                        other++;
        }
        if (shown == v->n_instances)
                return;
        sbuf_printf(line, "%s%s and %zu more (%" PRId64 " done, %" PRId64 " pending", indent,
                    glyphs(o->utf8)->ellipsis, v->n_instances - shown, done, pending);
        if (other)
                sbuf_printf(line, ", %" PRId64 " other", other);
        sbuf_puts(line, ")");
        emit_line(out, line, o, n_lines);
}

int deploy_view_render(const struct deploy_view *v, const struct deploy_view_render_opts *o, char **ret,
                       size_t *ret_lines) {
        struct sbuf out = {}, line = {};
        size_t n = 0, fixed = 2, rows;

        fixed += (v->pre.state ? 1 : 0) + (v->post.state ? 1 : 0) + (v->last_event ? 1 : 0) + (o->notice ? 1 : 0);
        rows = o->height == 0 ? SIZE_MAX : o->height > fixed ? o->height - fixed : 0;

        put_header(&line, v, glyphs(o->utf8));
        emit_line(&out, &line, o, &n);
        put_progress(&line, v, o);
        emit_line(&out, &line, o, &n);
        put_instances(&out, &line, v, o, rows, "  ", &n);
        if (v->pre.state) {
                sbuf_puts(&line, "  ");
                put_migration(&line, true, "pre", &v->pre);
                emit_line(&out, &line, o, &n);
        }
        if (v->post.state) {
                sbuf_puts(&line, "  ");
                put_migration(&line, true, "post", &v->post);
                emit_line(&out, &line, o, &n);
        }
        if (v->last_event) {
                sbuf_puts(&line, "latest: ");
                describe(&line, v->last_event, o->utf8);
                emit_line(&out, &line, o, &n);
        }
        if (o->notice) {
                sbuf_put_clean(&line, o->notice);
                emit_line(&out, &line, o, &n);
        }
        free(line.p);

        /* A terminal too short for even the fixed lines: keep the first height lines. */
        if (!out.oom && o->height > 0 && n > o->height) {
                size_t keep = 0;
                for (size_t l = 0; l < o->height; l++)
                        keep = (size_t) ((char *) memchr(out.p + keep, '\n', out.len - keep) - out.p) + 1;
                out.len = keep;
                out.p[keep] = '\0';
                n = o->height;
        }
        char *s = sbuf_finish(&out);
        if (!s)
                return -ENOMEM;
        *ret = s;
        *ret_lines = n;
        return 0;
}

static void put_field(struct sbuf *out, struct sbuf *line, const struct deploy_view_render_opts *o, size_t *n,
                      const char *label, const char *value) {
        sbuf_printf(line, "  %-11s ", label);
        sbuf_put_clean(line, value ? value : "-");
        emit_line(out, line, o, n);
}

char *deploy_view_render_status(const struct deploy_view *v, const struct deploy_view_render_opts *o) {
        struct sbuf out = {}, line = {};
        size_t n = 0;
        char el[16];
        uint64_t e;

        put_header(&line, v, glyphs(o->utf8));
        emit_line(&out, &line, o, &n);

        sbuf_printf(&line, "  %-11s ", "state:");
        put_state(&line, v);
        emit_line(&out, &line, o, &n);
        sbuf_printf(&line, "  %-11s ", "progress:");
        put_counts(&line, &v->progress, "done");
        emit_line(&out, &line, o, &n);

        sbuf_printf(&line, "  %-11s ", "created:");
        sbuf_put_clean(&line, v->created_at ? v->created_at : "-");
        if (deployment_elapsed(v, o->now_usec, &e))
                sbuf_printf(&line, " (%s %s)", deploy_format_elapsed(e, el, sizeof el),
                            deploy_state_is_terminal(v->state) ? "total" : "elapsed");
        emit_line(&out, &line, o, &n);
        put_field(&out, &line, o, &n, "updated:", v->updated_at);
        put_field(&out, &line, o, &n, "finished:", v->finished_at);

        sbuf_printf(&line, "  %-11s ", "strategy:");
        sbuf_put_clean(&line, v->strategy ? v->strategy : "-");
        sbuf_printf(&line, "; migrate %s", v->migrate ? "true" : "false");
        emit_line(&out, &line, o, &n);
        if (v->pre.state || v->post.state) {
                sbuf_printf(&line, "  %-11s ", "migrations:");
                if (v->pre.state)
                        put_migration(&line, false, "pre", &v->pre);
                if (v->pre.state && v->post.state)
                        sbuf_puts(&line, "; ");
                if (v->post.state)
                        put_migration(&line, false, "post", &v->post);
                emit_line(&out, &line, o, &n);
        }
        put_field(&out, &line, o, &n, "error:", v->error);
        if (v->n_instances > 0) {
                sbuf_puts(&line, "  instances:");
                emit_line(&out, &line, o, &n);
                put_instances(&out, &line, v, o, SIZE_MAX, "    ", &n);
        }
        free(line.p);
        return sbuf_finish(&out);
}

char *deploy_view_summary(const struct deploy_view *v, const struct deploy_view_render_opts *o) {
        bool terminal = deploy_state_is_terminal(v->state);
        struct sbuf b = {};
        char el[16];
        uint64_t e;

        sbuf_puts(&b, "Deployment ");
        sbuf_put_clean(&b, v->id ? v->id : "?");
        sbuf_puts(&b, terminal ? " " : " is ");
        sbuf_put_clean(&b, v->state ? v->state : "unknown");
        if (deployment_elapsed(v, o->now_usec, &e)) {
                deploy_format_elapsed(e, el, sizeof el);
                if (!terminal)
                        sbuf_printf(&b, ", %s elapsed", el);
                else
                        sbuf_printf(&b, " %s %s", strcmp(v->state, "succeeded") == 0 ? "in" : "after", el);
        }
        sbuf_puts(&b, ": ");
        put_versions(&b, v, glyphs(o->utf8));
        sbuf_puts(&b, ", ");
        put_counts(&b, &v->progress, "instances done");
        if (v->error) {
                sbuf_puts(&b, "; error: ");
                sbuf_put_clean(&b, v->error);
        }
        return sbuf_finish(&b);
}
