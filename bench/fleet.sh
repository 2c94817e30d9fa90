#!/bin/bash
# bench/fleet: 10,000 simulated agents heartbeating at 1 Hz through Redis
# (bench/fleet-load, pipelined), one coordinatord following them.  Reports
# coordinatord's CPU and RSS and the time from a host going silent to "lost"
# (median, p99).  Goals: < half a core, < 200 MB, p99 < TTL + 1 s.
#
#   cd BUILD_DIR && make bench coordinatord/coordinatord && SRC_DIR/bench/fleet.sh [--tls] [--streams N] [fleet-load flags]
#
# --tls: coordinatord talks to Redis over TLS (rediss://, COORD_TLS_CA_FILE;
# certificates made on the fly); the simulated agents stay on the same
# server's plain port, so the figures compare with a plain run directly.
#
# --streams N also holds N deployment event streams (SSE) open on a running
# deployment for the whole run (tests/util/sse-load.py), to show that open
# streams cost the fleet view nothing: compare the figures with and without.
set -eu
streams=0
tls=0
if [ "${1:-}" = --tls ]; then
        tls=1
        shift
fi
if [ "${1:-}" = --streams ]; then
        streams=${2:?--streams needs a number}
        shift 2
fi
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
d=$COORD_TEST_DIR
if [ "$tls" = 1 ]; then
        . "$srcdir/tests/e2e/tls-lib.sh"
        tls_make_certs
        tls_start_redis
        export COORD_TLS_CA_FILE="$TLS_DIR/ca.crt"
        cd_redis="rediss://127.0.0.1:$TLS_PORT/0"
        echo "# coordinatord -> Redis over TLS ($cd_redis); agents on the plain port"
else
        harness_start_redis
        cd_redis=$REDIS_URL
fi
TOKEN=bench-read-token-0123456789
DTOKEN=bench-deploy-token-0123456789
sha=$(printf '%s' "$TOKEN" | sha256sum | cut -d' ' -f1)
dsha=$(printf '%s' "$DTOKEN" | sha256sum | cut -d' ' -f1)
for _try in 1 2 3; do
        cport=$(harness_free_port)
        cat >"$d/cd.json" <<JSON
{"listen":"127.0.0.1:$cport","redis":"$cd_redis","namespace":"bench","deregister_after":"1h",
 "tokens":[{"name":"bench","role":"read","sha256":"$sha"},{"name":"bench-deploy","role":"deploy","sha256":"$dsha"}]}
JSON
        harness_spawn coordinatord "$COORDINATORD" --config "$d/cd.json"
        harness_wait_for 10 curl -sf "http://127.0.0.1:$cport/health/ready" && break
done
if [ "$streams" -gt 0 ]; then
        # A deployment that stays running: its one instance's agent never
        # answers (the drain command waits in the queue for the whole run).
        now=$(( $(date +%s%N) / 1000000 ))
        redis-cli -p "$REDIS_PORT" HSET "coord:{bench}:instance:stream-1" id stream-1 service streamsvc host streamhost \
                address 10.9.9.9:80 version 1.0 state healthy health healthy config_version 0 last_seen "$now" \
                ttl_ms 3600000 registered_at "$now" >/dev/null
        redis-cli -p "$REDIS_PORT" SET "coord:{bench}:alive:stream-1" 1 PX 3600000 >/dev/null
        redis-cli -p "$REDIS_PORT" ZADD "coord:{bench}:instances" "$now" stream-1 >/dev/null
        harness_wait_for 10 sh -c "curl -sf -H 'Authorization: Bearer $TOKEN' http://127.0.0.1:$cport/v1/instances/stream-1" ||
                { echo "fleet.sh: the stream instance did not show up" >&2; exit 1; }
        dep=$(curl -sf -X POST -H "Authorization: Bearer $DTOKEN" -H 'Content-Type: application/json' \
                -d '{"service":"streamsvc","version":"2.0","migrate":false,"strategy":{"progress_deadline":"1h"}}' \
                "http://127.0.0.1:$cport/v1/deployments" | jq -r .id)
        python3 "$srcdir/tests/util/sse-load.py" --url "http://127.0.0.1:$cport" --token "$TOKEN" --deployment "$dep" \
                --streams "$streams" --hold-only 3600 >"$d/streams.out" 2>&1 &
        harness_track $!
        harness_wait_for 30 grep -q streams-opened "$d/streams.out" || { cat "$d/streams.out" >&2; exit 1; }
        echo "# $streams event streams held open on running deployment $dep"
fi
echo "# $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(redis-server --version | cut -d' ' -f1-3)"
"$LOAD" --redis-port "$REDIS_PORT" --ns bench --url "http://127.0.0.1:$cport" --token "$TOKEN" \
        --pid "$PID_coordinatord" "$@"
