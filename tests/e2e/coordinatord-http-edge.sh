#!/bin/sh
# coordinatord's HTTP edge with raw requests: every error coordinatord sends
# is JSON in the contract's shape (status, Content-Type, {"error":{"code",
# "message"}}), except the documented cases libmicrohttpd answers itself
# before coordinatord sees the request (docs/api.md "Errors the HTTP library
# sends"); a non-UTF-8 method is a 400, not a 500; conflicting framing
# (two Content-Lengths, Transfer-Encoding with Content-Length) is a 400 and
# closes the connection; the request head deadline answers 408 and closes
# silent and idle connections; the per-client share and the reserve.
set -eu
. "$COORD_HARNESS"
harness_init
harness_need curl jq python3
. "$top_srcdir/tests/e2e/coordinatord-lib.sh"
cd_single '"request_head_timeout":"1s"'
harness_wait_for 10 ready "$URL" || fail "coordinatord not ready"

# raw.py PORT CASE...: send each case's bytes on a fresh connection, check the
# answer, print one line per case; exit 1 when one is wrong.
cat >"$COORD_TEST_DIR/raw.py" <<'EOF'
import json, re, socket, sys, time
port, admin = int(sys.argv[1]), sys.argv[2]
def req(method, target, headers=(), body=b"", version=b"HTTP/1.1"):
    h = b"".join(k + b": " + v + b"\r\n" for k, v in headers)
    return method + b" " + target + b" " + version + b"\r\nHost: coord\r\n" + h + b"\r\n" + body
J = (b"Content-Type", b"application/json")
A = (b"Authorization", b"Bearer " + admin.encode())
many = tuple((b"X-H%d" % i, b"1") for i in range(150))
# name: (request, status, error code | "ok" | "library", must the connection close?)
cases = {
  "non-utf8-method": (req(b"G\xe9T", b"/health/live"), 400, "bad_request", False),
  "non-utf8-method-v1": (req(b"G\xe9T", b"/v1/leader"), 400, "bad_request", False),
  "non-token-method": (req(b"GE(T", b"/v1/instances"), 400, "bad_request", False),
  "unknown-method": (req(b"BREW", b"/health/live"), 405, "method_not_allowed", False),
  "unknown-method-unknown-path": (req(b"BREW", b"/nope"), 404, "not_found", False),
  "two-content-lengths": (req(b"PUT", b"/v1/config/web", (J, A, (b"Content-Length", b"2"), (b"Content-Length", b"12")),
                          b"{}"), 400, "bad_request", True),
  "te-and-cl": (req(b"PUT", b"/v1/config/web", (J, A, (b"Content-Length", b"5"), (b"Transfer-Encoding", b"chunked")),
                b"2\r\n{}\r\n0\r\n\r\n"), 400, "bad_request", True),
  "cl-and-te": (req(b"PUT", b"/v1/config/web", (J, A, (b"Transfer-Encoding", b"chunked"), (b"Content-Length", b"5")),
                b"2\r\n{}\r\n0\r\n\r\n"), 400, "bad_request", True),
  "te-gzip": (req(b"PUT", b"/v1/config/web", (J, A, (b"Transfer-Encoding", b"gzip"))), 400, "bad_request", True),
  "te-twice": (req(b"PUT", b"/v1/config/web", (J, A, (b"Transfer-Encoding", b"chunked"), (b"Transfer-Encoding", b"chunked")),
               b"2\r\n{}\r\n0\r\n\r\n"), 400, "bad_request", True),
  "te-http10": (req(b"PUT", b"/v1/config/web", (J, A, (b"Transfer-Encoding", b"chunked")), b"2\r\n{}\r\n0\r\n\r\n",
                version=b"HTTP/1.0"), 400, "bad_request", True),
  "same-content-length-twice": (req(b"PUT", b"/v1/config/web", (J, A, (b"Content-Length", b"18"), (b"Content-Length", b"18")),
                                b'{"config":{"A":1}}'), 200, "ok", False),
  "body-on-get": (req(b"GET", b"/health/live", (J, (b"Content-Length", b"5"))), 400, "bad_request", True),
  "uri-10k": (req(b"GET", b"/health/live?" + b"a" * 10000), 414, "uri_too_long", False),
  "head-20k": (req(b"GET", b"/health/live", ((b"X-Big", b"a" * 20000),)), 431, "header_fields_too_large", False),
  "150-headers": (req(b"GET", b"/health/live", many), 431, "header_fields_too_large", False),
  "body-over-64k": (req(b"PUT", b"/v1/config/web", (J, A, (b"Content-Length", b"100000"))), 413, "payload_too_large", True),
  # Answered by libmicrohttpd before coordinatord sees the request (documented).
  "http2": (req(b"GET", b"/health/live", version=b"HTTP/2.0"), 505, "library", True),
  "http09": (req(b"GET", b"/health/live", version=b"HTTP/0.9"), 505, "library", True),
  "no-version": (b"GET /health/live\r\nHost: coord\r\n\r\n", 400, "library", True),
  "header-without-colon": (req(b"GET", b"/health/live", ((b"Broken", b""),)).replace(b"Broken: \r\n", b"Broken\r\n"),
                           400, "library", True),
  "content-length-abc": (req(b"PUT", b"/v1/config/web", (J, A, (b"Content-Length", b"abc"))), 400, "library", True),
  "content-length-list": (req(b"PUT", b"/v1/config/web", (J, A, (b"Content-Length", b"2, 2")), b"{}"), 400, "library", True),
  "content-length-2^70": (req(b"PUT", b"/v1/config/web", (J, A, (b"Content-Length", b"1" * 22))), 413, "library", True),
  "bad-chunk": (req(b"PUT", b"/v1/config/web", (J, A, (b"Transfer-Encoding", b"chunked")), b"zz\r\n{}\r\n0\r\n\r\n"),
                400, "library", True),
  "uri-70k": (req(b"GET", b"/health/live?" + b"a" * 70000), 414, "library", True),
  "head-70k": (req(b"GET", b"/health/live", tuple((b"X-%d" % i, b"a" * 1000) for i in range(70))), 431, "library", True),
}

def exchange(data):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(data)
    except OSError:
        pass  # the server may answer and close before reading everything
    buf = b""
    while b"\r\n\r\n" not in buf:
        c = s.recv(65536)
        if not c:
            break
        buf += c
    head, _, body = buf.partition(b"\r\n\r\n")
    m = re.search(rb"\r\ncontent-length: *(\d+)", head, re.I)
    want = int(m.group(1)) if m else 0
    while len(body) < want:
        c = s.recv(65536)
        if not c:
            break
        body += c
    s.settimeout(2)
    try:
        closed = s.recv(65536) == b""
    except socket.timeout:
        closed = False
    except OSError:
        closed = True
    s.close()
    return head, body[:want], closed

bad = 0
for name in sys.argv[3:] or cases:
    data, status, kind, must_close = cases[name]
    head, body, closed = exchange(data)
    line = head.split(b"\r\n", 1)[0].decode("latin-1")
    got = int(line.split(" ")[1]) if line.startswith("HTTP/1.1 ") else 0
    problems = []
    if got != status:
        problems.append("status %d, want %d" % (got, status))
    if kind != "library":
        if not re.search(rb"\r\ncontent-type: application/json\r\n", head + b"\r\n", re.I):
            problems.append("no Content-Type: application/json")
    if kind not in ("library", "ok"):
        try:
            err = json.loads(body)["error"]
            if err["code"] != kind or not isinstance(err["message"], str):
                problems.append("error %r, want code %s" % (err, kind))
        except Exception as e:
            problems.append("body not the error shape (%s): %r" % (e, body[:200]))
    if must_close and not closed:
        problems.append("connection left open")
    print("%-28s %s %s%s" % (name, line, "library answer (documented)" if kind == "library" else "json " + kind,
                             ("  <-- " + "; ".join(problems)) if problems else ""), flush=True)
    bad += bool(problems)
sys.exit(1 if bad else 0)
EOF
python3 "$COORD_TEST_DIR/raw.py" "$CD1_PORT" "$TOKEN_ADMIN" || fail "raw requests answered wrongly (above)"

# None of that was a 5xx, and the library's own answers after the request
# line are counted too (as unmatched).
expect 200 GET /metrics read
! grep -q 'coordinatord_http_requests_total{.*code="500"}' "$BODY_FILE" || fail "a raw request counted as 500: $(grep 'code="500"' "$BODY_FILE")"
for m in 'route="unmatched",code="431"' 'route="unmatched",code="413"' 'route="unmatched",code="400"' \
        'route="unmatched",code="414"' 'route="/health/live",code="400"' 'route="PUT /v1/config/{service}",code="200"'; do
        grep -q "coordinatord_http_requests_total{$m}" "$BODY_FILE" || fail "metrics lack requests_total{$m}"
done

# ---- the request head deadline (request_head_timeout 1s) ----
# A request line and then one header line every 300 ms: 408 JSON, closed,
# although bytes keep arriving.
cat >"$COORD_TEST_DIR/deadline.py" <<'EOF'
import socket, sys, time
port, mode = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port), timeout=10)
t0 = time.time()
if mode == "keepalive":
    s.sendall(b"GET /health/live HTTP/1.1\r\nHost: coord\r\n\r\n")
    assert s.recv(4096).startswith(b"HTTP/1.1 200 "), "first request not served"
    t0 = time.time()
elif mode == "trickle":
    s.sendall(b"GET /health/live HTTP/1.1\r\nHost: coord\r\n")
got = b""
try:
    for i in range(100):
        if mode == "trickle":
            s.sendall(b"X-Slow-%d: 1\r\n" % i)
        s.settimeout(0.3)
        try:
            c = s.recv(65536)
        except socket.timeout:
            continue
        got += c
        if not c:
            break
except OSError:
    pass
print("%s: closed after %.2fs, answer %r" % (mode, time.time() - t0, got[:400]))
EOF
for mode in trickle silent keepalive; do
        out=$(python3 "$COORD_TEST_DIR/deadline.py" "$CD1_PORT" $mode)
        printf '%s\n' "$out"
        secs=$(printf '%s\n' "$out" | sed -n 's/.*closed after \([0-9.]*\)s.*/\1/p')
        awk -v s="$secs" 'BEGIN { exit !(s >= 0.9 && s < 2.5) }' || fail "$mode: closed after ${secs}s (want about 1s)"
        case $mode in
        trickle) printf '%s\n' "$out" | grep -q "HTTP/1.1 408 Request Timeout.*Content-Type: application/json.*\"code\":\"request_timeout\"" ||
                        fail "a late request head was not answered 408 JSON" ;;
        *) printf '%s\n' "$out" | grep -q "answer b''" || fail "$mode: a connection without a request line got an answer" ;;
        esac
done

# ---- per-client share and reserve: max_connections 32 (reserve 2), 20 per client ----
# One HTTP thread, so that connections are admitted in the order they arrive.
cd_start cd2 '"max_connections":32,"max_connections_per_client":20,"request_head_timeout":"30s","http_threads":1'
cat >"$COORD_TEST_DIR/share.py" <<'EOF'
import socket, sys, time
port = int(sys.argv[1])
held = []
def alive(s):
    try:
        return s.recv(1, socket.MSG_DONTWAIT) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
def group(src, n):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind((src, 0))
        s.connect(("127.0.0.1", port))
        socks.append(s)
    time.sleep(0.3)   # refused sockets are closed at once
    ok = [s for s in socks if alive(s)]
    held.extend(ok)
    return "%s: %d of %d" % (src, len(ok), n)
print(group("127.0.0.1", 25))   # 20: the per-client share
print(group("127.0.0.2", 15))   # 10: up to 30 = max - reserve
print(group("127.0.0.3", 3))    # 2: the reserve goes to clients holding at most one
print(group("127.0.0.4", 1))    # 0: full
EOF
python3 "$COORD_TEST_DIR/share.py" "$CD2_PORT" >"$COORD_TEST_DIR/share.out"
cat "$COORD_TEST_DIR/share.out"
[ "$(cat "$COORD_TEST_DIR/share.out")" = "127.0.0.1: 20 of 25
127.0.0.2: 10 of 15
127.0.0.3: 2 of 3
127.0.0.4: 0 of 1" ] || fail "per-client share or reserve not as configured"
URL=$CD2_URL
harness_wait_for 5 sh -c "curl -s -H 'Authorization: Bearer $TOKEN_READ' $URL/metrics | grep -q '^coordinatord_http_connections 1$'" ||
        fail "connections not released: $(curl -s -H "Authorization: Bearer $TOKEN_READ" "$URL/metrics" | grep '^coordinatord_http_conn')"
expect 200 GET /metrics read
grep -q 'coordinatord_http_connections_rejected_total{reason="per_client"} 5' "$BODY_FILE" || fail "per_client refusals: $(grep rejected_total "$BODY_FILE")"
grep -q 'coordinatord_http_connections_rejected_total{reason="limit"} 7' "$BODY_FILE" || fail "limit refusals: $(grep rejected_total "$BODY_FILE")"

# ---- configuration ----
for bad in '"request_head_timeout":"0s"|request_head_timeout' '"request_head_timeout":"10m"|request_head_timeout' \
           '"max_connections_per_client":0|max_connections_per_client'; do
        cd_write_config bad 1 "${bad%%|*}"
        set +e
        "$COORDINATORD" --config "$COORD_TEST_DIR/bad.json" --check-config >"$COORD_TEST_DIR/bad.out" 2>&1
        rc=$?
        set -e
        [ $rc = 2 ] && grep -q "${bad#*|}" "$COORD_TEST_DIR/bad.out" || fail "${bad%%|*}: exit $rc, $(cat "$COORD_TEST_DIR/bad.out")"
done
cd_write_config good 1
"$COORDINATORD" --config "$COORD_TEST_DIR/good.json" --check-config |
        jq -e '.max_connections_per_client == 256 and .request_head_timeout == "5s"' >/dev/null ||
        fail "defaults not shown by --check-config"
# Refusals are logged at warning level at once, then at most every 10 s with
# the counts since the last line.
grep -q 'warning: HTTP: 5 connections refused or closed (per_client 5, limit 0, head_timeout 0; last from 127.0.0.1)' \
        "$COORD_TEST_DIR/cd2.log" || fail "first refusal not logged: $(grep -i refused "$COORD_TEST_DIR/cd2.log")"
harness_wait_for 12 grep -q 'warning: HTTP: 7 connections refused or closed (per_client 0, limit 7, head_timeout 0; last from 127.0.0.4)' \
        "$COORD_TEST_DIR/cd2.log" || fail "later refusals not logged: $(grep -i refused "$COORD_TEST_DIR/cd2.log")"
[ "$(grep -c 'connections refused or closed' "$COORD_TEST_DIR/cd2.log")" = 2 ] || fail "refusal warnings not rate-limited"
echo "http edge: ok"

