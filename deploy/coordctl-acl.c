/* coordctl acl agent|coordinatord|client: print a least-privilege Redis ACL
 * user for one role (docs/security.md, "ACL users").
 *
 * Every key and channel pattern comes from lib/keys.h's functions, called
 * with "*" where a name varies, so the rules follow the layout.  Names pass
 * name_is_valid() first: no Redis glob character ("*", "?", "[", "]", "\")
 * ever comes from input, and "{" and "}" are plain characters to Redis.
 * The command lists are what the programs send, Lua scripts included (Redis
 * checks every redis.call() against the user); tests/e2e/acl-least-privilege.sh
 * runs the programs under these users and checks that ACL LOG stays empty. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "coordctl.h"
#include "exitcode.h"
#include "jsonutil.h"
#include "keys.h"
#include "macro.h"
#include "strutil.h"
#include "strv.h"

#define ACL_NAMES_MAX 256
#define ACL_PASSWORD_MAX 4096
/* Redis refuses it (a hash is 64 lower-case hex digits): a line printed
 * without --password-stdin cannot create a user with a known password. */
#define ACL_PASSWORD_PLACEHOLDER "#PASSWORD-SHA256-HEX"

struct acl_names {
        const char *v[ACL_NAMES_MAX];
        size_t n;
};

struct acl_args {
        const char *ns, *host, *user;
        struct acl_names instances, services, locks;
        bool password_stdin, acl_file;
};

/* The rules after "reset on PASSWORD", in order. */
struct acl_rules {
        char **v;
        size_t n;
        int err;
};

static void rules_done(struct acl_rules *r) {
        r->v = strv_free_n(r->v, r->n);
        r->n = 0;
}

/* Append prefix + s; takes ownership of s (NULL: out of memory). */
static void rules_add(struct acl_rules *r, const char *prefix, char *s) {
        _cleanup_free_ char *pattern = s;

        if (r->err)
                return;
        r->err = strv_push(&r->v, r->n, pattern ? strdup_printf("%s%s", prefix, pattern) : NULL);
        if (r->err == 0)
                r->n++;
}

static void rules_commands(struct acl_rules *r, const char *const *commands) {
        for (size_t i = 0; commands[i]; i++)
                rules_add(r, "+", strdup(commands[i]));
}

/* Connection set-up of lib/redis.c and lib/redis_client.c (ROLE: with Sentinel). */
#define ACL_CONNECTION_COMMANDS "auth", "ping", "select", "role"

/* agent/registry.c (MULTI HSET SET|DEL ZADD PUBLISH EXEC), agent/commands.c (LMOVE
 * LRANGE LREM HGET HSET, command_result_script: HEXISTS HSET PEXPIRE PUBLISH LREM),
 * agent/advertise.c (HMGET), the subscriptions and the keepalive probe. */
static const char *const agent_commands[] = {
        ACL_CONNECTION_COMMANDS, "multi", "exec", "hset", "hget", "hmget", "hexists", "set", "del", "pexpire",
        "zadd", "lmove", "lrange", "lrem", "eval", "publish", "subscribe", "unsubscribe", NULL,
};

/* coordinatord: leader.c (lock scripts), fleet.c, reconciler.c, sse.c, configadv.c,
 * the API's writers (api-*.c, lib/command.c) and every Lua script they run. */
static const char *const coordinatord_commands[] = {
        ACL_CONNECTION_COMMANDS, "eval", "time", "get", "set", "mget", "del", "exists", "incr", "pexpire", "pttl",
        "hget", "hmget", "hgetall", "hset", "hdel", "lpush", "sadd", "srem", "sismember", "smembers", "zadd",
        "zcard", "zrange", "zrevrange", "zrem", "zremrangebyscore", "xadd", "xrange", "publish", "subscribe",
        "unsubscribe", NULL,
};

/* lib/lock.c as coordctl lock and coordctl migrate use it (EVALSHA, EVAL on
 * NOSCRIPT) and its scripts. */
static const char *const client_commands[] = {
        ACL_CONNECTION_COMMANDS, "evalsha", "eval", "time", "get", "set", "del", "exists", "incr", "pexpire", "pttl",
        "zadd", "zrange", "zrem", "zremrangebyscore", "publish", "subscribe", "unsubscribe", NULL,
};

/* One host's agent: its instances' hashes and alive keys, the shared
 * instances ZSET, its own queue, in-flight list and results; read-only its
 * services' advertised config. */
static void agent_rules(const struct acl_args *a, struct acl_rules *r) {
        const char *ns = a->ns;

        for (size_t i = 0; i < a->instances.n; i++) {
                rules_add(r, "%RW~", key_instance(ns, a->instances.v[i]));
                rules_add(r, "%RW~", key_alive(ns, a->instances.v[i]));
        }
        rules_add(r, "%RW~", key_instances(ns));
        rules_add(r, "%RW~", key_agent_commands(ns, a->host));
        rules_add(r, "%RW~", key_agent_inflight(ns, a->host));
        rules_add(r, "%RW~", key_agent_result(ns, a->host, "*"));
        for (size_t i = 0; i < a->services.n; i++)
                rules_add(r, "%R~", key_config(ns, a->services.v[i]));
        if (a->services.n == 0)
                rules_add(r, "%R~", key_config(ns, "*"));
        rules_add(r, "&", key_agent_wake(ns, a->host));
        rules_add(r, "&", key_config_changed(ns));
        rules_add(r, "&", key_events(ns));
        rules_add(r, "&", key_command_results(ns));
        rules_add(r, "&", key_keepalive("*"));
        rules_commands(r, agent_commands);
}

/* coordinatord: everything of its namespace but the locks, and the leader lock. */
static void coordinatord_rules(const struct acl_args *a, struct acl_rules *r) {
        rules_add(r, "~", key_namespace_pattern(a->ns));
        rules_add(r, "~", key_lock(a->ns, LOCK_NAME_LEADER));
        rules_add(r, "~", key_lock_fence(a->ns, LOCK_NAME_LEADER));
        rules_add(r, "~", key_lock_holder(a->ns, LOCK_NAME_LEADER));
        rules_add(r, "&", key_namespace_pattern(a->ns));
        rules_add(r, "&", key_lock_channel(a->ns, LOCK_NAME_LEADER));
        rules_add(r, "&", key_keepalive("*"));
        rules_commands(r, coordinatord_commands);
}

/* coordctl lock and coordctl migrate: the named locks (default: all). */
static void client_rules(const struct acl_args *a, struct acl_rules *r) {
        static const char *const all[] = { "*" };
        const char *const *names = a->locks.n ? a->locks.v : all;
        size_t n = a->locks.n ? a->locks.n : 1;

        for (size_t i = 0; i < n; i++) {
                rules_add(r, "~", key_lock(a->ns, names[i]));
                rules_add(r, "~", key_lock_fence(a->ns, names[i]));
                rules_add(r, "~", key_lock_holder(a->ns, names[i]));
                rules_add(r, "~", key_lock_waiters(a->ns, names[i]));
                rules_add(r, "&", key_lock_channel(a->ns, names[i]));
                rules_add(r, "&", key_lock_wake(a->ns, names[i], "*"));
        }
        rules_commands(r, client_commands);
}

static const struct acl_role {
        const char *name;
        void (*rules)(const struct acl_args *a, struct acl_rules *r);
        bool per_host;  /* --host, --instance, --service; the user is coord-NS-agent-HOST */
        bool locks;     /* --lock */
} roles[] = {
        { .name = "agent", .rules = agent_rules, .per_host = true },
        { .name = "coordinatord", .rules = coordinatord_rules },
        { .name = "client", .rules = client_rules, .locks = true },
};

static void help(void) {
        printf("Usage: coordctl acl agent --host HOST --instance ID [--instance ID]... [--service NAME]...\n"
               "       coordctl acl coordinatord\n"
               "       coordctl acl client [--lock NAME|PREFIX*]...\n"
               "           [--namespace NS] [--user NAME] [--password-stdin] [--acl-file]\n"
               "\n"
               "Print the least-privilege Redis ACL user of one role (Redis 7.0 or newer):\n"
               "  agent         one host's coord-agent: writes only its instances' keys, its own\n"
               "                command queue and results; reads its services' advertised config\n"
               "                (all services without --service)\n"
               "  coordinatord  the namespace's keys and channels and the leader lock\n"
               "  client        coordctl lock and coordctl migrate (hooks, pipelines): the locks\n"
               "                named by --lock (a trailing * matches a prefix: --lock 'migrate-*'\n"
               "                for coordctl migrate), all of the namespace's locks without it\n"
               "\n"
               "  --namespace NS     the fleet's namespace (default: $COORD_NAMESPACE, else \"default\")\n"
               "  --user NAME        the user (default coord-NS-agent-HOST, coord-NS-coordinatord,\n"
               "                     coord-NS-client)\n"
               "  --password-stdin   read the password from the first line of stdin and print its\n"
               "                     SHA-256 (#HEX); without it the line carries the placeholder\n"
               "                     " ACL_PASSWORD_PLACEHOLDER ", which Redis refuses until replaced\n"
               "  --acl-file         print a users.acl line (user NAME ...) instead of ACL SETUSER\n"
               "  -h, --help         show this help\n"
               "\n"
               "--output json prints {\"user\":NAME,\"rules\":[...]}.  Exit status: 0, 2 bad usage.\n");
}

static int add_name(struct acl_names *l, const char *flag, const char *v, bool prefix_ok) {
        size_t n = strlen(v);
        _cleanup_free_ char *stem = prefix_ok && n > 0 && v[n - 1] == '*' ? strndup(v, n - 1) : NULL;

        if (!(name_is_valid(v) || (stem && (!*stem || name_is_valid(stem))))) {
                fprintf(stderr, "coordctl acl: %s: '%s' is not a valid name (1-64 of [A-Za-z0-9._-]%s)\n", flag, v,
                        prefix_ok ? ", or such a prefix followed by *" : "");
                return -EINVAL;
        }
        if (l->n >= ACL_NAMES_MAX) {
                fprintf(stderr, "coordctl acl: %s: more than %d given\n", flag, ACL_NAMES_MAX);
                return -E2BIG;
        }
        l->v[l->n++] = v;
        return 0;
}

/* 0, 1 after --help, or -EINVAL (message printed). */
static int parse_flags(int argc, char **argv, struct acl_args *a) {
        static const struct option opts[] = {
                { "namespace", required_argument, NULL, 'n' },
                { "host", required_argument, NULL, 'H' },
                { "instance", required_argument, NULL, 'i' },
                { "service", required_argument, NULL, 's' },
                { "lock", required_argument, NULL, 'l' },
                { "user", required_argument, NULL, 'u' },
                { "password-stdin", no_argument, NULL, 'p' },
                { "acl-file", no_argument, NULL, 'f' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        int c, r = 0;

        optind = 1;
        while (r >= 0 && (c = getopt_long(argc, argv, "h", opts, NULL)) >= 0)
                switch (c) {
                case 'n': a->ns = optarg; break;
                case 'H': a->host = optarg; break;
                case 'i': r = add_name(&a->instances, "--instance", optarg, false); break;
                case 's': r = add_name(&a->services, "--service", optarg, false); break;
                case 'l': r = add_name(&a->locks, "--lock", optarg, true); break;
                case 'u': a->user = optarg; break;
                case 'p': a->password_stdin = true; break;
                case 'f': a->acl_file = true; break;
                case 'h': help(); return 1;
                default: return -EINVAL;
                }
        return r < 0 ? -EINVAL : 0;
}

static int check_name(const char *flag, const char *v) {
        if (v && name_is_valid(v))
                return 0;
        if (v)
                fprintf(stderr, "coordctl acl: %s: '%s' is not a valid name (1-64 of [A-Za-z0-9._-])\n", flag, v);
        else
                fprintf(stderr, "coordctl acl: %s is required\n", flag);
        return -EINVAL;
}

/* The flags that fit the role, and the names they need. */
static int check_args(const struct acl_role *role, const struct acl_args *a) {
        if (check_name("--namespace", a->ns) < 0 || (a->user && check_name("--user", a->user) < 0))
                return -EINVAL;
        if (role->per_host && (check_name("--host", a->host) < 0 || a->instances.n == 0)) {
                if (a->host && a->instances.n == 0)
                        fprintf(stderr, "coordctl acl agent: --instance is required (each instance of the host)\n");
                return -EINVAL;
        }
        if (!role->per_host && (a->host || a->instances.n || a->services.n)) {
                fprintf(stderr, "coordctl acl %s: --host, --instance and --service are for agent\n", role->name);
                return -EINVAL;
        }
        if (!role->locks && a->locks.n) {
                fprintf(stderr, "coordctl acl %s: --lock is for client\n", role->name);
                return -EINVAL;
        }
        return 0;
}

/* "#" + the SHA-256 of stdin's first line (Redis' hashed-password rule). */
static int read_password(char **ret) {
        _cleanup_free_ char *line = NULL;
        size_t cap = 0;
        ssize_t n = getline(&line, &cap, stdin);
        char hex[65];

        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
                line[--n] = '\0';
        if (n <= 0 || n > ACL_PASSWORD_MAX) {
                fprintf(stderr, "coordctl acl: --password-stdin: %s\n",
                        n > ACL_PASSWORD_MAX ? "password too long" : "no password on stdin");
                return -EINVAL;
        }
        sha256_hex(line, (size_t) n, hex);
        explicit_bzero(line, (size_t) n);
        *ret = strdup_printf("#%s", hex);
        return *ret ? 0 : -ENOMEM;
}

static int print_rules(const struct coordctl_globals *g, const struct acl_args *a, const char *user,
                       const char *password, const struct acl_rules *r) {
        if (g->output == OUTPUT_JSON) {
                _cleanup_json_ json_t *j = json_pack("{s:s,s:[s,s,s]}", "user", user, "rules", "reset", "on", password);
                json_t *rules = json_object_get(j, "rules");

                for (size_t i = 0; rules && i < r->n; i++)
                        json_array_append_new(rules, json_string(r->v[i]));
                if (!j || json_dumpf(j, stdout, JSON_COMPACT) < 0)
                        return -ENOMEM;
                putchar('\n');
                return 0;
        }
        printf("%s %s reset on %s", a->acl_file ? "user" : "ACL SETUSER", user, password);
        for (size_t i = 0; i < r->n; i++)
                printf(" %s", r->v[i]);
        putchar('\n');
        return 0;
}

static int run_role(const struct acl_role *role, const struct acl_args *a, const struct coordctl_globals *g) {
        _cleanup_free_ char *password = NULL, *user = NULL;
        struct acl_rules rules = {};
        int r;

        if (a->password_stdin) {
                r = read_password(&password);
                if (r < 0)
                        return r == -ENOMEM ? EXIT_FAILED : EXIT_USAGE;
        } else
                fprintf(stderr, "coordctl acl: no --password-stdin: replace %s with >PASSWORD or #SHA256-HEX\n",
                        ACL_PASSWORD_PLACEHOLDER);
        if (a->user)
                user = strdup(a->user);
        else if (role->per_host)
                user = strdup_printf("coord-%s-agent-%s", a->ns, a->host);
        else
                user = strdup_printf("coord-%s-%s", a->ns, role->name);
        if (!user)
                return EXIT_FAILED;
        if (role->locks && a->locks.n == 0)
                fprintf(stderr, "coordctl acl client: no --lock: the user may take every lock of namespace %s, "
                                "the coordinatords' \"%s\" lock included\n",
                        a->ns, LOCK_NAME_LEADER);
        role->rules(a, &rules);
        r = rules.err ? rules.err : print_rules(g, a, user, password ? password : ACL_PASSWORD_PLACEHOLDER, &rules);
        rules_done(&rules);
        return r < 0 ? EXIT_FAILED : EXIT_OK;
}

int coordctl_acl_main(int argc, char **argv, const struct coordctl_globals *g) {
        struct acl_args a = { .ns = namespace_default() };
        const struct acl_role *role = NULL;
        int r;

        r = parse_flags(argc, argv, &a);
        if (r != 0)
                return r > 0 ? EXIT_OK : EXIT_USAGE;
        if (optind >= argc) {
                fprintf(stderr, "coordctl acl: which role? agent, coordinatord or client (see --help)\n");
                return EXIT_USAGE;
        }
        for (size_t i = 0; i < ELEMENTSOF(roles); i++)
                if (strcmp(argv[optind], roles[i].name) == 0)
                        role = &roles[i];
        if (!role || optind + 1 < argc) {
                fprintf(stderr, "coordctl acl: %s '%s' (roles: agent, coordinatord, client)\n",
                        role ? "unexpected argument" : "unknown role", argv[role ? optind + 1 : optind]);
                return EXIT_USAGE;
        }
        if (check_args(role, &a) < 0)
                return EXIT_USAGE;
        return run_role(role, &a, g);
}
