/* See sse.h. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <microhttpd.h>

#include "coordinatord.h"
#include "duration.h"
#include "http.h"
#include "jsonutil.h"
#include "keys.h"
#include "log.h"
#include "parse-util.h"
#include "redis_client.h"
#include "sse.h"
#include "strutil.h"

#define SSE_TICK_USEC (1000 * 1000)
#define SSE_POLL_USEC (3 * 1000 * 1000)
#define SSE_FETCH_COUNT 500
/* Past this much buffered (a slow client), fetch no more until it drains. */
#define SSE_BUFFER_HIGH (1024 * 1024)

struct stream {
        atomic_int ref;
        pthread_mutex_t lock;
        struct sse_hub *hub;
        struct MHD_Connection *conn;
        char id[NAME_MAX_LEN + 1];
        char *key;
        struct stream *next;  /* the hub's list (hub lock) */

        /* lock */
        char *buf;
        size_t len, off, cap;
        bool suspended;       /* the reader suspended the connection (or is about to) */
        bool end;             /* nothing more will be added: end once drained */
        bool closed;          /* libmicrohttpd is done with it */
        bool drained_wake;    /* tell the loop when the buffer is empty again */

        /* loop thread */
        uint64_t last_seq;
        uint64_t last_write_usec;
        bool want;            /* fetch on the next service */
        bool fetching;
};

struct sse_hub {
        struct server *s;
        pthread_mutex_t lock;
        struct stream *streams;
        atomic_size_t n;
        int efd;
        sd_event_source *io, *timer;
        char *channel;
        bool stopping;
        uint64_t last_poll_usec;
};

static void stream_unref(struct stream *st) {
        if (!st || atomic_fetch_sub(&st->ref, 1) != 1)
                return;
        free(st->buf);
        free(st->key);
        pthread_mutex_destroy(&st->lock);
        free(st);
}

static void hub_wake(struct sse_hub *h) {
        uint64_t one = 1;
        (void) !write(h->efd, &one, sizeof one);
}

/* ---- libmicrohttpd side ---- */

static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max) {
        struct stream *st = cls;
        bool wake = false;
        size_t n;

        pthread_mutex_lock(&st->lock);
        if (st->off < st->len) {
                n = MIN(max, st->len - st->off);
                memcpy(out, st->buf + st->off, n);
                st->off += n;
                if (st->off == st->len) {
                        st->off = st->len = 0;
                        wake = st->drained_wake;
                        st->drained_wake = false;
                }
                pthread_mutex_unlock(&st->lock);
                if (wake)
                        hub_wake(st->hub);
                return (ssize_t) n;
        }
        if (st->end) {
                pthread_mutex_unlock(&st->lock);
                return MHD_CONTENT_READER_END_OF_STREAM;
        }
        /* Nothing to send: park the connection until the loop has more.  A
         * resume that overtakes this suspend cancels it (libmicrohttpd). */
        st->suspended = true;
        pthread_mutex_unlock(&st->lock);
        MHD_suspend_connection(st->conn);
        return 0;
}

static void stream_free_cb(void *cls) {
        struct stream *st = cls;
        struct sse_hub *h = st->hub;

        pthread_mutex_lock(&st->lock);
        st->closed = true;
        pthread_mutex_unlock(&st->lock);
        stream_unref(st);
        hub_wake(h);
}

/* ---- loop side ---- */

/* Append (under the stream's lock) and resume the connection if it waits. */
static void stream_push(struct stream *st, const char *data, size_t len, bool end) {
        bool resume = false;

        pthread_mutex_lock(&st->lock);
        if (st->closed) {
                pthread_mutex_unlock(&st->lock);
                return;
        }
        if (len > 0 && st->len + len > st->cap) {
                size_t nc = MAX(st->cap * 2, st->len + len + 1024);
                char *nb;
                if (st->off > 0) {
                        memmove(st->buf, st->buf + st->off, st->len - st->off);
                        st->len -= st->off;
                        st->off = 0;
                }
                nb = realloc(st->buf, nc);
                if (!nb) {
                        /* Cannot buffer: end the stream; the client resumes with Last-Event-ID. */
                        st->end = true;
                        len = 0;
                } else {
                        st->buf = nb;
                        st->cap = nc;
                }
        }
        if (len > 0) {
                memcpy(st->buf + st->len, data, len);
                st->len += len;
        }
        if (end)
                st->end = true;
        if (st->suspended) {
                st->suspended = false;
                resume = true;
        }
        pthread_mutex_unlock(&st->lock);
        st->last_write_usec = now_usec();
        /* The connection cannot go away between the unlock and this call: it is
         * suspended, or its reader is still running (see stream_read()). */
        if (resume)
                MHD_resume_connection(st->conn);
}

static size_t stream_buffered(struct stream *st) {
        size_t n;

        pthread_mutex_lock(&st->lock);
        n = st->len - st->off;
        if (n > SSE_BUFFER_HIGH)
                st->drained_wake = true;
        pthread_mutex_unlock(&st->lock);
        return n;
}

static bool event_is_terminal(json_t *ev) {
        const char *type = json_string_value(json_object_get(ev, "type"));
        const char *state = json_string_value(json_object_get(ev, "state"));

        if (!type || strcmp(type, "state") != 0 || !state)
                return false;
        return strcmp(state, "succeeded") == 0 || strcmp(state, "failed") == 0 || strcmp(state, "reverted") == 0 ||
               strcmp(state, "cancelled") == 0;
}

/* Render XRANGE entries as SSE frames; returns the frames (caller frees). */
static char *render(struct stream *st, redisReply *reply, bool *ret_terminal_last, size_t *ret_len) {
        char *out = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&out, &size);
        bool terminal = false;

        if (!f)
                return NULL;
        for (size_t i = 0; i < reply->elements; i++) {
                redisReply *e = reply->element[i], *fields;
                const char *data = NULL, *dash;
                uint64_t seq;

                if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[0]->type != REDIS_REPLY_STRING)
                        continue;
                dash = strchr(e->element[0]->str, '-');
                if (!dash || parse_uint64(dash + 1, &seq) < 0)
                        continue;
                fields = e->element[1];
                for (size_t k = 0; fields->type == REDIS_REPLY_ARRAY && k + 1 < fields->elements; k += 2)
                        if (fields->element[k]->type == REDIS_REPLY_STRING && strcmp(fields->element[k]->str, "data") == 0 &&
                            fields->element[k + 1]->type == REDIS_REPLY_STRING)
                                data = fields->element[k + 1]->str;
                st->last_seq = MAX(st->last_seq, seq);
                if (!data || strchr(data, '\n'))
                        continue;
                _cleanup_json_ json_t *ev = json_loads(data, 0, NULL);
                const char *type = json_string_value(json_object_get(ev, "type"));
                fprintf(f, "id: %" PRIu64 "\nevent: %s\ndata: %s\n\n", seq, type ? type : "message", data);
                terminal = ev && event_is_terminal(ev);
        }
        if (fclose(f) != 0) {
                free(out);
                return NULL;
        }
        *ret_terminal_last = terminal;
        *ret_len = size;
        return out;
}

static void on_range(struct redis_client *c, redisReply *reply, void *userdata) {
        struct stream *st = userdata;
        _cleanup_free_ char *frames = NULL;
        bool terminal = false, full;
        size_t len = 0;

        st->fetching = false;
        if (!reply || reply->type != REDIS_REPLY_ARRAY) {
                st->want = true; /* retried on the next tick */
                stream_unref(st);
                return;
        }
        full = reply->elements >= SSE_FETCH_COUNT;
        frames = render(st, reply, &terminal, &len);
        if (frames && len > 0)
                stream_push(st, frames, len, terminal && !full);
        if (full)
                st->want = true;
        stream_unref(st);
}

static void stream_fetch(struct sse_hub *h, struct stream *st) {
        char start[48], count[16];
        int r;

        if (st->fetching || !redis_client_is_connected(h->s->redis))
                return;
        if (stream_buffered(st) > SSE_BUFFER_HIGH)
                return; /* drained_wake brings us back */
        snprintf(start, sizeof start, "0-%" PRIu64, st->last_seq + 1);
        snprintf(count, sizeof count, "%d", SSE_FETCH_COUNT);
        atomic_fetch_add(&st->ref, 1);
        r = redis_client_commandargv(h->s->redis, on_range, st, 6,
                                     (const char *[]) { "XRANGE", st->key, start, "+", "COUNT", count }, NULL);
        if (r < 0) {
                stream_unref(st);
                return;
        }
        st->want = false;
        st->fetching = true;
}

/* Drop closed streams, fetch where wanted, keep idle ones alive. */
static void hub_service(struct sse_hub *h, bool poll_all) {
        uint64_t now = now_usec();

        pthread_mutex_lock(&h->lock);
        for (struct stream **p = &h->streams; *p;) {
                struct stream *st = *p;
                bool closed, ended;

                pthread_mutex_lock(&st->lock);
                closed = st->closed;
                ended = st->end;
                pthread_mutex_unlock(&st->lock);
                if (closed) {
                        *p = st->next;
                        atomic_fetch_sub(&h->n, 1);
                        stream_unref(st);
                        continue;
                }
                p = &st->next;
                if (ended || h->stopping)
                        continue;
                if (poll_all)
                        st->want = true;
                if (st->want)
                        stream_fetch(h, st);
                if (now - st->last_write_usec >= SSE_KEEPALIVE_USEC)
                        stream_push(st, ": keepalive\n\n", 13, false);
        }
        pthread_mutex_unlock(&h->lock);
}

static int on_efd(sd_event_source *es, int fd, uint32_t revents, void *userdata) {
        struct sse_hub *h = userdata;
        uint64_t v;

        (void) !read(fd, &v, sizeof v);
        hub_service(h, false);
        return 0;
}

static int on_tick(sd_event_source *es, uint64_t usec, void *userdata) {
        struct sse_hub *h = userdata;
        uint64_t now = now_usec();
        bool poll = now - h->last_poll_usec >= SSE_POLL_USEC;

        (void) sd_event_source_set_time(es, now + SSE_TICK_USEC);
        if (poll)
                h->last_poll_usec = now;
        hub_service(h, poll);
        return 0;
}

/* "ID SEQ": fetch the streams of that deployment now. */
static void on_message(struct redis_client *c, const char *channel, const char *data, size_t len, void *userdata) {
        struct sse_hub *h = userdata;
        char id[NAME_MAX_LEN + 1];
        size_t l = strcspn(data, " ");
        bool any = false;

        if (l == 0 || l > NAME_MAX_LEN)
                return;
        memcpy(id, data, l);
        id[l] = '\0';
        pthread_mutex_lock(&h->lock);
        for (struct stream *st = h->streams; st; st = st->next)
                if (strcmp(st->id, id) == 0) {
                        st->want = true;
                        any = true;
                }
        pthread_mutex_unlock(&h->lock);
        if (any)
                hub_service(h, false);
}

void sse_hub_on_redis(struct sse_hub *h, bool connected) {
        if (!h)
                return;
        pthread_mutex_lock(&h->lock);
        for (struct stream *st = h->streams; st; st = st->next) {
                st->fetching = false; /* replies of the old connection came back NULL */
                st->want = true;
        }
        pthread_mutex_unlock(&h->lock);
        if (connected)
                hub_service(h, true);
}

void sse_hub_attach(struct sse_hub *h, struct request *req, const char *id, uint64_t last_seq) {
        struct stream *st = calloc(1, sizeof *st);
        static const char hello[] = "retry: 1000\n\n";

        if (!st || !(st->key = key_deployment_events(h->s->ns, id))) {
                free(st);
                http_reply_error(req, 500, "internal", "out of memory");
                return;
        }
        atomic_init(&st->ref, 2); /* the hub's and the response's */
        pthread_mutex_init(&st->lock, NULL);
        st->hub = h;
        st->conn = req->conn;
        snprintf(st->id, sizeof st->id, "%s", id);
        st->last_seq = last_seq;
        st->want = true;
        st->last_write_usec = now_usec();
        st->buf = strdup(hello);
        st->len = st->buf ? strlen(hello) : 0;
        st->cap = st->len;

        http_reply_stream(req, 200, "text/event-stream", stream_read, st, stream_free_cb);
        if (req->status == 0) {
                stream_unref(st); /* the response's was dropped by http_reply_stream */
                return;
        }
        pthread_mutex_lock(&h->lock);
        st->next = h->streams;
        h->streams = st;
        atomic_fetch_add(&h->n, 1);
        pthread_mutex_unlock(&h->lock);
        hub_wake(h);
}

size_t sse_hub_streams(struct sse_hub *h) {
        return h ? atomic_load(&h->n) : 0;
}

void sse_hub_shutdown(struct sse_hub *h) {
        if (!h)
                return;
        pthread_mutex_lock(&h->lock);
        h->stopping = true;
        for (struct stream *st = h->streams; st; st = st->next)
                stream_push(st, NULL, 0, true);
        pthread_mutex_unlock(&h->lock);
}

int sse_hub_new(struct server *s, struct sse_hub **ret) {
        struct sse_hub *h = calloc(1, sizeof *h);
        int r;

        if (!h)
                return -ENOMEM;
        h->s = s;
        h->efd = -1;
        pthread_mutex_init(&h->lock, NULL);
        h->channel = key_deployment_events_channel(s->ns);
        h->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (!h->channel || h->efd < 0) {
                sse_hub_free(h);
                return -ENOMEM;
        }
        r = sd_event_add_io(s->event, &h->io, h->efd, EPOLLIN, on_efd, h);
        if (r >= 0)
                r = sd_event_add_time(s->event, &h->timer, CLOCK_MONOTONIC, now_usec() + SSE_TICK_USEC, 0, on_tick, h);
        if (r >= 0)
                r = sd_event_source_set_enabled(h->timer, SD_EVENT_ON);
        if (r >= 0 && s->redis)
                r = redis_client_subscribe(s->redis, h->channel, on_message, h);
        if (r < 0) {
                sse_hub_free(h);
                return r;
        }
        *ret = h;
        return 0;
}

struct sse_hub *sse_hub_free(struct sse_hub *h) {
        if (!h)
                return NULL;
        sd_event_source_disable_unref(h->io);
        sd_event_source_disable_unref(h->timer);
        while (h->streams) {
                struct stream *st = h->streams;
                h->streams = st->next;
                stream_unref(st);
        }
        if (h->efd >= 0)
                close(h->efd);
        free(h->channel);
        pthread_mutex_destroy(&h->lock);
        free(h);
        return NULL;
}
