# The command queue: a command queued while the agent is down runs once after
# it starts; its result is written exactly once (not again after a restart,
# nor for a duplicate delivery); a command interrupted by kill -9 is reported
# failed after the restart and never run twice; commands run in FIFO order;
# malformed commands get a failed result naming the problem.
. "$top_srcdir/tests/e2e/agent-lib.sh"
agent_init
D=$COORD_TEST_DIR

cat >"$D/hook.sh" <<'SH'
echo "$2 $COORD_VERSION" >>"$1/runs"
[ "$COORD_VERSION" = slow ] && sleep 30
echo "ran $2 $COORD_VERSION"
SH
cat >"$D/agent.json" <<JSON
{"redis":"$REDIS_URL","namespace":"$NS","host":"$HOST","heartbeat_interval":"200ms","state_dir":"$D/state",
 "services":[{"name":"web","instance":"web-1","version":"1.0",
   "hooks":{"deploy":"sh $D/hook.sh $D deploy","migrate":"sh $D/hook.sh $D migrate","timeout":"1m"}}]}
JSON
redis-cli -p "$REDIS_PORT" SUBSCRIBE "coord:{$NS}:command-results" >"$D/results.out" 2>&1 &
harness_track $!
harness_wait_for 5 grep -q subscribe "$D/results.out" || fail "subscriber not ready"

# Queued while the agent is down (no wake-up reaches anyone).
queue_command '{"id":"c1","type":"deploy","instance":"web-1","version":"2.0","deployment":"d1"}'
queue_command '{"id":"c2","type":"migrate","version":"2.0"}'
agent_start agent "$D/agent.json"
wait_command c1 10
wait_command c2 10
[ "$(command_field c1 state)" = done ] || fail "c1: $(command_field c1 error)"
[ "$(command_field c2 state)" = done ] || fail "c2 (instance omitted, one instance): $(command_field c2 error)"
[ "$(cat "$D/runs")" = "deploy 2.0
migrate 2.0" ] || fail "runs (FIFO, once each): $(cat "$D/runs")"
[ "$(command_field c1 output)" = "ran deploy 2.0" ] || fail "output $(command_field c1 output)"
[ "$(ihget web-1 version)" = 2.0 ] || fail "version after deploy"
[ "$(rcli LLEN "coord:{$NS}:agent:$HOST:inflight")" = 0 ] || fail "inflight not empty"
[ "$(rcli LLEN "coord:{$NS}:agent:$HOST:commands")" = 0 ] || fail "queue not empty"
ttl=$(rcli PTTL "coord:{$NS}:agent:$HOST:result:c1")
[ "$ttl" -gt 0 ] || fail "result hash has no expiry"
fin=$(command_field c1 finished_at)

# Restart: nothing runs again, nothing is rewritten.
kill -TERM "$PID_agent"
wait "$PID_agent" || true
agent_start agent2 "$D/agent.json"
wait_state web-1 healthy 10
# Duplicate delivery of c1.
queue_command '{"id":"c1","type":"deploy","instance":"web-1","version":"2.0","deployment":"d1"}'
harness_wait_for 5 sh -c "[ \"\$(redis-cli -p $REDIS_PORT LLEN 'coord:{$NS}:agent:$HOST:commands')\" = 0 ] && [ \"\$(redis-cli -p $REDIS_PORT LLEN 'coord:{$NS}:agent:$HOST:inflight')\" = 0 ]" ||
        fail "duplicate not consumed"
[ "$(wc -l <"$D/runs")" = 2 ] || fail "a command ran twice: $(cat "$D/runs")"
[ "$(command_field c1 finished_at)" = "$fin" ] || fail "result of c1 rewritten"
grep -q "already has a result" "$D/agent2.log" || fail "duplicate not logged"

# Interrupted by kill -9 while the hook runs: reported failed, not rerun.
queue_command '{"id":"c3","type":"deploy","instance":"web-1","version":"slow"}'
harness_wait_for 5 grep -q "deploy slow" "$D/runs" || fail "c3 did not start"
[ "$(command_field c3 state)" = running ] || fail "c3 not marked running"
kill -KILL "$PID_agent2"
# The hook's whole process group (hook.sh and its sleep) outlives a SIGKILLed agent.
for p in $(pgrep -f "$D/hook.sh"); do
        pg=$(ps -o pgid= -p "$p" | tr -d ' ')
        [ -z "$pg" ] || kill -KILL -- "-$pg" 2>/dev/null || true
done
agent_start agent3 "$D/agent.json"
wait_command c3 10
[ "$(command_field c3 state)" = failed ] || fail "c3 state $(command_field c3 state)"
case "$(command_field c3 error)" in *interrupted*) ;; *) fail "c3 error: $(command_field c3 error)" ;; esac
[ "$(grep -c "deploy slow" "$D/runs")" = 1 ] || fail "interrupted command ran again"
[ "$(ihget web-1 version)" = 2.0 ] || fail "version changed by an interrupted deploy"

# SIGTERM while a hook runs: the hook's group is killed, the agent exits
# cleanly, and the next start reports the command interrupted.
queue_command '{"id":"c6","type":"deploy","instance":"web-1","version":"slow"}'
harness_wait_for 5 sh -c "[ \$(grep -c 'deploy slow' '$D/runs') = 2 ]" || fail "c6 did not start"
kill -TERM "$PID_agent3"
wait "$PID_agent3" || fail "agent exit status after SIGTERM during a hook"
harness_wait_for 3 sh -c "! pgrep -f '$D/[h]ook.sh' >/dev/null" || fail "hook survived the agent's SIGTERM"
agent_start agent4 "$D/agent.json"
wait_command c6 10
case "$(command_field c6 error)" in *interrupted*) ;; *) fail "c6 error: $(command_field c6 error)" ;; esac
[ "$(grep -c "deploy slow" "$D/runs")" = 2 ] || fail "c6 ran again"

# Malformed commands.
queue_command '{"id":"c4","type":"reboot"}'
wait_command c4 5
[ "$(command_field c4 state)" = failed ] || fail "c4 accepted"
case "$(command_field c4 error)" in *"type: unknown type"*) ;; *) fail "c4 error: $(command_field c4 error)" ;; esac
queue_command 'not json at all'
queue_command '{"id":"c5","type":"deploy","instance":"nope","version":"3"}'
wait_command c5 5
case "$(command_field c5 error)" in *"instance nope is not managed"*) ;; *) fail "c5 error: $(command_field c5 error)" ;; esac
kill -0 "$PID_agent4" || fail "agent died"

# Every result was published exactly once.  Each was published with its
# result, atomically (lib/command.h): a marker published now reaches the
# subscriber after all of them.
rcli PUBLISH "coord:{$NS}:command-results" end-of-results >/dev/null
harness_wait_for 5 grep -qx end-of-results "$D/results.out" || fail "subscriber did not get the marker"
for id in c1 c2 c3 c4 c5 c6; do
        n=$(grep -cx "$id" "$D/results.out" || true)
        [ "$n" = 1 ] || fail "result of $id published $n times"
done
echo "agent-commands: ok"
