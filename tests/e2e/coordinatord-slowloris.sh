#!/bin/sh
# Slowloris: 600 connections from seven loopback addresses, each sending one
# header line every 2 s and reconnecting when dropped, for 30 s, against a
# coordinatord with the default limits (max_connections 512,
# max_connections_per_client 256, request_head_timeout 5s).  Meanwhile a
# second client on another address must get /health/live in under a second,
# sampled every 0.5 s, and an admin from a third address must get /metrics.
# The refusals are counted by reason and logged at warning level, rate-limited.
set -eu
. "$COORD_HARNESS"
harness_init
harness_need curl jq python3
. "$top_srcdir/tests/e2e/coordinatord-lib.sh"
cd_single
PORT=$CD1_PORT
DURATION=30

# 300 connections from 127.0.0.1 (over its per-client share) and 50 from each
# of 127.0.0.2-7: together past max_connections minus the reserve.
cat >"$COORD_TEST_DIR/slowloris.py" <<'EOF'
import socket, sys, time
port, duration, interval = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
plan = [("127.0.0.1", 300)] + [("127.0.0.%d" % i, 50) for i in range(2, 8)]
slots = [[src, None] for src, n in plan for _ in range(n)]
stats = {"connects": 0, "dropped": 0, "408": 0}

def alive(s):
    try:
        data = s.recv(4096, socket.MSG_DONTWAIT)
    except BlockingIOError:
        return True
    except OSError:
        return False
    if data.startswith(b"HTTP/1.1 408 ") and b'"code":"request_timeout"' in data:
        stats["408"] += 1
    return False

def connect(src):
    s = socket.socket()
    s.settimeout(1)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET /health/live HTTP/1.1\r\nHost: coord\r\n")
    s.setblocking(False)
    stats["connects"] += 1
    return s

# held: connections still open since the previous tick (fresh ones not counted).
start, tick, max_held = time.time(), 0, 0
while time.time() - start < duration:
    held = 0
    for slot in slots:
        s = slot[1]
        if s is not None:
            try:
                if not alive(s):
                    raise OSError("closed")
                s.send(b"X-Slow-%d: 1\r\n" % tick)
                held += 1
                continue
            except OSError:
                s.close()
                stats["dropped"] += 1
                slot[1] = None
        try:
            slot[1] = connect(slot[0])
        except OSError:
            slot[1] = None
    max_held = max(max_held, held)
    print("t=%.1f held=%d connects=%d dropped=%d got408=%d" % (time.time() - start, held, stats["connects"],
          stats["dropped"], stats["408"]), flush=True)
    tick += 1
    time.sleep(interval)
print("max-held %d got408 %d" % (max_held, stats["408"]), flush=True)
EOF
harness_spawn slowloris python3 "$COORD_TEST_DIR/slowloris.py" "$PORT" "$DURATION" 2
harness_wait_for 10 grep -q 'held=[1-9]' "$COORD_TEST_DIR/slowloris.log" || fail "the slowloris client never held a connection"

# The second client: 127.0.0.9, every 0.5 s for the whole run.  Every 2 s an
# admin reads /metrics from 127.0.0.10, noting the open connections.
probe() {
        out=$(curl -s -o /dev/null -m 3 --interface 127.0.0.9 -w '%{http_code} %{time_total}' "$URL/health/live" || true)
        code=${out%% *} t=${out#* }
        n=$((n + 1))
        if [ "$code" != 200 ]; then
                failed=$((failed + 1))
                note "probe $n: HTTP ${code:-none} after ${t}s"
        fi
        worst=$(awk -v a="$worst" -v b="${t:-3}" 'BEGIN { print (b > a) ? b : a }')
}
admin() {
        if curl -s -f -m 3 --interface 127.0.0.10 -H "Authorization: Bearer $TOKEN_ADMIN" "$URL/metrics" \
                >"$COORD_TEST_DIR/metrics-during"; then
                sed -n 's/^coordinatord_http_connections //p' "$COORD_TEST_DIR/metrics-during" >>"$COORD_TEST_DIR/held"
        else
                admin_failed=$((admin_failed + 1))
        fi
}
worst=0 n=0 failed=0 admin_failed=0
t0=$(now_ms)
while [ "$(now_ms)" -lt $((t0 + DURATION * 1000 - 1000)) ]; do
        probe
        [ $((n % 4)) != 0 ] || admin
        sleep 0.5
done
echo "slowloris: $(tail -n 1 "$COORD_TEST_DIR/slowloris.log" | sed 's/^t=[0-9.]* //')"
echo "second client: $n probes of /health/live, $failed failed, worst latency ${worst}s"
[ "$failed" = 0 ] || fail "$failed of $n probes of /health/live failed during the slowloris"
awk -v w="$worst" 'BEGIN { exit !(w < 1.0) }' || fail "worst /health/live latency ${worst}s during the slowloris (want < 1s)"
[ $admin_failed = 0 ] || fail "an admin could not read /metrics $admin_failed times during the attack"
held=$(sort -n "$COORD_TEST_DIR/held" | tail -n 1)
echo "server held at most $held connections ($(wc -l <"$COORD_TEST_DIR/held") samples)"
[ -n "$held" ] && [ "$held" -ge 400 ] && [ "$held" -le 520 ] ||
        fail "the server held at most '$held' connections (want 400-520: the attack filled it, the limit held)"

harness_wait_gone 10 "$PID_slowloris" || fail "the slowloris client did not finish"
grep -q '^max-held' "$COORD_TEST_DIR/slowloris.log" || fail "the slowloris client failed: $(tail -n 5 "$COORD_TEST_DIR/slowloris.log")"
got408=$(sed -n 's/^max-held [0-9]* got408 //p' "$COORD_TEST_DIR/slowloris.log")
[ "$got408" -gt 0 ] || fail "no late request head was answered 408"

# Counted by reason, and logged at warning level at most every 10 s.
expect 200 GET /metrics read
for reason in per_client limit head_timeout; do
        v=$(sed -n "s/^coordinatord_http_connections_rejected_total{reason=\"$reason\"} //p" "$BODY_FILE")
        echo "rejected $reason: $v"
        [ "${v:-0}" -gt 0 ] || fail "no connection rejected for $reason"
done
lines=$(grep -c 'connections refused or closed (per_client' "$COORD_TEST_DIR/cd1.log" || true)
echo "warnings logged: $lines"
[ "$lines" -ge 1 ] && [ "$lines" -le $((DURATION / 10 + 2)) ] || fail "$lines refusal warnings in ${DURATION}s (want 1-$((DURATION / 10 + 2)))"
grep 'connections refused or closed' "$COORD_TEST_DIR/cd1.log" | head -n 1
# Once the attack ends, everything is served again.
harness_wait_for 10 sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' '$URL/health/live')\" = 200 ]" ||
        fail "127.0.0.1 not served after the attack"
echo "slowloris: ok"
