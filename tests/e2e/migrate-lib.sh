# Helpers for the coordctl migrate end-to-end tests (sourced; bench/migrate.sh
# uses start_pgbouncer too).
. "$COORD_HARNESS"

# migrate_init [--redis] [--no-coord-redis]: harness_init and PostgreSQL
# (DATABASE_URL), with --redis a Redis too (REDIS_URL), with --no-coord-redis
# COORD_REDIS unset; T is the test directory, D ($T/m) for the migration
# files, O ($T/out) for coordctl's output.
migrate_init() {
        harness_init
        harness_start_postgres
        for m_opt in "$@"; do
                case $m_opt in
                --redis) harness_start_redis ;;
                --no-coord-redis) unset COORD_REDIS || true ;;
                *) fail "migrate_init: unknown option '$m_opt'" ;;
                esac
        done
        T=$COORD_TEST_DIR
        D=$T/m
        O=$T/out
}

# mig DIR NAME CONTENT: write one migration file.
mig() {
        mkdir -p "$1"
        printf '%s\n' "$3" >"$1/$2"
}

# run_migrate OUTFILE ARGS...: run coordctl migrate, stdout+stderr to OUTFILE, echo the exit code.
run_migrate() {
        out=$1
        shift
        set +e
        "$COORDCTL" migrate "$@" >"$out" 2>&1
        rc=$?
        set -e
        echo "$rc"
}

# expect_rc WANT OUTFILE ARGS...: run and check the exit code, failing with the output.
expect_rc() {
        want=$1
        out=$2
        shift 2
        got=$(run_migrate "$out" "$@")
        if [ "$got" != "$want" ]; then
                cat "$out" >&2
                fail "coordctl migrate $*: exit $got, want $want"
        fi
}

# expect_in OUTFILE TEXT: the output contains TEXT (fixed string).
expect_in() {
        grep -qF -- "$2" "$1" || { cat "$1" >&2; fail "output lacks '$2'"; }
}

expect_not_in() {
        ! grep -qF -- "$2" "$1" || { cat "$1" >&2; fail "output contains '$2'"; }
}

# q SQL: one value from the test database.
q() {
        harness_psql -c "$1"
}

# active QUERY_PREFIX: a session of the test database is running a statement
# that starts with QUERY_PREFIX.
active() {
        psql -XAtq "$DATABASE_URL" -c "SELECT 1 FROM pg_stat_activity WHERE state = 'active' AND query LIKE '$1%'" | grep -q 1
}

# runner_sleeping NAME SECS VERSION ARGS...: runner NAME (harness_spawn of
# coordctl migrate ARGS) is inside V<VERSION>'s "SELECT pg_sleep(SECS)".
runner_sleeping() {
        r_name=$1 r_secs=$2 r_version=$3
        shift 3
        harness_spawn "$r_name" "$COORDCTL" migrate "$@"
        harness_wait_for 15 active "SELECT pg_sleep($r_secs)" || fail "V$r_version did not start"
}

# start_pgbouncer POOL_SIZE [USER...]: PgBouncer on a free port in front of
# $PG_PORT (trust for postgres and each USER, pool_mode transaction, POOL_SIZE
# server sessions per pool, log in $COORD_TEST_DIR/pgbouncer.log), as the
# postgres user when root; its pid is tracked, so the harness stops it.  Sets
# BOUNCER_PORT.
start_pgbouncer() {
        b_pool=$1
        shift
        B=$COORD_TEST_DIR/pgbouncer
        mkdir -p "$B"
        for u in postgres "$@"; do
                printf '"%s" ""\n' "$u"
        done >"$B/userlist.txt"
        for _attempt in 1 2 3 4 5; do
                port=$(harness_free_port)
                cat >"$B/pgbouncer.ini" <<EOF
[databases]
* = host=127.0.0.1 port=$PG_PORT
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $B/userlist.txt
pool_mode = transaction
default_pool_size = $b_pool
max_client_conn = 100
ignore_startup_parameters = extra_float_digits
logfile = $COORD_TEST_DIR/pgbouncer.log
pidfile = $B/pgbouncer.pid
EOF
                : >"$COORD_TEST_DIR/pgbouncer.log"
                if [ "$(id -u)" -eq 0 ]; then
                        chown -R postgres "$B" "$COORD_TEST_DIR/pgbouncer.log"
                fi
                harness_as_pg pgbouncer "$B/pgbouncer.ini" >>"$COORD_TEST_DIR/pgbouncer.log" 2>&1 &
                harness_track $!
                if harness_wait_for 10 test -s "$B/pgbouncer.pid" &&
                        harness_track "$(cat "$B/pgbouncer.pid")" &&
                        harness_wait_for 10 psql -XAtq "postgresql://postgres@127.0.0.1:$port/postgres" -c "SELECT 1"; then
                        BOUNCER_PORT=$port
                        return 0
                fi
        done
        fail "pgbouncer did not start (see $COORD_TEST_DIR/pgbouncer.log)"
}

# The fencing scenario (migrate-fence.sh, migrate-pgbouncer.sh): a runner
# SIGSTOPped past its lease inside a migration's transaction.
#
# fence_stop_old VERSION ARGS...: runner "old" (coordctl migrate ARGS, the
# file V<VERSION> with a "SELECT pg_sleep(2)" in its transaction) is stopped
# while it sleeps there.
fence_stop_old() {
        f_version=$1
        shift
        harness_spawn old "$COORDCTL" migrate "$@"
        harness_wait_for 15 sh -c "psql -XAtq '$DATABASE_URL' -c \"SELECT 1 FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(2)%'\" | grep -q 1" ||
                fail "V$f_version did not start"
        kill -STOP "$PID_old"
        note "old runner stopped inside V$f_version's transaction"
}

# runner_exits_1 NAME WHAT: the runner NAME (harness_spawn) exits 1; its log
# to stderr (WHAT: how the message names it).
runner_exits_1() {
        eval "f_pid=\$PID_$1"
        harness_rc wait "$f_pid"
        cat "$COORD_TEST_DIR/$1.log" >&2
        [ "$rc" = 1 ] || fail "$2 exited $rc, want 1"
}

# fence_resume_old: runner "old" continues and exits 1 (its log to stderr).
fence_resume_old() {
        kill -CONT "$PID_old"
        runner_exits_1 old "old runner"
}

# fence_applied_once VERSION: the one row of V<VERSION>'s table "fenced" is
# there, and V<VERSION> is recorded once, by the newest holder.
fence_applied_once() {
        [ "$(q "SELECT count(*) FROM fenced")" = 1 ] || fail "fenced has $(q "SELECT count(*) FROM fenced") rows"
        [ "$(q "SELECT count(*) FROM coord_schema_history WHERE version = '$1'")" = 1 ] || fail "V$1 recorded more than once"
        [ "$(q "SELECT h.fencing_token = f.token FROM coord_schema_history h, coord_schema_fence f WHERE h.version = '$1'")" = t ] ||
                fail "V$1 was not recorded by the newest holder"
}
