#!/bin/sh
# coord-agent figures: RSS and CPU while managing 10 instances with 1 s HTTP
# probes (measured from /proc over 30 s), and the time from a health flip to
# the state change visible in Redis (bench/agent-flip), with 1 s probes and
# with 50 ms probes (the latter shows the agent's own overhead).
#   make bench && COORD_HARNESS=... top_builddir=... sh bench/agent-bench.sh
# Environment: SECONDS_CPU (default 30), FLIPS (default 50).
set -eu
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
top_builddir=${top_builddir:-$(pwd)}
COORD_HARNESS=${COORD_HARNESS:-$top_srcdir/tests/harness.sh}
COORD_AGENT=${COORD_AGENT:-$top_builddir/agent/coord-agent}
export top_srcdir top_builddir COORD_HARNESS COORD_AGENT
. "$top_srcdir/tests/e2e/agent-lib.sh"
SECONDS_CPU=${SECONDS_CPU:-30}
FLIPS=${FLIPS:-50}
FLIP="$top_builddir/bench/agent-flip"
[ -x "$FLIP" ] || fail "build it first: make bench"
agent_init
D=$COORD_TEST_DIR
NS=bench

run_agent() { # NAME INTERVAL
        services=""
        for i in 0 1 2 3 4 5 6 7 8 9; do
                p=$(cat "$D/port$i")
                [ -z "$services" ] || services="$services,"
                services="$services{\"name\":\"svc$i\",\"instance\":\"i$i\",\"address\":\"127.0.0.1:$p\",\"version\":\"1.0\",\"health\":{\"http\":\"http://127.0.0.1:$p/health/ready\",\"interval\":\"$2\",\"timeout\":\"500ms\",\"rise\":1,\"fall\":1}}"
        done
        echo "{\"redis\":\"$REDIS_URL\",\"namespace\":\"$NS\",\"host\":\"$HOST\",\"heartbeat_interval\":\"1s\",\"state_dir\":\"$D/state-$1\",\"services\":[$services]}" >"$D/$1.json"
        COORD_LOG_LEVEL=warning harness_spawn "$1" "$COORD_AGENT" --config "$D/$1.json"
        wait_state i9 healthy 10
}

for i in 0 1 2 3 4 5 6 7 8 9; do
        demo_start "app$i" --fail-file "$D/fail$i"
        echo "$DEMO_PORT" >"$D/port$i"
done

run_agent a1 1s
pid=$PID_a1
sleep 2
hz=$(getconf CLK_TCK)
t0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
sleep "$SECONDS_CPU"
t1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
echo "10 instances, 1s HTTP probes, 1s heartbeats, ${SECONDS_CPU}s: RSS ${rss} kB (peak ${hwm} kB), CPU $(awk "BEGIN {printf \"%.2f\", ($t1 - $t0) * 100 / $hz / $SECONDS_CPU}")% of one core ($((t1 - t0)) ticks)"
echo "flip latency with 1s probes (fall=1, rise=1):"
"$FLIP" --port "$REDIS_PORT" --namespace "$NS" --instance i0 --fail-file "$D/fail0" --flips "$FLIPS" --interval-ms 1000
kill -TERM "$pid"
wait "$pid" || true

run_agent a2 50ms
echo "flip latency with 50ms probes (fall=1, rise=1):"
"$FLIP" --port "$REDIS_PORT" --namespace "$NS" --instance i0 --fail-file "$D/fail0" --flips "$FLIPS" --interval-ms 50
