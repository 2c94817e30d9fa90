# Health: unhealthy only after `fall` failed probes, healthy again after
# `rise`, failures ignored during `grace`; transitions are published at once
# on the events channel; exec probes see COORD_SERVICE/INSTANCE/VERSION.
. "$top_srcdir/tests/e2e/agent-lib.sh"
agent_init
D=$COORD_TEST_DIR
demo_start appa --fail-file "$D/fail-a"
A=$DEMO_PORT
touch "$D/fail-b"
demo_start appb --fail-file "$D/fail-b"
B=$DEMO_PORT

cat >"$D/agent.json" <<JSON
{"redis":"$REDIS_URL","namespace":"$NS","host":"$HOST","heartbeat_interval":"1s","state_dir":"$D/state",
 "services":[
  {"name":"web","instance":"web-1","version":"1.0",
   "health":{"http":"http://127.0.0.1:$A/health/ready","interval":"200ms","timeout":"150ms","rise":2,"fall":3}},
  {"name":"slow","instance":"slow-1","version":"1.0",
   "health":{"http":"http://127.0.0.1:$B/health/ready","interval":"200ms","rise":1,"fall":1,"grace":"2s"}},
  {"name":"ex","instance":"ex-1","version":"4.2",
   "health":{"exec":"test \"\$COORD_SERVICE/\$COORD_INSTANCE/\$COORD_VERSION\" = ex/ex-1/4.2","interval":"200ms","rise":1}},
  {"name":"hang","instance":"hang-1","version":"1",
   "health":{"exec":"sleep 30; : $D/hang-marker","interval":"300ms","timeout":"200ms","rise":1,"fall":2}}]}
JSON
redis-cli -p "$REDIS_PORT" SUBSCRIBE "coord:{$NS}:events" >"$D/events.out" 2>&1 &
harness_track $!
harness_wait_for 5 grep -q subscribe "$D/events.out" || fail "subscriber not ready"

start=$(now_ms)
agent_start agent "$D/agent.json"
wait_state web-1 healthy 10
wait_state ex-1 healthy 10

# Grace: slow-1 fails from the start but stays "starting" for 2 s.
wait_state slow-1 unhealthy 8
took=$(( $(now_ms) - start ))
note "slow-1 unhealthy ${took} ms after start (grace 2 s)"
[ "$took" -ge 1900 ] || fail "grace not respected: unhealthy after ${took} ms"

# flip STATE CMD...: run CMD (the app's health flips), then wait up to 5 s for
# web-1 to be in STATE; took: the ms in between.
flip() {
        f_state=$1
        shift
        "$@"
        f_at=$(now_ms)
        wait_state web-1 "$f_state" 5
        took=$(( $(now_ms) - f_at ))
}

# Fall: three failures at 200 ms intervals => at least ~400 ms after the flip.
flip unhealthy touch "$D/fail-a"
note "web-1 unhealthy ${took} ms after the flip (fall 3, interval 200ms)"
[ "$took" -ge 350 ] || fail "unhealthy after ${took} ms: fewer than fall=3 probes"
case "$(ihget web-1 detail)" in *503*) ;; *) fail "detail does not say why: $(ihget web-1 detail)" ;; esac

# Rise: two successes => at least ~200 ms after the flip back.
flip healthy rm "$D/fail-a"
note "web-1 healthy ${took} ms after the flip back (rise 2)"
[ "$took" -ge 150 ] || fail "healthy after ${took} ms: fewer than rise=2 probes"

# Every transition was published at once.
harness_wait_for 3 grep -q '"id":"web-1".*"state":"unhealthy".*"previous":"healthy"' "$D/events.out" ||
        { cat "$D/events.out" >&2; fail "no healthy -> unhealthy event"; }
grep -q '"id":"web-1".*"state":"healthy".*"previous":"unhealthy"' "$D/events.out" ||
        fail "no unhealthy -> healthy event"

# Under "draining" the probe state stays visible in the health field and events.
[ "$(ihget web-1 health)" = healthy ] || fail "health field: $(ihget web-1 health)"
queue_command '{"id":"d1","type":"drain","instance":"web-1"}'
wait_state web-1 draining 5
touch "$D/fail-a"
health_is() { [ "$(ihget web-1 health)" = "$1" ]; }
harness_wait_for 5 health_is unhealthy || fail "health field not updated while draining"
[ "$(ihget web-1 state)" = draining ] || fail "state left draining"
harness_wait_for 3 grep -q '"id":"web-1".*"state":"draining","health":"unhealthy"' "$D/events.out" ||
        fail "no event for a health change while draining"
rm "$D/fail-a"
harness_wait_for 5 health_is healthy || fail "health not back while draining"

# An exec probe past its timeout fails and is killed (no pile-up of probes).
wait_state hang-1 unhealthy 5
case "$(ihget hang-1 detail)" in *"timed out"*) ;; *) fail "hang-1 detail: $(ihget hang-1 detail)" ;; esac
n=$(pgrep -fc "$D/[h]ang-marker" || true)
[ "$n" -le 1 ] || fail "$n exec probes still running"

# A probe that cannot connect fails too (app gone) and the agent survives.
kill -TERM "$PID_appb"
rm "$D/fail-b"
wait_state slow-1 unhealthy 5
kill -0 "$PID_agent" || fail "agent died"
echo "agent-health: ok"
