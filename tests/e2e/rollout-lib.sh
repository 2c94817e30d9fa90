# Shared helpers of the rollout end-to-end tests (sourced, not a test itself).
#
#   rollout_init [--pg]         harness, Redis (and PostgreSQL with --pg), NS, tokens
#   items_migrations            MIGRATIONS (exported) with V1__items.sql: table items (id, old_name)
#   fleet_start N               N demo apps (web-1..N, version 1.0, --version-file) each
#                               with its own coord-agent (host-1..N); waits until healthy
#   coord_start NAME            a coordinatord (lease 2s); sets URL_<NAME>, adds to URLS
#   ctl ARGS...                 coordctl with the deploy token and every coordinatord URL
#   dep_get ID                  GET /v1/deployments/ID (json on stdout)
#   dep_state ID                its state
#   wait_dep ID STATE SECS      until the deployment is in STATE
#   sampler_start MAX / sampler_check   record instance states every 50 ms; fail
#                               when more than MAX were out of service at once
#
# Hooks append "EPOCH_MS HOOK INSTANCE VERSION" lines to $COORD_TEST_DIR/hooks.log; the
# deploy hook writes the version file the demo app reads; the migrate hook runs
# coordctl migrate --phase $COORD_MIGRATE_PHASE on $MIGRATIONS (when set).

. "$COORD_HARNESS"

DEMO="$top_builddir/deploy/demo/coord-demo-app"
NS=r$$
TOKEN_DEPLOY=deploy-token-0123456789abcdef
URLS=""

sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }

rollout_init() {
        harness_init
        HOOKS_LOG="$COORD_TEST_DIR/hooks.log"
        harness_need redis-cli curl jq
        for b in "$COORDINATORD" "$COORD_AGENT" "$COORDCTL" "$DEMO"; do
                [ -x "$b" ] || fail "not built: $b"
        done
        harness_start_redis redis
        REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
        if [ "${1:-}" = --pg ]; then
                harness_start_postgres
        fi
        : >"$HOOKS_LOG"
}

items_migrations() {
        MIGRATIONS="$COORD_TEST_DIR/migrations"
        mkdir -p "$MIGRATIONS"
        printf 'create table items (id int primary key, old_name text);\n' >"$MIGRATIONS/V1__items.sql"
        export MIGRATIONS
}

# The hook scripts, written once.
write_hooks() {
        mkdir -p "$COORD_TEST_DIR/bin"
        cat >"$COORD_TEST_DIR/bin/hook" <<'EOF'
#!/bin/sh
# hook NAME DIR: log the call; deploy writes the version file.
name=$1 dir=$2
ms=$(date +%s%3N)
echo "$ms $name $COORD_INSTANCE $COORD_VERSION ${COORD_MIGRATE_PHASE:-}" >>"$HOOKS_LOG"
case $name in
deploy)
        if [ -n "${DEPLOY_FAIL_VERSION:-}" ] && [ "$COORD_VERSION" = "$DEPLOY_FAIL_VERSION" ]; then
                echo "cannot install $COORD_VERSION" >&2
                exit 3
        fi
        [ -f "$dir/deploy-sleep" ] && sleep "$(cat "$dir/deploy-sleep")"
        printf '%s\n' "$COORD_VERSION" >"$dir/version.tmp" && mv "$dir/version.tmp" "$dir/version"
        echo "installed $COORD_VERSION" ;;
migrate)
        if [ -n "${MIGRATIONS:-}" ]; then
                exec "$COORDCTL" migrate apply --dir "$MIGRATIONS" --database "$DATABASE_URL" \
                        --redis "$REDIS_URL" --phase "$COORD_MIGRATE_PHASE"
        fi
        echo "no migrations configured" ;;
*) echo "$name done" ;;
esac
EOF
        chmod +x "$COORD_TEST_DIR/bin/hook"
}

# fleet_start N [EXTRA DEMO ARGS...]
fleet_start() {
        n=$1
        shift
        write_hooks
        for i in $(seq 1 "$n"); do
                d="$COORD_TEST_DIR/web-$i"
                mkdir -p "$d"
                printf '1.0\n' >"$d/version"
                harness_spawn_port "web-$i" health/live "$DEMO" --version-file "$d/version" "$@"
                eval "APP_PORT_$i=$port"
                hook="$COORD_TEST_DIR/bin/hook"
                write_agent_config "$i" "$port" "{\"drain\": \"$hook drain $d\", \"deploy\": \"$hook deploy $d\",
              \"undrain\": \"$hook undrain $d\", \"migrate\": \"$hook migrate $d\", \"timeout\": \"60s\"}"
                agent_spawn "$i"
        done
        harness_wait_for 20 fleet_healthy "$n" || fail "the fleet did not turn healthy: $(instances_summary)"
}

# write_agent_config I PORT HOOKS_JSON: agent-I.json for instance web-I (host-I,
# state in web-I) of an app on PORT, probed over HTTP every 100 ms.
write_agent_config() {
        # Hooks get a clean environment: pass what they use by name, and
        # COORD_TEST_DIR (a COORD_ name: never passed, but may be set) so the
        # harness still finds whatever they leave running.
        hooks=$(printf '%s' "$3" | jq -c --arg d "$COORD_TEST_DIR" '. + {"env": {"COORD_TEST_DIR": $d},
                "pass_env": ["HOOKS_LOG", "COORDCTL", "MIGRATIONS", "DATABASE_URL", "REDIS_URL",
                             "DEPLOY_FAIL_VERSION", "HOOKS", "DEMO", "HA_SOCK", "APP_EXTRA"]}')
        cat >"$COORD_TEST_DIR/agent-$1.json" <<JSON
{
  "redis": "$REDIS_URL",
  "namespace": "$NS",
  "host": "host-$1",
  "heartbeat_interval": "${AGENT_HEARTBEAT:-300ms}",
  "state_dir": "$COORD_TEST_DIR/web-$1",
  "services": [{
    "name": "web", "instance": "web-$1", "address": "127.0.0.1:$2", "version": "1.0",
    "health": {"http": "http://127.0.0.1:$2/health/ready", "interval": "100ms", "timeout": "1s",
               "rise": 1, "fall": 1},
    "hooks": $hooks
  }]
}
JSON
}

agent_spawn() {
        i=$1
        harness_spawn "agent-$i" env HOOKS_LOG="$HOOKS_LOG" COORDCTL="$COORDCTL" MIGRATIONS="${MIGRATIONS:-}" \
                DATABASE_URL="${DATABASE_URL:-}" REDIS_URL="$REDIS_URL" DEPLOY_FAIL_VERSION="${DEPLOY_FAIL_VERSION:-}" \
                "$COORD_AGENT" --config "$COORD_TEST_DIR/agent-$i.json"
}

rcli() { harness_redis_cli "$@"; }

# id state version health, one line per instance of web
instances_summary() {
        for _iid in $(rcli ZRANGE "coord:{$NS}:instances" 0 -1); do
                printf '%s %s %s %s\n' "$_iid" "$(rcli HGET "coord:{$NS}:instance:$_iid" state)" \
                        "$(rcli HGET "coord:{$NS}:instance:$_iid" version)" \
                        "$(rcli HGET "coord:{$NS}:instance:$_iid" health)"
        done
}

# fleet_all VERSION: every instance healthy on VERSION.
fleet_all() {
        [ "$(instances_summary | grep -vc " healthy $1 healthy")" = 0 ]
}

fleet_healthy() {
        [ "$(instances_summary | grep -c ' healthy 1.0 ')" -ge "$1" ]
}

coord_start() {
        name=$1
        for _try in 1 2 3; do
                port=$(harness_free_port)
                cat >"$COORD_TEST_DIR/$name.json" <<JSON
{"listen":"127.0.0.1:$port","redis":"$REDIS_URL","namespace":"$NS","id":"$name","leader_lease":"${LEASE:-2s}",
 "tokens":[{"name":"ci","role":"deploy","sha256":"$(sha $TOKEN_DEPLOY)"}]}
JSON
                harness_spawn "$name" "$COORDINATORD" --config "$COORD_TEST_DIR/$name.json"
                if harness_wait_for 10 curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null; then
                        eval "URL_$(echo "$name" | tr a-z- A-Z_)=http://127.0.0.1:$port"
                        URLS="${URLS:+$URLS,}http://127.0.0.1:$port"
                        return 0
                fi
                grep -q "Failed to listen" "$COORD_TEST_DIR/$name.log" || break
                kill -KILL "$(cat "$COORD_TEST_DIR/$name.pid")" 2>/dev/null || true
        done
        cat "$COORD_TEST_DIR/$name.log" >&2
        fail "coordinatord $name did not start"
}

ctl() {
        "$COORDCTL" --url "$URLS" --token "$TOKEN_DEPLOY" "$@"
}

api() {
        # api METHOD PATH [CURL ARGS...]: the first coordinatord that answers
        method=$1 path=$2
        shift 2
        for u in $(echo "$URLS" | tr , ' '); do
                curl -sf -m 5 -X "$method" -H "Authorization: Bearer $TOKEN_DEPLOY" "$@" "$u$path" && return 0
        done
        return 1
}

dep_get() { api GET "/v1/deployments/$1"; }
dep_state() { dep_get "$1" | jq -r .state; }

dep_state_is() { [ "$(dep_state "$1")" = "$2" ]; }

wait_dep() {
        harness_wait_for "$3" dep_state_is "$1" "$2" ||
                { dep_get "$1" | jq -c . >&2; fail "deployment $1: state $(dep_state "$1"), expected $2 within $3 s"; }
}

leader_name() {
        api GET /v1/leader | jq -r .leader
}

# Reconcile passes so far, summed over every coordinatord (only the leader's grow).
reconciler_passes() {
        n=0
        for u in $(echo "$URLS" | tr , ' '); do
                p=$(curl -sf -m 2 -H "Authorization: Bearer $TOKEN_DEPLOY" "$u/metrics" |
                    awk '$1 == "coordinatord_reconciler_passes_total" { print $2 }')
                n=$(( n + ${p:-0} ))
        done
        echo "$n"
}

passes_beyond() { [ "$(reconciler_passes)" -ge "$1" ]; }

# wait_passes N: return once the leader has run N more reconcile passes, so a
# check that something did NOT happen has given the controller that many
# chances to do it (instead of a blind sleep).
wait_passes() {
        target=$(( $(reconciler_passes) + $1 ))
        harness_wait_for 20 passes_beyond "$target" || fail "the leader ran fewer than $1 reconcile passes in 20 s"
}

# Count the lines of hooks.log: hook_count HOOK [INSTANCE] [VERSION]
hook_count() {
        awk -v h="$1" -v i="${2:-}" -v v="${3:-}" '$2 == h && (i == "" || $3 == i) && (v == "" || $4 == v)' \
                "$HOOKS_LOG" | wc -l
}

# The sampler: every 50 ms, how many instances of web are not serving (state
# other than healthy); the maximum is checked against max_parallel.
sampler_start() {
        # One EVAL per sample counts the instances not serving, atomically.
        script="local n = 0
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local st = redis.call('HGET', ARGV[1] .. 'instance:' .. id, 'state')
  if st ~= 'healthy' or redis.call('EXISTS', ARGV[1] .. 'alive:' .. id) == 0 then n = n + 1 end
end
return n"
        {
                echo '#!/bin/sh'
                echo 'while :; do'
                echo "        redis-cli -p $REDIS_PORT EVAL \"$script\" 1 'coord:{$NS}:instances' 'coord:{$NS}:' >>'$COORD_TEST_DIR/samples'"
                echo '        sleep 0.02'
                echo 'done'
        } >"$COORD_TEST_DIR/bin/sampler"
        chmod +x "$COORD_TEST_DIR/bin/sampler"
        : >"$COORD_TEST_DIR/samples"
        harness_spawn sampler "$COORD_TEST_DIR/bin/sampler"
}

sampler_check() {
        max=$1
        worst=$(sort -n "$COORD_TEST_DIR/samples" | tail -1)
        count=$(wc -l <"$COORD_TEST_DIR/samples")
        note "availability: $count samples, at most $worst instance(s) out of service (allowed $max)"
        [ "$count" -gt 10 ] || fail "the sampler took only $count samples"
        [ "${worst:-0}" -le "$max" ] || fail "availability invariant broken: $worst instances out of service at once (max_parallel $max)"
}

sampler_stop() {
        kill "$(cat "$COORD_TEST_DIR/sampler.pid")" 2>/dev/null || true
}
