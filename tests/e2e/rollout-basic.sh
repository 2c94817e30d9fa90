#!/bin/sh
# A rolling deployment end to end: two coordinatords, three agents with demo
# apps, Redis and PostgreSQL.  1.0 -> 2.0 with a pre-deploy ("expand") and a
# post-deploy ("contract") migration: it succeeds, each migration is applied
# once, the post-deploy one only after the third instance is done, every
# instance runs 2.0, the event stream is complete and ordered (served by the
# standby too), and never more than max_parallel instances are out of service.
set -eu
. "$top_srcdir/tests/e2e/rollout-lib.sh"
rollout_init --pg

items_migrations
printf 'alter table items add column name text;\n' >"$MIGRATIONS/V2__items_name.sql"
printf -- '-- coord:post-deploy\nalter table items drop column old_name;\n' >"$MIGRATIONS/V3__drop_old_name.sql"

fleet_start 3
coord_start coord-a
coord_start coord-b
sampler_start

harness_rc ctl --output json deploy web 2.0 --max-parallel 1 --min-healthy-time 300ms --healthy-deadline 20s \
        >"$COORD_TEST_DIR/deploy.out" 2>"$COORD_TEST_DIR/deploy.err"
sampler_stop
[ "$rc" = 0 ] || { cat "$COORD_TEST_DIR/deploy.err" "$COORD_TEST_DIR/deploy.out" >&2; fail "coordctl deploy exited $rc, want 0"; }
id=$(tail -n 1 "$COORD_TEST_DIR/deploy.out" | jq -r .id)
[ "$(tail -n 1 "$COORD_TEST_DIR/deploy.out" | jq -r .state)" = succeeded ] || fail "final line is not the succeeded deployment"
note "deployment $id succeeded"

# Every instance on 2.0 and healthy, each deployed exactly once.
for i in 1 2 3; do
        [ "$(rcli HGET "coord:{$NS}:instance:web-$i" version)" = 2.0 ] || fail "web-$i is not on 2.0"
        [ "$(hook_count deploy "web-$i" 2.0)" = 1 ] || fail "web-$i: $(hook_count deploy "web-$i" 2.0) deploy hooks, want 1"
        [ "$(hook_count drain "web-$i")" = 1 ] || fail "web-$i drained $(hook_count drain "web-$i") times"
        [ "$(hook_count undrain "web-$i")" = 1 ] || fail "web-$i undrained $(hook_count undrain "web-$i") times"
done
harness_wait_for 5 fleet_all 2.0 || fail "not all healthy on 2.0: $(instances_summary)"

# Migrations: each applied once, in the right phase, the contract one last.
[ "$(hook_count migrate)" = 2 ] || fail "$(hook_count migrate) migrate hooks, want 2 (pre and post)"
awk '$2 == "migrate"' "$HOOKS_LOG" | awk 'NR == 1 && $5 != "pre" || NR == 2 && $5 != "post" { exit 1 }' ||
        fail "migrate phases out of order: $(grep migrate "$HOOKS_LOG")"
rows=$(harness_psql -c "select version || ':' || type || ':' || success from coord_schema_history where type <> 'deferred' order by \"rank\"")
[ "$(echo "$rows" | tr '\n' ' ')" = "1:versioned:true 2:versioned:true 3:versioned:true " ] || fail "history: $rows"
v3_ms=$(harness_psql -c "select (extract(epoch from installed_at) * 1000)::bigint from coord_schema_history where version = '3' and type = 'versioned'")
last_undrain=$(awk '$2 == "undrain" { t = $1 } END { print t }' "$HOOKS_LOG")
[ "$v3_ms" -gt "$last_undrain" ] || fail "post-deploy migration at $v3_ms, before the last undrain at $last_undrain"
harness_psql -c "select column_name from information_schema.columns where table_name = 'items'" | grep -q old_name &&
        fail "old_name still exists: the contract migration did not run"

# The record.
d=$(dep_get "$id")
[ "$(printf "%s\n" "$d" | jq -r '.progress | "\(.total) \(.done) \(.failed)"')" = "3 3 0" ] || fail "progress: $(printf "%s\n" "$d" | jq -c .progress)"
[ "$(printf "%s\n" "$d" | jq -r .previous_version)" = 1.0 ] || fail "previous_version: $(printf "%s\n" "$d" | jq -r .previous_version)"
[ "$(printf "%s\n" "$d" | jq -r '.migrations.pre.state + " " + .migrations.post.state')" = "done done" ] || fail "migrations: $(printf "%s\n" "$d" | jq -c .migrations)"
printf "%s\n" "$d" | jq -e '.instances | all(.state == "done" and .from == "1.0" and .to == "2.0")' >/dev/null || fail "instances: $(printf "%s\n" "$d" | jq -c .instances)"

# The event stream, from the standby: complete, ordered, ending at the terminal state.
curl -sN --max-time 10 -H "Authorization: Bearer $TOKEN_DEPLOY" "$URL_COORD_B/v1/deployments/$id/events" >"$COORD_TEST_DIR/events"
ids=$(sed -n 's/^id: //p' "$COORD_TEST_DIR/events" | tr '\n' ' ')
n=$(sed -n 's/^id: //p' "$COORD_TEST_DIR/events" | wc -l)
[ "$ids" = "$(seq 1 "$n" | tr '\n' ' ')" ] || fail "event ids not 1..$n in order: $ids"
sed -n 's/^data: //p' "$COORD_TEST_DIR/events" >"$COORD_TEST_DIR/events.json"
[ "$(head -1 "$COORD_TEST_DIR/events.json" | jq -r .state)" = pending ] || fail "first event is not pending"
[ "$(tail -1 "$COORD_TEST_DIR/events.json" | jq -r .state)" = succeeded ] || fail "last event is not succeeded"
for i in 1 2 3; do
        got=$(jq -r "select(.type == \"instance\" and .instance == \"web-$i\") | .state" "$COORD_TEST_DIR/events.json" | uniq | tr '\n' ' ')
        [ "$got" = "draining updating verifying done " ] || fail "web-$i steps: $got"
done
[ "$(jq -r 'select(.type == "migration") | .phase + ":" + .state' "$COORD_TEST_DIR/events.json" | tr '\n' ' ')" = "pre:running pre:done post:running post:done " ] ||
        fail "migration events: $(jq -c 'select(.type == "migration")' "$COORD_TEST_DIR/events.json")"
# coordctl's JSON lines are the same events.
[ "$(grep -c '"type"' "$COORD_TEST_DIR/deploy.out")" -ge "$n" ] || fail "coordctl printed fewer events than the stream has"

# History and metrics.
api GET "/v1/deployments?service=web" | jq -e --arg id "$id" '.deployments[0].id == $id' >/dev/null || fail "history does not list $id first"
api GET /metrics | grep -q 'coordinatord_rollout_steps_total{type="deploy",result="ok"} 3' ||
        { api GET /metrics >/dev/null; true; }
sampler_check 1

# A migration step alone (POST /v1/migrations): sent to one healthy instance,
# its outcome in GET /v1/migrations/web; nothing left to apply, so it succeeds.
: >"$HOOKS_LOG"
api POST /v1/migrations -H 'Content-Type: application/json' -d '{"service":"web","version":"2.0","phase":"post"}' \
        >"$COORD_TEST_DIR/mig.json" || fail "POST /v1/migrations failed"
jq -e '.migration.phase == "post" and .migration.state == "queued" and (.migration.instance | startswith("web-"))' \
        "$COORD_TEST_DIR/mig.json" >/dev/null || fail "POST /v1/migrations: $(cat "$COORD_TEST_DIR/mig.json")"
mig_done() { api GET /v1/migrations/web | jq -e '.state == "done"'; }
harness_wait_for 15 mig_done ||
        fail "the migration step did not finish: $(api GET /v1/migrations/web)"
api GET /v1/migrations/web | jq -e '.phase == "post" and .exit_code == 0 and .deployment == null' >/dev/null ||
        fail "GET /v1/migrations/web: $(api GET /v1/migrations/web)"
[ "$(awk '$2 == "migrate" { print $5 }' "$HOOKS_LOG")" = post ] || fail "the migrate hook did not see COORD_MIGRATE_PHASE=post: $(cat "$HOOKS_LOG")"

