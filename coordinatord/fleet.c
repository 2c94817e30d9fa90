/* See fleet.h. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "coordinatord.h"
#include "duration.h"
#include "fleet.h"
#include "jsonutil.h"
#include "keys.h"
#include "leader.h"
#include "log.h"
#include "parse-util.h"
#include "redis.h"
#include "redis_client.h"
#include "strutil.h"

#define FLEET_RESYNC_USEC (10 * USEC_PER_SEC)
#define FLEET_DEFAULT_TTL_MS 5000
#define FLEET_MAX_INSTANCES 100000
/* One instance in the live table (loop thread only). */
struct fl_inst {
        char id[NAME_MAX_LEN + 1];
        struct instance_info *info; /* NULL until its hash was read */
        int64_t last_seen_ms;
        uint64_t observed_usec;     /* monotonic time the score last moved */
        uint64_t seen_gen;
        bool gone;                  /* the alive key is missing */
        bool lost;                  /* gone, and not stopped on purpose */
        bool checking;              /* EXISTS alive in flight */
        bool fetching;              /* HGETALL in flight */
        bool refetch;               /* an event arrived while fetching: read again */
        bool lost_published;
        bool reaping;
};

struct fleet {
        struct server *s;
        sd_event_source *timer;
        char *k_instances, *k_events;

        struct fl_inst **v; /* sorted by id */
        size_t n, cap;
        uint64_t gen;
        bool zrange_in_flight;
        unsigned pending;   /* fetches and checks in flight */
        bool dirty;
        bool synced;        /* a full resync completed since connect, and nothing was in flight */
        bool resync_done;   /* a full resync completed since connect */
        bool resync_in_flight;
        unsigned resync_pending;
        uint64_t last_resync_usec;
        uint64_t epoch;     /* bumped on disconnect: replies of an old connection are ignored */


        pthread_mutex_t lock;
        struct fleet_snapshot *snap;
        atomic_bool synced_flag;

        void (*on_change)(void *userdata);
        void *on_change_userdata;
};

void fleet_set_on_change(struct fleet *f, void (*cb)(void *userdata), void *userdata) {
        f->on_change = cb;
        f->on_change_userdata = userdata;
}

/* Reap an instance only if its alive key is still gone. KEYS: instance alive instances events; ARGV: id */
static const char reap_script[] =
        "if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end\n"
        "redis.call('DEL', KEYS[1])\n"
        "redis.call('ZREM', KEYS[3], ARGV[1])\n"
        "redis.call('PUBLISH', KEYS[4], cjson.encode({type='instance', id=ARGV[1], state='deregistered'}))\n"
        "return 1\n";

static const char *const states[] = { "starting", "healthy", "unhealthy", "draining", "stopped", "lost", NULL };

bool fleet_state_is_valid(const char *s) {
        for (size_t i = 0; states[i]; i++)
                if (s && strcmp(s, states[i]) == 0)
                        return true;
        return false;
}

static void info_unref(struct instance_info *i) {
        if (!i || __atomic_sub_fetch(&i->ref, 1, __ATOMIC_ACQ_REL) > 0)
                return;
        free(i->id);
        free(i->service);
        free(i->host);
        free(i->address);
        free(i->version);
        free(i->state);
        free(i->health);
        free(i);
}

static struct fleet_snapshot *snapshot_new(size_t n) {
        struct fleet_snapshot *s = calloc(1, sizeof *s);
        if (!s)
                return NULL;
        s->ref = 1;
        if (n > 0) {
                s->entries = calloc(n, sizeof *s->entries);
                if (!s->entries) {
                        free(s);
                        return NULL;
                }
        }
        pthread_mutex_init(&s->render_lock, NULL);
        return s;
}

void fleet_snapshot_unref(struct fleet_snapshot *s) {
        if (!s || __atomic_sub_fetch(&s->ref, 1, __ATOMIC_ACQ_REL) > 0)
                return;
        for (size_t i = 0; i < s->n; i++)
                info_unref(s->entries[i].info);
        free(s->entries);
        free(s->json_all);
        pthread_mutex_destroy(&s->render_lock);
        free(s);
}

struct fleet_snapshot *fleet_snapshot_get(struct fleet *f) {
        struct fleet_snapshot *s;

        pthread_mutex_lock(&f->lock);
        s = f->snap;
        __atomic_add_fetch(&s->ref, 1, __ATOMIC_ACQ_REL);
        pthread_mutex_unlock(&f->lock);
        return s;
}

static int entry_cmp(const void *key, const void *elem) {
        const struct fleet_entry *e = elem;
        return strcmp(key, e->info->id);
}

const struct fleet_entry *fleet_snapshot_find(const struct fleet_snapshot *s, const char *id) {
        if (s->n == 0)
                return NULL;
        return bsearch(id, s->entries, s->n, sizeof *s->entries, entry_cmp);
}

const char *fleet_entry_state(const struct fleet_entry *e) {
        if (e->lost)
                return "lost";
        return e->info->state && fleet_state_is_valid(e->info->state) ? e->info->state : "starting";
}

/* The health words an agent writes (agent/health.c's health_state_table). */
static const char *const healths[] = { "starting", "healthy", "unhealthy" };

const char *fleet_entry_health(const struct fleet_entry *e) {
        const char *st = fleet_entry_state(e);

        if (e->lost)
                return "lost";
        if (string_table_lookup(healths, ELEMENTSOF(healths), e->info->health) >= 0)
                return e->info->health;
        return string_table_lookup(healths, ELEMENTSOF(healths), st) >= 0 ? st : "starting";
}

json_t *fleet_entry_to_json(const struct fleet_entry *e) {
        char ts[40];
        const struct instance_info *i = e->info;

        format_rfc3339((uint64_t) e->last_seen_ms * USEC_PER_MSEC, ts, sizeof ts);
        return json_pack("{s:s,s:s?,s:s?,s:s?,s:s?,s:s,s:I,s:s}", "id", i->id, "service", i->service, "host",
                         i->host, "address", i->address, "version", i->version, "state", fleet_entry_state(e),
                         "config_version", (json_int_t) i->config_version, "last_seen", ts);
}

int fleet_snapshot_json_all(struct fleet_snapshot *s, const char **ret, size_t *ret_len) {
        int r = 0;

        pthread_mutex_lock(&s->render_lock);
        if (!s->json_all) {
                _cleanup_json_ json_t *arr = json_array();
                if (!arr)
                        r = -ENOMEM;
                for (size_t i = 0; r == 0 && i < s->n; i++)
                        if (json_array_append_new(arr, fleet_entry_to_json(&s->entries[i])) < 0)
                                r = -ENOMEM;
                if (r == 0) {
                        _cleanup_json_ json_t *o = json_pack("{s:O}", "instances", arr);
                        char *d = o ? json_dumps(o, JSON_COMPACT) : NULL;
                        if (d) {
                                size_t l = strlen(d);
                                char *d2 = realloc(d, l + 2);
                                if (d2) {
                                        d2[l] = '\n';
                                        d2[l + 1] = '\0';
                                        s->json_all = d2;
                                        s->json_all_len = l + 1;
                                } else {
                                        free(d);
                                        r = -ENOMEM;
                                }
                        } else
                                r = -ENOMEM;
                }
        }
        if (r == 0) {
                *ret = s->json_all;
                *ret_len = s->json_all_len;
        }
        pthread_mutex_unlock(&s->render_lock);
        return r;
}

bool fleet_is_synced(struct fleet *f) {
        return atomic_load(&f->synced_flag);
}

void fleet_write_metrics(struct fleet *f, FILE *out) {
        struct fleet_snapshot *s = fleet_snapshot_get(f);
        /* Count by (service, state); entries are few distinct services. */
        struct { const char *service; size_t counts[6]; } *acc = NULL;
        size_t nacc = 0;

        for (size_t i = 0; i < s->n; i++) {
                const struct fleet_entry *e = &s->entries[i];
                const char *svc = e->info->service ? e->info->service : "";
                const char *st = fleet_entry_state(e);
                size_t k, si = 0;
                for (k = 0; k < nacc; k++)
                        if (strcmp(acc[k].service, svc) == 0)
                                break;
                if (k == nacc) {
                        void *na = realloc(acc, (nacc + 1) * sizeof *acc);
                        if (!na)
                                break;
                        acc = na;
                        memset(&acc[nacc], 0, sizeof *acc);
                        acc[nacc++].service = svc;
                }
                for (si = 0; states[si]; si++)
                        if (strcmp(states[si], st) == 0)
                                break;
                if (states[si])
                        acc[k].counts[si]++;
        }
        for (size_t k = 0; k < nacc; k++)
                for (size_t si = 0; states[si]; si++)
                        fprintf(out, "coordinatord_instances{service=\"%s\",state=\"%s\"} %zu\n", acc[k].service,
                                states[si], acc[k].counts[si]);
        free(acc);
        fleet_snapshot_unref(s);
}

/* ---- the live table (loop thread) ---- */

static size_t inst_lower_bound(struct fleet *f, const char *id) {
        size_t lo = 0, hi = f->n;
        while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (strcmp(f->v[mid]->id, id) < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

static struct fl_inst *inst_find(struct fleet *f, const char *id) {
        size_t i = inst_lower_bound(f, id);
        return i < f->n && strcmp(f->v[i]->id, id) == 0 ? f->v[i] : NULL;
}

static struct fl_inst *inst_add(struct fleet *f, const char *id) {
        size_t i = inst_lower_bound(f, id);
        struct fl_inst *x;

        if (i < f->n && strcmp(f->v[i]->id, id) == 0)
                return f->v[i];
        if (f->n >= FLEET_MAX_INSTANCES)
                return NULL;
        if (f->n == f->cap) {
                size_t nc = f->cap ? f->cap * 2 : 64;
                struct fl_inst **nv = realloc(f->v, nc * sizeof *nv);
                if (!nv)
                        return NULL;
                f->v = nv;
                f->cap = nc;
        }
        x = calloc(1, sizeof *x);
        if (!x)
                return NULL;
        snprintf(x->id, sizeof x->id, "%s", id);
        x->observed_usec = now_usec();
        x->seen_gen = f->gen;
        memmove(f->v + i + 1, f->v + i, (f->n - i) * sizeof *f->v);
        f->v[i] = x;
        f->n++;
        f->dirty = true;
        return x;
}

static void inst_remove_at(struct fleet *f, size_t i) {
        struct fl_inst *x = f->v[i];
        info_unref(x->info);
        free(x);
        memmove(f->v + i, f->v + i + 1, (f->n - i - 1) * sizeof *f->v);
        f->n--;
        f->dirty = true;
}

static void publish_snapshot(struct fleet *f) {
        struct fleet_snapshot *s, *old;
        size_t k = 0;

        if (!f->dirty)
                return;
        s = snapshot_new(f->n);
        if (!s)
                return;
        for (size_t i = 0; i < f->n; i++) {
                struct fl_inst *x = f->v[i];
                if (!x->info)
                        continue;
                __atomic_add_fetch(&x->info->ref, 1, __ATOMIC_ACQ_REL);
                s->entries[k].info = x->info;
                s->entries[k].last_seen_ms = x->last_seen_ms;
                s->entries[k].lost = x->lost;
                k++;
        }
        s->n = k;
        pthread_mutex_lock(&f->lock);
        old = f->snap;
        f->snap = s;
        pthread_mutex_unlock(&f->lock);
        fleet_snapshot_unref(old);
        f->dirty = false;
        if (f->on_change)
                f->on_change(f->on_change_userdata);
}

/* Userdata of one async command about one instance. */
struct op {
        struct fleet *f;
        uint64_t epoch;
        bool resync;
        char id[NAME_MAX_LEN + 1];
};

static struct op *op_new(struct fleet *f, const char *id, bool resync) {
        struct op *o = calloc(1, sizeof *o);
        if (!o)
                return NULL;
        o->f = f;
        o->epoch = f->epoch;
        o->resync = resync;
        snprintf(o->id, sizeof o->id, "%s", id);
        return o;
}

/* Synced (ready) once a full read completed and nothing else is in flight,
 * so the first snapshot after a (re)connect is complete. */
static void mark_synced_if_idle(struct fleet *f) {
        if (f->resync_done && !f->synced && f->pending == 0) {
                publish_snapshot(f);
                f->synced = true;
                atomic_store(&f->synced_flag, true);
        }
}

static void op_done(struct fleet *f, struct op *o) {
        if (o->epoch == f->epoch) {
                if (f->pending > 0)
                        f->pending--;
                if (o->resync && f->resync_pending > 0 && --f->resync_pending == 0) {
                        f->resync_in_flight = false;
                        f->resync_done = true;
                }
                if (f->pending == 0)
                        publish_snapshot(f);
                mark_synced_if_idle(f);
        }
        free(o);
}

/* An agent that stops gracefully writes state=stopped and deletes its alive
 * key: that instance is "stopped", not "lost". Without its hash (deregistered,
 * or an event about an instance not read yet) an entry is hidden, never lost:
 * the "deregistered" event must not bring a reaped instance back as a ghost. */
static void inst_update_lost(struct fleet *f, struct fl_inst *x) {
        bool stopped = x->info && x->info->state && strcmp(x->info->state, "stopped") == 0;
        bool lost = x->gone && x->info && !stopped;

        if (lost == x->lost)
                return;
        x->lost = lost;
        f->dirty = true;
        if (lost)
                log_info("Instance %s is lost (no heartbeat for %lld ms)", x->id,
                         (long long) (x->info ? x->info->ttl_ms : FLEET_DEFAULT_TTL_MS));
        else
                x->lost_published = false;
}

static char *dup_field(redisReply *r, const char *name) {
        const char *v = redis_reply_field(r, name);
        return v ? strndup(v, 256) : NULL;
}

static int send_fetch(struct fleet *f, struct fl_inst *x, bool resync);

/* Whether the reply to o is of the current epoch (those of an earlier one are ignored); *ret is then the
 * instance o is about, NULL where it is not known (any longer). */
static bool op_current(struct op *o, struct fl_inst **ret) {
        if (o->epoch != o->f->epoch)
                return false;
        *ret = inst_find(o->f, o->id);
        return true;
}

static void on_hgetall(struct redis_client *c, redisReply *reply, void *userdata) {
        struct op *o = userdata;
        struct fleet *f = o->f;
        struct fl_inst *x;

        if (!op_current(o, &x))
                goto done;
        if (x) {
                x->fetching = false;
                if (x->refetch) {
                        /* The hash changed after this read was sent: this reply may be
                         * older than the event, so read it again. */
                        x->refetch = false;
                        (void) send_fetch(f, x, false);
                }
        }
        if (!reply || reply->type != REDIS_REPLY_ARRAY)
                goto done; /* retried by the next event or resync */
        if (reply->elements == 0) {
                /* Hash gone (deregistered, or a registration not complete yet):
                 * hide it; the entry itself goes when it leaves the ZSET, so a
                 * stray ZSET member is not re-read every tick (the leader reaps it). */
                if (x && x->info) {
                        info_unref(x->info);
                        x->info = NULL;
                        f->dirty = true;
                        inst_update_lost(f, x);
                }
                goto done;
        }
        if (!x)
                x = inst_add(f, o->id);
        if (!x)
                goto done;

        struct instance_info *ni = calloc(1, sizeof *ni);
        if (!ni)
                goto done;
        ni->ref = 1;
        ni->id = strdup(o->id);
        ni->service = dup_field(reply, "service");
        ni->host = dup_field(reply, "host");
        ni->address = dup_field(reply, "address");
        ni->version = dup_field(reply, "version");
        ni->state = dup_field(reply, "state");
        ni->health = dup_field(reply, "health");
        const char *v = redis_reply_field(reply, "config_version");
        if (!v || parse_int64(v, &ni->config_version) < 0)
                ni->config_version = 0;
        v = redis_reply_field(reply, "ttl_ms");
        if (!v || parse_int64(v, &ni->ttl_ms) < 0 || ni->ttl_ms <= 0)
                ni->ttl_ms = FLEET_DEFAULT_TTL_MS;
        v = redis_reply_field(reply, "last_seen");
        int64_t ls;
        if (v && parse_int64(v, &ls) == 0 && ls > x->last_seen_ms) {
                x->last_seen_ms = ls;
                x->observed_usec = now_usec();
        }
        if (!ni->id) {
                info_unref(ni);
                goto done;
        }
        info_unref(x->info);
        x->info = ni;
        f->dirty = true;
        inst_update_lost(f, x);
done:
        op_done(f, o);
}

static void on_exists(struct redis_client *c, redisReply *reply, void *userdata) {
        struct op *o = userdata;
        struct fleet *f = o->f;
        struct fl_inst *x;

        if (!op_current(o, &x) || !x)
                goto done;
        x->checking = false;
        if (!reply || reply->type != REDIS_REPLY_INTEGER)
                goto done; /* checked again next tick */
        x->gone = reply->integer == 0;
        inst_update_lost(f, x);
        /* The leader tells everyone at once. */
        if (x->lost && !x->lost_published && leader_is_leader(f->s->leader)) {
                _cleanup_json_ json_t *ev = json_pack("{s:s,s:s,s:s}", "type", "instance", "id", x->id, "state", "lost");
                _cleanup_free_ char *d = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
                if (d && redis_client_command(f->s->redis, NULL, NULL, "PUBLISH %s %s", f->k_events, d) == 0)
                        x->lost_published = true;
        }
done:
        op_done(f, o);
}

/* Send "CMD KEY" about instance x (key is taken over), counted as pending and, during a
 * resync, as part of it; *in_flight is set while the reply is outstanding. */
static int send_op(struct fleet *f, struct fl_inst *x, bool resync, redis_client_reply_cb cb, const char *cmd,
                   char *key, bool *in_flight) {
        _cleanup_free_ char *k = key;
        struct op *o = op_new(f, x->id, resync);
        int r;

        if (!k || !o) {
                free(o);
                return -ENOMEM;
        }
        r = redis_client_command(f->s->redis, cb, o, "%s %s", cmd, k);
        if (r < 0) {
                free(o);
                return r;
        }
        *in_flight = true;
        f->pending++;
        if (resync)
                f->resync_pending++;
        return 0;
}

static int send_fetch(struct fleet *f, struct fl_inst *x, bool resync) {
        return send_op(f, x, resync, on_hgetall, "HGETALL", key_instance(f->s->ns, x->id), &x->fetching);
}

static int send_check(struct fleet *f, struct fl_inst *x, bool resync) {
        return send_op(f, x, resync, on_exists, "EXISTS", key_alive(f->s->ns, x->id), &x->checking);
}

static void on_reap(struct redis_client *c, redisReply *reply, void *userdata) {
        struct op *o = userdata;
        struct fleet *f = o->f;

        if (o->epoch == f->epoch && reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1) {
                size_t i = inst_lower_bound(f, o->id);
                log_info("Instance %s deregistered (not heard from for longer than deregister_after)", o->id);
                if (i < f->n && strcmp(f->v[i]->id, o->id) == 0)
                        inst_remove_at(f, i);
        } else if (o->epoch == f->epoch) {
                struct fl_inst *x = inst_find(f, o->id);
                if (x)
                        x->reaping = false;
        }
        op_done(f, o);
}

static void send_reap(struct fleet *f, struct fl_inst *x) {
        _cleanup_free_ char *ki = key_instance(f->s->ns, x->id), *ka = key_alive(f->s->ns, x->id);
        struct op *o = op_new(f, x->id, false);

        if (!ki || !ka || !o || !f->k_instances) {
                free(o);
                return;
        }
        if (redis_client_command(f->s->redis, on_reap, o, "EVAL %s 4 %s %s %s %s %s", reap_script, ki, ka,
                                 f->k_instances, f->k_events, x->id) < 0) {
                free(o);
                return;
        }
        x->reaping = true;
        f->pending++;
}

static void full_resync(struct fleet *f) {
        if (f->resync_in_flight)
                return;
        f->resync_in_flight = true;
        f->resync_pending = 1; /* held until every command is sent */
        f->last_resync_usec = now_usec();
        for (size_t i = 0; i < f->n; i++) {
                struct fl_inst *x = f->v[i];
                if (!x->fetching)
                        (void) send_fetch(f, x, true);
                if (!x->checking)
                        (void) send_check(f, x, true);
        }
        if (--f->resync_pending == 0) {
                f->resync_in_flight = false;
                f->resync_done = true;
                mark_synced_if_idle(f);
        }
}

static void on_zrange(struct redis_client *c, redisReply *reply, void *userdata) {
        struct op *o = userdata;
        struct fleet *f = o->f;
        uint64_t now = now_usec();
        bool first = !f->resync_done && !f->resync_in_flight;

        if (o->epoch != f->epoch)
                goto out;
        f->zrange_in_flight = false;
        if (!reply || reply->type != REDIS_REPLY_ARRAY)
                goto out;

        f->gen++;
        for (size_t i = 0; i + 1 < reply->elements; i += 2) {
                redisReply *m = reply->element[i], *sc = reply->element[i + 1];
                int64_t score;
                struct fl_inst *x;

                if (m->type != REDIS_REPLY_STRING || sc->type != REDIS_REPLY_STRING || !name_is_valid(m->str))
                        continue;
                if (parse_int64(sc->str, &score) < 0) {
                        double d = strtod(sc->str, NULL);
                        score = (int64_t) d;
                }
                x = inst_find(f, m->str);
                if (!x) {
                        x = inst_add(f, m->str);
                        if (!x)
                                continue;
                        x->last_seen_ms = score;
                        x->observed_usec = now;
                        (void) send_fetch(f, x, false);
                        (void) send_check(f, x, false);
                } else if (score > x->last_seen_ms) {
                        x->last_seen_ms = score;
                        x->observed_usec = now;
                        f->dirty = true;
                        if (x->gone) {
                                /* Back from the dead: re-read everything. */
                                if (!x->fetching)
                                        (void) send_fetch(f, x, false);
                                if (!x->checking)
                                        (void) send_check(f, x, false);
                        }
                }
                x->seen_gen = f->gen;
        }

        bool leading = leader_is_leader(f->s->leader);
        int64_t now_ms = (int64_t) now_realtime_msec();
        for (size_t i = f->n; i-- > 0;) {
                struct fl_inst *x = f->v[i];
                int64_t ttl = x->info ? x->info->ttl_ms : FLEET_DEFAULT_TTL_MS;

                if (x->seen_gen != f->gen) {
                        /* Gone from the ZSET: deregistered. */
                        if (!x->fetching && !x->checking && !x->reaping)
                                inst_remove_at(f, i);
                        continue;
                }
                if (!x->gone && !x->checking &&
                    now + FLEET_TICK_USEC >= x->observed_usec + (uint64_t) ttl * USEC_PER_MSEC)
                        (void) send_check(f, x, false);
                if (leading && x->gone && !x->reaping &&
                    now_ms - x->last_seen_ms > (int64_t) (f->s->cfg.deregister_after / USEC_PER_MSEC))
                        send_reap(f, x);
        }

        if (first || now - f->last_resync_usec >= FLEET_RESYNC_USEC)
                full_resync(f);
        if (f->pending == 0)
                publish_snapshot(f);
out:
        free(o);
}

static int on_tick(sd_event_source *es, uint64_t usec, void *userdata) {
        struct fleet *f = userdata;

        sd_event_source_set_time(es, usec + FLEET_TICK_USEC);
        if (!f->s->redis || !redis_client_is_connected(f->s->redis) || f->zrange_in_flight)
                return 0;
        struct op *o = op_new(f, "", false);
        if (!o)
                return 0;
        if (redis_client_command(f->s->redis, on_zrange, o, "ZRANGE %s 0 -1 WITHSCORES", f->k_instances) < 0) {
                free(o);
                return 0;
        }
        f->zrange_in_flight = true;
        return 0;
}

static void on_event(struct redis_client *c, const char *channel, const char *data, size_t len, void *userdata) {
        struct fleet *f = userdata;
        _cleanup_json_ json_t *ev = json_loadb(data, len, 0, NULL);
        const char *id = ev ? json_string_value(json_object_get(ev, "id")) : NULL;
        struct fl_inst *x;

        if (!id || !name_is_valid(id))
                return;
        x = inst_find(f, id);
        if (!x) {
                x = inst_add(f, id);
                if (!x)
                        return;
        }
        if (!x->fetching)
                (void) send_fetch(f, x, false);
        else
                x->refetch = true;
        if (!x->checking)
                (void) send_check(f, x, false);
}

void fleet_on_redis(struct fleet *f, bool connected) {
        f->epoch++;
        f->pending = 0;
        f->zrange_in_flight = false;
        f->resync_in_flight = false;
        f->resync_pending = 0;
        f->synced = false;
        f->resync_done = false;
        atomic_store(&f->synced_flag, false);
        for (size_t i = 0; i < f->n; i++) {
                f->v[i]->fetching = f->v[i]->checking = f->v[i]->reaping = f->v[i]->refetch = false;
                /* Heartbeats were invisible while disconnected: restart the clock. */
                f->v[i]->observed_usec = now_usec();
        }
        if (connected)
                sd_event_source_set_time(f->timer, now_usec());
}

int fleet_new(struct server *s, struct fleet **ret) {
        struct fleet *f = calloc(1, sizeof *f);
        int r;

        if (!f)
                return -ENOMEM;
        f->s = s;
        pthread_mutex_init(&f->lock, NULL);
        f->snap = snapshot_new(0);
        f->k_instances = key_instances(s->ns);
        f->k_events = key_events(s->ns);
        if (!f->snap || !f->k_instances || !f->k_events) {
                fleet_free(f);
                return -ENOMEM;
        }
        r = sd_event_add_time(s->event, &f->timer, CLOCK_MONOTONIC, now_usec() + FLEET_TICK_USEC, 10 * USEC_PER_MSEC,
                              on_tick, f);
        if (r < 0) {
                fleet_free(f);
                return r;
        }
        sd_event_source_set_enabled(f->timer, SD_EVENT_ON);
        if (s->redis) {
                r = redis_client_subscribe(s->redis, f->k_events, on_event, f);
                if (r < 0) {
                        fleet_free(f);
                        return r;
                }
        }
        *ret = f;
        return 0;
}

struct fleet *fleet_free(struct fleet *f) {
        if (!f)
                return NULL;
        sd_event_source_unref(f->timer);
        for (size_t i = 0; i < f->n; i++) {
                info_unref(f->v[i]->info);
                free(f->v[i]);
        }
        free(f->v);
        fleet_snapshot_unref(f->snap);
        free(f->k_instances);
        free(f->k_events);
        pthread_mutex_destroy(&f->lock);
        free(f);
        return NULL;
}
