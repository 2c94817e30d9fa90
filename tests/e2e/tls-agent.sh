# coord-agent over mutual TLS, configured as in production: the connection
# string (an ACL user and its password) and the client key are systemd
# credentials ($CREDENTIALS_DIRECTORY/redis, .../tls_key), tls_ca_file and
# tls_cert_file are in agent.json.  It registers, heartbeats, runs a drain
# command whose hook sees COORD_TLS_CA_FILE, COORD_TLS_CERT_FILE and
# COORD_TLS_KEY_FILE and takes a lock with `coordctl lock` over the same TLS.
# --check-config shows the paths (never the key, never the password); an
# encrypted key and an unusable CA file are configuration errors (exit 2)
# naming the key; without a client certificate the server refuses the agent.
. "$top_srcdir/tests/e2e/agent-lib.sh"
. "$top_srcdir/tests/e2e/tls-lib.sh"
agent_init
D=$COORD_TEST_DIR
PW='Agent-Tls-Pw7'
tls_mtls_redis agent "$PW" "$D/creds"
mkdir -p "$D/out"
chmod 0600 "$D/creds/redis" "$D/creds/tls_key"

# The drain hook: its environment, then a lock held over TLS with the
# agent's files (the connection string read from the credential by its path).
cat >"$D/hook.sh" <<SH
env >"$D/out/\$1.env"
"$COORDCTL" lock hooklock --redis "\$(cat "$D/creds/redis")" --lease 5s --wait-timeout 10s -- \
        sh -c 'echo "\$COORD_FENCING_TOKEN" >"$D/out/fence"'
SH
write_config() { # FILE HOST [EXTRA KEYS]
        cat >"$1" <<JSON
{"namespace":"$NS","host":"$2","heartbeat_interval":"200ms","state_dir":"$D/state-$2",$3
 "services":[{"name":"web","instance":"$2-web","version":"1.0",
   "hooks":{"drain":"sh $D/hook.sh drain","timeout":"20s"}}]}
JSON
}
write_config "$D/agent.json" "$HOST" "\"tls_ca_file\":\"$TLS_DIR/ca.crt\",\"tls_cert_file\":\"$TLS_DIR/client.crt\","

# --check-config: the effective files, the password masked, no key material.
CREDENTIALS_DIRECTORY="$D/creds" "$COORD_AGENT" --config "$D/agent.json" --check-config >"$D/check.out" ||
        fail "--check-config failed: $(cat "$D/check.out")"
jq -e --arg ca "$TLS_DIR/ca.crt" --arg key "$D/creds/tls_key" \
        '.tls_ca_file == $ca and .tls_key_file == $key and .tls_insecure_skip_verify == false' "$D/check.out" >/dev/null ||
        fail "--check-config does not show the TLS files: $(cat "$D/check.out")"
! grep -q -- "$PW" "$D/check.out" || fail "--check-config shows the password"
! grep -q -- "$(sed -n 2p "$D/creds/tls_key")" "$D/check.out" || fail "--check-config shows the key"

harness_spawn agent env CREDENTIALS_DIRECTORY="$D/creds" "$COORD_AGENT" --config "$D/agent.json"
wait_state "$HOST-web" healthy 10
seen1=$(ihget "$HOST-web" last_seen)
harness_wait_for 5 sh -c "[ \"\$(redis-cli -p $REDIS_PORT HGET 'coord:{$NS}:instance:$HOST-web' last_seen)\" -gt $seen1 ]" ||
        fail "no heartbeat after the first one"
[ "$(rcli ACL LOG | grep -c agent)" = 0 ] || fail "the ACL user was refused something: $(rcli ACL LOG)"

queue_command "{\"id\":\"d1\",\"type\":\"drain\",\"instance\":\"$HOST-web\"}"
wait_command d1 30
[ "$(command_field d1 state)" = done ] || fail "drain: $(command_field d1 error) $(command_field d1 output)"
has() { grep -qx -- "$2" "$1" || fail "$1: no line '$2'"; }
has "$D/out/drain.env" "COORD_TLS_CA_FILE=$TLS_DIR/ca.crt"
has "$D/out/drain.env" "COORD_TLS_CERT_FILE=$TLS_DIR/client.crt"
has "$D/out/drain.env" "COORD_TLS_KEY_FILE=$D/creds/tls_key"
! grep -q CREDENTIALS_DIRECTORY "$D/out/drain.env" || fail "the hook saw CREDENTIALS_DIRECTORY"
[ -s "$D/out/fence" ] || fail "the hook's coordctl lock over TLS did not run its command"
note "hook took lock 'hooklock' over TLS, fencing token $(cat "$D/out/fence")"
state_is "$HOST-web" draining || fail "not draining after the drain command"

# Configuration errors, exit 2, naming the key: an encrypted key...
openssl pkey -in "$TLS_DIR/client.key" -aes256 -passout pass:Key-Passphrase-1 -out "$D/encrypted.key" 2>/dev/null ||
        fail "openssl could not encrypt the key"
write_config "$D/enc.json" h3 "\"tls_cert_file\":\"$TLS_DIR/client.crt\",\"tls_key_file\":\"$D/encrypted.key\","
set +e
COORD_REDIS="$(cat "$D/creds/redis")" "$COORD_AGENT" --config "$D/enc.json" --check-config >"$D/enc.out" 2>&1
rc=$?
set -e
[ "$rc" = 2 ] || fail "an encrypted key: exit $rc, not 2: $(cat "$D/enc.out")"
grep -q "tls_key_file: TLS key file $D/encrypted.key: the key is encrypted" "$D/enc.out" ||
        fail "an encrypted key: $(cat "$D/enc.out")"
! grep -q Key-Passphrase-1 "$D/enc.out" || fail "the passphrase was printed"
# ...and a CA file that is no certificate.
write_config "$D/badca.json" h3 "\"tls_ca_file\":\"$D/creds/redis\","
set +e
COORD_REDIS="$(cat "$D/creds/redis")" "$COORD_AGENT" --config "$D/badca.json" >"$D/badca.out" 2>&1
rc=$?
set -e
[ "$rc" = 2 ] || fail "a bad CA file: exit $rc, not 2: $(cat "$D/badca.out")"
grep -q "tls_ca_file: TLS CA file $D/creds/redis: " "$D/badca.out" || fail "a bad CA file: $(cat "$D/badca.out")"
! grep -q -- "$PW" "$D/badca.out" || fail "the CA error printed the file's content"

# No client certificate: the server refuses the agent (so the first one used its own).
write_config "$D/nocert.json" h2 "\"tls_ca_file\":\"$TLS_DIR/ca.crt\","
harness_spawn nocert env COORD_REDIS="$(cat "$D/creds/redis")" "$COORD_AGENT" --config "$D/nocert.json"
harness_wait_for 15 grep -q "client certificate" "$D/nocert.log" ||
        fail "an agent without a client certificate was not refused: $(tail -5 "$D/nocert.log")"
[ "$(rcli EXISTS "coord:{$NS}:instance:h2-web")" = 0 ] || fail "the agent without a certificate registered"

kill -0 "$PID_agent" || fail "the agent died"
for f in "$D"/*.log; do
        ! grep -q -- "$PW" "$f" || fail "the password reached $f"
done
echo "tls-agent: ok"
