# coordctl lock over TLS (COORD_TLS_CA_FILE): 12 concurrent holders of one
# lock, half as the default user and half as an ACL user, never overlap and
# their fencing tokens strictly increase; the password never reaches a log,
# even at debug level.
. "$COORD_HARNESS"
. "$top_srcdir/tests/e2e/tls-lib.sh"
harness_init
tls_make_certs
tls_start_redis
export COORD_TLS_CA_FILE="$TLS_DIR/ca.crt" COORD_LOG_LEVEL=debug
pw='Locker-Tls-Pw5'
harness_redis_cli ACL SETUSER locker on ">$pw" resetchannels '~coord:*' '&coord:*' '+@all' | grep -qx OK ||
        fail "ACL SETUSER failed"

D=$COORD_TEST_DIR
N=12
cat >"$D/critical.sh" <<'EOS'
set -u
mkdir "$D/inside" 2>/dev/null || echo "mkdir: overlap at token $COORD_FENCING_TOKEN" >>"$D/overlaps"
[ "$(redis-cli -p "$REDIS_PORT" setnx inside "$COORD_FENCING_TOKEN")" = 1 ] ||
        echo "setnx: overlap at token $COORD_FENCING_TOKEN" >>"$D/overlaps"
redis-cli -p "$REDIS_PORT" rpush tokens "$COORD_FENCING_TOKEN" >/dev/null
sleep 0.02
redis-cli -p "$REDIS_PORT" del inside >/dev/null
rmdir "$D/inside"
EOS
export D REDIS_PORT

pids=""
for i in $(seq 1 $N); do
        if [ $((i % 2)) = 0 ]; then
                url="rediss://127.0.0.1:$TLS_PORT"
        else
                url="127.0.0.1:$TLS_PORT,ssl=True,user=locker,password=$pw,abortConnect=False"
        fi
        harness_spawn "c$i" "$COORDCTL" lock mutex --redis "$url" --lease 5s --wait-timeout 60s -- sh "$D/critical.sh"
        pids="$pids $pid"
done
for p in $pids; do
        wait "$p" || fail "a coordctl lock over TLS exited $? (see logs)"
done

[ ! -e "$D/overlaps" ] || { cat "$D/overlaps" >&2; fail "critical sections overlapped"; }
[ "$(harness_redis_cli llen tokens)" -eq $N ] || fail "expected $N tokens, got $(harness_redis_cli llen tokens)"
prev=0
for t in $(harness_redis_cli lrange tokens 0 -1); do
        [ "$t" -gt "$prev" ] || fail "fencing tokens not strictly increasing: $t after $prev"
        prev=$t
done
[ "$(harness_redis_cli exists 'coord:{default:lock:mutex}')" = 0 ] || fail "lock left behind after the last release"
# The ACL user really was the one connected, and never its password in a log.
[ "$(harness_redis_cli acl log | grep -c locker)" = 0 ] || fail "the ACL user was refused something"
! grep -l -- "$pw" "$D"/c*.log || fail "the password reached a log"
note "$N holders over TLS, tokens strictly increasing, no overlap"
echo "tls-lock: ok"
