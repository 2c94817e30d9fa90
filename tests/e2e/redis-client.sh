# lib/redis_client.c: the reconnecting async client against a real redis that is
# killed, restarted and frozen (SIGSTOP) while the test runs, directly and via
# redis-sentinel.  The checks are in tests/unit/test-redis_client.c; it asks this
# script to act on the server by creating $CTL_DIR/request (one word: kill,
# start, stop, cont, failover) and waits for $CTL_DIR/ack.
. "$COORD_HARNESS"
harness_init

test_bin="$top_builddir/tests/unit/test-redis_client"
[ -x "$test_bin" ] || fail "$test_bin not built"

auth_password='Client-Secret_42'
harness_start_redis authredis --requirepass "$auth_password"
auth_port=$REDIS_PORT
# An ACL user limited to coord's keys and channels, as a careful admin would set it up.
REDISCLI_AUTH=$auth_password redis-cli -p "$auth_port" ACL SETUSER coord on '>Coord-Acl-Pw9' \
        resetchannels '~coord:*' '&coord:*' '+@all' | grep -qx OK || fail "ACL SETUSER failed"
harness_start_redis
master_port=$REDIS_PORT
harness_start_redis replica --replicaof 127.0.0.1 "$master_port"
replica_port=$REDIS_PORT
REDIS_PORT=$master_port
REDIS_URL="redis://127.0.0.1:$master_port/0"
harness_wait_for 10 sh -c "redis-cli -p $replica_port info replication | grep -q master_link_status:up" ||
        fail "replica did not sync"
harness_start_sentinel "$REDIS_PORT" mymaster

ctl="$COORD_TEST_DIR/ctl"
mkdir -p "$ctl"

CTL_DIR=$ctl REPLICA_PORT=$replica_port AUTH_PORT=$auth_port AUTH_PASSWORD=$auth_password ${TEST_WRAPPER:-} "$test_bin" &
test_pid=$!
harness_track "$test_pid"

# Sentinel promotes the replica (no quorum needed when forced); it refuses
# (NOGOODSLAVE) until it has fresh INFO from the replica.
failover() {
        harness_wait_for 30 sh -c \
                "redis-cli -p $SENTINEL_PORT sentinel failover mymaster | grep -qx OK" ||
                fail "SENTINEL FAILOVER refused: $(redis-cli -p "$SENTINEL_PORT" sentinel failover mymaster)"
        harness_wait_for 30 sh -c \
                "redis-cli -p $SENTINEL_PORT sentinel get-master-addr-by-name mymaster | grep -qx $replica_port" ||
                fail "sentinel did not switch to the replica"
}
# Serve the test's requests until it exits.
harness_serve_requests "$ctl" "$test_pid" test-redis_client harness_restart_redis failover
[ "$(harness_redis_cli ping)" = PONG ] || fail "redis does not answer after the test"
echo "redis-client: ok"
