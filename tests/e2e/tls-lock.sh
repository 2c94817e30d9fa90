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
harness_lock_section
export D REDIS_PORT

# Odd holders as the ACL user, even ones as the default user.
harness_lock_holders $N "a coordctl lock over TLS" "127.0.0.1:$TLS_PORT,ssl=True,user=locker,password=$pw,abortConnect=False" \
        "rediss://127.0.0.1:$TLS_PORT"

harness_lock_verify $N
# The ACL user really was the one connected, and never its password in a log.
[ "$(harness_redis_cli acl log | grep -c locker)" = 0 ] || fail "the ACL user was refused something"
! grep -l -- "$pw" "$D"/c*.log || fail "the password reached a log"
note "$N holders over TLS, tokens strictly increasing, no overlap"
echo "tls-lock: ok"
