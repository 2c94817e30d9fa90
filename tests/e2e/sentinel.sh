# lib/redis.c against real servers: plain, unix socket, SELECT, AUTH password and
# ACL user, a replica, and redis-sentinel resolving "serviceName=" to its master.
# The checks themselves are in tests/unit/test-redis.c.
. "$COORD_HARNESS"
harness_init

test_bin="$top_builddir/tests/unit/test-redis"
[ -x "$test_bin" ] || fail "$test_bin not built"

# The plain master (also on a unix socket), and a replica of it.
harness_start_redis master --unixsocket "$COORD_TEST_DIR/master.sock" --unixsocketperm 700
master_port=$REDIS_PORT
master_url=$REDIS_URL
harness_start_redis replica --replicaof 127.0.0.1 "$master_port"
replica_port=$REDIS_PORT

# A redis that requires a password (with characters connection strings care
# about), plus an ACL user.
auth_password='Pa55-w0rd_With@Sign'
harness_start_redis authredis --requirepass "$auth_password"
auth_port=$REDIS_PORT
REDISCLI_AUTH=$auth_password redis-cli -p "$auth_port" ACL SETUSER alice on '>Alice-Acl-Pw1' '~*' '&*' '+@all' |
        grep -qx OK || fail "ACL SETUSER failed"

# A sentinel for the plain master, and one that itself requires the password
# and monitors the password-protected redis.
harness_start_sentinel "$auth_port" authmaster "$auth_password" "$auth_password"
auth_sentinel_port=$SENTINEL_PORT
harness_start_sentinel "$master_port" mymaster
note "master $master_port, replica $replica_port, auth $auth_port, sentinel $SENTINEL_PORT, auth sentinel $auth_sentinel_port"

REDIS_PORT=$master_port REDIS_URL=$master_url REPLICA_PORT=$replica_port \
AUTH_PORT=$auth_port AUTH_PASSWORD=$auth_password ACL_USER=alice ACL_PASSWORD='Alice-Acl-Pw1' \
AUTH_SENTINEL_PORT=$auth_sentinel_port UNIX_SOCKET="$COORD_TEST_DIR/master.sock" \
        ${TEST_WRAPPER:-} "$test_bin" || fail "test-redis failed"

# The write through the sentinel really landed on the monitored master.
[ -n "$(redis-cli -p "$master_port" get via-sentinel)" ] || fail "key written via sentinel missing on the master"
echo "sentinel: ok"
