# coordinatord startup and configuration: refusal without tokens (exit 2),
# insecure_no_auth only on loopback, --check-config with secrets masked,
# sd_notify READY/WATCHDOG/STOPPING; then the config round trip with real
# coord-agents: PUT -> each instance's file updated -> applied reaches the
# instance count, with secrets masked in GET, in every log and in --check-config.
. "$COORD_HARNESS"
harness_init
harness_need curl jq
. "$top_srcdir/tests/e2e/coordinatord-lib.sh"
NOTIFY_LISTEN="$top_builddir/tests/util/notify-listen"
[ -x "$NOTIFY_LISTEN" ] || fail "missing $NOTIFY_LISTEN (make check builds it)"
harness_start_redis
SECRET_PW=RedisPw-9f8e7d
PLAIN_URL=$REDIS_URL PLAIN_PORT=$REDIS_PORT
harness_start_redis secured --requirepass "$SECRET_PW"
REDIS_URL=$PLAIN_URL REDIS_PORT=$PLAIN_PORT
d=$COORD_TEST_DIR

run_cd() { "$COORDINATORD" --config "$1" "${@:2}" >"$d/out" 2>&1; }
expect_exit() {
        want=$1 file=$2 pattern=$3
        set +e
        timeout 10 "$COORDINATORD" --config "$file" >"$d/out" 2>&1
        rc=$?
        set -e
        [ "$rc" = "$want" ] || { cat "$d/out" >&2; fail "$(basename "$file"): exit $rc, expected $want"; }
        grep -q -- "$pattern" "$d/out" || { cat "$d/out" >&2; fail "$(basename "$file"): message lacks '$pattern'"; }
}

# ---- refusal to start ----
port=$(harness_free_port)
echo "{\"listen\":\"127.0.0.1:$port\",\"redis\":\"$REDIS_URL\"}" >"$d/none.json"
expect_exit 2 "$d/none.json" "no tokens configured"
echo "{\"listen\":\"0.0.0.0:$port\",\"redis\":\"$REDIS_URL\",\"insecure_no_auth\":true}" >"$d/open.json"
expect_exit 2 "$d/open.json" "insecure_no_auth: only allowed when listen is a loopback address"
echo "{\"listen\":\"127.0.0.1:$port\",\"redis\":\"$REDIS_URL\",\"tokens\":[{\"name\":\"x\",\"role\":\"boss\",\"sha256\":\"$(sha x)\"}]}" >"$d/role.json"
expect_exit 2 "$d/role.json" "tokens\[0\].role"
echo "{\"listen\":\"127.0.0.1:$port\",\"redis\":\"$REDIS_URL\",\"leader_leese\":\"5s\",\"insecure_no_auth\":true}" >"$d/typo.json"
expect_exit 2 "$d/typo.json" "leader_leese"
echo "{\"listen\":\"127.0.0.1:$port\",\"leader_lease\":\"5\",\"insecure_no_auth\":true}" >"$d/dur.json"
expect_exit 2 "$d/dur.json" "leader_lease"
echo "{\"listen\":\"127.0.0.1:$port\",\"tokens\":[{\"name\":\"x\",\"role\":\"read\",\"sha256\":\"abc\"}]}" >"$d/hash.json"
expect_exit 2 "$d/hash.json" "sha256"
expect_exit 2 "$d/missing.json" "missing.json"

# ---- --check-config masks every secret ----
SECRET_URL="redis://:$SECRET_PW@127.0.0.1:$SECURED_PORT/0"
printf 'inline-admin-token-0123456789\n' >"$d/ops.token"
cat >"$d/secret.json" <<JSON
{"listen":"127.0.0.1:$port","redis":"$SECRET_URL","namespace":"$NS","id":"cd-s",
 "tokens":[{"name":"ci","role":"deploy","token":"inline-deploy-token-0123456789"},
           {"name":"ops","role":"admin","token_file":"$d/ops.token"}]}
JSON
"$COORDINATORD" --config "$d/secret.json" --check-config >"$d/check" 2>&1 || fail "--check-config failed: $(cat "$d/check")"
for s in "$SECRET_PW" inline-deploy-token-0123456789 inline-admin-token-0123456789; do
        ! grep -q -- "$s" "$d/check" || fail "--check-config shows a secret: $(cat "$d/check")"
done
grep -q "redis://:\*\*\*\*\*@127.0.0.1:$SECURED_PORT/0" "$d/check" || fail "--check-config does not show the masked URL: $(cat "$d/check")"

# ---- sd_notify: READY after listening and connected, WATCHDOG, STOPPING ----
harness_spawn notify "$NOTIFY_LISTEN" "$d/notify.sock"
harness_wait_for 5 test -S "$d/notify.sock"
NOTIFY_SOCKET="$d/notify.sock" WATCHDOG_USEC=400000 harness_spawn cds "$COORDINATORD" --config "$d/secret.json"
harness_wait_for 10 grep -q READY=1 "$d/notify.log" || fail "no READY=1"
# READY means serving: the API answers right away.
curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null || fail "READY=1 sent before ready"
harness_wait_for 3 grep -q WATCHDOG=1 "$d/notify.log" || fail "no WATCHDOG=1 with WATCHDOG_USEC set"
# The admin token from token_file works, the inline one as well.
[ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer inline-admin-token-0123456789' "http://127.0.0.1:$port/v1/leader")" = 200 ] ||
        fail "token_file token refused"
kill -TERM "$PID_cds"
harness_wait_for 5 grep -q STOPPING=1 "$d/notify.log" || fail "no STOPPING=1"
harness_wait_for 5 sh -c "! kill -0 $PID_cds 2>/dev/null" || fail "did not exit on SIGTERM"
! grep -q -- "$SECRET_PW" "$d/cds.log" || fail "log shows the Redis password"

# ---- insecure_no_auth on loopback: runs, everything allowed ----
port2=$(harness_free_port)
echo "{\"listen\":\"127.0.0.1:$port2\",\"redis\":\"$REDIS_URL\",\"namespace\":\"$NS\",\"insecure_no_auth\":true}" >"$d/insecure.json"
harness_spawn cdi "$COORDINATORD" --config "$d/insecure.json"
harness_wait_for 10 ready "http://127.0.0.1:$port2" || fail "insecure coordinatord not ready"
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port2/v1/leader")" = 200 ] || fail "insecure: /v1/leader refused"
grep -q "insecure_no_auth" "$d/cdi.log" || fail "insecure mode not warned about"
kill -TERM "$PID_cdi"

# ---- config round trip with real agents ----
cd_start cd1
URL=$CD1_URL
harness_wait_for 10 ready "$URL" || fail "not ready"
for i in 1 2 3; do
        fmt=env
        [ $i = 3 ] && fmt=json
        mkdir -p "$d/agent$i"
        cat >"$d/agent$i.json" <<JSON
{"redis":"$REDIS_URL","namespace":"$NS","host":"apphost-$i","heartbeat_interval":"250ms","state_dir":"$d/agent$i",
 "services":[{"name":"web","instance":"web-$i","address":"127.0.0.1:90$i","version":"1.0",
   "health":{"exec":"true","interval":"250ms","rise":1,"fall":1},
   "config_file":"$d/agent$i/web.$fmt","config_format":"$fmt","reload":"echo reloaded >>$d/agent$i/reloads"}]}
JSON
        harness_spawn agent$i "$COORD_AGENT" --config "$d/agent$i.json"
done
harness_wait_for 10 sh -c "curl -s -H 'Authorization: Bearer $TOKEN_READ' '$URL/v1/instances?service=web&state=healthy' | jq -e '.instances | length == 3'" ||
        fail "three agents did not register healthy: $(curl -s -H "Authorization: Bearer $TOKEN_READ" "$URL/v1/instances")"

APPPW=AppRedisPw-314159
cat >"$d/web-config.json" <<JSON
{"UseDistributedMode":true,
 "ConnectionStrings":{"Redis":"127.0.0.1:$REDIS_PORT,password=$APPPW,abortConnect=False"},
 "Auth":{"ClientSecret":"client-secret-271828"},"Greeting":"hello"}
JSON
curl -sf -X PUT -H "Authorization: Bearer $TOKEN_ADMIN" -H 'Content-Type: application/json' \
        -d "{\"config\":$(cat "$d/web-config.json")}" "$URL/v1/config/web" >"$d/put" || fail "PUT config failed"
v=$(jq .version "$d/put")
for i in 1 2; do
        harness_wait_for 10 grep -q "^ConnectionStrings__Redis=127.0.0.1:$REDIS_PORT,password=$APPPW,abortConnect=False" "$d/agent$i/web.env" ||
                fail "agent$i file not updated: $(cat "$d/agent$i/web.env" 2>&1)"
        grep -q '^UseDistributedMode=true' "$d/agent$i/web.env" || fail "agent$i: UseDistributedMode missing"
done
harness_wait_for 10 sh -c "jq -e '.UseDistributedMode == true and .Auth.ClientSecret == \"client-secret-271828\"' '$d/agent3/web.json'" ||
        fail "agent3 json file not updated: $(cat "$d/agent3/web.json" 2>&1)"
harness_wait_for 10 sh -c "curl -s -H 'Authorization: Bearer $TOKEN_READ' $URL/v1/config/web | jq -e '.applied == 3 and .instances == 3 and .version == $v'" ||
        fail "applied never reached 3: $(curl -s -H "Authorization: Bearer $TOKEN_READ" "$URL/v1/config/web")"
curl -s -H "Authorization: Bearer $TOKEN_READ" "$URL/v1/config/web" >"$d/get"
! grep -q -e "$APPPW" -e client-secret-271828 "$d/get" || fail "GET shows secrets: $(cat "$d/get")"
jq -e '.config.ConnectionStrings.Redis | test("password=\\*\\*\\*\\*\\*")' "$d/get" >/dev/null || fail "GET not masked: $(cat "$d/get")"
# coordctl shows the same, and --reveal needs admin.
[ -x "$COORDCTL" ] || fail "missing $COORDCTL"
COORD_URL=$URL COORD_TOKEN=$TOKEN_READ "$COORDCTL" config get web >"$d/ctl" || fail "coordctl config get failed"
grep -q 'applied by 3 of 3' "$d/ctl" || fail "coordctl config get: $(cat "$d/ctl")"
! grep -q "$APPPW" "$d/ctl" || fail "coordctl config get shows the password"
set +e
COORD_URL=$URL COORD_TOKEN=$TOKEN_READ "$COORDCTL" config get web --reveal >/dev/null 2>&1
rc=$?
set -e
[ $rc = 3 ] || fail "coordctl config get --reveal as read: exit $rc, expected 3"
COORD_URL=$URL COORD_TOKEN=$TOKEN_ADMIN "$COORDCTL" config get web --reveal | grep -q "$APPPW" || fail "--reveal as admin"
COORD_URL=$URL COORD_TOKEN=$TOKEN_READ "$COORDCTL" instances >"$d/ctl"
[ "$(grep -c ' healthy ' "$d/ctl")" = 3 ] || fail "coordctl instances: $(cat "$d/ctl")"
echo '{"Greeting":"v2"}' | COORD_URL=$URL COORD_TOKEN=$TOKEN_ADMIN "$COORDCTL" config set web - | grep -q "version $((v + 1))" ||
        fail "coordctl config set"
harness_wait_for 10 grep -q '^Greeting=v2' "$d/agent1/web.env" || fail "config set via coordctl not applied"
set +e
COORD_URL=http://127.0.0.1:1 COORD_TOKEN=x "$COORDCTL" instances >/dev/null 2>&1; rc=$?
set -e
[ $rc = 3 ] || fail "coordctl against nothing: exit $rc, expected 3"
set +e
echo '[1]' | COORD_URL=$URL COORD_TOKEN=$TOKEN_ADMIN "$COORDCTL" config set web - >/dev/null 2>&1; rc=$?
set -e
[ $rc = 2 ] || fail "coordctl config set with a non-object: exit $rc, expected 2"
# No secret in any log, and the agents' --check-config masks theirs.
for f in "$d"/cd1.log "$d"/agent*.log; do
        ! grep -q -e "$APPPW" -e client-secret-271828 -e "$TOKEN_ADMIN" "$f" || fail "$(basename "$f") leaks a secret"
done
echo "coordinatord-config: ok"
