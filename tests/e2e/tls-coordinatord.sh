# coordinatord over mutual TLS, configured as in production: the connection
# string (an ACL user) and the client key are systemd credentials, tls_ca_file
# and tls_cert_file are in the file.  Two coordinatords: the API works (reads,
# and a config write through an API thread's own TLS connection), exactly one
# leads, and when the leader is killed with SIGKILL the other takes over
# within the lease.  A third one reaches the same Redis through a TLS
# Sentinel.  The password reaches no log.
. "$COORD_HARNESS"
harness_init
harness_need curl jq openssl
. "$top_srcdir/tests/e2e/coordinatord-lib.sh"
. "$top_srcdir/tests/e2e/tls-lib.sh"
D=$COORD_TEST_DIR
PW='Coord-Tls-Pw8'
tls_mtls_redis coord "$PW" "$D/creds"
mkdir -p "$D/creds-sentinel"
cp "$TLS_DIR/client.key" "$D/creds-sentinel/tls_key"
printf '%s\n' "$TOKEN_ADMIN" >"$D/admin.token"

start_cd() { # NAME CREDENTIALS_DIR
        CD=$1
        spawn_listening "$1" tls_write_cd CREDENTIALS_DIRECTORY="$2"
        eval "$(echo "$1" | tr a-z A-Z)_URL=http://127.0.0.1:$PORT"
}
start_cd cda "$D/creds"
start_cd cdb "$D/creds"
harness_wait_for 15 ready "$CDA_URL" || fail "cda not ready over TLS: $(curl -s "$CDA_URL/health/ready")"
harness_wait_for 15 ready "$CDB_URL" || fail "cdb not ready over TLS: $(curl -s "$CDB_URL/health/ready")"

leader_of() { curl -s -m 1 -H "Authorization: Bearer $TOKEN_READ" "$1/v1/leader"; }
is_leader() { leader_of "$1" | jq -e '.is_leader' >/dev/null; }
one_leader() { [ "$( (is_leader "$CDA_URL" && echo a; is_leader "$CDB_URL" && echo b) | wc -l)" = 1 ]; }
harness_wait_for 10 one_leader || fail "no single leader over TLS"

# The API, a write included: an API thread opens its own TLS connection.
URL=$CDA_URL
expect 200 PUT /v1/config/web admin -H 'Content-Type: application/json' -d '{"config":{"UseDistributedMode":true}}'
URL=$CDB_URL
expect 200 GET /v1/config/web read
[ "$(jq -r .version "$BODY_FILE")" = 1 ] || fail "config version: $(body)"
[ "$(rcli HGET "coord:{$NS}:config:web" version)" = 1 ] || fail "the config did not reach Redis"

# Failover: SIGKILL the leader; the other takes over within the lease (2 s) + 1 s.
if is_leader "$CDA_URL"; then old=cda new_url=$CDB_URL; else old=cdb new_url=$CDA_URL; fi
term=$(leader_of "$new_url" | jq -r .term)
kill -KILL "$(cat "$D/$old.pid")"
t0=$(now_ms)
harness_wait_for 5 is_leader "$new_url" || fail "the standby did not take over over TLS"
took=$(( $(now_ms) - t0 ))
[ "$took" -le 3000 ] || fail "takeover took $took ms"
new_term=$(leader_of "$new_url" | jq -r .term)
[ "$new_term" -gt "$term" ] || fail "term did not increase: $term -> $new_term"
note "leader $old killed; standby took over in $took ms over TLS (term $term -> $new_term)"

# Through a TLS Sentinel to the same master.
tls_start_sentinel "$TLS_PORT"
printf '127.0.0.1:%s,serviceName=mymaster,ssl=true,user=coord,password=%s\n' "$SENTINEL_TLS_PORT" "$PW" \
        >"$D/creds-sentinel/redis"
start_cd cdc "$D/creds-sentinel"
harness_wait_for 15 ready "$CDC_URL" || fail "cdc not ready through the TLS sentinel: $(curl -s "$CDC_URL/health/ready")"
[ "$(leader_of "$CDC_URL" | jq -r .term)" = "$new_term" ] || fail "cdc sees another term: $(leader_of "$CDC_URL")"
URL=$CDC_URL
expect 200 GET /v1/config/web read

for f in "$D"/*.log; do
        ! grep -q -- "$PW" "$f" || fail "the password reached $f"
done
echo "tls-coordinatord: ok"
