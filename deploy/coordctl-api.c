/* coordctl instances / coordctl config: clients of coordinatord's REST API
 * (libcurl), and coordctl_http(), the request helper other commands share
 * (with the list of base URLs it fails over between). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "coordctl.h"
#include "deploy-view.h"
#include "exitcode.h"
#include "fileio.h"
#include "jsonutil.h"
#include "parse-util.h"
#include "strutil.h"

#define RESPONSE_MAX (64 * 1024 * 1024)
#define CONFIG_FILE_MAX (64 * 1024)

struct buf {
        char *p;
        size_t len;
        bool too_big;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata) {
        struct buf *b = userdata;
        size_t n = size * nmemb;

        if (b->len + n > RESPONSE_MAX) {
                b->too_big = true;
                return 0;
        }
        char *np = realloc(b->p, b->len + n + 1);
        if (!np)
                return 0;
        memcpy(np + b->len, ptr, n);
        b->p = np;
        b->len += n;
        b->p[b->len] = '\0';
        return n;
}

/* Entry number i of the comma-separated list (empty entries skipped), trimmed. */
static bool url_entry(const char *list, size_t i, const char **ret_start, size_t *ret_len) {
        const char *p = list;

        for (;;) {
                const char *end = strchrnul(p, ',');
                const char *a = p, *b = end;
                while (a < b && (*a == ' ' || *a == '\t'))
                        a++;
                while (b > a && (b[-1] == ' ' || b[-1] == '\t' || b[-1] == '/'))
                        b--;
                if (b > a) {
                        if (i == 0) {
                                *ret_start = a;
                                *ret_len = (size_t) (b - a);
                                return true;
                        }
                        i--;
                }
                if (!*end)
                        return false;
                p = end + 1;
        }
}

size_t coordctl_url_count(const struct coordctl_globals *g) {
        const char *s;
        size_t n = 0, len;

        while (url_entry(g->url, n, &s, &len))
                n++;
        return n;
}

char *coordctl_url_base(const struct coordctl_globals *g, size_t i) {
        size_t n = coordctl_url_count(g), len;
        const char *s;

        if (n == 0)
                return strdup(g->url); /* curl will name what is wrong with it */
        (void) url_entry(g->url, i % n, &s, &len);
        return strndup(s, len);
}

static size_t url_current;

size_t coordctl_url_current(void) {
        return url_current;
}

static bool has_header(const char *const *headers, const char *name) {
        size_t n = strlen(name);
        for (size_t i = 0; headers && headers[i]; i++)
                if (strncasecmp(headers[i], name, n) == 0 && headers[i][n] == ':')
                        return true;
        return false;
}

int coordctl_http_once(const struct coordctl_globals *g, size_t i, const char *method, const char *path,
                       const char *body, const char *const *headers, long *ret_status, char **ret_body,
                       char **ret_error) {
        _cleanup_free_ char *base = NULL, *url = NULL, *auth = NULL;
        struct curl_slist *hl = NULL;
        struct buf b = {};
        CURL *c;
        CURLcode cr;
        long status = 0, sent = 0;
        size_t n = MAX(coordctl_url_count(g), (size_t) 1);

        base = coordctl_url_base(g, i);
        if (!base)
                return -ENOMEM;
        url = strdup_printf("%s%s", base, path);
        if (!url)
                return -ENOMEM;
        if (g->token) {
                auth = strdup_printf("Authorization: Bearer %s", g->token);
                if (!auth)
                        return -ENOMEM;
        }
        c = curl_easy_init();
        if (!c)
                return -ENOMEM;
        if (auth)
                hl = curl_slist_append(hl, auth);
        if (!has_header(headers, "Accept"))
                hl = curl_slist_append(hl, "Accept: application/json");
        if (body)
                hl = curl_slist_append(hl, "Content-Type: application/json");
        hl = curl_slist_append(hl, "Expect:");
        for (size_t k = 0; headers && headers[k]; k++)
                hl = curl_slist_append(hl, headers[k]);

        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        if (body) {
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
                curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long) strlen(body));
        } else if (strcmp(method, "GET") != 0)
                curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);

        cr = curl_easy_perform(c);
        if (cr == CURLE_OK)
                curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        else
                curl_easy_getinfo(c, CURLINFO_REQUEST_SIZE, &sent);
        curl_slist_free_all(hl);
        curl_easy_cleanup(c);
        if (cr != CURLE_OK) {
                free(b.p);
                char *e = strdup_printf("%s: %s", base, b.too_big ? "response too large" : curl_easy_strerror(cr));
                if (!e)
                        return -ENOMEM;
                *ret_error = e;
                return sent > 0 ? -EIO : -ENOTCONN;
        }
        url_current = i % n;
        *ret_status = status;
        *ret_body = b.p ? b.p : strdup("");
        return *ret_body ? 0 : -ENOMEM;
}

int coordctl_http(const struct coordctl_globals *g, const char *method, const char *path, const char *body,
                  const char *const *headers, long *ret_status, char **ret_body) {
        size_t n = MAX(coordctl_url_count(g), (size_t) 1), start = url_current, tried = 0;
        bool repeatable = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 ||
                          has_header(headers, "Idempotency-Key");
        char **errs = calloc(n, sizeof(char *));
        int r = -EHOSTUNREACH;

        if (!errs)
                return -ENOMEM;
        for (size_t k = 0; k < n; k++) {
                int q = coordctl_http_once(g, start + k, method, path, body, headers, ret_status, ret_body,
                                           &errs[tried]);
                if (q == 0 || q == -ENOMEM) {
                        r = q;
                        break;
                }
                tried++;
                /* A request that may have arrived is only sent again where that is harmless. */
                if (q == -EIO && !repeatable)
                        break;
        }
        /* Failing over is quiet; only when none answered, say what each said. */
        for (size_t k = 0; k < tried; k++) {
                if (r == -EHOSTUNREACH)
                        fprintf(stderr, "coordctl: cannot reach coordinatord at %s\n", errs[k] ? errs[k] : "?");
                free(errs[k]);
        }
        free(errs);
        return r;
}

/* Map an error response to a message on stderr and an exit code. */
int coordctl_http_failure(const char *what, long status, const char *body) {
        _cleanup_json_ json_t *j = json_loads(body, 0, NULL);
        const char *msg = j ? json_string_value(json_object_get(json_object_get(j, "error"), "message")) : NULL;
        _cleanup_free_ char *clean = msg ? deploy_clean_text(msg) : NULL;

        fprintf(stderr, "coordctl %s: coordinatord answered %ld: %s\n", what, status, clean ? clean : "(no message)");
        switch (status) {
        case 401:
        case 403:
        case 503:
                return EXIT_UNAVAILABLE;
        case 400:
        case 413:
        case 415:
        case 422:
                return EXIT_USAGE;
        default:
                return EXIT_FAILED;
        }
}

static void print_json(const char *body) {
        _cleanup_json_ json_t *j = json_loads(body, 0, NULL);
        _cleanup_free_ char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;

        printf("%s\n", s ? s : body);
}

/* Sends the request of coordctl WHAT and handles what every command does alike: no answer, an error
 * answer, or --output json (the answer printed as it is). Returns the exit code; *ret_body is set only
 * on a 200 answer that is for the caller to render (and the code is then EXIT_OK). */
static int api_request(const struct coordctl_globals *g, const char *what, const char *method, const char *path,
                       const char *req, const char *const *headers, char **ret_body) {
        _cleanup_free_ char *body = NULL;
        long status;

        *ret_body = NULL;
        if (coordctl_http(g, method, path, req, headers, &status, &body) < 0)
                return EXIT_UNAVAILABLE;
        if (status != 200)
                return coordctl_http_failure(what, status, body);
        if (g->output == OUTPUT_JSON) {
                print_json(body);
                return EXIT_OK;
        }
        *ret_body = TAKE_PTR(body);
        return EXIT_OK;
}

static const char *str_or(json_t *o, const char *k, const char *def) {
        const char *v = json_string_value(json_object_get(o, k));
        return v && *v ? v : def;
}

static void instances_help(void) {
        printf("Usage: coordctl instances [--service S] [--state STATE]\n"
               "\n"
               "The fleet as coordinatord sees it: one line per instance with its state\n"
               "(starting healthy unhealthy draining stopped lost), version and the config\n"
               "version it applied.  --output json prints the API's JSON.\n");
}

int coordctl_instances_main(int argc, char **argv, const struct coordctl_globals *g) {
        static const struct option opts[] = {
                { "service", required_argument, NULL, 's' },
                { "state", required_argument, NULL, 't' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        const char *service = NULL, *state = NULL;
        _cleanup_free_ char *path = NULL, *body = NULL;
        int c, r;

        optind = 1;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0)
                switch (c) {
                case 's': service = optarg; break;
                case 't': state = optarg; break;
                case 'h': instances_help(); return EXIT_OK;
                default: return EXIT_USAGE;
                }
        if (optind < argc) {
                fprintf(stderr, "coordctl instances: unexpected argument '%s'\n", argv[optind]);
                return EXIT_USAGE;
        }
        if (service && !name_is_valid(service)) {
                fprintf(stderr, "coordctl instances: --service: '%s' is not a valid name\n", service);
                return EXIT_USAGE;
        }
        if (state && !name_is_valid(state)) {
                fprintf(stderr, "coordctl instances: --state: '%s' is not a valid state\n", state);
                return EXIT_USAGE;
        }
        path = strdup_printf("/v1/instances%s%s%s%s%s%s", service || state ? "?" : "",
                             service ? "service=" : "", service ? service : "", service && state ? "&" : "",
                             state ? "state=" : "", state ? state : "");
        if (!path)
                return EXIT_FAILED;
        r = api_request(g, "instances", "GET", path, NULL, NULL, &body);
        if (!body)
                return r;
        _cleanup_json_ json_t *j = json_loads(body, 0, NULL);
        json_t *arr = json_object_get(j, "instances");
        if (!json_is_array(arr)) {
                fprintf(stderr, "coordctl instances: unexpected answer from coordinatord\n");
                return EXIT_FAILED;
        }
        printf("%-24s %-14s %-16s %-22s %-10s %-10s %-7s %s\n", "ID", "SERVICE", "HOST", "ADDRESS", "VERSION",
               "STATE", "CONFIG", "LAST SEEN");
        size_t i;
        json_t *o;
        json_array_foreach(arr, i, o) {
                printf("%-24s %-14s %-16s %-22s %-10s %-10s %-7lld %s\n", str_or(o, "id", "-"),
                       str_or(o, "service", "-"), str_or(o, "host", "-"), str_or(o, "address", "-"),
                       str_or(o, "version", "-"), str_or(o, "state", "-"),
                       (long long) json_integer_value(json_object_get(o, "config_version")),
                       str_or(o, "last_seen", "-"));
        }
        if (json_array_size(arr) == 0)
                printf("(no instances registered)\n");
        return EXIT_OK;
}

static void config_help(void) {
        printf("Usage: coordctl config get SERVICE [--reveal]\n"
               "       coordctl config set SERVICE FILE|- [--if-match VERSION]\n"
               "\n"
               "get   shows the advertised config of SERVICE, secrets masked as *****\n"
               "      (--reveal shows them and needs an admin token), its version, and how\n"
               "      many instances applied it\n"
               "set   stores the JSON object in FILE (or stdin) as SERVICE's next config\n"
               "      version; agents write it to each instance's config file and reload.\n"
               "      --if-match VERSION refuses (exit 1) when the current version differs.\n");
}

/* Sentinel of config_args(): the arguments are fine, go on. */
#define ARGS_OK (-1)

/* The arguments of coordctl WHAT (config get or set): --help, one option named OPT (*ret_opt is set to
 * its argument, or to "" where it takes none), then nargs arguments (EXPECTED names them), the first a
 * service name. Returns ARGS_OK, or the exit code. */
static int config_args(int argc, char **argv, const char *what, const char *opt, int has_arg, const char **ret_opt,
                       int nargs, const char *expected) {
        const struct option opts[] = {
                { opt, has_arg, NULL, 'o' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        int c;

        optind = 1;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0)
                switch (c) {
                case 'o': *ret_opt = optarg ? optarg : ""; break;
                case 'h': config_help(); return EXIT_OK;
                default: return EXIT_USAGE;
                }
        if (argc - optind != nargs) {
                fprintf(stderr, "coordctl %s: expected %s\n", what, expected);
                return EXIT_USAGE;
        }
        if (!name_is_valid(argv[optind])) {
                fprintf(stderr, "coordctl %s: '%s' is not a valid service name\n", what, argv[optind]);
                return EXIT_USAGE;
        }
        return ARGS_OK;
}

static int config_get(int argc, char **argv, const struct coordctl_globals *g) {
        const char *reveal = NULL;
        _cleanup_free_ char *path = NULL, *body = NULL;
        int r;

        r = config_args(argc, argv, "config get", "reveal", no_argument, &reveal, 1, "SERVICE");
        if (r != ARGS_OK)
                return r;
        const char *service = argv[optind];
        path = strdup_printf("/v1/config/%s%s", service, reveal ? "?reveal=true" : "");
        if (!path)
                return EXIT_FAILED;
        r = api_request(g, "config get", "GET", path, NULL, NULL, &body);
        if (!body)
                return r;
        _cleanup_json_ json_t *j = json_loads(body, 0, NULL);
        if (!j) {
                fprintf(stderr, "coordctl config get: unexpected answer from coordinatord\n");
                return EXIT_FAILED;
        }
        printf("service %s, version %lld, applied by %lld of %lld instances\n", service,
               (long long) json_integer_value(json_object_get(j, "version")),
               (long long) json_integer_value(json_object_get(j, "applied")),
               (long long) json_integer_value(json_object_get(j, "instances")));
        _cleanup_free_ char *cfg = json_dumps(json_object_get(j, "config"), JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("%s\n", cfg ? cfg : "{}");
        return EXIT_OK;
}

static int read_input(const char *file, char **ret) {
        _cleanup_close_ int fd = -1;
        size_t n;

        if (strcmp(file, "-") != 0) {
                fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (fd < 0)
                        return -errno;
        }
        return fileio_read_fd(fd >= 0 ? fd : STDIN_FILENO, CONFIG_FILE_MAX, 0, ret, &n);
}

static int config_set(int argc, char **argv, const struct coordctl_globals *g) {
        const char *if_match = NULL;
        _cleanup_free_ char *input = NULL, *req = NULL, *body = NULL, *path = NULL, *hdr = NULL;
        json_error_t jerr;
        int r;

        r = config_args(argc, argv, "config set", "if-match", required_argument, &if_match, 2, "SERVICE FILE|-");
        if (r != ARGS_OK)
                return r;
        const char *service = argv[optind], *file = argv[optind + 1];
        uint64_t v;
        if (if_match && parse_uint64(if_match, &v) < 0) {
                fprintf(stderr, "coordctl config set: --if-match: '%s' is not a version number\n", if_match);
                return EXIT_USAGE;
        }
        r = read_input(file, &input);
        if (r == -EFBIG) {
                fprintf(stderr, "coordctl config set: %s: larger than %d bytes\n", file, CONFIG_FILE_MAX);
                return EXIT_USAGE;
        }
        if (r < 0) {
                fprintf(stderr, "coordctl config set: %s: %s\n", file, strerror(-r));
                return EXIT_USAGE;
        }
        _cleanup_json_ json_t *cfg = json_loads(input, JSON_REJECT_DUPLICATES, &jerr);
        if (!cfg) {
                fprintf(stderr, "coordctl config set: %s: line %d column %d: %s\n", file, jerr.line, jerr.column,
                        jerr.text);
                return EXIT_USAGE;
        }
        if (!json_is_object(cfg)) {
                fprintf(stderr, "coordctl config set: %s: expected a JSON object\n", file);
                return EXIT_USAGE;
        }
        _cleanup_json_ json_t *wrap = json_pack("{s:O}", "config", cfg);
        req = wrap ? json_dumps(wrap, JSON_COMPACT) : NULL;
        path = strdup_printf("/v1/config/%s", service);
        if (if_match)
                hdr = strdup_printf("If-Match: \"%s\"", if_match);
        if (!req || !path || (if_match && !hdr))
                return EXIT_FAILED;
        const char *headers[] = { hdr, NULL };
        r = api_request(g, "config set", "PUT", path, req, hdr ? headers : NULL, &body);
        if (!body)
                return r;
        _cleanup_json_ json_t *j = json_loads(body, 0, NULL);
        printf("%s: config version %lld stored\n", service,
               (long long) json_integer_value(json_object_get(j, "version")));
        return EXIT_OK;
}

int coordctl_config_main(int argc, char **argv, const struct coordctl_globals *g) {
        if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
                config_help();
                return argc < 2 ? EXIT_USAGE : EXIT_OK;
        }
        if (strcmp(argv[1], "get") == 0)
                return config_get(argc - 1, argv + 1, g);
        if (strcmp(argv[1], "set") == 0)
                return config_set(argc - 1, argv + 1, g);
        fprintf(stderr, "coordctl config: unknown subcommand '%s' (get, set)\n", argv[1]);
        return EXIT_USAGE;
}
