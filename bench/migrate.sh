#!/bin/sh
# coordctl migrate against sqitch and the raw libpq limit, in one run against
# one temporary PostgreSQL (tests/harness.sh: fsync=off, synchronous_commit=off,
# the same for every contender), each contender in its own database:
#   raw       N CREATE TABLE commits over one libpq connection (bench/migrate-raw)
#   coordctl  `coordctl migrate` applying N files V<i>__t.sql (CREATE TABLE each),
#             with the Redis lock, and with the advisory-lock fallback
#   pgbouncer the same Redis-lock run through PgBouncer in transaction pooling mode
#             (when pgbouncer is installed), and its ratio to the direct run
#   sqitch    `sqitch deploy` of SQITCH_N changes (default 200; it runs psql per
#             change, so the figure is extrapolated per second and said so)
#   status    `coordctl migrate status` with STATUS_N (10,000) applied rows: median
#             of STATUS_RUNS (7) runs
#
#   cd BUILD_DIR && make bench && SRC_DIR/bench/migrate.sh
#
# Env: N (1000), ROUNDS (5: raw and coordctl, best and median), SQITCH_N (200), STATUS_N (10000), STATUS_RUNS (7),
# COORDCTL (./deploy/coordctl), MIGRATE_RAW (./bench/migrate-raw).
srcdir=$(cd "$(dirname "$0")/.." && pwd)
N=${N:-1000}
SQITCH_N=${SQITCH_N:-200}
STATUS_N=${STATUS_N:-10000}
STATUS_RUNS=${STATUS_RUNS:-7}
ROUNDS=${ROUNDS:-5}
COORDCTL=${COORDCTL:-./deploy/coordctl}
RAW=${MIGRATE_RAW:-./bench/migrate-raw}
for b in "$COORDCTL" "$RAW"; do
        [ -x "$b" ] || { echo "migrate.sh: $b not built (run 'make && make bench' in the build dir)" >&2; exit 2; }
done
COORDCTL=$(cd "$(dirname "$COORDCTL")" && pwd)/$(basename "$COORDCTL")
RAW=$(cd "$(dirname "$RAW")" && pwd)/$(basename "$RAW")

COORD_HARNESS="$srcdir/tests/harness.sh"
. "$srcdir/tests/e2e/migrate-lib.sh"
harness_init
harness_start_redis
harness_start_postgres
export COORD_LOG_LEVEL=warning
T=$COORD_TEST_DIR
BASE="postgresql://postgres@127.0.0.1:$PG_PORT"

# PgBouncer (pool_mode = transaction, 5 server sessions per pool, trust) on a
# free port in front of the same PostgreSQL (tests/e2e/migrate-lib.sh).
BOUNCER_PORT=""
if command -v pgbouncer >/dev/null 2>&1; then
        start_pgbouncer 5
        echo "# $(pgbouncer --version | head -1), pool_mode = transaction, on port $BOUNCER_PORT" >&2
else
        echo "# pgbouncer not installed (apt-get install pgbouncer): the PgBouncer run is skipped" >&2
fi

ms() { now_ms; }
db() {
        harness_psql -c "CREATE DATABASE $1" >/dev/null
        echo "$BASE/$1"
}
gen() { # gen DIR COUNT SQL-TEMPLATE(with %d)
        mkdir -p "$1"
        i=1
        while [ "$i" -le "$2" ]; do
                # shellcheck disable=SC2059
                printf "$3\n" "$i" >"$1/V${i}__t.sql"
                i=$((i + 1))
        done
}

echo "# PostgreSQL $(harness_psql -c 'SHOW server_version') on $(nproc) CPU(s); fsync=off, synchronous_commit=off (the harness settings)" >&2

# 1+2. raw limit and coordctl (Redis lock, advisory fallback), interleaved ROUNDS
# times (the machine may be shared: medians of interleaved runs are fairer).
gen "$T/m" "$N" "CREATE TABLE t_%d (id int);"
: >"$T/raw.times"
: >"$T/coord.times"
: >"$T/adv.times"
: >"$T/pgb.times"
round=1
while [ "$round" -le "$ROUNDS" ]; do
        RAW_OUT=$("$RAW" "$(db bench_raw_$round)" "$N") || fail "migrate-raw failed"
        echo "$RAW_OUT" | awk '{print $2}' >>"$T/raw.times"
        URL=$(db bench_coord_$round)
        t0=$(ms)
        "$COORDCTL" migrate --dir "$T/m" --database "$URL" --redis "$REDIS_URL" >"$T/coord.out" 2>&1 || { cat "$T/coord.out"; fail "coordctl failed"; }
        awk -v a="$t0" -v b="$(ms)" 'BEGIN { printf "%.3f\n", (b - a) / 1000 }' >>"$T/coord.times"
        [ "$(psql -XAtq "$URL" -c "SELECT count(*) FROM coord_schema_history")" = "$N" ] || fail "coordctl did not apply $N"
        URL=$(db bench_coord_adv_$round)
        t0=$(ms)
        "$COORDCTL" migrate --dir "$T/m" --database "$URL" >"$T/coord-adv.out" 2>&1 || { cat "$T/coord-adv.out"; fail "coordctl (advisory) failed"; }
        awk -v a="$t0" -v b="$(ms)" 'BEGIN { printf "%.3f\n", (b - a) / 1000 }' >>"$T/adv.times"
        if [ -n "$BOUNCER_PORT" ]; then
                db "bench_pgb_$round" >/dev/null
                URL="postgresql://postgres@127.0.0.1:$BOUNCER_PORT/bench_pgb_$round"
                t0=$(ms)
                "$COORDCTL" migrate --dir "$T/m" --database "$URL" --redis "$REDIS_URL" >"$T/coord-pgb.out" 2>&1 || { cat "$T/coord-pgb.out"; fail "coordctl (PgBouncer) failed"; }
                awk -v a="$t0" -v b="$(ms)" 'BEGIN { printf "%.3f\n", (b - a) / 1000 }' >>"$T/pgb.times"
                [ "$(psql -XAtq "$BASE/bench_pgb_$round" -c "SELECT count(*) FROM coord_schema_history")" = "$N" ] || fail "coordctl (PgBouncer) did not apply $N"
        fi
        round=$((round + 1))
done
median() { sort -n "$1" | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
best() { sort -n "$1" | head -1; }
RAW_S=$(median "$T/raw.times")
COORD_S=$(median "$T/coord.times")
ADV_S=$(median "$T/adv.times")
RAW_B=$(best "$T/raw.times")
COORD_B=$(best "$T/coord.times")
ADV_B=$(best "$T/adv.times")
echo "# raw runs: $(sort -n "$T/raw.times" | tr '\n' ' ')" >&2
echo "# coordctl (Redis) runs: $(sort -n "$T/coord.times" | tr '\n' ' ')" >&2
echo "# coordctl (advisory) runs: $(sort -n "$T/adv.times" | tr '\n' ' ')" >&2
PGB_S=""
PGB_B=""
if [ -s "$T/pgb.times" ]; then
        PGB_S=$(median "$T/pgb.times")
        PGB_B=$(best "$T/pgb.times")
        echo "# coordctl (Redis, through PgBouncer) runs: $(sort -n "$T/pgb.times" | tr '\n' ' ')" >&2
fi

# 3. sqitch
SQITCH_S=""
if command -v sqitch >/dev/null 2>&1; then
        S=$T/sqitch
        mkdir -p "$S"
        (
                cd "$S"
                sqitch init bench --engine pg >/dev/null 2>&1 || exit 1
                mkdir -p deploy revert verify
                i=1
                while [ "$i" -le "$SQITCH_N" ]; do
                        echo "CREATE TABLE s_$i (id int);" >"deploy/c$i.sql"
                        echo "DROP TABLE s_$i;" >"revert/c$i.sql"
                        echo "SELECT 1;" >"verify/c$i.sql"
                        echo "c$i 2026-01-01T00:00:00Z Bench <bench@example.com> # table $i" >>sqitch.plan
                        i=$((i + 1))
                done
        ) || fail "sqitch init failed"
        URL=$(db bench_sqitch)
        t0=$(ms)
        (cd "$S" && SQITCH_USER_CONFIG=/dev/null sqitch deploy "db:pg://postgres@127.0.0.1:$PG_PORT/bench_sqitch" >"$T/sqitch.out" 2>&1) ||
                { cat "$T/sqitch.out"; fail "sqitch deploy failed"; }
        SQITCH_S=$(awk -v a="$t0" -v b="$(ms)" 'BEGIN { printf "%.3f", (b - a) / 1000 }')
        [ "$(psql -XAtq "$URL" -c "SELECT count(*) FROM sqitch.changes")" = "$SQITCH_N" ] || fail "sqitch did not deploy $SQITCH_N"
else
        echo "# sqitch not installed: skipped" >&2
fi

# 4. status with STATUS_N applied rows
gen "$T/s" "$STATUS_N" "SELECT %d;"
URL=$(db bench_status)
t0=$(ms)
"$COORDCTL" migrate --dir "$T/s" --database "$URL" --redis "$REDIS_URL" >"$T/status-apply.out" 2>&1 || { cat "$T/status-apply.out"; fail "apply of $STATUS_N failed"; }
STATUS_APPLY_S=$(awk -v a="$t0" -v b="$(ms)" 'BEGIN { printf "%.3f", (b - a) / 1000 }')
: >"$T/status.times"
r=0
while [ "$r" -lt "$STATUS_RUNS" ]; do
        t0=$(ms)
        "$COORDCTL" migrate status --dir "$T/s" --database "$URL" >"$T/status.out" 2>&1 || { cat "$T/status.out"; fail "status failed"; }
        echo $(( $(ms) - t0 )) >>"$T/status.times"
        r=$((r + 1))
done
grep -q "$STATUS_N migrations: $STATUS_N applied" "$T/status.out" || { tail -3 "$T/status.out"; fail "status output"; }
STATUS_MED=$(median "$T/status.times")
STATUS_ALL=$(sort -n "$T/status.times" | tr '\n' ' ')

awk -v n="$N" -v raw="$RAW_S" -v coord="$COORD_S" -v adv="$ADV_S" -v rawb="$RAW_B" -v coordb="$COORD_B" -v advb="$ADV_B" -v rounds="$ROUNDS" -v sn="$SQITCH_N" -v sq="$SQITCH_S" \
    -v pgb="$PGB_S" -v pgbb="$PGB_B" \
    -v stn="$STATUS_N" -v sta="$STATUS_APPLY_S" -v med="$STATUS_MED" -v all="$STATUS_ALL" 'BEGIN {
        printf "medians (and best) of %d interleaved rounds\n", rounds
        printf "%-46s %7s %9s %10s  %s\n", "contender", "count", "seconds", "per second", "ratio"
        printf "%-46s %7d %9.3f %10.0f  %s (best %.3fs)\n", "raw libpq CREATE TABLE commits (the limit)", n, raw, n / raw, "1.00x raw", rawb
        printf "%-46s %7d %9.3f %10.0f  %.2fx raw; best %.3fs = %.2fx best raw (goal <= 2x)\n", "coordctl migrate (Redis lock)", n, coord, n / coord, coord / raw, coordb, coordb / rawb
        printf "%-46s %7d %9.3f %10.0f  %.2fx raw; best %.3fs = %.2fx best raw\n", "coordctl migrate (advisory-lock fallback)", n, adv, n / adv, adv / raw, advb, advb / rawb
        if (pgb != "")
                printf "%-46s %7d %9.3f %10.0f  %.2fx direct (median %.3fs through PgBouncer vs %.3fs direct); best %.3fs = %.2fx best direct\n",
                       "coordctl migrate (Redis lock, PgBouncer txn)", n, pgb, n / pgb, pgb / coord, pgb, coord, pgbb, pgbb / coordb
        if (sq != "")
                printf "%-46s %7d %9.3f %10.1f  coordctl is %.0fx faster per migration (goal >= 50x; sqitch ran %d, extrapolated per second)\n",
                       "sqitch deploy", sn, sq, sn / sq, (sq / sn) / (coord / n), sn
        printf "%-46s %7d %9.3f %10.0f\n", "coordctl migrate (trivial SELECT, for status)", stn, sta, stn / sta
        printf "%-46s %7d %9s %10s  median %d ms of runs [%s] (goal < 200 ms)\n", "coordctl migrate status", stn, "", "", med, all
}'
