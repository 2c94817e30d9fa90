# 8 concurrent `coordctl migrate` runners on 50 migrations + 1 repeatable + 1 seed:
# each applied exactly once, history and schema agree, all exit 0.
. "$top_srcdir/tests/e2e/migrate-lib.sh"
migrate_init --redis
mig "$D" V1__log.sql "CREATE TABLE applied_log (version int, at timestamptz DEFAULT clock_timestamp());
INSERT INTO applied_log (version) VALUES (1);"
for i in $(seq 2 50); do
        extra=""
        [ "$i" = 25 ] && extra="SELECT pg_sleep(0.5);"
        mig "$D" "V${i}__table_$i.sql" "CREATE TABLE t_$i (id int);
INSERT INTO applied_log (version) VALUES ($i); $extra"
done
mig "$D" R__summary.sql "CREATE OR REPLACE VIEW summary AS SELECT count(*) AS n FROM applied_log;
INSERT INTO applied_log (version) VALUES (-1);"
mig "$D" S__seed.sql "CREATE TABLE IF NOT EXISTS seeded (id int);
INSERT INTO seeded VALUES (1);"

for i in 1 2 3 4 5 6 7 8; do
        harness_spawn "r$i" "$COORDCTL" migrate --dir "$D" --database "$DATABASE_URL" --redis "$REDIS_URL" \
                --lease 3s --wait-timeout 60s
done
for i in 1 2 3 4 5 6 7 8; do
        eval "pid=\$PID_r$i"
        wait "$pid" || { cat "$T/r$i.log" >&2; fail "runner $i exited $?"; }
done
appliers=0
for i in 1 2 3 4 5 6 7 8; do
        grep -q "applied 52 migrations" "$T/r$i.log" && appliers=$((appliers + 1))
        grep -qE "applied 52 migrations|nothing to apply" "$T/r$i.log" || { cat "$T/r$i.log"; fail "runner $i: unexpected output"; }
done
waited=$(grep -l "Waiting up to" "$T"/r*.log | wc -l)
[ "$waited" -ge 1 ] || fail "no runner waited for the lock"
[ "$appliers" = 1 ] || fail "$appliers runners applied everything (want exactly 1)"
[ "$(q "SELECT count(*) FROM applied_log WHERE version > 0")" = 50 ] || fail "applied_log: $(q "SELECT count(*) FROM applied_log")"
[ "$(q "SELECT count(DISTINCT version) FROM applied_log WHERE version > 0")" = 50 ] || fail "a migration ran twice"
[ "$(q "SELECT count(*) FROM applied_log WHERE version = -1")" = 1 ] || fail "repeatable ran more than once"
[ "$(q "SELECT count(*) FROM seeded")" = 1 ] || fail "seed ran $(q "SELECT count(*) FROM seeded") times"
[ "$(q "SELECT count(*) FROM coord_schema_history WHERE type = 'versioned' AND success")" = 50 ] || fail "history versioned rows"
[ "$(q "SELECT count(DISTINCT version) FROM coord_schema_history WHERE type = 'versioned'")" = 50 ] || fail "history duplicates"
[ "$(q "SELECT count(*) FROM coord_schema_history WHERE type IN ('repeatable', 'seed')")" = 2 ] || fail "history R/S rows"
[ "$(q "SELECT count(*) FROM pg_tables WHERE tablename LIKE 't\\_%'")" = 49 ] || fail "schema tables"
# History and schema agree: every versioned row's table exists.
[ "$(q "SELECT count(*) FROM coord_schema_history h WHERE h.version::int > 1 AND to_regclass('t_' || h.version) IS NULL")" = 0 ] ||
        fail "history lists a migration whose table is missing"
# Waiters were woken by the release, not by a timeout: all done well within the lease-based bounds.
"$COORDCTL" migrate validate --dir "$D" --database "$DATABASE_URL" >/dev/null || fail "validate after concurrent apply"
echo "migrate-concurrent: ok"
