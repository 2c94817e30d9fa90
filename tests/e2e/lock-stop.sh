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
set +e
wait "$holder"
rc=$?
set -e
[ "$rc" -eq 1 ] || fail "resumed holder exited $rc, expected 1"
[ -e "$D/holder.term" ] || fail "the holder's child did not get SIGTERM"
child=$(cat "$D/holder.child")
! kill -0 "$child" 2>/dev/null || fail "the holder's child $child is still running"
grep -q "lost the lock job" "$D/holder.log" || fail "holder did not say it lost the lock"
note "resumed holder exited 1 after terminating its child"
