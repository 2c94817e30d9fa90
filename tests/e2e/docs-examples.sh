#!/bin/sh
# The documentation cannot rot: every fenced block marked ```sh runnable in
# README.md and docs/*.md is run, in order, against a real fleet started by
# `deploy/quickstart --keep` (the same fleet the README's tour uses), and must
# exit 0.  The Prometheus alert rules in docs/monitoring.md are checked with
# promtool.  Blocks not marked runnable show hosts that do not exist here
# (coord.internal, /opt/web); they are illustrations.
set -eu
. "$COORD_HARNESS"
harness_init
harness_need python3 curl jq promtool

blocks="$COORD_TEST_DIR/blocks"
mkdir -p "$blocks"
# Extract: one file per block, named NNN, with its origin on the first line.
n=0
for md in "$top_srcdir/README.md" "$top_srcdir"/docs/*.md; do
        awk -v out="$blocks" -v src="${md#$top_srcdir/}" -v start="$n" '
                /^```sh runnable/ { inblock = 1; k++; f = sprintf("%s/%03d", out, start + k); print "# " src ":" NR > f; next }
                /^```/ && inblock { inblock = 0; close(f); next }
                inblock { print > f }
                END { print start + k > (out "/count") }' "$md"
        n=$(cat "$blocks/count")
done
rm -f "$blocks/count"
[ "$n" -gt 0 ] || fail "no runnable blocks found in README.md and docs/"
note "$n runnable blocks"

# The alert rules.
awk '/^# \/etc\/prometheus\/rules\/coord.yml/ { f = 1; next } f && /^```/ { f = 0 } f' \
        "$top_srcdir/docs/monitoring.md" >"$COORD_TEST_DIR/rules.yml"
promtool check rules "$COORD_TEST_DIR/rules.yml" >"$COORD_TEST_DIR/promtool.out" 2>&1 ||
        { cat "$COORD_TEST_DIR/promtool.out" >&2; fail "docs/monitoring.md: the alert rules do not pass promtool"; }

# A fleet, as the README's tour starts it.
env_file="$COORD_TEST_DIR/quickstart.env"
COORD_QUICKSTART_ENV="$env_file" "$top_srcdir/deploy/quickstart" --keep --no-build --build-dir "$top_builddir" \
        >"$COORD_TEST_DIR/quickstart.out" 2>&1 ||
        { tail -n 40 "$COORD_TEST_DIR/quickstart.out" >&2; fail "deploy/quickstart --keep failed"; }
[ -f "$env_file" ] || fail "quickstart --keep wrote no environment file"
stop_fleet() {
        stop=$(sed -n 's/^QUICKSTART_STOP=//p' "$env_file" | tr -d "'\"")
        [ -n "$stop" ] && [ -x "$stop" ] && "$stop" >/dev/null 2>&1 || true
}
trap 'stop_fleet; harness_cleanup' EXIT

cd "$top_srcdir"
for f in $(ls "$blocks" | sort); do
        origin=$(head -n 1 "$blocks/$f" | sed 's/^# //')
        if ! COORD_QUICKSTART_ENV="$env_file" bash -euo pipefail -c ". '$env_file'; $(tail -n +2 "$blocks/$f")" \
                >"$COORD_TEST_DIR/block-$f.out" 2>&1; then
                sed 's/^/  | /' "$blocks/$f" >&2
                echo "----- output -----" >&2
                tail -n 30 "$COORD_TEST_DIR/block-$f.out" >&2
                fail "the runnable block at $origin failed"
        fi
        note "ok: $origin"
done
