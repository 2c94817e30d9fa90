/* coordctl migrate: the migration and seeding sequencer (engine in migrations/). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coordctl.h"
#include "duration.h"
#include "exitcode.h"
#include "jsonutil.h"
#include "keys.h"
#include "log.h"
#include "migrations/flyway.h"
#include "migrations/migrate.h"
#include "parse-util.h"
#include "redis_url.h"
#include "strutil.h"
#include "tls.h"

extern char **environ;

static void help(void) {
        printf("Usage: coordctl migrate [SUBCOMMAND] --dir DIR [--database PGURL] [--redis REDIS] [FLAGS]\n"
               "\n"
               "Subcommands:\n"
               "  apply             apply pending migrations, repeatables and seeds (default)\n"
               "  status            every migration: applied, pending, changed, missing, ...\n"
               "  plan              what apply would run, in order; runs nothing\n"
               "  validate          exit 4 when an applied file changed or vanished\n"
               "  baseline VERSION  mark an existing schema as migrated up to VERSION\n"
               "  repair            remove failed no-transaction records, realign checksums,\n"
               "                    mark vanished files deleted\n"
               "\n"
               "Flags:\n"
               "  --dir DIR           the migrations directory (V*__*.sql, R__*.sql, S__*.sql)\n"
               "  --database PGURL    PostgreSQL connection string (default $DATABASE_URL)\n"
               "  --redis REDIS       Redis for the fenced lock (default $COORD_REDIS); without it,\n"
               "                      a pg_try_advisory_lock fallback (not behind PgBouncer pooling)\n"
               "  --wait-timeout D    how long to wait for another runner (default 10m; exit 5)\n"
               "  --lease D           lock lease, renewed while running (default 15s)\n"
               "  --no-seed           skip S__ seed scripts\n"
               "  --phase PHASE       pre: all but '-- coord:post-deploy' versions (before the\n"
               "                      rollout); post: only those (after it); all: everything in\n"
               "                      version order (default)\n"
               "  --placeholder KEY=VALUE\n"
               "                      replace ${KEY} in the files (repeatable; also from\n"
               "                      $COORD_PLACEHOLDER_KEY and Flyway's $FLYWAY_PLACEHOLDERS_KEY)\n"
               "\n"
               "A schema managed by Flyway (flyway_schema_history, no coord history yet) is\n"
               "taken over by the first apply: nothing Flyway applied runs again.\n"
               "\n"
               "Exit codes: 0 ok or up to date, 1 a migration failed, 2 bad usage or file name,\n"
               "3 PostgreSQL/Redis unreachable, 4 validation failed, 5 lock wait timed out.\n");
}

/* plan: what runs, in order, with each file's phase; then what this phase holds back. */
static void print_plan(const struct migrate_report *r, enum migrate_phase phase, size_t wt, size_t wv) {
        size_t k = 0, held = 0, wn = 6;

        for (size_t i = 0; i < r->n; i++)
                if (r->v[i].will_run)
                        wn = MAX(wn, strlen(r->v[i].script));
        for (size_t i = 0; i < r->n; i++) {
                const struct migrate_entry *e = &r->v[i];
                bool note = e->state == STATE_PARTIAL || e->state == STATE_CHANGED || e->deferred;
                char nt[256] = "";
                held += e->held;
                if (!e->will_run)
                        continue;
                if (e->no_transaction)
                        snprintf(nt, sizeof(nt), "%sno transaction (%s)", note ? "; " : "", e->no_transaction);
                printf("%3zu. %-*s %-*s %-*s %-*s%s%s%s\n", ++k, (int) wt, e->type, (int) wv, e->version ?: "",
                       (int) wn, e->script, note || nt[0] ? 4 : 0, e->phase ?: "-", note || nt[0] ? "  # " : "",
                       note ? (e->detail ?: "") : "", nt);
        }
        if (k == 0)
                printf("Nothing to apply%s%s: the schema is up to date.\n", phase == MIGRATE_PHASE_ALL ? "" : " in phase ",
                       phase == MIGRATE_PHASE_ALL ? "" : migrate_phase_to_string(phase));
        else
                printf("%zu to apply.\n", k);
        if (r->history && r->history->adopting)
                printf("First, %zu row%s of " FLYWAY_TABLE " will be taken over into coord_schema_history "
                       "(what Flyway applied never runs again).\n",
                       r->history->n, r->history->n == 1 ? "" : "s");
        if (held > 0) {
                printf("Not in phase %s:\n", migrate_phase_to_string(phase));
                for (size_t i = 0; i < r->n; i++)
                        if (r->v[i].held)
                                printf("     %-*s %-*s %-*s %s\n", (int) wt, r->v[i].type, (int) wv,
                                       r->v[i].version ?: "", (int) wn, r->v[i].script, r->v[i].phase ?: "-");
        }
}

static void print_text_table(const struct migrate_report *r, bool plan, enum migrate_phase phase) {
        size_t wv = 7, wd = 11, ws = 5, wt = 4, adopted = 0;
        size_t counts[_STATE_MAX] = {};

        for (size_t i = 0; i < r->n; i++) {
                const struct migrate_entry *e = &r->v[i];
                if (plan && !e->will_run && !e->held)
                        continue;
                wv = MAX(wv, e->version ? strlen(e->version) : 0);
                wd = MIN(MAX(wd, strlen(e->description)), (size_t) 40);
                ws = MAX(ws, strlen(migrate_state_to_string(e->state)));
                wt = MAX(wt, strlen(e->type));
        }
        if (plan) {
                print_plan(r, phase, wt, wv);
                return;
        }
        printf("%-*s  %-*s  %-5s  %-*s  %-*s  %-24s  %s\n", (int) wt, "TYPE", (int) wv, "VERSION", "PHASE", (int) wd,
               "DESCRIPTION", (int) ws, "STATE", "INSTALLED AT", "BY");
        for (size_t i = 0; i < r->n; i++) {
                const struct migrate_entry *e = &r->v[i];
                counts[e->state]++;
                printf("%-*s  %-*s  %-5s  %-*.*s  %-*s  %-24s  %s%s%s\n", (int) wt, e->type, (int) wv,
                       e->version ?: "", e->phase ?: "-", (int) wd, (int) wd, e->description, (int) ws,
                       migrate_state_to_string(e->state), e->installed_at ?: "-", e->installed_by ?: "-",
                       e->detail ? "  # " : "", e->detail ?: "");
        }
        printf("%zu migration%s:", r->n, r->n == 1 ? "" : "s");
        for (int s = 0; s < _STATE_MAX; s++)
                if (counts[s])
                        printf(" %zu %s", counts[s], migrate_state_to_string((enum migrate_state) s));
        for (size_t i = 0; i < r->n; i++)
                adopted += r->v[i].adopted;
        if (adopted > 0)
                printf(" (%zu %s " FLYWAY_TABLE ")", adopted,
                       r->history && r->history->adopting ? "to take over from" : "adopted from");
        printf("\n");
}

static json_t *entry_json(const struct migrate_entry *e) {
        json_t *o = json_object();
        if (!o)
                return NULL;
        json_object_set_new(o, "type", json_string(e->type));
        json_object_set_new(o, "version", e->version ? json_string(e->version) : json_null());
        json_object_set_new(o, "description", json_string(e->description));
        json_object_set_new(o, "script", json_string(e->script));
        json_object_set_new(o, "phase", e->phase ? json_string(e->phase) : json_null());
        json_object_set_new(o, "state", json_string(migrate_state_to_string(e->state)));
        json_object_set_new(o, "checksum", e->checksum ? json_string(e->checksum) : json_null());
        json_object_set_new(o, "applied_checksum", e->applied_checksum ? json_string(e->applied_checksum) : json_null());
        json_object_set_new(o, "installed_at", e->installed_at ? json_string(e->installed_at) : json_null());
        json_object_set_new(o, "installed_by", e->installed_by ? json_string(e->installed_by) : json_null());
        json_object_set_new(o, "execution_ms", e->installed_at ? json_integer(e->execution_ms) : json_null());
        json_object_set_new(o, "fencing_token", e->installed_at ? json_integer(e->fencing_token) : json_null());
        json_object_set_new(o, "will_run", json_boolean(e->will_run));
        json_object_set_new(o, "problem", json_boolean(e->problem));
        json_object_set_new(o, "deferred", json_boolean(e->deferred));
        json_object_set_new(o, "held", json_boolean(e->held));
        json_object_set_new(o, "no_transaction", e->no_transaction ? json_string(e->no_transaction) : json_null());
        json_object_set_new(o, "adopted", json_boolean(e->adopted));
        json_object_set_new(o, "detail", e->detail ? json_string(e->detail) : json_null());
        if (e->ran)
                json_object_set_new(o, "run_ms", json_integer(e->run_ms));
        return o;
}

static void print_json(const struct migrate_options *o, const struct migrate_report *r, int exit_code) {
        _cleanup_json_ json_t *doc = json_object(), *arr = json_array();
        _cleanup_free_ char *msg = log_mask_secrets(r->message), *dump = NULL;

        if (!doc || !arr)
                return;
        for (size_t i = 0; i < r->n; i++) {
                if (o->command == MIGRATE_PLAN && !r->v[i].will_run)
                        continue;
                json_array_append_new(arr, entry_json(&r->v[i]));
        }
        json_object_set_new(doc, "command", json_string(migrate_command_to_string(o->command)));
        json_object_set_new(doc, "phase", json_string(migrate_phase_to_string(o->phase)));
        json_object_set_new(doc, "exit_code", json_integer(exit_code));
        json_object_set_new(doc, "ok", json_boolean(exit_code == 0));
        json_object_set_new(doc, "message", json_string(msg ?: ""));
        if (r->lock[0])
                json_object_set_new(doc, "lock", json_string(r->lock));
        if (r->fencing_token)
                json_object_set_new(doc, "fencing_token", json_integer(r->fencing_token));
        json_object_set_new(doc, o->command == MIGRATE_APPLY ? "applied" : "migrations", json_incref(arr));
        dump = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (dump)
                printf("%s\n", dump);
}

/* The outcome r of a run as text (the error itself is logged by the caller). */
static void print_text(const struct migrate_options *o, const struct migrate_report *rep, int r) {
        switch (o->command) {
        case MIGRATE_STATUS:
                print_text_table(rep, false, o->phase);
                break;
        case MIGRATE_PLAN:
                if (r == 0)
                        print_text_table(rep, true, o->phase);
                break;
        case MIGRATE_VALIDATE:
                for (size_t i = 0; i < rep->n; i++)
                        if (rep->v[i].problem)
                                printf("%s: %s: %s\n", rep->v[i].script, migrate_state_to_string(rep->v[i].state),
                                       rep->v[i].detail ?: "");
                break;
        case MIGRATE_APPLY:
                for (size_t i = 0; i < rep->n; i++)
                        if (rep->v[i].ran)
                                printf("applied %s (%" PRId64 " ms)\n", rep->v[i].script, rep->v[i].run_ms);
                break;
        case MIGRATE_REPAIR:
                for (size_t i = 0; i < rep->n; i++)
                        if (rep->v[i].detail &&
                            (rep->v[i].state == STATE_CHANGED || rep->v[i].state == STATE_MISSING ||
                             rep->v[i].state == STATE_PARTIAL || rep->v[i].state == STATE_FAILED))
                                printf("%s: %s\n", rep->v[i].script, rep->v[i].detail);
                break;
        case MIGRATE_BASELINE:
        case _MIGRATE_COMMAND_MAX:
                break;
        }
        if (r == 0 && rep->message[0] && o->command != MIGRATE_STATUS && o->command != MIGRATE_PLAN)
                printf("%s\n", rep->message);
}

/* The command of sub (NULL: apply) into o, which holds baseline's VERSION if any.  0, or
 * -EINVAL (message printed). */
static int parse_subcommand(const char *sub, struct migrate_options *o) {
        if (sub) {
                int k = migrate_command_from_string(sub);
                if (k < 0) {
                        fprintf(stderr,
                                "coordctl migrate: unknown subcommand '%s' (status, plan, apply, validate, "
                                "baseline VERSION, repair)\n",
                                sub);
                        return -EINVAL;
                }
                o->command = (enum migrate_command) k;
        }
        if (o->command == MIGRATE_BASELINE && !o->baseline_version) {
                fprintf(stderr, "coordctl migrate baseline: needs a VERSION\n");
                return -EINVAL;
        }
        return 0;
}

/* The database (--database, else $DATABASE_URL) and Redis (redis_s from --redis, else
 * $COORD_REDIS; none: the advisory-lock fallback, *ret_redis NULL) of o.  0, or -EINVAL
 * (message printed; *ret_redis untouched). */
static int resolve_targets(struct migrate_options *o, const char *redis_s, struct redis_url **ret_redis) {
        _cleanup_(redis_url_freep) struct redis_url *redis = NULL;
        char e[512];

        if (!o->database) {
                o->database = getenv("DATABASE_URL");
                if (!o->database || !*o->database) {
                        fprintf(stderr, "coordctl migrate: no database: pass --database PGURL or set DATABASE_URL\n");
                        return -EINVAL;
                }
        }
        if (!redis_s) {
                redis_s = getenv("COORD_REDIS");
                if (redis_s && !*redis_s)
                        redis_s = NULL;
        }
        if (redis_s) {
                if (redis_url_parse(redis_s, &redis, e, sizeof(e)) < 0) {
                        fprintf(stderr, "coordctl migrate: --redis: %s\n", e);
                        return -EINVAL;
                }
                if (redis->ssl && tls_setup_from_env(e, sizeof e) < 0) {
                        fprintf(stderr, "coordctl migrate: %s\n", e);
                        return -EINVAL;
                }
                if (redis->password)
                        log_add_secret(redis->password);
        }
        o->redis = redis;
        o->ns = namespace_default();
        *ret_redis = TAKE_PTR(redis);
        return 0;
}

/* ${KEY} values: Flyway's FLYWAY_PLACEHOLDERS_KEY, then COORD_PLACEHOLDER_KEY, then each
 * --placeholder KEY=VALUE (the last wins); none at all with Flyway's
 * FLYWAY_PLACEHOLDER_REPLACEMENT=false.  0, -EINVAL or -ENOMEM (message printed). */
static int placeholders_setup(struct flyway_placeholders *ph, const char *const *assignments, size_t n,
                              struct migrate_options *o) {
        const char *off = getenv("FLYWAY_PLACEHOLDER_REPLACEMENT"), *bad = NULL;
        bool replace = true;
        int r;

        if (!ph) {
                fprintf(stderr, "coordctl migrate: out of memory\n");
                return -ENOMEM;
        }
        if (off && *off && parse_bool(off, &replace) < 0) {
                fprintf(stderr, "coordctl migrate: FLYWAY_PLACEHOLDER_REPLACEMENT: '%s' is not true or false\n", off);
                return -EINVAL;
        }
        r = flyway_placeholders_set_env(ph, environ, &bad);
        if (r == -EINVAL) {
                fprintf(stderr, "coordctl migrate: environment %.*s: not a placeholder name (no '{', '}', control "
                        "characters, and no reserved 'flyway:' prefix)\n", (int) strcspn(bad, "="), bad);
                return r;
        }
        for (size_t i = 0; r == 0 && i < n; i++) {
                r = flyway_placeholders_set_assignment(ph, assignments[i]);
                if (r == -EINVAL) {
                        fprintf(stderr, "coordctl migrate: --placeholder '%s': expected KEY=VALUE with a KEY "
                                "without '{', '}' or control characters, not starting with 'flyway:'\n", assignments[i]);
                        return r;
                }
        }
        if (r < 0) {
                fprintf(stderr, "coordctl migrate: out of memory\n");
                return -ENOMEM;
        }
        o->placeholders = replace ? ph : NULL;
        if (!replace && n > 0)
                log_warning("--placeholder given, but FLYWAY_PLACEHOLDER_REPLACEMENT=false: files run as written");
        return 0;
}

/* The command line: the options, plus what is resolved after parsing. */
struct migrate_args {
        struct migrate_options o;
        const char *redis;  /* --redis, or NULL: $COORD_REDIS */
        const char *sub;    /* the subcommand as given; NULL: apply */
        const char **assignments; /* --placeholder KEY=VALUE, in order (they point into argv) */
        size_t n_assignments;
        bool help;
};

static void migrate_args_done(struct migrate_args *a) {
        a->assignments = mfree(a->assignments);
        a->n_assignments = 0;
}

enum {
        ARG_DIR = 0x100,
        ARG_DATABASE,
        ARG_REDIS,
        ARG_WAIT,
        ARG_LEASE,
        ARG_NO_SEED,
        ARG_PHASE,
        ARG_PLACEHOLDER,
};

static const struct option options[] = {
        { "dir", required_argument, NULL, ARG_DIR },
        { "database", required_argument, NULL, ARG_DATABASE },
        { "redis", required_argument, NULL, ARG_REDIS },
        { "wait-timeout", required_argument, NULL, ARG_WAIT },
        { "lease", required_argument, NULL, ARG_LEASE },
        { "no-seed", no_argument, NULL, ARG_NO_SEED },
        { "phase", required_argument, NULL, ARG_PHASE },
        { "placeholder", required_argument, NULL, ARG_PLACEHOLDER },
        { "help", no_argument, NULL, 'h' },
        {},
};

/* The long name of option c, from options[] (the one table of them). */
static const char *option_name(int c) {
        for (const struct option *p = options; p->name; p++)
                if (p->val == c)
                        return p->name;
        return "?";
}

/* --wait-timeout or --lease (c) with value v.  0, or -EINVAL (message printed). */
static int parse_duration_option(int c, const char *v, struct migrate_options *o) {
        uint64_t u;
        int r = duration_parse(v, &u);

        if (r < 0) {
                fprintf(stderr, "coordctl migrate: --%s: '%s' is %s (like 30s, 5m)\n", option_name(c), v,
                        r == -ERANGE ? "too large a duration" : "not a duration");
                return -EINVAL;
        }
        if (c == ARG_WAIT)
                o->wait_timeout_usec = u;
        else if (u < 500 * USEC_PER_MSEC) {
                fprintf(stderr, "coordctl migrate: --lease: at least 500ms\n");
                return -EINVAL;
        } else
                o->lease_usec = u;
        return 0;
}

/* A positional argument: the subcommand, then baseline's VERSION. */
static int parse_positional(struct migrate_args *a, const char *arg) {
        if (!a->sub)
                a->sub = arg;
        else if (!a->o.baseline_version && migrate_command_from_string(a->sub) == MIGRATE_BASELINE)
                a->o.baseline_version = arg;
        else {
                fprintf(stderr, "coordctl migrate: unexpected argument '%s'\n", arg);
                return -EINVAL;
        }
        return 0;
}

/* Option c (getopt_long()'s) with its optarg.  0, or -EINVAL/-ENOMEM (message printed). */
static int parse_option(int c, const char *arg, const char *opt, struct migrate_args *a) {
        switch (c) {
        case 'h':
                a->help = true;
                return 0;
        case ARG_DIR:
                a->o.dir = arg;
                return 0;
        case ARG_DATABASE:
                a->o.database = arg;
                return 0;
        case ARG_REDIS:
                a->redis = arg;
                return 0;
        case ARG_WAIT:
        case ARG_LEASE:
                return parse_duration_option(c, arg, &a->o);
        case ARG_NO_SEED:
                a->o.no_seed = true;
                return 0;
        case ARG_PHASE:
                if (migrate_phase_from_string(arg, &a->o.phase) < 0) {
                        fprintf(stderr, "coordctl migrate: --phase: '%s' is not a phase (pre, post or all)\n", arg);
                        return -EINVAL;
                }
                return 0;
        case ARG_PLACEHOLDER: {
                /* Applied after the environment's, which they override. */
                const char **na = reallocarray(a->assignments, a->n_assignments + 1, sizeof(*na));
                if (!na) {
                        fprintf(stderr, "coordctl migrate: out of memory\n");
                        return -ENOMEM;
                }
                a->assignments = na;
                a->assignments[a->n_assignments++] = arg;
                return 0;
        }
        default:
                fprintf(stderr, "coordctl migrate: unknown or incomplete option '%s' (see --help)\n", opt);
                return -EINVAL;
        }
}

/* argv into a (which holds the defaults).  0 (a->help: just print the help), or -EINVAL or
 * -ENOMEM (message printed). */
static int parse_args(int argc, char **argv, struct migrate_args *a) {
        int c, r = 0;

        optind = 0;
        opterr = 0;
        while (r == 0 && !a->help && ((c = getopt_long(argc, argv, "+h", options, NULL)) >= 0 || optind < argc))
                r = c < 0 ? parse_positional(a, argv[optind++]) : parse_option(c, optarg, argv[optind - 1], a);
        if (r < 0 || a->help)
                return r;
        r = parse_subcommand(a->sub, &a->o);
        if (r < 0)
                return r;
        if (!a->o.dir) {
                fprintf(stderr, "coordctl migrate: --dir DIR is required\n");
                return -EINVAL;
        }
        return 0;
}

/* The run's outcome, as text or JSON; the error itself is logged. */
static void print_outcome(const struct coordctl_globals *g, const struct migrate_options *o,
                          const struct migrate_report *rep, int r, int exit_code) {
        if (g->output == OUTPUT_JSON)
                print_json(o, rep, exit_code);
        else
                print_text(o, rep, r);
        if (r < 0)
                log_error("%s", rep->message[0] ? rep->message : strerror(-r));
        log_debug("Output written");
}

int coordctl_migrate_main(int argc, char **argv, const struct coordctl_globals *g) {
        _cleanup_(migrate_args_done) struct migrate_args a = {
                .o = {
                        .command = MIGRATE_APPLY,
                        .lease_usec = 15 * USEC_PER_SEC,
                        .wait_timeout_usec = 10 * 60 * USEC_PER_SEC,
                },
        };
        _cleanup_(redis_url_freep) struct redis_url *redis = NULL;
        _cleanup_(flyway_placeholders_freep) struct flyway_placeholders *ph = flyway_placeholders_new();
        struct migrate_report rep = {};
        bool ran = false;
        int r, code;

        r = parse_args(argc, argv, &a);
        if (r == 0 && a.help) {
                help();
                return EXIT_OK;
        }
        if (r == 0)
                r = resolve_targets(&a.o, a.redis, &redis);
        if (r == 0)
                r = placeholders_setup(ph, a.assignments, a.n_assignments, &a.o);
        if (r == 0) {
                r = migrate_run(&a.o, &rep);
                ran = true;
        }
        /* The one place errors become CONTRACT.md's exit codes. */
        code = migrate_exit_code(r);
        if (ran)
                print_outcome(g, &a.o, &rep, r, code);
        migrate_report_done(&rep);
        return code;
}
