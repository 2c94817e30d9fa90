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
#include "test-main.h"

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
        put("V2__two_words.sql", "-- coord:no-transaction\n--   coord:statement-timeout 30s\n\n-- coord:lock-timeout 250ms\nSELECT 2;\n-- later comments are comments\n");
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
        expect_error("V2__copy.sql", "SELECT 1;\n\ncopy t (a, b) FROM stdin;\n1\t2\n",
                     "V2__copy.sql: line 4: the data of the COPY at line 3 has no end marker (a line \\.)");
        expect_error("V2__copy_out.sql", "SELECT 1;\nCOPY t TO STDOUT;\n", "V2__copy_out.sql:2: COPY ... TO STDOUT");
        /* A "coord:" comment that is not a directive in a valid place: an error naming its line. */
        expect_error("V2__late.sql", "CREATE TABLE t (a int);\n-- coord:no-transactoin\nCREATE INDEX i ON t (a);\n",
                     "V2__late.sql:2: directive 'coord:no-transactoin' after the first statement (line 1)");
        expect_error("V2__late_valid.sql", "SELECT 1; -- coord:post-deploy\n",
                     "V2__late_valid.sql:1: directive 'coord:post-deploy' after the first statement");
        expect_error("V2__inside.sql", "CREATE TABLE t (\n  -- coord:no-transaction\n  a int);\n",
                     "V2__inside.sql:2: directive 'coord:no-transaction' after the first statement (line 1)");
        expect_error("V2__block.sql", "/* coord:no-transaction */\nSELECT 1;\n",
                     "V2__block.sql:1: 'coord:no-transaction' in a block comment");
        expect_error("V2__case.sql", "-- Coord:no-transaction\nSELECT 1;\n",
                     "V2__case.sql:1: unknown directive 'Coord:no-transaction'");
        /* Statements PostgreSQL refuses in a transaction, next to ones that belong in one. */
        expect_error("V2__mixed.sql", "-- index and table\nCREATE TABLE t (a int);\nSET lock_timeout = '5s';\n"
                                      "CREATE INDEX CONCURRENTLY i ON t (a);\n",
                     "V2__mixed.sql:4: CREATE INDEX CONCURRENTLY cannot run inside a transaction, and line 2 "
                     "(CREATE TABLE) should not run outside one");
        expect_error("V2__mixed_copy.sql", "VACUUM t;\nCOPY t FROM stdin;\n1\n\\.\n",
                     "V2__mixed_copy.sql:1: VACUUM cannot run inside a transaction, and line 2 (COPY)");
        expect_error("V2__scs.sql", "SET standard_conforming_strings = off;\nINSERT INTO t VALUES ('it\\'s');\n"
                                    "SET standard_conforming_strings = on;\nINSERT INTO t VALUES ('it\\'s');\n",
                     "V2__scs.sql: unterminated quoted string starting at line 4");
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
        put("V3__add_c.sql", "ALTER TABLE t ADD COLUMN c int DEFAULT length('-- coord:post-deploy');\n");
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

/* Where one file runs: its directive, or what its statements need. */
START_TEST(test_transaction_detection) {
        static const struct {
                const char *content;
                const char *reason; /* NULL: in a transaction */
        } t[] = {
                { "CREATE INDEX CONCURRENTLY i ON t (a);", "detected: CREATE INDEX CONCURRENTLY at line 1" },
                { "-- no directive\nSET lock_timeout = '5s';\n\nCREATE INDEX CONCURRENTLY i ON t (a);\n"
                  "DROP INDEX CONCURRENTLY j;\nRESET lock_timeout;\n",
                  "detected: CREATE INDEX CONCURRENTLY at line 4" },
                { "VACUUM ANALYZE t;", "detected: VACUUM at line 1" },
                /* A directive after a licence block comment is a directive. */
                { "/*\n * Licence: MIT\n */\n-- coord:no-transaction\nCREATE TABLE t (a int);\n"
                  "CREATE INDEX CONCURRENTLY i ON t (a);\n",
                  "-- coord:no-transaction" },
                { "-- coord:no-transaction\nCREATE TABLE t (a int);", "-- coord:no-transaction" },
                { "CREATE TABLE t (a int);\nCREATE INDEX i ON t (a);", NULL },
                { "ALTER TYPE mood ADD VALUE 'meh';\nCREATE TABLE t (m mood);", NULL }, /* PostgreSQL 12 and later */
                { "COPY t (a, b) FROM stdin;\n1\tO'Brien\n\\.\nSELECT 1;\n", NULL },
        };
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
                struct migration_set *s = NULL;
                char e[512] = "";

                clear_dir();
                put("V1__one.sql", t[i].content);
                ck_assert_msg(source_load(dir, true, &s, e, sizeof(e)) == 0, "case %zu: %s", i, e);
                ck_assert_msg(s->v[0].no_transaction == !!t[i].reason, "case %zu: no_transaction %d", i,
                              s->v[0].no_transaction);
                if (t[i].reason)
                        ck_assert_str_eq(s->v[0].no_transaction_reason, t[i].reason);
                else
                        ck_assert_ptr_null(s->v[0].no_transaction_reason);
                source_free(s);
        }
}
END_TEST

START_TEST(test_add_value_before_12) {
        struct migration_set *s = NULL;
        char e[512] = "";

        clear_dir();
        put("V1__enum.sql", "-- values\nALTER TYPE mood ADD VALUE 'meh';\nSET lock_timeout = '1s';\n");
        put("V2__enum_and_table.sql", "CREATE TABLE t (a int);\nALTER TYPE mood ADD VALUE 'bah';\n");
        put("V3__directive.sql", "-- coord:no-transaction\nCREATE TABLE u (a int);\nALTER TYPE mood ADD VALUE 'x';\n");
        ck_assert_int_eq(source_load(dir, false, &s, e, sizeof(e)), 0);
        ck_assert(!s->v[0].no_transaction && !s->v[1].no_transaction && s->v[2].no_transaction);
        ck_assert_int_eq(source_set_server_version(s, 150004, e, sizeof(e)), 0);
        ck_assert(!s->v[0].no_transaction && !s->v[1].no_transaction);
        /* PostgreSQL 11 refuses ADD VALUE in a transaction block: V1 runs without one, V2 mixes. */
        ck_assert_int_eq(source_set_server_version(s, 110022, e, sizeof(e)), -EINVAL);
        ck_assert_str_eq(s->v[0].no_transaction_reason,
                         "detected: ALTER TYPE ... ADD VALUE (before PostgreSQL 12) at line 2");
        ck_assert(strstr(e, "V2__enum_and_table.sql:2: ALTER TYPE ... ADD VALUE (before PostgreSQL 12) cannot run "
                            "inside a transaction, and line 1 (CREATE TABLE) should not run outside one"));
        ck_assert_str_eq(s->v[2].no_transaction_reason, "-- coord:no-transaction");
        source_free(s);
}
END_TEST

/* status and validate load without keeping the statements: they must refuse what apply refuses. */
START_TEST(test_lexed_without_split) {
        static const struct {
                const char *content, *error;
        } t[] = {
                { "SELECT 1;\nSELECT 'oops;\n", "V1__bad.sql: unterminated quoted string starting at line 2" },
                { "CREATE TABLE t (a int);\nCREATE INDEX CONCURRENTLY i ON t (a);\n",
                  "V1__bad.sql:2: CREATE INDEX CONCURRENTLY cannot run inside a transaction, and line 1" },
                { "SELECT 1;\n-- coord:no-transaction\n", "V1__bad.sql:2: directive 'coord:no-transaction' after" },
                { "SELECT 1;\nCOMMIT;\n", "V1__bad.sql:2: transaction control" },
        };
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
                struct migration_set *s = (struct migration_set *) 0x1;
                char e[512] = "";

                clear_dir();
                put("V1__bad.sql", t[i].content);
                ck_assert_int_eq(source_load(dir, false, &s, e, sizeof(e)), -EINVAL);
                ck_assert_msg(strstr(e, t[i].error), "case %zu: '%s' lacks '%s'", i, e, t[i].error);
                ck_assert_ptr_eq(s, (struct migration_set *) 0x1);
        }
}
END_TEST

/* A file whose text changed after loading (placeholders) is split again from scratch. */
START_TEST(test_resplit) {
        struct migration_set *s = NULL;
        struct migration *m;
        char e[512] = "";

        clear_dir();
        put("V1__x.sql", "-- coord:lock-timeout 1s\nSELECT 1;\nSELECT 2;\n");
        ck_assert_int_eq(source_load(dir, true, &s, e, sizeof(e)), 0);
        m = &s->v[0];
        ck_assert_uint_eq(m->n_stmts, 2);
        ck_assert_uint_eq(m->lock_timeout_usec, 1000000);
        ck_assert_int_eq(source_split(m, e, sizeof(e)), 0); /* idempotent */
        ck_assert_uint_eq(m->n_stmts, 2);
        free(m->sql);
        m->sql = strdup("CREATE INDEX CONCURRENTLY i ON t (a);\n");
        m->sql_len = strlen(m->sql);
        m->split = false;
        ck_assert_int_eq(source_split(m, e, sizeof(e)), 0);
        ck_assert_uint_eq(m->n_stmts, 1);
        ck_assert_uint_eq(m->lock_timeout_usec, 0);
        ck_assert(m->no_transaction);
        ck_assert_str_eq(m->no_transaction_reason, "detected: CREATE INDEX CONCURRENTLY at line 1");
        source_free(s);
}
END_TEST

START_TEST(test_missing_dir) {
        struct migration_set *s = NULL;
        char e[512] = "";
        ck_assert_int_eq(source_load("/nonexistent/coord-migrations", false, &s, e, sizeof(e)), -ENOENT);
        ck_assert(strstr(e, "/nonexistent/coord-migrations"));
}
END_TEST

static void add_tests(TCase *tc) {
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_versions);
        tcase_add_test(tc, test_load_order_and_fields);
        tcase_add_test(tc, test_errors);
        tcase_add_test(tc, test_post_deploy);
        tcase_add_test(tc, test_transaction_detection);
        tcase_add_test(tc, test_add_value_before_12);
        tcase_add_test(tc, test_lexed_without_split);
        tcase_add_test(tc, test_resplit);
        tcase_add_test(tc, test_missing_dir);
}

TEST_MAIN("source", add_tests)
