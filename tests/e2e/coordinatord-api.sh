# coordinatord REST API, table-driven: every endpoint with the auth table
# (none / wrong / read / deploy / admin), every documented error code, the
# bad-input table, and the daemon still healthy afterwards.
. "$COORD_HARNESS"
harness_init
harness_need curl jq
. "$top_srcdir/tests/e2e/coordinatord-lib.sh"
cd_single '"deregister_after":"1h"'
harness_wait_for 10 ready "$URL" || fail "coordinatord not ready"

register web-1 web host-1 60000
register web-2 web host-2 60000 draining
register api-1 api host-3 60000
harness_wait_for 5 sh -c "curl -s -H 'Authorization: Bearer $TOKEN_READ' $URL/v1/instances | grep -q api-1" ||
        fail "registered instances not visible"
# A config so GET has something to show.
expect 200 PUT /v1/config/web admin -H 'Content-Type: application/json' -d '{"config":{"A":1}}'

# ---- auth table: METHOD PATH none wrong read deploy admin [BODY] ----
while read -r method path c_none c_wrong c_read c_deploy c_admin body; do
        [ -z "$method" ] && continue
        for role in none wrong read deploy admin; do
                eval "want=\$c_$role"
                if [ -n "$body" ]; then
                        expect "$want" "$method" "$path" "$role" -H 'Content-Type: application/json' -d "$body"
                else
                        expect "$want" "$method" "$path" "$role"
                fi
        done
done <<'TABLE'
GET  /health/live                 200 200 200 200 200
GET  /health/ready                200 200 200 200 200
GET  /metrics                     401 401 200 200 200
GET  /v1/leader                   401 401 200 200 200
GET  /v1/instances                401 401 200 200 200
GET  /v1/instances?service=web    401 401 200 200 200
GET  /v1/instances/web-1          401 401 200 200 200
POST /v1/instances/web-1/drain    401 401 403 202 202
POST /v1/instances/web-1/undrain  401 401 403 202 202
GET  /v1/config/web               401 401 200 200 200
GET  /v1/config/web?reveal=true   401 401 403 403 200
PUT  /v1/config/web               401 401 403 403 200 {"config":{"A":2}}
GET  /v1/nothing                  404 404 404 404 404
GET  /v1/deployments              401 401 200 200 200
GET  /v1/deployments?service=web  401 401 200 200 200
GET  /v1/deployments/nope         401 401 404 404 404
GET  /v1/deployments/nope/events  401 401 404 404 404
POST /v1/deployments/nope/pause   401 401 403 404 404
POST /v1/deployments/nope/revert  401 401 403 404 404
POST /v1/deployments              401 401 403 422 422 {"service":"nosuch","version":"2.0"}
GET  /v1/migrations/web           401 401 404 404 404
POST /v1/migrations               401 401 403 400 400 {"service":"web","version":"2.0","phase":"middle"}
TABLE
echo "auth table ok"

# Bad deployment requests name the culprit.
for case in '{"service":"web"}|version: required' \
            '{"service":"../x","version":"2.0"}|service: not a valid name' \
            '{"service":"web","version":"2.0","strategy":{"max_parallel":0}}|strategy.max_parallel' \
            '{"service":"web","version":"2.0","strategy":{"min_healthy_time":"soon"}}|strategy.min_healthy_time' \
            '{"service":"web","version":"2.0","strategy":{"maxParallel":2}}|strategy.maxParallel: unknown field' \
            '{"service":"web","version":"2.0","rollback":true}|rollback: unknown field' \
            '{"service":"web","version":"2.0","migrate":"yes"}|migrate: expected true or false'; do
        expect 400 POST /v1/deployments deploy -H 'Content-Type: application/json' -d "${case%%|*}"
        jq -r .error.message "$BODY_FILE" | grep -qF "${case#*|}" || fail "400 for ${case%%|*} does not name '${case#*|}': $(body)"
done
expect 400 GET '/v1/deployments?limit=0' read
expect 400 GET '/v1/deployments/nope/events' read -H 'Last-Event-ID: x'

# 401 carries a Bearer challenge.
curl -s -D "$COORD_TEST_DIR/h" -o /dev/null "$URL/v1/leader"
grep -qi '^WWW-Authenticate: Bearer' "$COORD_TEST_DIR/h" || fail "401 without WWW-Authenticate"

# ---- endpoint contents ----
expect 200 GET /v1/leader read
jq -e --arg s cd1 '.leader == $s and .self == $s and .is_leader == true and .term > 0' "$BODY_FILE" >/dev/null ||
        fail "leader body: $(body)"
expect 200 GET /v1/instances read
[ "$(jq '.instances | length' "$BODY_FILE")" = 3 ] || fail "3 instances expected: $(body)"
jq -e '.instances[] | select(.id=="web-2") | .state=="draining" and .service=="web" and .host=="host-2"
        and .address=="10.0.0.1:8080" and .version=="1.0" and .config_version==0 and (.last_seen|test("Z$"))' \
        "$BODY_FILE" >/dev/null || fail "instance fields: $(body)"
expect 200 GET '/v1/instances?service=web' read
[ "$(jq '.instances | length' "$BODY_FILE")" = 2 ] || fail "service filter: $(body)"
expect 200 GET '/v1/instances?state=draining' read
[ "$(jq -r '[.instances[].id] | join(",")' "$BODY_FILE")" = web-2 ] || fail "state filter: $(body)"
expect 200 GET '/v1/instances?service=web&state=healthy' read
[ "$(jq -r '[.instances[].id] | join(",")' "$BODY_FILE")" = web-1 ] || fail "both filters: $(body)"
expect 200 GET /v1/instances/api-1 read
jq -e '.id=="api-1" and .service=="api"' "$BODY_FILE" >/dev/null || fail "one instance: $(body)"

# drain: a command for the agent of host-1, and a wake-up.
expect 202 POST /v1/instances/web-1/drain deploy
jq -e '.command.type=="drain" and (.command.created_at|test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$"))' "$BODY_FILE" >/dev/null ||
        fail "drain answer: $(body)"
cmd=$(rcli lindex "coord:{$NS}:agent:host-1:commands" 0)
echo "$cmd" | jq -e '.type=="drain" and .instance=="web-1" and (.id|length)==32' >/dev/null ||
        fail "drain command not queued as keys.h says: $cmd"

# metrics
expect 200 GET /metrics read
for m in 'coordinatord_http_requests_total{route="/v1/instances",code="200"}' \
        'coordinatord_http_request_duration_seconds_bucket{route="/v1/leader",le="+Inf"}' \
        'coordinatord_instances{service="web",state="draining"} 1' 'coordinatord_leader 1' \
        'coordinatord_leader_term ' 'coordinatord_redis_up 1' 'coordinatord_lock_acquisitions_total 1' \
        'coordinatord_build_info{version=' 'coordinatord_http_requests_total{route="unmatched",code="404"}'; do
        grep -qF "$m" "$BODY_FILE" || fail "metrics lack $m"
done

# config: versions, If-Match, ETag, masking, reveal
expect 200 GET /v1/config/web read
v=$(jq .version "$BODY_FILE")
[ "$v" -ge 2 ] || fail "version should have grown: $(body)"
expect 409 PUT /v1/config/web admin -H 'Content-Type: application/json' -H "If-Match: \"$((v - 1))\"" -d '{"config":{}}'
expect 200 PUT /v1/config/web admin -H 'Content-Type: application/json' -H "If-Match: $v" \
        -d '{"config":{"UseDistributedMode":true,"ConnectionStrings":{"Redis":"127.0.0.1:6379,password=Sup3rS3cret,abortConnect=False","Url":"redis://u:Pw0rdX@h:1/0"},"Jwt":{"SigningSecret":"k3yk3y"},"ApiToken":"tok123","Password":"pw-pw-pw","Plain":"visible"}}'
[ "$(jq .version "$BODY_FILE")" = $((v + 1)) ] || fail "If-Match PUT should store version $((v + 1)): $(body)"
expect 409 PUT /v1/config/new-service admin -H 'Content-Type: application/json' -H 'If-Match: *' -d '{"config":{}}'
expect 200 GET /v1/config/web read
for secret in Sup3rS3cret Pw0rdX k3yk3y tok123 pw-pw-pw; do
        ! grep -q "$secret" "$BODY_FILE" || fail "GET leaks $secret: $(body)"
done
jq -e '.config.ConnectionStrings.Redis == "127.0.0.1:6379,password=*****,abortConnect=False"
        and .config.ConnectionStrings.Url == "redis://u:*****@h:1/0" and .config.Plain == "visible"
        and .config.Jwt.SigningSecret == "*****" and .config.UseDistributedMode == true
        and .instances == 2 and .applied == 0' "$BODY_FILE" >/dev/null || fail "masked config: $(body)"
expect 200 GET '/v1/config/web?reveal=true' admin
grep -q Sup3rS3cret "$BODY_FILE" || fail "reveal=true as admin should show the secret"
curl -s -D "$COORD_TEST_DIR/h" -o /dev/null -H "Authorization: Bearer $TOKEN_READ" "$URL/v1/config/web"
grep -qi "^ETag: \"$((v + 1))\"" "$COORD_TEST_DIR/h" || fail "no ETag"
# applied: instances report the version they wrote.
rcli hset "coord:{$NS}:instance:web-1" config_version $((v + 1)) >/dev/null
expect 200 GET /v1/config/web read
[ "$(jq .applied "$BODY_FILE")" = 1 ] || fail "applied should be 1: $(body)"
# A higher version than the stored one (left over after Redis lost its data) is not "applied".
rcli hset "coord:{$NS}:instance:web-2" config_version $((v + 7)) >/dev/null
expect 200 GET /v1/config/web read
[ "$(jq .applied "$BODY_FILE")" = 1 ] || fail "a stale higher config_version counted as applied: $(body)"
# Publishes a wake-up on config-changed.
rcli subscribe "coord:{$NS}:config-changed" >"$COORD_TEST_DIR/sub" 2>&1 &
subpid=$!
harness_track $subpid
harness_wait_for 5 grep -q subscribe "$COORD_TEST_DIR/sub"
expect 200 PUT /v1/config/web admin -H 'Content-Type: application/json' -d '{"config":{"B":1}}'
harness_wait_for 5 grep -qx web "$COORD_TEST_DIR/sub" || fail "no config-changed message"
kill $subpid

# ---- documented error codes ----
expect 404 GET /v1/instances/nope read
expect 404 GET /v1/config/nothing-here read
expect 404 POST /v1/instances/nope/drain deploy
expect 405 DELETE /v1/instances read
expect 400 GET '/v1/config/web?reveal=maybe' admin
# Registered but without an alive key: lost after its ttl.
rcli hset "coord:{$NS}:instance:gone-1" id gone-1 service web host h9 state healthy last_seen "$(now_ms)" ttl_ms 1000 >/dev/null
rcli zadd "coord:{$NS}:instances" "$(now_ms)" gone-1 >/dev/null
harness_wait_for 5 sh -c "curl -s -H 'Authorization: Bearer $TOKEN_READ' '$URL/v1/instances?state=lost' | grep -q gone-1" ||
        fail "instance without alive key not lost"
expect 409 POST /v1/instances/gone-1/drain deploy

# ---- bad input: CODE METHOD PATH ROLE CURL-ARGS (eval'd) ----
head -c 10485760 /dev/zero | tr '\0' 'x' >"$COORD_TEST_DIR/big"
printf '{"config":%s}' "$(printf '[%.0s' $(seq 1 3000))$(printf ']%.0s' $(seq 1 3000))" >"$COORD_TEST_DIR/deep"
printf '{"config":%s1%s}' "$(printf '{"a":%.0s' $(seq 1 20))" "$(printf '}%.0s' $(seq 1 20))" >"$COORD_TEST_DIR/deep20"
printf '{"config":{"a\0b":1}}' >"$COORD_TEST_DIR/nul"
J="-H 'Content-Type: application/json'"
while read -r code method path role args; do
        [ -z "$code" ] && continue
        eval "expect $code $method '$path' $role $args"
        grep -q '"error"' "$BODY_FILE" || fail "$method $path: no error body"
done <<TABLE
400 PUT /v1/config/web admin $J -d '{"config":{"a":'
400 PUT /v1/config/web admin $J -d '{"config"'
400 PUT /v1/config/web admin $J -d ''
400 PUT /v1/config/web admin $J -d 'null'
400 PUT /v1/config/web admin $J -d '[1,2]'
400 PUT /v1/config/web admin $J --data-binary @$COORD_TEST_DIR/deep
422 PUT /v1/config/web admin $J --data-binary @$COORD_TEST_DIR/deep20
413 PUT /v1/config/web admin $J --data-binary @$COORD_TEST_DIR/big
413 PUT /v1/config/web admin $J -H 'Transfer-Encoding: chunked' --data-binary @$COORD_TEST_DIR/big
400 PUT /v1/config/web admin $J --data-binary @$COORD_TEST_DIR/nul
400 GET /v1/instances/web%00x read
400 GET /v1/config/web%00 read
400 GET /v1/instances/.. read
400 GET /v1/config/..%2F..%2Fetc read
404 GET /v1/instances/../../etc/passwd read
400 GET /v1/instances/* read
400 GET /v1/config/* read
400 PUT /v1/config/a*b admin $J -d '{"config":{}}'
400 GET /v1/instances/.hidden read
400 GET /v1/instances/$(printf 'a%.0s' $(seq 1 65)) read
400 GET /v1/instances?service=a*b read
400 GET /v1/instances?service=..%2F read
400 GET /v1/instances?state=exploded read
400 GET /v1/instances?bogus=1 read
400 PUT /v1/config/web admin $J -d '{"config":[1]}'
400 PUT /v1/config/web admin $J -d '{"config":"x"}'
400 PUT /v1/config/web admin $J -d '{"config":{},"extra":1}'
400 PUT /v1/config/web admin $J -d '{"cfg":{}}'
400 PUT /v1/config/web admin $J -d '{"config":{},"config":{}}'
400 PUT /v1/config/web admin $J -H 'If-Match: abc' -d '{"config":{}}'
422 PUT /v1/config/web admin $J -d '{"config":{"a=b":1}}'
422 PUT /v1/config/web admin $J -d '{"config":{"":1}}'
400 POST /v1/instances/web-1/drain deploy $J -d '{"force":true}'
415 PUT /v1/config/web admin -H 'Content-Type: text/plain' -d '{"config":{}}'
415 PUT /v1/config/web admin -d '{"config":{}}'
415 PUT /v1/config/web admin -H 'Content-Type: application/jsonx' -d '{"config":{}}'
TABLE
# The limit is exactly 64 KiB: 65536 bytes pass, 65537 do not.
pad=$((65536 - 19))
printf '{"config":{"k":"%s"}}' "$(head -c $pad /dev/zero | tr '\0' 'x')" >"$COORD_TEST_DIR/b64k"
[ "$(wc -c <"$COORD_TEST_DIR/b64k")" = 65536 ] || fail "test setup: body is $(wc -c <"$COORD_TEST_DIR/b64k") bytes"
expect 200 PUT /v1/config/big admin -H 'Content-Type: application/json' --data-binary @"$COORD_TEST_DIR/b64k"
printf ' ' >>"$COORD_TEST_DIR/b64k"
expect 413 PUT /v1/config/big admin -H 'Content-Type: application/json' --data-binary @"$COORD_TEST_DIR/b64k"

# Unknown field messages name the field.
expect 400 PUT /v1/config/web admin -H 'Content-Type: application/json' -d '{"config":{},"colour":1}'
grep -q colour "$BODY_FILE" || fail "unknown field not named: $(body)"
# Client input that is not UTF-8, or is cut mid-character in the message: still a 400 with valid JSON.
k=$(printf 'a%.0s' $(seq 1 63))
expect 400 PUT /v1/config/web admin -H 'Content-Type: application/json' -d "{\"config\":{},\"${k}é\":1}"
jq -e '.error.code == "bad_request"' "$BODY_FILE" >/dev/null || fail "cut multibyte key: $(body)"
expect 400 GET '/v1/instances?%FF=1' read
jq -e '.error.code == "bad_request"' "$BODY_FILE" >/dev/null || fail "non-UTF-8 query: $(body)"
echo "bad input table ok"

# Corrupt fleet data in Redis: a member with an invalid name, an instance key
# of the wrong type, a hash without fields.  Ignored, never a crash.
rcli zadd "coord:{$NS}:instances" "$(now_ms)" '../../etc' "$(now_ms)" weird-1 "$(now_ms)" empty-1 >/dev/null
rcli set "coord:{$NS}:instance:weird-1" notahash >/dev/null
rcli set "coord:{$NS}:alive:weird-1" 1 px 60000 >/dev/null
# Then one written after them with no event, so only the fleet's tick (its
# ZSET read) finds it: the read that shows it saw them too, and its snapshot
# is published only once their reads are answered.
now=$(now_ms)
rcli hset "coord:{$NS}:instance:sync-1" id sync-1 service sync host host-9 state healthy \
        last_seen "$now" ttl_ms 60000 >/dev/null
rcli set "coord:{$NS}:alive:sync-1" 1 px 60000 >/dev/null
rcli zadd "coord:{$NS}:instances" "$now" sync-1 >/dev/null
shown() { api GET "/v1/instances/$1" read; [ "$STATUS" = 200 ]; }
harness_wait_for 5 shown sync-1 || fail "an instance added after the corrupt ones never showed up"
expect 200 GET /v1/instances read
! grep -q -e 'etc' -e weird-1 -e empty-1 "$BODY_FILE" || fail "corrupt entries shown: $(body)"
expect 404 GET /v1/instances/weird-1 read

# Still healthy, still correct.
kill -0 "$PID_cd1" || fail "coordinatord died"
expect 200 GET /health/live none
expect 200 GET /health/ready none
expect 200 GET /v1/config/web read
# Secrets never reached the log.
for secret in Sup3rS3cret Pw0rdX k3yk3y tok123 pw-pw-pw "$TOKEN_ADMIN" "$TOKEN_READ"; do
        ! grep -q -- "$secret" "$COORD_TEST_DIR/cd1.log" || fail "log leaks $secret"
done
echo "coordinatord-api: ok"
