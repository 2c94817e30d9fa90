# kill -9 of the applying runner mid-migration: the next run completes with no
# manual step.  A transactional migration is rolled back and re-applied; a
# no-transaction one resumes after its last completed statement.
. "$top_srcdir/tests/e2e/migrate-lib.sh"
migrate_init --redis
ARGS="--dir $D --database $DATABASE_URL --redis $REDIS_URL --lease 2s --wait-timeout 30s"

mig "$D" V1__one.sql "CREATE TABLE one (id int);"
mig "$D" V2__tx.sql "CREATE TABLE crash_tx (id int);
INSERT INTO crash_tx VALUES (1);
SELECT pg_sleep(2.5);"
# shellcheck disable=SC2086
runner_sleeping a1 2.5 2 $ARGS
kill -KILL "$PID_a1"
start=$(now_ms)
# shellcheck disable=SC2086
expect_rc 0 "$O" $ARGS
expect_in "$O" "applied V2__tx.sql"
el=$(( $(now_ms) - start ))
[ "$el" -lt 15000 ] || fail "recovery took ${el}ms"
[ "$(q "SELECT count(*) FROM crash_tx")" = 1 ] || fail "V2 applied $(q "SELECT count(*) FROM crash_tx") times"
[ "$(q "SELECT count(*) FROM coord_schema_history WHERE version = '2'")" = 1 ] || fail "V2 history rows"

mig "$D" V3__notx.sql "-- coord:no-transaction
CREATE TABLE resume_a (id int);
SELECT pg_sleep(2.5);
CREATE TABLE resume_b (id int);"
# shellcheck disable=SC2086
runner_sleeping a2 2.5 3 $ARGS
kill -KILL "$PID_a2"
expect_rc 0 "$O" status --dir "$D" --database "$DATABASE_URL"
expect_in "$O" " partial "
expect_in "$O" "1 of 3 statements ran"
# shellcheck disable=SC2086
expect_rc 0 "$O" $ARGS
# CREATE TABLE resume_a has no IF NOT EXISTS: running it again would fail.
expect_in "$O" "resuming after statement 1 of 3"
expect_in "$O" "applied V3__notx.sql"
[ "$(q "SELECT to_regclass('resume_a') IS NOT NULL AND to_regclass('resume_b') IS NOT NULL")" = t ] || fail "V3 tables"
[ "$(q "SELECT count(*) FROM coord_schema_progress")" = 0 ] || fail "progress row left"
expect_rc 0 "$O" validate --dir "$D" --database "$DATABASE_URL"
echo "migrate-crash: ok"

# SIGTERM while applying: the statement is cancelled, the transaction rolled back,
# the lock released at once (the next runner does not wait for the 10s lease).
mig "$D" V4__slow.sql "CREATE TABLE sigterm_t (id int);
SELECT pg_sleep(20);"
runner_sleeping a3 20 4 --dir "$D" --database "$DATABASE_URL" --redis "$REDIS_URL" --lease 10s
kill -TERM "$PID_a3"
harness_rc wait "$PID_a3"
[ "$rc" = 1 ] || { cat "$T/a3.log"; fail "SIGTERMed runner exited $rc, want 1"; }
grep -q "interrupted by a signal" "$T/a3.log" || { cat "$T/a3.log"; fail "no interruption message"; }
[ "$(q "SELECT to_regclass('sigterm_t') IS NULL")" = t ] || fail "interrupted migration left its table"
mig "$D" V4__slow.sql "CREATE TABLE sigterm_t (id int);"
expect_rc 0 "$O" --dir "$D" --database "$DATABASE_URL" --redis "$REDIS_URL" --wait-timeout 3s
expect_in "$O" "applied V4__slow.sql"
echo "migrate-crash: sigterm ok"
