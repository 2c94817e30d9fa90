# coordinatord startup and configuration: refusal without tokens (exit 2),
# insecure_no_auth only on loopback, --check-config with secrets masked,
# sd_notify READY/WATCHDOG/STOPPING; then the config round trip with real
# coord-agents: PUT -> each instance's file updated -> applied reaches the
# instance count, with secrets masked in GET, in every log and in --check-config;
# keys that would render under one name are refused with 422.
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
write_secret() {
        cat >"$d/cds.json" <<JSON
{"listen":"127.0.0.1:$1","redis":"$SECRET_URL","namespace":"$NS","id":"cd-s",
 "tokens":[{"name":"ci","role":"deploy","token":"inline-deploy-token-0123456789"},
           {"name":"ops","role":"admin","token_file":"$d/ops.token"}]}
JSON
}
write_secret "$port"
"$COORDINATORD" --config "$d/cds.json" --check-config >"$d/check" 2>&1 || fail "--check-config failed: $(cat "$d/check")"
for s in "$SECRET_PW" inline-deploy-token-0123456789 inline-admin-token-0123456789; do
        ! grep -q -- "$s" "$d/check" || fail "--check-config shows a secret: $(cat "$d/check")"
done
grep -q "redis://:\*\*\*\*\*@127.0.0.1:$SECURED_PORT/0" "$d/check" || fail "--check-config does not show the masked URL: $(cat "$d/check")"

# Environment overrides win over the file.
COORD_LISTEN=127.0.0.1:1234 COORD_NAMESPACE=envns COORD_REDIS=redis://127.0.0.1:9/3 \
        "$COORDINATORD" --config "$d/cds.json" --check-config >"$d/check-env" 2>&1 || fail "--check-config with env: $(cat "$d/check-env")"
grep -q '"listen": "127.0.0.1:1234"' "$d/check-env" || fail "COORD_LISTEN ignored: $(cat "$d/check-env")"
grep -q '"namespace": "envns"' "$d/check-env" || fail "COORD_NAMESPACE ignored"
grep -q '"redis": "redis://127.0.0.1:9/3"' "$d/check-env" || fail "COORD_REDIS ignored"

# systemd credentials: $CREDENTIALS_DIRECTORY/redis when the file has no "redis".
mkdir -p "$d/creds"
printf 'redis://:cred-pw-4242@10.1.2.3:6380/2\n' >"$d/creds/redis"
echo '{"listen":"127.0.0.1:1","insecure_no_auth":true}' >"$d/nored.json"
CREDENTIALS_DIRECTORY="$d/creds" "$COORDINATORD" --config "$d/nored.json" --check-config >"$d/check-cred" 2>&1 ||
        fail "--check-config with credentials: $(cat "$d/check-cred")"
grep -q '"redis": "redis://:\*\*\*\*\*@10.1.2.3:6380/2"' "$d/check-cred" || fail "credential not used: $(cat "$d/check-cred")"
! grep -q cred-pw-4242 "$d/check-cred" || fail "credential password shown"

# ---- sd_notify: READY after listening and connected, WATCHDOG, STOPPING ----
harness_spawn notify "$NOTIFY_LISTEN" "$d/notify.sock"
harness_wait_for 5 test -S "$d/notify.sock"
spawn_listening cds write_secret NOTIFY_SOCKET="$d/notify.sock" WATCHDOG_USEC=400000
port=$PORT
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
write_insecure() {
        echo "{\"listen\":\"127.0.0.1:$1\",\"redis\":\"$REDIS_URL\",\"namespace\":\"$NS\",\"insecure_no_auth\":true}" >"$d/cdi.json"
}
spawn_listening cdi write_insecure
port2=$PORT
harness_wait_for 10 ready "http://127.0.0.1:$port2" || fail "insecure coordinatord not ready"
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port2/v1/leader")" = 200 ] || fail "insecure: /v1/leader refused"
grep -q "insecure_no_auth" "$d/cdi.log" || fail "insecure mode not warned about"
curl -s -H "Authorization: Bearer x" "http://127.0.0.1:$port2/v1/leader" | jq -e --arg h "$(hostname -s)" '.self | startswith($h + "-")' >/dev/null ||
        fail "default id is not HOST-PID: $(curl -s "http://127.0.0.1:$port2/v1/leader")"
kill -TERM "$PID_cdi"

# ---- connection limit and idle timeout (slowloris) ----
write_limits() {
        echo "{\"listen\":\"127.0.0.1:$1\",\"redis\":\"$REDIS_URL\",\"namespace\":\"$NS\",\"insecure_no_auth\":true,
  \"max_connections\":4,\"connection_timeout\":\"3s\",\"http_threads\":1}" >"$d/cdl.json"
}
spawn_listening cdl write_limits
port3=$PORT
# Four idle connections that never send a request fill the limit...
# (connection_timeout 3s: long enough that a loaded machine still asks in time)
t0=$(now_ms)
exec 5<>"/dev/tcp/127.0.0.1/$port3" 6<>"/dev/tcp/127.0.0.1/$port3" 7<>"/dev/tcp/127.0.0.1/$port3" 8<>"/dev/tcp/127.0.0.1/$port3"
if curl -sf -m 0.5 "http://127.0.0.1:$port3/health/live" >/dev/null 2>&1; then
        [ $(( $(now_ms) - t0 )) -ge 3000 ] || fail "connection limit not enforced"
        echo "the machine was too slow to ask before the idle timeout: limit not observed"
fi
# ...until the idle timeout closes them: then requests are served again.
harness_wait_for 8 curl -sf -m 0.5 "http://127.0.0.1:$port3/health/live" || fail "idle connections never timed out"
dt=$(( $(now_ms) - t0 ))
exec 5>&- 6>&- 7>&- 8>&-
echo "idle connections dropped after ${dt} ms (connection_timeout 3s)"
[ $dt -le 6500 ] || fail "idle timeout took ${dt} ms"
kill -TERM "$PID_cdl"

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
# Shapes the old maskers missed: a quoted ADO.NET password with ';', a '/' in
# a URL password, a key named Key.
ADOPW=Ado-Pw-577215 PGPW=Pg-Pw-141421 JWTKEY=jwt-key-161803
cat >"$d/web-config.json" <<JSON
{"UseDistributedMode":true,
 "ConnectionStrings":{"Redis":"127.0.0.1:$REDIS_PORT,password=$APPPW,abortConnect=False",
   "Db":"Server=db.internal;Password=\"a;$ADOPW\"","Pg":"postgresql://app:x/$PGPW@pg.internal/app"},
 "Jwt":{"Key":"$JWTKEY"},
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
! grep -q -e "$APPPW" -e client-secret-271828 -e "$ADOPW" -e "$PGPW" -e "$JWTKEY" "$d/get" || fail "GET shows secrets: $(cat "$d/get")"
jq -e '.config.ConnectionStrings.Redis | test("password=\\*\\*\\*\\*\\*")' "$d/get" >/dev/null || fail "GET not masked: $(cat "$d/get")"
jq -e '.config.ConnectionStrings.Db == "Server=db.internal;Password=\"*****\"" and
       .config.ConnectionStrings.Pg == "postgresql://app:*****@pg.internal/app" and .config.Jwt.Key == "*****"' \
        "$d/get" >/dev/null || fail "GET masks the hosts away or not the passwords: $(cat "$d/get")"
# The env file carries the quoted value as systemd and DotNetEnv read it.
grep -qF "ConnectionStrings__Db=\"Server=db.internal;Password=\\\"a;$ADOPW\\\"\"" "$d/agent1/web.env" ||
        fail "agent1: Db not rendered as expected: $(cat "$d/agent1/web.env")"
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
# drain / undrain reach the real agent: the instance shows draining, then healthy again.
curl -sf -X POST -H "Authorization: Bearer $TOKEN_DEPLOY" "$URL/v1/instances/web-2/drain" >"$d/drain" || fail "drain refused"
cmd=$(jq -r .command.id "$d/drain")
harness_wait_for 5 sh -c "[ \"\$(curl -s -H 'Authorization: Bearer $TOKEN_READ' $URL/v1/instances/web-2 | jq -r .state)\" = draining ]" ||
        fail "web-2 not draining after the drain command"
harness_wait_for 5 sh -c "[ \"\$(redis-cli -p $REDIS_PORT hget 'coord:{$NS}:agent:apphost-2:result:$cmd' state)\" = done ]" ||
        fail "the agent did not report the drain command done"
curl -sf -X POST -H "Authorization: Bearer $TOKEN_DEPLOY" "$URL/v1/instances/web-2/undrain" >/dev/null || fail "undrain refused"
harness_wait_for 5 sh -c "[ \"\$(curl -s -H 'Authorization: Bearer $TOKEN_READ' $URL/v1/instances/web-2 | jq -r .state)\" = healthy ]" ||
        fail "web-2 not healthy after undrain"

# Keys that ASP.NET would read as one are refused, naming both; nothing is stored.
code=$(curl -s -o "$d/collide" -w '%{http_code}' -X PUT -H "Authorization: Bearer $TOKEN_ADMIN" \
        -H 'Content-Type: application/json' -d '{"config":{"a__b":1,"a":{"b":2}}}' "$URL/v1/config/web")
[ "$code" = 422 ] || fail "colliding keys: HTTP $code, expected 422: $(cat "$d/collide")"
jq -e '.error.message | test("keys .a__b. and .a\\.b. both render as the env name a__b")' "$d/collide" >/dev/null ||
        fail "colliding keys: message does not name both: $(cat "$d/collide")"
code=$(curl -s -o "$d/collide" -w '%{http_code}' -X PUT -H "Authorization: Bearer $TOKEN_ADMIN" \
        -H 'Content-Type: application/json' -d '{"config":{"Redis":"a","redis":"b"}}' "$URL/v1/config/web")
[ "$code" = 422 ] || fail "keys differing in case: HTTP $code, expected 422: $(cat "$d/collide")"
curl -s -H "Authorization: Bearer $TOKEN_READ" "$URL/v1/config/web" | jq -e ".version == $((v + 1))" >/dev/null ||
        fail "a refused PUT changed the version"

# No secret in any log, and the agents' --check-config masks theirs.
for f in "$d"/cd1.log "$d"/agent*.log; do
        ! grep -q -e "$APPPW" -e client-secret-271828 -e "$ADOPW" -e "$PGPW" -e "$JWTKEY" -e "$TOKEN_ADMIN" "$f" ||
                fail "$(basename "$f") leaks a secret"
done
sed "s#\"redis\":\"$REDIS_URL\"#\"redis\":\"$SECRET_URL\"#" "$d/agent1.json" >"$d/agent-secret.json"
grep -q "$SECRET_PW" "$d/agent-secret.json" || fail "test setup: no password in the agent config"
"$COORD_AGENT" --config "$d/agent-secret.json" --check-config >"$d/agent-check" 2>&1 || fail "agent --check-config: $(cat "$d/agent-check")"
! grep -q "$SECRET_PW" "$d/agent-check" || fail "agent --check-config shows the Redis password"
grep -q '\*\*\*\*\*' "$d/agent-check" || fail "agent --check-config does not show the masked password"
echo "coordinatord-config: ok"
