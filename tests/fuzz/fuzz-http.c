/* coordinatord's HTTP front (coordinatord/http.c, the route table of api.c and
 * the handlers of api-*.c) through its one exported entry, httpd_start(): a
 * real libmicrohttpd server on 127.0.0.1 with three tokens, no Redis (every
 * handler that needs it answers 503 after checking its input), and one HTTP
 * request per input over a loopback connection.  The request's body also goes
 * straight to the JSON decoders behind the API (rollout_strategy_from_json(),
 * rollout_from_json(), configadv_validate() and configadv_mask()).
 *
 * Input: one byte choosing the token (none, read, deploy, admin, unknown), then
 * "METHOD TARGET\n", header lines "Name: value\n", an empty line, the body.  The
 * target adds Host, Connection: close and Content-Length itself (and drops
 * those and Transfer-Encoding and Expect from the input) so that every request
 * is complete.  Properties: the server answers within 10 s; never 500 (a
 * handler that did not answer, or failed); a JSON response parses, and a JSON
 * error has the documented shape {"error":{"code","message"}} (but for the
 * /health/ endpoints, whose 503 is their status document); no response shows
 * a token the request did not carry; a strategy or deployment record that
 * decodes encodes to JSON that decodes to the same encoding. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "conf-parser.h"
#include "coordinatord/api.h"
#include "coordinatord/auth.h"
#include "coordinatord/configadv.h"
#include "coordinatord/coordinatord.h"
#include "coordinatord/fleet.h"
#include "coordinatord/http.h"
#include "coordinatord/leader.h"
#include "coordinatord/metrics.h"
#include "coordinatord/rollout.h"
#include "log.h"
#include "tests/fuzz/fuzz.h"

#define RESPONSE_MAX (1024 * 1024)

static const char *const tokens[] = { NULL, "fuzz-read-token-0123456789abcdef", "fuzz-deploy-token-0123456789abcd",
                                      "fuzz-admin-token-0123456789abcde", "fuzz-unknown-token-0123456789abc" };
static struct server server;
static unsigned port;

/* The configuration as coordinatord loads it, every other setting at its default. */
static const char config[] =
        "{\"listen\": \"127.0.0.1:0\", \"namespace\": \"fuzz\", \"id\": \"fuzz-1\", \"http_threads\": 2,"
        " \"tokens\": [{\"name\": \"reader\", \"role\": \"read\", \"token\": \"fuzz-read-token-0123456789abcdef\"},"
        " {\"name\": \"deployer\", \"role\": \"deploy\", \"token\": \"fuzz-deploy-token-0123456789abcd\"},"
        " {\"name\": \"admin\", \"role\": \"admin\", \"token\": \"fuzz-admin-token-0123456789abcde\"}]}";

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        char err[512];

        signal(SIGPIPE, SIG_IGN);
        log_set_max_level(LOG_CRIT);
        unsetenv("COORD_LISTEN");
        unsetenv("COORD_NAMESPACE");
        unsetenv("COORD_REDIS");
        FUZZ_CHECK(config_load_string(config, "fuzz", cd_config_fields, &server.cfg, err, sizeof err) == 0, "%s", err);
        server.ns = server.cfg.namespace;
        server.id = server.cfg.id;
        server.auth = auth_new(server.cfg.tokens, server.cfg.n_tokens);
        if (!server.auth || sd_event_new(&server.event) < 0 || fleet_new(&server, &server.fleet) < 0 ||
            leader_new(&server, &server.leader) < 0)
                abort();
        metrics_init(api_routes, api_n_routes);
        if (httpd_start(&server, api_routes, api_n_routes, &server.httpd) < 0)
                abort();
        port = httpd_port(server.httpd);
        return 0;
}

/* RFC 9110 token characters (a method, a header name). */
static bool is_token(const char *s, size_t len) {
        for (size_t i = 0; i < len; i++)
                if (!(isalnum((unsigned char) s[i]) || strchr("!#$%&'*+-.^_`|~", s[i])))
                        return false;
        return len > 0;
}

/* Printable, or any byte from 0x80 (a request target, a header value). */
static bool is_text(const char *s, size_t len, bool space_ok) {
        for (size_t i = 0; i < len; i++)
                if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f || (s[i] == ' ' && !space_ok))
                        return false;
        return true;
}

/* "METHOD TARGET", or "Name: value": libmicrohttpd drops what is not HTTP at all, which
 * says nothing about coordinatord. */
static bool request_line_ok(const char *s, size_t len) {
        const char *sp = memchr(s, ' ', len);
        return sp && is_token(s, (size_t) (sp - s)) && sp + 1 < s + len &&
               is_text(sp + 1, len - (size_t) (sp + 1 - s), false);
}

static bool header_line_ok(const char *s, size_t len) {
        const char *colon = memchr(s, ':', len);
        return colon && is_token(s, (size_t) (colon - s)) && is_text(colon + 1, len - (size_t) (colon + 1 - s), true);
}

static bool header_dropped(const char *line, size_t len) {
        static const char *const names[] = { "content-length:", "transfer-encoding:", "connection:", "host:",
                                             "expect:" };
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
                if (len >= strlen(names[i]) && strncasecmp(line, names[i], strlen(names[i])) == 0)
                        return true;
        return false;
}

/* The request for the input text (after the token byte), or NULL when it has no request
 * line; *ret_body points into text. */
static char *build_request(const char *text, size_t len, const char *token, const char **ret_body,
                           size_t *ret_body_len) {
        const char *p = text, *end = text + len, *nl = memchr(p, '\n', len);
        char *req = NULL;
        size_t size = 0;
        FILE *f;

        if (!nl || memchr(text, '\0', len) || !request_line_ok(p, (size_t) (nl - p)))
                return NULL;
        f = open_memstream(&req, &size);
        if (!f)
                abort();
        fprintf(f, "%.*s HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n", (int) (nl - p), p);
        if (token)
                fprintf(f, "Authorization: Bearer %s\r\n", token);
        for (p = nl + 1; p < end && *p != '\n'; p = nl + 1) {
                nl = memchr(p, '\n', (size_t) (end - p));
                if (!nl)
                        nl = end;
                if (header_line_ok(p, (size_t) (nl - p)) && !header_dropped(p, (size_t) (nl - p)))
                        fprintf(f, "%.*s\r\n", (int) (nl - p), p);
        }
        *ret_body = p < end ? p + 1 : end;
        *ret_body_len = (size_t) (end - *ret_body);
        fprintf(f, "Content-Length: %zu\r\n\r\n", *ret_body_len);
        fwrite(*ret_body, 1, *ret_body_len, f);
        if (fclose(f) != 0)
                abort();
        return req;
}

/* A connection to the server.  libFuzzer's SIGALRM (for -timeout) interrupts system calls:
 * an interrupted connect() goes on in the background. */
static int connect_server(void) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port) };
        struct timeval tv = { .tv_sec = 10 };
        struct pollfd p;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), r, e = 0;
        socklen_t el = sizeof e;

        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        FUZZ_CHECK(fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0, "socket: %s",
                   strerror(errno));
        r = connect(fd, (struct sockaddr *) &a, sizeof a);
        if (r < 0 && errno == EINTR) {
                p = (struct pollfd) { .fd = fd, .events = POLLOUT };
                while ((r = poll(&p, 1, 10000)) < 0 && errno == EINTR)
                        ;
                r = r == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) == 0 && e == 0 ? 0 : -1;
                errno = e ? e : ETIMEDOUT;
        }
        FUZZ_CHECK(r == 0, "cannot connect to the server: %s", strerror(errno));
        return fd;
}

/* Send req, read the whole response (the server closes); its length, NUL-terminated in buf. */
static size_t exchange(const char *req, char *buf, size_t size) {
        size_t n = 0, len = strlen(req);
        int fd = connect_server();

        for (size_t o = 0; o < len;) {
                ssize_t k = write(fd, req + o, len - o);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break; /* the server may answer (413, 400) and close before reading it all */
                o += (size_t) k;
        }
        for (;;) {
                ssize_t k = read(fd, buf + n, size - 1 - n);
                if (k < 0 && errno == EINTR)
                        continue; /* SO_RCVTIMEO reports EAGAIN */
                FUZZ_CHECK(k >= 0 || errno == ECONNRESET, "no complete answer within 10 s: %s", strerror(errno));
                if (k <= 0 || n + (size_t) k >= size - 1)
                        break;
                n += (size_t) k;
        }
        close(fd);
        buf[n] = '\0';
        return n;
}

/* Whether the occurrence at `at` starts inside an escape the server wrote for a
 * byte of the input: "\x7f" followed by the input's "uzz-..." spells "fuzz-...",
 * yet no token was shown (the escape's last hex digit is the token's first
 * letter).  Covers "\xHH" and JSON's "\u00HH". */
static bool starts_in_escape(const char *resp, const char *at) {
        for (const char *k = at - 1; k >= resp && at - k <= 5; k--)
                if (*k == '\\')
                        return (k[1] == 'x' && at - k == 3) || (k[1] == 'u' && at - k == 5);
        return false;
}

static bool secret_token_shown(const char *resp, const uint8_t *data, size_t size) {
        for (size_t i = 1; i < sizeof tokens / sizeof tokens[0]; i++) {
                if (fuzz_contains((const char *) data, size, tokens[i]))
                        continue; /* the client's own input, echoed */
                for (const char *at = strstr(resp, tokens[i]); at; at = strstr(at + 1, tokens[i]))
                        if (!starts_in_escape(resp, at))
                                return true;
        }
        return false;
}

static void check_error_shape(unsigned status, json_t *j, const char *resp) {
        json_t *e = json_object_get(j, "error");

        FUZZ_CHECK(json_is_string(json_object_get(e, "code")) && json_is_string(json_object_get(e, "message")),
                   "%u without {\"error\":{\"code\",\"message\"}}:\n%s", status, resp);
}

/* head: the request was HEAD (no body); health: a /health/ endpoint, whose 503 has its own shape. */
static void check_response(const char *resp, size_t len, const uint8_t *data, size_t size, bool head, bool health) {
        unsigned status = 0;
        const char *body = strstr(resp, "\r\n\r\n");

        FUZZ_CHECK(sscanf(resp, "HTTP/1.%*[01] %u", &status) == 1, "no status line:\n%s", resp);
        FUZZ_CHECK(status != 500, "500:\n%s", resp);
        FUZZ_CHECK(!secret_token_shown(resp, data, size), "the response shows a token:\n%s", resp);
        if (!body || !strcasestr(resp, "\r\nContent-Type: application/json") || strncmp(resp + 9, "204", 3) == 0)
                return;
        body += 4;
        json_t *j = json_loadb(body, len - (size_t) (body - resp), JSON_DECODE_ANY, NULL);
        FUZZ_CHECK(j || head, "a JSON response that does not parse:\n%s", resp);
        if (j && status >= 400 && !health)
                check_error_shape(status, j, resp);
        json_decref(j);
}

static void check_strategy(json_t *j) {
        struct rollout_strategy st, again;
        char err[512];

        if (rollout_strategy_from_json(json_object_get(j, "strategy"), &st, err, sizeof err) < 0)
                return;
        json_t *e1 = rollout_strategy_to_json(&st);
        FUZZ_CHECK(e1 && rollout_strategy_from_json(e1, &again, err, sizeof err) == 0,
                   "an encoded strategy does not decode: %s", err);
        json_t *e2 = rollout_strategy_to_json(&again);
        FUZZ_CHECK(json_equal(e1, e2), "a strategy encodes differently after a round trip");
        json_decref(e1);
        json_decref(e2);
}

static void check_record(json_t *j) {
        struct rollout *d = NULL, *d2 = NULL;
        char err[512];

        if (rollout_from_json(j, &d, err, sizeof err) < 0)
                return;
        json_t *e1 = rollout_to_json(d, true);
        FUZZ_CHECK(e1 && rollout_from_json(e1, &d2, err, sizeof err) == 0, "an encoded record does not decode: %s",
                   err);
        json_t *e2 = rollout_to_json(d2, true);
        FUZZ_CHECK(json_equal(e1, e2), "a record encodes differently after a round trip");
        json_decref(e1);
        json_decref(e2);
        rollout_free(d);
        rollout_free(d2);
}

static void check_decoders(const char *body, size_t len) {
        json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
        char err[512];

        if (!json_is_object(j)) {
                json_decref(j);
                return;
        }
        check_strategy(j);
        check_record(j);
        json_t *cfg = json_object_get(j, "config");
        if (cfg && configadv_validate(cfg, err, sizeof err) == 0)
                json_decref(configadv_mask(cfg));
        json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static char resp[RESPONSE_MAX];
        const char *body = NULL;
        size_t body_len = 0;
        char *text, *req;

        if (size < 1)
                return 0;
        text = fuzz_string(data + 1, size - 1);
        req = build_request(text, size - 1, tokens[data[0] % (sizeof tokens / sizeof tokens[0])], &body, &body_len);
        if (req) {
                size_t n = exchange(req, resp, sizeof resp);
                check_response(resp, n, data, size, strncmp(text, "HEAD ", 5) == 0,
                               strstr(req, " /health/") && strstr(req, " /health/") < strchr(req, '\r'));
                check_decoders(body, body_len);
        }
        free(req);
        free(text);
        return 0;
}
