# A holder stopped (SIGSTOP) past its lease loses the lock to a waiter with a
# higher fencing token; resumed, it terminates its child and exits 1.
. "$COORD_HARNESS"
harness_init
harness_start_redis
D=$COORD_TEST_DIR

harness_spawn holder "$COORDCTL" lock job --redis "$REDIS_URL" --lease 1s -- \
        sh -c 'echo $$ >"$0/holder.child"; echo "$COORD_FENCING_TOKEN" >"$0/holder.token.tmp"; mv "$0/holder.token.tmp" "$0/holder.token"
               trap "echo terminated >\"$0/holder.term\"; exit 143" TERM; sleep 30 & wait' "$D"
harness_wait_for 10 test -s "$D/holder.token" || fail "holder never ran its command"
holder=$PID_holder
kill -STOP "$holder"
stopped_at=$(now_ms)

harness_spawn waiter "$COORDCTL" lock job --redis "$REDIS_URL" --lease 5s --wait-timeout 20s -- \
        sh -c 'echo "$COORD_FENCING_TOKEN" >"$0/waiter.token.tmp"; mv "$0/waiter.token.tmp" "$0/waiter.token"' "$D"
harness_wait_for 10 test -s "$D/waiter.token" || fail "waiter did not take the lock from the stopped holder"
took=$(( $(now_ms) - stopped_at ))
ht=$(cat "$D/holder.token")
wt=$(cat "$D/waiter.token")
[ "$wt" -gt "$ht" ] || fail "waiter's fencing token $wt is not above the stopped holder's $ht"
note "waiter took over after ${took}ms with fence $wt > $ht"
wait "$PID_waiter" || fail "waiter exited $?"
[ ! -e "$D/holder.term" ] || fail "the stopped holder's child was terminated before it resumed"

kill -CONT "$holder"
harness_rc wait "$holder"
[ "$rc" -eq 1 ] || fail "resumed holder exited $rc, expected 1"
[ -e "$D/holder.term" ] || fail "the holder's child did not get SIGTERM"
child=$(cat "$D/holder.child")
! kill -0 "$child" 2>/dev/null || fail "the holder's child $child is still running"
grep -q "lost the lock job" "$D/holder.log" || fail "holder did not say it lost the lock"
note "resumed holder exited 1 after terminating its child"

# A queued waiter that is stopped when the lock is handed to it blocks the lock
# for at most its own lease; resumed, it must not use the stale hand-off (it
# passes it on and waits again), so there are never two holders.
cs='mkdir "$0/inside" || echo "$1 entered while someone was inside" >>"$0/overlaps"
    echo "$COORD_FENCING_TOKEN" >"$0/$1.token.tmp"; mv "$0/$1.token.tmp" "$0/$1.token"
    sleep 0.2; rmdir "$0/inside"'
queued() {
        [ "$(harness_redis_cli zcard 'coord:{default:lock:job2}:waiters')" = "$1" ]
}
harness_spawn h2 "$COORDCTL" lock job2 --redis "$REDIS_URL" --lease 5s -- \
        sh -c 'echo "$COORD_FENCING_TOKEN" >"$0/h2.token"; while [ ! -e "$0/h2.go" ]; do sleep 0.02; done' "$D"
harness_wait_for 10 test -s "$D/h2.token" || fail "h2 never ran"
harness_spawn w1 "$COORDCTL" lock job2 --redis "$REDIS_URL" --lease 1s --wait-timeout 30s -- sh -c "$cs" "$D" w1
harness_wait_for 10 queued 1 || fail "w1 never queued"
kill -STOP "$PID_w1"
harness_spawn w2 "$COORDCTL" lock job2 --redis "$REDIS_URL" --lease 5s --wait-timeout 30s -- sh -c "$cs" "$D" w2
harness_wait_for 10 queued 2 || fail "w2 never queued"
released=$(now_ms)
touch "$D/h2.go"
wait "$PID_h2" || fail "h2 exited $?"
harness_wait_for 10 test -s "$D/w2.token" || fail "w2 never got the lock handed to the stopped w1"
blocked=$(( $(now_ms) - released ))
note "w2 got the lock ${blocked}ms after the release that went to the stopped w1 (w1's lease: 1s)"
[ "$blocked" -lt 4000 ] || fail "a stopped waiter blocked the lock for ${blocked}ms, more than its 1s lease allows"
kill -CONT "$PID_w1"
wait "$PID_w2" || fail "w2 exited $?"
wait "$PID_w1" || fail "w1 exited $?"
[ ! -e "$D/overlaps" ] || { cat "$D/overlaps" >&2; fail "two holders at once"; }
[ "$(cat "$D/w2.token")" -gt "$(cat "$D/h2.token")" ] || fail "w2's fence is not above h2's"
[ "$(cat "$D/w1.token")" -gt "$(cat "$D/w2.token")" ] || fail "w1 ran with a fence not above w2's (stale hand-off used?)"
grep -q "handed to us while we could not run" "$D/w1.log" || fail "w1 did not notice its stale hand-off"
note "the resumed waiter passed its stale hand-off on and ran later with a higher fence"
