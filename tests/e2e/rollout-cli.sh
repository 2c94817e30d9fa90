#!/bin/sh
# coordctl deploy as people and pipelines see it.  Under a real terminal (tmux)
# the live view redraws in place: the final screen shows the progress bar, the
# state and exactly one line per instance, and the final state.  Piped, the same
# command prints plain lines (no escape sequences), one per event.  Ctrl-C stops
# following, not the deployment.
set -eu
. "$top_srcdir/tests/e2e/rollout-lib.sh"
rollout_init
harness_need tmux

fleet_start 3
coord_start coord-a

# ---- a terminal ----
sock="$COORD_TEST_DIR/tmux.sock"
{
        echo '#!/bin/sh'
        echo "\"$COORDCTL\" --url \"$URLS\" --token \"$TOKEN_DEPLOY\" deploy web 2.0 --no-migrate --min-healthy-time 300ms"
        echo 'echo "EXIT=$?"'
        echo 'sleep 60'
} >"$COORD_TEST_DIR/bin/tty-deploy"
chmod +x "$COORD_TEST_DIR/bin/tty-deploy"
tmux -S "$sock" new-session -d -x 100 -y 30 "$COORD_TEST_DIR/bin/tty-deploy"
harness_track "$(tmux -S "$sock" display-message -p '#{pid}')"
screen() { tmux -S "$sock" capture-pane -p -t 0; }
harness_wait_for 30 sh -c "tmux -S '$sock' capture-pane -p -t 0 | grep -q 'EXIT='" ||
        { screen >&2; fail "coordctl deploy did not finish under tmux"; }
screen >"$COORD_TEST_DIR/screen"
tmux -S "$sock" kill-server 2>/dev/null || true
sed 's/^/  | /' "$COORD_TEST_DIR/screen"
grep -q 'EXIT=0' "$COORD_TEST_DIR/screen" || fail "exit code under a terminal: $(grep EXIT= "$COORD_TEST_DIR/screen")"
grep -q '3/3' "$COORD_TEST_DIR/screen" || fail "the progress bar does not say 3/3"
grep -q 'succeeded' "$COORD_TEST_DIR/screen" || fail "the final state is not on the screen"
for i in 1 2 3; do
        n=$(grep -c "^ *web-$i  *done" "$COORD_TEST_DIR/screen" || true)
        [ "$n" = 1 ] || fail "web-$i appears $n times as done on the final screen (the view must redraw in place)"
done

# ---- a pipe ----
set +e
ctl deploy web 3.0 --no-migrate --min-healthy-time 300ms >"$COORD_TEST_DIR/plain.out" 2>&1
rc=$?
set -e
sed 's/^/  | /' "$COORD_TEST_DIR/plain.out"
[ "$rc" = 0 ] || fail "piped deploy exited $rc"
if grep -q "$(printf '\033')" "$COORD_TEST_DIR/plain.out"; then fail "escape sequences in piped output"; fi
for i in 1 2 3; do
        grep -q "web-$i updating 2.0 -> 3.0" "$COORD_TEST_DIR/plain.out" || fail "no plain line for web-$i updating"
done
grep -q "succeeded" "$COORD_TEST_DIR/plain.out" || fail "no final state in the piped output"

# ---- Ctrl-C stops following, not the deployment ----
echo 2 >"$COORD_TEST_DIR/web-1/deploy-sleep"
"$COORDCTL" --url "$URLS" --token "$TOKEN_DEPLOY" deploy web 4.0 --no-migrate --min-healthy-time 300ms \
        >"$COORD_TEST_DIR/int.out" 2>&1 &
cpid=$!
harness_wait_for 10 grep -q "web-1 draining" "$COORD_TEST_DIR/int.out" || fail "deploy did not start following"
kill -INT "$cpid"
set +e
wait "$cpid"
rc=$?
set -e
[ "$rc" = 130 ] || fail "Ctrl-C: exit $rc, want 130"
grep -q "continues" "$COORD_TEST_DIR/int.out" || fail "Ctrl-C did not say the deployment continues"
id=$(api GET "/v1/deployments?service=web&limit=1" | jq -r '.deployments[0].id')
wait_dep "$id" succeeded 30
