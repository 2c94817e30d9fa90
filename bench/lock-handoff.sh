#!/bin/sh
# Start Redis, etcd and PostgreSQL on free loopback ports in a temporary
# directory (tests/harness.sh: everything is stopped and removed on exit), then
# run bench/lock-handoff against all three and print the table.
#
#   cd BUILD_DIR && make bench && SRC_DIR/bench/lock-handoff.sh [--tls] [lock-handoff flags]
#
# --tls: coord alone (lib/lock.c and `coordctl lock -- JOB`), over plain text
# and over TLS against one Redis that listens on both (certificates made on
# the fly, COORD_TLS_CA_FILE), then the TLS / plain ratio of the medians.
# LOCK_HANDOFF overrides the path of the program (default ./bench/lock-handoff).
tls=0
if [ "${1:-}" = --tls ]; then
        tls=1
        shift
fi
srcdir=$(cd "$(dirname "$0")/.." && pwd)
BIN=${LOCK_HANDOFF:-./bench/lock-handoff}
[ -x "$BIN" ] || { echo "lock-handoff.sh: $BIN not built (run 'make bench' in the build dir)" >&2; exit 2; }
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

COORD_HARNESS="$srcdir/tests/harness.sh"
. "$COORD_HARNESS"
harness_init
COORDCTL=${COORDCTL:-$(dirname "$(dirname "$BIN")")/deploy/coordctl}
[ -x "$COORDCTL" ] || fail "$COORDCTL not built"

# median_of FILE LABEL: the median column of LABEL's row in a lock-handoff table.
median_of() {
        grep "^$2 " "$1" | tail -n 1 | cut -c37- | awk '{ print $2 }'
}

if [ "$tls" = 1 ]; then
        . "$srcdir/tests/e2e/tls-lib.sh"
        tls_make_certs
        tls_start_redis
        export COORD_TLS_CA_FILE="$TLS_DIR/ca.crt"
        echo "# $(redis-server --version | cut -d' ' -f1-3), $(openssl version), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
        echo "==> plain text: $REDIS_URL"
        "$BIN" --redis "$REDIS_URL" --coordctl "$COORDCTL" "$@" | tee "$COORD_TEST_DIR/plain.out"
        echo
        echo "==> TLS: rediss://127.0.0.1:$TLS_PORT (same server)"
        "$BIN" --redis "rediss://127.0.0.1:$TLS_PORT" --coordctl "$COORDCTL" "$@" | tee "$COORD_TEST_DIR/tls.out"
        echo
        echo "TLS / plain text, median hand-off:"
        for label in "coord (Redis, lib/lock.c)" "coordctl lock -- JOB"; do
                p=$(median_of "$COORD_TEST_DIR/plain.out" "$label")
                t=$(median_of "$COORD_TEST_DIR/tls.out" "$label")
                awk -v l="$label" -v p="$p" -v t="$t" \
                        'BEGIN { printf "  %-28s plain %8.3f ms   TLS %8.3f ms   ratio %5.2fx\n", l, p, t, (p > 0 ? t / p : 0) }'
        done
        exit 0
fi

harness_need etcd etcdctl
harness_start_redis
harness_start_postgres

for _attempt in 1 2 3 4 5; do
        ETCD_PORT=$(harness_free_port)
        ETCD_PEER=$(harness_free_port)
        harness_spawn etcd etcd --name bench --data-dir "$COORD_TEST_DIR/etcd" \
                --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
                --listen-peer-urls "http://127.0.0.1:$ETCD_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
                --initial-cluster "bench=http://127.0.0.1:$ETCD_PEER" --log-level error
        if harness_wait_for 20 env ETCDCTL_API=3 etcdctl --endpoints="127.0.0.1:$ETCD_PORT" endpoint health; then
                break
        fi
        kill "$PID_etcd" 2>/dev/null || true
        ETCD_PORT=""
done
[ -n "$ETCD_PORT" ] || fail "etcd did not start (see $COORD_TEST_DIR/etcd.log)"

echo "# $(redis-server --version | cut -d' ' -f1-3), $(etcd --version | head -n 1), $(harness_psql -c 'show server_version')"
echo "# $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
"$BIN" --redis "$REDIS_URL" --etcd "127.0.0.1:$ETCD_PORT" --pg "$DATABASE_URL" --coordctl "$COORDCTL" "$@"
