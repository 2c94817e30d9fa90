#!/bin/bash
# bench/api: coordinatord's HTTP throughput against a minimal libmicrohttpd
# server, in one run, with wrk:
#   1. /health/live on api-hello (the baseline) and on coordinatord
#   2. GET /v1/instances with 1,000 registered instances (bearer token)
# Goals: /health/live >= 0.8x and /v1/instances >= 0.5x the hello server.
#
#   cd BUILD_DIR && make bench coordinatord/coordinatord && SRC_DIR/bench/api.sh [SECONDS] [CONNECTIONS]
set -eu
srcdir=$(cd "$(dirname "$0")/.." && pwd)
DUR=${1:-5}
CONN=${2:-32}
THREADS=${API_THREADS:-4}
HELLO=$(pwd)/bench/api-hello
COORDINATORD=${COORDINATORD:-$(pwd)/coordinatord/coordinatord}
[ -x "$HELLO" ] || { echo "api.sh: $HELLO not built (run 'make bench' in the build dir)" >&2; exit 2; }
[ -x "$COORDINATORD" ] || { echo "api.sh: $COORDINATORD not built" >&2; exit 2; }

COORD_HARNESS="$srcdir/tests/harness.sh"
. "$COORD_HARNESS"
harness_init
harness_need wrk curl redis-cli
export COORD_LOG_LEVEL=warning
harness_start_redis
d=$COORD_TEST_DIR
NS=bench
TOKEN=bench-read-token-0123456789
sha=$(printf '%s' "$TOKEN" | sha256sum | cut -d' ' -f1)

# 1,000 instances, exactly as agents write them (lib/keys.h), with a long TTL.
now=$(( $(date +%s%N) / 1000000 ))
for i in $(seq 1 1000); do
        id=web-$i
        printf 'HSET coord:{%s}:instance:%s id %s service web host host-%s address 10.0.%s.%s:8080 version 1.0 state healthy config_version 3 last_seen %s ttl_ms 600000 registered_at %s\r\n' \
                $NS $id $id $i $((i / 250)) $((i % 250)) $now $now
        printf 'SET coord:{%s}:alive:%s 1 PX 600000\r\n' $NS $id
        printf 'ZADD coord:{%s}:instances %s %s\r\n' $NS $now $id
done | redis-cli -p "$REDIS_PORT" --pipe >/dev/null

for _try in 1 2 3; do
        hport=$(harness_free_port)
        harness_spawn hello "$HELLO" "$hport" "$THREADS"
        harness_wait_for 5 curl -sf "http://127.0.0.1:$hport/" && break
done
for _try in 1 2 3; do
        hcport=$(harness_free_port)
        harness_spawn hello-close "$HELLO" "$hcport" "$THREADS" close
        harness_wait_for 5 curl -sf "http://127.0.0.1:$hcport/" && break
done
for _try in 1 2 3; do
        cport=$(harness_free_port)
        cat >"$d/cd.json" <<JSON
{"listen":"127.0.0.1:$cport","redis":"$REDIS_URL","namespace":"$NS","http_threads":$THREADS,
 "tokens":[{"name":"bench","role":"read","sha256":"$sha"}]}
JSON
        harness_spawn coordinatord "$COORDINATORD" --config "$d/cd.json"
        harness_wait_for 10 curl -sf "http://127.0.0.1:$cport/health/ready" && break
done
n=$(curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$cport/v1/instances" | grep -o '"id"' | wc -l)
[ "$n" = 1000 ] || fail "coordinatord shows $n instances, expected 1000"
size=$(curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$cport/v1/instances" | wc -c)

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# run PID URL [wrk args]: prints "REQ_PER_S SERVER_CPU_US_PER_REQ" (server CPU from /proc).
run() {
        pid=$1
        shift
        t0=$(ticks "$pid")
        out=$(wrk -t2 -c"$CONN" -d"${DUR}s" "$@")
        t1=$(ticks "$pid")
        echo "$out" | awk -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" '
                /requests in/ { n = $1 }
                /Requests\/sec/ { r = $2 }
                END { printf "%s %.1f\n", r, (n > 0 ? t / hz * 1e6 / n : 0) }'
}
best() { awk -v a="$1" -v b="$2" 'BEGIN{split(a, x, " "); split(b, y, " "); print (x[1] >= y[1] ? a : b)}'; }
# Interleaved rounds, best of each: other load on the machine hits all targets alike.
ROUNDS=${API_ROUNDS:-3}
echo "# $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), wrk -t2 -c$CONN -d${DUR}s, $THREADS server threads each, best of $ROUNDS interleaved rounds"
hello="0 0" hclose="0 0" live="0 0" inst="0 0"
for _r in $(seq 1 "$ROUNDS"); do
        hello=$(best "$hello" "$(run "$PID_hello" "http://127.0.0.1:$hport/health/live")")
        live=$(best "$live" "$(run "$PID_coordinatord" "http://127.0.0.1:$cport/health/live")")
        hclose=$(best "$hclose" "$(run "$PID_hello_close" "http://127.0.0.1:$hcport/health/live")")
        inst=$(best "$inst" "$(run "$PID_coordinatord" -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$cport/v1/instances")")
done
ratio() { awk -v a="${1%% *}" -v b="${2%% *}" 'BEGIN{printf "%.2fx", a/b}'; }
line() { printf '%-42s %10s req/s %7s us server CPU/req' "$1" "${2%% *}" "${2##* }"; }
line "api-hello, keep-alive (baseline)" "$hello"; echo
line "api-hello, textbook (connection: close)" "$hclose"; echo
line "coordinatord /health/live" "$live"
printf '  %s of keep-alive hello, %s of textbook hello (goal >= 0.80x)\n' "$(ratio "$live" "$hello")" "$(ratio "$live" "$hclose")"
line "coordinatord GET /v1/instances (1,000)" "$inst"
printf '  %s of keep-alive hello, %s of textbook hello (goal >= 0.50x); %s bytes each\n' \
        "$(ratio "$inst" "$hello")" "$(ratio "$inst" "$hclose")" "$size"
echo "# server CPU/req is the server's own CPU time per request: where wrk (the client) saturates"
echo "# first, as with 170 KB responses on a small machine, it is the fairer comparison."
