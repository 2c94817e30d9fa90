# sd_notify: READY=1 only once registered (never while Redis is away),
# STATUS=, WATCHDOG=1 pings, RELOADING=1 on SIGHUP (a bad new config is
# refused and the old one kept), STOPPING=1 on SIGTERM.
. "$top_srcdir/tests/e2e/agent-lib.sh"
agent_init
D=$COORD_TEST_DIR
[ -x "$NOTIFY_LISTEN" ] || fail "notify-listen not built: $NOTIFY_LISTEN"

svc() {
        echo "{\"name\":\"$1\",\"instance\":\"$1-1\",\"version\":\"1.0\"}"
}
write_config() { # FILE REDIS SERVICES
        echo "{\"redis\":\"$2\",\"namespace\":\"$NS\",\"host\":\"$HOST\",\"heartbeat_interval\":\"200ms\",\"state_dir\":\"$D/state\",\"services\":[$3]}" >"$1"
}
write_config "$D/agent.json" "$REDIS_URL" "$(svc web)"

harness_spawn listen "$NOTIFY_LISTEN" "$D/notify.sock"
harness_wait_for 5 test -S "$D/notify.sock" || fail "listener not ready"
harness_spawn agent env NOTIFY_SOCKET="$D/notify.sock" WATCHDOG_USEC=400000 "$COORD_AGENT" --config "$D/agent.json"
N="$D/listen.log"
# notify-listen prints one datagram per line, assignments separated by spaces.
has() { # FILE ASSIGNMENT
        grep -qE "(^| )$2( |\$)" "$1"
}
count() { # FILE ASSIGNMENT
        grep -cE "(^| )$2( |\$)" "$1" || true
}

harness_wait_for 10 has "$N" READY=1 || fail "no READY=1: $(cat "$N")"
[ "$(rcli EXISTS "coord:{$NS}:instance:web-1")" = 1 ] || fail "READY=1 before the instance was registered"
grep -q 'STATUS=1 instance: 1 healthy, 0 unhealthy, 0 starting, 0 draining; redis connected' "$N" ||
        fail "no STATUS line: $(cat "$N")"
wd() { [ "$(count "$N" WATCHDOG=1)" -ge 3 ]; }
harness_wait_for 5 wd || fail "fewer than 3 WATCHDOG=1 pings"

# SIGHUP with a valid new config: RELOADING=1, then READY=1, new instance registered.
write_config "$D/agent.json" "$REDIS_URL" "$(svc web),$(svc api)"
ready_before=$(count "$N" READY=1)
kill -HUP "$PID_agent"
harness_wait_for 5 has "$N" RELOADING=1 || fail "no RELOADING=1"
grep -q 'RELOADING=1 MONOTONIC_USEC=' "$N" || fail "RELOADING=1 without MONOTONIC_USEC"
more_ready() { [ "$(count "$N" READY=1)" -gt "$ready_before" ]; }
harness_wait_for 5 more_ready || fail "no READY=1 after the reload"
wait_state api-1 healthy 5

# Removing an instance on reload marks it stopped; the others keep their state.
write_config "$D/agent.json" "$REDIS_URL" "$(svc api)"
kill -HUP "$PID_agent"
wait_state web-1 stopped 5
[ "$(rcli EXISTS "coord:{$NS}:alive:web-1")" = 0 ] || fail "removed instance still alive"
[ "$(ihget api-1 state)" = healthy ] || fail "kept instance changed state on reload"

# SIGHUP with a broken config: refused, old one kept, agent running.
echo '{"redis":"x","services":[{"name":"web","version":"1","health":{"intervall":"1s"}}]}' >"$D/agent.json"
kill -HUP "$PID_agent"
harness_wait_for 5 grep -q "Reload refused, keeping the running configuration:.*services\[0\].health.intervall: unknown key" "$D/agent.log" ||
        fail "bad reload not refused with a message naming the key"
kill -0 "$PID_agent" || fail "agent died on a bad reload"
wait_state api-1 healthy 2
seen=$(ihget api-1 last_seen)
harness_wait_for 2 last_seen_after api-1 "$seen" || fail "heartbeats stopped after a refused reload"

# SIGTERM: STOPPING=1.
kill -TERM "$PID_agent"
wait "$PID_agent" || fail "exit status on SIGTERM"
# The listener is another process: its log may lag the agent's exit a little.
harness_wait_for 5 has "$N" STOPPING=1 || fail "no STOPPING=1"

# Without Redis: never READY, the status says why.
write_config "$D/down.json" "redis://127.0.0.1:$(harness_free_port)/0" "$(svc web)"
harness_spawn listen2 "$NOTIFY_LISTEN" "$D/notify2.sock"
harness_wait_for 5 test -S "$D/notify2.sock" || fail "listener 2 not ready"
harness_spawn agent2 env NOTIFY_SOCKET="$D/notify2.sock" "$COORD_AGENT" --config "$D/down.json"
harness_wait_for 5 grep -q 'redis disconnected' "$D/listen2.log" || fail "no STATUS while Redis is down"
# Nothing the agent does while it retries is visible (attempts between the
# 1st and the 10th are logged at debug level): give it a second of retries.
harness_quiet_period 1 "the agent retries Redis and must neither send READY=1 nor exit"
has "$D/listen2.log" READY=1 && fail "READY=1 without Redis"
kill -0 "$PID_agent2" || fail "agent exited because Redis is away"
echo "agent-notify: ok"
