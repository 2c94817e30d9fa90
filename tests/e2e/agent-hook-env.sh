# Children of the agent get a clean environment: hooks (drain, deploy), the
# exec probe and the reload command, and the processes they start, never see
# the agent's own configuration (COORD_REDIS with its password, any other
# COORD_* variable), $CREDENTIALS_DIRECTORY or variables nobody listed; they do
# see the CONTRACT.md COORD_* variables, the allow-list (PATH, LANG, TZ, ...),
# hooks.env and the names in hooks.pass_env, and the agent's TLS files for
# coordctl: COORD_TLS_CA_FILE, COORD_TLS_CERT_FILE (tls_ca_file, tls_cert_file)
# and COORD_TLS_KEY_FILE (the path of the tls_key credential, never its
# content, and no other path under $CREDENTIALS_DIRECTORY), none of them when
# hooks.env names its own.
. "$top_srcdir/tests/e2e/agent-lib.sh"
. "$top_srcdir/tests/e2e/tls-lib.sh"
PW=SECRETPW-h00k
export REDISCLI_AUTH=$PW
agent_init --requirepass "$PW"
D=$COORD_TEST_DIR
mkdir -p "$D/run" "$D/creds" "$D/out"
printf 'redis://:%s@127.0.0.1:%s/0\n' "$PW" "$REDIS_PORT" >"$D/creds/redis"
tls_make_certs
cp "$TLS_DIR/client.key" "$D/creds/tls_key"

# dump.sh NAME: its own environment and that of a child it starts, each written
# atomically to $D/out/NAME.{env,child}.
cat >"$D/dump.sh" <<SH
env >"$D/out/\$1.env.tmp" && mv "$D/out/\$1.env.tmp" "$D/out/\$1.env"
sh -c 'tr "\\\\0" "\\\\n" </proc/\$\$/environ >"\$0"' "$D/out/\$1.child.tmp" && mv "$D/out/\$1.child.tmp" "$D/out/\$1.child"
echo "\$1 hook ran"
SH
cat >"$D/agent.json" <<JSON
{"namespace":"$NS","host":"$HOST","heartbeat_interval":"200ms","state_dir":"$D/state",
 "tls_ca_file":"$TLS_DIR/ca.crt","tls_cert_file":"$TLS_DIR/client.crt",
 "services":[{"name":"web","instance":"web-1","version":"1.0",
   "health":{"exec":"sh $D/dump.sh probe","interval":"200ms"},
   "hooks":{"drain":"sh $D/dump.sh drain","deploy":"sh $D/dump.sh deploy","timeout":"10s",
            "env":{"HOOK_SET":"from-config","LANG":"C.UTF-8"},"pass_env":["PASS_ME","ABSENT_VAR"]},
   "config_file":"$D/run/web.env","reload":"sh $D/dump.sh reload"},
  {"name":"api","instance":"api-1","version":"1.0",
   "health":{"exec":"env >$D/api.env.tmp && mv $D/api.env.tmp $D/api.env","interval":"200ms"},
   "hooks":{"env":{"COORD_TLS_CA_FILE":"/etc/other-redis/ca.pem"}}}]}
JSON

# The agent's configuration comes from the environment, as a unit's
# Environment= would give it; CREDENTIALS_DIRECTORY as systemd sets it.
harness_spawn agent env COORD_REDIS="redis://:$PW@127.0.0.1:$REDIS_PORT/0" COORD_NAMESPACE="$NS" \
        COORD_EXTRA=coord-extra-value CREDENTIALS_DIRECTORY="$D/creds" PASS_ME=passed-value \
        NOT_LISTED=not-listed-value TZ=UTC LANG=C LC_TIME=C.UTF-8 \
        "$COORD_AGENT" --config "$D/agent.json"
wait_state web-1 healthy 10

queue_command '{"id":"e1","type":"drain","instance":"web-1"}'
wait_command e1 10
[ "$(command_field e1 state)" = done ] || fail "drain: $(command_field e1 error)"
queue_command '{"id":"e2","type":"deploy","instance":"web-1","version":"2.0","deployment":"dep-1"}'
wait_command e2 10
[ "$(command_field e2 state)" = done ] || fail "deploy: $(command_field e2 error)"
rcli HSET "coord:{$NS}:config:web" version 1 config '{"A":"b"}' >/dev/null
rcli PUBLISH "coord:{$NS}:config-changed" web >/dev/null
harness_wait_for 10 test -s "$D/out/reload.child" || fail "reload did not run: $(ihget web-1 detail)"
# A probe started before the deploy may still write 1.0: wait for one after it.
harness_wait_for 10 grep -qx COORD_VERSION=2.0 "$D/out/probe.env" || fail "exec probe did not run after the deploy"
harness_wait_for 10 test -s "$D/out/probe.child" || fail "exec probe did not start a child"

has() { grep -qx -- "$2" "$1" || fail "$1: no line '$2' in: $(tr '\n' ' ' <"$1")"; }
lacks() { ! grep -q -- "$2" "$1" || fail "$1 contains '$2': $(grep -- "$2" "$1")"; }

key_pem=$(sed -n 2p "$D/creds/tls_key")
for f in "$D"/out/*.env "$D"/out/*.child; do
        for bad in "$PW" COORD_REDIS CREDENTIALS_DIRECTORY COORD_EXTRA coord-extra-value \
                COORD_TEST_DIR COORD_LOG_LEVEL REDISCLI_AUTH NOT_LISTED ABSENT_VAR NOTIFY_SOCKET "$key_pem"; do
                lacks "$f" "$bad"
        done
        # The credentials directory only as the path of the TLS key.
        grep -v '^COORD_TLS_KEY_FILE=' "$f" >"$f.rest"
        lacks "$f.rest" "$D/creds"
        has "$f" "COORD_TLS_CA_FILE=$TLS_DIR/ca.crt"
        has "$f" "COORD_TLS_CERT_FILE=$TLS_DIR/client.crt"
        has "$f" "COORD_TLS_KEY_FILE=$D/creds/tls_key"
        has "$f" "COORD_SERVICE=web"
        has "$f" "COORD_INSTANCE=web-1"
        has "$f" "COORD_NAMESPACE=$NS"
        has "$f" "COORD_HOST=$HOST"
        has "$f" "HOOK_SET=from-config"
        has "$f" "PASS_ME=passed-value"
        has "$f" "TZ=UTC"
        has "$f" "LC_TIME=C.UTF-8"
        # hooks.env wins over the agent's LANG=C.
        has "$f" "LANG=C.UTF-8"
        grep -q '^PATH=/' "$f" || fail "$f: no PATH"
done
# hooks.env naming a COORD_TLS_* file (a hook for another Redis) gets none of
# the agent's: never one's certificate with another's key.
harness_wait_for 10 test -s "$D/api.env" || fail "api's exec probe did not run"
has "$D/api.env" "COORD_TLS_CA_FILE=/etc/other-redis/ca.pem"
lacks "$D/api.env" COORD_TLS_CERT_FILE
lacks "$D/api.env" COORD_TLS_KEY_FILE
for f in "$D/out/deploy.env" "$D/out/deploy.child"; do
        has "$f" "COORD_VERSION=2.0"
        has "$f" "COORD_PREVIOUS_VERSION=1.0"
        has "$f" "COORD_DEPLOYMENT=dep-1"
done
has "$D/out/drain.env" "COORD_VERSION=1.0"
has "$D/out/drain.env" "COORD_DEPLOYMENT="
has "$D/out/reload.env" "COORD_VERSION=2.0"
lacks "$D/out/reload.env" COORD_DEPLOYMENT
lacks "$D/out/probe.env" COORD_DEPLOYMENT
[ "$(command_field e2 output)" = "deploy hook ran" ] || fail "deploy output: $(command_field e2 output)"
kill -0 "$PID_agent" || fail "agent died"
echo "agent-hook-env: ok"
