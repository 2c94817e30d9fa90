# coordctl migrate behind a real PgBouncer in transaction pooling mode (pool of 3
# server sessions): 5 concurrent runners with --redis, exactly one applies and the
# others exit 0 (no named prepared statement, no session setting left on a pooled
# server session, no pooled session terminated); a SIGSTOPped holder cannot commit
# once its lease is gone (the fence and its own idle timeout, nothing terminated);
# the advisory-lock fallback refuses to run there; and the error path that freed a
# result twice when the pooled session died under identify() exits 3 cleanly.
. "$top_srcdir/tests/e2e/migrate-lib.sh"
migrate_init --redis
harness_need pgbouncer

start_pgbouncer 3 plain
BOUNCED="postgresql://postgres@127.0.0.1:$BOUNCER_PORT/postgres"
note "pgbouncer $(pgbouncer --version | head -1) on port $BOUNCER_PORT"

# --- 5 concurrent runners, Redis lock ----------------------------------------------------------------
mig "$D" V1__log.sql "CREATE TABLE applied_log (version int, server_pid int DEFAULT pg_backend_pid());
INSERT INTO applied_log (version) VALUES (1);"
for i in $(seq 2 30); do
        mig "$D" "V${i}__t_$i.sql" "CREATE TABLE t_$i (id int);
INSERT INTO applied_log (version) VALUES ($i); SELECT pg_sleep(0.01);"
done
mig "$D" V31__index.sql "-- coord:no-transaction
CREATE INDEX CONCURRENTLY t_2_id ON t_2 (id);
INSERT INTO applied_log (version) VALUES (31);"
mig "$D" R__summary.sql "CREATE OR REPLACE VIEW summary AS SELECT count(*) AS n FROM applied_log;"
for i in 1 2 3 4 5; do
        harness_spawn "r$i" "$COORDCTL" migrate --dir "$D" --database "$BOUNCED" --redis "$REDIS_URL" \
                --lease 5s --wait-timeout 60s
done
appliers=0
for i in 1 2 3 4 5; do
        eval "pid=\$PID_r$i"
        harness_rc wait "$pid"
        [ "$rc" = 0 ] || { cat "$T/r$i.log" >&2; fail "runner $i exited $rc, want 0"; }
        grep -q "applied 32 migrations" "$T/r$i.log" && appliers=$((appliers + 1))
        grep -qE "applied 32 migrations|nothing to apply" "$T/r$i.log" || { cat "$T/r$i.log"; fail "runner $i: unexpected output"; }
done
[ "$appliers" = 1 ] || fail "$appliers runners applied (want exactly 1)"
for i in 1 2 3 4 5; do
        grep -q "connection pooler" "$T/r$i.log" || { cat "$T/r$i.log"; fail "runner $i did not notice the pooler"; }
done
[ "$(q "SELECT count(*) || ' ' || count(DISTINCT version) FROM applied_log")" = "31 31" ] ||
        fail "applied_log: $(q "SELECT count(*) || ' ' || count(DISTINCT version) FROM applied_log")"
[ "$(q "SELECT count(*) FROM coord_schema_history WHERE success")" = 32 ] || fail "history rows"
[ "$(q "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_2_id'::regclass")" = t ] || fail "index not valid"
note "server sessions used: $(q "SELECT count(DISTINCT server_pid) FROM applied_log")"
! grep -q "terminating connection due to administrator command" "$T/postgres.log" ||
        fail "a pooled server session was terminated"
# No setting of coord's stayed on a pooled server session: hold all 3 at once and look.
shows=""
for i in 1 2 3; do
        psql -XAtq "$BOUNCED" -c "BEGIN" -c "SELECT current_setting('idle_in_transaction_session_timeout'),
                current_setting('client_connection_check_interval'), pg_backend_pid(), pg_sleep(0.5)" -c "COMMIT" \
                >"$T/show$i.out" 2>&1 &
        shows="$shows $!"
done
for p in $shows; do
        wait "$p" || fail "psql through pgbouncer failed"
done
cat "$T"/show*.out >&2
[ "$(cut -d'|' -f3 "$T"/show*.out | sort -u | wc -l)" = 3 ] || fail "did not see the 3 pooled server sessions"
! grep -v '^0|0|' "$T"/show*.out | grep -q . || fail "a coord session setting stayed on a pooled server session"

# --- the advisory-lock fallback refuses to run behind the pooler -------------------------------------
mig "$D" V32__later.sql "CREATE TABLE later (id int);"
(unset COORD_REDIS; expect_rc 2 "$O" --dir "$D" --database "$BOUNCED") || exit 1
expect_in "$O" "connection pooler"
expect_in "$O" "pool_mode = transaction"
expect_in "$O" "--redis"
[ "$(q "SELECT to_regclass('later') IS NULL")" = t ] || fail "the advisory fallback applied behind the pooler"
rm "$D/V32__later.sql"

# --- a SIGSTOPped holder behind PgBouncer cannot commit after its lease is gone ------------------------
ARGS="--dir $D --database $BOUNCED --redis $REDIS_URL --lease 2s --wait-timeout 30s"
mig "$D" V40__fenced.sql "CREATE TABLE fenced (id int);
INSERT INTO fenced VALUES (1);
SET idle_in_transaction_session_timeout = 0;
SELECT pg_sleep(2);"
# shellcheck disable=SC2086
fence_stop_old 40 $ARGS
# shellcheck disable=SC2086
harness_spawn new "$COORDCTL" migrate $ARGS
wait "$PID_new" || { cat "$T/new.log" >&2; fail "new holder failed"; }
grep -q "applied V40__fenced.sql" "$T/new.log" || { cat "$T/new.log"; fail "new holder did not apply V40"; }
! grep -q "Terminated" "$T/new.log" || fail "the new holder terminated a pooled session"
fence_resume_old
# Its transaction ended by coord's own idle timeout, which the file's SET did not cancel.
grep -q "idle-in-transaction timeout" "$T/postgres.log" || fail "the paused transaction was not ended by its idle timeout"
fence_applied_once 40
"$COORDCTL" migrate validate --dir "$D" --database "$BOUNCED" >"$O" 2>&1 || { cat "$O"; fail "validate"; }

# --- identify(): its first query fails and so does the fallback (as when the pooled server
# session is terminated under it): exit 3 with the error, not "double free detected". -----------------
q "CREATE ROLE plain LOGIN" >/dev/null
q "CREATE DATABASE plain OWNER plain" >/dev/null
psql -XAtq "postgresql://postgres@127.0.0.1:$PG_PORT/plain" -c "REVOKE EXECUTE ON FUNCTION pg_control_system() FROM PUBLIC" \
        -c "REVOKE SELECT ON pg_catalog.pg_database FROM PUBLIC" >/dev/null
expect_rc 3 "$O" --dir "$D" --database "postgresql://plain@127.0.0.1:$BOUNCER_PORT/plain" --redis "$REDIS_URL"
expect_in "$O" "permission denied for table pg_database"
expect_not_in "$O" "double free"
echo "migrate-pgbouncer: ok"
