# coordctl doctor against real servers: a Redis without persistence FAILs
# (exit 1), one with appendonly yes, a leading coordinatord and a real agent
# passes (exit 0, warnings allowed); an agent/coordinatord namespace mismatch,
# an agent host whose clock is 3 s ahead and a token file chmod 644 each FAIL
# naming the culprit; restricted ACL users fall back to INFO / LMOVE / known
# namespaces; nothing reachable exits 3; usage errors exit 2.
. "$COORD_HARNESS"
harness_init
harness_need curl jq redis-cli
. "$top_srcdir/tests/e2e/coordinatord-lib.sh"
[ -x "$COORDCTL" ] || fail "coordctl not built: $COORDCTL"
[ -x "$COORD_AGENT" ] || fail "coord-agent not built: $COORD_AGENT"
D=$COORD_TEST_DIR
OUT=$D/doctor.out
ERR=$D/doctor.err
unset COORD_REDIS COORD_URL COORD_TOKEN COORD_TOKEN_FILE COORD_NAMESPACE || true

# doctor ARGS...: run coordctl doctor, output in $OUT/$ERR, exit code in $RC.
doctor() {
        RC=0
        "$COORDCTL" "$@" >"$OUT" 2>"$ERR" || RC=$?
        # Under --sanitize an error report could hide behind an expected exit 1.
        if grep -q 'Sanitizer\|runtime error:' "$ERR"; then
                cat "$ERR" >&2
                fail "sanitizer report from: coordctl $*"
        fi
}
# status NAME: the status of check NAME in the JSON output (one line per occurrence).
status() { jq -r --arg n "$1" '.checks[] | select(.name == $n) | .status' "$OUT"; }
message() { jq -r --arg n "$1" '.checks[] | select(.name == $n) | .message' "$OUT"; }
show() { echo "----- doctor (exit $RC) -----" >&2; cat "$OUT" "$ERR" >&2; }
expect_rc() { [ "$RC" = "$1" ] || { show; fail "$2: exit $RC, expected $1"; }; }
expect_status() {
        [ "$(status "$1")" = "$2" ] || { show; fail "$1: status '$(status "$1")', expected '$2'"; }
}
expect_message() {
        message "$1" | grep -qF -- "$2" || { show; fail "$1: message lacks '$2'"; }
}
# stamp NS ID [OFFSET_MS]: last_seen = Redis' clock + OFFSET and the alive key
# (PX 60 s) in one script, as an agent writes them in one MULTI/EXEC (two
# redis-cli calls apart would show as skew on a loaded machine).
stamp() {
        rcli EVAL "local t = redis.call('TIME')
                local ms = t[1] * 1000 + math.floor(t[2] / 1000) + tonumber(ARGV[1])
                redis.call('HSET', KEYS[1], 'last_seen', ms)
                redis.call('SET', KEYS[2], '1', 'PX', 60000)
                return ms" 2 "coord:{$1}:instance:$2" "coord:{$1}:alive:$2" "${3:-0}" >/dev/null
}
is_leader() { curl -s -m 1 -H "Authorization: Bearer $TOKEN_READ" "$1/v1/leader" | jq -e '.is_leader' >/dev/null; }

# ---- 1. a Redis without persistence (the harness default: --appendonly no --save '') ----
harness_start_redis
R1_PORT=$REDIS_PORT R1_URL=$REDIS_URL
cd_start cda
harness_wait_for 10 is_leader "$CDA_URL" || fail "cda never led"
register web-1 web h1 60000
rcli hset "coord:{$NS}:instance:web-1" probe http >/dev/null
stamp "$NS" web-1
chmod 600 "$D/admin.token"

doctor --output json doctor --redis "$R1_URL" --url "$CDA_URL" --token "$TOKEN_READ" --config "$D/cda.json"
expect_rc 1 "no persistence"
expect_status persistence fail
expect_message persistence "neither AOF nor RDB"
expect_message persistence "appendonly yes"
expect_status redis ok
expect_status redis-version ok
expect_status namespaces ok
expect_status coordinatord ok
expect_status leader ok
expect_message leader "namespace '$NS'"
expect_status token ok
expect_message token "read role"
expect_status secret-file ok
expect_message secret-file "$D/admin.token"
# Exactly the JSON shape documented: {"checks":[{"name","status","message"}]}.
jq -e '(.checks | length > 8) and all(.checks[]; (keys == ["message","name","status"]) and
        (.status | IN("ok","warn","fail","skip")))' "$OUT" >/dev/null || { show; fail "JSON shape"; }
echo "no persistence: FAIL, exit 1"

# The deploy token is recognised as such; the text form is aligned, one line per check.
doctor doctor --redis "$R1_URL" --url "$CDA_URL" --token "$TOKEN_DEPLOY"
expect_rc 1 "no persistence (text)"
grep -q '^FAIL  persistence  ' "$OUT" || { show; fail "text: no aligned FAIL line for persistence"; }
grep -q '^ok    token          the token has the deploy role' "$OUT" || { show; fail "text: token line"; }
if grep -q "$(printf '\033')" "$OUT"; then fail "colour codes written to a pipe"; fi
awk '{ print length($1) }' "$OUT" | grep -qv '^[24]$' && { show; fail "a status that is not ok/warn/FAIL/skip"; }

# ---- 2. INFO / LMOVE / candidate-namespace fallbacks for restricted users ----
redis-cli -p "$R1_PORT" ACL SETUSER noconfig on '>Doctor-Pw-7731' '~*' '&*' '+@all' '-config' | grep -qx OK ||
        fail "ACL SETUSER noconfig"
doctor --output json doctor --redis "redis://noconfig:Doctor-Pw-7731@127.0.0.1:$R1_PORT/0" --namespace "$NS"
expect_message persistence "from INFO persistence"
expect_message persistence "NOPERM"
expect_message eviction "INFO memory"
! grep -q 'Doctor-Pw-7731' "$OUT" "$ERR" || fail "the password was printed"
grep -q 'noconfig:\*\*\*\*\*@' "$OUT" || { show; fail "the Redis URL is not shown masked"; }
# The minimal user of docs/operations.md: no INFO, CONFIG or SCAN.
redis-cli -p "$R1_PORT" ACL SETUSER coord on '>Coord-Pw-4410' resetkeys resetchannels '~coord:*' '&coord:*' \
        -@all +ping +auth +select +role +eval +evalsha +get +set +mget +del +exists +pttl +pexpire +incr +time \
        +hset +hget +hmget +hgetall +hexists +lpush +lmove +lrange +lrem +zadd +zrange +zrem +zremrangebyscore \
        +publish +subscribe +unsubscribe +multi +exec | grep -qx OK || fail "ACL SETUSER coord"
doctor --output json doctor --redis "127.0.0.1:$R1_PORT,user=coord,password=Coord-Pw-4410" --namespace "$NS"
expect_status redis-version ok
expect_message redis-version "LMOVE works"
expect_status persistence skip
expect_status namespaces ok
expect_message namespaces "SCAN not permitted"
expect_status clock-skew ok
! grep -q 'Coord-Pw-4410' "$OUT" "$ERR" || fail "the password was printed"
echo "restricted users: INFO, LMOVE and known namespaces used"

# ---- 3. appendonly yes, a leading coordinatord and a real agent: exit 0 ----
harness_start_redis redis2 --appendonly yes
R2_PORT=$REDIS_PORT R2_URL=$REDIS_URL
cd_start cdb
harness_wait_for 10 is_leader "$CDB_URL" || fail "cdb never led"
chmod 600 "$D/admin.token"
cat >"$D/agent.json" <<JSON
{"redis":"$R2_URL","namespace":"$NS","host":"h2","heartbeat_interval":"200ms","state_dir":"$D/state",
 "services":[
  {"name":"api","instance":"api-1","version":"1.0",
   "health":{"tcp":"127.0.0.1:$CDB_PORT","interval":"100ms","rise":1,"fall":2}},
  {"name":"worker","instance":"worker-1","version":"1.0"}]}
JSON
chmod 600 "$D/agent.json"
harness_spawn agent "$COORD_AGENT" --config "$D/agent.json"
agent_healthy() { [ "$(rcli hget "coord:{$NS}:instance:api-1" state)" = healthy ]; }
harness_wait_for 10 agent_healthy || fail "agent instance api-1 never healthy"
[ "$(rcli hget "coord:{$NS}:instance:api-1" probe)" = tcp ] || fail "agent did not publish probe=tcp"
[ "$(rcli hget "coord:{$NS}:instance:worker-1" probe)" = none ] || fail "agent did not publish probe=none"

doctor --output json doctor --redis "$R2_URL" --url "$CDB_URL" --token "$TOKEN_ADMIN" \
        --config "$D/cdb.json" --config "$D/agent.json"
expect_rc 0 "healthy setup"
expect_status persistence ok
expect_message persistence "appendonly yes"
expect_status namespaces ok
expect_status clock-skew ok
expect_message clock-skew "h2"
expect_status local-clock ok
expect_status health-checks warn
expect_message health-checks "'worker-1' on 'h2'"
expect_status config-namespace ok
expect_message token "admin role"
[ "$(jq '[.checks[] | select(.status == "fail")] | length' "$OUT")" = 0 ] ||
        { show; fail "a FAIL in the healthy setup"; }
echo "healthy setup: exit 0 (worker-1 without a health check: warn)"

# The same through a Sentinel (serviceName=).
harness_start_sentinel "$R2_PORT" doctormaster
doctor --output json doctor --redis "$SENTINEL_URL" --namespace "$NS"
expect_status redis ok
expect_status persistence ok
echo "via sentinel: ok"

# ---- 4. an agent host 3 s ahead: FAIL naming it ----
now=$(now_ms)
rcli hset "coord:{$NS}:instance:skew-1" id skew-1 service web host skewhost address 10.0.0.9:80 version 1.0 \
        state healthy health healthy probe http config_version 0 ttl_ms 60000 registered_at "$now" detail "" >/dev/null
stamp "$NS" skew-1 3000
rcli zadd "coord:{$NS}:instances" "$now" skew-1 >/dev/null
doctor --output json doctor --redis "$R2_URL" --url "$CDB_URL" --token "$TOKEN_READ"
expect_rc 1 "skewed host"
expect_status clock-skew fail
expect_message clock-skew "skewhost"
expect_message clock-skew "ahead"
message clock-skew | grep -q 'h2 ' && { show; fail "the healthy host h2 was named"; }
note "$(message clock-skew | cut -d'(' -f1)"
# Its alive key gone (lost): nothing to compare for it any more.
rcli del "coord:{$NS}:alive:skew-1" >/dev/null
doctor --output json doctor --redis "$R2_URL" --namespace "$NS"
expect_status clock-skew ok
echo "skew: FAIL naming skewhost"

# ---- 5. a token file chmod 644 ----
chmod 644 "$D/admin.token"
doctor --output json doctor --redis "$R2_URL" --url "$CDB_URL" --token "$TOKEN_READ" --config "$D/cdb.json"
expect_rc 1 "token file 644"
expect_status secret-file fail
expect_message secret-file "$D/admin.token"
expect_message secret-file "readable by everyone"
chmod 640 "$D/admin.token"
COORD_TOKEN_FILE=$D/admin.token doctor --output json doctor --redis "$R2_URL" --url "$CDB_URL"
expect_rc 0 "token file 640 is only a warning"
expect_status secret-file warn
expect_message secret-file "COORD_TOKEN_FILE"
chmod 600 "$D/admin.token"
# An inline password in a world-readable config: FAIL, the password never shown.
printf '{"redis":"redis://noconfig:Doctor-Pw-7731@127.0.0.1:%s/0","namespace":"%s","services":[]}\n' "$R1_PORT" "$NS" \
        >"$D/inline-agent.json"
chmod 644 "$D/inline-agent.json"
doctor --output json doctor --config "$D/inline-agent.json" --url "$CDB_URL"
expect_status inline-secret fail
expect_message inline-secret "the password in redis"
expect_status redis ok
expect_message redis "redis in $D/inline-agent.json"
! grep -q 'Doctor-Pw-7731' "$OUT" "$ERR" || fail "the inline password was printed"
echo "token file 644: FAIL naming it"

# ---- 6. agents and coordinatord in different namespaces ----
harness_start_redis redis3 --appendonly yes
R3_URL=$REDIS_URL
NS_CD=cd$$ NS_AG=ag$$
NS_SAVED=$NS
NS=$NS_CD
cd_start cdc
harness_wait_for 10 is_leader "$CDC_URL" || fail "cdc never led"
NS=$NS_AG
register app-1 app h3 60000
NS=$NS_SAVED
rcli hset "coord:{$NS_AG}:instance:app-1" probe http >/dev/null
stamp "$NS_AG" app-1
printf '{"redis":"%s","namespace":"%s","services":[{"name":"app","version":"1"}]}\n' "$R3_URL" "$NS_AG" \
        >"$D/ag.json"
chmod 600 "$D/admin.token" "$D/ag.json"
doctor --output json doctor --redis "$R3_URL" --url "$CDC_URL" --token "$TOKEN_READ" \
        --config "$D/cdc.json" --config "$D/ag.json"
expect_rc 1 "namespace mismatch"
expect_status namespaces fail
expect_message namespaces "agents register in namespace '$NS_AG' but coordinatord runs in '$NS_CD'"
expect_status leader fail
expect_message leader "runs in namespace '$NS_CD'"
expect_message leader "agents register in '$NS_AG'"
expect_status config-namespace fail
expect_message config-namespace "$D/ag.json uses namespace '$NS_AG' but $D/cdc.json uses '$NS_CD'"
# Focused on the agents' namespace it says the same.
doctor --output json doctor --redis "$R3_URL" --namespace "$NS_AG"
expect_status namespaces fail
expect_message namespaces "'$NS_CD'"
echo "namespace mismatch: FAIL naming $NS_AG and $NS_CD"

# ---- 7. nothing reachable: exit 3 ----
closed=$(harness_free_port)
doctor --output json doctor --redis "redis://127.0.0.1:$closed/0" --url "http://127.0.0.1:$closed"
expect_rc 3 "nothing reachable"
expect_status redis fail
expect_status coordinatord fail
expect_status persistence skip
# Redis down but coordinatord up: the Redis FAIL, exit 1.
doctor --output json doctor --redis "redis://127.0.0.1:$closed/0" --url "$CDB_URL" --token "$TOKEN_READ"
expect_rc 1 "Redis unreachable, coordinatord up"
echo "unreachable: exit 3"

# ---- 8. usage errors: exit 2 ----
doctor doctor --bogus
expect_rc 2 "unknown flag"
doctor doctor --namespace 'a b'
expect_rc 2 "bad namespace"
doctor doctor --config "$D/does-not-exist.json"
expect_rc 2 "missing config"
grep -q 'does-not-exist.json' "$ERR" || fail "the missing config is not named"
printf '{"redis": "redis://:Broken-Secret@h:1/0",\n oops}\n' >"$D/broken.json"
doctor doctor --config "$D/broken.json"
expect_rc 2 "broken config"
grep -q 'line 2' "$ERR" || { show; fail "the JSON error has no line"; }
! grep -q 'Broken-Secret' "$ERR" || fail "text near the JSON error was printed"
doctor doctor --redis 'redis://127.0.0.1:99999/0'
expect_rc 2 "bad Redis URL"
doctor doctor --help
expect_rc 0 "--help"
grep -q 'Usage: coordctl doctor' "$OUT" || fail "--help text"
echo "usage errors: exit 2"
