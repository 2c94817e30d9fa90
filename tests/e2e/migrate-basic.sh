# coordctl migrate: apply/status/plan/validate/baseline/repair, exit codes, failing
# migrations leave nothing behind, bad names, lock wait timeout, advisory fallback.
. "$top_srcdir/tests/e2e/migrate-lib.sh"
migrate_init --redis --no-coord-redis
# A password in the URL (trust auth ignores it) must never be printed.
DB="postgresql://postgres:s3cretPW@127.0.0.1:$PG_PORT/postgres"

# --- usage and bad input: exit 2, naming the culprit --------------------------------------------
expect_rc 2 "$O" --database "$DB"
expect_in "$O" "--dir DIR is required"
expect_rc 2 "$O" frobnicate --dir "$D" --database "$DB"
expect_in "$O" "unknown subcommand 'frobnicate'"
expect_rc 2 "$O" --dir "$D" --database "$DB" --wait-timeout 10
expect_in "$O" "--wait-timeout: '10' is not a duration"
(unset DATABASE_URL; expect_rc 2 "$O" --dir "$D") || exit 1
expect_in "$O" "DATABASE_URL"

mkdir -p "$T/bad1" "$T/bad2" "$T/bad3"
mig "$T/bad1" V1__ok.sql "SELECT 1;"
mig "$T/bad1" V2_oops.sql "SELECT 2;"
expect_rc 2 "$O" --dir "$T/bad1" --database "$DB"
expect_in "$O" "V2_oops.sql: not a migration file name"
mig "$T/bad2" V1__a.sql "SELECT 1;"
mig "$T/bad2" V1.0__b.sql "SELECT 1;"
expect_rc 2 "$O" status --dir "$T/bad2" --database "$DB"
expect_in "$O" "duplicate version"
mig "$T/bad3" V1__d.sql "-- coord:no-transation
SELECT 1;"
expect_rc 2 "$O" --dir "$T/bad3" --database "$DB"
expect_in "$O" "V1__d.sql:1: unknown directive 'coord:no-transation'"
expect_rc 2 "$O" --dir "$T/nonexistent" --database "$DB"
expect_in "$O" "$T/nonexistent"

# --- unreachable dependencies: exit 3, no secrets ------------------------------------------------
mig "$D" V1__users.sql "CREATE TABLE users (id serial PRIMARY KEY, name text);
INSERT INTO users (name) VALUES ('semi;colon'), (\$\$dollar;quoted\$\$);"
expect_rc 3 "$O" --dir "$D" --database "postgresql://postgres:s3cretPW@127.0.0.1:1/postgres"
expect_in "$O" "cannot connect to PostgreSQL"
expect_not_in "$O" "s3cretPW"
expect_rc 3 "$O" --dir "$D" --database "$DB" --redis "redis://:hunter2pw@127.0.0.1:1/0"
expect_not_in "$O" "hunter2pw"

# --- plan runs nothing; apply; idempotent -----------------------------------------------------------
mig "$D" V1.1__orders.sql "CREATE TABLE orders (id int, user_id int);"
mig "$D" V2_1__items.sql "-- coord:statement-timeout 30s
-- coord:lock-timeout 5s
CREATE TABLE items (id int);
CREATE FUNCTION item_count() RETURNS bigint LANGUAGE plpgsql AS \$fn\$
BEGIN
  RETURN (SELECT count(*) FROM items); -- a ; inside
END;
\$fn\$;"
mig "$D" V10__ten.sql "CREATE TABLE ten (id int);"
mig "$D" R__views.sql "CREATE OR REPLACE VIEW user_names AS SELECT name FROM users;"
mig "$D" S__admin.sql "INSERT INTO users (name) VALUES ('admin');"
expect_rc 0 "$O" plan --dir "$D" --database "$DB" --redis "$REDIS_URL"
expect_in "$O" "6 to apply."
[ "$(sed -n 1p "$O" | awk '{print $4}')" = V1__users.sql ] || { cat "$O"; fail "plan order"; }
[ "$(sed -n 3p "$O" | awk '{print $4}')" = V2_1__items.sql ] || { cat "$O"; fail "plan order: 2.1 before 10"; }
[ "$(q "SELECT to_regclass('users') IS NULL AND to_regclass('coord_schema_history') IS NULL")" = t ] ||
        fail "plan changed the database"

expect_rc 0 "$O" --dir "$D" --database "$DB" --redis "$REDIS_URL"
expect_in "$O" "applied 6 migrations"
expect_not_in "$O" "s3cretPW"
[ "$(q "SELECT count(*) FROM users")" = 3 ] || fail "seed/migration rows"
[ "$(q "SELECT item_count()")" = 0 ] || fail "function from a dollar-quoted body"
[ "$(q "SELECT string_agg(coalesce(version, type), ',' ORDER BY \"rank\") FROM coord_schema_history WHERE success")" = "1,1.1,2.1,10,repeatable,seed" ] ||
        fail "history: $(q "SELECT string_agg(coalesce(version, type), ',' ORDER BY \"rank\") FROM coord_schema_history")"
[ "$(q "SELECT count(DISTINCT fencing_token) FROM coord_schema_history WHERE fencing_token > 0")" = 1 ] || fail "fencing tokens"
expect_rc 0 "$O" --dir "$D" --database "$DB" --redis "$REDIS_URL"
expect_in "$O" "nothing to apply"

# --- a failing migration: exit 1, no trace, file + line + SQLSTATE ------------------------------------
mig "$D" V11__bad.sql "CREATE TABLE eleven (id int);
INSERT INTO eleven VALUES (1);

INSERT INTO
  no_such_table VALUES (1);"
expect_rc 1 "$O" --dir "$D" --database "$DB" --redis "$REDIS_URL"
expect_in "$O" "V11__bad.sql: line 5: 42P01"
expect_in "$O" 'relation "no_such_table" does not exist'
expect_not_in "$O" "s3cretPW"
[ "$(q "SELECT to_regclass('eleven') IS NULL")" = t ] || fail "failed migration left its table"
[ "$(q "SELECT count(*) FROM coord_schema_history WHERE version = '11'")" = 0 ] || fail "failed migration left a history row"
rm "$D/V11__bad.sql"

# Several in one run: each commits on its own; a failure keeps the ones before it.  A
# deferred constraint fails at COMMIT: that migration is rolled back and named, the next
# one never starts.
mig "$D" V11__ok.sql "CREATE TABLE eleven_ok (id int);"
mig "$D" V11.5__deferred.sql "CREATE TABLE parent (id int PRIMARY KEY);
CREATE TABLE child (pid int REFERENCES parent DEFERRABLE INITIALLY DEFERRED);
INSERT INTO child VALUES (1);"
mig "$D" V11.6__after.sql "CREATE TABLE after_deferred (id int);"
expect_rc 1 "$O" --dir "$D" --database "$DB" --redis "$REDIS_URL"
expect_in "$O" "applied V11__ok.sql"
expect_in "$O" "V11.5__deferred.sql: commit failed: 23503"
expect_not_in "$O" "applied V11.5"
[ "$(q "SELECT to_regclass('eleven_ok') IS NOT NULL AND to_regclass('parent') IS NULL AND to_regclass('after_deferred') IS NULL")" = t ] ||
        fail "deferred-constraint failure: wrong schema"
[ "$(q "SELECT string_agg(version, ',' ORDER BY \"rank\") FROM coord_schema_history WHERE version LIKE '11%'")" = 11 ] ||
        fail "history after the deferred failure"
rm "$D/V11.5__deferred.sql" "$D/V11.6__after.sql"

# --- repeatable re-runs when changed; seeds skipped with --no-seed -----------------------------------
mig "$D" R__views.sql "CREATE OR REPLACE VIEW user_names AS SELECT name, id FROM users;"
mig "$D" S__admin.sql "INSERT INTO users (name) VALUES ('admin2');"
expect_rc 0 "$O" status --dir "$D" --database "$DB"
[ "$(grep -c ' changed ' "$O")" = 2 ] || { cat "$O"; fail "status should show 2 changed"; }
expect_rc 0 "$O" --dir "$D" --database "$DB" --redis "$REDIS_URL" --no-seed
expect_in "$O" "applied R__views.sql"
expect_not_in "$O" "S__admin.sql"
[ "$(q "SELECT count(*) FROM users WHERE name = 'admin2'")" = 0 ] || fail "--no-seed ran the seed"
expect_rc 0 "$O" --dir "$D" --database "$DB" --redis "$REDIS_URL"
expect_in "$O" "applied S__admin.sql"
[ "$(q "SELECT count(*) FROM users WHERE name = 'admin2'")" = 1 ] || fail "changed seed did not run"

# --- validate: changed or vanished applied files exit 4, and apply refuses -------------------------
expect_rc 0 "$O" validate --dir "$D" --database "$DB"
expect_in "$O" "validation passed"
cp "$D/V1.1__orders.sql" "$T/orders.bak"
echo "-- edited" >>"$D/V1.1__orders.sql"
mig "$D" V12__twelve.sql "CREATE TABLE twelve (id int);"
expect_rc 4 "$O" validate --dir "$D" --database "$DB"
expect_in "$O" "V1.1__orders.sql: changed"
expect_rc 4 "$O" plan --dir "$D" --database "$DB"
expect_in "$O" "apply would refuse to run"
expect_rc 4 "$O" --dir "$D" --database "$DB" --redis "$REDIS_URL"
expect_in "$O" "nothing applied"
[ "$(q "SELECT to_regclass('twelve') IS NULL")" = t ] || fail "apply ran despite a changed file"
mv "$T/orders.bak" "$D/V1.1__orders.sql"
mv "$D/V1.1__orders.sql" "$T/orders.sql"
expect_rc 4 "$O" validate --dir "$D" --database "$DB"
expect_in "$O" "V1.1__orders.sql: missing"
mv "$T/orders.sql" "$D/V1.1__orders.sql"
mig "$D" V1.5__late.sql "SELECT 1;"
expect_rc 4 "$O" validate --dir "$D" --database "$DB"
expect_in "$O" "out of order"
rm "$D/V1.5__late.sql"
expect_rc 0 "$O" validate --dir "$D" --database "$DB"
expect_rc 0 "$O" --dir "$D" --database "$DB" --redis "$REDIS_URL"
expect_in "$O" "applied V12__twelve.sql"

# An older release's directory (without the newest versions) still passes: those are "future".
mkdir -p "$T/old"
cp "$D"/V1__* "$D"/V1.1__* "$D"/V2_1__* "$D"/R__* "$D"/S__* "$T/old/"
expect_rc 0 "$O" status --dir "$T/old" --database "$DB"
[ "$(grep -c ' future ' "$O")" = 3 ] || { cat "$O"; fail "status should show 3 future (10, 11, 12)"; }
expect_rc 0 "$O" --dir "$T/old" --database "$DB" --redis "$REDIS_URL"

# --- a second schema: its own history and lock; baseline, failed no-transaction, repair, deleted ---
q "CREATE SCHEMA s2" >/dev/null
DB2="$DB?options=-csearch_path%3Ds2"
D2=$T/m2
mig "$D2" V3__old.sql "CREATE TABLE never_run (id int);"
mig "$D2" V5__at_baseline.sql "CREATE TABLE never_run2 (id int);"
expect_rc 0 "$O" baseline 5 --dir "$D2" --database "$DB2" --redis "$REDIS_URL"
expect_in "$O" "baselined at version 5"
expect_rc 1 "$O" baseline 6 --dir "$D2" --database "$DB2" --redis "$REDIS_URL"
mig "$D2" V6__notx.sql "-- coord:no-transaction
CREATE TABLE s2a (id int);
CREATE TABLE s2b (id int);
INSERT INTO s2_missing VALUES (1);"
expect_rc 1 "$O" --dir "$D2" --database "$DB2" --redis "$REDIS_URL"
expect_in "$O" "V6__notx.sql: line 4: 42P01"
[ "$(q "SELECT to_regclass('s2.s2b') IS NOT NULL AND to_regclass('s2.never_run') IS NULL")" = t ] || fail "no-transaction statements"
[ "$(q "SELECT count(*) FROM s2.coord_schema_history WHERE version = '6' AND NOT success")" = 1 ] || fail "failed record"
[ "$(q "SELECT count(*) FROM public.coord_schema_history WHERE version = '6'")" = 0 ] || fail "schemas mixed up"
expect_rc 1 "$O" --dir "$D2" --database "$DB2" --redis "$REDIS_URL"
expect_in "$O" "coordctl migrate repair"
expect_rc 4 "$O" validate --dir "$D2" --database "$DB2"
mig "$D2" V6__notx.sql "-- coord:no-transaction
CREATE TABLE IF NOT EXISTS s2a (id int);
CREATE TABLE IF NOT EXISTS s2b (id int);
CREATE TABLE s2_missing (id int);"
mig "$D2" V7__seven.sql "CREATE TABLE s2_seven (id int);"
mig "$D2" V8__eight.sql "CREATE TABLE s2_eight (id int);"
expect_rc 0 "$O" status --dir "$D2" --database "$DB2"
for s in baseline ignored failed pending; do
        grep -q " $s " "$O" || { cat "$O"; fail "status lacks state $s"; }
done
expect_rc 0 "$O" repair --dir "$D2" --database "$DB2" --redis "$REDIS_URL"
expect_rc 0 "$O" --dir "$D2" --database "$DB2" --redis "$REDIS_URL"
expect_in "$O" "applied 3 migrations"
[ "$(q "SELECT count(*) FROM s2.s2_missing")" = 0 ] || fail "repaired migration did not run"
rm "$D2/V7__seven.sql"
echo "-- changed" >>"$D2/V8__eight.sql"
mig "$D2" V9__nine.sql "SELECT 9;"
expect_rc 0 "$O" status --dir "$D2" --database "$DB2"
for s in baseline ignored applied missing changed pending; do
        grep -q " $s " "$O" || { cat "$O"; fail "status lacks state $s"; }
done
expect_in "$O" "6 migrations:"
expect_rc 0 "$O" repair --dir "$D2" --database "$DB2" --redis "$REDIS_URL"
expect_in "$O" "V7__seven.sql: marked deleted"
expect_in "$O" "V8__eight.sql: checksum realigned"
expect_rc 0 "$O" validate --dir "$D2" --database "$DB2"
expect_rc 0 "$O" status --dir "$D2" --database "$DB2"
grep -q " deleted " "$O" || { cat "$O"; fail "status lacks state deleted"; }
# JSON output
"$COORDCTL" --output json migrate status --dir "$D2" --database "$DB2" >"$O"
expect_in "$O" '"state": "deleted"'
expect_in "$O" '"command": "status"'

# --- lock wait timeout: exit 5 naming the holder; advisory fallback ----------------------------------
mig "$D" V13__slow.sql "SELECT pg_sleep(3);"
harness_spawn slow "$COORDCTL" migrate --dir "$D" --database "$DB" --redis "$REDIS_URL"
harness_wait_for 10 sh -c "psql -XAtq '$DATABASE_URL' -c \"SELECT 1 FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(3)%'\" | grep -q 1" ||
        fail "slow migration did not start"
expect_rc 5 "$O" --dir "$D" --database "$DB" --redis "$REDIS_URL" --wait-timeout 500ms
expect_in "$O" "timed out"
expect_in "$O" "pid $PID_slow"
wait "$PID_slow" || fail "slow runner failed: $(cat "$T/slow.log")"

mig "$D" V14__advisory.sql "SELECT pg_sleep(2);"
harness_spawn adv "$COORDCTL" migrate --dir "$D" --database "$DB"
harness_wait_for 10 sh -c "psql -XAtq '$DATABASE_URL' -c \"SELECT 1 FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(2)%'\" | grep -q 1" ||
        fail "advisory runner did not start"
expect_rc 5 "$O" --dir "$D" --database "$DB" --wait-timeout 300ms
expect_in "$O" "advisory lock fallback"
expect_in "$O" "held by PostgreSQL session pid"
wait "$PID_adv" || fail "advisory runner failed: $(cat "$T/adv.log")"
grep -q "advisory lock fallback" "$T/adv.log" || fail "the fallback is not logged"
grep -q "The previous migration runner (.*) used the Redis lock, this one the advisory fallback" "$T/adv.log" ||
        { cat "$T/adv.log"; fail "mixing Redis and advisory runners is not warned about"; }
[ "$(q "SELECT count(*) FROM coord_schema_history WHERE version IN ('13', '14')")" = 2 ] || fail "13/14 not applied"
# --- an ordinary role (no superuser rights) in its own schema ("$user" in search_path) -------------
q "CREATE ROLE app LOGIN; CREATE SCHEMA AUTHORIZATION app" >/dev/null
DBA="postgresql://app@127.0.0.1:$PG_PORT/postgres"
D3=$T/m3
mig "$D3" V1__app.sql "CREATE TABLE app_t (id int);"
mig "$D3" V2__idx.sql "-- coord:no-transaction
CREATE INDEX CONCURRENTLY app_t_id ON app_t (id);"
expect_rc 0 "$O" --dir "$D3" --database "$DBA" --redis "$REDIS_URL"
expect_in "$O" "applied 2 migrations"
[ "$(q "SELECT count(*) FROM app.coord_schema_history WHERE installed_by LIKE 'app@%'")" = 2 ] || fail "app history"
expect_rc 0 "$O" --dir "$D3" --database "$DBA"
expect_in "$O" "nothing to apply"
echo "migrate-basic: ok"
