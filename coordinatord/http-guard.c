/* See http-guard.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http-guard.h"

static const char *const http_reject_table[_HTTP_REJECT_MAX] = {
        [HTTP_REJECT_PER_CLIENT] = "per_client",
        [HTTP_REJECT_LIMIT] = "limit",
        [HTTP_REJECT_HEAD_TIMEOUT] = "head_timeout",
};
DEFINE_STRING_TABLE_LOOKUP(http_reject, enum http_reject, _HTTP_REJECT_MAX)

unsigned http_reserve_for(unsigned max) {
        return max / 16;
}

enum http_reject http_guard_admit(const struct http_limits *l, unsigned total, unsigned held) {
        if (held >= l->per_client)
                return HTTP_REJECT_PER_CLIENT;
        if (total >= l->max)
                return HTTP_REJECT_LIMIT;
        /* The reserve: whoever already holds connections waits, so that a
         * health probe or an operator still gets in during a flood. */
        if (total + l->reserve >= l->max && held >= HTTP_RESERVE_HELD_MAX)
                return HTTP_REJECT_LIMIT;
        return HTTP_ADMIT;
}

int http_client_from_sockaddr(const struct sockaddr *sa, socklen_t len, struct http_client *ret) {
        static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
        struct http_client c = {};

        if (sa && sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
                memcpy(c.b, &((const struct sockaddr_in *) sa)->sin_addr, 4);
        } else if (sa && sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
                const uint8_t *a = ((const struct sockaddr_in6 *) sa)->sin6_addr.s6_addr;
                if (memcmp(a, v4mapped, sizeof v4mapped) == 0)
                        memcpy(c.b, a + 12, 4);
                else {
                        c.b[4] = 6; /* never equal to an IPv4 client */
                        memcpy(c.b + 8, a, 8);
                }
        } else {
                *ret = c;
                return -EAFNOSUPPORT;
        }
        *ret = c;
        return 0;
}

static bool client_is_v6(const struct http_client *c) {
        return c->b[4] == 6;
}

void http_client_to_string(const struct http_client *c, char *buf, size_t size) {
        char a[INET6_ADDRSTRLEN] = "?";

        if (client_is_v6(c)) {
                uint8_t in6[16] = {};
                memcpy(in6, c->b + 8, 8);
                inet_ntop(AF_INET6, in6, a, sizeof a);
                snprintf(buf, size, "%s/64", a);
        } else {
                inet_ntop(AF_INET, c->b, a, sizeof a);
                snprintf(buf, size, "%s", a);
        }
}

/* Open addressing with linear probing; an entry is in use while its count is
 * non-zero.  Sized to twice the capacity, so probes stay short. */
struct http_clients_entry {
        struct http_client key;
        unsigned count;
};

struct http_clients {
        size_t mask; /* slots - 1 */
        size_t used, capacity;
        struct http_clients_entry slot[];
};

int http_clients_new(size_t capacity, struct http_clients **ret) {
        size_t slots = 16;
        struct http_clients *t;

        while (slots < 2 * capacity)
                slots *= 2;
        t = calloc(1, sizeof *t + slots * sizeof t->slot[0]);
        if (!t)
                return -ENOMEM;
        t->mask = slots - 1;
        t->capacity = capacity;
        *ret = t;
        return 0;
}

struct http_clients *http_clients_free(struct http_clients *t) {
        free(t);
        return NULL;
}

static size_t client_hash(const struct http_client *c) {
        uint64_t h = UINT64_C(14695981039346656037); /* FNV-1a */

        for (size_t i = 0; i < sizeof c->b; i++)
                h = (h ^ c->b[i]) * UINT64_C(1099511628211);
        return (size_t) (h ^ (h >> 32));
}

/* The slot holding c, or the empty slot where it would go. */
static size_t client_slot(const struct http_clients *t, const struct http_client *c) {
        size_t i = client_hash(c) & t->mask;

        while (t->slot[i].count > 0 && memcmp(&t->slot[i].key, c, sizeof *c) != 0)
                i = (i + 1) & t->mask;
        return i;
}

unsigned http_clients_held(const struct http_clients *t, const struct http_client *c) {
        return t->slot[client_slot(t, c)].count;
}

int http_clients_add(struct http_clients *t, const struct http_client *c) {
        size_t i = client_slot(t, c);

        if (t->slot[i].count == 0) {
                if (t->used >= t->capacity)
                        return -ENOSPC;
                t->slot[i].key = *c;
                t->used++;
        }
        t->slot[i].count++;
        return 0;
}

/* Backward-shift deletion: move later entries of the probe run into the hole
 * so that no lookup stops early at it. */
static void slot_clear(struct http_clients *t, size_t hole) {
        size_t i = hole;

        for (;;) {
                i = (i + 1) & t->mask;
                if (t->slot[i].count == 0)
                        break;
                size_t home = client_hash(&t->slot[i].key) & t->mask;
                /* Movable unless its home lies cyclically in (hole, i]. */
                if (((i - home) & t->mask) >= ((i - hole) & t->mask)) {
                        t->slot[hole] = t->slot[i];
                        hole = i;
                }
        }
        t->slot[hole] = (struct http_clients_entry) {};
}

int http_clients_remove(struct http_clients *t, const struct http_client *c) {
        size_t i = client_slot(t, c);

        if (t->slot[i].count == 0)
                return -ENOENT;
        if (--t->slot[i].count == 0) {
                slot_clear(t, i);
                t->used--;
        }
        return 0;
}

/* tchar (RFC 9110 section 5.6.2). */
static bool is_tchar(char ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
               (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

bool http_method_is_valid(const char *method) {
        size_t n = 0;

        if (!method)
                return false;
        for (; method[n]; n++)
                if (n >= HTTP_METHOD_MAX || !is_tchar(method[n]))
                        return false;
        return n > 0;
}

unsigned http_guard_head(size_t uri_len, size_t head_size, size_t n_headers, const char **ret_what) {
        if (uri_len > HTTP_URI_MAX) {
                *ret_what = "the request target is longer than 8192 bytes";
                return 414;
        }
        if (head_size > HTTP_HEAD_MAX) {
                *ret_what = "the request head is larger than 16384 bytes";
                return 431;
        }
        if (n_headers > HTTP_HEADERS_MAX) {
                *ret_what = "more than 100 header fields";
                return 431;
        }
        return 0;
}

static int parse_length(const char *s, uint64_t *ret) {
        uint64_t v = 0;

        if (!s || !*s)
                return -EINVAL;
        for (; *s; s++) {
                uint64_t d = (uint64_t) (*s - '0');
                if (*s < '0' || *s > '9' || v > (UINT64_MAX - d) / 10)
                        return -EINVAL;
                v = v * 10 + d;
        }
        *ret = v;
        return 0;
}

#define REFUSE(msg)                     \
        do {                            \
                *ret_what = (msg);      \
                return -EINVAL;         \
        } while (0)

int http_guard_framing(const struct http_framing_in *in, uint64_t *ret_length, bool *ret_chunked,
                       const char **ret_what) {
        uint64_t len = 0;

        if (in->n_te > 0) {
                if (in->n_cl > 0)
                        REFUSE("both Transfer-Encoding and Content-Length");
                if (in->n_te > 1 || strcasecmp(in->te[0], "chunked") != 0)
                        REFUSE("Transfer-Encoding must be exactly \"chunked\"");
                if (!in->version || strcmp(in->version, "HTTP/1.0") == 0)
                        REFUSE("Transfer-Encoding in an HTTP/1.0 request");
                *ret_length = 0;
                *ret_chunked = true;
                return 0;
        }
        for (size_t i = 0; i < in->n_cl; i++) {
                uint64_t v;
                if (parse_length(in->cl[i], &v) < 0)
                        REFUSE("invalid Content-Length");
                if (i > 0 && v != len)
                        REFUSE("conflicting Content-Length headers");
                len = v;
        }
        *ret_length = len;
        *ret_chunked = false;
        return 0;
}
#undef REFUSE
