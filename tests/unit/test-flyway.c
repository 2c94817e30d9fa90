/* Unit tests for migrations/flyway.c: Flyway's checksum, placeholders, refused file names,
 * and the rows that take over a flyway_schema_history (with the planner on top). */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "migrate-fixtures.h"
#include "migrations/flyway.h"
#include "migrations/plan.h"
#include "strutil.h"
#include "test-main.h"

/* ---- checksum: expected values computed by Flyway's algorithm on the JVM (BufferedReader
 * readLine, BomFilter, java.util.zip.CRC32 over the UTF-8 bytes of each line). */
static const struct {
        const char *data;
        size_t len;
        int32_t utf8; /* 0 with utf8_invalid */
        bool utf8_invalid;
        int32_t latin1;
} sums[] = {
#define S(s) s, sizeof(s) - 1
        { S("SELECT 1;\n"), 78787420, false, 78787420 },
        { S("SELECT 1;\r\n"), 78787420, false, 78787420 },
        { S("CREATE TABLE t (id int);\r\nINSERT INTO t VALUES (1);\rSELECT 2;\n\n\n"), -1188336014, false,
          -1188336014 },
        /* A BOM at the start is dropped; the same text without it. */
        { S("\xef\xbb\xbf" "CREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\n"), 169406234, false, 0 },
        { S("CREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\n"), 169406234, false, 169406234 },
        { S("-- caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\nSELECT 1;"), 271579590, false, 0 },
        /* Not UTF-8: Flyway refuses it with its default encoding; read as ISO-8859-1: */
        { S("-- caf\xe9\nSELECT 1;\n"), 0, true, 139021238 },
        { S(""), 0, false, 0 },
        { S("\xef\xbb\xbf"), 0, false, 0 },
        /* A BOM on the second line stays. */
        { S("\n\xef\xbb\xbfSELECT 1;"), -1606921097, false, 0 },
#undef S
};

START_TEST(test_checksum) {
        for (size_t i = 0; i < ELEMENTSOF(sums); i++) {
                int32_t c = 12345;
                int r = flyway_checksum(sums[i].data, sums[i].len, &c);
                if (sums[i].utf8_invalid) {
                        ck_assert_int_eq(r, -EILSEQ);
                        ck_assert_int_eq(c, 12345);
                } else {
                        ck_assert_msg(r == 0, "case %zu", i);
                        ck_assert_msg(c == sums[i].utf8, "case %zu: %d, want %d", i, c, sums[i].utf8);
                        ck_assert(flyway_checksum_matches(sums[i].data, sums[i].len, sums[i].utf8));
                }
                if (sums[i].latin1 != 0 || sums[i].len == 0) {
                        ck_assert_msg(flyway_checksum_latin1(sums[i].data, sums[i].len) == sums[i].latin1,
                                      "case %zu latin1: %d", i, flyway_checksum_latin1(sums[i].data, sums[i].len));
                        ck_assert(flyway_checksum_matches(sums[i].data, sums[i].len, sums[i].latin1));
                }
        }
        ck_assert(!flyway_checksum_matches("SELECT 2;\n", 10, 78787420));
        /* Overlong forms and surrogates are not UTF-8 for Java either. */
        int32_t c;
        ck_assert_int_eq(flyway_checksum("\xc0\xaf", 2, &c), -EILSEQ);
        ck_assert_int_eq(flyway_checksum("\xed\xa0\x80", 3, &c), -EILSEQ);
        ck_assert_int_eq(flyway_checksum("\xf4\x90\x80\x80", 4, &c), -EILSEQ);
        ck_assert_int_eq(flyway_checksum("\xe2\x82", 2, &c), -EILSEQ);
}
END_TEST

/* ---- placeholders ---------------------------------------------------------------------------- */

static struct flyway_placeholders *ph_of(const char *const *assignments) {
        struct flyway_placeholders *p = flyway_placeholders_new();
        ck_assert_ptr_nonnull(p);
        for (; *assignments; assignments++)
                ck_assert_int_eq(flyway_placeholders_set_assignment(p, *assignments), 0);
        return p;
}

static char *replaced(const char *text, const struct flyway_placeholders *p, const struct flyway_builtins *b,
                      size_t *ret_n, char *err, size_t errlen) {
        char *out = NULL;
        size_t len = 0;
        int r = flyway_replace(text, strlen(text), "V1__x.sql", p, b, &out, &len, ret_n, err, errlen);
        if (r < 0)
                return NULL;
        ck_assert_uint_eq(strlen(out), len);
        return out;
}

START_TEST(test_replace) {
        _cleanup_(flyway_placeholders_freep) struct flyway_placeholders *p =
                ph_of((const char *const[]) { "owner=app_owner", "Schema=s1", "empty=", "eq=a=b", "owner=app", NULL });
        struct flyway_builtins b = { .loaded = true, .default_schema = (char *) "public", .user = (char *) "u1",
                                     .database = (char *) "db1", .timestamp = "2026-01-02 03:04:05" };
        char err[512];
        size_t n = 99;
        _cleanup_free_ char *a = NULL, *c = NULL, *d = NULL, *e = NULL;

        /* Later values win; keys are case-insensitive; the value may be empty or hold '='. */
        a = replaced("ALTER TABLE ${schema}.t OWNER TO ${OWNER};${empty}-- ${eq}", p, &b, &n, err, sizeof(err));
        ck_assert_str_eq(a, "ALTER TABLE s1.t OWNER TO app;-- a=b");
        ck_assert_uint_eq(n, 4);
        /* Everywhere: strings, comments, dollar-quoted bodies; values are not scanned again. */
        ck_assert_int_eq(flyway_placeholders_set_assignment(p, "loop=${owner}"), 0);
        c = replaced("DO $do$ BEGIN RAISE NOTICE '${owner} ${loop}'; END $do$; /* ${schema} */", p, &b, &n, err,
                     sizeof(err));
        ck_assert_str_eq(c, "DO $do$ BEGIN RAISE NOTICE 'app ${owner}'; END $do$; /* s1 */");
        /* Built-ins. */
        d = replaced("${flyway:defaultSchema} ${flyway:user} ${FLYWAY:database} ${flyway:timestamp} ${flyway:filename}",
                     p, &b, &n, err, sizeof(err));
        ck_assert_str_eq(d, "public u1 db1 2026-01-02 03:04:05 V1__x.sql");
        /* No placeholder: a plain copy; a lone '$' or '{' is no placeholder. */
        e = replaced("SELECT $1, '{a}', $$x$$;", p, &b, &n, err, sizeof(err));
        ck_assert_str_eq(e, "SELECT $1, '{a}', $$x$$;");
        ck_assert_uint_eq(n, 0);

        /* Unknown: the file, the line and the key. */
        ck_assert_ptr_null(replaced("SELECT 1;\n\n  GRANT ${reader_role} TO x;", p, &b, &n, err, sizeof(err)));
        ck_assert_msg(strstr(err, "V1__x.sql:3: no value for placeholder ${reader_role}"), "%s", err);
        ck_assert_msg(strstr(err, "--placeholder reader_role=VALUE"), "%s", err);
        ck_assert_msg(strstr(err, "COORD_PLACEHOLDER_READER_ROLE"), "%s", err);
        ck_assert_ptr_null(replaced("SELECT '${oops';", p, &b, &n, err, sizeof(err)));
        ck_assert_msg(strstr(err, "V1__x.sql:1: '${' without a closing '}'"), "%s", err);
        ck_assert_ptr_null(replaced("${flyway:table}", p, &b, &n, err, sizeof(err)));
        ck_assert_msg(strstr(err, "unknown built-in placeholder ${flyway:table}"), "%s", err);
        ck_assert_ptr_null(replaced("${flyway:user}", p, NULL, &n, err, sizeof(err)));
        ck_assert_msg(strstr(err, "no value for the built-in placeholder ${flyway:user}"), "%s", err);
        ck_assert_ptr_null(replaced("x ${}", p, &b, &n, err, sizeof(err)));

        /* Bad keys. */
        ck_assert_int_eq(flyway_placeholders_set_assignment(p, "novalue"), -EINVAL);
        ck_assert_int_eq(flyway_placeholders_set_assignment(p, "=x"), -EINVAL);
        ck_assert_int_eq(flyway_placeholders_set_assignment(p, "a}b=x"), -EINVAL);
        ck_assert_int_eq(flyway_placeholders_set_assignment(p, "flyway:user=x"), -EINVAL);
}
END_TEST

START_TEST(test_env) {
        _cleanup_(flyway_placeholders_freep) struct flyway_placeholders *p = flyway_placeholders_new();
        char *env[] = { (char *) "COORD_PLACEHOLDER_OWNER=coord", (char *) "FLYWAY_PLACEHOLDERS_OWNER=flyway",
                        (char *) "FLYWAY_PLACEHOLDERS_SCHEMA=s", (char *) "PATH=/bin",
                        (char *) "FLYWAY_PLACEHOLDER_REPLACEMENT=true", NULL };
        const char *bad = NULL;
        char *badenv[] = { (char *) "COORD_PLACEHOLDER_=x", NULL };

        ck_assert_int_eq(flyway_placeholders_set_env(p, env, &bad), 0);
        ck_assert_str_eq(flyway_placeholders_get(p, "owner", 5), "coord"); /* coord's win over Flyway's */
        ck_assert_str_eq(flyway_placeholders_get(p, "Schema", 6), "s");
        ck_assert_ptr_null(flyway_placeholders_get(p, "replacement", 11));
        ck_assert_int_eq(flyway_placeholders_set_env(p, badenv, &bad), -EINVAL);
        ck_assert_str_eq(bad, "COORD_PLACEHOLDER_=x");
}
END_TEST

START_TEST(test_explain_name) {
        char b[512];
        ck_assert(flyway_explain_name("U1__undo.sql", b, sizeof(b)));
        ck_assert_str_eq(b, "U1__undo.sql: undo migrations are not supported (coord never undoes; write a new "
                            "versioned migration)");
        ck_assert(flyway_explain_name("U2_1__undo_it.sql", b, sizeof(b)));
        ck_assert(flyway_explain_name("afterMigrate.sql", b, sizeof(b)));
        ck_assert_msg(strstr(b, "afterMigrate.sql: Flyway callbacks (afterMigrate) are not supported"), "%s", b);
        ck_assert(flyway_explain_name("beforeEachMigrate__grants.sql", b, sizeof(b)));
        ck_assert(flyway_explain_name("B5__baseline.sql", b, sizeof(b)));
        ck_assert_msg(strstr(b, "coordctl migrate baseline VERSION"), "%s", b);
        ck_assert(flyway_explain_name("V2__idx.sql.conf", b, sizeof(b)));
        ck_assert_msg(strstr(b, "V2__idx.sql.conf: Flyway per-script configuration is not read"), "%s", b);
        ck_assert(!flyway_explain_name("afterMigrateX.sql", b, sizeof(b)));
        ck_assert(!flyway_explain_name("Undo__x.sql", b, sizeof(b)));
        ck_assert(!flyway_explain_name("V1__x.sql", b, sizeof(b)));
        ck_assert(!flyway_explain_name("notes.txt", b, sizeof(b)));
}
END_TEST

/* ---- adoption -------------------------------------------------------------------------------- */

static struct migration file(enum migration_type t, const char *version, const char *script, const char *sql) {
        struct migration m = { .type = t, .version = (char *) version, .description = (char *) "d",
                               .script = (char *) script, .sql = (char *) sql, .sql_len = strlen(sql) };
        sha256_hex(sql, strlen(sql), m.checksum);
        return m;
}

static struct flyway_row frow(int64_t rank, const char *version, const char *type, const char *script,
                              const char *checksum, bool success) {
        return (struct flyway_row) { .installed_rank = rank, .version = version, .description = "d", .type = type,
                                     .script = script, .checksum = checksum, .installed_by = "postgres",
                                     .installed_on_usec = 1767225600000000u, .execution_time = 12,
                                     .success = success };
}

static void history_clear(struct history *h) {
        free(h->rows);
        for (size_t i = 0; i < h->n_owned; i++)
                free(h->owned[i]);
        free(h->owned);
        *h = (struct history) {};
}

/* V1..V3 applied by Flyway (V2's file edited since, V3's line endings only), V4/V5 new. */
START_TEST(test_adopt) {
        char c1[16], c2[16], c3[16], e[512];
        int32_t k;
        struct migration files[] = {
                file(MIGRATION_VERSIONED, "1", "V1__users.sql", "CREATE TABLE users (id int);\n"),
                file(MIGRATION_VERSIONED, "2", "V2__orders.sql", "CREATE TABLE orders (id int); -- edited\n"),
                file(MIGRATION_VERSIONED, "3", "V3__items.sql", "CREATE TABLE items (id int);\r\n"),
                file(MIGRATION_VERSIONED, "4", "V4__more.sql", "SELECT 4;\n"),
                file(MIGRATION_VERSIONED, "5", "V5__most.sql", "SELECT 5;\n"),
                file(MIGRATION_REPEATABLE, NULL, "R__views.sql", "CREATE VIEW v AS SELECT 1;\n"),
                file(MIGRATION_REPEATABLE, NULL, "R__grants.sql", "GRANT SELECT ON users TO PUBLIC;\n"),
        };
        struct migration_set set = set_of(files, ELEMENTSOF(files));
        struct history h = {};
        struct migrate_report r = {};

        ck_assert_int_eq(flyway_checksum("CREATE TABLE users (id int);\n", 29, &k), 0);
        snprintf(c1, sizeof(c1), "%d", k);
        ck_assert_int_eq(flyway_checksum("CREATE TABLE orders (id int);\n", 30, &k), 0);
        snprintf(c2, sizeof(c2), "%d", k);
        ck_assert_int_eq(flyway_checksum("CREATE TABLE items (id int);\n", 29, &k), 0);
        snprintf(c3, sizeof(c3), "%d", k);
        char cv[16], cg[16];
        ck_assert_int_eq(flyway_checksum("CREATE VIEW v AS SELECT 1;", 26, &k), 0);
        snprintf(cv, sizeof(cv), "%d", k);
        snprintf(cg, sizeof(cg), "%d", 42);

        struct flyway_row rows[] = {
                frow(0, "0", "SCHEMA", "\"public\"", NULL, true),
                frow(1, "1", "SQL", "V1__users.sql", c1, true),
                frow(2, "2", "SQL", "V2__orders.sql", c2, true),
                frow(3, "003", "SQL", "db/V3__items.sql", c3, true),
                frow(4, NULL, "SQL", "R__views.sql", cv, true),
                frow(5, NULL, "SQL", "sub/R__grants.sql", cg, true),
        };
        ck_assert_int_eq(flyway_adopt_compute(rows, ELEMENTSOF(rows), &set, NULL, &h, e, sizeof(e)), 0);
        ck_assert(h.adopting);
        ck_assert_uint_eq(h.n, 5); /* SCHEMA skipped */
        ck_assert_str_eq(h.rows[0].installed_by, "flyway:postgres");
        ck_assert_str_eq(h.rows[0].type, "versioned");
        ck_assert_str_eq(h.rows[0].checksum, files[0].checksum); /* coord's SHA-256 of the file */
        ck_assert_str_eq(h.rows[0].installed_at, "2026-01-01T00:00:00.000Z");
        ck_assert_int_eq(h.rows[0].execution_ms, 12);
        ck_assert_msg(strncmp(h.rows[1].checksum, FLYWAY_CHECKSUM_PREFIX, strlen(FLYWAY_CHECKSUM_PREFIX)) == 0,
                      "%s", h.rows[1].checksum);
        ck_assert_str_eq(h.rows[2].version, "3");
        ck_assert_str_eq(h.rows[2].script, "V3__items.sql");
        ck_assert_str_eq(h.rows[2].checksum, files[2].checksum); /* CRLF: the same for Flyway */
        ck_assert_str_eq(h.rows[3].type, "repeatable");
        ck_assert_str_eq(h.rows[4].script, "R__grants.sql");
        ck_assert_ptr_null(h.rows[4].checksum); /* changed since Flyway ran it: runs again */

        ck_assert_int_eq(plan_compute(&set, &h, false, MIGRATE_PHASE_ALL, &r), 0);
        expect(&r, "V1__users.sql", STATE_APPLIED, false, false);
        expect(&r, "V2__orders.sql", STATE_CHANGED, false, true);
        expect(&r, "V3__items.sql", STATE_APPLIED, false, false);
        expect(&r, "V4__more.sql", STATE_PENDING, true, false);
        expect(&r, "V5__most.sql", STATE_PENDING, true, false);
        expect(&r, "R__views.sql", STATE_APPLIED, false, false);
        expect(&r, "R__grants.sql", STATE_CHANGED, true, false);
        report_free(&r);

        /* The file restored: Flyway's checksum matches it, without any repair. */
        files[1] = file(MIGRATION_VERSIONED, "2", "V2__orders.sql", "CREATE TABLE orders (id int);\r\n");
        ck_assert_int_eq(plan_compute(&set, &h, false, MIGRATE_PHASE_ALL, &r), 0);
        expect(&r, "V2__orders.sql", STATE_APPLIED, false, false);
        report_free(&r);
        history_clear(&h);
}
END_TEST

START_TEST(test_adopt_kinds) {
        char e[512];
        struct migration files[] = {
                file(MIGRATION_VERSIONED, "3", "V3__c.sql", "SELECT 3;\n"),
                file(MIGRATION_VERSIONED, "4", "V4__d.sql", "SELECT 4;\n"),
                file(MIGRATION_VERSIONED, "6", "V6__f.sql", "SELECT 6;\n"),
                file(MIGRATION_VERSIONED, "7", "V7__g.sql", "SELECT 7;\n"),
        };
        struct migration_set set = set_of(files, ELEMENTSOF(files));
        struct history h = {};
        struct migrate_report r = {};
        struct flyway_row rows[] = {
                frow(1, "2", "BASELINE", "<< Flyway Baseline >>", NULL, true),
                frow(2, "3", "SQL", "V3__c.sql", NULL, true),           /* no checksum: taken as is */
                frow(3, "4", "JDBC", "db.migration.V4__D", NULL, true), /* a file with its version: taken */
                frow(4, "5", "JDBC", "db.migration.V5__E", NULL, true), /* Java: no file, never run */
                frow(5, "6", "SQL", "V6__f.sql", "1", true),
                frow(6, "6", "UNDO_SQL", "U6__f.sql", "2", true),       /* undone: runs again */
                frow(7, "8", "SQL", "V8__h.sql", "77", true),           /* above the directory: future */
        };
        ck_assert_int_eq(flyway_adopt_compute(rows, ELEMENTSOF(rows), &set, NULL, &h, e, sizeof(e)), 0);
        ck_assert_str_eq(h.rows[0].type, "baseline");
        ck_assert_str_eq(h.rows[3].type, "deleted");
        ck_assert_str_eq(h.rows[5].type, "deleted");
        ck_assert_str_eq(h.rows[6].checksum, FLYWAY_CHECKSUM_PREFIX "77");
        ck_assert_int_eq(plan_compute(&set, &h, false, MIGRATE_PHASE_ALL, &r), 0);
        expect(&r, "V3__c.sql", STATE_APPLIED, false, false);
        expect(&r, "V4__d.sql", STATE_APPLIED, false, false);
        expect(&r, "db.migration.V5__E", STATE_DELETED, false, false);
        expect(&r, "V6__f.sql", STATE_PENDING, false, true); /* below the applied 8: out of order */
        expect(&r, "V7__g.sql", STATE_PENDING, false, true);
        expect(&r, "V8__h.sql", STATE_FUTURE, false, false);
        expect(&r, "<< Flyway Baseline >>", STATE_BASELINE, false, false);
        report_free(&r);
        history_clear(&h);

        /* Without V8, 6 and 7 are ordinary pending versions. */
        ck_assert_int_eq(flyway_adopt_compute(rows, 6, &set, NULL, &h, e, sizeof(e)), 0);
        ck_assert_int_eq(plan_compute(&set, &h, false, MIGRATE_PHASE_ALL, &r), 0);
        expect(&r, "V6__f.sql", STATE_PENDING, true, false);
        expect(&r, "V7__g.sql", STATE_PENDING, true, false);
        report_free(&r);
        history_clear(&h);

        /* A failed row: the plan refuses it; a SQL row without its file is missing. */
        struct flyway_row failed[] = { frow(1, "3", "SQL", "V3__c.sql", NULL, false),
                                       frow(2, "3.5", "SQL", "V3.5__gone.sql", "5", true),
                                       frow(3, "4", "SQL", "V4__d.sql", NULL, true) };
        ck_assert_int_eq(flyway_adopt_compute(failed, ELEMENTSOF(failed), &set, NULL, &h, e, sizeof(e)), 0);
        ck_assert_int_eq(plan_compute(&set, &h, false, MIGRATE_PHASE_ALL, &r), 0);
        expect(&r, "V3__c.sql", STATE_FAILED, false, true);
        expect(&r, "V3.5__gone.sql", STATE_MISSING, false, true);
        report_free(&r);
        history_clear(&h);

        /* Rows coord cannot take over. */
        struct flyway_row unknown[] = { frow(1, "1", "SQL_STATE_SCRIPT", "x", NULL, true) };
        ck_assert_int_eq(flyway_adopt_compute(unknown, 1, &set, NULL, &h, e, sizeof(e)), -EBADMSG);
        ck_assert_msg(strstr(e, "installed_rank 1: type 'SQL_STATE_SCRIPT'"), "%s", e);
        struct flyway_row badver[] = { frow(7, "1.a", "SQL", "x", NULL, true) };
        ck_assert_int_eq(flyway_adopt_compute(badver, 1, &set, NULL, &h, e, sizeof(e)), -EBADMSG);
        ck_assert_msg(strstr(e, "installed_rank 7: version '1.a'"), "%s", e);
        ck_assert_uint_eq(h.n, 0);
        ck_assert(!h.adopting);
        /* Only Flyway's schema marker: nothing to take over. */
        struct flyway_row schema_only[] = { frow(0, "0", "SCHEMA", "\"app\"", NULL, true) };
        ck_assert_int_eq(flyway_adopt_compute(schema_only, 1, &set, NULL, &h, e, sizeof(e)), 0);
        ck_assert(!h.adopting);
}
END_TEST

static void add_tests(TCase *tc) {
        tcase_add_test(tc, test_checksum);
        tcase_add_test(tc, test_replace);
        tcase_add_test(tc, test_env);
        tcase_add_test(tc, test_explain_name);
        tcase_add_test(tc, test_adopt);
        tcase_add_test(tc, test_adopt_kinds);
}

TEST_MAIN("flyway", add_tests)
