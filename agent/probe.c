/* See probe.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <curl/curl.h>

#include "hook.h"
#include "log.h"
#include "macro.h"
#include "probe.h"
#include "strutil.h"

struct probe_run {
        struct prober *prober;
        struct probe_run *next, *prev;
        enum probe_kind kind;
        CURL *easy;
        struct hook *hook;
        probe_done_cb cb;
        void *userdata;
        char error[CURL_ERROR_SIZE];
};

struct prober {
        sd_event *event;
        CURLM *multi;
        sd_event_source *timer;
        struct probe_run *runs;
};

static void run_unlink(struct probe_run *r) {
        if (r->prev)
                r->prev->next = r->next;
        else if (r->prober->runs == r)
                r->prober->runs = r->next;
        if (r->next)
                r->next->prev = r->prev;
        r->next = r->prev = NULL;
}

static void run_free(struct probe_run *r) {
        if (!r)
                return;
        run_unlink(r);
        if (r->easy) {
                curl_multi_remove_handle(r->prober->multi, r->easy);
                curl_easy_cleanup(r->easy);
        }
        hook_free(r->hook);
        free(r);
}

void probe_run_cancel(struct probe_run *r) {
        run_free(r);
}

static void run_complete(struct probe_run *r, bool ok, const char *reason) {
        probe_done_cb cb = r->cb;
        void *ud = r->userdata;

        /* Detach first: the callback may start the next run. */
        run_unlink(r);
        if (r->easy) {
                curl_multi_remove_handle(r->prober->multi, r->easy);
                curl_easy_cleanup(r->easy);
                r->easy = NULL;
        }
        cb(r, ok, reason, ud);
        hook_free(r->hook);
        free(r);
}

static void check_multi_info(struct prober *p) {
        CURLMsg *msg;
        int left;

        while ((msg = curl_multi_info_read(p->multi, &left))) {
                struct probe_run *r = NULL;
                char reason[CURL_ERROR_SIZE + 64];
                long code = 0;

                if (msg->msg != CURLMSG_DONE)
                        continue;
                curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &r);
                if (!r)
                        continue;
                if (msg->data.result != CURLE_OK) {
                        snprintf(reason, sizeof reason, "%s", r->error[0] ? r->error : curl_easy_strerror(msg->data.result));
                        run_complete(r, false, reason);
                        continue;
                }
                if (r->kind == PROBE_TCP) {
                        run_complete(r, true, NULL);
                        continue;
                }
                curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
                if (code >= 200 && code < 300)
                        run_complete(r, true, NULL);
                else {
                        snprintf(reason, sizeof reason, "HTTP status %ld", code);
                        run_complete(r, false, reason);
                }
        }
}

static int on_socket_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct prober *p = userdata;
        int flags = 0, running;

        if (revents & EPOLLIN)
                flags |= CURL_CSELECT_IN;
        if (revents & EPOLLOUT)
                flags |= CURL_CSELECT_OUT;
        if (revents & (EPOLLERR | EPOLLHUP))
                flags |= CURL_CSELECT_ERR;
        curl_multi_socket_action(p->multi, fd, flags, &running);
        check_multi_info(p);
        return 0;
}

static int on_curl_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        struct prober *p = userdata;
        int running;

        curl_multi_socket_action(p->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        check_multi_info(p);
        return 0;
}

static int socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp) {
        struct prober *p = userp;
        sd_event_source *src = socketp;
        uint32_t events = 0;

        if (what == CURL_POLL_REMOVE) {
                if (src) {
                        sd_event_source_disable_unref(src);
                        curl_multi_assign(p->multi, s, NULL);
                }
                return 0;
        }
        if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
                events |= EPOLLIN;
        if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
                events |= EPOLLOUT;
        if (src) {
                if (sd_event_source_set_io_events(src, events) < 0)
                        return -1;
                return 0;
        }
        if (sd_event_add_io(p->event, &src, s, events, on_socket_io, p) < 0)
                return -1;
        curl_multi_assign(p->multi, s, src);
        return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp) {
        struct prober *p = userp;

        if (timeout_ms < 0)
                return sd_event_source_set_enabled(p->timer, SD_EVENT_OFF) < 0 ? -1 : 0;
        if (sd_event_source_set_time_relative(p->timer, (uint64_t) timeout_ms * 1000) < 0)
                return -1;
        return sd_event_source_set_enabled(p->timer, SD_EVENT_ONESHOT) < 0 ? -1 : 0;
}

int prober_new(sd_event *e, struct prober **ret) {
        struct prober *p;
        int r;

        p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        p->event = sd_event_ref(e);
        p->multi = curl_multi_init();
        if (!p->multi) {
                prober_free(p);
                return -ENOMEM;
        }
        r = sd_event_add_time_relative(e, &p->timer, CLOCK_MONOTONIC, 0, 0, on_curl_timer, p);
        if (r < 0) {
                prober_free(p);
                return r;
        }
        (void) sd_event_source_set_enabled(p->timer, SD_EVENT_OFF);
        curl_multi_setopt(p->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
        curl_multi_setopt(p->multi, CURLMOPT_SOCKETDATA, p);
        curl_multi_setopt(p->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
        curl_multi_setopt(p->multi, CURLMOPT_TIMERDATA, p);
        *ret = p;
        return 0;
}

struct prober *prober_free(struct prober *p) {
        if (!p)
                return NULL;
        while (p->runs)
                run_free(p->runs);
        if (p->multi)
                curl_multi_cleanup(p->multi);
        p->timer = sd_event_source_disable_unref(p->timer);
        sd_event_unref(p->event);
        free(p);
        return NULL;
}

static size_t discard_body(char *ptr, size_t size, size_t nmemb, void *userdata) {
        return size * nmemb;
}

static void on_exec_done(struct hook *h, const struct hook_result *res, void *userdata) {
        struct probe_run *r = userdata;

        /* run_complete() frees the hook after the callback. */
        run_complete(r, res->error == NULL, res->error);
}

int prober_start(struct prober *p, const struct probe_spec *spec, probe_done_cb cb, void *userdata,
                 struct probe_run **ret) {
        struct probe_run *r;
        int k;

        r = calloc(1, sizeof *r);
        if (!r)
                return -ENOMEM;
        r->prober = p;
        r->kind = spec->kind;
        r->cb = cb;
        r->userdata = userdata;

        if (spec->kind == PROBE_EXEC) {
                struct hook_spec hs = {
                        .name = "health probe",
                        .command = spec->target,
                        .env = spec->env,
                        .timeout_usec = spec->timeout_usec,
                        .service = spec->service,
                        .instance = spec->instance,
                        .output_level = LOG_DEBUG,
                };
                k = hook_start(p->event, &hs, on_exec_done, r, &r->hook);
                if (k < 0) {
                        free(r);
                        return k;
                }
        } else {
                _cleanup_free_ char *url = NULL;
                long ms = (long) (spec->timeout_usec / 1000);

                if (spec->kind == PROBE_TCP)
                        url = strdup_printf("http://%s/", spec->target);
                else
                        url = strdup(spec->target);
                r->easy = curl_easy_init();
                if (!url || !r->easy) {
                        if (r->easy)
                                curl_easy_cleanup(r->easy);
                        free(r);
                        return -ENOMEM;
                }
                if (ms <= 0)
                        ms = 1;
                curl_easy_setopt(r->easy, CURLOPT_URL, url);
                curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
                curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->error);
                curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
                curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, ms);
                curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT_MS, ms);
                curl_easy_setopt(r->easy, CURLOPT_FOLLOWLOCATION, 0L);
                curl_easy_setopt(r->easy, CURLOPT_USERAGENT, "coord-agent/" COORD_VERSION);
                curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, discard_body);
                curl_easy_setopt(r->easy, CURLOPT_MAXFILESIZE, 1L << 20);
#if LIBCURL_VERSION_NUM >= 0x075500
                curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "http,https");
#else
                curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
                if (spec->kind == PROBE_TCP)
                        curl_easy_setopt(r->easy, CURLOPT_CONNECT_ONLY, 1L);
                if (curl_multi_add_handle(p->multi, r->easy) != CURLM_OK) {
                        curl_easy_cleanup(r->easy);
                        free(r);
                        return -EIO;
                }
        }
        r->next = p->runs;
        if (p->runs)
                p->runs->prev = r;
        p->runs = r;
        if (ret)
                *ret = r;
        return 0;
}
