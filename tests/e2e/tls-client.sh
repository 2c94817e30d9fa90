# lib/tls*.c, and lib/redis.c and lib/redis_client.c over TLS, against real
# TLS servers: a redis (plain and TLS ports, an ACL user) that this script
# kills, restarts and freezes on request, its TLS replica, a TLS-only
# sentinel, and a redis that requires client certificates.  The checks are in
# tests/unit/test-tls.c; it asks this script to act by creating
# $CTL_DIR/request (kill, start, stop, cont, failover) and waits for $CTL_DIR/ack.
. "$COORD_HARNESS"
. "$top_srcdir/tests/e2e/tls-lib.sh"
harness_init

test_bin="$top_builddir/tests/unit/test-tls"
[ -x "$test_bin" ] || fail "$test_bin not built"

tls_make_certs
tls_start_redis mtls --tls-auth-clients yes
mtls_port=$TLS_PORT
tls_start_redis
master_port=$REDIS_PORT
master_tls=$TLS_PORT
redis-cli -p "$master_port" ACL SETUSER coord on '>Coord-Tls-Acl9' resetchannels '~coord:*' '~tls:*' '&coord:*' \
        '+@all' | grep -qx OK || fail "ACL SETUSER failed"
tls_start_redis replica --replicaof 127.0.0.1 "$master_tls" --tls-replication yes
replica_tls=$TLS_PORT
harness_wait_for 10 sh -c "redis-cli -p $REPLICA_PORT info replication | grep -q master_link_status:up" ||
        fail "replica did not sync over TLS"
tls_start_sentinel "$master_tls" mymaster
note "redis $master_port/$master_tls, replica $replica_tls, mtls $mtls_port, sentinel $SENTINEL_TLS_PORT"

ctl="$COORD_TEST_DIR/ctl"
mkdir -p "$ctl"
# The async path's one-shot rendezvous sockets go under TMPDIR: checked below.
mkdir -p "$COORD_TEST_DIR/tmp"
REDIS_PORT=$master_port TLS_PORT=$master_tls MTLS_PORT=$mtls_port REPLICA_TLS_PORT=$replica_tls CTL_DIR=$ctl \
        TMPDIR="$COORD_TEST_DIR/tmp" ${TEST_WRAPPER:-} "$test_bin" &
test_pid=$!
harness_track "$test_pid"

harness_serve_requests "$ctl" "$test_pid" test-tls tls_restart_redis tls_failover mymaster "$replica_tls"
[ -z "$(ls -A "$COORD_TEST_DIR/tmp")" ] || fail "left behind in TMPDIR: $(ls -A "$COORD_TEST_DIR/tmp")"
echo "tls-client: ok"
