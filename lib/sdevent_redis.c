/* See sdevent_redis.h.
 *
 * One sd_event_source_io per context; hiredis' add/del hooks edit its epoll
 * mask, and an empty mask disables the source.  hiredis may free the context
 * (and through cleanup() this adapter) from inside redisAsyncHandleRead(), so
 * the I/O callback holds a reference on the adapter while it dispatches and
 * checks whether cleanup() ran before touching the context again.  Unreferencing the source from inside its
 * own dispatch is safe in sd-event (it is disconnected at once, freed after). */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>

#include "sdevent_redis.h"

struct sdevent_redis {
        redisAsyncContext *ac;
        sd_event_source *source;
        uint32_t mask;
        unsigned refs; /* 1 for hiredis, +1 while io_cb() dispatches */
        bool dead;     /* cleanup() ran: ac is gone */
};

static void adapter_unref(struct sdevent_redis *a) {
        if (--a->refs == 0)
                free(a);
}

static void update(struct sdevent_redis *a, uint32_t mask) {
        if (mask == a->mask)
                return;
        a->mask = mask;
        if (!a->source)
                return;
        /* These hooks cannot report failure; sd-event only fails here on a dead
         * loop or ENOMEM, and hiredis' own timeouts/keepalive catch a stall. */
        if (mask == 0) {
                (void) sd_event_source_set_enabled(a->source, SD_EVENT_OFF);
                return;
        }
        (void) sd_event_source_set_io_events(a->source, mask);
        (void) sd_event_source_set_enabled(a->source, SD_EVENT_ON);
}

static void add_read(void *privdata) {
        struct sdevent_redis *a = privdata;
        update(a, a->mask | EPOLLIN);
}

static void del_read(void *privdata) {
        struct sdevent_redis *a = privdata;
        update(a, a->mask & ~(uint32_t) EPOLLIN);
}

static void add_write(void *privdata) {
        struct sdevent_redis *a = privdata;
        update(a, a->mask | EPOLLOUT);
}

static void del_write(void *privdata) {
        struct sdevent_redis *a = privdata;
        update(a, a->mask & ~(uint32_t) EPOLLOUT);
}

static void cleanup(void *privdata) {
        struct sdevent_redis *a = privdata;

        if (!a)
                return;
        a->dead = true;
        a->source = sd_event_source_unref(a->source);
        if (a->ac) {
                a->ac->ev.data = NULL;
                a->ac->ev.addRead = a->ac->ev.delRead = NULL;
                a->ac->ev.addWrite = a->ac->ev.delWrite = NULL;
                a->ac->ev.cleanup = NULL;
                a->ac = NULL;
        }
        adapter_unref(a);
}

static int io_cb(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct sdevent_redis *a = userdata;
        redisAsyncContext *ac = a->ac;
        bool error = revents & (EPOLLERR | EPOLLHUP);
        uint32_t mask = a->mask;

        (void) s;
        (void) fd;
        a->refs++;
        /* On ERR/HUP let whichever side is waiting find out (a failed connect
         * surfaces through the write handler, a closed peer through read). */
        if ((revents & EPOLLIN) || (error && (mask & EPOLLIN)))
                redisAsyncHandleRead(ac);
        if (!a->dead && ((revents & EPOLLOUT) || (error && (mask & EPOLLOUT) && !(mask & EPOLLIN))))
                redisAsyncHandleWrite(ac);
        adapter_unref(a);
        return 0;
}

int sdevent_redis_attach(redisAsyncContext *ac, sd_event *e) {
        struct sdevent_redis *a;
        int r;

        if (!ac || !e)
                return -EINVAL;
        if (ac->ev.data)
                return -EEXIST;
        if (ac->c.fd < 0)
                return -EBADF;

        a = calloc(1, sizeof *a);
        if (!a)
                return -ENOMEM;
        a->ac = ac;
        a->refs = 1;
        r = sd_event_add_io(e, &a->source, ac->c.fd, 0, io_cb, a);
        if (r < 0) {
                free(a);
                return r;
        }
        (void) sd_event_source_set_description(a->source, "redis");
        (void) sd_event_source_set_enabled(a->source, SD_EVENT_OFF);

        ac->ev.data = a;
        ac->ev.addRead = add_read;
        ac->ev.delRead = del_read;
        ac->ev.addWrite = add_write;
        ac->ev.delWrite = del_write;
        ac->ev.cleanup = cleanup;

        /* A non-blocking connect completes on the first writable event: wait for
         * it even before the first command, so the connect callback fires. */
        if (!(ac->c.flags & REDIS_CONNECTED))
                add_write(a);
        return 0;
}
