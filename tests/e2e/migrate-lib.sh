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
