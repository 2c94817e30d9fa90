# Advertised config: a new version is written atomically (readers only ever
# see whole files), mode 0640, in env or json format; reload runs; the applied
# version is reported; secrets are in the file but masked in every log line;
# a failing reload or render keeps the old file and reports why; versions set
# while the agent is down are applied when it (re)connects; apply-config works.
. "$top_srcdir/tests/e2e/agent-lib.sh"
# Redis with a password: the agent authenticates, and the password (part of
# its connection string) is masked like every other secret.
RPW=redis-auth-P4ss
export REDISCLI_AUTH=$RPW
agent_init --requirepass "$RPW"
REDIS_URL="redis://:$RPW@127.0.0.1:$REDIS_PORT/0"
harness_need jq
D=$COORD_TEST_DIR
mkdir -p "$D/run"
demo_start app --config-file "$D/run/web.env"
APP=$DEMO_PORT

cat >"$D/reload.sh" <<'SH'
echo "reload $COORD_INSTANCE" >>"$1/reloads"
cat "$2"
! grep -q '^Bad=true' "$2"
SH
cat >"$D/agent.json" <<JSON
{"redis":"$REDIS_URL","namespace":"$NS","host":"$HOST","heartbeat_interval":"200ms","state_dir":"$D/state",
 "services":[
  {"name":"web","instance":"web-1","version":"1.0","config_file":"$D/run/web.env","config_format":"env",
   "reload":"sh $D/reload.sh $D $D/run/web.env"},
  {"name":"web","instance":"web-2","version":"1.0","config_file":"$D/run/web2.json","config_format":"json"}]}
JSON

S1=redis-pass-Q1w2e3
S2=jwt-signing-Z9y8
S3=db-pass-K7j6
set_config() { # VERSION JSON [nopublish]
        rcli HSET "coord:{$NS}:config:web" version "$1" config "$2" updated_at "$(now_ms)" >/dev/null
        [ -n "${3:-}" ] || rcli PUBLISH "coord:{$NS}:config-changed" web >/dev/null
}
cfg() { # VERSION [EXTRA]
        echo "{\"UseDistributedMode\":true,\"ConnectionStrings\":{\"Redis\":\"127.0.0.1:6379,password=$S1,ssl=False,abortConnect=False\",\"Db\":\"Host=db;Password=$S3\"},\"Jwt\":{\"SigningSecret\":\"$S2\"},\"Version\":$1${2:-},\"Marker\":\"END\"}"
}
applied() {
        [ "$(ihget "$1" config_version)" = "$2" ]
}

agent_start agent "$D/agent.json"
wait_state web-1 healthy 10
set_config 1 "$(cfg 1)"
harness_wait_for 5 applied web-1 1 || fail "version 1 not applied: $(ihget web-1 detail)"
harness_wait_for 5 applied web-2 1 || fail "version 1 not applied to web-2"

expected="UseDistributedMode=true
ConnectionStrings__Redis=127.0.0.1:6379,password=$S1,ssl=False,abortConnect=False
ConnectionStrings__Db=\"Host=db;Password=$S3\"
Jwt__SigningSecret=$S2
Version=1
Marker=END"
[ "$(cat "$D/run/web.env")" = "$expected" ] || { cat "$D/run/web.env" >&2; fail "env file content"; }
[ "$(stat -c %a "$D/run/web.env")" = 640 ] || fail "mode $(stat -c %a "$D/run/web.env")"
[ "$(stat -c %a "$D/run/web2.json")" = 640 ] || fail "json mode"
[ "$(jq -c . "$D/run/web2.json")" = "$(cfg 1 | jq -c .)" ] || fail "json file content"
[ "$(cat "$D/reloads")" = "reload web-1" ] || fail "reload did not run exactly once: $(cat "$D/reloads")"
curl -fsS "http://127.0.0.1:$APP/config" | grep -q "^Version=1$" || fail "demo app /config"
grep -q '"config_version":1' "$D/state/instances/web-1.json" || fail "applied version not recorded"

# Atomic replacement: a reader never sees a partial file.
( while [ ! -e "$D/stop-reader" ]; do
        c=$(cat "$D/run/web.env")
        case "$c" in *"Marker=END") ;; *) echo "PARTIAL: $c" >>"$D/partial" ;; esac
  done ) &
harness_track $!
ino1=$(stat -c %i "$D/run/web.env")
# Keep the first file open: once renamed over it would be freed, and its inode
# number could be handed to a later file (seen under ASan's slower timing).
exec 3<"$D/run/web.env"
for v in 2 3 4 5; do
        set_config "$v" "$(cfg "$v" ",\"Pad\":\"$(head -c 3000 /dev/zero | tr '\0' x)\"")"
        harness_wait_for 5 applied web-1 "$v" || fail "version $v not applied: $(ihget web-1 detail)"
done
touch "$D/stop-reader"
[ ! -e "$D/partial" ] || fail "a reader saw a partial file: $(head -c 300 "$D/partial")"
[ "$(stat -c %i "$D/run/web.env")" != "$ino1" ] || fail "file rewritten in place, not renamed"
exec 3<&-
grep -q '^Version=5$' "$D/run/web.env" || fail "version 5 not in the file"
ls -a "$D/run" | grep -q coord-tmp && fail "temporary file left behind"
ls -a "$D/run" | grep -q coord-prev && fail "previous copy left behind"
[ "$(grep -c 'reload web-1' "$D/reloads")" = 5 ] || fail "reload count $(grep -c . "$D/reloads")"

# A failing reload keeps the old file and reports the failure.
set_config 6 "$(cfg 6 ',"Bad":true')"
harness_wait_for 5 sh -c "redis-cli -p $REDIS_PORT HGET 'coord:{$NS}:instance:web-1' detail | grep -q 'config version 6 not applied'" ||
        fail "reload failure not reported: $(ihget web-1 detail)"
case "$(ihget web-1 detail)" in *"reload exited with status 1"*) ;; *) fail "detail: $(ihget web-1 detail)" ;; esac
applied web-1 5 || fail "config_version moved to $(ihget web-1 config_version)"
grep -q '^Version=5$' "$D/run/web.env" || fail "old file not kept after a failed reload"
grep -q '^Bad' "$D/run/web.env" && fail "failed version left in the file"
applied web-2 6 || harness_wait_for 3 applied web-2 6 || fail "web-2 (no reload) should apply 6"

# A config that cannot be rendered as env keeps the old file too.
set_config 7 '{"bad key":1}'
harness_wait_for 5 sh -c "redis-cli -p $REDIS_PORT HGET 'coord:{$NS}:instance:web-1' detail | grep -q 'config version 7 not applied.*bad key'" ||
        fail "render failure not reported: $(ihget web-1 detail)"
grep -q '^Version=5$' "$D/run/web.env" || fail "old file not kept after a render failure"

# Versions set while the agent is down are applied on start (pub/sub lost).
kill -TERM "$PID_agent"
wait "$PID_agent" || true
set_config 8 "$(cfg 8)"
agent_start agent2 "$D/agent.json"
harness_wait_for 5 applied web-1 8 || fail "version 8 not reconciled on start: $(ihget web-1 detail)"
[ -z "$(ihget web-1 detail)" ] || fail "detail not cleared: $(ihget web-1 detail)"

# apply-config without any pub/sub message.
set_config 9 "$(cfg 9)" nopublish
# Two heartbeats later the agent has been round its loop with version 9 advertised.
for _ in 1 2; do
        seen=$(ihget web-1 last_seen)
        harness_wait_for 5 last_seen_after web-1 "$seen" || fail "no heartbeat after version 9 was set"
done
applied web-1 8 || fail "applied without a message or command"
queue_command '{"id":"a9","type":"apply-config","instance":"web-1","version":"9"}'
wait_command a9 5
[ "$(command_field a9 state)" = done ] || fail "apply-config: $(command_field a9 error)"
applied web-1 9 || fail "apply-config did not apply 9"
queue_command '{"id":"a10","type":"apply-config","instance":"web-1","version":"10"}'
wait_command a10 5
[ "$(command_field a10 state)" = failed ] || fail "apply-config of a version not advertised succeeded"

# The secrets reached the file, never a log line (the reload hook even cats the file).
grep -q "$S1" "$D/run/web.env" || fail "secret not in the file"
grep -q 'password=\*\*\*\*\*' "$D/agent.log" || fail "hook output not masked (or not logged)"
for s in "$S1" "$S2" "$S3" "$RPW"; do
        if grep -q -- "$s" "$D/agent.log" "$D/agent2.log"; then
                fail "secret $s appears in a log line"
        fi
        if command_field a9 output | grep -q -- "$s"; then
                fail "secret in a command result"
        fi
done
echo "agent-config: ok"
