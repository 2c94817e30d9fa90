/* See leader.h. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "coordinatord.h"
#include "duration.h"
#include "keys.h"
#include "leader.h"
#include "lock.h"
#include "log.h"
#include "macro.h"
#include "metrics.h"
#include "parse-util.h"
#include "redis_client.h"
#include "strutil.h"

#define LEADER_TICK_MAX_USEC (250 * USEC_PER_MSEC)

struct leader {
        struct server *s;
        sd_event_source *timer;
        char *k_lock, *k_fence, *k_holder, *channel;
        char token[33];
        uint64_t lease_usec, tick_usec;
        uint64_t epoch;

        /* loop thread */
        uint64_t term;
        _Atomic uint64_t last_good_usec; /* when the last successful acquire/renew was sent */
        uint64_t last_renew_usec;  /* when the last renewal was sent */
        bool acquire_in_flight, renew_in_flight, view_in_flight;
        bool shutting_down;
        void (*shutdown_done)(void *userdata);
        void *shutdown_userdata;

        atomic_bool is_leader;
        pthread_mutex_t view_lock;
        bool view_known;
        uint64_t view_term;
        char *view_leader;
};

struct lop {
        struct leader *l;
        uint64_t epoch;
        uint64_t sent_usec;
};

static struct lop *lop_new(struct leader *l) {
        struct lop *o = malloc(sizeof *o);
        if (o) {
                o->l = l;
                o->epoch = l->epoch;
                o->sent_usec = now_usec();
        }
        return o;
}

static void view_set(struct leader *l, bool known, const char *leader, uint64_t term) {
        char *d = leader ? strdup(leader) : NULL;

        pthread_mutex_lock(&l->view_lock);
        free(l->view_leader);
        l->view_leader = d;
        l->view_known = known;
        l->view_term = term;
        pthread_mutex_unlock(&l->view_lock);
}

/* Leading means: elected, and the lease is surely still ours.  Checked here
 * as well as on the loop so that a stalled loop (SIGSTOP, a slow machine)
 * never lets a reader see a stale "leader". */
static bool lease_valid(struct leader *l) {
        return now_usec() - atomic_load(&l->last_good_usec) < l->lease_usec - l->lease_usec / 4;
}

bool leader_is_leader(struct leader *l) {
        return l && atomic_load(&l->is_leader) && lease_valid(l);
}

bool leader_get_fence(struct leader *l, struct leader_fence *ret) {
        if (!leader_is_leader(l))
                return false;
        *ret = (struct leader_fence) { .lock_key = l->k_lock, .token = l->token, .fence_key = l->k_fence,
                                       .term = l->term };
        return true;
}

void leader_get_view(struct leader *l, struct leader_view *ret) {
        struct leader_view v = {};

        if (l) {
                pthread_mutex_lock(&l->view_lock);
                v.known = l->view_known;
                v.term = l->view_term;
                v.leader = l->view_leader ? strdup(l->view_leader) : NULL;
                pthread_mutex_unlock(&l->view_lock);
                v.is_leader = leader_is_leader(l);
        }
        *ret = v;
}

void leader_view_done(struct leader_view *v) {
        free(v->leader);
        v->leader = NULL;
}

static void step_down(struct leader *l, const char *why) {
        if (!atomic_exchange(&l->is_leader, false))
                return;
        log_warning("Stepping down as leader (term %llu): %s", (unsigned long long) l->term, why);
        view_set(l, false, NULL, l->term);
}

static void on_release(struct redis_client *c, redisReply *reply, void *userdata) {
        struct lop *o = userdata;
        struct leader *l = o->l;

        if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1)
                log_info("Released leadership (term %llu)", (unsigned long long) l->term);
        if (l->shutting_down && l->shutdown_done) {
                void (*done)(void *) = l->shutdown_done;
                l->shutdown_done = NULL;
                done(l->shutdown_userdata);
        }
        free(o);
}

static int send_release(struct leader *l) {
        struct lop *o = lop_new(l);
        int r;

        if (!o)
                return -ENOMEM;
        r = redis_client_command(l->s->redis, on_release, o, "EVAL %s 2 %s %s %s %s", lock_script_release, l->k_lock,
                                 l->k_holder, l->token, l->channel);
        if (r < 0)
                free(o);
        return r;
}

static void on_acquire(struct redis_client *c, redisReply *reply, void *userdata) {
        struct lop *o = userdata;
        struct leader *l = o->l;

        if (o->epoch != l->epoch)
                goto out;
        l->acquire_in_flight = false;
        if (!reply || reply->type != REDIS_REPLY_INTEGER || l->shutting_down)
                goto out;
        if (reply->integer > 0) {
                l->term = (uint64_t) reply->integer;
                l->last_good_usec = l->last_renew_usec = o->sent_usec;
                atomic_store(&l->is_leader, true);
                metrics_lock_acquired();
                view_set(l, true, l->s->id, l->term);
                log_info("Leading now (term %llu)", (unsigned long long) l->term);
        } else if (reply->integer < 0) {
                /* Held by another: try again right when its lease would end. */
                uint64_t next = now_usec() + (uint64_t) (-reply->integer) * USEC_PER_MSEC + USEC_PER_MSEC;
                uint64_t cur = 0;
                sd_event_source_get_time(l->timer, &cur);
                if (next < cur)
                        sd_event_source_set_time(l->timer, next);
        }
out:
        free(o);
}

static void on_renew(struct redis_client *c, redisReply *reply, void *userdata) {
        struct lop *o = userdata;
        struct leader *l = o->l;

        if (o->epoch != l->epoch)
                goto out;
        l->renew_in_flight = false;
        if (!reply || !atomic_load(&l->is_leader))
                goto out;
        if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 1)
                l->last_good_usec = o->sent_usec;
        else if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 0)
                step_down(l, "the lease was lost (another coordinatord holds the lock)");
out:
        free(o);
}

static void on_view(struct redis_client *c, redisReply *reply, void *userdata) {
        struct lop *o = userdata;
        struct leader *l = o->l;

        if (o->epoch != l->epoch)
                goto out;
        l->view_in_flight = false;
        if (atomic_load(&l->is_leader) || !reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2)
                goto out;
        redisReply *holder = reply->element[0], *fence = reply->element[1];
        uint64_t term = 0;
        if (fence->type == REDIS_REPLY_STRING)
                (void) parse_uint64(fence->str, &term);
        if (holder->type == REDIS_REPLY_STRING) {
                /* "ID, fence F" as written by the acquire script. */
                _cleanup_free_ char *id = strdup(holder->str);
                char *p = id ? strstr(id, ", fence ") : NULL;
                char *q;
                if (p) {
                        while ((q = strstr(p + 1, ", fence ")))
                                p = q;
                        uint64_t t;
                        if (parse_uint64(p + 8, &t) == 0)
                                term = t;
                        *p = '\0';
                }
                view_set(l, true, id, term);
        } else
                view_set(l, true, NULL, term);
out:
        free(o);
}

static int send_acquire(struct leader *l) {
        char lease_ms[32];
        struct lop *o;
        int r;

        if (l->acquire_in_flight || l->shutting_down || !redis_client_is_connected(l->s->redis))
                return 0;
        o = lop_new(l);
        if (!o)
                return -ENOMEM;
        snprintf(lease_ms, sizeof lease_ms, "%llu", (unsigned long long) (l->lease_usec / USEC_PER_MSEC));
        r = redis_client_command(l->s->redis, on_acquire, o, "EVAL %s 3 %s %s %s %s %s %s", lock_script_acquire,
                                 l->k_lock, l->k_fence, l->k_holder, l->token, lease_ms, l->s->id);
        if (r < 0) {
                free(o);
                return r;
        }
        l->acquire_in_flight = true;
        return 0;
}

static int on_tick(sd_event_source *es, uint64_t usec, void *userdata) {
        struct leader *l = userdata;
        uint64_t now = now_usec();
        char lease_ms[32];

        sd_event_source_set_time(es, now + l->tick_usec);
        if (l->shutting_down)
                return 0;
        if (!l->s->redis || !redis_client_is_connected(l->s->redis)) {
                step_down(l, "Redis is unreachable");
                return 0;
        }
        if (atomic_load(&l->is_leader)) {
                if (now - l->last_good_usec >= l->lease_usec - l->lease_usec / 4) {
                        step_down(l, "no lease renewal succeeded in time");
                        (void) send_release(l);
                        return 0;
                }
                if (!l->renew_in_flight && now - l->last_renew_usec >= l->lease_usec / 3) {
                        struct lop *o = lop_new(l);
                        snprintf(lease_ms, sizeof lease_ms, "%llu",
                                 (unsigned long long) (l->lease_usec / USEC_PER_MSEC));
                        if (o && redis_client_command(l->s->redis, on_renew, o, "EVAL %s 2 %s %s %s %s",
                                                      lock_script_renew, l->k_lock, l->k_holder, l->token,
                                                      lease_ms) == 0) {
                                l->renew_in_flight = true;
                                l->last_renew_usec = now;
                        } else
                                free(o);
                }
                return 0;
        }
        (void) send_acquire(l);
        if (!l->view_in_flight) {
                struct lop *o = lop_new(l);
                if (o && redis_client_command(l->s->redis, on_view, o, "MGET %s %s", l->k_holder, l->k_fence) == 0)
                        l->view_in_flight = true;
                else
                        free(o);
        }
        return 0;
}

static void on_released_msg(struct redis_client *c, const char *channel, const char *data, size_t len, void *userdata) {
        struct leader *l = userdata;

        /* The holder let go: try at once rather than at the next tick. */
        if (!atomic_load(&l->is_leader))
                (void) send_acquire(l);
}

void leader_on_redis(struct leader *l, bool connected) {
        l->epoch++;
        l->acquire_in_flight = l->renew_in_flight = l->view_in_flight = false;
        if (!connected) {
                step_down(l, "Redis connection lost");
                view_set(l, false, NULL, 0);
        } else
                sd_event_source_set_time(l->timer, now_usec());
}

int leader_shutdown(struct leader *l, void (*done)(void *userdata), void *userdata) {
        bool was = atomic_exchange(&l->is_leader, false);

        l->shutting_down = true;
        /* An acquisition in flight may win: the release queued behind it on
         * the same connection undoes that (it only deletes our own token). */
        if (!was && !l->acquire_in_flight)
                return 0;
        view_set(l, false, NULL, l->term);
        l->shutdown_done = done;
        l->shutdown_userdata = userdata;
        if (send_release(l) < 0) {
                l->shutdown_done = NULL;
                return 0;
        }
        return 1;
}

int leader_new(struct server *s, struct leader **ret) {
        struct leader *l = calloc(1, sizeof *l);
        int r;

        if (!l)
                return -ENOMEM;
        l->s = s;
        pthread_mutex_init(&l->view_lock, NULL);
        l->lease_usec = s->cfg.leader_lease;
        l->tick_usec = MIN(l->lease_usec / 5, LEADER_TICK_MAX_USEC);
        l->k_lock = key_lock(s->ns, LOCK_NAME_LEADER);
        l->k_fence = key_lock_fence(s->ns, LOCK_NAME_LEADER);
        l->k_holder = key_lock_holder(s->ns, LOCK_NAME_LEADER);
        l->channel = key_lock_channel(s->ns, LOCK_NAME_LEADER);
        if (!l->k_lock || !l->k_fence || !l->k_holder || !l->channel) {
                leader_free(l);
                return -ENOMEM;
        }
        r = random_hex(l->token, 16);
        if (r < 0) {
                leader_free(l);
                return r;
        }
        r = sd_event_add_time(s->event, &l->timer, CLOCK_MONOTONIC, now_usec() + l->tick_usec, USEC_PER_MSEC, on_tick,
                              l);
        if (r < 0) {
                leader_free(l);
                return r;
        }
        sd_event_source_set_enabled(l->timer, SD_EVENT_ON);
        if (s->redis) {
                r = redis_client_subscribe(s->redis, l->channel, on_released_msg, l);
                if (r < 0) {
                        leader_free(l);
                        return r;
                }
        }
        *ret = l;
        return 0;
}

struct leader *leader_free(struct leader *l) {
        if (!l)
                return NULL;
        sd_event_source_unref(l->timer);
        free(l->k_lock);
        free(l->k_fence);
        free(l->k_holder);
        free(l->channel);
        free(l->view_leader);
        pthread_mutex_destroy(&l->view_lock);
        free(l);
        return NULL;
}
