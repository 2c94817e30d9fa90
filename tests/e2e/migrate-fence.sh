# A runner SIGSTOPped past its lease inside a migration transaction: the next
# holder is not blocked by its open transaction, applies the migration once, and
# on resume the old runner's commit is refused.
. "$top_srcdir/tests/e2e/migrate-lib.sh"
harness_init
harness_start_postgres
harness_start_redis
T=$COORD_TEST_DIR
D=$T/m
ARGS="--dir $D --database $DATABASE_URL --redis $REDIS_URL --lease 2s --wait-timeout 30s"

mig "$D" V1__one.sql "CREATE TABLE one (id int);"
mig "$D" V2__fenced.sql "CREATE TABLE fenced (id int, pid int DEFAULT pg_backend_pid());
INSERT INTO fenced (id) VALUES (1);
SELECT pg_sleep(1);"
# shellcheck disable=SC2086
harness_spawn old "$COORDCTL" migrate $ARGS
harness_wait_for 15 sh -c "psql -XAtq '$DATABASE_URL' -c \"SELECT 1 FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(1)%'\" | grep -q 1" ||
        fail "V2 did not start"
kill -STOP "$PID_old"
note "old runner stopped inside V2's transaction"
# shellcheck disable=SC2086
harness_spawn new "$COORDCTL" migrate $ARGS
start=$(now_ms)
wait "$PID_new" || { cat "$T/new.log" >&2; fail "new holder failed"; }
el=$(( $(now_ms) - start ))
note "new holder finished in ${el}ms"
[ "$el" -lt 15000 ] || fail "new holder took ${el}ms: blocked by the paused transaction?"
grep -q "applied V2__fenced.sql" "$T/new.log" || { cat "$T/new.log"; fail "new holder did not apply V2"; }
kill -CONT "$PID_old"
set +e
wait "$PID_old"
rc=$?
set -e
cat "$T/old.log" >&2
[ "$rc" = 1 ] || fail "old runner exited $rc, want 1"
grep -q "commit refused" "$T/old.log" || fail "old runner does not say its commit was refused"
[ "$(q "SELECT count(*) FROM fenced")" = 1 ] || fail "fenced has $(q "SELECT count(*) FROM fenced") rows"
[ "$(q "SELECT count(*) FROM coord_schema_history WHERE version = '2'")" = 1 ] || fail "V2 recorded more than once"
[ "$(q "SELECT h.fencing_token = f.token FROM coord_schema_history h, coord_schema_fence f WHERE h.version = '2'")" = t ] ||
        fail "V2 was not recorded by the newest holder"
[ "$(q "SELECT count(DISTINCT fencing_token) FROM coord_schema_history")" = 2 ] || fail "expected V1 and V2 under different tokens"
echo "migrate-fence: ok"
