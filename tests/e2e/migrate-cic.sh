# CREATE INDEX CONCURRENTLY in a no-transaction migration while 3 other runners
# wait: no deadlock, the index is valid, every runner exits 0.  Waiters wait on
# Redis holding no PostgreSQL session; the advisory fallback polls outside any
# transaction.
. "$top_srcdir/tests/e2e/migrate-lib.sh"
harness_init
harness_start_postgres
harness_start_redis
T=$COORD_TEST_DIR

active() {
        psql -XAtq "$DATABASE_URL" -c "SELECT 1 FROM pg_stat_activity WHERE state = 'active' AND query LIKE '$1%'" | grep -q 1
}

round() {
        rn=$1 db=$2 redis=$3 schema=$4
        D=$T/$rn
        mig "$D" V1__big.sql "CREATE TABLE big AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 100000) g;"
        mig "$D" V2__index.sql "-- coord:no-transaction
-- coord:lock-timeout 10s
SELECT pg_sleep(1.5);
CREATE INDEX CONCURRENTLY big_v ON big (v);
SELECT pg_sleep(0.5);"
        harness_spawn "${rn}_a" "$COORDCTL" migrate --dir "$D" --database "$db" $redis --lease 3s --wait-timeout 30s
        harness_wait_for 15 active "SELECT pg_sleep(1.5)" || fail "$rn: V2 did not start"
        for i in 1 2 3; do
                harness_spawn "${rn}_w$i" "$COORDCTL" migrate --dir "$D" --database "$db" $redis --lease 3s --wait-timeout 30s
        done
        for i in 1 2 3; do
                harness_wait_for 10 grep -q "Waiting" "$T/${rn}_w$i.log" || fail "$rn: waiter $i is not waiting"
        done
        if [ -n "$redis" ]; then
                # Redis waiters hold no PostgreSQL session at all while they wait.
                n=$(q "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'coord-migrate%' AND application_name NOT LIKE 'coord-migrate run%'")
                [ "$n" = 0 ] || fail "$rn: $n waiter session(s) open in PostgreSQL"
        fi
        start=$(now_ms)
        for p in a w1 w2 w3; do
                eval "pid=\$PID_${rn}_$p"
                wait "$pid" || { cat "$T/${rn}_$p.log" >&2; fail "$rn: runner $p failed"; }
        done
        el=$(( $(now_ms) - start ))
        note "$rn: all runners done ${el}ms after the waiters queued"
        [ "$el" -lt 15000 ] || fail "$rn: took ${el}ms"
        grep -q "applied V2__index.sql" "$T/${rn}_a.log" || fail "$rn: the first runner did not apply V2"
        for i in 1 2 3; do
                grep -q "nothing to apply" "$T/${rn}_w$i.log" || { cat "$T/${rn}_w$i.log"; fail "$rn: waiter $i"; }
        done
        [ "$(q "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = 'big_v' AND n.nspname = '$schema'")" = t ] ||
                fail "$rn: index big_v missing or invalid"
}

round redis "$DATABASE_URL" "--redis $REDIS_URL" public
q "CREATE SCHEMA adv" >/dev/null
round advisory "$DATABASE_URL?options=-csearch_path%3Dadv" "" adv
echo "migrate-cic: ok"
