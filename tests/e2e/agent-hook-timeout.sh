# Hooks: a hook past its timeout is killed with its whole process group, even
# a grandchild that ignores SIGTERM and holds stdout open; the command fails
# with a clear reason.  A hook whose background child keeps stdout open
# after the hook exited does not stall the command.  Output is logged line by
# line with the instance; hooks see the CONTRACT.md environment.
. "$top_srcdir/tests/e2e/agent-lib.sh"
agent_init
D=$COORD_TEST_DIR

cat >"$D/drain.sh" <<'SH'
(trap '' TERM; echo $$ >/dev/null; sh -c 'echo $PPID' >/dev/null; exec sleep 300) &
echo $! >"$1/grandchild.pid"
echo "pgid $(ps -o pgid= $$ | tr -d ' ')" >"$1/hook.pgid"
echo "drain started for $COORD_INSTANCE"
sleep 300
SH
cat >"$D/undrain.sh" <<'SH'
sh -c 'sleep 0.5; echo late-line; sleep 0.5; echo "$$" >"$0.alive"; sleep 2' "$1/bg-marker" &
echo "env $COORD_SERVICE $COORD_INSTANCE $COORD_VERSION $COORD_PREVIOUS_VERSION ${COORD_DEPLOYMENT-unset}" >"$1/undrain.env"
echo "undrain done"
SH
cat >"$D/deploy.sh" <<'SH'
echo "env $COORD_SERVICE $COORD_INSTANCE $COORD_VERSION $COORD_PREVIOUS_VERSION $COORD_DEPLOYMENT" >"$1/deploy.env"
echo "deployed $COORD_VERSION"
SH
cat >"$D/agent.json" <<JSON
{"redis":"$REDIS_URL","namespace":"$NS","host":"$HOST","heartbeat_interval":"500ms","state_dir":"$D/state",
 "services":[{"name":"web","instance":"web-1","version":"1.0",
   "hooks":{"drain":"sh $D/drain.sh $D","undrain":"sh $D/undrain.sh $D","deploy":"sh $D/deploy.sh $D","timeout":"1s"}}]}
JSON
agent_start agent "$D/agent.json"
wait_state web-1 healthy 10

queue_command '{"id":"t1","type":"drain","instance":"web-1"}'
queued=$(now_ms)
wait_state web-1 draining 5
harness_wait_for 5 test -s "$D/grandchild.pid" || fail "hook did not start"
gc=$(cat "$D/grandchild.pid")
kill -0 "$gc" || fail "grandchild not running"
wait_command t1 10
took=$(( $(now_ms) - queued ))
note "timed-out hook finished after ${took} ms (timeout 1s, SIGKILL 1 s after SIGTERM)"
[ "$(command_field t1 state)" = failed ] || fail "state $(command_field t1 state)"
[ "$(command_field t1 exit_code)" = -1 ] || fail "exit_code $(command_field t1 exit_code)"
case "$(command_field t1 error)" in
*"timed out after 1s"*"process group was killed"*) ;;
*) fail "error does not say why: $(command_field t1 error)" ;;
esac
case "$(command_field t1 output)" in *"drain started for web-1"*) ;; *) fail "output tail: $(command_field t1 output)" ;; esac
[ "$took" -lt 6000 ] || fail "took ${took} ms"
# SIGKILL is asynchronous: wait (bounded) for the processes to go.  Zombies do not
# count: an orphan's exit status waits for PID 1, which may not reap in a container.
group_live() {
        ps -eo pgid=,stat= | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { n++ } END { exit n > 0 ? 0 : 1 }'
}
harness_wait_gone 3 "$gc" || fail "grandchild $gc survived the timeout"
pgid=$(sed 's/pgid //' "$D/hook.pgid")
tries=0
while group_live "$pgid"; do
        tries=$((tries + 1))
        [ "$tries" -lt 150 ] ||
                fail "process group $pgid still has members: $(ps -eo pid,pgid,stat,args | awk -v g="$pgid" '$2 == g')"
        sleep 0.02
done
grep -q "drain hook: drain started for web-1.*instance=web-1" "$D/agent.log" || fail "hook output not logged with the instance"

# A background child holding stdout open does not stall a finished hook.
queue_command '{"id":"t2","type":"undrain","instance":"web-1"}'
queued=$(now_ms)
wait_command t2 5
took=$(( $(now_ms) - queued ))
note "hook with a background child holding stdout finished after ${took} ms"
[ "$took" -lt 2500 ] || fail "finished hook stalled ${took} ms by a background child"
[ "$(command_field t2 state)" = done ] || fail "t2: $(command_field t2 state) $(command_field t2 error)"
# Its later output is still logged, and writing it did not kill it (no SIGPIPE).
harness_wait_for 5 grep -q "undrain hook (background): late-line.*instance=web-1" "$D/agent.log" ||
        fail "background output not logged"
harness_wait_for 5 test -s "$D/bg-marker.alive" || fail "background child died after writing (SIGPIPE?)"
wait_state web-1 healthy 3

[ "$(cat "$D/undrain.env")" = "env web web-1 1.0 1.0 " ] || fail "undrain hook environment: $(cat "$D/undrain.env")"

# Environment of hooks.
queue_command '{"id":"t3","type":"deploy","instance":"web-1","version":"2.0","deployment":"dep-9"}'
wait_command t3 5
[ "$(command_field t3 state)" = done ] || fail "t3: $(command_field t3 error)"
[ "$(cat "$D/deploy.env")" = "env web web-1 2.0 1.0 dep-9" ] || fail "hook environment: $(cat "$D/deploy.env")"
[ "$(ihget web-1 version)" = 2.0 ] || fail "version not updated after deploy"
grep -q '"version":"2.0"' "$D/state/instances/web-1.json" || fail "version not recorded in state_dir"

# Unconfigured hook: a logged no-op success.
queue_command '{"id":"t4","type":"migrate","instance":"web-1","version":"2.0"}'
wait_command t4 5
[ "$(command_field t4 state)" = done ] || fail "t4"
[ "$(command_field t4 exit_code)" = 0 ] || fail "t4 exit_code"
grep -q "No migrate hook configured for web-1: nothing to do" "$D/agent.log" || fail "no-op not logged"
kill -0 "$PID_agent" || fail "agent died"
echo "agent-hook-timeout: ok"
