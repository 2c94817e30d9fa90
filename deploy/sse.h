/* An incremental parser for Server-Sent Events (the WHATWG "event stream"
 * format): feed it the bytes as they arrive, in chunks of any size, and it
 * calls back once per dispatched event.  Pure: no I/O, no clock.
 *
 * Lines end in LF, CRLF or CR (a CRLF split across two chunks is one line end).
 * "data:" lines of one event are joined with "\n"; "event:" sets the type
 * ("message" when absent); "id:" sets the last event id, which persists across
 * events (and across sse_parser_reset()) as the spec asks; "retry:" is kept;
 * lines starting with ":" are comments; a blank line dispatches.  An event
 * without data lines is not dispatched (an "id:" alone still moves the last id).
 *
 * Bounds: a line longer than max_line bytes, or an event whose data would exceed
 * max_event bytes, is dropped whole (the event it belongs to is not dispatched;
 * see sse_parser_dropped()); the parser then carries on with the next event.
 * An over-long comment line is skipped without harming its event. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

struct sse_event {
        const char *type;   /* never NULL */
        const char *id;     /* the last event id at dispatch, NULL when none was ever set */
        const char *data;   /* NUL-terminated; may contain NULs, see data_len */
        size_t data_len;
};

/* Called once per event; the event and its strings are only valid during the
 * call.  A negative return stops sse_parser_feed(), which returns it. */
typedef int (*sse_handler_t)(const struct sse_event *ev, void *userdata);

struct sse_parser;

/* NULL on allocation failure.  handler and userdata are borrowed. */
struct sse_parser *sse_parser_new(size_t max_line, size_t max_event, sse_handler_t handler, void *userdata);
struct sse_parser *sse_parser_free(struct sse_parser *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct sse_parser *, sse_parser_free)
#define _cleanup_sse_parser_ _cleanup_(sse_parser_freep)

/* Parse len bytes.  0, -ENOMEM, or the handler's negative return (the bytes
 * after that event are not consumed). */
int sse_parser_feed(struct sse_parser *p, const char *buf, size_t len);
/* A new connection: forget the partial line and event, keep the last id and retry. */
void sse_parser_reset(struct sse_parser *p);

/* The last event id seen (borrowed; NULL when none). */
const char *sse_parser_last_id(const struct sse_parser *p);
/* The last "retry:" value in milliseconds; false when none was sent. */
bool sse_parser_retry(const struct sse_parser *p, uint64_t *ret_msec);
/* Events dropped for exceeding a bound, and comment lines seen (keepalives). */
unsigned sse_parser_dropped(const struct sse_parser *p);
unsigned sse_parser_comments(const struct sse_parser *p);
