# Commands for different instances run in parallel; commands for one
# instance run one at a time in queue order; with several instances a command
# must name its instance.
. "$top_srcdir/tests/e2e/agent-lib.sh"
agent_init
D=$COORD_TEST_DIR

cat >"$D/hook.sh" <<'SH'
echo "start $COORD_INSTANCE $2 $(date +%s%N)" >>"$1/log"
[ "$2" = deploy ] && sleep 2
echo "end $COORD_INSTANCE $2 $(date +%s%N)" >>"$1/log"
SH
hooks() {
        echo "{\"deploy\":\"sh $D/hook.sh $D deploy\",\"drain\":\"sh $D/hook.sh $D drain\",\"undrain\":\"sh $D/hook.sh $D undrain\",\"timeout\":\"10s\"}"
}
cat >"$D/agent.json" <<JSON
{"redis":"$REDIS_URL","namespace":"$NS","host":"$HOST","heartbeat_interval":"500ms","state_dir":"$D/state",
 "services":[{"name":"web","instance":"web-1","version":"1.0","hooks":$(hooks)},
             {"name":"api","instance":"api-1","version":"1.0","hooks":$(hooks)}]}
JSON
agent_start agent "$D/agent.json"
wait_state web-1 healthy 10

queue_command '{"id":"p1","type":"deploy","instance":"web-1","version":"2.0"}'
harness_wait_for 5 grep -q "start web-1 deploy" "$D/log" || fail "deploy did not start"
queue_command '{"id":"p2","type":"undrain","instance":"web-1"}'
queue_command '{"id":"p3","type":"drain","instance":"api-1"}'
wait_command p3 3
command_finished p1 && fail "api-1's drain waited for web-1's deploy"
[ "$(command_field p3 state)" = done ] || fail "p3: $(command_field p3 error)"
wait_command p1 10
wait_command p2 5
[ "$(command_field p2 started_at)" -ge "$(command_field p1 finished_at)" ] ||
        fail "web-1's undrain started before its deploy finished"
sed -n 's/^\(start\|end\) \(web-1\) \([a-z]*\) .*/\1 \3/p' "$D/log" | tr '\n' ' ' >"$D/order"
[ "$(cat "$D/order")" = "start deploy end deploy start undrain end undrain " ] || fail "web-1 order: $(cat "$D/order")"

queue_command '{"id":"p4","type":"drain"}'
wait_command p4 5
case "$(command_field p4 error)" in *"none given, and this agent has several"*) ;; *) fail "p4: $(command_field p4 error)" ;; esac
echo "agent-parallel: ok"
