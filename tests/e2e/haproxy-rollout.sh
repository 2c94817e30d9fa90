#!/bin/sh
# Zero-downtime rolling deploys behind a real HAProxy (docs/zero-downtime.md).
#
# Three demo apps (every request to / takes 20 ms) behind Debian's haproxy,
# each with a coord-agent whose drain/undrain hooks are
# deploy/examples/hooks/haproxy-drain and whose deploy hook is
# deploy/examples/hooks/restart-app (SIGTERM the old app, wait for it, start
# the new version with setsid).  A load generator sends keep-alive requests to
# HAProxy's frontend from 8 connections the whole time and counts every
# request: 2xx, non-2xx, or a connection error.
#
#   control A  restart the apps without draining, the apps shutting down
#              gracefully: HAProxy still sends them requests while they stop
#              and has to rescue them (retries, redispatches > 0); no
#              assertion on failures, which HAProxy's retries usually hide
#   control B  restart the apps without draining, the apps stopping at once
#              (--shutdown-timeout 0s, an app without graceful shutdown):
#              requests fail.  This is what makes the zeros below meaningful:
#              the load and the counting do see a restart done wrong.
#   rollout 1  coordctl deploy web 2.0 (max_parallel 1, min_healthy_time 500ms):
#              exit 0, all on 2.0, zero failed requests, and HAProxy never
#              even had to retry or redispatch one (it sent nothing to an app
#              being restarted: the drain hook works)
#   rollout 2  coordctl deploy web 3.0 --healthy-deadline 3s, 3.0 unhealthy:
#              exit 1, reverted, all back on 2.0, zero failed requests, no
#              response ever came from 3.0, no retry or redispatch
#
# Sent and failed requests of each phase are printed.  Everything listens on
# 127.0.0.1; every wait is bounded; the load stops by itself after 60 s.
set -eu
. "$top_srcdir/tests/e2e/rollout-lib.sh"
rollout_init
harness_need haproxy socat python3 setsid ps

HOOKS="$top_srcdir/deploy/examples/hooks"
BIN="$COORD_TEST_DIR/bin"
HA_SOCK="$COORD_TEST_DIR/haproxy.sock"
mkdir -p "$BIN"
# The agents (and so their hooks) inherit these.
export HOOKS DEMO HA_SOCK HOOKS_LOG

# ---- the load generator ----
# The bounded load generator shared with deploy/quickstart: deploy/demo/coord-loadgen.
cp "$top_srcdir/deploy/demo/coord-loadgen" "$BIN/load"

# ---- the hooks: drain/undrain through HAProxy, deploy = graceful restart ----
cat >"$BIN/app-hook" <<'EOF'
#!/bin/sh
# app-hook drain|deploy|undrain I PORT: log the call like rollout-lib's hook,
# then run the example hook.  APP_EXTRA: more demo app flags (control B).
name=$1 i=$2 port=$3 d="$COORD_TEST_DIR/web-$2"
echo "$(date +%s%3N) $name web-$i ${COORD_VERSION:-}" >>"$HOOKS_LOG"
case $name in
drain) exec "$HOOKS/haproxy-drain" drain "app/web-$i" --socket "$HA_SOCK" --timeout 10 ;;
undrain) exec "$HOOKS/haproxy-drain" ready "app/web-$i" --socket "$HA_SOCK" ;;
deploy)
        # shellcheck disable=SC2086 # APP_EXTRA is a list of flags
        exec "$HOOKS/restart-app" --pidfile "$d/app.pid" --log "$d/app.log" \
                --health "http://127.0.0.1:$port/health/live" --stop-timeout 10 --start-timeout 10 -- \
                "$DEMO" --port "$port" --version "$COORD_VERSION" --delay-ms 20 --unhealthy-version 3.0 \
                ${APP_EXTRA:-} ;;
*) echo "$name: nothing to do" ;;
esac
EOF
chmod +x "$BIN/app-hook"

# ---- three demo apps on 1.0, started the way the deploy hook starts them ----
for i in 1 2 3; do
        mkdir -p "$COORD_TEST_DIR/web-$i"
        for _attempt in 1 2 3 4 5; do
                port=$(harness_free_port)
                COORD_VERSION=1.0 "$BIN/app-hook" deploy "$i" "$port" >"$COORD_TEST_DIR/start-$i.out" 2>&1 && break
        done
        curl -fsS "http://127.0.0.1:$port/health/live" >/dev/null || { cat "$COORD_TEST_DIR/start-$i.out" >&2; fail "web-$i did not start"; }
        eval "APP_PORT_$i=$port"
done
: >"$HOOKS_LOG"

# ---- HAProxy, configured as an operator would ----
ha_start() {
        FRONT_PORT=$(harness_free_port)
        cat >"$COORD_TEST_DIR/haproxy.cfg" <<EOF
global
    stats socket $HA_SOCK mode 600 level admin
    stats timeout 10s

defaults
    mode http
    log stdout format raw local0 info
    option httplog
    option dontlog-normal          # log only errors, retries and redispatches
    timeout connect 1s
    timeout client 10s
    timeout server 10s
    timeout http-keep-alive 10s
    timeout check 1s
    retries 3
    option redispatch 1            # retry on another server, every time

frontend web
    bind 127.0.0.1:$FRONT_PORT
    default_backend app

backend app
    balance roundrobin
    option httpchk GET /health/ready
    default-server inter 200ms fall 1 rise 1
    server web-1 127.0.0.1:$APP_PORT_1 check
    server web-2 127.0.0.1:$APP_PORT_2 check
    server web-3 127.0.0.1:$APP_PORT_3 check
EOF
        rm -f "$HA_SOCK"
        harness_spawn haproxy haproxy -f "$COORD_TEST_DIR/haproxy.cfg" -db
}

# ha_stat SVNAME FIELD: one column of backend app's "show stat" row, by name.
ha_stat() {
        echo "show stat" | socat -T 5 - "UNIX-CONNECT:$HA_SOCK" | awk -F, -v s="$1" -v f="$2" '
                NR == 1 { sub(/^# */, ""); for (i = 1; i <= NF; i++) col[$i] = i; next }
                $col["pxname"] == "app" && $col["svname"] == s { print $col[f] }'
}

ha_up() { [ "$(ha_stat "$1" status)" = UP ]; }

ha_all_up() { ha_up web-1 && ha_up web-2 && ha_up web-3; }

# Requests HAProxy had to retry or redispatch, or that failed on the server
# side: all 0 when it never sent a request to an app that was going away.
ha_rescued() {
        echo $(( $(ha_stat BACKEND wretr) + $(ha_stat BACKEND wredis) + $(ha_stat BACKEND econ) + $(ha_stat BACKEND eresp) ))
}

for _attempt in 1 2 3; do
        ha_start
        harness_wait_for 10 ha_all_up && break
        kill "$PID_haproxy" 2>/dev/null || true
        harness_wait_gone 5 "$PID_haproxy" || true
done
ha_all_up || { cat "$COORD_TEST_DIR/haproxy.log" >&2; fail "HAProxy did not start with web-1..3 UP"; }
FRONT="http://127.0.0.1:$FRONT_PORT"
[ "$(curl -fsS "$FRONT/" | jq -r .version)" = 1.0 ] || fail "GET / through HAProxy does not answer 1.0"

# ---- the example hook's error handling ----
set +e
out=$("$HOOKS/haproxy-drain" drain app/web-9 --socket "$HA_SOCK" 2>&1)
rc=$?
set -e
[ "$rc" = 2 ] && echo "$out" | grep -q "no server 'web-9'" || fail "unknown server: exit $rc, '$out'"
set +e
out=$("$HOOKS/haproxy-drain" ready nope/web-1 --socket "$HA_SOCK" 2>&1)
rc=$?
set -e
[ "$rc" = 2 ] && echo "$out" | grep -q "unknown backend 'nope'" || fail "unknown backend: exit $rc, '$out'"
set +e
out=$(HAPROXY_SOCKET="$COORD_TEST_DIR/none.sock" "$HOOKS/haproxy-drain" drain app/web-1 2>&1)
rc=$?
set -e
[ "$rc" = 2 ] && echo "$out" | grep -q "$COORD_TEST_DIR/none.sock" || fail "missing socket: exit $rc, '$out'"

# ---- agents and a coordinatord ----
for i in 1 2 3; do
        eval "port=\$APP_PORT_$i"
        hook="$BIN/app-hook"
        write_agent_config "$i" "$port" "{\"drain\": \"$hook drain $i $port\", \"deploy\": \"$hook deploy $i $port\",
              \"undrain\": \"$hook undrain $i $port\", \"timeout\": \"30s\"}"
        agent_spawn "$i"
done
harness_wait_for 20 fleet_healthy 3 || fail "the fleet did not turn healthy: $(instances_summary)"
coord_start coord-a

# ---- load phases ----
# load_begin ID LABEL: the load runs; HAProxy's rescue counter is noted.
load_begin() {
        LOAD=$1 LOAD_LABEL=$2
        LOAD_RESCUED=$(ha_rescued)
        LOAD_MARKS=""
        for i in 1 2 3; do
                LOAD_MARKS="$LOAD_MARKS $(wc -l <"$COORD_TEST_DIR/web-$i/app.log")"
        done
        harness_spawn "load-$LOAD" python3 "$BIN/load" "127.0.0.1:$FRONT_PORT" 8 60 \
                "$COORD_TEST_DIR/$LOAD.stop" "$COORD_TEST_DIR/$LOAD.json"
        harness_wait_for 10 load_running || fail "$LOAD: the load generator does not get answers"
}

load_running() {
        [ "$(cut -d' ' -f2 "$COORD_TEST_DIR/$LOAD.json.progress" 2>/dev/null || echo 0)" -ge 50 ]
}

# The requests the apps had in flight when they got SIGTERM during this phase
# (their "stopping: ..." log lines since load_begin).
inflight_at_sigterm() {
        set -- $LOAD_MARKS
        for i in 1 2 3; do
                tail -n +$(( $1 + 1 )) "$COORD_TEST_DIR/web-$i/app.log"
                shift
        done | sed -n 's/.*stopping: no new connections, \([0-9]*\) request.*/\1/p' | awk '{ n += $1 } END { print n + 0 }'
}

# load_end: stop the load; sets SENT, FAILED, RESCUED and prints them.
load_end() {
        touch "$COORD_TEST_DIR/$LOAD.stop"
        harness_wait_for 20 test -s "$COORD_TEST_DIR/$LOAD.json" || fail "$LOAD: the load generator did not finish"
        r="$COORD_TEST_DIR/$LOAD.json"
        SENT=$(jq .sent "$r")
        FAILED=$(jq '.errors + .non2xx' "$r")
        RESCUED=$(( $(ha_rescued) - LOAD_RESCUED ))
        [ "$(jq '.ok + .errors + .non2xx' "$r")" = "$SENT" ] || fail "$LOAD: the counts do not add up: $(cat "$r")"
        echo "$LOAD_LABEL: $SENT requests sent, $FAILED failed ($(jq .errors "$r") connection errors," \
                "$(jq .non2xx "$r") non-2xx); answered by $(jq -c .versions "$r");" \
                "HAProxy retried/redispatched $RESCUED; $(inflight_at_sigterm) request(s) in flight at SIGTERM"
        [ "$FAILED" = 0 ] || echo "$LOAD_LABEL: first failures: $(jq -c .samples "$r")"
}

# restart_all_undrained [DEMO FLAGS]: what a deploy hook without a drain does.
restart_all_undrained() {
        for i in 1 2 3; do
                eval "port=\$APP_PORT_$i"
                APP_EXTRA="$*" COORD_VERSION=1.0 "$BIN/app-hook" deploy "$i" "$port" >/dev/null ||
                        fail "restarting web-$i failed"
                harness_wait_for 5 ha_up "web-$i" || fail "web-$i not UP in HAProxy after its restart"
                # The load reaches it again before the next one goes.
                served=$(ha_stat "web-$i" stot)
                harness_wait_for 5 ha_served_beyond "web-$i" "$served" ||
                        fail "web-$i gets no requests from HAProxy after its restart"
        done
}

# ha_served_beyond SVNAME N: HAProxy has sent SVNAME more than N requests in all.
ha_served_beyond() { [ "$(ha_stat "$1" stot)" -gt "$2" ]; }

# rollout_under_load ID LABEL WANT_RC DEPLOY ARGS...: `coordctl deploy ARGS` under
# load phase ID (LABEL), its output shown; fail unless it exits WANT_RC.
rollout_under_load() {
        r_want=$3
        load_begin "$1" "$2"
        shift 3
        harness_rc ctl deploy "$@" >"$COORD_TEST_DIR/$LOAD.out" 2>&1
        load_end
        sed 's/^/  | /' "$COORD_TEST_DIR/$LOAD.out"
        [ "$rc" = "$r_want" ] || fail "coordctl deploy $1 $2 exited $rc, want $r_want"
}

# Control A: graceful apps, no drain.  They are restarted into apps that stop
# at once (--shutdown-timeout 0s), for control B.
load_begin control-a "control A (restart without drain, graceful app)"
restart_all_undrained --shutdown-timeout 0s
load_end
[ "$RESCUED" -gt 0 ] || fail "control A: HAProxy never retried a request although nothing was drained"

# Control B: apps without graceful shutdown, no drain: requests fail.
load_begin control-b "control B (restart without drain, app without graceful shutdown)"
restart_all_undrained
load_end
[ "$FAILED" -gt 0 ] || fail "control B: no request failed while apps were killed under load: the load cannot see failures"
harness_wait_for 10 fleet_all 1.0 || fail "the fleet is not healthy on 1.0 after the controls: $(instances_summary)"
harness_wait_for 5 ha_all_up || fail "HAProxy does not see web-1..3 UP after the controls"
: >"$HOOKS_LOG"

# Rollout 1: 1.0 -> 2.0.
rollout_under_load rollout-1 "rollout 1 (1.0 -> 2.0)" 0 \
        web 2.0 --max-parallel 1 --min-healthy-time 500ms --healthy-deadline 10s --timeout 40s
harness_wait_for 5 fleet_all 2.0 || fail "not every instance healthy on 2.0: $(instances_summary)"
for i in 1 2 3; do
        eval "port=\$APP_PORT_$i"
        [ "$(curl -fsS "http://127.0.0.1:$port/version" | jq -r .version)" = 2.0 ] || fail "web-$i's app does not run 2.0"
        [ "$(hook_count drain "web-$i")" = 1 ] && [ "$(hook_count deploy "web-$i" 2.0)" = 1 ] &&
                [ "$(hook_count undrain "web-$i")" = 1 ] || fail "web-$i: hooks $(grep "web-$i" "$HOOKS_LOG" | tr '\n' ';')"
done
[ "$FAILED" = 0 ] || fail "rollout 1: $FAILED of $SENT requests failed"
[ "$RESCUED" = 0 ] || fail "rollout 1: HAProxy had to retry/redispatch $RESCUED requests: an app got traffic while it stopped"
[ "$(jq '.versions["2.0"] // 0' "$COORD_TEST_DIR/$LOAD.json")" -gt 0 ] || fail "rollout 1: no answer from 2.0"
ha_all_up || fail "HAProxy does not see web-1..3 UP after rollout 1"
: >"$HOOKS_LOG"

# Rollout 2: 3.0 never turns healthy; the deployment reverts web-1 to 2.0.
rollout_under_load rollout-2 "rollout 2 (2.0 -> unhealthy 3.0, reverted)" 1 \
        web 3.0 --max-parallel 1 --min-healthy-time 500ms --healthy-deadline 3s --timeout 40s
id=$(api GET "/v1/deployments?service=web&limit=1" | jq -r '.deployments[0].id')
[ "$(dep_state "$id")" = reverted ] || fail "deployment $id: state $(dep_state "$id"), want reverted"
harness_wait_for 5 fleet_all 2.0 || fail "not every instance back on 2.0 and healthy: $(instances_summary)"
[ "$(hook_count deploy web-1 3.0)" = 1 ] && [ "$(hook_count deploy web-1 2.0)" = 1 ] ||
        fail "web-1 was not deployed to 3.0 and back once: $(grep web-1 "$HOOKS_LOG" | tr '\n' ';')"
[ "$(grep -c 'web-[23]' "$HOOKS_LOG")" = 0 ] || fail "web-2/web-3 were touched: $(grep 'web-[23]' "$HOOKS_LOG" | tr '\n' ';')"
for i in 1 2 3; do
        eval "port=\$APP_PORT_$i"
        [ "$(curl -fsS "http://127.0.0.1:$port/version" | jq -r .version)" = 2.0 ] || fail "web-$i's app does not run 2.0"
done
[ "$FAILED" = 0 ] || fail "rollout 2: $FAILED of $SENT requests failed"
[ "$RESCUED" = 0 ] || fail "rollout 2: HAProxy had to retry/redispatch $RESCUED requests"
[ "$(jq '.versions["3.0"] // 0' "$COORD_TEST_DIR/$LOAD.json")" = 0 ] || fail "rollout 2: clients got answers from the unhealthy 3.0"
ha_all_up || fail "HAProxy does not see web-1..3 UP after rollout 2"

# Every restart by the deploy hook was graceful.
for i in 1 2 3; do
        grep -q "stopped gracefully" "$COORD_TEST_DIR/web-$i/app.log" || fail "web-$i never stopped gracefully"
done
