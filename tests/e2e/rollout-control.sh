#!/bin/sh
# Controlling deployments: 409 for a second active one, Idempotency-Key,
# pause (in-flight steps finish, nothing new starts), resume, cancel (no
# revert), revert on demand, Last-Event-ID resume, the progress deadline, and
# an agent killed mid-update (lost: reported, skipped, the rollout goes on).
set -eu
. "$top_srcdir/tests/e2e/rollout-lib.sh"
rollout_init

fleet_start 4
for i in 1 2 3 4; do echo 0.5 >"$COORD_TEST_DIR/web-$i/deploy-sleep"; done
coord_start coord-a
sampler_start
post() { api POST /v1/deployments -H 'Content-Type: application/json' "$@"; }
status_of() {
        for u in $(echo "$URLS" | tr , ' '); do
                curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $TOKEN_DEPLOY" \
                        -H 'Content-Type: application/json' "$@" "$u/v1/deployments"
                return 0
        done
}
body='{"service":"web","version":"2.0","migrate":false,"strategy":{"min_healthy_time":"300ms"}}'

# ---- Idempotency-Key and 409 ----
a=$(post -H 'Idempotency-Key: build-42' -d "$body" | jq -r .id)
b=$(post -H 'Idempotency-Key: build-42' -d "$body" | jq -r .id)
[ -n "$a" ] && [ "$a" = "$b" ] || fail "a retried POST with the same Idempotency-Key made a new deployment ($a, $b)"
[ "$(status_of -H 'Idempotency-Key: build-42' -d "$body")" = 201 ] || fail "retried POST is not 201"
[ "$(status_of -H 'Idempotency-Key: build-42' -d '{"service":"web","version":"9.9"}')" = 422 ] || fail "reused key with another version is not 422"
code=$(status_of -d "$body")
[ "$code" = 409 ] || fail "a second deployment while one is active: $code, want 409"
for u in $(echo "$URLS" | tr , ' '); do
        curl -s -X POST -H "Authorization: Bearer $TOKEN_DEPLOY" -H 'Content-Type: application/json' -d "$body" "$u/v1/deployments" |
                jq -r .error.message | grep -q "$a" || fail "409 does not name the active deployment $a"
done

# ---- pause: in-flight steps finish, nothing new starts ----
harness_wait_for 10 sh -c "grep -q ' deploy web-1 ' '$HOOKS_LOG'" || fail "the rollout did not start"
ctl pause "$a" >/dev/null || fail "coordctl pause failed"
wait_dep "$a" paused 10
harness_wait_for 10 sh -c "[ \"\$(curl -s -H 'Authorization: Bearer $TOKEN_DEPLOY' $URL_COORD_A/v1/deployments/$a | jq -r '[.instances[] | select(.state == \"draining\" or .state == \"updating\" or .state == \"verifying\")] | length')\" = 0 ]" ||
        fail "in-flight steps did not finish while paused: $(dep_get "$a" | jq -c '[.instances[] | {id, state}]')"
drains=$(hook_count drain)
wait_passes 5
[ "$(hook_count drain)" = "$drains" ] || fail "a new instance started while paused"
[ "$(dep_get "$a" | jq -r .progress_deadline_at)" = null ] || fail "the progress deadline runs while paused"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $TOKEN_DEPLOY" "$URL_COORD_A/v1/deployments/$a/pause")
[ "$code" = 409 ] || fail "pausing a paused deployment: $code, want 409"

# ---- resume, then cancel: no revert ----
ctl resume "$a" >/dev/null || fail "coordctl resume failed"
harness_wait_for 10 sh -c "[ \$(grep -c ' drain ' '$HOOKS_LOG') -gt $drains ]" || fail "resume did not start the next instance"
ctl cancel "$a" >/dev/null || fail "coordctl cancel failed"
wait_dep "$a" cancelled 10
done_before=$(hook_count deploy "" 2.0)
wait_passes 3
[ "$(hook_count deploy "" 1.0)" = 0 ] || fail "cancel reverted something"
set +e
ctl cancel "$a" >/dev/null 2>&1
rc=$?
set -e
[ "$rc" = 1 ] || fail "cancelling a cancelled deployment: exit $rc, want 1"

# ---- Last-Event-ID ----
all=$(curl -sN -m 10 -H "Authorization: Bearer $TOKEN_DEPLOY" "$URL_COORD_A/v1/deployments/$a/events" | sed -n 's/^id: //p' | tr '\n' ' ')
n=$(echo "$all" | wc -w)
[ "$n" -gt 5 ] || fail "only $n events"
rest=$(curl -sN -m 10 -H "Authorization: Bearer $TOKEN_DEPLOY" -H 'Last-Event-ID: 3' "$URL_COORD_A/v1/deployments/$a/events" | sed -n 's/^id: //p' | tr '\n' ' ')
[ "$rest" = "$(seq 4 "$n" | tr '\n' ' ')" ] || fail "Last-Event-ID 3 gave '$rest', want 4..$n"

# ---- revert on demand: every instance it changed goes back ----
ctl revert "$a" >/dev/null || fail "coordctl revert failed"
wait_dep "$a" reverted 30
harness_wait_for 5 fleet_all 1.0 || fail "not all back on 1.0: $(instances_summary)"
[ "$(hook_count deploy "" 1.0)" = "$done_before" ] || fail "reverted $(hook_count deploy "" 1.0) instances, changed $done_before"

# ---- the progress deadline ----
echo 6 >"$COORD_TEST_DIR/web-1/deploy-sleep"
set +e
ctl deploy web 2.0 --no-migrate --no-auto-revert --progress-deadline 2s --min-healthy-time 300ms \
        >"$COORD_TEST_DIR/deadline.out" 2>&1
rc=$?
set -e
[ "$rc" = 1 ] || { cat "$COORD_TEST_DIR/deadline.out" >&2; fail "progress deadline: exit $rc, want 1"; }
id=$(api GET "/v1/deployments?service=web&limit=1" | jq -r '.deployments[0].id')
dep_get "$id" | jq -r .error | grep -q "progress_deadline 2s" || fail "error: $(dep_get "$id" | jq -r .error)"
echo 0.5 >"$COORD_TEST_DIR/web-1/deploy-sleep"
harness_wait_for 15 sh -c "[ \"\$(redis-cli -p $REDIS_PORT HGET 'coord:{$NS}:instance:web-1' version)\" = 2.0 ]" || true
ctl revert "$id" >/dev/null 2>&1 || true
wait_dep "$id" reverted 30
harness_wait_for 5 fleet_all 1.0 || fail "not all back on 1.0: $(instances_summary)"

# ---- an agent killed mid-update ----
echo 3 >"$COORD_TEST_DIR/web-2/deploy-sleep"
: >"$HOOKS_LOG"
id=$(ctl --output json deploy web 3.0 --no-migrate --max-parallel 2 --min-healthy-time 300ms --detach | tail -n 1 | jq -r .id)
harness_wait_for 10 sh -c "grep -q ' deploy web-2 3.0' '$HOOKS_LOG'" || fail "web-2 never started updating"
kill -KILL "$(cat "$COORD_TEST_DIR/agent-2.pid")"
note "killed agent-2 while web-2 is updating"
wait_dep "$id" succeeded 30
d=$(dep_get "$id")
[ "$(printf '%s\n' "$d" | jq -r .progress.lost)" = 1 ] || fail "progress: $(printf '%s\n' "$d" | jq -c .progress)"
printf '%s\n' "$d" | jq -e '.instances[] | select(.id == "web-2") | .lost and (.error | test("lost"))' >/dev/null ||
        fail "web-2 not reported lost: $(printf '%s\n' "$d" | jq -c '.instances[] | select(.id == "web-2")')"
for i in 1 3 4; do
        [ "$(hook_count deploy "web-$i" 3.0)" = 1 ] || fail "web-$i not deployed once"
done
sampler_stop
sampler_check 2
