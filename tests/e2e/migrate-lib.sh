# Helpers for the coordctl migrate end-to-end tests (sourced).
. "$COORD_HARNESS"

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
        set +e
        wait "$f_pid"
        f_rc=$?
        set -e
        cat "$COORD_TEST_DIR/$1.log" >&2
        [ "$f_rc" = 1 ] || fail "$2 exited $f_rc, want 1"
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
