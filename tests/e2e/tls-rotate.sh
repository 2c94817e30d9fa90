# Credential rotation without a restart, under load, over mutual TLS: a
# coord-agent (heartbeat every 250 ms) and two coordinatords (one leads) run
# while, in turn,
#   1. the ACL user's password changes (ACL SETUSER ... resetpass >NEW), the
#      credential file gets the new one, SIGHUP: everything moves to it;
#   2. the credential file gets a wrong password, SIGHUP: everything keeps
#      working on the connection it has, logs an error, /health/ready says
#      "credentials":{"status":"stale"} (still 200) and the agent's STATUS=
#      says "last reload failed"; fixed + SIGHUP: recovered;
#   3. a new client certificate and key, SIGHUP: taken; an unreadable
#      certificate file, and then an expired certificate the server refuses,
#      SIGHUP: kept the working one, error reported; put right: recovered.
# Throughout, the gap between two heartbeats of the instance (its last_seen,
# read every 10 ms) never exceeds two intervals (no heartbeat missed: the
# max is printed), and the leader's id, term and the fence counter of the
# leader lock never change.  At the end every connection of the ACL user is
# killed: agent and coordinatords reconnect on their own, which they can only
# with the new password and certificate.  No password reaches a log or an
# API answer.
. "$COORD_HARNESS"
harness_init
harness_need curl jq openssl redis-cli
. "$top_srcdir/tests/e2e/coordinatord-lib.sh"
. "$top_srcdir/tests/e2e/tls-lib.sh"
NOTIFY_LISTEN="$top_builddir/tests/util/notify-listen"
[ -x "$NOTIFY_LISTEN" ] || fail "notify-listen not built: $NOTIFY_LISTEN"
D=$COORD_TEST_DIR
P1='Rotate-Pw-One1' P2='Rotate-Pw-Two2' P3='Rotate-Pw-Wrong3'
INTERVAL_MS=250
tls_mtls_redis coord "$P1" "$D/creds"
mkdir -p "$D/files"
set_password() { tls_redis_credential coord "$1" "$D/creds"; }
set_client() { # NAME: the certificate and key files the daemons are configured with, rewritten in place
        cp "$TLS_DIR/$1.crt" "$D/files/client.crt"
        cp "$TLS_DIR/$1.key" "$D/creds/tls_key"
}
set_client client
printf '%s\n' "$TOKEN_ADMIN" >"$D/admin.token"

TLS_CD_CERT_FILE=$D/files/client.crt # tls_write_cd: the file set_client rewrites
leader_of() { curl -s -m 1 -H "Authorization: Bearer $TOKEN_READ" "$1/v1/leader"; }
is_leader() { leader_of "$1" | jq -e '.is_leader' >/dev/null; }
CD=cda
spawn_listening cda tls_write_cd CREDENTIALS_DIRECTORY="$D/creds"
A=http://127.0.0.1:$PORT
harness_wait_for 15 is_leader "$A" || fail "cda does not lead: $(leader_of "$A")"
CD=cdb
spawn_listening cdb tls_write_cd CREDENTIALS_DIRECTORY="$D/creds"
B=http://127.0.0.1:$PORT
harness_wait_for 15 ready "$B" || fail "cdb not ready"

cat >"$D/agent.json" <<JSON
{"namespace":"$NS","host":"h1","heartbeat_interval":"${INTERVAL_MS}ms","state_dir":"$D/state",
 "tls_ca_file":"$TLS_DIR/ca.crt","tls_cert_file":"$D/files/client.crt",
 "services":[{"name":"web","instance":"h1-web","version":"1.0"}]}
JSON
harness_spawn listen "$NOTIFY_LISTEN" "$D/notify.sock"
harness_wait_for 5 test -S "$D/notify.sock" || fail "notify listener not ready"
harness_spawn agent env CREDENTIALS_DIRECTORY="$D/creds" NOTIFY_SOCKET="$D/notify.sock" \
        "$COORD_AGENT" --config "$D/agent.json"
INST="coord:{$NS}:instance:h1-web"
harness_wait_for 10 sh -c "[ \"\$(redis-cli -p $REDIS_PORT HGET '$INST' state)\" = healthy ]" || fail "agent not registered"

# last_seen of the instance, every 10 ms, on one connection, for the gap.
harness_spawn seen redis-cli -p "$REDIS_PORT" -r -1 -i 0.01 HGET "$INST" last_seen
FENCE_KEY="coord:{$NS:lock:leader}:fence"
LEADER0=$(leader_of "$A" | jq -r .leader) TERM0=$(leader_of "$A" | jq -r .term) FENCE0=$(rcli GET "$FENCE_KEY")
[ "$LEADER0" = cda ] && [ "$TERM0" = "$FENCE0" ] || fail "unexpected leader view: $(leader_of "$A"), fence $FENCE0"
# heartbeats_seen: how many heartbeats (new last_seen values) the sampler saw.
heartbeats_seen() { awk 'NF && $1 != prev { n++; prev = $1 } END { print n + 0 }' "$D/seen.log"; }
heartbeats_beyond() { [ "$(heartbeats_seen)" -gt "$1" ]; }
# wait_heartbeats N: the sampler sees N more heartbeats.
wait_heartbeats() {
        hb=$(( $(heartbeats_seen) + $1 - 1 ))
        harness_wait_for 10 heartbeats_beyond "$hb" || fail "fewer than $1 heartbeats in 10 s"
}
wait_heartbeats 4 # a baseline before the first rotation

count() { grep -c -- "$2" "$D/$1.log" || true; }
OK_AGENT="Redis credentials and TLS settings reloaded; the connection uses them now"
OK_CD="Redis credentials and TLS settings reloaded; every connection uses them now"
BAD="do not work, keeping the working connection"
REFUSED="Reload refused, keeping the running configuration"
# wait_more NAME PATTERN COUNT: NAME.log has more than COUNT lines with PATTERN.
wait_more() {
        harness_wait_for 10 sh -c "[ \$(grep -c -- '$2' '$D/$1.log') -gt $3 ]" ||
                fail "$1: no new '$2' after SIGHUP: $(tail -3 "$D/$1.log")"
}
# hup AGENT_LINE CD_LINE: SIGHUP all three and wait for that log line of each.
hup() {
        na=$(count agent "$1") nA=$(count cda "$2") nB=$(count cdb "$2")
        kill -HUP "$PID_agent" "$PID_cda" "$PID_cdb"
        wait_more agent "$1" "$na"
        wait_more cda "$2" "$nA"
        wait_more cdb "$2" "$nB"
}
# Leadership exactly as before: same leader, same term, no new fence.
same_leader() {
        v=$(leader_of "$A")
        [ "$(echo "$v" | jq -r .leader)" = "$LEADER0" ] && [ "$(echo "$v" | jq -r .term)" = "$TERM0" ] &&
                [ "$(echo "$v" | jq -r .is_leader)" = true ] || fail "$1: leadership changed: $v (was $LEADER0 term $TERM0)"
        [ "$(rcli GET "$FENCE_KEY")" = "$FENCE0" ] || fail "$1: the fence moved: $(rcli GET "$FENCE_KEY") (was $FENCE0)"
        [ "$(leader_of "$B" | jq -r .leader)" = "$LEADER0" ] || fail "$1: cdb sees another leader: $(leader_of "$B")"
}
health() { curl -s "$1/health/ready" | tee -a "$D/health.out"; }
stale() { health "$1" | jq -e '.status == "ready" and .checks.redis.credentials.status == "stale"' >/dev/null; }
fresh() { health "$1" | jq -e '.status == "ready" and (.checks.redis | has("credentials") | not)' >/dev/null; }
last_status() { grep STATUS= "$D/listen.log" | tail -1; }
status_ok() { last_status | grep -q "redis connected" && ! last_status | grep -q "last reload failed"; }
status_says() { last_status | grep -q -- "$1"; }
put_config() { # URL N: a write through an API thread's own connection
        URL=$1
        expect 200 PUT /v1/config/web admin -H 'Content-Type: application/json' -d "{\"config\":{\"N\":$2}}"
}

# 1. The password changes on the server first (open connections stay logged in), then here.
rcli ACL SETUSER coord resetpass ">$P2" | grep -qx OK || fail "ACL SETUSER (new password) failed"
set_password "$P2"
hup "$OK_AGENT" "$OK_CD"
same_leader "new password"
fresh "$A" || fail "cda: $(health "$A")"
put_config "$A" 1
put_config "$B" 2
note "1. new password taken by agent, cda, cdb; leader $LEADER0, term $TERM0 unchanged"

# 2. A wrong password: kept the working connection, error reported; then fixed.
set_password "$P3"
hup "$BAD" "$BAD"
stale "$A" || fail "cda does not report stale credentials: $(health "$A")"
stale "$B" || fail "cdb does not report stale credentials: $(health "$B")"
health "$A" | jq -e '.checks.redis.credentials.error | test("WRONGPASS")' >/dev/null || fail "no reason: $(health "$A")"
harness_wait_for 5 status_says "last reload failed: new Redis credentials: .*WRONGPASS" || fail "agent STATUS: $(last_status)"
grep -q "error: New Redis credentials or TLS settings do not work" "$D/agent.log" || fail "no error-level log line"
same_leader "wrong password"
put_config "$A" 3
wait_heartbeats 2 # heartbeats go on while the credentials are stale
set_password "$P2"
hup "$OK_AGENT" "$OK_CD"
fresh "$A" || fail "cda still stale after the fix: $(health "$A")"
fresh "$B" || fail "cdb still stale after the fix: $(health "$B")"
harness_wait_for 5 status_ok || fail "agent STATUS still failed: $(last_status)"
same_leader "password fixed"
note "2. wrong password: kept, reported (WRONGPASS), recovered"

# 3. A new client certificate and key (renewed in place).
tls_sign client2 "/CN=coord client 2" 30 "$TLS_DIR/client.ext"
set_client client2
hup "$OK_AGENT" "$OK_CD"
same_leader "new client certificate"
# An unreadable certificate file: the reload is refused, naming the key.
echo "not a certificate" >"$D/files/client.crt"
hup "$REFUSED" "$REFUSED"
stale "$A" || fail "cda does not report the refused reload: $(health "$A")"
health "$A" | jq -e '.checks.redis.credentials.error | test("tls_cert_file")' >/dev/null || fail "no culprit: $(health "$A")"
harness_wait_for 5 status_says "last reload failed: .*tls_cert_file" || fail "agent STATUS: $(last_status)"
# An expired certificate: loads, but the server refuses it.
set_client expired
hup "$BAD" "$BAD"
stale "$A" || fail "cda does not report the refused certificate: $(health "$A")"
health "$A" | jq -e '.checks.redis.credentials.error | test("certificate")' >/dev/null || fail "no reason: $(health "$A")"
same_leader "refused certificate"
set_client client2
hup "$OK_AGENT" "$OK_CD"
fresh "$A" || fail "cda still stale: $(health "$A")"
same_leader "certificate put right"
note "3. client certificate renewed; unreadable and expired ones refused, reported, recovered"

# The heartbeat never paused.
wait_heartbeats 4 # and after the last reload
kill "$PID_seen"
gap=$(awk 'NF && $1 != prev { if (prev != "" && $1 - prev > max) max = $1 - prev; prev = $1 } END { print max + 0 }' "$D/seen.log")
beats=$(heartbeats_seen)
note "max gap between heartbeats: $gap ms over $beats heartbeats (interval $INTERVAL_MS ms)"
[ "$beats" -ge 20 ] || fail "only $beats heartbeats seen"
[ "$gap" -lt $((2 * INTERVAL_MS)) ] || fail "a heartbeat gap of $gap ms (interval $INTERVAL_MS ms)"
! grep -q "Stepping down" "$D/cda.log" || fail "cda stepped down: $(grep 'Stepping down' "$D/cda.log")"
! grep -q "Lost the connection\|Lost connection" "$D/agent.log" || fail "the agent lost its connection"

# Every connection of the user killed: they come back only with P2 and client2.
seen=$(rcli HGET "$INST" last_seen)
rcli CLIENT KILL USER coord >/dev/null
harness_wait_for 10 sh -c "[ \"\$(redis-cli -p $REDIS_PORT HGET '$INST' last_seen)\" -gt $seen ]" ||
        fail "the agent did not come back after its connections were killed: $(tail -3 "$D/agent.log")"
harness_wait_for 10 ready "$A" || fail "cda did not come back: $(health "$A")"
put_config "$A" 4
put_config "$B" 5

for f in "$D"/*.log "$D/health.out" "$BODY_FILE"; do
        for pw in "$P1" "$P2" "$P3"; do
                ! grep -q -- "$pw" "$f" || fail "a password reached $f"
        done
done
echo "tls-rotate: ok"
