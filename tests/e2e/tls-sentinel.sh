# Sentinel over TLS: a TLS master, its TLS replica and a TLS-only sentinel.
# `coordctl lock` through "serviceName=...,ssl=true" takes the lock on the
# master; after a failover the same connection string lands on the promoted
# replica.  (The async client's failover over TLS: tests/e2e/tls-client.sh.)
. "$COORD_HARNESS"
. "$top_srcdir/tests/e2e/tls-lib.sh"
harness_init
tls_make_certs
tls_start_redis
master_port=$REDIS_PORT
master_tls=$TLS_PORT
tls_start_redis replica --replicaof 127.0.0.1 "$master_tls" --tls-replication yes
replica_port=$REDIS_PORT
replica_tls=$TLS_PORT
harness_wait_for 10 sh -c "redis-cli -p $replica_port info replication | grep -q master_link_status:up" ||
        fail "replica did not sync over TLS"
tls_start_sentinel "$master_tls" mymaster
export COORD_TLS_CA_FILE="$TLS_DIR/ca.crt"
url="127.0.0.1:$SENTINEL_TLS_PORT,serviceName=mymaster,ssl=true,connectTimeout=2000"

"$COORDCTL" lock before --redis "$url" -- true || fail "coordctl lock through the TLS sentinel failed"
[ "$(redis-cli -p "$master_port" exists 'coord:{default:lock:before}:fence')" = 1 ] ||
        fail "the lock was not taken on the master ($(redis-cli -p "$master_port" keys '*' | tr '\n' ' '))"
# Plain text to the sentinel: refused, with the hint.
set +e
"$COORDCTL" lock plain --redis "127.0.0.1:$SENTINEL_TLS_PORT,serviceName=mymaster" -- true 2>"$COORD_TEST_DIR/plain.err"
rc=$?
set -e
[ "$rc" = 3 ] || fail "plain text to a TLS sentinel exited $rc"
grep -q "does it need ssl=true?" "$COORD_TEST_DIR/plain.err" || { cat "$COORD_TEST_DIR/plain.err" >&2; fail "no hint"; }

tls_failover mymaster "$replica_tls"
harness_wait_for 30 sh -c "redis-cli -p $replica_port role | head -n 1 | grep -qx master" || fail "replica not promoted"
harness_wait_for 30 "$COORDCTL" lock after --redis "$url" --wait-timeout 5s -- true ||
        fail "coordctl lock through the TLS sentinel failed after the failover"
[ "$(redis-cli -p "$replica_port" exists 'coord:{default:lock:after}:fence')" = 1 ] ||
        fail "after the failover the lock was not taken on the new master"
echo "tls-sentinel: ok"
