# Redis restarted while a lock is held and renewed: the holder reconnects and
# either keeps the lock or loses it cleanly; a second contender never holds it
# at the same time.
#  A. Redis with an append-only file (fsync always): the lock survives the
#     restart, so the holder must keep it and finish with exit 0.
#  B. Redis without persistence: the lock vanishes; the holder must notice,
#     stop its child and exit 1, and the waiting contender must not start its
#     critical section before the holder's child has left.
. "$COORD_HARNESS"
harness_init
D=$COORD_TEST_DIR

holder_cmd='echo "$COORD_FENCING_TOKEN" >"$0/$1.token"
        mkdir "$0/inside" || echo "$1 entered while someone was inside" >>"$0/overlaps"
        trap "rmdir \"$0/inside\"; exit 143" TERM
        i=0; while [ $i -lt $2 ] && [ ! -e "$0/$1.stop" ]; do sleep 0.05; i=$((i+1)); done
        rmdir "$0/inside"'
contender_cmd='mkdir "$0/inside" || echo "$1 entered while someone was inside" >>"$0/overlaps"
        echo "$COORD_FENCING_TOKEN" >"$0/$1.token"
        rmdir "$0/inside"'

subscribed() {
        redis-cli -p "$1" pubsub numsub "coord:{default:lock:$2}:released" | tail -n 1 | grep -qx 1
}

# --- A: persistent Redis, the lock is kept ---------------------------------
harness_start_redis ra --appendonly yes --appendfsync always
harness_spawn holderA "$COORDCTL" lock rs --redis "$REDIS_URL" --lease 2s -- sh -c "$holder_cmd" "$D" A 100
harness_wait_for 10 test -s "$D/A.token" || fail "A: holder never ran"
harness_spawn contA "$COORDCTL" lock rs --redis "$REDIS_URL" --lease 2s --wait-timeout 30s -- sh -c "$contender_cmd" "$D" cA
harness_wait_for 10 subscribed "$RA_PORT" rs || fail "A: contender never subscribed"
harness_restart_redis ra --appendonly yes --appendfsync always
# The child runs 5s: more than two leases after the restart, so only renewals
# through the new connection can have kept the lock.
set +e
wait "$PID_holderA"; rcA=$?
wait "$PID_contA"; rcC=$?
set -e
[ "$rcA" -eq 0 ] || fail "A: holder exited $rcA: it should have kept the lock across a persistent restart"
[ "$rcC" -eq 0 ] || fail "A: contender exited $rcC"
[ ! -e "$D/overlaps" ] || { cat "$D/overlaps" >&2; fail "A: two holders at once"; }
[ "$(cat "$D/cA.token")" -gt "$(cat "$D/A.token")" ] || fail "A: fencing token did not increase"
note "A: lock kept across the restart, contender ran afterwards"

# --- B: Redis without persistence, the lock is lost cleanly ---------------
harness_start_redis rb
harness_spawn holderB "$COORDCTL" lock rs --redis "$REDIS_URL" --lease 1500ms -- sh -c "$holder_cmd" "$D" B 600
harness_wait_for 10 test -s "$D/B.token" || fail "B: holder never ran"
harness_spawn contB "$COORDCTL" lock rs --redis "$REDIS_URL" --lease 1500ms --wait-timeout 30s -- sh -c "$contender_cmd" "$D" cB
harness_wait_for 10 subscribed "$RB_PORT" rs || fail "B: contender never subscribed"
harness_restart_redis rb
set +e
wait "$PID_holderB"; rcB=$?
wait "$PID_contB"; rcC=$?
set -e
[ "$rcB" -eq 1 ] || fail "B: holder exited $rcB, expected 1 (lock lost with Redis' data)"
grep -q "lost the lock rs" "$D/holderB.log" || fail "B: holder did not say it lost the lock"
[ "$rcC" -eq 0 ] || fail "B: contender exited $rcC"
[ ! -e "$D/overlaps" ] || { cat "$D/overlaps" >&2; fail "B: two holders at once"; }
[ "$(cat "$D/cB.token")" -gt "$(cat "$D/B.token")" ] || fail "B: fencing token went backwards after data loss"
grep -q "Redis lost its data" "$D/contB.log" || fail "B: contender did not notice the data loss"
note "B: holder lost the lock cleanly; contender ran after it, with a higher fence"

# --- C: Redis gone for good: the holder gives up before its lease ends ------
# The server-side lease runs at most 2s past the last renewal, which was before
# the kill; the holder must declare the lock lost by 3/4 of that (1.5s).
harness_start_redis rc
harness_spawn holderC "$COORDCTL" lock rs --redis "$REDIS_URL" --lease 2s -- \
        sh -c 'echo x >"$0/C.token"; trap "date +%s%3N >\"$0/C.term\"; exit 143" TERM; while :; do sleep 0.05; done' "$D"
harness_wait_for 10 test -s "$D/C.token" || fail "C: holder never ran"
killed=$(now_ms)
harness_kill_redis rc
set +e
wait "$PID_holderC"; rcH=$?
set -e
[ "$rcH" -eq 1 ] || fail "C: holder exited $rcH with Redis gone, expected 1"
[ -e "$D/C.term" ] || fail "C: the holder's child did not get SIGTERM"
# When the holder declared the loss: the timestamp of its log line.
stamp=$(sed -n 's/^\([0-9T:.-]*Z\) .*lock rs: lost.*/\1/p' "$D/holderC.log" | head -n 1)
[ -n "$stamp" ] || fail "C: holder did not log the loss"
lost_after=$(( $(date -d "$stamp" +%s%3N) - killed ))
note "C: Redis killed; holder declared the lock lost ${lost_after}ms later (lease 2s, deadline 1.5s after the last renewal)"
[ "$lost_after" -lt 2000 ] || fail "C: holder noticed the loss ${lost_after}ms after Redis died: not before its 2s lease"
