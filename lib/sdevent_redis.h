/* hiredis async adapter for sd-event (Debian's hiredis 0.14 has none).
 * Registers the context's fd with the loop and maps hiredis' addRead/delRead/
 * addWrite/delWrite/cleanup hooks to one sd_event_source's event mask. */
#pragma once

#include <hiredis/async.h>
#include <systemd/sd-event.h>

/* Attach ac to e.  Returns 0, -EEXIST if ac already has an adapter, -errno.
 * The adapter frees itself when hiredis calls cleanup (on redisAsyncFree or
 * disconnect). */
int sdevent_redis_attach(redisAsyncContext *ac, sd_event *e);
