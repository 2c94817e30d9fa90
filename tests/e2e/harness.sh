# The harness itself: servers start, answer, and leave nothing behind.
. "$COORD_HARNESS"

if [ "${1:-}" != "--inner" ]; then
        # Run the real test in a child and check afterwards that nothing survived.
        out=$(mktemp)
        set +e
        "$SHELL" "$0" --inner >"$out" 2>&1
        rc=$?
        set -e
        cat "$out"
        dir=$(sed -n 's/^DIR=//p' "$out")
        rm -f "$out"
        [ "$rc" -eq 0 ] || fail "inner harness test failed ($rc)"
        [ -n "$dir" ] || fail "inner test did not report its directory"
        [ ! -e "$dir" ] || fail "temporary directory $dir left behind"
        if pgrep -f -- "$dir" >/dev/null; then
                pgrep -af -- "$dir" >&2
                fail "processes left behind from $dir"
        fi
        if pgrep -fx "sleep 601" >/dev/null; then
                pkill -fx "sleep 601"
                fail "an untracked grandchild was left behind"
        fi
        # A failing test cleans up too.
        set +e
        "$SHELL" -c '. "$COORD_HARNESS"; harness_init; echo "DIR=$COORD_TEST_DIR"; harness_start_redis; fail "deliberate"' >"$out" 2>&1
        rc=$?
        set -e
        dir=$(sed -n 's/^DIR=//p' "$out")
        rm -f "$out"
        [ "$rc" -ne 0 ] || fail "deliberate failure did not fail"
        [ ! -e "$dir" ] || fail "temporary directory $dir left behind after a failure"
        ! pgrep -f -- "$dir" >/dev/null || fail "processes left behind after a failure"
        # And so does an interrupted one.
        "$SHELL" -c '. "$COORD_HARNESS"; harness_init; echo "DIR=$COORD_TEST_DIR"; harness_start_redis; kill -INT $$; sleep 30' >"$out" 2>&1 || true
        dir=$(sed -n 's/^DIR=//p' "$out")
        rm -f "$out"
        [ ! -e "$dir" ] || fail "temporary directory $dir left behind after SIGINT"
        ! pgrep -f -- "$dir" >/dev/null || fail "processes left behind after SIGINT"
        echo "harness: ok"
        exit 0
fi

harness_init
echo "DIR=$COORD_TEST_DIR"
harness_start_redis
harness_start_postgres
[ "$(harness_redis_cli ping)" = PONG ] || fail "redis does not answer"
[ "$(harness_psql -c 'select 40+2')" = 42 ] || fail "postgres does not answer"
harness_start_redis second
[ "$REDIS_PORT" = "$SECOND_PORT" ] || fail "named redis port not exported"
harness_spawn sleeper sleep 600
# A grandchild that names no test path (like an agent's hook) and was not tracked.
sh -c 'sleep 601 &' 
harness_restart_redis second
[ "$(redis-cli -p "$SECOND_PORT" ping)" = PONG ] || fail "restarted redis does not answer"
