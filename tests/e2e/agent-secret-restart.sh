# Secrets of the applied advertised config stay masked after an agent restart:
# the applied config is kept in state_dir (mode 0600) and its secrets are
# registered before any hook runs, so a hook that prints them shows ***** in
# the agent's log and in the command result's output, even when Redis no
# longer has that config.  A state_dir from an older agent (no copy kept)
# takes the secrets from Redis when the version there is the applied one.
. "$top_srcdir/tests/e2e/agent-lib.sh"
agent_init
D=$COORD_TEST_DIR
mkdir -p "$D/run"
S1=HUNTER2xyz-pass
S2=K9-db-Secret
cat >"$D/agent.json" <<JSON
{"redis":"$REDIS_URL","namespace":"$NS","host":"$HOST","heartbeat_interval":"200ms","state_dir":"$D/state",
 "services":[{"name":"web","instance":"web-1","version":"1.0",
   "hooks":{"drain":"cat $D/run/web.env; echo plain $S1 $S2","undrain":"echo undrain $S1","timeout":"10s"},
   "config_file":"$D/run/web.env","config_format":"env"}]}
JSON
ckey="coord:{$NS}:config:web"
rcli HSET "$ckey" version 1 config "{\"Redis\":{\"Password\":\"$S1\"},\"ConnectionStrings\":{\"Db\":\"Host=db;Password=$S2\"}}" >/dev/null

agent_start agent "$D/agent.json"
wait_state web-1 healthy 10
harness_wait_for 10 sh -c "[ \"\$(redis-cli -p $REDIS_PORT HGET 'coord:{$NS}:instance:web-1' config_version)\" = 1 ]" ||
        fail "config version 1 not applied: $(ihget web-1 detail)"
grep -q "$S1" "$D/run/web.env" || fail "the file must hold the real secret"
[ "$(stat -c %a "$D/state/instances/web-1.config.json")" = 600 ] || fail "applied config record not 0600"

# check_masked CMD_ID LOG: the hook printed both secrets; neither reached the
# log or the result, ***** did.
check_masked() {
        out=$(command_field "$1" output)
        [ "$(command_field "$1" state)" = done ] || fail "$1: $(command_field "$1" error)"
        case "$out" in *"plain ***** *****"*) ;; *) fail "$1 output not masked: $out" ;; esac
        for s in "$S1" "$S2"; do
                case "$out" in *"$s"*) fail "$1 output shows a secret: $out" ;; esac
                ! grep -q -- "$s" "$D/$2.log" || fail "$2.log shows a secret: $(grep -- "$s" "$D/$2.log")"
        done
        grep -q "drain hook: plain \*\*\*\*\* \*\*\*\*\*" "$D/$2.log" || fail "$2.log: hook output not logged masked"
}

# Restart (kill -9: no chance to clean up), with the config gone from Redis:
# only state_dir knows the secrets now.
kill -KILL "$PID_agent"
wait "$PID_agent" 2>/dev/null || true
rcli DEL "$ckey" >/dev/null
agent_start agent2 "$D/agent.json"
wait_state web-1 healthy 10
queue_command '{"id":"s1","type":"drain","instance":"web-1"}'
wait_command s1 10
check_masked s1 agent2

# An older agent's state_dir (no applied config kept): the version in Redis is
# the applied one, so its secrets are taken from there.
kill -TERM "$PID_agent2"
wait "$PID_agent2" || fail "agent2 exit status"
rm "$D/state/instances/web-1.config.json"
rcli HSET "$ckey" version 1 config "{\"Redis\":{\"Password\":\"$S1\"},\"ConnectionStrings\":{\"Db\":\"Host=db;Password=$S2\"}}" >/dev/null
agent_start agent3 "$D/agent.json"
harness_wait_for 10 test -s "$D/state/instances/web-1.config.json" || fail "applied config not recorded from Redis"
queue_command '{"id":"s2","type":"drain","instance":"web-1"}'
wait_command s2 10
check_masked s2 agent3
[ "$(ihget web-1 config_version)" = 1 ] || fail "config_version $(ihget web-1 config_version)"
echo "agent-secret-restart: ok"
