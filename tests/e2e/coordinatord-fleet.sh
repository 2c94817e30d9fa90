# The fleet view from the Redis layout of lib/keys.h: "lost" within TTL + 1 s of
# the last heartbeat, back when heartbeats resume, reaped after
# deregister_after by the leader only.
. "$COORD_HARNESS"
harness_init
harness_need curl jq
. "$top_srcdir/tests/e2e/coordinatord-lib.sh"
harness_start_redis
TTL=1000

cd_start cda '"deregister_after":"6s"'
cd_start cdb '"deregister_after":"6s"'
URL=$CDA_URL
harness_wait_for 10 ready "$CDA_URL" || fail "cda not ready"
harness_wait_for 10 ready "$CDB_URL" || fail "cdb not ready"

state_of() { curl -s -H "Authorization: Bearer $TOKEN_READ" "$1/v1/instances/$2" | jq -r .state; }

# A steady instance heartbeating at 4 Hz, in the background.
register steady-1 web host-s $TTL
( while :; do heartbeat steady-1 $TTL; sleep 0.25; done ) &
harness_track $!

# Three instances go silent; each must turn lost within TTL + 1 s of its last heartbeat.
# They heartbeat until seen healthy (a loaded machine may take longer than one TTL
# to show them), then stop: the clock starts at their last heartbeat.
for i in 1 2 3; do register quiet-$i web host-$i $TTL; done
( while :; do for i in 1 2 3; do heartbeat quiet-$i $TTL; done; sleep 0.25; done ) &
quiet_hb=$!
harness_track $quiet_hb
harness_wait_for 5 sh -c "curl -s -H 'Authorization: Bearer $TOKEN_READ' '$URL/v1/instances?state=healthy' | jq -e '[.instances[].id | select(startswith(\"quiet\"))] | length == 3'" ||
        fail "quiet instances never showed up healthy"
kill "$quiet_hb"
wait "$quiet_hb" 2>/dev/null || true
for i in 1 2 3; do heartbeat quiet-$i $TTL; done
t0=$(now_ms)
pending="1 2 3"
while [ -n "$pending" ]; do
        [ $(( $(now_ms) - t0 )) -lt 5000 ] || fail "quiet-{$pending} not lost after 5 s"
        left=""
        for i in $pending; do
                if [ "$(state_of "$URL" quiet-$i)" = lost ]; then
                        dt=$(( $(now_ms) - t0 ))
                        echo "quiet-$i lost after ${dt} ms (ttl ${TTL} ms)"
                        [ $dt -le $((TTL + 1000)) ] || fail "quiet-$i: lost detected after ${dt} ms > TTL + 1 s"
                else
                        left="$left $i"
                fi
        done
        pending=$left
        sleep 0.02
done
for i in 1 2 3; do
        harness_wait_for 1 sh -c "[ \"\$(curl -s -H 'Authorization: Bearer $TOKEN_READ' $CDB_URL/v1/instances/quiet-$i | jq -r .state)\" = lost ]" ||
                fail "standby does not see quiet-$i lost"
done
[ "$(state_of "$URL" steady-1)" = healthy ] || fail "heartbeating instance is not healthy"
expect 200 GET '/v1/instances?state=lost' read
[ "$(jq '.instances | length' "$BODY_FILE")" = 3 ] || fail "state=lost filter: $(body)"

# Heartbeats resume: healthy again.
heartbeat quiet-1 $TTL
harness_wait_for 3 sh -c "[ \"\$(curl -s -H 'Authorization: Bearer $TOKEN_READ' $URL/v1/instances/quiet-1 | jq -r .state)\" = healthy ]" ||
        fail "quiet-1 did not come back"
( while :; do heartbeat quiet-1 $TTL; sleep 0.25; done ) &
harness_track $!

# State changes published by the agent show at once (events channel).
rcli hset "coord:{$NS}:instance:steady-1" state draining >/dev/null
rcli publish "coord:{$NS}:events" '{"type":"instance","id":"steady-1","state":"draining"}' >/dev/null
harness_wait_for 2 sh -c "[ \"\$(curl -s -H 'Authorization: Bearer $TOKEN_READ' $URL/v1/instances/steady-1 | jq -r .state)\" = draining ]" ||
        fail "state change not picked up within 2 s"

# An agent stopping on purpose writes state=stopped and deletes its alive key:
# that instance is "stopped", never "lost".
register stop-1 web host-stop 60000
harness_wait_for 3 sh -c "[ \"\$(curl -s -H 'Authorization: Bearer $TOKEN_READ' $URL/v1/instances/stop-1 | jq -r .state)\" = healthy ]" ||
        fail "stop-1 never healthy"
rcli hset "coord:{$NS}:instance:stop-1" state stopped >/dev/null
rcli del "coord:{$NS}:alive:stop-1" >/dev/null
rcli publish "coord:{$NS}:events" '{"type":"instance","id":"stop-1","state":"stopped"}' >/dev/null
harness_wait_for 3 sh -c "[ \"\$(curl -s -H 'Authorization: Bearer $TOKEN_READ' $URL/v1/instances/stop-1 | jq -r .state)\" = stopped ]" ||
        fail "stop-1 not shown stopped"

# Reaping: quiet-2 and quiet-3 are removed after deregister_after (6 s), by the leader only.
rcli subscribe "coord:{$NS}:events" >"$COORD_TEST_DIR/events" 2>&1 &
harness_track $!
harness_wait_for 10 sh -c "[ \"\$(redis-cli -p $REDIS_PORT exists 'coord:{$NS}:instance:quiet-2')\" = 0 ]" ||
        fail "quiet-2 not reaped"
harness_wait_for 5 sh -c "[ \"\$(redis-cli -p $REDIS_PORT zscore 'coord:{$NS}:instances' quiet-3)\" = '' ]" ||
        fail "quiet-3 not removed from the instances set"
harness_wait_for 2 grep -q '"deregistered"' "$COORD_TEST_DIR/events" || fail "no deregistered event"
for u in "$CDA_URL" "$CDB_URL"; do
        harness_wait_for 2 sh -c "curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer $TOKEN_READ' $u/v1/instances/quiet-2 | grep -q 404" ||
                fail "$u still shows quiet-2"
done
reapers=$(grep -l "quiet-2 deregistered" "$COORD_TEST_DIR/cda.log" "$COORD_TEST_DIR/cdb.log" | wc -l)
[ "$reapers" = 1 ] || fail "quiet-2 reaped by $reapers coordinatords"
leader=$(curl -s -H "Authorization: Bearer $TOKEN_READ" "$URL/v1/leader" | jq -r .leader)
grep -q "quiet-2 deregistered" "$COORD_TEST_DIR/$leader.log" || fail "the reaper was not the leader ($leader)"
# The live ones stay.
[ "$(state_of "$URL" quiet-1)" = healthy ] || fail "quiet-1 should be healthy"
[ "$(state_of "$URL" steady-1)" = draining ] || fail "steady-1 should be draining"
# stop-1 is "stopped" until its own deregister_after has passed (the wait above
# may have taken that long on a loaded machine), then it goes too, never "lost".
s=$(curl -s -H "Authorization: Bearer $TOKEN_READ" "$URL/v1/instances/stop-1" | jq -r '.state // .error.code')
case $s in stopped|not_found) ;; *) fail "stop-1 turned $s, expected stopped" ;; esac
harness_wait_for 10 sh -c "[ \"\$(redis-cli -p $REDIS_PORT zscore 'coord:{$NS}:instances' stop-1)\" = '' ]" ||
        fail "stop-1 not reaped after deregister_after"
for l in cda cdb; do
        ! grep -q "stop-1 is lost" "$COORD_TEST_DIR/$l.log" || fail "$l logged the stopped stop-1 as lost"
        n=$(grep -c "quiet-2 is lost" "$COORD_TEST_DIR/$l.log")
        [ "$n" = 1 ] || fail "$l logged quiet-2 lost $n times (a reaped instance came back as a ghost)"
done
# A coordinatord starting on an existing fleet is ready only with the whole
# fleet loaded: its first answer after ready lists every instance. Nothing is
# due for reaping now (the two left heartbeat), so the fleet holds still.
want=$(curl -s -H "Authorization: Bearer $TOKEN_READ" "$URL/v1/instances" | jq -c '[.instances[].id]')
cd_start cdc '"deregister_after":"6s"'
harness_wait_for 10 ready "$CDC_URL" || fail "cdc not ready"
got=$(curl -s -H "Authorization: Bearer $TOKEN_READ" "$CDC_URL/v1/instances" | jq -c '[.instances[].id]')
[ "$got" = "$want" ] || fail "first answer after ready: $got, expected $want"
echo "coordinatord-fleet: ok"
