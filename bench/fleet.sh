#!/bin/bash
# bench/fleet: 10,000 simulated agents heartbeating at 1 Hz through Redis
# (bench/fleet-load, pipelined), one coordinatord following them.  Reports
# coordinatord's CPU and RSS and the time from a host going silent to "lost"
# (median, p99).  Goals: < half a core, < 200 MB, p99 < TTL + 1 s.
#
#   cd BUILD_DIR && make bench coordinatord/coordinatord && SRC_DIR/bench/fleet.sh [fleet-load flags]
set -eu
srcdir=$(cd "$(dirname "$0")/.." && pwd)
LOAD=$(pwd)/bench/fleet-load
COORDINATORD=${COORDINATORD:-$(pwd)/coordinatord/coordinatord}
[ -x "$LOAD" ] || { echo "fleet.sh: $LOAD not built (run 'make bench' in the build dir)" >&2; exit 2; }
[ -x "$COORDINATORD" ] || { echo "fleet.sh: $COORDINATORD not built" >&2; exit 2; }

COORD_HARNESS="$srcdir/tests/harness.sh"
. "$COORD_HARNESS"
harness_init
harness_need curl redis-cli
export COORD_LOG_LEVEL=warning
harness_start_redis
d=$COORD_TEST_DIR
TOKEN=bench-read-token-0123456789
sha=$(printf '%s' "$TOKEN" | sha256sum | cut -d' ' -f1)
for _try in 1 2 3; do
        cport=$(harness_free_port)
        cat >"$d/cd.json" <<JSON
{"listen":"127.0.0.1:$cport","redis":"$REDIS_URL","namespace":"bench","deregister_after":"1h",
 "tokens":[{"name":"bench","role":"read","sha256":"$sha"}]}
JSON
        harness_spawn coordinatord "$COORDINATORD" --config "$d/cd.json"
        harness_wait_for 10 curl -sf "http://127.0.0.1:$cport/health/ready" && break
done
echo "# $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(redis-server --version | cut -d' ' -f1-3)"
"$LOAD" --redis-port "$REDIS_PORT" --ns bench --url "http://127.0.0.1:$cport" --token "$TOKEN" \
        --pid "$PID_coordinatord" "$@"
