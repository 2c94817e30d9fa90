# Registration: the instance hash has the right fields, the alive key a TTL of
# about three heartbeats; SIGTERM marks instances stopped; after kill -9 the
# instance expires within TTL + 1 s; the version recorded in state_dir wins.
. "$top_srcdir/tests/e2e/agent-lib.sh"
agent_init
D=$COORD_TEST_DIR
demo_start app
APP=$DEMO_PORT

cat >"$D/agent.json" <<JSON
{"redis":"$REDIS_URL","namespace":"$NS","host":"$HOST","heartbeat_interval":"200ms","state_dir":"$D/state",
 "services":[
  {"name":"web","instance":"web-1","address":"127.0.0.1:$APP","version":"1.0",
   "health":{"http":"http://127.0.0.1:$APP/health/ready","interval":"100ms","rise":1,"fall":2}},
  {"name":"api","instance":"api-1","address":"127.0.0.1:$APP","version":"7.1",
   "health":{"tcp":"127.0.0.1:$APP","interval":"100ms","rise":1,"fall":2}}]}
JSON
agent_start agent "$D/agent.json"
wait_state web-1 healthy 10
wait_state api-1 healthy 10

[ "$(ihget web-1 id)" = web-1 ] || fail "id"
[ "$(ihget web-1 service)" = web ] || fail "service"
[ "$(ihget web-1 host)" = "$HOST" ] || fail "host"
[ "$(ihget web-1 address)" = "127.0.0.1:$APP" ] || fail "address"
[ "$(ihget web-1 version)" = 1.0 ] || fail "version"
[ "$(ihget api-1 version)" = 7.1 ] || fail "api version"
[ "$(ihget web-1 config_version)" = 0 ] || fail "config_version"
[ "$(ihget web-1 ttl_ms)" = 600 ] || fail "ttl_ms $(ihget web-1 ttl_ms)"
[ -n "$(ihget web-1 registered_at)" ] || fail "registered_at"
seen=$(ihget web-1 last_seen)
now=$(now_ms)
[ $((now - seen)) -lt 1500 ] || fail "last_seen $seen is stale (now $now)"
pttl=$(rcli PTTL "coord:{$NS}:alive:web-1")
[ "$pttl" -gt 0 ] && [ "$pttl" -le 600 ] || fail "alive PTTL $pttl"
[ "$(rcli ZCARD "coord:{$NS}:instances")" = 2 ] || fail "instances zset"
[ -n "$(rcli ZSCORE "coord:{$NS}:instances" api-1)" ] || fail "api-1 not in zset"
# A TCP probe fails once nothing listens.
kill -TERM "$PID_app"
wait_state api-1 unhealthy 5
wait_state web-1 unhealthy 5
# Heartbeats refresh last_seen.
harness_wait_for 2 last_seen_after web-1 "$seen" || fail "last_seen not refreshed"

# Graceful stop: stopped, alive gone, exit 0.
kill -TERM "$PID_agent"
wait "$PID_agent" || fail "agent exited non-zero on SIGTERM"
[ "$(ihget web-1 state)" = stopped ] || fail "not stopped after SIGTERM: $(ihget web-1 state)"
[ "$(ihget api-1 state)" = stopped ] || fail "api-1 not stopped"
[ "$(rcli EXISTS "coord:{$NS}:alive:web-1")" = 0 ] || fail "alive key left after SIGTERM"
grep -q "All instances marked stopped" "$D/agent.log" || fail "no stop log line"

# The version recorded in state_dir wins over the file.
echo '{"version":"3.0","config_version":0}' >"$D/state/instances/web-1.json"
agent_start agent2 "$D/agent.json"
wait_state web-1 unhealthy 10 # the app was stopped above
[ "$(ihget web-1 version)" = 3.0 ] || fail "state_dir version did not win: $(ihget web-1 version)"
harness_wait_for 5 sh -c "[ \"\$(redis-cli -p $REDIS_PORT EXISTS 'coord:{$NS}:alive:web-1')\" = 1 ]" || fail "not alive"

# kill -9: the instance expires on its own within TTL + 1 s.
kill -KILL "$PID_agent2"
killed=$(now_ms)
harness_wait_for 5 sh -c "[ \"\$(redis-cli -p $REDIS_PORT EXISTS 'coord:{$NS}:alive:web-1')\" = 0 ]" ||
        fail "alive key still there 5 s after kill -9"
gone=$(( $(now_ms) - killed ))
note "alive key expired ${gone} ms after kill -9 (TTL 600 ms)"
[ "$gone" -le 1600 ] || fail "expired after ${gone} ms, more than TTL + 1 s"
echo "agent-register: ok"
