#!/bin/sh
# A new version that never turns healthy: the deployment fails in its first
# batch and reverts exactly the instances it changed, with the same batching,
# back to 1.0 and healthy; the post-deploy migration is never applied; coordctl
# deploy exits 1; never more than max_parallel (2) instances out of service.
# Then a failing pre-deploy migration fails a deployment before any instance
# is touched.
set -eu
. "$top_srcdir/tests/e2e/rollout-lib.sh"
rollout_init --pg

items_migrations
printf -- '-- coord:post-deploy\nalter table items drop column old_name;\n' >"$MIGRATIONS/V2__drop_old_name.sql"

# latest_deployment STATE: d, the newest deployment of web (JSON), in STATE.
latest_deployment() {
        id=$(api GET "/v1/deployments?service=web&limit=1" | jq -r '.deployments[0].id')
        d=$(dep_get "$id")
        [ "$(printf '%s\n' "$d" | jq -r .state)" = "$1" ] || fail "state $(printf '%s\n' "$d" | jq -r .state), want $1"
}

fleet_start 4 --unhealthy-version 2.0
coord_start coord-a
sampler_start

harness_rc ctl deploy web 2.0 --max-parallel 2 --min-healthy-time 300ms --healthy-deadline 2s \
        >"$COORD_TEST_DIR/deploy.out" 2>&1
sampler_stop
cat "$COORD_TEST_DIR/deploy.out" | sed 's/^/  | /'
[ "$rc" = 1 ] || fail "coordctl deploy exited $rc, want 1"
latest_deployment reverted
printf '%s\n' "$d" | jq -r .error | grep -q "healthy_deadline" || fail "error does not say why: $(printf '%s\n' "$d" | jq -r .error)"
grep -q "reverted" "$COORD_TEST_DIR/deploy.out" || fail "coordctl did not report the revert"

# Exactly the first batch was changed and reverted; the others never touched.
changed=$(awk '$2 == "deploy" && $4 == "2.0" { print $3 }' "$HOOKS_LOG" | sort -u | tr '\n' ' ')
[ "$changed" = "web-1 web-2 " ] || fail "changed instances: '$changed', want the first batch 'web-1 web-2 '"
for i in 1 2; do
        [ "$(hook_count deploy "web-$i" 2.0)" = 1 ] || fail "web-$i deployed to 2.0 $(hook_count deploy "web-$i" 2.0) times"
        [ "$(hook_count deploy "web-$i" 1.0)" = 1 ] || fail "web-$i reverted $(hook_count deploy "web-$i" 1.0) times"
done
for i in 3 4; do
        [ "$(hook_count drain "web-$i")" = 0 ] || fail "web-$i was drained"
done
printf '%s\n' "$d" | jq -e '[.instances[] | select(.id == "web-1" or .id == "web-2") | .state] == ["reverted", "reverted"]' >/dev/null ||
        fail "instances: $(printf '%s\n' "$d" | jq -c '[.instances[] | {id, state}]')"
harness_wait_for 5 fleet_all 1.0 || fail "not every instance back on 1.0 and healthy: $(instances_summary)"

# Expand ran once, contract never.
[ "$(awk '$2 == "migrate" { print $5 }' "$HOOKS_LOG" | tr '\n' ' ')" = "pre " ] || fail "migrate hooks: $(grep migrate "$HOOKS_LOG")"
harness_psql -c "select column_name from information_schema.columns where table_name = 'items'" | grep -q old_name ||
        fail "the post-deploy migration ran although the deployment failed"
sampler_check 2

# A failing pre-deploy migration: the deployment fails, no instance is touched.
printf 'alter table no_such_table add column x int;\n' >"$MIGRATIONS/V1_5__broken.sql"
: >"$HOOKS_LOG"
harness_rc ctl deploy web 2.1 --min-healthy-time 300ms >"$COORD_TEST_DIR/deploy2.out" 2>&1
cat "$COORD_TEST_DIR/deploy2.out" | sed 's/^/  | /'
[ "$rc" = 1 ] || fail "deploy with a failing migration exited $rc, want 1"
latest_deployment failed
printf '%s\n' "$d" | jq -r .error | grep -q "pre-deploy migration failed" || fail "error: $(printf '%s\n' "$d" | jq -r .error)"
printf '%s\n' "$d" | jq -r .migrations.pre.output | grep -q "V1_5__broken.sql" || fail "migration output does not name the file: $(printf '%s\n' "$d" | jq -c .migrations.pre)"
[ "$(grep -vc ' migrate ' "$HOOKS_LOG")" = 0 ] || fail "instances were touched: $(cat "$HOOKS_LOG")"
[ "$(api GET /v1/migrations/web | jq -r .state)" = failed ] || fail "GET /v1/migrations/web: $(api GET /v1/migrations/web)"
