#!/bin/sh
# Least-privilege Redis ACL users (docs/security.md, "ACL users").  The users
# `coordctl acl` prints carry a whole fleet with an empty ACL LOG: two agents
# (host-1 runs web-1, host-2 runs web-2), two coordinatords and a coordctl lock
# client (registration, heartbeats, advertised config, a drain, a rolling
# deployment with its migrations, a revert, a lone migration, locks under
# contention, a graceful agent stop).  Then host-1's agent user cannot write
# host-2's keys (instance, alive key, queue, command results, also from a Lua
# script), a deployment record, advertised config, the leader lock or coord
# 0.1's command:ID results, while the reads it needs work; the coordinatord
# user cannot FLUSHALL, CONFIG, KEYS or take coordctl's locks.
set -eu
. "$top_srcdir/tests/e2e/rollout-lib.sh"
rollout_init
D=$COORD_TEST_DIR
ADMIN_URL=$REDIS_URL
rcli CONFIG SET acllog-max-len 1000 >/dev/null

url_of() { echo "redis://$1:$2@127.0.0.1:$REDIS_PORT/0"; }
# fail, with what Redis refused (a program missing a permission shows there).
fail_acl() {
        rcli ACL LOG 10 >&2
        fail "$@"
}

# acl_user NAME ROLE PASSWORD ARGS...: create the user `coordctl acl ROLE ARGS` prints.
acl_user() {
        name=$1 role=$2 pw=$3
        shift 3
        printf '%s\n' "$pw" | "$COORDCTL" acl "$role" --namespace "$NS" --password-stdin "$@" >"$D/acl-$name" ||
                fail "coordctl acl $role $* failed"
        note "$(cat "$D/acl-$name")"
        out=$(rcli <"$D/acl-$name")
        [ "$out" = OK ] || fail "Redis refused the ACL SETUSER line of $name: $out"
}

# as USER PASSWORD COMMAND...: redis-cli as that user, the reply on stdout.
as() {
        u=$1 p=$2
        shift 2
        redis-cli -p "$REDIS_PORT" --user "$u" --pass "$p" --no-auth-warning "$@" 2>&1
}

# refused|allowed USER PASSWORD COMMAND...  (a script touching a key the user may
# not access fails with "can't access" rather than NOPERM)
refused() {
        out=$(as "$@")
        case $out in
        *NOPERM* | *"can't access"*) ;;
        *) who=$1; shift 2; fail "user $who ran '$*': $out (want NOPERM)" ;;
        esac
}

allowed() {
        out=$(as "$@")
        case $out in
        *NOPERM* | *ERR* | *WRONGPASS*) who=$1; shift 2; fail "user $who could not run '$*': $out" ;;
        esac
}

# ---- the users ----
# Without --password-stdin the line cannot be applied (a placeholder Redis refuses).
"$COORDCTL" acl agent --namespace "$NS" --host host-1 --instance web-1 >"$D/placeholder" 2>/dev/null
case $(rcli <"$D/placeholder") in
*ERR*) ;;
*) fail "the placeholder line created a user: $(cat "$D/placeholder")" ;;
esac
"$COORDCTL" acl coordinatord --namespace "$NS" --acl-file 2>/dev/null | grep -q "^user coord-$NS-coordinatord reset on " ||
        fail "--acl-file does not print a users.acl line"

A1=coord-$NS-agent-host-1 A2=coord-$NS-agent-host-2 CD=coord-$NS-coordinatord CL=coord-$NS-client
acl_user agent-1 agent pw-agent-1 --host host-1 --instance web-1 --service web
acl_user agent-2 agent pw-agent-2 --host host-2 --instance web-2 --service web
acl_user cd coordinatord pw-cd
acl_user client client pw-client --lock nightly --lock 'migrate-*'

# ---- the fleet, each agent under its own user ----
write_hooks
hook="$D/bin/hook"
for i in 1 2; do
        d="$D/web-$i"
        mkdir -p "$d"
        printf '1.0\n' >"$d/version"
        harness_spawn_port "web-$i" health/live "$DEMO" --version-file "$d/version"
        REDIS_URL=$(url_of "coord-$NS-agent-host-$i" "pw-agent-$i")
        write_agent_config "$i" "$port" "{\"drain\": \"$hook drain $d\", \"deploy\": \"$hook deploy $d\",
              \"undrain\": \"$hook undrain $d\", \"migrate\": \"$hook migrate $d\", \"timeout\": \"60s\"}"
        jq --arg f "$d/web.env" '.services[0].config_file = $f | .services[0].config_format = "env"' \
                "$D/agent-$i.json" >"$D/agent-$i.tmp" && mv "$D/agent-$i.tmp" "$D/agent-$i.json"
        agent_spawn "$i"
        REDIS_URL=$ADMIN_URL
done
harness_wait_for 20 fleet_healthy 2 || fail_acl "the fleet did not turn healthy: $(instances_summary)"

REDIS_URL=$(url_of "$CD" pw-cd)
coord_start coord-a
coord_start coord-b
REDIS_URL=$ADMIN_URL

# ---- advertised config: the agents read it ----
rcli HSET "coord:{$NS}:config:web" version 1 config '{"Greeting":"acl"}' updated_at "$(now_ms)" >/dev/null
rcli PUBLISH "coord:{$NS}:config-changed" web >/dev/null
for i in 1 2; do
        harness_wait_for 10 grep -q '^Greeting=acl' "$D/web-$i/web.env" || fail_acl "web-$i did not write the config"
done
[ "$(api GET /v1/config/web | jq -r .version)" = 1 ] || fail "coordinatord does not see config version 1"

# ---- a drain through the API: the result under host-2 ----
result_is() { [ "$(rcli HGET "coord:{$NS}:agent:$1:result:$2" state)" = "$3" ]; }
cmd=$(api POST /v1/instances/web-2/drain | jq -r .command.id)
harness_wait_for 10 result_is host-2 "$cmd" done || fail_acl "no result of the drain command $cmd under host-2"
[ "$(rcli EXISTS "coord:{$NS}:command:$cmd")" = 0 ] || fail "a result was written at coord 0.1's key"
api POST /v1/instances/web-2/undrain >/dev/null || fail "undrain refused"
harness_wait_for 10 fleet_healthy 2 || fail "web-2 not healthy after the undrain: $(instances_summary)"

# ---- a rolling deployment with both migrations, then its revert ----
ctl deploy web 2.0 --max-parallel 1 --min-healthy-time 300ms --healthy-deadline 20s >"$D/deploy.out" 2>&1 ||
        { cat "$D/deploy.out" >&2; fail_acl "coordctl deploy under the ACL users failed"; }
id=$(ctl --output json deployments web | jq -r '.deployments[0].id')
[ "$(dep_state "$id")" = succeeded ] || fail "deployment $id: $(dep_state "$id")"
[ "$(hook_count migrate)" = 2 ] || fail "$(hook_count migrate) migrate hooks, want 2 (pre and post)"
api GET /v1/migrations/web >"$D/mig" || fail "GET /v1/migrations/web"
jq -e '.state == "done" and .phase == "post" and .deployment != null' "$D/mig" >/dev/null ||
        fail "the deployment's post migration: $(cat "$D/mig")"
ctl revert "$id" >/dev/null || fail "revert refused"
wait_dep "$id" reverted 30

# ---- a migration on its own ----
api POST /v1/migrations -H 'Content-Type: application/json' -d '{"service":"web","version":"1.0"}' >"$D/mig" ||
        fail "POST /v1/migrations"
mcmd=$(jq -r .migration.command "$D/mig")
mig_done() { api GET /v1/migrations/web | jq -e --arg c "$mcmd" '.command == $c and .state == "done"' >/dev/null; }
harness_wait_for 15 mig_done || fail_acl "the lone migration: $(api GET /v1/migrations/web)"
[ -n "$(rcli HGET "coord:{$NS}:migration:web" host)" ] || fail "the migration record names no host"

# ---- coordctl lock under the client user, contended ----
CLIENT_URL=$(url_of "$CL" pw-client)
COORD_NAMESPACE=$NS "$COORDCTL" lock nightly --redis "$CLIENT_URL" -- sleep 1 >"$D/lock1.out" 2>&1 &
lpid=$!
harness_track "$lpid"
harness_wait_for 5 sh -c "[ \"\$(redis-cli -p $REDIS_PORT EXISTS 'coord:{$NS:lock:nightly}')\" = 1 ]" ||
        fail "the first lock holder did not get the lock"
COORD_NAMESPACE=$NS "$COORDCTL" lock nightly --redis "$CLIENT_URL" --wait-timeout 10s -- true ||
        fail "the waiting lock client failed"
wait "$lpid" || fail "the first lock holder failed: $(cat "$D/lock1.out")"
COORD_NAMESPACE=$NS "$COORDCTL" lock migrate-0123 --redis "$CLIENT_URL" -- true || fail "lock migrate-0123"

# ---- a graceful agent stop ----
kill -TERM "$(cat "$D/agent-2.pid")"
harness_wait_for 10 sh -c "[ \"\$(redis-cli -p $REDIS_PORT HGET 'coord:{$NS}:instance:web-2' state)\" = stopped ]" ||
        fail "web-2 not stopped after its agent's SIGTERM"
[ "$(rcli EXISTS "coord:{$NS}:alive:web-2")" = 0 ] || fail "the stopped agent left its alive key"

# Nothing above was refused.
log=$(rcli ACL LOG 1000)
[ -z "$log" ] || { printf '%s\n' "$log" >&2; fail "the programs were refused something (ACL LOG above)"; }
if grep -l 'NOPERM\|no permissions' "$D"/*.log; then fail "a program logged a refusal (files above)"; fi
note "ACL LOG empty after the fleet's run"

# ---- the agents: their own keys and reads, nothing of the other host's, no deployment ----
P1=pw-agent-1
k="coord:{$NS}"
allowed "$A1" $P1 HMGET "$k:config:web" version config
allowed "$A1" $P1 HGET "$k:instance:web-1" state
allowed "$A1" $P1 LRANGE "$k:agent:host-1:commands" 0 -1
allowed "$A1" $P1 HSET "$k:agent:host-1:result:probe" state done
refused "$A1" $P1 HSET "$k:instance:web-2" state healthy
refused "$A1" $P1 SET "$k:alive:web-2" 1 PX 100000
refused "$A1" $P1 DEL "$k:alive:web-2"
refused "$A1" $P1 LPUSH "$k:agent:host-2:commands" '{"id":"x","type":"deploy","version":"6.6"}'
refused "$A1" $P1 LMOVE "$k:agent:host-2:commands" "$k:agent:host-1:inflight" RIGHT LEFT
# The forge a shared result key allowed: another host's command result.
refused "$A1" $P1 HSET "$k:agent:host-2:result:$cmd" state failed finished_at 1
refused "$A1" $P1 HGET "$k:agent:host-2:result:$cmd" state
refused "$A1" $P1 EVAL "return redis.call('HSET', KEYS[1], 'state', 'done')" 1 "$k:agent:host-2:result:forged"
refused "$A1" $P1 EVAL "return redis.call('HSET', '$k:agent:host-2:result:forged', 'state', 'done')" 0
refused "$A1" $P1 HSET "$k:command:$cmd" state done finished_at 1
refused "$A1" $P1 HSET "$k:deployment:$id" state succeeded
refused "$A1" $P1 HSET "$k:migration:web" command forged host host-1
refused "$A1" $P1 SADD "$k:deployments-active" forged
refused "$A1" $P1 HSET "$k:config:web" version 99 config '{}'
refused "$A1" $P1 HMGET "$k:config:api" version config
refused "$A1" $P1 SET "coord:{$NS:lock:leader}" forged
refused "$A1" $P1 ZREM "$k:instances" web-2
refused "$A1" $P1 PUBLISH "$k:agent:host-2:wake" x
refused "$A1" $P1 PUBLISH "$k:deployment-wake" x
refused "$A1" $P1 FLUSHALL
refused "$A1" $P1 KEYS '*'
refused "$A1" $P1 CONFIG GET maxmemory
refused "$A2" pw-agent-2 HSET "$k:agent:host-1:result:probe" state failed
refused "$A2" pw-agent-2 HSET "$k:instance:web-1" host host-2
note "the agent users: their own host's keys only"

# ---- the coordinatord and client users ----
allowed "$CD" pw-cd HGETALL "$k:deployment:$id"
allowed "$CD" pw-cd GET "coord:{$NS:lock:leader}"
refused "$CD" pw-cd FLUSHALL
refused "$CD" pw-cd FLUSHDB
refused "$CD" pw-cd KEYS '*'
refused "$CD" pw-cd SCAN 0
refused "$CD" pw-cd CONFIG GET maxmemory
refused "$CD" pw-cd SCRIPT FLUSH
refused "$CD" pw-cd CLIENT LIST
refused "$CD" pw-cd ACL LIST
refused "$CD" pw-cd SET "coord:{$NS:lock:nightly}" forged
refused "$CD" pw-cd HSET "coord:{other}:instance:x" state healthy
refused "$CL" pw-client SET "coord:{$NS:lock:leader}" forged
refused "$CL" pw-client HSET "$k:instance:web-1" state healthy
if COORD_NAMESPACE=$NS "$COORDCTL" lock other --redis "$CLIENT_URL" --wait-timeout 0s -- true 2>"$D/lock-other"; then
        fail "the client user took a lock it was not given"
fi
note "coordinatord and client users refused what they do not need"
[ "$(rcli ACL LOG 1000 | grep -c "$A1")" -gt 0 ] || fail "the refusals were not logged for $A1"
