/* Unit tests for deploy/sse.c: the incremental Server-Sent Events parser. */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deploy/sse.h"
#include "strutil.h"
#include "test-main.h"

#define REC_MAX 32

/* Each dispatched event as "type|id|data" ("-" for no id; NULs in data as "\\0"). */
struct rec {
        char *ev[REC_MAX];
        size_t n;
        size_t stop_after; /* return -ECANCELED from this event on (1-based); 0 never */
};

static int record(const struct sse_event *ev, void *userdata) {
        struct rec *r = userdata;
        char data[512];
        size_t o = 0;

        ck_assert_uint_lt(r->n, REC_MAX);
        ck_assert_ptr_nonnull(ev->type);
        ck_assert_uint_eq(ev->data[ev->data_len], '\0');
        for (size_t i = 0; i < ev->data_len && o + 3 < sizeof data; i++) {
                if (ev->data[i] == '\0') {
                        data[o++] = '\\';
                        data[o++] = '0';
                } else
                        data[o++] = ev->data[i];
        }
        data[o] = '\0';
        r->ev[r->n] = strdup_printf("%s|%s|%s", ev->type, ev->id ? ev->id : "-", data);
        ck_assert_ptr_nonnull(r->ev[r->n]);
        r->n++;
        if (r->stop_after && r->n >= r->stop_after)
                return -ECANCELED;
        return 0;
}

static void rec_clear(struct rec *r) {
        for (size_t i = 0; i < r->n; i++)
                free(r->ev[i]);
        r->n = 0;
}

static void rec_expect(struct rec *r, const char *const *want, size_t n, const char *ctx) {
        ck_assert_msg(r->n == n, "%s: got %zu events, want %zu", ctx, r->n, n);
        for (size_t i = 0; i < n; i++)
                ck_assert_msg(strcmp(r->ev[i], want[i]) == 0, "%s: event %zu is '%s', want '%s'", ctx, i, r->ev[i],
                              want[i]);
}

/* Everything at once: BOM, comments, LF, CRLF and lone CR line ends, multi-line
 * data, the one optional space, an id without data, unknown fields, retry, a
 * field without a colon, and a last event left without its blank line. */
static const char stream[] =
        "\xEF\xBB\xBF: hello\n"
        "id: 1\n"
        "event: state\n"
        "data: {\"a\":1}\n"
        "\n"
        "id: 2\r\n"
        "event: instance\r\n"
        "data: line1\r\n"
        "data:line2\r\n"
        "data:  indented\r\n"
        "\r\n"
        ": keepalive\r"
        "\r"
        "id: 3\r"
        "data: cr only\r"
        "\r"
        "id: 4\n"
        "\n"
        "data: after bare id\n"
        "\n"
        "event: custom\n"
        "retry: 1500\n"
        "unknown: field\n"
        "data\n"
        "\n"
        "data: not finished";

static const char *const stream_events[] = {
        "state|1|{\"a\":1}",
        "instance|2|line1\nline2\n indented",
        "message|3|cr only",
        "message|4|after bare id",
        "custom|4|",
};

/* After the whole stream, in chunks of any size: its events and the parser's state. */
static void check_stream(struct sse_parser *p, struct rec *r, const char *ctx) {
        uint64_t retry = 0;

        rec_expect(r, stream_events, ELEMENTSOF(stream_events), ctx);
        rec_clear(r);
        ck_assert_msg(sse_parser_last_id(p) && strcmp(sse_parser_last_id(p), "4") == 0, "%s: last id", ctx);
        ck_assert_msg(sse_parser_retry(p, &retry) && retry == 1500, "%s: retry", ctx);
        ck_assert_msg(sse_parser_comments(p) == 2, "%s: comments %u", ctx, sse_parser_comments(p));
        ck_assert_uint_eq(sse_parser_dropped(p), 0);
}

START_TEST(test_whole) {
        struct rec r = {};
        _cleanup_sse_parser_ struct sse_parser *p = sse_parser_new(1024, 4096, record, &r);

        ck_assert_ptr_nonnull(p);
        ck_assert_int_eq(sse_parser_feed(p, stream, sizeof stream - 1), 0);
        check_stream(p, &r, "whole");
}
END_TEST

/* Split in two at every byte, and into three at every pair of positions. */
START_TEST(test_every_boundary) {
        size_t len = sizeof stream - 1;
        char ctx[64];

        for (size_t i = 0; i <= len; i++)
                for (size_t j = i; j <= len; j++) {
                        struct rec r = {};
                        _cleanup_sse_parser_ struct sse_parser *p = sse_parser_new(1024, 4096, record, &r);

                        ck_assert_ptr_nonnull(p);
                        ck_assert_int_eq(sse_parser_feed(p, stream, i), 0);
                        ck_assert_int_eq(sse_parser_feed(p, stream + i, j - i), 0);
                        ck_assert_int_eq(sse_parser_feed(p, stream + j, len - j), 0);
                        snprintf(ctx, sizeof ctx, "split at %zu,%zu", i, j);
                        check_stream(p, &r, ctx);
                }
}
END_TEST

START_TEST(test_byte_by_byte) {
        struct rec r = {};
        _cleanup_sse_parser_ struct sse_parser *p = sse_parser_new(1024, 4096, record, &r);

        for (size_t i = 0; i < sizeof stream - 1; i++)
                ck_assert_int_eq(sse_parser_feed(p, stream + i, 1), 0);
        check_stream(p, &r, "byte by byte");
}
END_TEST

/* A CR ending one chunk and the LF starting the next are one line end, not two
 * (two would be a blank line and dispatch the event half-way). */
START_TEST(test_crlf_across_chunks) {
        struct rec r = {};
        _cleanup_sse_parser_ struct sse_parser *p = sse_parser_new(1024, 4096, record, &r);
        static const char *const want[] = { "message|-|a\nb" };

        ck_assert_int_eq(sse_parser_feed(p, "data: a\r", 8), 0);
        ck_assert_int_eq(sse_parser_feed(p, "\ndata: b\r", 9), 0);
        ck_assert_uint_eq(r.n, 0);
        ck_assert_int_eq(sse_parser_feed(p, "\n\r", 2), 0);
        ck_assert_uint_eq(r.n, 1);
        ck_assert_int_eq(sse_parser_feed(p, "\n", 1), 0); /* the LF of that CRLF: nothing more */
        rec_expect(&r, want, 1, "crlf");
        rec_clear(&r);
}
END_TEST

START_TEST(test_id_without_data) {
        struct rec r = {};
        _cleanup_sse_parser_ struct sse_parser *p = sse_parser_new(1024, 4096, record, &r);
        static const char *const want[] = { "message|8|x", "message|8|y", "message||z" };

        ck_assert_ptr_null(sse_parser_last_id(p));
        ck_assert_int_eq(sse_parser_feed(p, "id: 7\n\n", 7), 0);
        ck_assert_uint_eq(r.n, 0);
        ck_assert_str_eq(sse_parser_last_id(p), "7");
        ck_assert_int_eq(sse_parser_feed(p, "event: state\nid: 8\n\n", 20), 0);
        ck_assert_uint_eq(r.n, 0);
        ck_assert_str_eq(sse_parser_last_id(p), "8");
        /* The type of the event without data does not leak into the next one. */
        ck_assert_int_eq(sse_parser_feed(p, "data: x\n\ndata: y\n\n", 18), 0);
        /* An id with a NUL is ignored; an empty id resets it. */
        ck_assert_int_eq(sse_parser_feed(p, "id: a\0b\n\n", 9), 0);
        ck_assert_str_eq(sse_parser_last_id(p), "8");
        ck_assert_int_eq(sse_parser_feed(p, "id\ndata: z\n\n", 12), 0);
        ck_assert_str_eq(sse_parser_last_id(p), "");
        rec_expect(&r, want, 3, "id without data");
        rec_clear(&r);
}
END_TEST

/* A string literal as the text to feed and its length (NULs included). */
#define IN(s) .in = s, .len = sizeof(s) - 1
#define IN2(s) .in2 = s, .len2 = sizeof(s) - 1

/* Feeds into a parser of max_line and max_event: in, then (after a reset
 * when reset) in2 when given; the events want, and the dropped events and
 * comments counted (-1: not checked). */
static const struct feed_case {
        const char *name;
        size_t max_line, max_event;
        const char *in, *in2;
        size_t len, len2;
        bool reset;
        const char *want[6]; /* NULL-terminated */
        int dropped, comments;
} feeds[] = {
        { .name = "comments", .max_line = 1024, .max_event = 4096,
          IN(": keepalive\n\n:\n\n: data: not data\ndata: real\n: between\n\n"),
          .want = { "message|-|real" }, .dropped = -1, .comments = 4 },
        { .name = "spaces", .max_line = 1024, .max_event = 4096,
          IN("data:x\n\ndata: x\n\ndata:  x\n\ndata: a\0b\n\ndata: \n\n"),
          .want = { "message|-|x", "message|-|x", "message|-| x", "message|-|a\\0b", "message|-|" },
          .dropped = -1, .comments = -1 },
        /* "data: 0123456789" is exactly 16 bytes: allowed. */
        { .name = "at limit", .max_line = 16, .max_event = 4096, IN("data: 0123456789\r\n\r\n"),
          .want = { "message|-|0123456789" }, .dropped = 0, .comments = -1 },
        { .name = "oversize event", .max_line = 64, .max_event = 24,
          IN("data: 0123456789\ndata: 0123456789\ndata: 0123456789\n\ndata: 0123456789\n\n"),
          .want = { "message|-|0123456789" }, .dropped = 1, .comments = -1 },
        /* A new connection drops the half-read event but remembers the last id. */
        { .name = "reset", .max_line = 1024, .max_event = 4096,
          IN("id: 5\nevent: state\ndata: half\ndata: a line cut sh"), IN2("ort\n\ndata: x\n\n"), .reset = true,
          .want = { "message|5|x" }, .dropped = -1, .comments = -1 },
        /* The second BOM is part of a field name, so that line is an unknown field. */
        { .name = "bom", .max_line = 1024, .max_event = 4096, IN("\xEF\xBB"),
          IN2("\xBF" "data: a\n\n\xEF\xBB\xBF" "data: b\n\n"), .want = { "message|-|a" }, .dropped = -1,
          .comments = -1 },
};

START_TEST(test_feed) {
        const struct feed_case *c = &feeds[_i];
        struct rec r = {};
        _cleanup_sse_parser_ struct sse_parser *p = sse_parser_new(c->max_line, c->max_event, record, &r);
        size_t n = 0;

        while (n < ELEMENTSOF(c->want) && c->want[n])
                n++;
        ck_assert_int_eq(sse_parser_feed(p, c->in, c->len), 0);
        if (c->reset)
                sse_parser_reset(p);
        if (c->in2)
                ck_assert_int_eq(sse_parser_feed(p, c->in2, c->len2), 0);
        rec_expect(&r, c->want, n, c->name);
        if (c->dropped >= 0)
                ck_assert_uint_eq(sse_parser_dropped(p), (size_t) c->dropped);
        if (c->comments >= 0)
                ck_assert_uint_eq(sse_parser_comments(p), (size_t) c->comments);
        rec_clear(&r);
}
END_TEST

/* A line over max_line drops its event (never a truncated one), at any
 * chunking; an over-long comment drops nothing. */
START_TEST(test_oversize_line) {
        static const char in[] =
                "data: short\n\n"
                "data: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n\n"
                "id: 9\ndata: ok before\ndata: this line is far too long\ndata: ok after\n\n"
                ": a comment that is also far too long\n"
                "data: fine\n\n";
        static const char *const want[] = { "message|-|short", "message|9|fine" };
        size_t len = sizeof in - 1;

        for (size_t i = 0; i <= len; i++) {
                struct rec r = {};
                _cleanup_sse_parser_ struct sse_parser *p = sse_parser_new(16, 4096, record, &r);
                char ctx[32];

                ck_assert_int_eq(sse_parser_feed(p, in, i), 0);
                ck_assert_int_eq(sse_parser_feed(p, in + i, len - i), 0);
                snprintf(ctx, sizeof ctx, "oversize line, split %zu", i);
                rec_expect(&r, want, 2, ctx);
                ck_assert_uint_eq(sse_parser_dropped(p), 2);
                ck_assert_uint_eq(sse_parser_comments(p), 1);
                ck_assert_str_eq(sse_parser_last_id(p), "9");
                rec_clear(&r);
        }
}
END_TEST

START_TEST(test_handler_stops) {
        struct rec r = { .stop_after = 2 };
        _cleanup_sse_parser_ struct sse_parser *p = sse_parser_new(1024, 4096, record, &r);
        static const char in[] = "id: 1\ndata: a\n\nid: 2\ndata: b\n\nid: 3\ndata: c\n\n";

        ck_assert_int_eq(sse_parser_feed(p, in, sizeof in - 1), -ECANCELED);
        ck_assert_uint_eq(r.n, 2);
        ck_assert_str_eq(sse_parser_last_id(p), "2");
        rec_clear(&r);
}
END_TEST

static void add_tests(TCase *tc) {
        tcase_add_test(tc, test_whole);
        tcase_add_test(tc, test_every_boundary);
        tcase_add_test(tc, test_byte_by_byte);
        tcase_add_test(tc, test_crlf_across_chunks);
        tcase_add_test(tc, test_id_without_data);
        tcase_add_loop_test(tc, test_feed, 0, (int) ELEMENTSOF(feeds));
        tcase_add_test(tc, test_oversize_line);
        tcase_add_test(tc, test_handler_stops);
}

TEST_MAIN("sse", add_tests)
