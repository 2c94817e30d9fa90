#!/usr/bin/env python3
"""Hold N Server-Sent-Event streams open against coordinatord while measuring
the latency of other requests.  Used by tests/e2e/rollout-streams.sh and
bench/fleet.sh.

  sse-load.py --url URL --token T --deployment ID --streams N
              [--replay ID --replays M] [--requests R] [--hold-only SECS]

Opens N streams to /v1/deployments/ID/events (a running deployment: they stay
open), checks each got "200" and the first event; then, while they are held
(and, with --replay, while M streams of a finished deployment are opened and
read to their end one after another on a thread), sends R sequential requests
each to /health/live and /v1/instances over a keep-alive connection and prints
one line per path: "PATH n=R p50=.. p99=.. max=.. ms".  Finally it checks that
every held stream is still open, and prints "streams-open N".  Exit 1 when a
stream failed.  --hold-only SECS just holds the streams for that long (for a
benchmark running beside it) and then checks them.
"""
import argparse
import http.client
import socket
import sys
import threading
import time
import urllib.parse


def open_stream(host, port, path, token, last_id=None, close=False):
    s = socket.create_connection((host, port), timeout=10)
    req = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
           "Accept: text/event-stream\r\n")
    if close:
        # The stream of a finished deployment ends with the last chunk; ask
        # for the connection to close too, so the end is an EOF.
        req += "Connection: close\r\n"
    if last_id is not None:
        req += f"Last-Event-ID: {last_id}\r\n"
    s.sendall((req + "\r\n").encode())
    return s


def read_until(s, needle, limit=1 << 20):
    buf = b""
    while needle not in buf:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
        if len(buf) > limit:
            break
    return buf


def read_to_end(s):
    total = 0
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return total
        total += len(chunk)


def pct(v, p):
    v = sorted(v)
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--deployment", required=True)
    ap.add_argument("--streams", type=int, default=200)
    ap.add_argument("--replay")
    ap.add_argument("--replays", type=int, default=0)
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--hold-only", type=float, default=0)
    a = ap.parse_args()
    u = urllib.parse.urlparse(a.url)
    host, port = u.hostname, u.port

    held = []
    for _ in range(a.streams):
        s = open_stream(host, port, f"/v1/deployments/{a.deployment}/events", a.token)
        head = read_until(s, b"\nid: ")
        if not head.startswith(b"HTTP/1.1 200") or b"text/event-stream" not in head:
            print("stream refused:", head[:200], file=sys.stderr)
            return 1
        held.append(s)
    print(f"streams-opened {len(held)}", flush=True)

    replay_errors = []
    replayed = [0]

    def replayer():
        for _ in range(a.replays):
            try:
                s = open_stream(host, port, f"/v1/deployments/{a.replay}/events", a.token, close=True)
                n = read_to_end(s)
                s.close()
                if n < 100:
                    replay_errors.append(f"short replay ({n} bytes)")
                replayed[0] += 1
            except OSError as e:
                replay_errors.append(str(e))

    t = None
    if a.replay and a.replays:
        t = threading.Thread(target=replayer)
        t.start()

    if a.hold_only:
        time.sleep(a.hold_only)
    else:
        for path in ("/health/live", "/v1/instances"):
            c = http.client.HTTPConnection(host, port, timeout=10)
            lat = []
            for _ in range(a.requests):
                t0 = time.perf_counter()
                c.request("GET", path, headers={"Authorization": f"Bearer {a.token}"})
                r = c.getresponse()
                r.read()
                lat.append((time.perf_counter() - t0) * 1000)
                if r.status != 200:
                    print(f"{path}: status {r.status}", file=sys.stderr)
                    return 1
            c.close()
            print(f"{path} n={len(lat)} p50={pct(lat, 50):.2f} p99={pct(lat, 99):.2f} max={max(lat):.2f} ms",
                  flush=True)
    if t:
        t.join()
        print(f"replays {replayed[0]} errors {len(replay_errors)}", flush=True)
        if replay_errors:
            print("replay errors:", replay_errors[:3], file=sys.stderr)
            return 1

    # Every held stream is still open: a non-blocking read finds no EOF.
    open_n = 0
    for s in held:
        s.setblocking(False)
        try:
            data = s.recv(65536)
            open_n += 1 if data else 0
        except BlockingIOError:
            open_n += 1
        s.close()
    print(f"streams-open {open_n}", flush=True)
    return 0 if open_n == len(held) else 1


if __name__ == "__main__":
    sys.exit(main())
