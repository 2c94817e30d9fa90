# The end-to-end test harness.  Source it from a test script:
#
#   . "$COORD_HARNESS"
#   harness_init                  # temp dir, cleanup trap (EXIT, INT, TERM, HUP)
#   harness_start_redis           # REDIS_PORT, REDIS_URL
#   harness_start_postgres        # PG_PORT, DATABASE_URL
#   harness_spawn NAME CMD...     # background process, tracked and killed at cleanup
#   harness_wait_for 10 CMD...    # poll CMD until it succeeds (bounded), no blind sleeps
#   harness_expect [-F] CODE PATTERN CMD...  # CMD exits CODE, its stderr matches PATTERN
#   harness_rc CMD...             # run CMD despite set -e; its exit status in rc
#   harness_quiet_period SECS WHY # a bounded wait for a check that something does NOT happen
#   harness_serve_requests ...    # act on the redis for a check program (unit/test-request.h)
#   harness_lock_section          # the critical section of the lock tests,
#   harness_lock_holders N ...    # N concurrent holders running it, and
#   harness_lock_verify N         # the verdict: no overlap, N increasing tokens
#
# Servers run on free loopback ports inside a fresh temporary directory; every
# process the harness started is stopped and the directory removed on exit,
# failure or signal.  A missing server binary is a loud failure, never a skip.
# Scripts run with `set -eu`; call `fail MESSAGE` to fail with context.

set -eu

HARNESS_PIDS=""
HARNESS_PG_DATA=""
COORD_TEST_DIR=""

fail() {
        echo "FAIL: $*" >&2
        exit 1
}

note() {
        echo "# $*" >&2
}

harness_need() {
        for b in "$@"; do
                command -v "$b" >/dev/null 2>&1 || fail "required program '$b' is not installed (tests/run installs it)"
        done
}

harness_init() {
        COORD_TEST_DIR=$(mktemp -d "${TMPDIR:-/tmp}/coord-test.XXXXXXXX")
        chmod 755 "$COORD_TEST_DIR"
        export COORD_TEST_DIR
        trap harness_cleanup EXIT
        trap 'exit 130' INT
        trap 'exit 143' TERM
        trap 'exit 129' HUP
        # Tests never inherit a journal: logs go to stderr where the test can read them.
        unset JOURNAL_STREAM NOTIFY_SOCKET WATCHDOG_USEC WATCHDOG_PID CREDENTIALS_DIRECTORY || true
        export COORD_LOG_LEVEL="${COORD_LOG_LEVEL:-info}"
}

harness_cleanup() {
        rc=$?
        trap - EXIT INT TERM HUP
        set +e
        for p in $HARNESS_PIDS; do
                kill -CONT "$p" 2>/dev/null
                kill -TERM "$p" 2>/dev/null
        done
        for p in $HARNESS_PIDS; do
                for _ in $(seq 1 100); do
                        kill -0 "$p" 2>/dev/null || break
                        sleep 0.02
                done
                kill -KILL "$p" 2>/dev/null
        done
        if [ -n "$HARNESS_PG_DATA" ] && [ -f "$HARNESS_PG_DATA/postmaster.pid" ]; then
                harness_as_pg "$PG_BIN/pg_ctl" -D "$HARNESS_PG_DATA" -m immediate -w stop >/dev/null 2>&1
        fi
        if [ -n "$COORD_TEST_DIR" ] && [ -d "$COORD_TEST_DIR" ]; then
                # Safety net: anything still running from the test directory, by its
                # command line or by the COORD_TEST_DIR its environment inherited
                # (hooks and their children name no test path).
                pkill -KILL -f -- "$COORD_TEST_DIR" 2>/dev/null
                for e in $(grep -lzxF "COORD_TEST_DIR=$COORD_TEST_DIR" /proc/[0-9]*/environ 2>/dev/null); do
                        p=${e#/proc/}
                        p=${p%/environ}
                        [ "$p" = "$$" ] || kill -KILL "$p" 2>/dev/null
                done
                if [ "$rc" -ne 0 ] && [ -n "${HARNESS_KEEP_ON_FAILURE:-}" ]; then
                        echo "# test failed, kept $COORD_TEST_DIR" >&2
                else
                        if [ "$rc" -ne 0 ]; then
                                # Show server and daemon logs of a failed test.
                                for f in "$COORD_TEST_DIR"/*.log; do
                                        [ -f "$f" ] || continue
                                        echo "----- $f (last 40 lines) -----" >&2
                                        tail -n 40 "$f" >&2
                                done
                        fi
                        rm -rf "$COORD_TEST_DIR"
                fi
        fi
        exit "$rc"
}

# A free TCP port on 127.0.0.1 (random, checked; callers retry on a lost race).
harness_free_port() {
        while :; do
                port=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40000 ))
                if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
                        echo "$port"
                        return 0
                fi
        done
}

# harness_wait_for SECONDS CMD...: run CMD every 20 ms until it succeeds.
harness_wait_for() {
        limit=$1
        shift
        deadline=$(( $(date +%s%N) / 1000000 + limit * 1000 ))
        while ! "$@" >/dev/null 2>&1; do
                if [ $(( $(date +%s%N) / 1000000 )) -ge "$deadline" ]; then
                        return 1
                fi
                sleep 0.02
        done
}

# harness_quiet_period SECONDS WHY: wait SECONDS for nothing in particular.
# Only for a check that something does NOT happen where no later event can
# prove the earlier one was processed; WHY (not printed) says what it is for.
harness_quiet_period() {
        sleep "$1"
}

# harness_rc CMD...: run CMD without set -e stopping the test; its exit status
# in rc (for `harness_rc wait "$PID"`, CMD runs in this shell).
harness_rc() {
        set +e
        "$@"
        rc=$?
        set -e
}

harness_spawn() {
        name=$1
        shift
        "$@" >"$COORD_TEST_DIR/$name.log" 2>&1 &
        pid=$!
        HARNESS_PIDS="$HARNESS_PIDS $pid"
        eval "PID_$(echo "$name" | tr -c 'A-Za-z0-9\n' '_')=$pid"
        echo "$pid" >"$COORD_TEST_DIR/$name.pid"
}

# harness_alive PID: the process exists and is not a zombie (kill -0 succeeds on
# a zombie, which an unreaped child or an orphan under a non-reaping PID 1 is).
harness_alive() {
        st=$(ps -o stat= -p "$1" 2>/dev/null || true)
        [ -n "$st" ] && [ "${st#Z}" = "$st" ]
}

# harness_wait_gone SECONDS PID: wait until PID is gone (or a zombie); bounded.
harness_wait_gone() {
        n=$(( $1 * 50 ))
        while harness_alive "$2"; do
                n=$((n - 1))
                [ "$n" -gt 0 ] || return 1
                sleep 0.02
        done
}

harness_track() {
        HARNESS_PIDS="$HARNESS_PIDS $1"
}

# harness_spawn_port NAME URLPATH PROG [ARGS...]: harness_spawn NAME PROG --port
# PORT ARGS... on a free PORT until http://127.0.0.1:PORT/URLPATH answers
# (within 10 s), retried on another port up to 5 times (the port may be taken
# meanwhile); sets port.  After 5 failures it returns 0 all the same: the
# caller's wait for the service to turn healthy reports it.
harness_spawn_port() {
        p_name=$1 p_path=$2 p_prog=$3
        shift 3
        for _attempt in 1 2 3 4 5; do
                port=$(harness_free_port)
                harness_spawn "$p_name" "$p_prog" --port "$port" "$@"
                harness_wait_for 10 curl -fsS "http://127.0.0.1:$port/$p_path" && break
        done
        return 0
}

# redis-server ARGS... in the background, every argument @FREEPORT@ replaced
# by $1 (a second port: a TLS port must be picked again with each attempt too).
harness_redis_bg() {
        r_x=$1
        shift
        r_n=$#
        while [ "$r_n" -gt 0 ]; do
                r_a=$1
                shift
                [ "$r_a" = @FREEPORT@ ] && r_a=$r_x
                set -- "$@" "$r_a"
                r_n=$((r_n - 1))
        done
        redis-server "$@" &
}

# harness_start_redis [NAME] [EXTRA ARGS]: sets REDIS_PORT, REDIS_URL (and NAME_PORT).
# An EXTRA ARG @FREEPORT@ becomes another free port, new with each attempt, kept
# in HARNESS_FREEPORT (tls-lib.sh: --tls-port @FREEPORT@).
harness_start_redis() {
        name=${1:-redis}
        [ $# -gt 0 ] && shift
        harness_need redis-server redis-cli
        for _attempt in 1 2 3 4 5; do
                port=$(harness_free_port)
                HARNESS_FREEPORT=$(harness_free_port)
                mkdir -p "$COORD_TEST_DIR/$name"
                : >"$COORD_TEST_DIR/$name.log"
                harness_redis_bg "$HARNESS_FREEPORT" --port "$port" --bind 127.0.0.1 --dir "$COORD_TEST_DIR/$name" \
                        --save '' --appendonly no --daemonize no \
                        --logfile "$COORD_TEST_DIR/$name.log" "$@"
                pid=$!
                # Our own server must be the one listening: with tests running in
                # parallel another test's Redis may hold the port we picked (ours
                # then exits at once while a ping would still be answered).
                # A server that lost the race for a port exits at once: stop waiting then.
                harness_wait_for 10 sh -c "grep -q 'Ready to accept connections' '$COORD_TEST_DIR/$name.log' ||
                        ! kill -0 $pid 2>/dev/null" || true
                if grep -q "Ready to accept connections" "$COORD_TEST_DIR/$name.log" &&
                        kill -0 "$pid" 2>/dev/null && harness_wait_for 10 redis-cli -p "$port" ping; then
                        HARNESS_PIDS="$HARNESS_PIDS $pid"
                        echo "$pid" >"$COORD_TEST_DIR/$name.pid"
                        echo "$port" >"$COORD_TEST_DIR/$name.port"
                        REDIS_PORT=$port
                        REDIS_URL="redis://127.0.0.1:$port/0"
                        export REDIS_PORT REDIS_URL
                        eval "$(echo "$name" | tr a-z- A-Z_)_PORT=$port"
                        return 0
                fi
                kill -KILL "$pid" 2>/dev/null || true
        done
        fail "redis-server did not start (see $COORD_TEST_DIR/$name.log)"
}

# Stop (SIGKILL) and restart the redis NAME on the same port.
harness_kill_redis() {
        name=${1:-redis}
        pid=$(cat "$COORD_TEST_DIR/$name.pid")
        kill -KILL "$pid" 2>/dev/null || true
        harness_wait_for 5 sh -c "! kill -0 $pid 2>/dev/null" || true
}

harness_restart_redis() {
        name=${1:-redis}
        [ $# -gt 0 ] && shift
        port=$(cat "$COORD_TEST_DIR/$name.port")
        harness_kill_redis "$name"
        for _ in $(seq 1 50); do
                redis-server --port "$port" --bind 127.0.0.1 --dir "$COORD_TEST_DIR/$name" \
                        --save '' --appendonly no --daemonize no \
                        --logfile "$COORD_TEST_DIR/$name.log" "$@" &
                pid=$!
                if harness_wait_for 5 redis-cli -p "$port" ping; then
                        HARNESS_PIDS="$HARNESS_PIDS $pid"
                        echo "$pid" >"$COORD_TEST_DIR/$name.pid"
                        return 0
                fi
                kill -KILL "$pid" 2>/dev/null || true
                sleep 0.1
        done
        fail "redis-server did not restart on port $port"
}

# harness_sentinel_conf DIR SERVICE MASTER_PORT: the lines every test
# sentinel's config has: its directory DIR, its log DIR.log, and
# 127.0.0.1:MASTER_PORT monitored as SERVICE (quorum 1).
harness_sentinel_conf() {
        echo "bind 127.0.0.1"
        echo "daemonize no"
        echo "dir $1"
        echo "logfile $1.log"
        echo "sentinel monitor $2 127.0.0.1 $3 1"
        echo "sentinel down-after-milliseconds $2 5000"
}

# harness_start_sentinel [MASTER_PORT] [SERVICE] [MASTER_PASSWORD] [SENTINEL_PASSWORD]:
# a redis-sentinel on a free port monitoring 127.0.0.1:MASTER_PORT (default
# $REDIS_PORT) as SERVICE (default mymaster), quorum 1, itself requiring
# SENTINEL_PASSWORD when given; waits until it reports the master.  Sets
# SENTINEL_PORT and SENTINEL_URL ("127.0.0.1:PORT,serviceName=SERVICE").
harness_start_sentinel() {
        s_master=${1:-$REDIS_PORT}
        s_service=${2:-mymaster}
        s_pass=${3:-}
        s_own=${4:-}
        harness_need redis-sentinel redis-cli
        for _attempt in 1 2 3 4 5; do
                port=$(harness_free_port)
                s_dir="$COORD_TEST_DIR/sentinel-$port"
                mkdir -p "$s_dir"
                # Sentinel rewrites its config file: it must live in a writable place.
                {
                        echo "port $port"
                        harness_sentinel_conf "$s_dir" "$s_service" "$s_master"
                        if [ -n "$s_pass" ]; then
                                echo "sentinel auth-pass $s_service \"$s_pass\""
                        fi
                        if [ -n "$s_own" ]; then
                                echo "requirepass \"$s_own\""
                        fi
                } >"$s_dir/sentinel.conf"
                redis-sentinel "$s_dir/sentinel.conf" &
                pid=$!
                # Tracked at once: sentinel renames its process, so the cleanup's
                # pkill on the directory would not find it.
                HARNESS_PIDS="$HARNESS_PIDS $pid"
                if (
                        if [ -n "$s_own" ]; then
                                REDISCLI_AUTH=$s_own
                                export REDISCLI_AUTH
                        fi
                        harness_wait_for 10 sh -c \
                                "redis-cli -p $port sentinel get-master-addr-by-name $s_service | grep -qx $s_master"
                ); then
                        echo "$pid" >"$COORD_TEST_DIR/sentinel.pid"
                        SENTINEL_PORT=$port
                        SENTINEL_URL="127.0.0.1:$port,serviceName=$s_service"
                        export SENTINEL_PORT SENTINEL_URL
                        return 0
                fi
                kill -KILL "$pid" 2>/dev/null || true
        done
        fail "redis-sentinel did not start or report master $s_service (see $COORD_TEST_DIR/sentinel-*.log)"
}

harness_pg_bin() {
        for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
                if [ -x "$d/initdb" ] && [ -x "$d/postgres" ]; then
                        echo "$d"
                        return 0
                fi
        done
        if command -v initdb >/dev/null 2>&1; then
                dirname "$(command -v initdb)"
                return 0
        fi
        fail "PostgreSQL server binaries (initdb, postgres) not found (tests/run installs them)"
}

# Run a command as the postgres user when we are root (initdb refuses root).
harness_as_pg() {
        if [ "$(id -u)" -eq 0 ]; then
                runuser -u postgres -- "$@"
        else
                "$@"
        fi
}

# harness_start_postgres: sets PG_PORT, DATABASE_URL (superuser "postgres", trust auth).
harness_start_postgres() {
        PG_BIN=$(harness_pg_bin)
        harness_need psql pg_isready
        HARNESS_PG_DATA="$COORD_TEST_DIR/pg"
        mkdir -p "$HARNESS_PG_DATA"
        if [ "$(id -u)" -eq 0 ]; then
                id postgres >/dev/null 2>&1 || fail "user 'postgres' missing (install postgresql)"
                chown postgres "$HARNESS_PG_DATA"
                touch "$COORD_TEST_DIR/postgres.log"
                chown postgres "$COORD_TEST_DIR/postgres.log"
        fi
        harness_as_pg "$PG_BIN/initdb" -D "$HARNESS_PG_DATA" -U postgres --auth=trust \
                --no-sync -E UTF8 >"$COORD_TEST_DIR/initdb.out" 2>&1 ||
                { cat "$COORD_TEST_DIR/initdb.out" >&2; fail "initdb failed"; }
        for _attempt in 1 2 3 4 5; do
                port=$(harness_free_port)
                if harness_as_pg "$PG_BIN/pg_ctl" -D "$HARNESS_PG_DATA" -l "$COORD_TEST_DIR/postgres.log" -w -t 30 \
                        -o "-p $port -k $HARNESS_PG_DATA -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
                        start >/dev/null 2>&1; then
                        PG_PORT=$port
                        DATABASE_URL="postgresql://postgres@127.0.0.1:$port/postgres"
                        export PG_PORT DATABASE_URL
                        harness_wait_for 30 pg_isready -q -h 127.0.0.1 -p "$port" ||
                                fail "postgres on port $port not ready"
                        return 0
                fi
        done
        fail "postgres did not start (see $COORD_TEST_DIR/postgres.log)"
}

# psql against the test database, quiet, unaligned, tuples only.
harness_psql() {
        psql -X -q -A -t -v ON_ERROR_STOP=1 "$DATABASE_URL" "$@"
}

harness_redis_cli() {
        redis-cli -p "$REDIS_PORT" "$@"
}

# Milliseconds since the epoch.
now_ms() {
        echo $(( $(date +%s%N) / 1000000 ))
}

# harness_expect [-F] CODE PATTERN CMD...: CMD exits CODE and its stderr (in
# $COORD_TEST_DIR/err, stdout in .../out) matches PATTERN, a basic regular
# expression (with -F a fixed string); an empty PATTERN matches anything.
harness_expect() {
        e_grep=-q e_says="does not match"
        if [ "$1" = -F ]; then
                e_grep=-qF e_says="does not say"
                shift
        fi
        e_want=$1 e_pattern=$2
        shift 2
        set +e
        "$@" >"$COORD_TEST_DIR/out" 2>"$COORD_TEST_DIR/err"
        e_got=$?
        set -e
        [ "$e_got" -eq "$e_want" ] || { cat "$COORD_TEST_DIR/err" >&2; fail "'$*' exited $e_got, expected $e_want"; }
        [ -z "$e_pattern" ] || grep "$e_grep" -- "$e_pattern" "$COORD_TEST_DIR/err" ||
                { cat "$COORD_TEST_DIR/err" >&2; fail "'$*': stderr $e_says '$e_pattern'"; }
}

# harness_serve_requests CTL_DIR PID NAME START FAILOVER...: until the check
# program PID (NAME in messages) exits, serve the requests it writes to
# CTL_DIR/request (tests/unit/test-request.h) on the redis "redis": kill, start
# (runs START), stop (SIGSTOP), cont (SIGCONT), failover (runs FAILOVER...),
# answering each in CTL_DIR/ack; then fail unless PID exited 0.
harness_serve_requests() {
        r_ctl=$1 r_pid=$2 r_name=$3 r_start=$4
        shift 4
        while kill -0 "$r_pid" 2>/dev/null; do
                if [ -f "$r_ctl/request" ]; then
                        req=$(cat "$r_ctl/request")
                        rm -f "$r_ctl/request"
                        pid=$(cat "$COORD_TEST_DIR/redis.pid")
                        case "$req" in
                        kill) harness_kill_redis ;;
                        start) "$r_start" ;;
                        stop) kill -STOP "$pid" ;;
                        cont) kill -CONT "$pid" ;;
                        failover) "$@" ;;
                        *) fail "unknown request '$req' from the test" ;;
                        esac
                        note "$(date +%T.%N | cut -c1-12) served request: $req"
                        echo "$req" >"$r_ctl/ack.tmp"
                        mv "$r_ctl/ack.tmp" "$r_ctl/ack" # atomic: the test never reads half a file
                fi
                sleep 0.02
        done
        set +e
        wait "$r_pid"
        r_rc=$?
        set -e
        [ "$r_rc" -eq 0 ] || fail "$r_name failed ($r_rc)"
}

# harness_lock_section [CHECK]: write $COORD_TEST_DIR/critical.sh, the critical
# section of the lock tests (harness_lock_holders), run with D (the test
# directory) and REDIS_PORT exported: two independent "somebody else is
# inside" checks, noting an overlap in $D/overlaps, then its fencing token
# pushed to the Redis list "tokens"; CHECK, a line of shell, runs after that.
harness_lock_section() {
        {
                cat <<'EOS'
# Inside the lock: two independent "somebody else is inside" checks, one on
# the file system and one in Redis, then record our token.
set -u
mkdir "$D/inside" 2>/dev/null || echo "mkdir: overlap at token $COORD_FENCING_TOKEN" >>"$D/overlaps"
[ "$(redis-cli -p "$REDIS_PORT" setnx inside "$COORD_FENCING_TOKEN")" = 1 ] ||
        echo "setnx: overlap at token $COORD_FENCING_TOKEN" >>"$D/overlaps"
redis-cli -p "$REDIS_PORT" rpush tokens "$COORD_FENCING_TOKEN" >/dev/null
EOS
                [ -z "${1:-}" ] || printf '%s\n' "$1"
                cat <<'EOS'
sleep 0.02
redis-cli -p "$REDIS_PORT" del inside >/dev/null
rmdir "$D/inside"
EOS
        } >"$COORD_TEST_DIR/critical.sh"
}

# harness_lock_holders N WHAT URL...: N concurrent `coordctl lock mutex` (c1 to
# cN, lease 5s, waiting up to 60s) running the critical section, holder i
# connecting to the i-th URL (round robin); fail unless each exits 0 (WHAT: how
# the message names one).
harness_lock_holders() {
        l_n=$1 l_what=$2
        shift 2
        l_pids=""
        for i in $(seq 1 "$l_n"); do
                eval "l_url=\${$(( (i - 1) % $# + 1 ))}"
                harness_spawn "c$i" "$COORDCTL" lock mutex --redis "$l_url" --lease 5s --wait-timeout 60s -- \
                        sh "$COORD_TEST_DIR/critical.sh"
                l_pids="$l_pids $pid"
        done
        for p in $l_pids; do
                wait "$p" || fail "$l_what exited $? (see logs)"
        done
}

# harness_lock_verify N: after N holders of the lock "mutex" ran
# harness_lock_section: no overlap, N tokens, strictly increasing in
# critical-section order, and the lock gone.
harness_lock_verify() {
        [ ! -e "$COORD_TEST_DIR/overlaps" ] || { cat "$COORD_TEST_DIR/overlaps" >&2; fail "critical sections overlapped"; }
        n=$(harness_redis_cli llen tokens)
        [ "$n" -eq "$1" ] || fail "expected $1 tokens, got $n"
        prev=0
        for t in $(harness_redis_cli lrange tokens 0 -1); do
                [ "$t" -gt "$prev" ] ||
                        fail "fencing tokens not strictly increasing: $t after $prev ($(harness_redis_cli lrange tokens 0 -1 | tr '\n' ' '))"
                prev=$t
        done
        [ "$(harness_redis_cli exists 'coord:{default:lock:mutex}')" = 0 ] || fail "lock left behind after the last release"
}
