#!/bin/sh
# Leader failure during a rollout.  kill -9 of the leading coordinatord: the
# standby takes over and completes the deployment; no instance is deployed
# twice or skipped (the hook log proves it).  Then SIGSTOP of the leader past
# its lease and SIGCONT while the new leader drives the rollout: the resumed
# one writes nothing (its writes are fenced by the leader lock's token and
# term), the rollout completes exactly once.
set -eu
. "$top_srcdir/tests/e2e/rollout-lib.sh"
rollout_init
LEASE=2s

fleet_start 4
for i in 1 2 3 4; do echo 0.6 >"$COORD_TEST_DIR/web-$i/deploy-sleep"; done
coord_start coord-a
coord_start coord-b
harness_wait_for 10 sh -c '[ "$(api GET /v1/leader | jq -r .leader)" != null ]' || fail "no leader"
sampler_start

leader_pid() {
        l=$(leader_name)
        cat "$COORD_TEST_DIR/$l.pid"
}

deploy_detached() {
        ctl --output json deploy web "$1" --max-parallel 1 --min-healthy-time 300ms --detach |
                tail -n 1 | jq -r .id
}

# ---- kill -9 mid-rollout ----
id=$(deploy_detached 2.0)
[ -n "$id" ] && [ "$id" != null ] || fail "no deployment id"
harness_wait_for 20 sh -c "[ \$(grep -c ' deploy web-2 2.0' '$HOOKS_LOG') -ge 1 ]" || fail "the rollout did not reach web-2"
first=$(leader_name)
note "killing the leader $first (pid $(leader_pid)) during web-2's deploy"
kill -KILL "$(leader_pid)"
wait_dep "$id" succeeded 40
second=$(leader_name)
[ "$second" != "$first" ] || fail "the leader is still $first"
for i in 1 2 3 4; do
        [ "$(hook_count deploy "web-$i" 2.0)" = 1 ] || fail "web-$i: $(hook_count deploy "web-$i" 2.0) deploy hooks for 2.0, want 1"
        [ "$(hook_count drain "web-$i")" = 1 ] || fail "web-$i drained $(hook_count drain "web-$i") times"
        [ "$(hook_count undrain "web-$i")" = 1 ] || fail "web-$i undrained $(hook_count undrain "web-$i") times"
done
harness_wait_for 5 fleet_all 2.0 || fail "not all on 2.0: $(instances_summary)"
note "$second completed the rollout; every instance deployed exactly once"

# ---- SIGSTOP past the lease, SIGCONT mid-rollout ----
coord_start coord-c
: >"$HOOKS_LOG"
for i in 1 2 3 4; do echo 1.2 >"$COORD_TEST_DIR/web-$i/deploy-sleep"; done
id=$(deploy_detached 3.0)
harness_wait_for 20 sh -c "[ \$(grep -c ' deploy web-1 3.0' '$HOOKS_LOG') -ge 1 ]" || fail "the rollout did not start"
stopped=$(leader_name)
spid=$(cat "$COORD_TEST_DIR/$stopped.pid")
term_before=$(api GET /v1/leader | jq -r .term)
note "stopping the leader $stopped (pid $spid, term $term_before) with SIGSTOP"
kill -STOP "$spid"
other=$URL_COORD_C
[ "$stopped" != coord-c ] || other=$URL_COORD_B
harness_wait_for 15 sh -c "l=\$(curl -s -m 1 -H 'Authorization: Bearer $TOKEN_DEPLOY' $other/v1/leader | jq -r .leader); [ -n \"\$l\" ] && [ \"\$l\" != null ] && [ \"\$l\" != '$stopped' ]" ||
        { kill -CONT "$spid"; fail "no new leader while $stopped is stopped"; }
# Let the new leader make progress, then wake the old one while the rollout is still running.
lines=$(wc -l <"$HOOKS_LOG")
harness_wait_for 20 sh -c "[ \$(wc -l <'$HOOKS_LOG') -gt $lines ]" || { kill -CONT "$spid"; fail "no progress under the new leader"; }
# Ask the live coordinatord: a request to the stopped one would wait for its timeout.
st=$(curl -s -m 2 -H "Authorization: Bearer $TOKEN_DEPLOY" "$other/v1/deployments/$id" | jq -r .state)
[ "$st" != succeeded ] || { kill -CONT "$spid"; fail "the rollout finished before SIGCONT: the test proves nothing"; }
kill -CONT "$spid"
note "resumed $stopped"
wait_dep "$id" succeeded 40
wait_passes 3
for i in 1 2 3 4; do
        [ "$(hook_count deploy "web-$i" 3.0)" = 1 ] || fail "web-$i: $(hook_count deploy "web-$i" 3.0) deploy hooks for 3.0, want 1"
        [ "$(hook_count drain "web-$i")" = 1 ] || fail "web-$i drained $(hook_count drain "web-$i") times"
done
# The record's last write carries the new term; the resumed one is not leading.
rec_term=$(rcli HGET "coord:{$NS}:deployment:$id" term)
[ "$rec_term" -gt "$term_before" ] || fail "the record was last written in term $rec_term, not after $term_before"
kill -0 "$spid" || fail "$stopped died"
grep -q "Stepping down" "$COORD_TEST_DIR/$stopped.log" || fail "$stopped did not notice it lost the lease"
if grep "Deployment $id" "$COORD_TEST_DIR/$stopped.log" | grep -q -- "->"; then
        # Any transition it logged must come from before the stop (it never wrote after SIGCONT).
        note "transitions logged by $stopped: $(grep "Deployment $id" "$COORD_TEST_DIR/$stopped.log" | tr '\n' ';')"
fi
sampler_stop
sampler_check 1
fenced=$(grep -c "step not written: FENCED" "$COORD_TEST_DIR/$stopped.log" || true)
note "writes refused by the fence on $stopped: $fenced"
