# A runner SIGSTOPped past its lease inside a migration transaction: the next
# holder is not blocked by its open transaction, applies the migration once, and
# on resume the old runner's commit is refused.
. "$top_srcdir/tests/e2e/migrate-lib.sh"
migrate_init --redis
ARGS="--dir $D --database $DATABASE_URL --redis $REDIS_URL --lease 2s --wait-timeout 30s"

mig "$D" V1__one.sql "CREATE TABLE one (id int);"
mig "$D" V2__fenced.sql "CREATE TABLE fenced (id int, pid int DEFAULT pg_backend_pid());
INSERT INTO fenced (id) VALUES (1);
SELECT pg_sleep(2);"
# shellcheck disable=SC2086
fence_stop_old 2 $ARGS
# shellcheck disable=SC2086
harness_spawn new "$COORDCTL" migrate $ARGS
start=$(now_ms)
wait "$PID_new" || { cat "$T/new.log" >&2; fail "new holder failed"; }
el=$(( $(now_ms) - start ))
note "new holder finished in ${el}ms"
[ "$el" -lt 15000 ] || fail "new holder took ${el}ms: blocked by the paused transaction?"
grep -q "applied V2__fenced.sql" "$T/new.log" || { cat "$T/new.log"; fail "new holder did not apply V2"; }
fence_resume_old
grep -q "commit refused" "$T/old.log" || fail "old runner does not say its commit was refused"
fence_applied_once 2
[ "$(q "SELECT count(DISTINCT fencing_token) FROM coord_schema_history")" = 2 ] || fail "expected V1 and V2 under different tokens"

# The same in a no-transaction file: the paused runner's in-flight statement is
# terminated, the new holder resumes after the last recorded statement, and the
# old runner cannot run another statement.
mig "$D" V3__notx.sql "-- coord:no-transaction
CREATE TABLE notx_a (id int);
SELECT pg_sleep(2);
CREATE TABLE notx_b (id int);"
# shellcheck disable=SC2086
runner_sleeping old2 2 3 $ARGS
kill -STOP "$PID_old2"
# shellcheck disable=SC2086
harness_spawn new2 "$COORDCTL" migrate $ARGS
wait "$PID_new2" || { cat "$T/new2.log" >&2; fail "new holder (V3) failed"; }
grep -q "resuming after statement 1 of 3" "$T/new2.log" || { cat "$T/new2.log"; fail "V3 did not resume"; }
kill -CONT "$PID_old2"
harness_rc wait "$PID_old2"
cat "$T/new.log" "$T/new2.log" "$T/old2.log" >&2
[ "$rc" = 1 ] || { cat "$T/old2.log"; fail "old V3 runner exited $rc, want 1"; }
[ "$(q "SELECT count(*) FROM coord_schema_history WHERE version = '3'")" = 1 ] || fail "V3 history rows"
[ "$(q "SELECT success FROM coord_schema_history WHERE version = '3'")" = t ] || fail "V3 not recorded as success"
[ "$(q "SELECT count(*) FROM coord_schema_progress")" = 0 ] || fail "progress left behind"

# PostgreSQL itself refuses a superseded runner, whatever its lease says: raise the
# token behind a runner's back (as a new holder would) while its transaction runs.
mig "$D" V4__behind.sql "CREATE TABLE behind (id int);
SELECT pg_sleep(1);"
# behind_fence NAME VERSION WHAT: runner NAME (coordctl migrate $ARGS) inside
# V<VERSION>'s "SELECT pg_sleep(1)" when the token is raised: it exits 1.
behind_fence() {
        # shellcheck disable=SC2086
        runner_sleeping "$1" 1 "$2" $ARGS
        q "UPDATE coord_schema_fence SET token = token + 1" >/dev/null
        runner_exits_1 "$1" "$3"
}
behind_fence b1 4 "runner behind the fence"
grep -q "commit refused: fencing token .* is no longer current" "$T/b1.log" || fail "no fencing refusal"
[ "$(q "SELECT to_regclass('behind') IS NULL")" = t ] || fail "refused migration left its table"
[ "$(q "SELECT count(*) FROM coord_schema_history WHERE version = '4'")" = 0 ] || fail "refused migration recorded"
rm "$D/V4__behind.sql"
mig "$D" V5__behind_notx.sql "-- coord:no-transaction
SELECT pg_sleep(1);
CREATE TABLE behind_notx (id int);"
behind_fence b2 5 "no-transaction runner behind the fence"
grep -q "stopped after statement 1: fencing token .* is no longer current" "$T/b2.log" || fail "no per-statement fencing"
[ "$(q "SELECT to_regclass('behind_notx') IS NULL")" = t ] || fail "statement after the fence moved ran"
echo "migrate-fence: ok"
