/* Unit tests for migrations/sqlsplit.c: a table of tricky SQL. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrations/sqlsplit.h"
#include "test-main.h"

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
        /* pg_dump's data format: the lines after COPY ... FROM stdin; up to \. are data, never SQL. */
        { "COPY data block", "COPY t (a, b) FROM stdin;\n1\tO'Brien\n2\t\\N\n\\.\nSELECT 'after';",
          { "COPY t (a, b) FROM stdin", "SELECT 'after'" }, { 1, 5 } },
        { "COPY data with SQL-looking lines", "copy t from STDIN ; -- data next\n'; $$ /* --\n\\.\r\nSELECT 1;",
          { "copy t from STDIN", "SELECT 1" }, { 1, 4 } },
        { "empty COPY data", "COPY t FROM stdin;\n\\.\n", { "COPY t FROM stdin" }, { 1 } },
        { "COPY to a file has no data", "COPY t TO '/tmp/x';\nSELECT 1;", { "COPY t TO '/tmp/x'", "SELECT 1" }, { 1, 2 } },
        /* psql follows standard_conforming_strings: off makes '...' take backslash escapes. */
        { "standard_conforming_strings off", "SET standard_conforming_strings = off;\nSELECT 'it\\'s; here';\n"
          "SET standard_conforming_strings TO on;\nSELECT 'a\\';",
          { "SET standard_conforming_strings = off", "SELECT 'it\\'s; here'", "SET standard_conforming_strings TO on",
            "SELECT 'a\\'" },
          { 1, 2, 3, 4 } },
        { "RESET standard_conforming_strings", "set session standard_conforming_strings to 'off'; "
          "RESET standard_conforming_strings; SELECT 'a\\';",
          { "set session standard_conforming_strings to 'off'", "RESET standard_conforming_strings", "SELECT 'a\\'" },
          { 1, 1, 1 } },
        /* pg_dump (since 2025) brackets its output with psql's \restrict / \unrestrict: skipped. */
        { "pg_dump restrict lines", "--\n\\restrict abcDEF123\n\nSET x = 1;\n\\unrestrict abcDEF123\n",
          { "SET x = 1" }, { 4 } },
        { "bit and unicode strings take no escapes", "SET standard_conforming_strings = false; SELECT B'1\\', "
          "U&'\\'; SELECT 'x\\';'",
          { "SET standard_conforming_strings = false", "SELECT B'1\\', U&'\\'", "SELECT 'x\\';'" }, { 1, 1, 1 } },
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
                { "SET standard_conforming_strings = off;\nSELECT '\\';", "unterminated quoted string starting at line 2" },
                { "SELECT 1;\nCOPY t FROM stdin;\n1\n2\n", "line 3: the data of the COPY at line 2 has no end marker (a line \\.)" },
                { "COPY t FROM stdin;\n1\n\\. \n", "line 2: the data of the COPY at line 1 has no end marker (a line \\.)" },
                { "COPY t FROM stdin", "line 1: COPY ... FROM STDIN without its data lines (end the statement with ';', "
                                       "then the data, then a line \\.)" },
                { "COPY t FROM stdin;", "line 1: COPY ... FROM STDIN without its data lines (end them with a line \\.)" },
                { "COPY t FROM stdin; 1\t2\n\\.\n", "line 1: text after COPY ... FROM STDIN; on the same line (its data "
                                                  "starts on the next line)" },
                { "SELECT 1;\nSET standard_conforming_strings = maybe;", "line 2: cannot follow this SET "
                  "standard_conforming_strings (write 'SET standard_conforming_strings = on' or '= off')" },
                { "SELECT 1;\n\\connect other\n", "line 2: psql meta-command '\\connect' is not SQL (coord runs SQL only)" },
                { "SELECT 1 \\gset\n", "line 1: psql meta-command '\\gset' is not SQL (coord runs SQL only)" },
                { "SELECT 1;\n\\. \n", "line 2: psql meta-command '\\.' is not SQL (coord runs SQL only)" },
                { "SELECT 1\n\\restrict k\n", "line 2: psql meta-command '\\restrict' is not SQL (coord runs SQL only)" },
                { "SELECT set_config('standard_conforming_strings', 'off', false);",
                  "line 1: set_config('standard_conforming_strings', ...) changes how the rest of the file is lexed; "
                  "write 'SET standard_conforming_strings = on' or '= off' instead" },
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
                { "COPY t FROM STDIN;\n\\.", true },         { "copy t (a) from stdin with (format csv);\n\\.", true },
                { "COPY t TO STDOUT", true },           { "COPY t FROM '/srv/t.csv'", false },
                { "COPY \"stdin\" FROM '/x'", false }, { "SELECT 'stdin'", false },
                { "COPY (SELECT * FROM stdin) TO '/x'", false }, { "COPY (SELECT 1) TO stdout", true },
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

START_TEST(test_copy_data) {
        const char *sql = "-- dump\nCOPY public.actor (id, name, note) FROM stdin;\r\n"
                          "1\tO'Brien\t\\N\r\n2\tback\\\\slash\ttab\\there\r\n\\.\r\n"
                          "SELECT 1;\n";
        struct sql_script sc = {};
        char e[256] = "";

        ck_assert_int_eq(sqlsplit_script(sql, strlen(sql), &sc, e, sizeof(e)), 0);
        ck_assert_uint_eq(sc.n_stmts, 2);
        ck_assert_uint_eq(sc.stmts[0].data_line, 3);
        ck_assert_uint_eq(sc.stmts[0].data_offset, (size_t) (strstr(sql, "1\tO'") - sql));
        ck_assert_uint_eq(sc.stmts[0].data_len, (size_t) (strstr(sql, "\\.\r\n") - strstr(sql, "1\tO'")));
        ck_assert_uint_eq(sc.stmts[1].line, 6);
        ck_assert_uint_eq(sc.stmts[1].data_line, 0);
        ck_assert_uint_eq(sqlsplit_copy_kind(sql, &sc.stmts[0]), SQL_COPY_FROM_STDIN);
        /* PostgreSQL's "COPY actor, line 2" is the file's line 4. */
        ck_assert_uint_eq(sqlsplit_copy_row_line(sql, &sc.stmts[0], 1), 3);
        ck_assert_uint_eq(sqlsplit_copy_row_line(sql, &sc.stmts[0], 2), 4);
        ck_assert_uint_eq(sqlsplit_copy_row_line(sql, &sc.stmts[0], 3), 2); /* out of range: the statement */
        ck_assert_uint_eq(sqlsplit_copy_row_line(sql, &sc.stmts[1], 1), 6);
        sqlsplit_script_done(&sc);
}
END_TEST

START_TEST(test_copy_row_line) {
        static const struct {
                const char *sql;
                unsigned long row;
                unsigned line;
        } t[] = {
                { "COPY t FROM stdin;\na\nb\nc\n\\.\n", 3, 4 },
                /* text format: a backslash escapes the newline, the row goes on */
                { "COPY t FROM stdin;\na\\\nstill a\nb\n\\.\n", 2, 4 },
                /* CSV: PostgreSQL counts the newlines inside a quoted field too; backslashes are data */
                { "COPY t FROM stdin WITH (FORMAT csv);\n1,\"two\nlines\"\n2,x\n\\.\n", 3, 4 },
                { "COPY t FROM stdin CSV HEADER;\nid,v\n1,\"a\\\"\n2,\"c\nd\"\n3,e\n\\.\n", 5, 6 },
                { "COPY t FROM stdin (FORMAT 'csv');\n\"x\\\ny\"\nz\n\\.\n", 3, 4 },
        };
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
                struct sql_stmt *v = NULL;
                size_t n = 0;
                char e[256] = "";
                ck_assert_msg(sqlsplit(t[i].sql, strlen(t[i].sql), &v, &n, e, sizeof(e)) == 0, "%s", e);
                ck_assert_uint_eq(n, 1);
                ck_assert_msg(sqlsplit_copy_row_line(t[i].sql, &v[0], t[i].row) == t[i].line, "case %zu: row %lu on "
                              "line %u, want %u", i, t[i].row, sqlsplit_copy_row_line(t[i].sql, &v[0], t[i].row),
                              t[i].line);
                free(v);
        }
}
END_TEST

START_TEST(test_transaction_kind) {
        static const struct {
                const char *sql;
                enum sql_tx kind;
                const char *what;
        } t[] = {
                { "CREATE INDEX CONCURRENTLY i ON t (a)", SQL_TX_NEVER, "CREATE INDEX CONCURRENTLY" },
                { "/* c */ create unique index concurrently if not exists i on t (a)", SQL_TX_NEVER,
                  "CREATE INDEX CONCURRENTLY" },
                { "DROP INDEX CONCURRENTLY IF EXISTS i", SQL_TX_NEVER, "DROP INDEX CONCURRENTLY" },
                { "REINDEX INDEX CONCURRENTLY i", SQL_TX_NEVER, "REINDEX CONCURRENTLY" },
                { "REINDEX (VERBOSE, CONCURRENTLY) TABLE t", SQL_TX_NEVER, "REINDEX CONCURRENTLY" },
                { "REINDEX (VERBOSE) SCHEMA s", SQL_TX_NEVER, "REINDEX SCHEMA" },
                { "REINDEX DATABASE d", SQL_TX_NEVER, "REINDEX DATABASE" },
                { "VACUUM (ANALYZE) t", SQL_TX_NEVER, "VACUUM" },
                { "vacuum", SQL_TX_NEVER, "VACUUM" },
                { "CREATE DATABASE d", SQL_TX_NEVER, "CREATE DATABASE" },
                { "DROP DATABASE IF EXISTS d", SQL_TX_NEVER, "DROP DATABASE" },
                { "CREATE TABLESPACE s LOCATION '/x'", SQL_TX_NEVER, "CREATE TABLESPACE" },
                { "DROP TABLESPACE s", SQL_TX_NEVER, "DROP TABLESPACE" },
                { "ALTER SYSTEM SET work_mem = '64MB'", SQL_TX_NEVER, "ALTER SYSTEM" },
                { "ALTER DATABASE d SET TABLESPACE s", SQL_TX_NEVER, "ALTER DATABASE ... SET TABLESPACE" },
                { "ALTER TABLE p DETACH PARTITION p1 CONCURRENTLY", SQL_TX_NEVER,
                  "ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY" },
                { "CLUSTER", SQL_TX_NEVER, "CLUSTER without a table name" },
                { "CLUSTER VERBOSE", SQL_TX_NEVER, "CLUSTER without a table name" },
                { "DISCARD ALL", SQL_TX_NEVER, "DISCARD ALL" },
                { "CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p", SQL_TX_NEVER, "CREATE SUBSCRIPTION" },
                { "ALTER SUBSCRIPTION s REFRESH PUBLICATION", SQL_TX_NEVER, "ALTER SUBSCRIPTION ... REFRESH PUBLICATION" },
                { "ALTER TYPE mood ADD VALUE IF NOT EXISTS 'meh' AFTER 'ok'", SQL_TX_NEVER_BEFORE_12,
                  "ALTER TYPE ... ADD VALUE" },
                { "SET lock_timeout = '5s'", SQL_TX_SESSION, NULL },
                { "set search_path to app, public", SQL_TX_SESSION, NULL },
                { "RESET ALL", SQL_TX_SESSION, NULL },
                { "SHOW server_version", SQL_TX_SESSION, NULL },
                { "SET LOCAL lock_timeout = '5s'", SQL_TX_ANY, NULL },
                { "SET CONSTRAINTS ALL DEFERRED", SQL_TX_ANY, NULL },
                { "CREATE INDEX i ON t (a)", SQL_TX_ANY, NULL },
                { "CREATE INDEX \"concurrently\" ON t (a)", SQL_TX_ANY, NULL },
                { "CREATE TABLE concurrently_t (a int)", SQL_TX_ANY, NULL },
                { "CLUSTER t USING t_pkey", SQL_TX_ANY, NULL },
                { "REINDEX TABLE t", SQL_TX_ANY, NULL },
                { "ALTER TABLE p DETACH PARTITION p1", SQL_TX_ANY, NULL },
                { "ALTER TYPE comp ADD ATTRIBUTE a int", SQL_TX_ANY, NULL },
                { "ALTER DATABASE d SET work_mem = '1MB'", SQL_TX_ANY, NULL },
                { "CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p WITH (connect = false)", SQL_TX_ANY, NULL },
                { "DISCARD PLANS", SQL_TX_ANY, NULL },
                { "SELECT 'VACUUM'", SQL_TX_ANY, NULL },
                { "ANALYZE t", SQL_TX_ANY, NULL },
                { "INSERT INTO t VALUES ('CREATE INDEX CONCURRENTLY')", SQL_TX_ANY, NULL },
        };
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
                struct sql_stmt *v = NULL;
                size_t n = 0;
                const char *what = NULL;
                char e[256] = "";
                ck_assert_msg(sqlsplit(t[i].sql, strlen(t[i].sql), &v, &n, e, sizeof(e)) == 0, "%s", e);
                ck_assert_uint_eq(n, 1);
                ck_assert_msg(sqlsplit_transaction_kind(t[i].sql, &v[0], &what) == t[i].kind, "%s: kind %d, want %d",
                              t[i].sql, sqlsplit_transaction_kind(t[i].sql, &v[0], NULL), t[i].kind);
                if (t[i].what)
                        ck_assert_msg(what && strcmp(what, t[i].what) == 0, "%s: '%s', want '%s'", t[i].sql,
                                      what ?: "(null)", t[i].what);
                free(v);
        }
}
END_TEST

START_TEST(test_directives) {
        /* Found by the lexer: after a block comment too, never inside strings or bodies. */
        const char *sql = "/* Licence: MIT\n * -- coord:not-this (inside the block comment)\n */\n"
                          "-- coord:no-transaction\n--COORD:Lock-Timeout 5s\r\n"
                          "/* coord:block */\n"
                          "CREATE TABLE t (a text DEFAULT '-- coord:in-a-string');\n"
                          "DO $$ BEGIN -- coord:in-a-body\nEND $$;\n"
                          "SELECT 1; -- coord:trailing\n";
        struct sql_script sc = {};
        char e[256] = "";

        ck_assert_int_eq(sqlsplit_script(sql, strlen(sql), &sc, e, sizeof(e)), 0);
        ck_assert_uint_eq(sc.n_stmts, 3);
        ck_assert_uint_eq(sc.n_directives, 4);
        ck_assert_uint_eq(sc.directives[0].line, 4);
        ck_assert(sc.directives[0].leading && !sc.directives[0].block);
        ck_assert_int_eq(memcmp(sql + sc.directives[0].offset, "coord:no-transaction\n", sc.directives[0].len + 1), 0);
        ck_assert_uint_eq(sc.directives[1].line, 5);
        ck_assert_int_eq(memcmp(sql + sc.directives[1].offset, "COORD:Lock-Timeout 5s\r", sc.directives[1].len + 1), 0);
        ck_assert_uint_eq(sc.directives[2].line, 6);
        ck_assert(sc.directives[2].leading && sc.directives[2].block);
        ck_assert_uint_eq(sc.directives[3].line, 10);
        ck_assert(!sc.directives[3].leading);
        sqlsplit_script_done(&sc);
}
END_TEST

static void add_tests(TCase *tc) {
        tcase_add_loop_test(tc, test_table, 0, sizeof cases / sizeof cases[0]);
        tcase_add_test(tc, test_unterminated);
        tcase_add_test(tc, test_position_line);
        tcase_add_test(tc, test_transaction_control);
        tcase_add_test(tc, test_copy_data);
        tcase_add_test(tc, test_copy_row_line);
        tcase_add_test(tc, test_transaction_kind);
        tcase_add_test(tc, test_directives);
}

TEST_MAIN("sqlsplit", add_tests)
