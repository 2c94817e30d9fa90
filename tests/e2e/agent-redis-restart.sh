# Redis outage: probes keep running and local state is kept; after Redis
# restarts (losing its data) the agent re-registers within two heartbeats,
# reconciles, takes commands again and never crashes.
. "$top_srcdir/tests/e2e/agent-lib.sh"
agent_init
D=$COORD_TEST_DIR
demo_start app --fail-file "$D/fail"
APP=$DEMO_PORT

cat >"$D/agent.json" <<JSON
{"redis":"$REDIS_URL","namespace":"$NS","host":"$HOST","heartbeat_interval":"1s","state_dir":"$D/state",
 "services":[{"name":"web","instance":"web-1","version":"1.0",
   "health":{"http":"http://127.0.0.1:$APP/health/ready","interval":"100ms","rise":1,"fall":1}}]}
JSON
agent_start agent "$D/agent.json"
wait_state web-1 healthy 10

exists() {
        [ "$(rcli EXISTS "coord:{$NS}:instance:web-1")" = 1 ]
}
# redis_back SECS AFTER: restart Redis, wait up to SECS for web-1 to be
# registered again (fail "not re-registered after AFTER"); took: the ms it took.
redis_back() {
        harness_restart_redis
        back=$(now_ms)
        harness_wait_for "$1" exists || fail "not re-registered after $2"
        took=$(( $(now_ms) - back ))
}

# Quick restart: registered again within 2 heartbeats of Redis being back.
redis_back 5 "a restart"
note "re-registered ${took} ms after Redis came back (heartbeat 1s)"
[ "$took" -le 2000 ] || fail "re-registration took ${took} ms (> 2 heartbeats)"
[ "$(ihget web-1 state)" = healthy ] || fail "state after restart: $(ihget web-1 state)"
[ "$(rcli EXISTS "coord:{$NS}:alive:web-1")" = 1 ] || fail "alive key not restored"

# Longer outage: probes keep running, the change shows once Redis is back.
harness_kill_redis
touch "$D/fail"
# The outage's length is the scenario (the reconnect backoff grows), not a wait.
sleep 2
kill -0 "$PID_agent" || fail "agent died while Redis was down"
grep -q "healthy -> unhealthy" "$D/agent.log" || fail "probes stopped while Redis was down"
redis_back 8 "a long outage"
note "re-registered ${took} ms after a 2 s outage"
# The reconnect backoff (lib/redis_client.h) is capped at 5 s.
[ "$took" -le 6000 ] || fail "re-registration took ${took} ms after a long outage"
[ "$(ihget web-1 state)" = unhealthy ] || fail "local state lost: $(ihget web-1 state)"

# Commands work again (the wake-up subscription was restored).
queue_command '{"id":"r1","type":"drain","instance":"web-1"}'
wait_command r1 3
[ "$(command_field r1 state)" = done ] || fail "command after reconnect"
kill -0 "$PID_agent" || fail "agent died"
grep -qi "lost the connection to redis" "$D/agent.log" || fail "outage not logged"
echo "agent-redis-restart: ok"
