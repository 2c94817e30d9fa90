# lib/sdevent_redis.c: hiredis async on sd-event against a real redis, plus a
# second redis the test kills to see the disconnect callback.  The checks are in
# tests/unit/test-sdevent_redis.c.
. "$COORD_HARNESS"
harness_init

test_bin="$top_builddir/tests/unit/test-sdevent_redis"
[ -x "$test_bin" ] || fail "$test_bin not built"

harness_start_redis victim
victim_port=$REDIS_PORT
victim_pid=$(cat "$COORD_TEST_DIR/victim.pid")
harness_start_redis

# TEST_WRAPPER="valgrind --leak-check=full --error-exitcode=99" (with CK_FORK=no) checks leaks.
VICTIM_PORT=$victim_port VICTIM_PID=$victim_pid ${TEST_WRAPPER:-} "$test_bin" || fail "test-sdevent_redis failed"

# The victim really died (the test killed it), the main redis is still fine.
harness_wait_gone 3 "$victim_pid" || fail "victim redis $victim_pid still running"
[ "$(harness_redis_cli ping)" = PONG ] || fail "redis does not answer after the test"
echo "sdevent-redis: ok"
