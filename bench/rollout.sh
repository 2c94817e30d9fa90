#!/bin/bash
# bench/rollout: how fast coordinatord's rolling-deployment controller moves a
# large fleet, and what it costs.  Prints figures, never asserts them.
#
# Simulated mode (default): a private redis-server, one coordinatord and
# bench/agent-sim with 1,000 instances of service "web" on 1.0 (one host queue
# each, the real agent's Redis protocol, hooks and probes instant by default);
# once coordinatord shows all of them healthy, POST /v1/deployments moves them to
# 2.0 with {"migrate":false,"strategy":{"max_parallel":50,"min_healthy_time":"0s"}}
# and the script polls GET /v1/deployments/ID until it succeeded.  Every run
# starts from scratch (FLUSHALL, new coordinatord, new agent-sim).  Per run:
#   wall (API)       finished_at - created_at of the deployment record
#   wall (script)    POST sent -> "succeeded" seen by the poll (+ up to --poll-ms)
#   cpu              coordinatord utime+stime (/proc/PID/stat) over the same span,
#                    and cpu seconds / script wall seconds (1.00 = one core)
#   peak RSS         VmHWM of coordinatord at the end of the rollout
#   commands         what agent-sim executed (drain + deploy + undrain = 3 per
#                    instance with migrate false)
#   overhead         the coordinator's own time per instance step, see below
# and at the end the median of every figure over --runs.
#
# Coordinator overhead per instance step.  max_parallel P slots each take
# ceil(N / P) instances one after another ("waves"); per instance the simulated
# agent spends 3 hooks (drain, deploy, undrain) plus one probe interval (starting
# -> healthy after the deploy), min_healthy_time and drain_delay being 0.  So
#   simulated critical path = ceil(N/P) * (3*hook_ms + probe_ms)
#   overhead per instance step (ms) = (wall - simulated critical path) / ceil(N/P)
# i.e. what coordinatord (plus Redis and the simulator, which are far cheaper)
# adds to take one instance through drain -> deploy -> verify -> undrain in one
# slot.  Also printed amortised over the fleet: (wall - simulated) / N.
#
# Real mode (--real N): N real coord-agents (agent/coord-agent, host-1..N), each
# with one deploy/demo/coord-demo-app --version-file, hooks that only write the
# version file (deploy) or do nothing (drain, undrain), HTTP probes every 200 ms
# (rise 1, fall 1), max_parallel 5 (--max-parallel), min_healthy_time 0s.  One fleet
# for all runs: run k deploys version (k+1).0.  Prints the rollout time (and
# coordinatord's CPU) per run and the medians.
#
#   cd BUILD_DIR && make && SRC_DIR/bench/rollout.sh [--runs 3] [--instances 1000]
#       [--max-parallel 50] [--hook-ms 0] [--probe-ms 0] [--heartbeat-ms 1000]
#       [--poll-ms 200] [--perf]
#   cd BUILD_DIR && make && SRC_DIR/bench/rollout.sh --real 50 [--runs 3] [--max-parallel 5]
#
# --perf records coordinatord with `perf record --call-graph dwarf` during the last
# run's rollout and prints the top of `perf report` (needs a working perf;
# PERF_DATA=FILE keeps a copy of perf.data).
# Goals (from the issue): 1,000 instances in < 10 s, < 5 ms coordinator overhead per
# instance step, coordinatord under one core.
set -eu
srcdir=$(cd "$(dirname "$0")/.." && pwd)
top_builddir=${top_builddir:-$(pwd)}
SIM=${AGENT_SIM:-$top_builddir/bench/agent-sim}
COORDINATORD=${COORDINATORD:-$top_builddir/coordinatord/coordinatord}
COORD_AGENT=${COORD_AGENT:-$top_builddir/agent/coord-agent}
DEMO=${DEMO:-$top_builddir/deploy/demo/coord-demo-app}

RUNS=3 N=1000 P="" HOOK_MS=0 PROBE_MS=0 HB_MS=1000 POLL_MS=200 REAL=0 PERF=0
usage() {
        sed -n '2,/^set -eu/p' "$0" | sed -n 's/^# \{0,1\}//p' >&2
        exit 2
}
while [ $# -gt 0 ]; do
        case "$1" in
        --runs) RUNS=$2; shift 2 ;;
        --instances) N=$2; shift 2 ;;
        --max-parallel) P=$2; shift 2 ;;
        --hook-ms) HOOK_MS=$2; shift 2 ;;
        --probe-ms) PROBE_MS=$2; shift 2 ;;
        --heartbeat-ms) HB_MS=$2; shift 2 ;;
        --poll-ms) POLL_MS=$2; shift 2 ;;
        --real) REAL=$2; shift 2 ;;
        --perf) PERF=1; shift ;;
        -h|--help) usage ;;
        *) echo "rollout.sh: unknown argument '$1'" >&2; usage ;;
        esac
done
for v in "$RUNS" "$N" "$HOOK_MS" "$PROBE_MS" "$HB_MS" "$POLL_MS" "$REAL" ${P:+"$P"}; do
        case "$v" in ''|*[!0-9]*) echo "rollout.sh: '$v' is not a number" >&2; exit 2 ;; esac
done
[ "$RUNS" -ge 1 ] || { echo "rollout.sh: --runs must be >= 1" >&2; exit 2; }
if [ "$REAL" -gt 0 ]; then
        P=${P:-5}
        N=$REAL
else
        P=${P:-50}
fi
[ "$P" -ge 1 ] && [ "$N" -ge 1 ] || { echo "rollout.sh: --max-parallel and the fleet size must be >= 1" >&2; exit 2; }

[ -x "$COORDINATORD" ] || { echo "rollout.sh: $COORDINATORD not built (run 'make' in the build dir)" >&2; exit 2; }
if [ "$REAL" -gt 0 ]; then
        for b in "$COORD_AGENT" "$DEMO"; do
                [ -x "$b" ] || { echo "rollout.sh: $b not built (run 'make' in the build dir)" >&2; exit 2; }
        done
else
        [ -x "$SIM" ] || { echo "rollout.sh: $SIM not built (run 'make' in the build dir)" >&2; exit 2; }
fi

COORD_HARNESS="$srcdir/tests/harness.sh"
. "$COORD_HARNESS"
harness_init
harness_need curl jq redis-cli redis-server awk
export COORD_LOG_LEVEL=warning
d=$COORD_TEST_DIR
NS=bench
HZ=$(getconf CLK_TCK)
harness_start_redis
REDIS_PID=$(cat "$d/redis.pid")

rcli() { redis-cli -p "$REDIS_PORT" "$@"; }
ms_now() { echo $(( $(date +%s%N) / 1000000 )); }
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
hwm_kb() { awk '/^VmHWM/ { print $2 }' "/proc/$1/status"; }
rfc_ms() { date -u -d "$1" +%s%3N; }
api() { # METHOD PATH [CURL ARGS]
        m=$1 p=$2
        shift 2
        curl -sS -m 10 -X "$m" "$@" "$URL$p"
}

# Stop a process the harness started and forget it (the cleanup would
# otherwise signal a PID that may have been reused).
stop_pid() {
        kill -TERM "$1" 2>/dev/null || true
        harness_wait_gone 10 "$1" || kill -KILL "$1" 2>/dev/null || true
        wait "$1" 2>/dev/null || true
        HARNESS_PIDS=$(echo " $HARNESS_PIDS " | sed "s/ $1 / /")
}

is_leader() { curl -sf "$URL/v1/leader" | jq -e .is_leader >/dev/null; }

# coord_start NAME: one coordinatord (no auth: loopback only); sets URL, CD_PID.
coord_start() {
        for _try in 1 2 3; do
                port=$(harness_free_port)
                cat >"$d/$1.json" <<JSON
{"listen":"127.0.0.1:$port","redis":"$REDIS_URL","namespace":"$NS","id":"$1","insecure_no_auth":true,
 "deregister_after":"1h"}
JSON
                harness_spawn "$1" "$COORDINATORD" --config "$d/$1.json"
                CD_PID=$pid
                URL=http://127.0.0.1:$port
                if harness_wait_for 10 curl -sf "$URL/health/ready"; then
                        # The leader drives deployments: wait until this one is it.
                        harness_wait_for 20 is_leader ||
                                fail "coordinatord $1 did not become leader"
                        return 0
                fi
                grep -q "Failed to listen" "$d/$1.log" || break
                stop_pid "$CD_PID"
        done
        cat "$d/$1.log" >&2
        fail "coordinatord $1 did not start"
}

metric() { api GET /metrics | awk -v m="$1" '$1 == m { print $2; f = 1 } END { if (!f) print 0 }'; }

healthy_count() { # VERSION
        api GET "/v1/instances?service=web&state=healthy" |
                jq --arg v "$1" '[.instances[] | select(.version == $v)] | length'
}
fleet_ready() { [ "$(healthy_count "$1")" -ge "$N" ]; }

median() { # numbers on stdin
        sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2];
                else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

PERF_OK=0
if [ "$PERF" = 1 ]; then
        if command -v perf >/dev/null 2>&1 && perf record -q -o "$d/perf-probe.data" -- true >/dev/null 2>&1; then
                PERF_OK=1
        else
                note "perf is missing or not permitted here; --perf ignored"
        fi
fi

# deploy_and_wait RUN VERSION: POST the deployment, poll it; sets the R_* figures.
deploy_and_wait() {
        run=$1 ver=$2
        body=$(jq -cn --arg v "$ver" --argjson p "$P" \
                '{service:"web",version:$v,migrate:false,strategy:{max_parallel:$p,min_healthy_time:"0s"}}')
        perf_pid=""
        if [ "$PERF_OK" = 1 ] && [ "$run" = "$RUNS" ]; then
                perf record -q --call-graph dwarf,16384 -F 499 -p "$CD_PID" -o "$d/perf.data" >"$d/perf.log" 2>&1 &
                perf_pid=$!
                harness_track "$perf_pid"
                sleep 0.5
        fi
        m0=$(metric coordinatord_reconciler_passes_total) k0=$(metric coordinatord_reconciler_commits_total)
        rc0=$(cpu_ticks "$REDIS_PID") sc0=$(cpu_ticks "${SIM_PID:-$$}")
        c0=$(cpu_ticks "$CD_PID")
        t0=$(ms_now)
        resp=$(api POST /v1/deployments -H 'Content-Type: application/json' -d "$body")
        id=$(echo "$resp" | jq -r '.id // empty')
        [ -n "$id" ] || fail "POST /v1/deployments failed: $resp"
        while :; do
                sleep "$(awk "BEGIN { print $POLL_MS / 1000 }")"
                doc=$(api GET "/v1/deployments/$id") || continue
                st=$(echo "$doc" | jq -r .state)
                case "$st" in
                succeeded) break ;;
                failed | reverted | reverting | cancelled)
                        echo "$doc" | jq -c '{state, error, progress}' >&2
                        fail "deployment $id ended $st (run $run)" ;;
                esac
                if [ $(( $(ms_now) - t0 )) -gt 600000 ]; then
                        echo "$doc" | jq -c '{state, error, progress}' >&2
                        fail "deployment $id still $st after 10 minutes (run $run)"
                fi
        done
        t1=$(ms_now)
        c1=$(cpu_ticks "$CD_PID")
        rc1=$(cpu_ticks "$REDIS_PID") sc1=$(cpu_ticks "${SIM_PID:-$$}")
        R_PASSES=$(( $(metric coordinatord_reconciler_passes_total) - m0 ))
        R_COMMITS=$(( $(metric coordinatord_reconciler_commits_total) - k0 ))
        R_DOC_KB=$(( $(rcli HSTRLEN "coord:{$NS}:deployment:$id" doc) / 1024 ))
        R_REDIS_CPU=$(awk "BEGIN { printf \"%.2f\", ($rc1 - $rc0) / $HZ }")
        R_SIM_CPU=$(awk "BEGIN { printf \"%.2f\", ($sc1 - $sc0) / $HZ }")
        if [ -n "$perf_pid" ]; then
                kill -INT "$perf_pid" 2>/dev/null || true
                wait "$perf_pid" 2>/dev/null || true
        fi
        R_ID=$id
        R_API_MS=$(( $(rfc_ms "$(echo "$doc" | jq -r .finished_at)") - $(rfc_ms "$(echo "$doc" | jq -r .created_at)") ))
        R_SCRIPT_MS=$((t1 - t0))
        R_CPU_S=$(awk "BEGIN { printf \"%.2f\", ($c1 - $c0) / $HZ }")
        R_UTIL=$(awk "BEGIN { printf \"%.2f\", ($c1 - $c0) / $HZ / ($R_SCRIPT_MS / 1000) }")
        R_HWM=$(hwm_kb "$CD_PID")
        R_DONE=$(echo "$doc" | jq '[.instances[] | select(.state == "done")] | length')
}

# step_times ID: from the deployment's event stream, per instance step, the
# median and maximum in ms: start (created -> first drain sent), drain (drain
# sent -> its result), deploy (deploy sent -> its result), verify+undrain (deploy
# result -> undrain result, the instance "done").
step_times() {
        rcli XRANGE "coord:{$NS}:deployment:$1:events" - + | grep '^{' | jq -s -r '
                def ms: (.[0:19] + "Z" | fromdateiso8601) * 1000 + (.[20:23] | tonumber);
                def stat: sort | if length == 0 then "n/a" else "\(.[(length / 2) | floor])/\(.[-1])" end;
                (.[0].ts | ms) as $t0
                | [.[] | select(.type == "instance")] | group_by(.instance)
                | map(reduce .[] as $e ({}; if has($e.state) then . else . + {($e.state): ($e.ts | ms)} end))
                | "start \(map(.draining) | min - $t0) ms; per step p50/max ms: drain \(map(.updating - .draining) | stat),"
                  + " deploy \(map(.verifying - .updating) | stat), verify+undrain \(map(.done - .verifying) | stat)"'
}

perf_report() {
        [ -f "$d/perf.data" ] || return 0
        [ -z "${PERF_DATA:-}" ] || cp "$d/perf.data" "$PERF_DATA"
        echo "# perf (coordinatord during the last run's rollout): top symbols by self time"
        perf report -i "$d/perf.data" --no-children --sort dso,symbol --stdio 2>/dev/null |
                grep -E '^ +[0-9.]+%' | head -25
        echo "# perf: top by inclusive time (self + callees)"
        perf report -i "$d/perf.data" --children --sort dso,symbol --stdio 2>/dev/null |
                grep -E '^ +[0-9.]+% +[0-9.]+%' | head -40
}

echo "# $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(redis-server --version | cut -d' ' -f1-3)"

# ---------------------------------------------------------------- real agents
if [ "$REAL" -gt 0 ]; then
        mkdir -p "$d/bin"
        cat >"$d/bin/deploy-hook" <<'EOF'
#!/bin/sh
# deploy-hook DIR: the demo app reads its version from DIR/version.
printf '%s\n' "$COORD_VERSION" >"$1/version.tmp" && mv "$1/version.tmp" "$1/version"
EOF
        chmod +x "$d/bin/deploy-hook"
        rcli FLUSHALL >/dev/null
        echo "# real mode: $N coord-agents + $N coord-demo-app, HTTP probes 200ms rise 1 fall 1, max_parallel $P"
        for i in $(seq 1 "$N"); do
                w="$d/web-$i"
                mkdir -p "$w"
                printf '1.0\n' >"$w/version"
                harness_spawn_port "app-$i" health/live "$DEMO" --version-file "$w/version"
                cat >"$d/agent-$i.json" <<JSON
{"redis":"$REDIS_URL","namespace":"$NS","host":"host-$i","heartbeat_interval":"1s","state_dir":"$w",
 "services":[{"name":"web","instance":"web-$i","address":"127.0.0.1:$port","version":"1.0",
   "health":{"http":"http://127.0.0.1:$port/health/ready","interval":"200ms","timeout":"1s","rise":1,"fall":1},
   "hooks":{"drain":"true","deploy":"$d/bin/deploy-hook $w","undrain":"true","timeout":"60s"}}]}
JSON
                harness_spawn "agent-$i" "$COORD_AGENT" --config "$d/agent-$i.json"
        done
        coord_start cd
        harness_wait_for 60 fleet_ready 1.0 || fail "the fleet did not turn healthy: $(healthy_count 1.0) of $N"
        : >"$d/results"
        for run in $(seq 1 "$RUNS"); do
                ver="$((run + 1)).0"
                deploy_and_wait "$run" "$ver"
                echo "run $run: deploy $ver to $N real agents, max_parallel $P: ${R_API_MS} ms (API created_at -> finished_at)," \
                        "${R_SCRIPT_MS} ms (script), coordinatord cpu ${R_CPU_S} s (${R_UTIL} cores), $R_DONE done;" \
                        "$R_PASSES passes, $R_COMMITS commits; redis-server cpu ${R_REDIS_CPU} s"
                echo "  $(step_times "$R_ID")"
                echo "$R_API_MS $R_SCRIPT_MS $R_CPU_S $R_UTIL" >>"$d/results"
        done
        echo "median of $RUNS runs ($N real agents, max_parallel $P):" \
                "rollout time $(cut -d' ' -f1 "$d/results" | median) ms (API), $(cut -d' ' -f2 "$d/results" | median) ms (script);" \
                "coordinatord cpu $(cut -d' ' -f3 "$d/results" | median) s, $(cut -d' ' -f4 "$d/results" | median) cores"
        perf_report
        exit 0
fi

# ------------------------------------------------------------- simulated fleet
WAVES=$(( (N + P - 1) / P ))
SIM_PER_STEP=$(( 3 * HOOK_MS + PROBE_MS ))
SIM_CRIT=$(( WAVES * SIM_PER_STEP ))
echo "# simulated: $N instances (agent-sim, heartbeat ${HB_MS}ms, hooks ${HOOK_MS}ms, probe ${PROBE_MS}ms)," \
        "max_parallel $P, min_healthy_time 0s, migrate false; $RUNS runs"
echo "# overhead per instance step = (wall - simulated critical path) / ceil(N/P);" \
        "simulated critical path = ceil($N/$P) * (3*hook_ms + probe_ms) = $WAVES * $SIM_PER_STEP = $SIM_CRIT ms"
: >"$d/results"
for run in $(seq 1 "$RUNS"); do
        rcli FLUSHALL >/dev/null
        coord_start "cd-$run"
        harness_spawn "sim-$run" "$SIM" --redis-port "$REDIS_PORT" --namespace "$NS" --service web \
                --instances "$N" --version 1.0 --heartbeat-ms "$HB_MS" --hook-ms "$HOOK_MS" --probe-ms "$PROBE_MS"
        SIM_PID=$pid
        harness_wait_for 60 fleet_ready 1.0 ||
                fail "coordinatord does not show $N healthy instances: $(healthy_count 1.0)"
        # Baseline: coordinatord following the heartbeating fleet, no deployment.
        i0=$(cpu_ticks "$CD_PID")
        sleep 2
        R_IDLE=$(awk "BEGIN { printf \"%.2f\", ($(cpu_ticks "$CD_PID") - $i0) / $HZ / 2 }")
        deploy_and_wait "$run" 2.0
        stop_pid "$SIM_PID"
        line=$(grep '^agent-sim: instances=' "$d/sim-$run.log" || true)
        [ -n "$line" ] || { cat "$d/sim-$run.log" >&2; fail "agent-sim printed no counts"; }
        cmds=$(echo "$line" | sed -n 's/.* commands=\([0-9]*\).*/\1/p')
        failed=$(echo "$line" | sed -n 's/.* failed=\([0-9]*\).*/\1/p')
        [ "$failed" = 0 ] || note "agent-sim reports $failed failed commands"
        stop_pid "$CD_PID"
        over=$(awk "BEGIN { printf \"%.2f\", ($R_API_MS - $SIM_CRIT) / $WAVES }")
        amort=$(awk "BEGIN { printf \"%.3f\", ($R_API_MS - $SIM_CRIT) / $N }")
        echo "run $run: wall ${R_API_MS} ms (API), ${R_SCRIPT_MS} ms (script); coordinatord cpu ${R_CPU_S} s" \
                "= ${R_UTIL} cores, peak RSS ${R_HWM} kB; $cmds commands ($(awk "BEGIN { printf \"%.2f\", $cmds / $N }")/instance)," \
                "$R_DONE instances done; overhead ${over} ms/instance step (${amort} ms amortised)"
        echo "  $(step_times "$R_ID")"
        echo "  coordinatord before the deployment (fleet only, 2 s): ${R_IDLE} cores"
        echo "  reconciler: $R_PASSES passes, $R_COMMITS commits of a ${R_DOC_KB} kB record;" \
                "cpu during the rollout: redis-server ${R_REDIS_CPU} s, agent-sim ${R_SIM_CPU} s"
        echo "  ${line#agent-sim: }"
        echo "$R_API_MS $R_SCRIPT_MS $R_CPU_S $R_UTIL $R_HWM $cmds $over $amort $R_IDLE" >>"$d/results"
done

col() { cut -d' ' -f"$1" "$d/results" | median; }
echo
echo "median of $RUNS runs: $N simulated instances, max_parallel $P, hooks ${HOOK_MS}ms, probe ${PROBE_MS}ms"
echo "  rollout wall time (created_at -> finished_at)         $(col 1) ms    (goal < 10000 ms)"
echo "  rollout wall time (measured by the script, +poll)    $(col 2) ms"
echo "  coordinatord CPU during the rollout                  $(col 3) s"
echo "  coordinatord CPU utilisation (cpu s / wall s)        $(col 4) cores (goal < 1 core)"
echo "  coordinatord CPU before the deployment (fleet only)  $(col 9) cores"
echo "  coordinatord peak RSS (VmHWM)                        $(col 5) kB"
echo "  commands executed by agent-sim                       $(col 6) ($N instances: drain, deploy, undrain each)"
echo "  coordinator overhead per instance step (ms)          $(col 7) ms    (goal < 5 ms)"
echo "      = (wall - ceil(N/P)*(3*hook_ms + probe_ms)) / ceil(N/P) = (wall - $SIM_CRIT) / $WAVES"
echo "  coordinator overhead amortised per instance (ms)     $(col 8) ms    = (wall - $SIM_CRIT) / $N"
perf_report
