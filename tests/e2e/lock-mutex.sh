# coordctl lock: 16 concurrent holders of one lock never overlap, and their
# fencing tokens, pushed in critical-section order, strictly increase.
. "$COORD_HARNESS"
harness_init
harness_start_redis

D=$COORD_TEST_DIR
N=16
cat >"$D/critical.sh" <<'EOS'
# Inside the lock: two independent "somebody else is inside" checks, one on
# the file system and one in Redis, then record our token.
set -u
mkdir "$D/inside" 2>/dev/null || echo "mkdir: overlap at token $COORD_FENCING_TOKEN" >>"$D/overlaps"
[ "$(redis-cli -p "$REDIS_PORT" setnx inside "$COORD_FENCING_TOKEN")" = 1 ] ||
        echo "setnx: overlap at token $COORD_FENCING_TOKEN" >>"$D/overlaps"
redis-cli -p "$REDIS_PORT" rpush tokens "$COORD_FENCING_TOKEN" >/dev/null
[ "$COORD_LOCK_NAME" = mutex ] || echo "COORD_LOCK_NAME is '$COORD_LOCK_NAME'" >>"$D/overlaps"
sleep 0.02
redis-cli -p "$REDIS_PORT" del inside >/dev/null
rmdir "$D/inside"
EOS
export D REDIS_PORT

pids=""
for i in $(seq 1 $N); do
        harness_spawn "c$i" "$COORDCTL" lock mutex --redis "$REDIS_URL" --lease 5s --wait-timeout 60s -- sh "$D/critical.sh"
        pids="$pids $pid"
done
for p in $pids; do
        wait "$p" || fail "a coordctl lock exited $? (see logs)"
done

[ ! -e "$D/overlaps" ] || { cat "$D/overlaps" >&2; fail "critical sections overlapped"; }
n=$(harness_redis_cli llen tokens)
[ "$n" -eq $N ] || fail "expected $N tokens, got $n"
prev=0
for t in $(harness_redis_cli lrange tokens 0 -1); do
        [ "$t" -gt "$prev" ] || fail "fencing tokens not strictly increasing: $t after $prev ($(harness_redis_cli lrange tokens 0 -1 | tr '\n' ' '))"
        prev=$t
done
[ "$(harness_redis_cli exists 'coord:{default:lock:mutex}')" = 0 ] || fail "lock left behind after the last release"
note "16 holders, tokens strictly increasing, no overlap"
