/* Migration file names and directives (migrations/source.c, including the
 * static name parser and lexer it keeps to itself, and flyway_explain_name()
 * for the Flyway names coord refuses: U1__undo.sql, B1__base.sql, callbacks).
 * Input: the file name on the first line, the file's SQL after it.
 * Properties: a parsed name has the type of its prefix, a non-empty description
 * without '_', and a normalized version that normalizes to itself, compares
 * equal to the version as written and to itself with ".0" appended, and below
 * itself with ".1" appended; a lexed file's directives are consistent (post-deploy
 * only in versioned files, timeouts of at least 1 ms, a reason exactly when it
 * runs without a transaction), re-lexing the same text gives the same result,
 * and a server version change there and back leaves it as it was. */
#include "migrations/source.c"

#include "tests/fuzz/fuzz.h"

static void check_version(const char *name, const char *version) {
        const char *sep = strstr(name, "__");
        char *again = NULL, *more;

        FUZZ_CHECK(version_normalize(version, strlen(version), &again) == 0 && strcmp(again, version) == 0,
                   "%s: version '%s' normalizes to '%s'", name, version, again ? again : "(error)");
        FUZZ_CHECK(sep && version_compare(version, strndupa(name + 1, (size_t) (sep - name - 1))) == 0,
                   "%s: version '%s' differs from the name's", name, version);
        more = strdup_printf("%s.0", version);
        FUZZ_CHECK(more && version_compare(version, more) == 0 && version_compare(more, version) == 0,
                   "%s: '%s' and '%s.0' differ", name, version, version);
        free(more);
        more = strdup_printf("%s.1", version);
        FUZZ_CHECK(more && version_compare(version, more) < 0 && version_compare(more, version) > 0,
                   "%s: '%s' not below '%s.1'", name, version, version);
        free(more);
        free(again);
}

static void check_name(const char *name, const struct migration *m) {
        static const char prefix[] = { [MIGRATION_VERSIONED] = 'V', [MIGRATION_REPEATABLE] = 'R', [MIGRATION_SEED] = 'S' };

        FUZZ_CHECK(name[0] == prefix[m->type], "%s: parsed as %s", name, migration_type_to_string(m->type));
        FUZZ_CHECK(m->description && m->description[0] && !strchr(m->description, '_'), "%s: description '%s'",
                   name, m->description ? m->description : "(null)");
        FUZZ_CHECK(!!m->version == (m->type == MIGRATION_VERSIONED), "%s: version presence", name);
        if (m->version)
                check_version(name, m->version);
}

/* What the lexer derived from the text, to compare two lexings. */
struct lexed {
        bool no_transaction, post_deploy;
        uint64_t statement_timeout_usec, lock_timeout_usec;
        size_t n_stmts;
};

static struct lexed lexed_of(const struct migration *m) {
        return (struct lexed) { m->no_transaction, m->post_deploy, m->statement_timeout_usec, m->lock_timeout_usec,
                                m->n_stmts };
}

static bool lexed_equal(struct lexed a, struct lexed b) {
        return a.no_transaction == b.no_transaction && a.post_deploy == b.post_deploy &&
               a.statement_timeout_usec == b.statement_timeout_usec && a.lock_timeout_usec == b.lock_timeout_usec &&
               a.n_stmts == b.n_stmts;
}

static void check_lexed(struct migration *m) {
        struct lexed first = lexed_of(m), again;
        struct migration_set set = { .v = m, .n = 1 };
        char err[1024];
        char *copy = fuzz_string((const uint8_t *) m->sql, m->sql_len);

        FUZZ_CHECK(!m->post_deploy || m->type == MIGRATION_VERSIONED, "%s: post-deploy in a %s file", m->script,
                   migration_type_to_string(m->type));
        FUZZ_CHECK((m->statement_timeout_usec == 0 || m->statement_timeout_usec >= 1000) &&
                           (m->lock_timeout_usec == 0 || m->lock_timeout_usec >= 1000),
                   "%s: a timeout under 1ms", m->script);
        FUZZ_CHECK(!m->no_transaction == !migration_no_transaction(m), "%s: no-transaction without its reason",
                   m->script);
        FUZZ_CHECK(source_set_sql(m, copy, m->sql_len, err, sizeof err) == 0, "%s: re-lexing failed: %s",
                   m->script, err);
        again = lexed_of(m);
        FUZZ_CHECK(lexed_equal(first, again), "%s: re-lexing gave another result", m->script);
        if (source_set_server_version(&set, 110000, err, sizeof err) == 0) {
                FUZZ_CHECK(source_set_server_version(&set, 150000, err, sizeof err) == 0,
                           "%s: fails for server 15 after 11: %s", m->script, err);
                again = lexed_of(m);
                FUZZ_CHECK(lexed_equal(first, again), "%s: server 11 and back changed it",
                           m->script);
        }
}

/* As source_load() takes a directory entry: ".sql" names are parsed, others only explained. */
static void check_file(const char *name, const uint8_t *sql, size_t len) {
        struct migration m = {};
        char err[1024] = "";
        size_t nl = strlen(name);

        if (nl < 4 || strcasecmp(name + nl - 4, ".sql") != 0) {
                (void) flyway_explain_name(name, err, sizeof err);
                return;
        }
        if (parse_name(name, &m, err, sizeof err) < 0) {
                FUZZ_CHECK(err[0] && !m.version, "%s: refused without a message, or kept a version", name);
                migration_done(&m);
                return;
        }
        check_name(name, &m);
        m.script = strdup(name);
        m.sql = fuzz_string(sql, len);
        m.sql_len = len;
        if (m.script && migration_lex(&m, true, err, sizeof err) == 0)
                check_lexed(&m);
        migration_done(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *name = fuzz_line(&data, &size);

        if (!strchr(name, '/'))
                check_file(name, data, size);
        free(name);
        return 0;
}
