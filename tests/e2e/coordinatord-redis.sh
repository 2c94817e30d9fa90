# Redis outage: the API stays up, answers 503 where it needs Redis,
# /health/ready 503 with per-dependency JSON, /health/live 200, and everything
# recovers by itself once Redis is back, without a restart.  Also a hung
# Redis (SIGSTOP): requests are answered within about a second, never hang.
. "$COORD_HARNESS"
harness_init
harness_need curl jq
. "$top_srcdir/tests/e2e/coordinatord-lib.sh"
harness_start_redis
cd_start cd1
URL=$CD1_URL
harness_wait_for 10 ready "$URL" || fail "not ready"
pid=$PID_cd1
register web-1 web host-1 60000
expect 200 PUT /v1/config/web admin -H 'Content-Type: application/json' -d '{"config":{"A":1}}'

not_ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/health/ready")" = 503 ]; }

harness_kill_redis
harness_wait_for 5 not_ready || fail "ready stays 200 with Redis down"
expect 503 GET /health/ready none
jq -e '.checks.redis.status == "down" and .status == "unavailable"' "$BODY_FILE" >/dev/null ||
        fail "ready body lacks the per-dependency status: $(body)"
expect 200 GET /health/live none
for ep in "GET /v1/instances" "GET /v1/instances/web-1" "GET /v1/leader" "GET /v1/config/web"; do
        expect 503 $ep read
done
expect 503 PUT /v1/config/web admin -H 'Content-Type: application/json' -d '{"config":{"A":2}}'
expect 503 POST /v1/instances/web-1/drain deploy
expect 200 GET /metrics read
grep -qx 'coordinatord_redis_up 0' "$BODY_FILE" || fail "metrics: redis_up not 0"
grep -qx 'coordinatord_leader 0' "$BODY_FILE" || fail "metrics: still leader without Redis"
# Auth and validation still work without Redis.
expect 401 GET /v1/instances none
expect 400 GET /v1/instances/a*b read

# Back: ready again without a restart.
harness_restart_redis
harness_wait_for 10 ready "$URL" || fail "not ready again after Redis came back"
kill -0 "$pid" || fail "coordinatord restarted or died"
expect 200 GET /v1/leader read
jq -e '.is_leader == true' "$BODY_FILE" >/dev/null || fail "did not lead again: $(body)"
expect 200 GET /metrics read
grep -qx 'coordinatord_redis_reconnects_total 1' "$BODY_FILE" || fail "reconnect not counted: $(grep reconnects "$BODY_FILE")"
grep -qx 'coordinatord_lock_acquisitions_total 2' "$BODY_FILE" || fail "second acquisition not counted"
expect 200 PUT /v1/config/web admin -H 'Content-Type: application/json' -d '{"config":{"A":3}}'
register web-2 web host-2 60000
harness_wait_for 5 sh -c "curl -s -H 'Authorization: Bearer $TOKEN_READ' $URL/v1/instances/web-2 | grep -q host-2" ||
        fail "fleet view does not follow after the outage"

# Hung Redis: answers stay fast, ready turns 503, and all recovers on SIGCONT.
rpid=$(cat "$COORD_TEST_DIR/redis.pid")
kill -STOP "$rpid"
t0=$(now_ms)
api GET /v1/config/web read
dt=$(( $(now_ms) - t0 ))
[ "$STATUS" = 503 ] || [ "$STATUS" = 200 ] || fail "hung Redis: GET config answered $STATUS"
[ $dt -le 2500 ] || fail "hung Redis: GET config took ${dt} ms"
t0=$(now_ms)
expect 200 GET /health/live none
[ $(( $(now_ms) - t0 )) -le 500 ] || fail "live is slow while Redis hangs"
harness_wait_for 8 not_ready || { kill -CONT "$rpid"; fail "ready stays 200 with Redis hung"; }
kill -CONT "$rpid"
harness_wait_for 10 ready "$URL" || fail "not ready after Redis resumed"
kill -0 "$pid" || fail "coordinatord died"
echo "coordinatord-redis: ok"
