/* coordctl deploy/status/deployments/pause/resume/cancel/revert: the rollout
 * commands, clients of coordinatord's deployment API (docs/deployments.md).
 *
 * deploy (and revert --follow) follow the deployment's Server-Sent Events
 * stream with a libcurl multi handle, so one loop can also redraw the live
 * view every second and notice Ctrl-C and --timeout.  A dropped stream is
 * resumed with Last-Event-ID on the next base URL of --url after a short
 * backoff.  The parsing (sse.c) and the view model (deploy-view.c) are pure
 * and unit-tested; this file is the I/O around them. */
#include <errno.h>
#include <getopt.h>
#include <langinfo.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "backoff.h"
#include "coordctl.h"
#include "deploy-view.h"
#include "duration.h"
#include "exitcode.h"
#include "jsonutil.h"
#include "parse-util.h"
#include "sse.h"
#include "strutil.h"

#define EXIT_INTERRUPTED 130

#define SSE_LINE_MAX (256 * 1024)
#define SSE_EVENT_MAX (1024 * 1024)
#define ERROR_BODY_MAX (64 * 1024)
#define POST_RETRIES 3
#define RECONNECT_BASE_USEC (200 * USEC_PER_MSEC)
#define RECONNECT_CAP_USEC (2 * USEC_PER_SEC)
#define UNREACHABLE_USEC (30 * USEC_PER_SEC)
#define STREAM_IDLE_SEC 35L /* the server sends a keepalive every 10 s of silence */
#define LOOP_TICK_USEC (250 * USEC_PER_MSEC)
#define TROUBLE_REPEAT_USEC (5 * USEC_PER_SEC) /* at most one "reconnecting" line per 5 s */
#define REDRAW_USEC USEC_PER_SEC
#define CONTROL_POLL_USEC (200 * USEC_PER_MSEC)
#define CONTROL_WAIT_USEC (10 * USEC_PER_SEC)
#define HISTORY_LIMIT_DEFAULT 20
#define HISTORY_LIMIT_MAX 1000
#define COUNT_MAX 100000

/* Sentinel of the follow loop's steps: not finished, go on. */
#define FOLLOW_CONTINUE (-1)

static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig) {
        stop_signal = sig;
}

static const char *jstr(json_t *o, const char *k) {
        return json_string_value(json_object_get(o, k));
}

static bool locale_is_utf8(void) {
        static int cached = -1;

        if (cached < 0) {
                const char *set = setlocale(LC_CTYPE, "") ? nl_langinfo(CODESET) : NULL;
                cached = set && (strcasecmp(set, "UTF-8") == 0 || strcasecmp(set, "utf8") == 0);
        }
        return cached;
}

/* Sleep, returning early on a signal. */
static void sleep_usec(uint64_t usec) {
        struct timespec ts = { .tv_sec = (time_t) (usec / USEC_PER_SEC),
                               .tv_nsec = (long) (usec % USEC_PER_SEC) * 1000 };
        (void) nanosleep(&ts, NULL);
}

static void print_json_pretty(json_t *j) {
        _cleanup_free_ char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("%s\n", s ? s : "null");
}

static void print_json_line(json_t *j) {
        _cleanup_free_ char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
        printf("%s\n", s ? s : "null");
        fflush(stdout);
}

/* An answer of coordinatord that is not what the API promises. */
static int unexpected_answer(const char *what) {
        fprintf(stderr, "coordctl %s: unexpected answer from coordinatord\n", what);
        return EXIT_FAILED;
}

/* The string field k of o (fallback when there is none) as one harmless line.
 * Caller frees; NULL on ENOMEM. */
static char *clean_field(json_t *o, const char *k, const char *fallback) {
        return deploy_clean_text(jstr(o, k) ? jstr(o, k) : fallback);
}

/* GET path, expecting 200: 0 with the parsed answer (NULL when it is not JSON),
 * or an exit code (message printed). */
static int get_json(const struct coordctl_globals *g, const char *what, const char *path, json_t **ret) {
        _cleanup_free_ char *body = NULL;
        long status;
        int r;

        r = coordctl_http(g, "GET", path, NULL, NULL, &status, &body);
        if (r < 0)
                return r == -ENOMEM ? EXIT_FAILED : EXIT_UNAVAILABLE;
        if (status != 200)
                return coordctl_http_failure(what, status, body);
        *ret = json_loads(body, 0, NULL);
        return 0;
}

/* GET /v1/deployments/ID: 0 with the object, or an exit code (message printed). */
static int get_deployment(const struct coordctl_globals *g, const char *what, const char *id, json_t **ret) {
        _cleanup_free_ char *path = strdup_printf("/v1/deployments/%s", id);
        _cleanup_json_ json_t *j = NULL;
        int r;

        if (!path)
                return EXIT_FAILED;
        r = get_json(g, what, path, &j);
        if (r != 0)
                return r;
        if (!json_is_object(j) || !jstr(j, "id"))
                return unexpected_answer(what);
        *ret = TAKE_PTR(j);
        return 0;
}

/* GET a list of deployments (path "/v1/deployments?..."): 0 with the answer,
 * whose "deployments" is an array, or an exit code (message printed). */
static int get_deployment_list(const struct coordctl_globals *g, const char *what, const char *path, json_t **ret) {
        _cleanup_json_ json_t *j = NULL;
        int r;

        r = get_json(g, what, path, &j);
        if (r != 0)
                return r;
        if (!json_is_array(json_object_get(j, "deployments")))
                return unexpected_answer(what);
        *ret = TAKE_PTR(j);
        return 0;
}

/* ---- following a deployment ---- */

enum follow_mode {
        FOLLOW_LIVE,  /* a terminal: the view redrawn in place */
        FOLLOW_LINES, /* one plain line per event */
        FOLLOW_JSON,  /* one JSON object per event */
};

struct follow {
        const struct coordctl_globals *g;
        const char *what; /* the command, for messages */
        char *id;
        enum follow_mode mode;
        bool utf8;
        bool revert; /* following a revert: "reverted" is its success */

        struct deploy_view *view;
        struct sse_parser *parser;
        uint64_t last_seq;
        bool has_seq;
        char *final_state; /* of the terminal event */
        json_t *record;    /* the deployment fetched once it ended, NULL until then */

        CURLM *multi;
        CURL *easy;
        struct curl_slist *headers;
        char *base;         /* the base URL of the running transfer */
        size_t url_index;   /* the base URL of the next attempt */
        bool connected;     /* the running transfer got a 200 */
        bool type_checked;  /* ... and its Content-Type was looked at */
        bool not_sse;       /* ... and it is not an event stream */
        int handler_error;  /* an event could not be processed (-ENOMEM) */
        char *errbody;      /* the body of a non-200 answer, bounded */
        size_t errbody_len;

        struct backoff backoff;
        uint64_t next_attempt;  /* monotonic; when no transfer runs */
        uint64_t failing_since; /* monotonic; 0 while connected */
        char *reason;           /* the last connection problem */
        char *trouble;          /* the same, as the live view's notice; NULL while connected */
        uint64_t trouble_printed; /* monotonic; when the last "reconnecting" line went to stderr */
        uint64_t deadline;      /* monotonic; 0: no --timeout */
        const char *timeout_text;

        size_t drawn; /* lines of the live view on screen */
        uint64_t last_draw;
        bool dirty;
};

static void follow_done(struct follow *f) {
        if (f->easy) {
                curl_multi_remove_handle(f->multi, f->easy);
                curl_easy_cleanup(f->easy);
        }
        if (f->multi)
                curl_multi_cleanup(f->multi);
        curl_slist_free_all(f->headers);
        deploy_view_free(f->view);
        sse_parser_free(f->parser);
        json_decref(f->record);
        free(f->id);
        free(f->final_state);
        free(f->base);
        free(f->errbody);
        free(f->reason);
        free(f->trouble);
}

static void live_draw(struct follow *f) {
        struct winsize ws = {};
        unsigned cols = 80, rows = 24;
        _cleanup_free_ char *text = NULL, *frame = NULL;
        size_t n = 0, len, o = 0;

        if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0) {
                cols = ws.ws_col;
                rows = ws.ws_row;
        }
        struct deploy_view_render_opts opts = {
                .now_usec = now_realtime_usec(),
                .width = cols > 1 ? cols - 1 : 1, /* never the last column: no wrap, no miscounted lines */
                .height = rows > 2 ? rows - 1 : 1,
                .utf8 = f->utf8,
                .notice = f->trouble,
        };
        if (deploy_view_render(f->view, &opts, &text, &n) < 0)
                return;
        /* One write per frame: up to the old top, each line cleared, the rest below erased. */
        len = strlen(text);
        frame = malloc(len + n * 8 + 32);
        if (!frame)
                return;
        if (f->drawn > 0)
                o += (size_t) snprintf(frame, 32, "\033[%zuA", f->drawn);
        for (const char *p = text; *p;) {
                const char *nl = strchr(p, '\n');
                size_t l = nl ? (size_t) (nl - p) + 1 : strlen(p);
                memcpy(frame + o, "\r\033[2K", 5);
                o += 5;
                memcpy(frame + o, p, l);
                o += l;
                p += l;
        }
        memcpy(frame + o, "\033[J", 3);
        o += 3;
        fwrite(frame, 1, o, stdout);
        fflush(stdout);
        f->drawn = n;
        f->last_draw = now_usec();
        f->dirty = false;
}

static void print_output_lines(const char *output) {
        const char *p = output;

        while (p && *p) {
                const char *nl = strchrnul(p, '\n');
                _cleanup_free_ char *line = strndup(p, (size_t) (nl - p));
                _cleanup_free_ char *clean = line ? deploy_clean_text(line) : NULL;
                if (clean)
                        printf("    | %s\n", clean);
                p = *nl ? nl + 1 : nl;
        }
}

static void print_event_line(json_t *data) {
        _cleanup_free_ char *ts = clean_field(data, "ts", "-");
        _cleanup_free_ char *d = deploy_event_describe(data, false);
        const char *state = jstr(data, "state"), *output = jstr(data, "output");

        printf("%s %s\n", ts ? ts : "-", d ? d : "(event)");
        /* A failed hook's last lines belong in the CI log. */
        if (output && *output && state && strcmp(state, "failed") == 0)
                print_output_lines(output);
        fflush(stdout);
}

static int on_event(const struct sse_event *ev, void *userdata) {
        struct follow *f = userdata;
        json_error_t jerr;
        uint64_t seq = 0;
        bool has_seq = ev->id && parse_uint64(ev->id, &seq) == 0;
        int r;

        /* A replay of what we have shown already (a server that ignored Last-Event-ID). */
        if (has_seq && f->has_seq && seq <= f->last_seq)
                return 0;
        if (has_seq) {
                f->last_seq = seq;
                f->has_seq = true;
        }
        _cleanup_json_ json_t *data = json_loadb(ev->data, ev->data_len, 0, &jerr);
        if (!json_is_object(data))
                return 0; /* not ours to show; the next event carries the progress again */
        if (!json_is_string(json_object_get(data, "type")) &&
            json_object_set_new(data, "type", json_string(ev->type)) < 0)
                return -ENOMEM;
        r = deploy_view_apply(f->view, data, now_realtime_usec());
        if (r == -ENOMEM)
                return r;
        backoff_reset(&f->backoff);
        f->dirty = true;

        switch (f->mode) {
        case FOLLOW_JSON:
                if (json_object_set_new(data, "id", has_seq ? json_integer((json_int_t) seq) : json_null()) < 0)
                        return -ENOMEM;
                print_json_line(data);
                break;
        case FOLLOW_LINES:
                print_event_line(data);
                break;
        case FOLLOW_LIVE:
                break;
        }

        const char *type = jstr(data, "type"), *state = jstr(data, "state");
        if (type && strcmp(type, "state") == 0 && deploy_state_is_terminal(state)) {
                free(f->final_state);
                f->final_state = strdup(state);
                if (!f->final_state)
                        return -ENOMEM;
                return -ECANCELED; /* the end: stop reading */
        }
        return 0;
}

static size_t stream_on_data(char *ptr, size_t size, size_t nmemb, void *userdata) {
        struct follow *f = userdata;
        size_t n = size * nmemb;
        long status = 0;
        int r;

        curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &status);
        if (status != 200) {
                size_t take = MIN(n, ERROR_BODY_MAX - f->errbody_len);
                char *np = realloc(f->errbody, f->errbody_len + take + 1);
                if (!np)
                        return 0;
                memcpy(np + f->errbody_len, ptr, take);
                f->errbody = np;
                f->errbody_len += take;
                f->errbody[f->errbody_len] = '\0';
                return n;
        }
        if (!f->type_checked) {
                const char *ct = NULL;
                curl_easy_getinfo(f->easy, CURLINFO_CONTENT_TYPE, &ct);
                f->type_checked = true;
                f->not_sse = !ct || strncasecmp(ct, "text/event-stream", 17) != 0;
        }
        if (f->not_sse)
                return 0;
        r = sse_parser_feed(f->parser, ptr, n);
        if (r < 0) {
                if (r != -ECANCELED)
                        f->handler_error = r;
                return 0;
        }
        return n;
}

static int stream_start(struct follow *f) {
        _cleanup_free_ char *url = NULL, *auth = NULL, *last = NULL;

        free(f->base);
        f->base = coordctl_url_base(f->g, f->url_index);
        if (!f->base)
                return -ENOMEM;
        url = strdup_printf("%s/v1/deployments/%s/events", f->base, f->id);
        if (f->g->token)
                auth = strdup_printf("Authorization: Bearer %s", f->g->token);
        if (f->has_seq)
                last = strdup_printf("Last-Event-ID: %llu", (unsigned long long) f->last_seq);
        if (!url || (f->g->token && !auth) || (f->has_seq && !last))
                return -ENOMEM;

        curl_slist_free_all(f->headers);
        f->headers = NULL;
        if (auth)
                f->headers = curl_slist_append(f->headers, auth);
        f->headers = curl_slist_append(f->headers, "Accept: text/event-stream");
        f->headers = curl_slist_append(f->headers, "Cache-Control: no-cache");
        if (last)
                f->headers = curl_slist_append(f->headers, last);
        if (!f->headers)
                return -ENOMEM;

        f->easy = curl_easy_init();
        if (!f->easy)
                return -ENOMEM;
        curl_easy_setopt(f->easy, CURLOPT_URL, url);
        curl_easy_setopt(f->easy, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(f->easy, CURLOPT_HTTPHEADER, f->headers);
        curl_easy_setopt(f->easy, CURLOPT_WRITEFUNCTION, stream_on_data);
        curl_easy_setopt(f->easy, CURLOPT_WRITEDATA, f);
        curl_easy_setopt(f->easy, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
        /* No overall timeout: the stream lasts as long as the deployment.  A
         * silent connection (no keepalive for 35 s) is a dead one. */
        curl_easy_setopt(f->easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(f->easy, CURLOPT_LOW_SPEED_TIME, STREAM_IDLE_SEC);
        curl_easy_setopt(f->easy, CURLOPT_TCP_KEEPALIVE, 1L);
        curl_easy_setopt(f->easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(f->easy, CURLOPT_PROTOCOLS_STR, "http,https");

        sse_parser_reset(f->parser);
        f->connected = false;
        f->type_checked = false;
        f->not_sse = false;
        f->handler_error = 0;
        f->errbody = mfree(f->errbody);
        f->errbody_len = 0;
        if (curl_multi_add_handle(f->multi, f->easy) != CURLM_OK)
                return -ENOMEM;
        return 0;
}

static void stream_stop(struct follow *f) {
        if (!f->easy)
                return;
        curl_multi_remove_handle(f->multi, f->easy);
        curl_easy_cleanup(f->easy);
        f->easy = NULL;
}

/* Take the live view off the "in place" track: what is printed next goes below it. */
static void live_leave(struct follow *f) {
        if (f->mode != FOLLOW_LIVE)
                return;
        f->trouble = mfree(f->trouble);
        live_draw(f);
        f->drawn = 0;
}

static void set_trouble(struct follow *f, const char *reason) {
        free(f->reason);
        f->reason = strdup_printf("%s: %s", f->base ? f->base : "coordinatord", reason);
        free(f->trouble);
        f->trouble = strdup_printf("connection to %s lost: %s; reconnecting", f->base ? f->base : "coordinatord",
                                   reason);
        f->dirty = true;
        if (f->mode != FOLLOW_LIVE && (f->trouble_printed == 0 || now_usec() - f->trouble_printed >= TROUBLE_REPEAT_USEC)) {
                fprintf(stderr, "coordctl %s: event stream from %s: %s; reconnecting\n", f->what,
                        f->base ? f->base : "coordinatord", reason);
                f->trouble_printed = now_usec();
        }
}

/* Did the deployment end without us seeing its last event?  Asks quietly; the
 * record it got serves follow_finish(). */
static bool deployment_ended(struct follow *f) {
        _cleanup_free_ char *path = strdup_printf("/v1/deployments/%s", f->id), *body = NULL, *err = NULL;
        long status = 0;

        if (!path || coordctl_http_once(f->g, f->url_index, "GET", path, NULL, NULL, &status, &body, &err) < 0 ||
            status != 200)
                return false;
        _cleanup_json_ json_t *j = json_loads(body, 0, NULL);
        if (!json_is_object(j) || !deploy_state_is_terminal(jstr(j, "state")))
                return false;
        free(f->final_state);
        f->final_state = strdup(jstr(j, "state"));
        if (!f->final_state)
                return false;
        if (jstr(j, "id")) {
                json_decref(f->record);
                f->record = TAKE_PTR(j);
        }
        return true;
}

/* A transfer ended: the end, a fatal answer (its exit code), or FOLLOW_CONTINUE
 * with a reconnection scheduled. */
static int stream_finished(struct follow *f, CURLcode cr) {
        _cleanup_free_ char *reason = NULL;
        long status = 0;

        curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &status);
        stream_stop(f);
        if (f->final_state)
                return 0;
        if (f->handler_error) {
                live_leave(f);
                fprintf(stderr, "coordctl %s: %s\n", f->what, strerror(-f->handler_error));
                return EXIT_FAILED;
        }
        /* Answers that another coordinatord would give the same way. */
        if (status == 401 || status == 403 || (status >= 400 && status < 500 && status != 408 && status != 429)) {
                live_leave(f);
                return coordctl_http_failure(f->what, status, f->errbody ? f->errbody : "");
        }
        if (status != 200 && status != 0)
                reason = strdup_printf("answered %ld", status);
        else if (f->not_sse)
                reason = strdup("the answer is not an event stream");
        else if (cr != CURLE_OK)
                reason = strdup(curl_easy_strerror(cr));
        else if (deployment_ended(f))
                return 0;
        else
                reason = strdup("the stream ended before the deployment did");

        f->url_index++;
        f->next_attempt = now_usec() + backoff_next(&f->backoff);
        if (f->failing_since == 0)
                f->failing_since = now_usec();
        set_trouble(f, reason ? reason : "error");
        return FOLLOW_CONTINUE;
}

static int follow_stop_message(struct follow *f, int code, const char *why) {
        live_leave(f);
        if (why)
                fprintf(stderr, "coordctl %s: %s\n", f->what, why);
        fprintf(stderr, "%s; deployment %s continues (coordctl status %s%s%s)\n",
                code == EXIT_INTERRUPTED ? "Stopped following" : "No longer following", f->id, f->id,
                code == EXIT_INTERRUPTED ? ", coordctl cancel " : "", code == EXIT_INTERRUPTED ? f->id : "");
        return code;
}

static int follow_finish(struct follow *f) {
        const char *state = f->final_state;
        bool ok;

        /* The record, for its error and times (unless deployment_ended() has it
         * already); the stream's verdict stands if this fails. */
        if (f->record || get_deployment(f->g, f->what, f->id, &f->record) == 0)
                (void) deploy_view_load(f->view, f->record, now_realtime_usec());
        if (!f->view->state || !deploy_state_is_terminal(f->view->state)) {
                free(f->view->state);
                f->view->state = strdup(state);
        }
        ok = strcmp(state, f->revert ? "reverted" : "succeeded") == 0;

        struct deploy_view_render_opts o = { .now_usec = now_realtime_usec(), .utf8 = f->utf8 };
        _cleanup_free_ char *summary = deploy_view_summary(f->view, &o);
        switch (f->mode) {
        case FOLLOW_LIVE:
                live_leave(f);
                printf("%s\n", summary ? summary : state);
                break;
        case FOLLOW_LINES:
                printf("%s\n", summary ? summary : state);
                break;
        case FOLLOW_JSON:
                if (f->record)
                        print_json_line(f->record);
                if (!ok)
                        fprintf(stderr, "%s\n", summary ? summary : state);
                break;
        }
        fflush(stdout);
        return ok ? EXIT_OK : EXIT_FAILED;
}

/* Reasons to stop following before the end: Ctrl-C, --timeout, no
 * coordinatord for too long.  FOLLOW_CONTINUE or the exit code. */
static int follow_check_stop(struct follow *f, uint64_t now) {
        if (stop_signal)
                return follow_stop_message(f, EXIT_INTERRUPTED, NULL);
        if (f->deadline && now >= f->deadline) {
                _cleanup_free_ char *why = strdup_printf("--timeout %s elapsed", f->timeout_text);
                return follow_stop_message(f, EXIT_TIMEOUT, why ? why : "--timeout elapsed");
        }
        if (!f->easy && f->failing_since && now - f->failing_since > UNREACHABLE_USEC) {
                _cleanup_free_ char *why = strdup_printf("no coordinatord answered for %llus (%s)",
                                                         (unsigned long long) (UNREACHABLE_USEC / USEC_PER_SEC),
                                                         f->reason ? f->reason : "unreachable");
                return follow_stop_message(f, EXIT_UNAVAILABLE, why ? why : "unreachable");
        }
        return FOLLOW_CONTINUE;
}

/* The running transfer got its 200: the trouble, if any, is over. */
static void stream_check_connected(struct follow *f) {
        long status = 0;

        if (f->connected)
                return;
        curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &status);
        if (status != 200)
                return;
        f->connected = true;
        if (f->failing_since && f->mode != FOLLOW_LIVE)
                fprintf(stderr, "coordctl %s: event stream resumed from %s\n", f->what, f->base);
        f->failing_since = 0;
        f->trouble_printed = 0;
        f->trouble = mfree(f->trouble);
        f->dirty = true;
}

/* Move the running transfer on: FOLLOW_CONTINUE, or the exit code once following is over. */
static int stream_step(struct follow *f) {
        CURLMsg *m;
        int running, left, r;

        curl_multi_perform(f->multi, &running);
        stream_check_connected(f);
        while ((m = curl_multi_info_read(f->multi, &left)))
                if (m->msg == CURLMSG_DONE && m->easy_handle == f->easy) {
                        r = stream_finished(f, m->data.result);
                        return r == 0 ? follow_finish(f) : r;
                }
        return FOLLOW_CONTINUE;
}

/* Sleep until data, the next redraw, the next attempt or the deadline. */
static void follow_wait(struct follow *f) {
        uint64_t now = now_usec(), wake = now + LOOP_TICK_USEC;

        if (f->mode == FOLLOW_LIVE)
                wake = MIN(wake, f->last_draw + REDRAW_USEC);
        if (!f->easy)
                wake = MIN(wake, f->next_attempt);
        if (f->deadline)
                wake = MIN(wake, f->deadline);
        int ms = wake > now ? (int) ((wake - now + 999) / 1000) : 0;
        if (f->easy)
                curl_multi_poll(f->multi, NULL, 0, ms, NULL);
        else if (ms > 0)
                (void) poll(NULL, 0, ms);
}

static int follow_loop(struct follow *f) {
        int r;

        for (;;) {
                uint64_t now = now_usec();

                r = follow_check_stop(f, now);
                if (r != FOLLOW_CONTINUE)
                        return r;
                if (!f->easy && now >= f->next_attempt) {
                        r = stream_start(f);
                        if (r < 0) {
                                live_leave(f);
                                fprintf(stderr, "coordctl %s: %s\n", f->what, strerror(-r));
                                return EXIT_FAILED;
                        }
                }
                if (f->easy) {
                        r = stream_step(f);
                        if (r != FOLLOW_CONTINUE)
                                return r;
                }
                if (f->mode == FOLLOW_LIVE && (f->dirty || now_usec() - f->last_draw >= REDRAW_USEC))
                        live_draw(f);
                follow_wait(f);
        }
}

/* Follow deployment d (borrowed) until it ends.  after_seq: only events after
 * it (has_seq).  Returns the exit code. */
static int follow_deployment(const struct coordctl_globals *g, const char *what, json_t *d, bool has_seq,
                             uint64_t after_seq, uint64_t timeout_usec, const char *timeout_text, bool revert) {
        struct follow f = {
                .g = g,
                .what = what,
                .revert = revert,
                .has_seq = has_seq,
                .last_seq = after_seq,
                .url_index = coordctl_url_current(),
                .timeout_text = timeout_text,
        };
        const char *term = getenv("TERM");
        struct sigaction sa = { .sa_handler = on_stop_signal }, old_int, old_term;
        _cleanup_json_ json_t *fresh = NULL;
        int r;

        if (g->output == OUTPUT_JSON)
                f.mode = FOLLOW_JSON;
        else if (isatty(STDOUT_FILENO) && term && *term && strcmp(term, "dumb") != 0)
                f.mode = FOLLOW_LIVE;
        else
                f.mode = FOLLOW_LINES;
        f.utf8 = f.mode == FOLLOW_LIVE && locale_is_utf8();
        f.id = strdup(jstr(d, "id"));
        f.view = deploy_view_new();
        f.parser = sse_parser_new(SSE_LINE_MAX, SSE_EVENT_MAX, on_event, &f);
        f.multi = curl_multi_init();
        if (!f.id || !f.view || !f.parser || !f.multi) {
                follow_done(&f);
                fprintf(stderr, "coordctl %s: out of memory\n", what);
                return EXIT_FAILED;
        }
        backoff_init(&f.backoff, RECONNECT_BASE_USEC, RECONNECT_CAP_USEC);
        if (timeout_usec)
                f.deadline = now_usec() + timeout_usec;

        /* The instance list to start from (on a terminal, fresher than the
         * answer that created or changed the deployment); the events keep it current. */
        if (f.mode == FOLLOW_LIVE)
                (void) get_deployment(g, what, f.id, &fresh);
        (void) deploy_view_load(f.view, fresh ? fresh : d, now_realtime_usec());

        /* From here Ctrl-C stops following, not the deployment. */
        stop_signal = 0;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, &old_int);
        sigaction(SIGTERM, &sa, &old_term);
        r = follow_loop(&f);
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
        follow_done(&f);
        return r;
}

/* ---- deploy ---- */

static void deploy_help(void) {
        printf("Usage: coordctl deploy SERVICE VERSION [FLAGS]\n"
               "\n"
               "Start a rolling deployment of SERVICE to VERSION and follow it until it ends:\n"
               "a live view on a terminal, one line per change otherwise, one JSON object per\n"
               "event with --output json (then the final deployment).\n"
               "\n"
               "  --max-parallel N       instances out of service at once (default 1)\n"
               "  --canary N             instances updated first, on their own (default 0)\n"
               "  --min-healthy-time D   continuous health each instance needs (default 10s)\n"
               "  --healthy-deadline D   time an instance has to get there (default 5m)\n"
               "  --progress-deadline D  fail when no step completed for D (default 10m)\n"
               "  --drain-delay D        wait after draining an instance (default 0s)\n"
               "  --no-auto-revert       on failure stop where it is, do not revert\n"
               "  --no-migrate           skip the pre- and post-deploy migrations\n"
               "  --detach               print the deployment id once created and exit\n"
               "  --timeout D            stop following after D (exit 5; the deployment goes on)\n"
               "\n"
               "Durations take a unit: 250ms, 30s, 5m, 1h.  Ctrl-C stops following, not the\n"
               "deployment.  A dropped event stream is resumed, on the next --url if several\n"
               "are given (comma-separated).\n"
               "\n"
               "Exit codes: 0 succeeded, 1 failed, reverted or cancelled (or another deployment\n"
               "of SERVICE is active), 2 bad input, 3 coordinatord unreachable or refused,\n"
               "5 --timeout elapsed, 130 interrupted.\n");
}

enum {
        ARG_MAX_PARALLEL = 0x100,
        ARG_CANARY,
        ARG_MIN_HEALTHY_TIME,
        ARG_HEALTHY_DEADLINE,
        ARG_PROGRESS_DEADLINE,
        ARG_DRAIN_DELAY,
        ARG_NO_AUTO_REVERT,
        ARG_NO_MIGRATE,
        ARG_DETACH,
        ARG_TIMEOUT,
        ARG_FOLLOW,
        ARG_LIMIT,
};

static int parse_count_flag(const char *what, const char *flag, const char *s, uint64_t min, uint64_t *ret) {
        uint64_t v;

        if (parse_uint64(s, &v) < 0 || v < min || v > COUNT_MAX) {
                fprintf(stderr, "coordctl %s: %s: '%s' is not a whole number from %llu to %d\n", what, flag, s,
                        (unsigned long long) min, COUNT_MAX);
                return -EINVAL;
        }
        *ret = v;
        return 0;
}

static int parse_duration_flag(const char *what, const char *flag, const char *s, uint64_t *ret) {
        int r = duration_parse(s, ret);

        if (r == -ERANGE)
                fprintf(stderr, "coordctl %s: %s: '%s' is too large a duration\n", what, flag, s);
        else if (r < 0)
                fprintf(stderr, "coordctl %s: %s: '%s' is not a duration with a unit (250ms, 30s, 5m, 1h)\n", what,
                        flag, s);
        return r;
}

struct deploy_args {
        const char *service, *version;
        json_t *strategy; /* only the fields given */
        bool no_migrate, detach;
        uint64_t timeout_usec;
        const char *timeout_text;
};

static int deploy_parse(int argc, char **argv, struct deploy_args *a) {
        static const struct option opts[] = {
                { "max-parallel", required_argument, NULL, ARG_MAX_PARALLEL },
                { "canary", required_argument, NULL, ARG_CANARY },
                { "min-healthy-time", required_argument, NULL, ARG_MIN_HEALTHY_TIME },
                { "healthy-deadline", required_argument, NULL, ARG_HEALTHY_DEADLINE },
                { "progress-deadline", required_argument, NULL, ARG_PROGRESS_DEADLINE },
                { "drain-delay", required_argument, NULL, ARG_DRAIN_DELAY },
                { "no-auto-revert", no_argument, NULL, ARG_NO_AUTO_REVERT },
                { "no-migrate", no_argument, NULL, ARG_NO_MIGRATE },
                { "detach", no_argument, NULL, ARG_DETACH },
                { "timeout", required_argument, NULL, ARG_TIMEOUT },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        uint64_t n, usec;
        int c, idx;

        optind = 1;
        while ((c = getopt_long(argc, argv, "h", opts, &idx)) >= 0) {
                char flag[40] = "", key[32] = "";

                if (c >= 0x100) {
                        /* "--max-parallel" for messages, "max_parallel" the API's field name */
                        snprintf(flag, sizeof flag, "--%s", opts[idx].name);
                        snprintf(key, sizeof key, "%s", opts[idx].name);
                        for (char *p = key; *p; p++)
                                if (*p == '-')
                                        *p = '_';
                }
                switch (c) {
                case ARG_MAX_PARALLEL:
                case ARG_CANARY:
                        if (parse_count_flag("deploy", flag, optarg, c == ARG_CANARY ? 0 : 1, &n) < 0)
                                return EXIT_USAGE;
                        if (json_object_set_new(a->strategy, key, json_integer((json_int_t) n)) < 0)
                                return EXIT_FAILED;
                        break;
                case ARG_MIN_HEALTHY_TIME:
                case ARG_HEALTHY_DEADLINE:
                case ARG_PROGRESS_DEADLINE:
                case ARG_DRAIN_DELAY:
                        if (parse_duration_flag("deploy", flag, optarg, &usec) < 0)
                                return EXIT_USAGE;
                        if (json_object_set_new(a->strategy, key, json_string(optarg)) < 0)
                                return EXIT_FAILED;
                        break;
                case ARG_NO_AUTO_REVERT:
                        if (json_object_set_new(a->strategy, "auto_revert", json_false()) < 0)
                                return EXIT_FAILED;
                        break;
                case ARG_NO_MIGRATE:
                        a->no_migrate = true;
                        break;
                case ARG_DETACH:
                        a->detach = true;
                        break;
                case ARG_TIMEOUT:
                        if (parse_duration_flag("deploy", "--timeout", optarg, &a->timeout_usec) < 0)
                                return EXIT_USAGE;
                        if (a->timeout_usec == 0) {
                                fprintf(stderr, "coordctl deploy: --timeout: '%s' must be longer than 0\n", optarg);
                                return EXIT_USAGE;
                        }
                        a->timeout_text = optarg;
                        break;
                case 'h':
                        deploy_help();
                        return -1;
                default:
                        return EXIT_USAGE;
                }
        }
        if (argc - optind != 2) {
                fprintf(stderr, "coordctl deploy: expected SERVICE VERSION (see coordctl deploy --help)\n");
                return EXIT_USAGE;
        }
        a->service = argv[optind];
        a->version = argv[optind + 1];
        if (!name_is_valid(a->service)) {
                fprintf(stderr, "coordctl deploy: SERVICE: '%s' is not a valid name\n", a->service);
                return EXIT_USAGE;
        }
        if (!version_is_valid(a->version)) {
                fprintf(stderr, "coordctl deploy: VERSION: '%s' is not a valid version\n", a->version);
                return EXIT_USAGE;
        }
        if (a->detach && a->timeout_usec) {
                fprintf(stderr, "coordctl deploy: --timeout bounds following; it makes no sense with --detach\n");
                return EXIT_USAGE;
        }
        return 0;
}

/* POST the deployment, retrying a transport failure on the next URL: the
 * Idempotency-Key makes a repeat return the deployment the first one made. */
static int deploy_post(const struct coordctl_globals *g, const char *req, long *ret_status, char **ret_body) {
        char key[33], hdr[64], *errs[POST_RETRIES + 1] = {};
        const char *headers[] = { hdr, NULL };
        size_t start = coordctl_url_current();
        uint64_t delay = RECONNECT_BASE_USEC;
        int r;

        r = random_hex(key, 16);
        if (r < 0) {
                fprintf(stderr, "coordctl deploy: cannot make an idempotency key: %s\n", strerror(-r));
                return EXIT_FAILED;
        }
        snprintf(hdr, sizeof hdr, "Idempotency-Key: %s", key);
        for (unsigned attempt = 0; attempt <= POST_RETRIES; attempt++) {
                if (attempt > 0) {
                        sleep_usec(delay);
                        delay *= 2;
                }
                r = coordctl_http_once(g, start + attempt, "POST", "/v1/deployments", req, headers, ret_status,
                                       ret_body, &errs[attempt]);
                if (r == 0 || r == -ENOMEM)
                        break;
        }
        /* A retry that worked is not worth a word; a request that never got through is. */
        for (unsigned k = 0; k <= POST_RETRIES; k++) {
                if (r < 0 && r != -ENOMEM && errs[k])
                        fprintf(stderr, "coordctl deploy: cannot reach coordinatord at %s\n", errs[k]);
                free(errs[k]);
        }
        if (r == -ENOMEM)
                fprintf(stderr, "coordctl deploy: out of memory\n");
        return r == 0 ? 0 : r == -ENOMEM ? EXIT_FAILED : EXIT_UNAVAILABLE;
}

static void print_created(json_t *d, FILE *to) {
        _cleanup_deploy_view_ struct deploy_view *v = deploy_view_new();
        _cleanup_free_ char *header = NULL;
        int64_t n;

        /* The live view's header line, "Deployment ID: web 1.0 → 2.0", made harmless there. */
        if (!v || deploy_view_load(v, d, now_realtime_usec()) < 0 ||
            !(header = deploy_view_render_header(v, locale_is_utf8()))) {
                fprintf(to, "Deployment %s\n", jstr(d, "id"));
                return;
        }
        fputs(header, to);
        n = v->progress.total > 0 ? v->progress.total : (int64_t) v->n_instances;
        /* A new deployment is planned by the leader a moment later: no count yet. */
        if (n > 0)
                fprintf(to, ", %lld instance%s", (long long) n, n == 1 ? "" : "s");
        fprintf(to, " (%s%s)\n", v->strategy ? v->strategy : "default strategy",
                v->migrate ? ", migrate" : ", no migrate");
        fflush(to);
}

static int deploy_cmd(int argc, char **argv, const struct coordctl_globals *g) {
        struct deploy_args a = {};
        _cleanup_json_ json_t *strategy = json_object(), *req = NULL, *d = NULL;
        _cleanup_free_ char *reqs = NULL, *body = NULL;
        long status = 0;
        int r;

        if (!strategy)
                return EXIT_FAILED;
        a.strategy = strategy;
        r = deploy_parse(argc, argv, &a);
        if (r != 0)
                return r < 0 ? EXIT_OK : r;

        req = json_pack("{s:s, s:s}", "service", a.service, "version", a.version);
        if (!req || (json_object_size(strategy) > 0 && json_object_set(req, "strategy", strategy) < 0) ||
            (a.no_migrate && json_object_set_new(req, "migrate", json_false()) < 0) ||
            !(reqs = json_dumps(req, JSON_COMPACT | JSON_PRESERVE_ORDER)))
                return EXIT_FAILED;

        r = deploy_post(g, reqs, &status, &body);
        if (r != 0)
                return r;
        if (status != 201 && status != 200)
                return coordctl_http_failure("deploy", status, body);
        d = json_loads(body, 0, NULL);
        if (!json_is_object(d) || !name_is_valid(jstr(d, "id")))
                return unexpected_answer("deploy");

        if (a.detach) {
                if (g->output == OUTPUT_JSON)
                        print_json_line(d);
                else {
                        print_created(d, stderr);
                        printf("%s\n", jstr(d, "id"));
                }
                return EXIT_OK;
        }
        if (g->output == OUTPUT_TEXT)
                print_created(d, stdout);
        return follow_deployment(g, "deploy", d, false, 0, a.timeout_usec, a.timeout_text, false);
}

/* ---- status, deployments ---- */

static void status_help(void) {
        printf("Usage: coordctl status [DEPLOYMENT_ID]\n"
               "\n"
               "One deployment: its state, progress, times, strategy, migrations, error and\n"
               "one line per instance.  Without an id, every active deployment (not\n"
               "succeeded, failed, reverted or cancelled).  --output json prints the API's\n"
               "object ({\"deployments\":[...]} without an id).\n"
               "\n"
               "Exit codes: 0 shown, 1 no such deployment, 3 coordinatord unreachable or refused.\n");
}

static void print_status_text(json_t *d) {
        _cleanup_deploy_view_ struct deploy_view *v = deploy_view_new();
        struct deploy_view_render_opts o = { .now_usec = now_realtime_usec(), .utf8 = locale_is_utf8() };

        if (!v || deploy_view_load(v, d, o.now_usec) < 0) {
                print_json_pretty(d);
                return;
        }
        _cleanup_free_ char *s = deploy_view_render_status(v, &o);
        fputs(s ? s : "(out of memory)\n", stdout);
}

static int parse_one_id(const char *what, int argc, char **argv, bool optional, const char **ret) {
        if (argc - optind > 1 || (!optional && argc - optind != 1)) {
                fprintf(stderr, "coordctl %s: expected %sDEPLOYMENT_ID%s\n", what, optional ? "[" : "",
                        optional ? "]" : "");
                return EXIT_USAGE;
        }
        *ret = argc > optind ? argv[optind] : NULL;
        if (*ret && !name_is_valid(*ret)) {
                fprintf(stderr, "coordctl %s: '%s' is not a valid deployment id\n", what, *ret);
                return EXIT_USAGE;
        }
        return 0;
}

static int status_cmd(int argc, char **argv, const struct coordctl_globals *g) {
        static const struct option opts[] = {
                { "help", no_argument, NULL, 'h' },
                {}
        };
        _cleanup_json_ json_t *j = NULL, *active = NULL;
        json_t *all, *d;
        const char *id;
        size_t i;
        int c, r;

        optind = 1;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0)
                switch (c) {
                case 'h': status_help(); return EXIT_OK;
                default: return EXIT_USAGE;
                }
        r = parse_one_id("status", argc, argv, true, &id);
        if (r != 0)
                return r;

        if (id) {
                r = get_deployment(g, "status", id, &j);
                if (r != 0)
                        return r;
                if (g->output == OUTPUT_JSON)
                        print_json_pretty(j);
                else
                        print_status_text(j);
                return EXIT_OK;
        }

        r = get_deployment_list(g, "status", "/v1/deployments?limit=1000", &j);
        if (r != 0)
                return r;
        all = json_object_get(j, "deployments");
        active = json_array();
        if (!active)
                return unexpected_answer("status");
        json_array_foreach(all, i, d)
                if (json_is_object(d) && !deploy_state_is_terminal(jstr(d, "state")) &&
                    json_array_append(active, d) < 0)
                        return EXIT_FAILED;
        if (g->output == OUTPUT_JSON) {
                _cleanup_json_ json_t *o = json_pack("{s:O}", "deployments", active);
                if (!o)
                        return EXIT_FAILED;
                print_json_pretty(o);
                return EXIT_OK;
        }
        if (json_array_size(active) == 0)
                printf("no active deployments\n");
        json_array_foreach(active, i, d) {
                if (i > 0)
                        printf("\n");
                print_status_text(d);
        }
        return EXIT_OK;
}

static void deployments_help(void) {
        printf("Usage: coordctl deployments [SERVICE] [--limit N]\n"
               "\n"
               "Deployment history, newest first: id, service, version, previous version,\n"
               "state, creation time and instances done of total.  --limit N shows at most\n"
               "N (default %d, at most %d).  --output json prints the API's object.\n",
               HISTORY_LIMIT_DEFAULT, HISTORY_LIMIT_MAX);
}

static int deployments_cmd(int argc, char **argv, const struct coordctl_globals *g) {
        static const struct option opts[] = {
                { "limit", required_argument, NULL, ARG_LIMIT },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        _cleanup_free_ char *path = NULL;
        _cleanup_json_ json_t *j = NULL;
        json_t *arr, *d;
        const char *service = NULL;
        uint64_t limit = HISTORY_LIMIT_DEFAULT;
        size_t i;
        int c, r;

        optind = 1;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0)
                switch (c) {
                case ARG_LIMIT:
                        if (parse_uint64(optarg, &limit) < 0 || limit < 1 || limit > HISTORY_LIMIT_MAX) {
                                fprintf(stderr, "coordctl deployments: --limit: '%s' is not a number from 1 to %d\n",
                                        optarg, HISTORY_LIMIT_MAX);
                                return EXIT_USAGE;
                        }
                        break;
                case 'h': deployments_help(); return EXIT_OK;
                default: return EXIT_USAGE;
                }
        if (argc - optind > 1) {
                fprintf(stderr, "coordctl deployments: unexpected argument '%s'\n", argv[optind + 1]);
                return EXIT_USAGE;
        }
        if (argc - optind == 1) {
                service = argv[optind];
                if (!name_is_valid(service)) {
                        fprintf(stderr, "coordctl deployments: SERVICE: '%s' is not a valid name\n", service);
                        return EXIT_USAGE;
                }
        }
        path = strdup_printf("/v1/deployments?limit=%llu%s%s", (unsigned long long) limit,
                             service ? "&service=" : "", service ? service : "");
        if (!path)
                return EXIT_FAILED;
        r = get_deployment_list(g, "deployments", path, &j);
        if (r != 0)
                return r;
        arr = json_object_get(j, "deployments");
        if (g->output == OUTPUT_JSON) {
                print_json_pretty(j);
                return EXIT_OK;
        }
        if (json_array_size(arr) == 0) {
                printf("(no deployments%s%s)\n", service ? " of " : "", service ? service : "");
                return EXIT_OK;
        }
        printf("%-22s %-16s %-12s %-12s %-14s %-24s %s\n", "ID", "SERVICE", "VERSION", "PREVIOUS", "STATE",
               "CREATED", "PROGRESS");
        json_array_foreach(arr, i, d) {
                json_t *p = json_object_get(d, "progress");
                _cleanup_free_ char *cid = clean_field(d, "id", "-"), *csvc = clean_field(d, "service", "-"),
                                    *cver = clean_field(d, "version", "-"),
                                    *cprev = clean_field(d, "previous_version", "-"),
                                    *cst = clean_field(d, "state", "-"), *ccr = clean_field(d, "created_at", "-");
                if (!cid || !csvc || !cver || !cprev || !cst || !ccr)
                        return EXIT_FAILED;
                printf("%-22s %-16s %-12s %-12s %-14s %-24s %lld/%lld\n", cid, csvc, cver, cprev, cst, ccr,
                       (long long) json_integer_value(json_object_get(p, "done")),
                       (long long) json_integer_value(json_object_get(p, "total")));
        }
        return EXIT_OK;
}

/* ---- pause, resume, cancel, revert ---- */

static void control_help(const char *action) {
        bool revert = strcmp(action, "revert") == 0;

        printf("Usage: coordctl %s DEPLOYMENT_ID%s\n"
               "\n", action, revert ? " [--follow [--timeout D]]" : "");
        if (strcmp(action, "pause") == 0)
                printf("Pause a deployment: steps in flight finish, nothing new starts.\n");
        else if (strcmp(action, "resume") == 0)
                printf("Resume a paused deployment where it was.\n");
        else if (strcmp(action, "cancel") == 0)
                printf("Cancel a deployment at once, without reverting; instances keep the step\n"
                       "they reached (revert, or POST /v1/instances/ID/undrain, brings them back).\n");
        else
                printf("Take every instance a finished deployment (the newest of its service)\n"
                       "changed back to its previous version.  --follow follows the revert live\n"
                       "like deploy does (exit 0 reverted, 1 failed, 5 --timeout elapsed).\n");
        printf("\n"
               "The leading coordinatord carries the request out on its next pass; this waits\n"
               "up to 10s for that and prints the new state.\n"
               "\n"
               "Exit codes: 0 done, 1 the request does not fit the deployment's state (the\n"
               "message says why) or no such deployment, 3 coordinatord unreachable or\n"
               "refused, 5 not taken up within 10s (it stays queued).\n");
}

/* The id of the last event of a finished deployment: its stream replays everything and ends. */
static int last_event_id(const struct coordctl_globals *g, const char *id, uint64_t *ret) {
        static const char *const headers[] = { "Accept: text/event-stream", NULL };
        _cleanup_free_ char *path = strdup_printf("/v1/deployments/%s/events", id), *body = NULL;
        _cleanup_sse_parser_ struct sse_parser *p = NULL;
        const char *last;
        long status;
        int r;

        if (!path)
                return -ENOMEM;
        r = coordctl_http(g, "GET", path, NULL, headers, &status, &body);
        if (r < 0)
                return r;
        if (status != 200)
                return -EIO;
        p = sse_parser_new(SSE_LINE_MAX, SSE_EVENT_MAX, NULL, NULL);
        if (!p)
                return -ENOMEM;
        r = sse_parser_feed(p, body, strlen(body));
        if (r < 0)
                return r;
        last = sse_parser_last_id(p);
        if (!last)
                return -ENOENT;
        return parse_uint64(last, ret);
}

static void print_control_result(const struct coordctl_globals *g, json_t *d) {
        if (g->output == OUTPUT_JSON) {
                print_json_pretty(d);
                return;
        }
        const char *state = jstr(d, "state") ? jstr(d, "state") : "unknown", *phase = jstr(d, "phase");
        _cleanup_free_ char *cstate = deploy_clean_text(state), *cphase = phase ? deploy_clean_text(phase) : NULL;
        printf("Deployment %s: %s", jstr(d, "id"), cstate ? cstate : "?");
        if (cphase && strcmp(state, "paused") == 0 && strcmp(cphase, "paused") != 0)
                printf(" (in %s)", cphase);
        printf("\n");
}

/* revert --follow: where to follow from.  A finished deployment's stream
 * holds its old terminal event, which would pass for the revert's end: follow
 * after its last event so far.  0 (*ret_* set only for a finished deployment
 * with events), or an exit code (message printed). */
static int revert_follow_start(const struct coordctl_globals *g, const char *action, const char *id,
                               bool *ret_has_seq, uint64_t *ret_seq) {
        _cleanup_json_ json_t *d = NULL;
        uint64_t seq;
        int r;

        r = get_deployment(g, action, id, &d);
        if (r != 0)
                return r;
        if (!deploy_state_is_terminal(jstr(d, "state")))
                return 0;
        r = last_event_id(g, id, &seq);
        if (r == -ENOENT)
                return 0;
        if (r < 0) {
                fprintf(stderr, "coordctl %s: cannot read the events of deployment %s so far (%s); "
                        "nothing was requested (run without --follow to revert anyway)\n",
                        action, id, r == -EHOSTUNREACH ? "coordinatord unreachable" : strerror(-r));
                return r == -EHOSTUNREACH ? EXIT_UNAVAILABLE : EXIT_FAILED;
        }
        *ret_has_seq = true;
        *ret_seq = seq;
        return 0;
}

/* Wait for the leading coordinatord to take the request up (up to
 * CONTROL_WAIT_USEC): 0 with *d replaced by the deployment as it is then, or
 * an exit code (message printed). */
static int control_wait(const struct coordctl_globals *g, const char *action, const char *id, json_t **d) {
        uint64_t give_up = now_usec() + CONTROL_WAIT_USEC;
        int r;

        while (!json_is_null(json_object_get(*d, "requested")) && json_object_get(*d, "requested")) {
                if (now_usec() >= give_up) {
                        _cleanup_free_ char *st = clean_field(*d, "state", "?");
                        fprintf(stderr,
                                "coordctl %s: the leading coordinatord has not taken the request up within %llus "
                                "(deployment %s is %s); it stays queued\n",
                                action, (unsigned long long) (CONTROL_WAIT_USEC / USEC_PER_SEC), id, st ? st : "?");
                        return EXIT_TIMEOUT;
                }
                sleep_usec(CONTROL_POLL_USEC);
                json_decref(*d);
                *d = NULL;
                r = get_deployment(g, action, id, d);
                if (r != 0)
                        return r;
        }
        return 0;
}

static int control_cmd(int argc, char **argv, const struct coordctl_globals *g) {
        static const struct option opts[] = {
                { "follow", no_argument, NULL, ARG_FOLLOW },
                { "timeout", required_argument, NULL, ARG_TIMEOUT },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        const char *action = argv[0], *id, *timeout_text = NULL;
        bool revert = strcmp(action, "revert") == 0, follow = false, has_seq = false;
        _cleanup_free_ char *path = NULL, *body = NULL;
        _cleanup_json_ json_t *d = NULL;
        uint64_t timeout_usec = 0, seq = 0;
        long status;
        int c, r;

        optind = 1;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0)
                switch (c) {
                case ARG_FOLLOW:
                case ARG_TIMEOUT:
                        if (!revert) {
                                fprintf(stderr, "coordctl %s: --follow and --timeout are for revert only\n", action);
                                return EXIT_USAGE;
                        }
                        if (c == ARG_FOLLOW)
                                follow = true;
                        else {
                                if (parse_duration_flag(action, "--timeout", optarg, &timeout_usec) < 0)
                                        return EXIT_USAGE;
                                timeout_text = optarg;
                        }
                        break;
                case 'h': control_help(action); return EXIT_OK;
                default: return EXIT_USAGE;
                }
        r = parse_one_id(action, argc, argv, false, &id);
        if (r != 0)
                return r;
        if (timeout_usec && !follow) {
                fprintf(stderr, "coordctl %s: --timeout needs --follow\n", action);
                return EXIT_USAGE;
        }

        if (follow) {
                r = revert_follow_start(g, action, id, &has_seq, &seq);
                if (r != 0)
                        return r;
        }

        path = strdup_printf("/v1/deployments/%s/%s", id, action);
        if (!path)
                return EXIT_FAILED;
        r = coordctl_http(g, "POST", path, NULL, NULL, &status, &body);
        if (r < 0)
                return r == -ENOMEM ? EXIT_FAILED : EXIT_UNAVAILABLE;
        if (status != 202 && status != 200)
                return coordctl_http_failure(action, status, body);
        d = json_loads(body, 0, NULL);
        if (!json_is_object(d) || !jstr(d, "id"))
                return unexpected_answer(action);
        if (follow)
                return follow_deployment(g, action, d, has_seq, seq, timeout_usec, timeout_text, true);

        r = control_wait(g, action, id, &d);
        if (r != 0)
                return r;
        print_control_result(g, d);
        return EXIT_OK;
}

int coordctl_deploy_main(int argc, char **argv, const struct coordctl_globals *g) {
        if (strcmp(argv[0], "deploy") == 0)
                return deploy_cmd(argc, argv, g);
        if (strcmp(argv[0], "status") == 0)
                return status_cmd(argc, argv, g);
        if (strcmp(argv[0], "deployments") == 0)
                return deployments_cmd(argc, argv, g);
        return control_cmd(argc, argv, g);
}
