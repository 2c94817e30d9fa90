/* Unit tests for migrations/source.c: names, versions, directives, checksums. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "migrations/source.h"
#include "strutil.h"

static char dir[] = "/tmp/test-source.XXXXXX";

static void put(const char *name, const char *content) {
        char p[512];
        FILE *f;
        snprintf(p, sizeof(p), "%s/%s", dir, name);
        f = fopen(p, "we");
        ck_assert_ptr_nonnull(f);
        fputs(content, f);
        fclose(f);
}

static void clear_dir(void) {
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "rm -rf %s/* %s/.[!.]*", dir, dir);
        ck_assert_int_eq(system(cmd), 0);
}

static void setup(void) {
        ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void) {
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        (void) system(cmd);
        memcpy(dir + strlen(dir) - 6, "XXXXXX", 6); /* restore the template for the next test */
}

START_TEST(test_versions) {
        char *v = NULL;
        ck_assert_int_eq(version_normalize("2_1", 3, &v), 0);
        ck_assert_str_eq(v, "2.1");
        free(v);
        ck_assert_int_eq(version_normalize("001.020", 7, &v), 0);
        ck_assert_str_eq(v, "1.20");
        free(v);
        ck_assert_int_eq(version_normalize("0", 1, &v), 0);
        ck_assert_str_eq(v, "0");
        free(v);
        v = (char *) "untouched";
        ck_assert_int_eq(version_normalize("1.", 2, &v), -EINVAL);
        ck_assert_int_eq(version_normalize("1..2", 4, &v), -EINVAL);
        ck_assert_int_eq(version_normalize("1a", 2, &v), -EINVAL);
        ck_assert_int_eq(version_normalize("", 0, &v), -EINVAL);
        ck_assert_int_eq(version_normalize("-1", 2, &v), -EINVAL);
        ck_assert_str_eq(v, "untouched");

        ck_assert_int_lt(version_compare("1", "2"), 0);
        ck_assert_int_lt(version_compare("2", "10"), 0); /* numeric, not lexical */
        ck_assert_int_lt(version_compare("1.9", "1.10"), 0);
        ck_assert_int_eq(version_compare("1", "1.0"), 0);
        ck_assert_int_eq(version_compare("2_1", "2.1"), 0);
        ck_assert_int_eq(version_compare("007", "7"), 0);
        ck_assert_int_gt(version_compare("1.0.1", "1"), 0);
        ck_assert_int_gt(version_compare("99999999999999999999999", "99999999999999999999998"), 0);
        ck_assert_int_lt(version_compare("20260101", "202601011200"), 0);
}
END_TEST

START_TEST(test_load_order_and_fields) {
        struct migration_set *s = NULL;
        char e[512] = "";

        clear_dir();
        put("V10__ten.sql", "SELECT 10;");
        put("V2__two_words.sql", "-- coord:no-transaction\n--   coord:statement-timeout 30s\n\n-- coord:lock-timeout 250ms\nSELECT 2;\n-- coord:bogus later lines are not directives\n");
        put("V2_1__two_one.sql", "\xEF\xBB\xBF-- coord:lock-timeout 1s\nSELECT 21;");
        put("R__b_view.sql", "SELECT 'r';");
        put("R__a_view.sql", "SELECT 'r';");
        put("S__seed.SQL", "SELECT 's';");
        put("README.md", "ignored");
        put(".hidden.sql", "ignored");
        put("notes.txt", "ignored");
        ck_assert_int_eq(source_load(dir, true, &s, e, sizeof(e)), 0);
        ck_assert_uint_eq(s->n, 6);
        ck_assert_uint_eq(s->n_versioned, 3);
        ck_assert_uint_eq(s->n_repeatable, 2);
        ck_assert_uint_eq(s->n_seed, 1);
        ck_assert_str_eq(s->v[0].script, "V2__two_words.sql");
        ck_assert_str_eq(s->v[0].description, "two words");
        ck_assert(s->v[0].no_transaction);
        ck_assert_uint_eq(s->v[0].statement_timeout_usec, 30000000);
        ck_assert_uint_eq(s->v[0].lock_timeout_usec, 250000);
        ck_assert_str_eq(s->v[1].version, "2.1");
        ck_assert(!s->v[1].no_transaction);
        ck_assert_uint_eq(s->v[1].statement_timeout_usec, 0);
        ck_assert_uint_eq(s->v[1].lock_timeout_usec, 1000000); /* directive after a byte order mark */
        ck_assert_uint_eq(s->v[1].n_stmts, 1);
        ck_assert_str_eq(s->v[2].version, "10");
        ck_assert_str_eq(s->v[3].script, "R__a_view.sql");
        ck_assert_str_eq(s->v[4].script, "R__b_view.sql");
        ck_assert_int_eq(s->v[5].type, MIGRATION_SEED);
        {
                char want[65];
                sha256_hex("SELECT 10;", 10, want);
                ck_assert_str_eq(s->v[2].checksum, want);
        }
        ck_assert_uint_eq(s->v[2].n_stmts, 1);
        source_free(s);
}
END_TEST

static void expect_error(const char *name, const char *content, const char *needle) {
        struct migration_set *s = (struct migration_set *) 0x1;
        char e[512] = "";
        int r;

        clear_dir();
        put("V1__ok.sql", "SELECT 1;");
        put(name, content);
        r = source_load(dir, true, &s, e, sizeof(e));
        ck_assert_msg(r == -EINVAL, "%s: expected -EINVAL, got %d (%s)", name, r, e);
        ck_assert_msg(strstr(e, needle), "%s: message '%s' lacks '%s'", name, e, needle);
        ck_assert_ptr_eq(s, (struct migration_set *) 0x1);
}

START_TEST(test_errors) {
        expect_error("V1_2_x.sql", "SELECT 1;", "V1_2_x.sql: not a migration file name");
        expect_error("v2__lower.sql", "SELECT 1;", "v2__lower.sql");
        expect_error("V__noversion.sql", "SELECT 1;", "V__noversion.sql");
        expect_error("V2a__x.sql", "SELECT 1;", "V2a__x.sql");
        expect_error("V3__.sql", "SELECT 1;", "V3__.sql");
        expect_error("R_single.sql", "SELECT 1;", "R_single.sql");
        expect_error("Rx__a.sql", "SELECT 1;", "Rx__a.sql");
        expect_error("random.sql", "SELECT 1;", "random.sql");
        expect_error("V1.0__dup.sql", "SELECT 1;", "duplicate version");
        expect_error("V2__bad_directive.sql", "-- coord:no-transactions\nSELECT 1;",
                     "V2__bad_directive.sql:1: unknown directive 'coord:no-transactions'");
        expect_error("V2__bad_timeout.sql", "-- x\n-- coord:statement-timeout 30\nSELECT 1;",
                     "V2__bad_timeout.sql:2: directive 'coord:statement-timeout' has a bad argument '30'");
        expect_error("V2__arg.sql", "-- coord:no-transaction yes\nSELECT 1;", "V2__arg.sql:1");
        expect_error("V2__quote.sql", "SELECT 1;\nSELECT 'oops;\n", "V2__quote.sql: unterminated quoted string starting at line 2");
        expect_error("V2__tx.sql", "SELECT 1;\nCOMMIT;\n", "V2__tx.sql:2: transaction control");
        expect_error("V2__copy.sql", "SELECT 1;\n\ncopy t (a, b) FROM stdin;\n", "V2__copy.sql:3: COPY ... FROM STDIN");
        /* post-deploy holds a version back: only versioned files have one */
        expect_error("R__view.sql", "-- a view\n-- coord:post-deploy\nSELECT 1;",
                     "R__view.sql:2: directive 'coord:post-deploy' is only valid in versioned migrations");
        expect_error("S__seed.sql", "-- coord:post-deploy\nSELECT 1;", "S__seed.sql:1: directive 'coord:post-deploy'");
        expect_error("V2__post_arg.sql", "-- coord:post-deploy now\nSELECT 1;",
                     "V2__post_arg.sql:1: directive 'coord:post-deploy' has a bad argument 'now' (expected: none)");
        expect_error("V2__post_typo.sql", "-- coord:postdeploy\nSELECT 1;",
                     "V2__post_typo.sql:1: unknown directive 'coord:postdeploy'");
}

START_TEST(test_post_deploy) {
        struct migration_set *s = NULL;
        char e[512] = "";

        clear_dir();
        put("V1__t.sql", "CREATE TABLE t (a int, b int);");
        put("V2__drop_a.sql", "-- Contract: no release reads t.a any more.\n-- coord:post-deploy\n"
                              "-- coord:lock-timeout 5s\nALTER TABLE t DROP COLUMN a;\n");
        put("V3__add_c.sql", "ALTER TABLE t ADD COLUMN c int;\n-- coord:post-deploy (not leading: a comment)\n");
        put("R__v.sql", "CREATE OR REPLACE VIEW v AS SELECT b FROM t;");
        ck_assert_int_eq(source_load(dir, true, &s, e, sizeof(e)), 0);
        ck_assert_uint_eq(s->n, 4);
        ck_assert(!s->v[0].post_deploy);
        ck_assert_str_eq(s->v[1].script, "V2__drop_a.sql");
        ck_assert(s->v[1].post_deploy);
        ck_assert_uint_eq(s->v[1].lock_timeout_usec, 5000000);
        ck_assert(!s->v[2].post_deploy);
        ck_assert(!s->v[3].post_deploy);
        source_free(s);
}
END_TEST
END_TEST

START_TEST(test_missing_dir) {
        struct migration_set *s = NULL;
        char e[512] = "";
        ck_assert_int_eq(source_load("/nonexistent/coord-migrations", false, &s, e, sizeof(e)), -ENOENT);
        ck_assert(strstr(e, "/nonexistent/coord-migrations"));
}
END_TEST

int main(void) {
        Suite *s = suite_create("source");
        TCase *tc = tcase_create("core");
        SRunner *sr;
        int failed;

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_versions);
        tcase_add_test(tc, test_load_order_and_fields);
        tcase_add_test(tc, test_errors);
        tcase_add_test(tc, test_post_deploy);
        tcase_add_test(tc, test_missing_dir);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? 0 : 1;
}
