# coordctl migrate on real-world migration sets: statements PostgreSQL refuses in a
# transaction run without one (no directive needed) and a file mixing them with
# transactional ones is refused; COPY ... FROM STDIN data blocks (pg_dump's format) load
# exactly as psql -f loads them, and a bad data row is named by its line; directives
# after a licence block comment count, misplaced ones are errors; validate and status
# refuse what apply refuses; SET standard_conforming_strings = off is followed.
. "$top_srcdir/tests/e2e/migrate-lib.sh"
harness_init
harness_start_postgres
unset COORD_REDIS || true
T=$COORD_TEST_DIR
O=$T/out

# db NAME: a fresh database, its URL on stdout.  Each part below has its own: its own history.
db() {
        q "CREATE DATABASE $1" >/dev/null
        echo "postgresql://postgres@127.0.0.1:$PG_PORT/$1"
}

# dq SQL: one value from the current part's database.
dq() {
        psql -X -q -A -t -v ON_ERROR_STOP=1 "$DB" -c "$1"
}

# every_command_refuses DIR TEXT: plan, apply, validate and status all exit 2 naming TEXT.
every_command_refuses() {
        for cmd in plan apply validate status; do
                expect_rc 2 "$O" "$cmd" --dir "$1" --database "$DB"
                expect_in "$O" "$2"
                expect_not_in "$O" "validation passed"
        done
}

# --- CREATE INDEX CONCURRENTLY without a directive: detected, runs without a transaction -------------
D=$T/cic
DB=$(db cic)
mig "$D" V1__big.sql "CREATE TABLE big AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 20000) g;"
mig "$D" V2__index.sql "-- Indexes on a live table (no directive: coord sees they need it).
SET lock_timeout = '10s';
CREATE INDEX CONCURRENTLY big_v ON big (v);
create unique index concurrently if not exists big_id on big (id);
RESET lock_timeout;"
expect_rc 0 "$O" plan --dir "$D" --database "$DB"
grep "V2__index.sql" "$O" | grep -qF "no transaction (detected: CREATE INDEX CONCURRENTLY at line 3)" ||
        { cat "$O"; fail "plan does not say V2 runs without a transaction"; }
grep "V1__big.sql" "$O" | grep -q "no transaction" && { cat "$O"; fail "plan: V1 runs in a transaction"; }
"$COORDCTL" --output json migrate plan --dir "$D" --database "$DB" >"$O"
expect_in "$O" '"no_transaction": "detected: CREATE INDEX CONCURRENTLY at line 3"'
expect_in "$O" '"no_transaction": null'
expect_rc 0 "$O" --dir "$D" --database "$DB"
expect_in "$O" "applied 2 migrations"
expect_in "$O" "V2__index.sql (no transaction: statement by statement)"
for i in big_v big_id; do
        [ "$(dq "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = '$i'")" = t ] ||
                fail "index $i missing or invalid"
done
[ "$(dq "SELECT count(*) FROM coord_schema_history WHERE version = '2' AND success")" = 1 ] || fail "V2 history"
[ "$(dq "SELECT count(*) FROM coord_schema_progress")" = 0 ] || fail "V2 progress left behind"

# --- a file mixing them with statements that belong in a transaction: refused by every command --------
D=$T/mixed
DB=$(db mixed)
mig "$D" V1__mixed.sql "-- A table and its index in one file.
CREATE TABLE mixed (a int);
SET lock_timeout = '5s';
CREATE INDEX CONCURRENTLY mixed_a ON mixed (a);"
every_command_refuses "$D" "V1__mixed.sql:4: CREATE INDEX CONCURRENTLY cannot run inside a transaction, and line 2 (CREATE TABLE) should not run outside one"
expect_in "$O" "-- coord:no-transaction"
[ "$(dq "SELECT to_regclass('mixed') IS NULL")" = t ] || fail "the refused file ran"

# The directive allows it, also after a licence block comment (it used to be ignored there).
mig "$D" V1__mixed.sql "/*
 * Copyright 2024 Example Ltd.  Licensed under the MIT licence.
 */
-- coord:no-transaction
CREATE TABLE mixed (a int);
CREATE INDEX CONCURRENTLY mixed_a ON mixed (a);"
expect_rc 0 "$O" plan --dir "$D" --database "$DB"
expect_in "$O" "no transaction (-- coord:no-transaction)"
expect_rc 0 "$O" --dir "$D" --database "$DB"
expect_in "$O" "applied V1__mixed.sql"
[ "$(dq "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'mixed_a'")" = t ] ||
        fail "index mixed_a missing or invalid"

# --- misplaced or misspelled directives: exit 2 naming the line; inside strings: not comments ----------
D=$T/late
DB=$(db late)
mig "$D" V1__late.sql "CREATE TABLE late (a int);
-- coord:no-transactoin
CREATE INDEX late_a ON late (a);"
every_command_refuses "$D" "V1__late.sql:2: directive 'coord:no-transactoin' after the first statement (line 1)"
mig "$D" V1__late.sql "/* coord:no-transaction */
CREATE TABLE late (a int);"
every_command_refuses "$D" "V1__late.sql:1: 'coord:no-transaction' in a block comment"
mig "$D" V1__late.sql "CREATE TABLE late (a text DEFAULT '-- coord:no-transaction');
CREATE FUNCTION late_f() RETURNS int LANGUAGE sql AS \$\$
-- coord:post-deploy (a comment inside the body: not a directive)
SELECT 1
\$\$;"
expect_rc 0 "$O" validate --dir "$D" --database "$DB"
expect_rc 0 "$O" --dir "$D" --database "$DB"
[ "$(dq "SELECT late_f()")" = 1 ] || fail "late_f"

# --- validate and status refuse what apply refuses (a CI step running validate catches it) -------------
D=$T/ci
DB=$(db ci)
mig "$D" V1__ok.sql "CREATE TABLE ci_ok (a int);"
mig "$D" V2__broken.sql "INSERT INTO ci_ok VALUES (1);
SELECT 'unterminated;"
every_command_refuses "$D" "V2__broken.sql: unterminated quoted string starting at line 2"
mig "$D" V2__broken.sql "SELECT 1;
\\connect other"
every_command_refuses "$D" "V2__broken.sql: line 2: psql meta-command '\\connect' is not SQL"
[ "$(dq "SELECT to_regclass('ci_ok') IS NULL")" = t ] || fail "a refused directory ran"

# --- COPY ... FROM STDIN: pg_dump's data format, loaded exactly as psql -f loads it ----------------------
D=$T/copy
DB=$(db copy)
mig "$D" V1__people.sql "CREATE TABLE people (id int PRIMARY KEY, name text, note text, n numeric);"
{
        printf '%s\n' "-- Data in pg_dump's format: tabs between columns, \\N for NULL." \
                "SET standard_conforming_strings = on;" \
                "COPY public.people (id, name, note, n) FROM stdin;"
        # 5000 rows: quotes, backslashes (\\), escapes (\t, \n), NULLs (\N), UTF-8, and text
        # that would be SQL if it were lexed (';', '--', '/*', $$, E'', a field starting \.).
        awk 'BEGIN {
                split("O'"'"'Brien|back\\\\slash|tab\\there|two\\nlines|\\N|naïve café ☕|semi;colon -- not /* a comment|$$dollar$$|E'"'"'x'"'"'|\\\\.x", names, "|");
                for (i = 1; i <= 5000; i++)
                        printf "%d\t%s\t%s\t%s\n", i, names[i % 10 + 1], (i % 7 == 0 ? "\\N" : "note " i), (i % 3 == 0 ? "\\N" : i / 8);
        }'
        printf '%s\n' '\.' "INSERT INTO people VALUES (0, 'after the data', NULL, NULL);"
} >"$D/V2__people_data.sql"
[ "$(grep -c "O'Brien" "$D/V2__people_data.sql")" = 500 ] || fail "test data"
expect_rc 0 "$O" validate --dir "$D" --database "$DB"
expect_rc 0 "$O" --dir "$D" --database "$DB"
expect_in "$O" "applied 2 migrations"
REF=$(db copy_ref)
psql -X -q -v ON_ERROR_STOP=1 "$REF" -f "$D/V1__people.sql" -f "$D/V2__people_data.sql" >"$T/psql.out" 2>&1 ||
        { cat "$T/psql.out"; fail "psql -f"; }
psql -XAtq "$DB" -c "COPY (SELECT * FROM people ORDER BY id) TO STDOUT" >"$T/coord.copy"
psql -XAtq "$REF" -c "COPY (SELECT * FROM people ORDER BY id) TO STDOUT" >"$T/psql.copy"
[ "$(wc -l <"$T/coord.copy")" = 5001 ] || fail "rows: $(wc -l <"$T/coord.copy")"
cmp -s "$T/coord.copy" "$T/psql.copy" || { diff "$T/coord.copy" "$T/psql.copy" | head >&2; fail "coord and psql -f loaded different data"; }
[ "$(dq "SELECT count(*) FROM people WHERE name = 'O''Brien'")" = 500 ] || fail "O'Brien"
[ "$(dq "SELECT count(*) FROM people WHERE name = E'back\\\\slash' AND note IS NOT NULL")" -gt 0 ] || fail "backslash"
[ "$(dq "SELECT count(*) FROM people WHERE name = E'tab\\there'")" = 500 ] || fail "tab"
[ "$(dq "SELECT count(*) FROM people WHERE name IS NULL")" = 500 ] || fail "NULL"

# A bad data row: exit 1 naming its line in the file; the transaction leaves nothing behind.
mig "$D" V3__more.sql "CREATE TABLE more (id int, n int);
COPY more (id, n) FROM stdin;
1	10
2	20
3	thirty
4	40
\\.
INSERT INTO more VALUES (5, 50);"
expect_rc 1 "$O" --dir "$D" --database "$DB"
expect_in "$O" 'V3__more.sql: line 5: 22P02: invalid input syntax for type integer: "thirty" (COPY more, line 3, column n: "thirty")'
[ "$(dq "SELECT to_regclass('more') IS NULL")" = t ] || fail "the failed COPY migration left its table"
# CSV with a quoted field spanning lines: rows are counted as PostgreSQL counts them.
mig "$D" V3__more.sql "CREATE TABLE more (id int, note text);
COPY more FROM stdin WITH (FORMAT csv, HEADER true);
id,note
1,\"two
lines\"
x,bad
\\."
expect_rc 1 "$O" --dir "$D" --database "$DB"
expect_in "$O" "V3__more.sql: line 6: 22P02: invalid input syntax for type integer: \"x\" (COPY more, line 4, column id: \"x\")"
# The same in a file that runs without a transaction: the error names the line; COPY itself
# is atomic, so no row of it is loaded (the table created before it stays, as always there).
mig "$D" V3__more.sql "-- coord:no-transaction
CREATE TABLE more (id int, n int);
COPY more (id, n) FROM stdin;
1	10
2	x
\\."
expect_rc 1 "$O" --dir "$D" --database "$DB"
expect_in "$O" "V3__more.sql: line 5: 22P02"
[ "$(dq "SELECT count(*) FROM more")" = 0 ] || fail "a failed COPY loaded rows"
dq "DROP TABLE more" >/dev/null
expect_rc 0 "$O" repair --dir "$D" --database "$DB"
mig "$D" V3__more.sql "-- coord:no-transaction
CREATE TABLE more (id int, n int);
COPY more (id, n) FROM stdin;
1	10
2	20
\\.
CREATE INDEX CONCURRENTLY more_id ON more (id);"
expect_rc 0 "$O" --dir "$D" --database "$DB"
[ "$(dq "SELECT sum(n) FROM more")" = 30 ] || fail "no-transaction COPY"

# --- a real pg_dump (with its \restrict lines) applies, and dumps back the same -----------------------
SRC=$(db dump_src)
psql -X -q -v ON_ERROR_STOP=1 "$SRC" >/dev/null <<'EOF'
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE actor (actor_id serial PRIMARY KEY, first_name text NOT NULL, last_name text NOT NULL,
                    last_update timestamptz NOT NULL DEFAULT now(), mood mood, tags text[], doc jsonb);
CREATE INDEX idx_actor_last_name ON actor (last_name);
INSERT INTO actor (first_name, last_name, mood, tags, doc)
SELECT 'First' || g, CASE g % 4 WHEN 0 THEN 'O''Brien' WHEN 1 THEN E'back\\slash' WHEN 2 THEN E'tab\tand\nnewline' ELSE 'Ünïcødé' END,
       (ARRAY['sad', 'ok', 'happy', NULL])[g % 4 + 1]::mood, ARRAY['a;b', E'c\\d', NULL], jsonb_build_object('k', g, 'q', 'it''s')
FROM generate_series(1, 3000) g;
CREATE VIEW happy_actors AS SELECT * FROM actor WHERE mood = 'happy';
CREATE FUNCTION actor_count() RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
  RETURN (SELECT count(*) FROM actor); -- a ; inside
END;
$$;
EOF
D=$T/dump
mkdir -p "$D"
pg_dump --no-owner --no-privileges "$SRC" >"$D/V1__pagila_like.sql"
grep -q '^\\restrict ' "$D/V1__pagila_like.sql" || note "this pg_dump writes no \\restrict line"
grep -q '^COPY public.actor .* FROM stdin;$' "$D/V1__pagila_like.sql" || fail "pg_dump wrote no COPY"
DST=$(db dump_dst)
expect_rc 0 "$O" --dir "$D" --database "$DST"
expect_in "$O" "applied 1 migration"
pg_dump --no-owner --no-privileges "$SRC" | grep -v '^\\\(un\)\?restrict ' >"$T/src.sql"
pg_dump --no-owner --no-privileges -T 'coord_schema_*' "$DST" | grep -v '^\\\(un\)\?restrict ' >"$T/dst.sql"
cmp -s "$T/src.sql" "$T/dst.sql" || { diff "$T/src.sql" "$T/dst.sql" | head -20 >&2; fail "the dump did not round-trip"; }

# --- SET standard_conforming_strings = off: followed as psql follows it -----------------------------
D=$T/scs
DB=$(db scs)
mig "$D" V1__old_dump.sql "CREATE TABLE quotes (id int, s text);
SET standard_conforming_strings = off;
INSERT INTO quotes VALUES (1, 'it\\'s; one string'), (2, 'back\\\\slash');
SET standard_conforming_strings = on;
INSERT INTO quotes VALUES (3, 'C:\\');"
expect_rc 0 "$O" validate --dir "$D" --database "$DB"
expect_rc 0 "$O" --dir "$D" --database "$DB"
[ "$(dq "SELECT string_agg(s, '|' ORDER BY id) FROM quotes")" = "it's; one string|back\\slash|C:\\" ] ||
        fail "standard_conforming_strings: $(dq "SELECT string_agg(s, '|' ORDER BY id) FROM quotes")"
mig "$D" V2__bad_setting.sql "SELECT set_config('standard_conforming_strings', 'off', false);"
every_command_refuses "$D" "V2__bad_setting.sql: line 1: set_config('standard_conforming_strings', ...)"
rm "$D/V2__bad_setting.sql"

echo "migrate-realworld: ok"
