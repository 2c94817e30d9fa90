/* Unit tests for migrations/sqlsplit.c: a table of tricky SQL. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrations/sqlsplit.h"

struct split_case {
        const char *name;
        const char *sql;
        const char *stmts[6]; /* expected statements, NULL-terminated */
        unsigned lines[6];    /* expected first lines */
};

static const struct split_case cases[] = {
        { "simple", "SELECT 1; SELECT 2;", { "SELECT 1", "SELECT 2" }, { 1, 1 } },
        { "no trailing semicolon", "SELECT 1;\nSELECT 2", { "SELECT 1", "SELECT 2" }, { 1, 2 } },
        { "empty statements", ";;  ;\n;SELECT 1;;", { "SELECT 1" }, { 2 } },
        { "only comments", "-- nothing\n/* at all */\n", { NULL }, { 0 } },
        { "semicolon in string", "INSERT INTO t VALUES ('a;b');\nSELECT 'x'';y';",
          { "INSERT INTO t VALUES ('a;b')", "SELECT 'x'';y'" }, { 1, 2 } },
        { "E string with escaped quote", "SELECT E'it\\'s; fine', 'plain\\';SELECT 2;",
          { "SELECT E'it\\'s; fine', 'plain\\'", "SELECT 2" }, { 1, 1 } },
        { "e lowercase and backslash at end", "SELECT e'a\\\\'; SELECT 3", { "SELECT e'a\\\\'", "SELECT 3" }, { 1, 1 } },
        { "word ending in e is not an E string", "SELECT some'x\\'; SELECT 4",
          { "SELECT some'x\\'", "SELECT 4" }, { 1, 1 } },
        { "quoted identifier", "CREATE TABLE \"we;ird\"\"name\" (id int); SELECT 1",
          { "CREATE TABLE \"we;ird\"\"name\" (id int)", "SELECT 1" }, { 1, 1 } },
        { "dollar quote", "CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END; $$ LANGUAGE plpgsql;\nSELECT 5;",
          { "CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END; $$ LANGUAGE plpgsql", "SELECT 5" }, { 1, 2 } },
        { "tagged dollar quote containing $$", "DO $body$ BEGIN PERFORM $$;$$; END $body$;\nSELECT 6",
          { "DO $body$ BEGIN PERFORM $$;$$; END $body$", "SELECT 6" }, { 1, 2 } },
        { "parameter is not a dollar quote", "PREPARE p AS SELECT $1; SELECT $2::int;",
          { "PREPARE p AS SELECT $1", "SELECT $2::int" }, { 1, 1 } },
        { "dollar inside identifier", "SELECT a$b$ FROM t; SELECT 7", { "SELECT a$b$ FROM t", "SELECT 7" }, { 1, 1 } },
        { "line comment with semicolon and quote", "SELECT 1 -- it's; here\n; SELECT 2",
          { "SELECT 1 -- it's; here", "SELECT 2" }, { 1, 2 } },
        { "nested block comment", "/* a /* nested; */ still; */ SELECT 1; /* x */ SELECT 2;",
          { "SELECT 1", "SELECT 2" }, { 1, 1 } },
        { "leading comments set the line", "-- header\n\n/* c\n */\n  CREATE TABLE a (id int);\n\nCREATE TABLE b (x int);",
          { "CREATE TABLE a (id int)", "CREATE TABLE b (x int)" }, { 5, 7 } },
        { "multi-line string counts lines", "SELECT 'a\nb\nc';\nSELECT 2;", { "SELECT 'a\nb\nc'", "SELECT 2" }, { 1, 4 } },
        { "parentheses", "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO u VALUES (1); INSERT INTO u VALUES (2)); SELECT 1",
          { "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO u VALUES (1); INSERT INTO u VALUES (2))", "SELECT 1" },
          { 1, 1 } },
        { "BEGIN ATOMIC body", "CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END;\nSELECT 9",
          { "CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END",
            "SELECT 9" },
          { 1, 2 } },
        { "CREATE OR REPLACE PROCEDURE atomic", "create or replace procedure p() begin atomic insert into t values (1); end; select 1",
          { "create or replace procedure p() begin atomic insert into t values (1); end", "select 1" }, { 1, 1 } },
        { "BEGIN outside a function is not a body", "CREATE TABLE begin_t (id int); SELECT 1",
          { "CREATE TABLE begin_t (id int)", "SELECT 1" }, { 1, 1 } },
        { "U& and B strings", "SELECT U&'d\\0061t;a', B'101'; SELECT X'1F';",
          { "SELECT U&'d\\0061t;a', B'101'", "SELECT X'1F'" }, { 1, 1 } },
        { "CRLF line ends", "SELECT 1;\r\nSELECT 2;\r\n", { "SELECT 1", "SELECT 2" }, { 1, 2 } },
        { "utf-8 text", "INSERT INTO t VALUES ('héllo; wörld');\nSELECT '€';", { "INSERT INTO t VALUES ('héllo; wörld')", "SELECT '€'" }, { 1, 2 } },
        { "byte order mark", "\xEF\xBB\xBF-- c\nSELECT 1;", { "SELECT 1" }, { 2 } },
        { "number then dollar quote", "SELECT 1,$$;$$; SELECT 2", { "SELECT 1,$$;$$", "SELECT 2" }, { 1, 1 } },
};

START_TEST(test_table) {
        const struct split_case *c = &cases[_i];
        struct sql_stmt *v = NULL;
        size_t n = 99, want = 0;
        char e[256] = "";

        while (want < 6 && c->stmts[want])
                want++;
        ck_assert_msg(sqlsplit(c->sql, strlen(c->sql), &v, &n, e, sizeof(e)) == 0, "%s: %s", c->name, e);
        ck_assert_msg(n == want, "%s: got %zu statements, want %zu", c->name, n, want);
        for (size_t i = 0; i < n; i++) {
                ck_assert_msg(v[i].len == strlen(c->stmts[i]) && memcmp(c->sql + v[i].offset, c->stmts[i], v[i].len) == 0,
                              "%s: statement %zu is '%.*s', want '%s'", c->name, i, (int) v[i].len, c->sql + v[i].offset,
                              c->stmts[i]);
                ck_assert_msg(v[i].line == c->lines[i], "%s: statement %zu on line %u, want %u", c->name, i, v[i].line,
                              c->lines[i]);
        }
        free(v);
}
END_TEST

START_TEST(test_unterminated) {
        static const struct {
                const char *sql, *what;
        } bad[] = {
                { "SELECT 1;\nSELECT 'abc;\n", "unterminated quoted string starting at line 2" },
                { "SELECT \"x;", "unterminated quoted identifier starting at line 1" },
                { "SELECT 1;\n\nDO $x$ BEGIN END $y$;", "unterminated dollar-quoted string starting at line 3" },
                { "/* one /* two */ SELECT 1;", "unterminated comment starting at line 1" },
                { "SELECT E'\\';", "unterminated quoted string starting at line 1" },
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                struct sql_stmt *v = (struct sql_stmt *) 0x1;
                size_t n = 77;
                char e[256] = "";
                ck_assert_int_eq(sqlsplit(bad[i].sql, strlen(bad[i].sql), &v, &n, e, sizeof(e)), -EINVAL);
                ck_assert_str_eq(e, bad[i].what);
                ck_assert_ptr_eq(v, (struct sql_stmt *) 0x1); /* untouched on failure */
                ck_assert_uint_eq(n, 77);
        }
}
END_TEST

START_TEST(test_position_line) {
        const char *sql = "-- x\nSELECT 1,\n  'é',\n  nope;";
        struct sql_stmt *v = NULL;
        size_t n = 0;
        char e[64];

        ck_assert_int_eq(sqlsplit(sql, strlen(sql), &v, &n, e, sizeof(e)), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_uint_eq(v[0].line, 2);
        /* Character positions (1-based): "SELECT 1,\n" is 10 chars, "  'é',\n" 7 chars, "nope" at 20. */
        ck_assert_uint_eq(sqlsplit_line_of_position(sql, &v[0], 1), 2);
        ck_assert_uint_eq(sqlsplit_line_of_position(sql, &v[0], 13), 3);
        ck_assert_uint_eq(sqlsplit_line_of_position(sql, &v[0], 20), 4);
        ck_assert_uint_eq(sqlsplit_line_of_position(sql, &v[0], 0), 2);
        ck_assert_uint_eq(sqlsplit_line_of_position(sql, &v[0], 9999), 2);
        free(v);
}
END_TEST

START_TEST(test_transaction_control) {
        static const struct {
                const char *sql;
                bool tc;
        } t[] = {
                { "BEGIN", true },           { "begin transaction isolation level serializable", true },
                { "COMMIT", true },          { "/* c */ -- d\n  Rollback", true },
                { "END", true },             { "START TRANSACTION", true },
                { "ABORT", true },           { "PREPARE TRANSACTION 'x'", true },
                { "COMMIT PREPARED 'x'", true }, { "SELECT 1", false },
                { "CREATE TABLE begin (id int)", false }, { "SAVEPOINT a", false },
                { "PREPARE p AS SELECT 1", false }, { "startx", false },
        };
        static const struct {
                const char *sql;
                bool copy;
        } c[] = {
                { "COPY t FROM STDIN", true },         { "copy t (a) from stdin with (format csv)", true },
                { "COPY t TO STDOUT", true },           { "COPY t FROM '/srv/t.csv'", false },
                { "COPY \"stdin\" FROM '/x'", false }, { "SELECT 'stdin'", false },
        };
        for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
                struct sql_stmt *v = NULL;
                size_t n = 0;
                char e[64];
                ck_assert_int_eq(sqlsplit(c[i].sql, strlen(c[i].sql), &v, &n, e, sizeof(e)), 0);
                ck_assert_msg(sqlsplit_is_copy_stdio(c[i].sql, &v[0]) == c[i].copy, "%s", c[i].sql);
                free(v);
        }
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
                struct sql_stmt *v = NULL;
                size_t n = 0;
                char e[64];
                ck_assert_int_eq(sqlsplit(t[i].sql, strlen(t[i].sql), &v, &n, e, sizeof(e)), 0);
                ck_assert_uint_eq(n, 1);
                ck_assert_msg(sqlsplit_is_transaction_control(t[i].sql, &v[0]) == t[i].tc, "%s", t[i].sql);
                free(v);
        }
}
END_TEST

int main(void) {
        Suite *s = suite_create("sqlsplit");
        TCase *tc = tcase_create("core");
        SRunner *sr;
        int failed;

        tcase_add_loop_test(tc, test_table, 0, sizeof cases / sizeof cases[0]);
        tcase_add_test(tc, test_unterminated);
        tcase_add_test(tc, test_position_line);
        tcase_add_test(tc, test_transaction_control);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? 0 : 1;
}
