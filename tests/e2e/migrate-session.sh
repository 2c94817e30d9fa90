# Session state does not leak from one migration file to the next: every file
# starts from the session a new connection has (as with psql, one session per
# file), and coord's own settings and history writes are out of a migration's
# reach: SET search_path, a pg_dump header (set_config('search_path', '', false),
# idle_in_transaction_session_timeout = 0, ...), SET ROLE, SET SESSION
# AUTHORIZATION, session_replication_role = replica, temporary tables, in
# transactional and no-transaction files, as superuser and as a plain owner.
. "$top_srcdir/tests/e2e/migrate-lib.sh"
migrate_init
q "CREATE ROLE app_owner NOLOGIN" >/dev/null
q "GRANT CREATE ON SCHEMA public TO app_owner" >/dev/null

# What each file sees when it starts, recorded by the file itself.
SEEN="INSERT INTO seen SELECT '%s', current_user, session_user, current_setting('search_path'),
  current_setting('idle_in_transaction_session_timeout'), current_setting('session_replication_role'),
  current_setting('statement_timeout'), to_regclass('scratch') IS NOT NULL;"
seen() {
        # shellcheck disable=SC2059
        printf "$SEEN" "$1"
}

mig "$D" V1__search_path.sql "CREATE TABLE seen (file text, usr text, sess text, search_path text, idle text,
  replication_role text, statement_timeout text, temp_visible boolean);
CREATE TABLE prepared_log (n int);
CREATE SCHEMA other;
GRANT USAGE, CREATE ON SCHEMA other TO app_owner;
SET search_path = other;
CREATE TABLE t1 (id int);
CREATE TEMP TABLE scratch (id int);"
mig "$D" V2__after_search_path.sql "$(seen V2)
CREATE TABLE t2 (id int);"
# The header pg_dump writes (a dump used as a baseline is common): the corpus's.
mig "$D" V3__dump.sql "$(sed -n '/^SET statement_timeout = 0;$/,/^SET row_security = off;$/p' \
        "$top_srcdir/tests/e2e/corpus/shop-baseline/V1__baseline.sql")
SET statement_timeout = '1h';
CREATE TABLE public.dumped (id integer);"
mig "$D" V4__after_dump.sql "$(seen V4)
CREATE TABLE t4 (id int);"
mig "$D" V5__role.sql "SET ROLE app_owner;
CREATE TABLE owned (id int);"
mig "$D" V6__after_role.sql "$(seen V6)
CREATE TABLE t6 (id int);"
mig "$D" V7__authorization.sql "SET SESSION AUTHORIZATION app_owner;
CREATE TABLE owned2 (id int);"
mig "$D" V8__after_authorization.sql "$(seen V8)"
# No-transaction: the file's own state lasts from statement to statement (as in psql),
# coord's progress writes in between are not affected by it, the next file starts clean.
mig "$D" V9__notx_role.sql "-- coord:no-transaction
SET ROLE app_owner;
SET search_path = other;
CREATE TABLE notx_owned (id int);
CREATE INDEX CONCURRENTLY notx_owned_id ON notx_owned (id);
SET idle_in_transaction_session_timeout = 0;
SELECT pg_catalog.set_config('search_path', '', false);"
mig "$D" V10__after_notx.sql "$(seen V10)
CREATE TABLE t10 (id int);"
mig "$D" V11__replica.sql "SET session_replication_role = replica;
CREATE TABLE parent (id int PRIMARY KEY);
CREATE TABLE child (parent_id int REFERENCES parent);"
mig "$D" V12__after_replica.sql "$(seen V12)"
# Long enough for the pipeline to wait for coord between chunks: coord's idle timeout is
# in force again there, whatever the file set.
mig "$D" V12.1__chunks.sql "SET idle_in_transaction_session_timeout = 0;
$(for _ in $(seq 1 80); do echo "SELECT 1;"; done)
$(seen V12.1)"
# Prepared statements do not outlive their file (the same name again works, as with psql),
# and a file that deallocates everything (even DISCARD ALL) does not break coord's own.
mig "$D" V12.2__prepare.sql "PREPARE ins (int) AS INSERT INTO prepared_log VALUES (\$1);
EXECUTE ins(1);"
mig "$D" V12.3__prepare_again.sql "PREPARE ins (int) AS INSERT INTO prepared_log VALUES (\$1 * 10);
EXECUTE ins(2);"
mig "$D" V12.4__deallocate.sql "DEALLOCATE ALL;
INSERT INTO prepared_log VALUES (3);"
mig "$D" V12.5__discard.sql "-- coord:no-transaction
DISCARD ALL;
INSERT INTO prepared_log VALUES (4);"
mig "$D" V12.6__after_discard.sql "$(seen V12.6)"
# Deallocated where coord cannot see it coming: that migration runs again, with unnamed statements.
mig "$D" V12.7__dynamic_deallocate.sql "DO \$\$ BEGIN EXECUTE 'DEALLOCATE ALL'; END \$\$;
INSERT INTO prepared_log VALUES (5);"
mig "$D" V12.8__after_dynamic.sql "INSERT INTO prepared_log VALUES (6);"
expect_rc 0 "$O" --dir "$D" --database "$DATABASE_URL"
expect_in "$O" "applied 20 migrations"
expect_in "$O" "V12.7__dynamic_deallocate.sql deallocated coord's prepared statements: running it again"
[ "$(q "SELECT string_agg(n::text, ' ' ORDER BY n) FROM prepared_log")" = "1 3 4 5 6 20" ] ||
        fail "prepared_log: $(q "SELECT string_agg(n::text, ' ') FROM prepared_log")"

[ "$(q "SELECT string_agg(n.nspname || '.' || c.relname, ' ' ORDER BY c.relname) FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname IN ('t1', 't2', 't4', 't6', 't10')")" = \
        "other.t1 public.t10 public.t2 public.t4 public.t6" ] ||
        fail "tables landed in: $(q "SELECT string_agg(n.nspname || '.' || c.relname, ' ') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname LIKE 't%' AND c.relkind = 'r'")"
# Every later file saw the session of a new connection: the login role, the default
# search_path and replication role, coord's idle timeout (lease 15s / 3), no temp table.
bad=$(q "SELECT file || ': ' || concat_ws(', ', usr, sess, search_path, idle, replication_role, statement_timeout,
        temp_visible) FROM seen WHERE usr <> 'postgres' OR sess <> 'postgres' OR search_path <> '\"\$user\", public'
        OR idle <> '5s' OR replication_role <> 'origin' OR statement_timeout <> '0' OR temp_visible")
[ -z "$bad" ] || fail "session state leaked into: $bad"
[ "$(q "SELECT count(*) FROM seen")" = 8 ] || fail "seen: $(q "SELECT count(*) FROM seen") rows"
# Within the no-transaction file its SET ROLE and search_path held for its later statements.
[ "$(q "SELECT n.nspname || ' ' || pg_get_userbyid(c.relowner) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = 'notx_owned'")" = "other app_owner" ] ||
        fail "notx_owned: $(q "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'notx_owned'")"
[ "$(q "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'owned'")" = app_owner ] || fail "owned not by app_owner"
[ "$(q "SELECT count(*) FROM coord_schema_history WHERE success")" = 20 ] || fail "history rows"
[ "$(q "SELECT count(*) FROM coord_schema_progress")" = 0 ] || fail "progress left behind"

# session_replication_role = replica in one file does not disable foreign keys in the next:
# the orphan row is refused, as psql refuses it.
mig "$D" V13__orphan.sql "INSERT INTO child VALUES (42);"
expect_rc 1 "$O" --dir "$D" --database "$DATABASE_URL"
expect_in "$O" "V13__orphan.sql: line 1: 23503"
[ "$(q "SELECT count(*) FROM child")" = 0 ] || fail "an orphan row was committed"
rm "$D/V13__orphan.sql"

# The same for a runner that is no superuser (SET SESSION AUTHORIZATION DEFAULT is
# always allowed), with a no-transaction file that changes role and fails: its
# failure is recorded (a coord write after SET ROLE) and said once.
q "CREATE ROLE migrator LOGIN" >/dev/null
q "CREATE ROLE app_owner2 NOLOGIN" >/dev/null
q "GRANT app_owner2 TO migrator" >/dev/null
q "CREATE DATABASE plain OWNER migrator" >/dev/null
psql -XAtq "postgresql://postgres@127.0.0.1:$PG_PORT/plain" -c "GRANT CREATE ON SCHEMA public TO app_owner2, migrator" >/dev/null
P="postgresql://migrator@127.0.0.1:$PG_PORT/plain"
D2=$T/m2
mig "$D2" V1__role.sql "SET ROLE app_owner2;
SET search_path = '';
CREATE TABLE public.a (id int);"
mig "$D2" V2__b.sql "CREATE TABLE b (id int);"
mig "$D2" V3__notx.sql "-- coord:no-transaction
SET ROLE app_owner2;
CREATE TABLE c (id int);
CREATE INDEX CONCURRENTLY c_id ON c (id);
CREATE INDEX CONCURRENTLY nope_id ON nope (id);"
expect_rc 1 "$O" --dir "$D2" --database "$P"
expect_in "$O" "V3__notx.sql: line 5: 42P01"
[ "$(psql -XAtq "$P" -c "SELECT string_agg(relname || ':' || pg_get_userbyid(relowner), ' ' ORDER BY relname) FROM pg_class WHERE relname IN ('a', 'b', 'c')")" = \
        "a:app_owner2 b:migrator c:app_owner2" ] || fail "owners: $(psql -XAtq "$P" -c "SELECT string_agg(relname || ':' || pg_get_userbyid(relowner), ' ') FROM pg_class WHERE relname IN ('a', 'b', 'c')")"
[ "$(psql -XAtq "$P" -c "SELECT count(*) FROM coord_schema_history WHERE version = '3' AND NOT success")" = 1 ] ||
        fail "the no-transaction failure was not recorded"
[ "$(psql -XAtq "$P" -c "SELECT done FROM coord_schema_progress WHERE script = 'V3__notx.sql'")" = 3 ] ||
        fail "progress of V3: $(psql -XAtq "$P" -c "SELECT done FROM coord_schema_progress")"
# The next run refuses, saying the state and the file once.
expect_rc 1 "$O" --dir "$D2" --database "$P"
expect_in "$O" "V3__notx.sql: failed (line 5: 42P01: relation \"nope\" does not exist); fix the schema by hand"
expect_not_in "$O" "failed: failed"
expect_not_in "$O" "(V3__notx.sql: line"
"$COORDCTL" migrate status --dir "$D2" --database "$P" >"$O" 2>&1 || true
expect_in "$O" "# failed (line 5: 42P01"
echo "migrate-session: ok"
