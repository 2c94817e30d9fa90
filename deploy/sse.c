/* See sse.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sse.h"

struct growbuf {
        char *p;
        size_t len, alloc;
};

struct sse_parser {
        size_t max_line, max_event;
        sse_handler_t handler;
        void *userdata;

        struct growbuf line;  /* the line being assembled, without its end */
        bool line_too_long;   /* the current line passed max_line: drop it */
        bool long_comment;    /* ... and it is a comment, which harms no event */
        bool skip_lf;         /* the previous byte was a CR: a LF now ends nothing */
        bool at_start;        /* nothing of this connection seen yet: strip a BOM */

        struct growbuf data;  /* data lines so far, each followed by "\n" */
        char *type;           /* "event:" value, NULL when none */
        bool event_broken;    /* a line or the data of this event went over a bound */

        char *last_id;
        bool has_retry;
        uint64_t retry_msec;
        unsigned dropped, comments;
};

/* Append n bytes plus a NUL; the NUL is not counted in len. */
static int growbuf_append(struct growbuf *b, const char *s, size_t n) {
        if (b->len + n + 1 > b->alloc) {
                size_t a = b->alloc ? b->alloc : 256;
                while (a < b->len + n + 1)
                        a *= 2;
                char *np = realloc(b->p, a);
                if (!np)
                        return -ENOMEM;
                b->p = np;
                b->alloc = a;
        }
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = '\0';
        return 0;
}

struct sse_parser *sse_parser_new(size_t max_line, size_t max_event, sse_handler_t handler, void *userdata) {
        struct sse_parser *p = calloc(1, sizeof *p);

        if (!p)
                return NULL;
        p->max_line = max_line;
        p->max_event = max_event;
        p->handler = handler;
        p->userdata = userdata;
        p->at_start = true;
        return p;
}

static void event_clear(struct sse_parser *p) {
        p->data.len = 0;
        if (p->data.p)
                p->data.p[0] = '\0';
        p->type = mfree(p->type);
        p->event_broken = false;
}

struct sse_parser *sse_parser_free(struct sse_parser *p) {
        if (!p)
                return NULL;
        free(p->line.p);
        free(p->data.p);
        free(p->type);
        free(p->last_id);
        free(p);
        return NULL;
}

void sse_parser_reset(struct sse_parser *p) {
        p->line.len = 0;
        p->line_too_long = false;
        p->long_comment = false;
        p->skip_lf = false;
        p->at_start = true;
        event_clear(p);
}

static int dispatch(struct sse_parser *p) {
        struct sse_event ev;
        int r;

        if (p->event_broken) {
                p->dropped++;
                event_clear(p);
                return 0;
        }
        if (p->data.len == 0) {
                event_clear(p);
                return 0;
        }
        /* Drop the "\n" that followed the last data line. */
        p->data.p[--p->data.len] = '\0';
        ev = (struct sse_event) {
                .type = p->type ? p->type : "message",
                .id = p->last_id,
                .data = p->data.p,
                .data_len = p->data.len,
        };
        r = p->handler ? p->handler(&ev, p->userdata) : 0;
        event_clear(p);
        return r < 0 ? r : 0;
}

static bool field_is(const char *f, size_t n, const char *name) {
        return n == strlen(name) && memcmp(f, name, n) == 0;
}

static int process_field(struct sse_parser *p, const char *f, size_t fn, const char *v, size_t vn) {
        if (field_is(f, fn, "data")) {
                if (p->event_broken)
                        return 0;
                if (p->data.len + vn + 1 > p->max_event) {
                        p->event_broken = true;
                        return 0;
                }
                if (growbuf_append(&p->data, v, vn) < 0 || growbuf_append(&p->data, "\n", 1) < 0)
                        return -ENOMEM;
        } else if (field_is(f, fn, "event")) {
                char *t = strndup(v, vn);
                if (!t)
                        return -ENOMEM;
                free(p->type);
                p->type = t;
        } else if (field_is(f, fn, "id")) {
                if (memchr(v, '\0', vn))
                        return 0; /* the spec ignores such ids */
                char *id = strndup(v, vn);
                if (!id)
                        return -ENOMEM;
                free(p->last_id);
                p->last_id = id;
        } else if (field_is(f, fn, "retry")) {
                uint64_t ms = 0;
                if (vn == 0 || vn > 10)
                        return 0;
                for (size_t i = 0; i < vn; i++) {
                        if (v[i] < '0' || v[i] > '9')
                                return 0;
                        ms = ms * 10 + (uint64_t) (v[i] - '0');
                }
                p->retry_msec = ms;
                p->has_retry = true;
        }
        /* Other fields are ignored, as the spec asks. */
        return 0;
}

static int process_line(struct sse_parser *p) {
        const char *l = p->line.p ? p->line.p : "";
        size_t n = p->line.len;
        const char *colon;

        if (p->at_start) {
                p->at_start = false;
                if (n >= 3 && memcmp(l, "\xEF\xBB\xBF", 3) == 0) {
                        l += 3;
                        n -= 3;
                }
        }
        if (n == 0)
                return dispatch(p);
        if (l[0] == ':') {
                p->comments++;
                return 0;
        }
        colon = memchr(l, ':', n);
        if (!colon)
                return process_field(p, l, n, "", 0);
        size_t fn = (size_t) (colon - l);
        const char *v = colon + 1;
        size_t vn = n - fn - 1;
        if (vn > 0 && v[0] == ' ') {
                v++;
                vn--;
        }
        return process_field(p, l, fn, v, vn);
}

static int end_line(struct sse_parser *p) {
        int r = 0;

        if (p->line_too_long) {
                /* A line we could not hold: unless a comment, the event it belongs to is incomplete. */
                if (p->long_comment)
                        p->comments++;
                else
                        p->event_broken = true;
                p->line_too_long = false;
                p->at_start = false;
        } else
                r = process_line(p);
        p->line.len = 0;
        return r;
}

int sse_parser_feed(struct sse_parser *p, const char *buf, size_t len) {
        size_t i = 0;
        int r;

        while (i < len) {
                if (p->skip_lf) {
                        p->skip_lf = false;
                        if (buf[i] == '\n') {
                                i++;
                                continue;
                        }
                }
                /* The run of bytes up to the next line end. */
                size_t j = i;
                while (j < len && buf[j] != '\n' && buf[j] != '\r')
                        j++;
                if (j > i && !p->line_too_long) {
                        if (p->line.len + (j - i) > p->max_line) {
                                p->line_too_long = true;
                                p->long_comment = (p->line.len > 0 ? p->line.p[0] : buf[i]) == ':';
                        } else if (growbuf_append(&p->line, buf + i, j - i) < 0)
                                return -ENOMEM;
                }
                if (j == len)
                        break;
                p->skip_lf = buf[j] == '\r';
                i = j + 1;
                r = end_line(p);
                if (r < 0)
                        return r;
        }
        return 0;
}

const char *sse_parser_last_id(const struct sse_parser *p) {
        return p->last_id;
}

bool sse_parser_retry(const struct sse_parser *p, uint64_t *ret_msec) {
        if (!p->has_retry)
                return false;
        *ret_msec = p->retry_msec;
        return true;
}

unsigned sse_parser_dropped(const struct sse_parser *p) {
        return p->dropped;
}

unsigned sse_parser_comments(const struct sse_parser *p) {
        return p->comments;
}
