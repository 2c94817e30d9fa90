# Shared helpers of the agent end-to-end tests (sourced, not a test itself).
#
#   agent_init [REDIS ARGS]       harness_init + Redis; DEMO, NOTIFY_LISTEN, NS=t, HOST=h1
#   demo_start NAME ARGS...       coord-demo-app on a free port (DEMO_PORT), waits until it answers
#   agent_start NAME CONFIG       coord-agent --config CONFIG (log in NAME.log)
#   ihget ID FIELD                a field of the instance hash
#   wait_state ID STATE SECS      until the instance hash shows STATE

. "$COORD_HARNESS"

DEMO="$top_builddir/deploy/demo/coord-demo-app"
NOTIFY_LISTEN="$top_builddir/tests/util/notify-listen"
NS=t
HOST=h1

agent_init() {
        harness_init
        harness_need redis-cli curl
        [ -x "$COORD_AGENT" ] || fail "coord-agent not built: $COORD_AGENT"
        [ -x "$DEMO" ] || fail "demo app not built: $DEMO"
        harness_start_redis redis "$@"
}

# demo_start NAME ARGS...: coord-demo-app on a free port (retried when the
# port is taken meanwhile); sets DEMO_PORT.
demo_start() {
        name=$1
        shift
        for _attempt in 1 2 3 4 5; do
                DEMO_PORT=$(harness_free_port)
                harness_spawn "$name" "$DEMO" --port "$DEMO_PORT" "$@"
                if harness_wait_for 10 sh -c "curl -fsS http://127.0.0.1:$DEMO_PORT/health/live || ! kill -0 \$(cat '$COORD_TEST_DIR/$name.pid')"; then
                        curl -fsS "http://127.0.0.1:$DEMO_PORT/health/live" >/dev/null 2>&1 && return 0
                fi
                note "demo app $name could not use port $DEMO_PORT, retrying"
        done
        fail "demo app $name did not start"
}

agent_start() {
        harness_spawn "$1" "$COORD_AGENT" --config "$2"
}

rcli() {
        harness_redis_cli "$@"
}

# last_seen_after ID MS: the instance heartbeated after MS.
last_seen_after() {
        [ "$(ihget "$1" last_seen)" -gt "$2" ]
}

ihget() {
        rcli HGET "coord:{$NS}:instance:$1" "$2"
}

state_is() {
        [ "$(ihget "$1" state)" = "$2" ]
}

wait_state() {
        harness_wait_for "$3" state_is "$1" "$2" ||
                fail "instance $1: state '$(ihget "$1" state)', expected '$2' within $3 s"
}

# queue_command JSON: LPUSH onto this host's queue and wake the agent.
queue_command() {
        rcli LPUSH "coord:{$NS}:agent:$HOST:commands" "$1" >/dev/null
        rcli PUBLISH "coord:{$NS}:agent:$HOST:wake" x >/dev/null
}

command_field() {
        rcli HGET "coord:{$NS}:agent:$HOST:result:$1" "$2"
}

command_finished() {
        [ -n "$(command_field "$1" finished_at)" ]
}

wait_command() {
        harness_wait_for "$2" command_finished "$1" || fail "command $1 has no result within $2 s"
}
