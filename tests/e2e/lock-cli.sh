# coordctl lock's contract: exit codes, environment, signals, messages.
. "$COORD_HARNESS"
harness_init
harness_start_redis
D=$COORD_TEST_DIR

# expect CODE PATTERN CMD...: CMD exits CODE and its stderr ($D/err) matches PATTERN.
expect() {
        harness_expect "$@"
}

# Help and usage errors (2), each naming the culprit.
expect 0 "" "$COORDCTL" lock --help
grep -q -- "--wait-timeout" "$D/out" || fail "--help does not document --wait-timeout"
grep -q "wait forever" "$D/out" || fail "--help does not document the default wait"
expect 2 "unknown flag '--bogus'" "$COORDCTL" lock j --redis "$REDIS_URL" --bogus -- true
expect 2 "--lease: invalid duration '10'" "$COORDCTL" lock j --redis "$REDIS_URL" --lease 10 -- true
expect 2 "--wait-timeout: invalid duration 'abc'" "$COORDCTL" lock j --redis "$REDIS_URL" --wait-timeout abc -- true
expect 2 "missing COMMAND" "$COORDCTL" lock j --redis "$REDIS_URL"
expect 2 "missing COMMAND" "$COORDCTL" lock j --redis "$REDIS_URL" --
expect 2 "missing lock NAME" "$COORDCTL" lock
expect 2 "invalid lock name 'a/b'" "$COORDCTL" lock a/b --redis "$REDIS_URL" -- true
expect 2 "COORD_REDIS" env -u COORD_REDIS "$COORDCTL" lock j -- true
expect 2 "--redis" "$COORDCTL" lock j --redis "redis://h:notaport" -- true
expect 2 "COORD_NAMESPACE" env COORD_NAMESPACE='a b' "$COORDCTL" lock j --redis "$REDIS_URL" -- true
expect 3 "TLS handshake" "$COORDCTL" lock j --redis "127.0.0.1:$REDIS_PORT,password=tls-pw,ssl=true,connectTimeout=300" -- true
! grep -q tls-pw "$D/err" || fail "the password leaked into the TLS message"
[ "$(harness_redis_cli dbsize)" = 0 ] || fail "a usage error touched Redis"

# Unreachable Redis (3), password masked in the message.
port=$(harness_free_port)
expect 3 "could not take lock j" "$COORDCTL" lock j --redis "redis://:sekrit-pw@127.0.0.1:$port/0" -- true
! grep -q sekrit-pw "$D/err" || fail "the password leaked into the message"

# The child's environment and exit status; the lock is released afterwards.
expect 0 "" env COORD_REDIS="$REDIS_URL" COORD_FENCING_TOKEN=stale "$COORDCTL" lock j -- \
        sh -c 'echo "token=$COORD_FENCING_TOKEN name=$COORD_LOCK_NAME pgid=$(ps -o pgid= $$ | tr -d " ") pid=$$"'
grep -Eq '^token=[0-9]+ name=j ' "$D/out" || fail "child environment wrong: $(cat "$D/out")"
pgid=$(sed -n 's/.*pgid=\([0-9]*\).*/\1/p' "$D/out")
cpid=$(sed -n 's/.* pid=\([0-9]*\).*/\1/p' "$D/out")
[ "$pgid" = "$cpid" ] || fail "child is not the leader of its own process group (pgid $pgid, pid $cpid)"
[ "$(harness_redis_cli exists 'coord:{default:lock:j}')" = 0 ] || fail "lock not released after the command"
expect 7 "" "$COORDCTL" lock j --redis "$REDIS_URL" -- sh -c 'exit 7'
# What the command leaves running in its process group is stopped before the lock
# is released (SIGKILL after the grace period when it ignores SIGTERM).
expect 0 "stopping what" "$COORDCTL" lock j --redis "$REDIS_URL" -- sh -c '(trap "" TERM; sleep 30) & echo $! >"$0/bg"' "$D"
bg=$(cat "$D/bg")
! harness_alive "$bg" || fail "background job $bg outlived coordctl lock"
# coordctl killed with SIGKILL: its guard stops the command's grandchildren too.
harness_spawn k9 "$COORDCTL" lock k9 --redis "$REDIS_URL" --lease 1s -- sh -c 'sleep 30 & echo $! >"$0/k9bg"; wait' "$D"
harness_wait_for 5 test -s "$D/k9bg" || fail "k9 command did not start"
kill -KILL "$PID_k9"
k9bg=$(cat "$D/k9bg")
harness_wait_gone 4 "$k9bg" || fail "grandchild $k9bg outlived a SIGKILLed coordctl lock"

# The lock's Redis connection is not inherited by the command.
expect 0 "" "$COORDCTL" lock j --redis "$REDIS_URL" -- sh -c 'for f in /proc/$$/fd/*; do readlink "$f"; done | grep -c socket || true'
[ "$(cat "$D/out")" = 0 ] || fail "the command inherited $(cat "$D/out") socket(s) from coordctl lock"
expect 137 "" "$COORDCTL" lock j --redis "$REDIS_URL" -- sh -c 'kill -KILL $$'
expect 127 "cannot run 'no-such-command-xyz'" "$COORDCTL" lock j --redis "$REDIS_URL" -- no-such-command-xyz
[ "$(harness_redis_cli exists 'coord:{default:lock:j}')" = 0 ] || fail "lock not released after a failed exec"

# Namespaces separate locks.
expect 0 "" env COORD_NAMESPACE=prod "$COORDCTL" lock j --redis "$REDIS_URL" -- \
        sh -c "redis-cli -p $REDIS_PORT exists 'coord:{prod:lock:j}'"
[ "$(cat "$D/out")" = 1 ] || fail "COORD_NAMESPACE=prod did not put the lock under prod"

# --wait-timeout bounds the connect too: a Redis that accepts and never answers
# (SIGSTOPped) must not hold coordctl for the 5 s connect timeout.
main_port=$REDIS_PORT
harness_start_redis frozen
REDIS_PORT=$main_port
REDIS_URL="redis://127.0.0.1:$main_port/0"
kill -STOP "$(cat "$D/frozen.pid")"
t0=$(now_ms)
expect 3 "" "$COORDCTL" lock j --redis "127.0.0.1:$FROZEN_PORT,connectTimeout=5000" --wait-timeout 1s -- true
el=$(( $(now_ms) - t0 ))
kill -CONT "$(cat "$D/frozen.pid")"
[ "$el" -lt 3000 ] || fail "--wait-timeout 1s took ${el}ms against an unresponsive Redis"

# --wait-timeout expiry (5), naming the holder.
harness_spawn holder "$COORDCTL" lock busy --redis "$REDIS_URL" -- sh -c 'touch "$0/held"; sleep 30' "$D"
harness_wait_for 10 test -e "$D/held" || fail "holder never ran"
t0=$(now_ms)
expect 5 "held by .* pid $PID_holder, fence [0-9]*, expires in" "$COORDCTL" lock busy --redis "$REDIS_URL" --wait-timeout 300ms -- true
took=$(( $(now_ms) - t0 ))
[ "$took" -ge 300 ] && [ "$took" -lt 3000 ] || fail "--wait-timeout 300ms took ${took}ms"
expect 5 "timed out" "$COORDCTL" lock busy --redis "$REDIS_URL" --wait-timeout 0s -- true

# SIGTERM to coordctl reaches the child; coordctl exits with the child's
# status and releases the lock.
kill -TERM "$PID_holder"
harness_rc wait "$PID_holder"
[ "$rc" -eq 143 ] || fail "holder exited $rc after SIGTERM, expected 143 (the child's)"
[ "$(harness_redis_cli exists 'coord:{default:lock:busy}')" = 0 ] || fail "lock not released after SIGTERM"

harness_spawn trapper "$COORDCTL" lock busy --redis "$REDIS_URL" -- \
        sh -c 'trap "echo got-int >\"$0/int\"; exit 42" INT; touch "$0/ready"; while :; do sleep 0.05; done' "$D"
harness_wait_for 10 test -e "$D/ready" || fail "trapper never ran"
kill -INT "$PID_trapper"
harness_rc wait "$PID_trapper"
[ "$rc" -eq 42 ] || fail "SIGINT: coordctl exited $rc, expected the child's 42"
[ -e "$D/int" ] || fail "SIGINT was not forwarded to the child"
[ "$(harness_redis_cli exists 'coord:{default:lock:busy}')" = 0 ] || fail "lock not released after SIGINT"
note "exit codes 0/1/2/3/5/7/126-127/128+N, signals forwarded, lock released"
