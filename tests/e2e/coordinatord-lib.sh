# Shared helpers for the coordinatord end-to-end tests (sourced after the harness).
#
#   cd_start NAME [EXTRA_JSON]   start a coordinatord (config in $COORD_TEST_DIR/NAME.json,
#                                EXTRA_JSON merged as extra top-level keys), wait until it
#                                listens; sets NAME_URL and PID_NAME
#   api METHOD URLPATH ROLE [CURL ARGS...]  request with the token of ROLE (none, wrong,
#                                read, deploy, admin); sets STATUS, body in $BODY_FILE
#   expect CODE METHOD URLPATH ROLE [CURL ARGS...]  api + check the status
#   cd_single [EXTRA_JSON]       Redis and one coordinatord, cd1 (cd_start); URL is its address
#   register ID SERVICE HOST [TTL_MS] [STATE] [CONFIG_VERSION]   write an instance
#                                exactly as an agent does (lib/keys.h layout)
#   heartbeat ID [TTL_MS]        refresh last_seen and the alive key

NS=${NS:-t$$}
TOKEN_READ=read-token-0123456789abcdef
TOKEN_DEPLOY=deploy-token-0123456789abcdef
TOKEN_ADMIN=admin-token-0123456789abcdef
BODY_FILE="$COORD_TEST_DIR/body"

sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }

cd_write_config() {
        name=$1 port=$2 extra=${3:-}
        printf '{"listen":"127.0.0.1:%s","redis":"%s","namespace":"%s","id":"%s","leader_lease":"2s",%s
 "tokens":[{"name":"reader","role":"read","sha256":"%s"},
           {"name":"ci","role":"deploy","sha256":"%s"},
           {"name":"ops","role":"admin","token_file":"%s/admin.token"}]}\n' \
                "$port" "$REDIS_URL" "$NS" "$name" "${extra:+$extra,}" "$(sha $TOKEN_READ)" \
                "$(sha $TOKEN_DEPLOY)" "$COORD_TEST_DIR" >"$COORD_TEST_DIR/$name.json"
        printf '%s\n' "$TOKEN_ADMIN" >"$COORD_TEST_DIR/admin.token"
}

cd_start() {
        name=$1 extra=${2:-}
        for _try in 1 2 3; do
                port=$(harness_free_port)
                cd_write_config "$name" "$port" "$extra"
                harness_spawn "$name" "$COORDINATORD" --config "$COORD_TEST_DIR/$name.json"
                if harness_wait_for 10 curl -sf "http://127.0.0.1:$port/health/live"; then
                        eval "$(echo "$name" | tr a-z- A-Z_)_URL=http://127.0.0.1:$port"
                        eval "$(echo "$name" | tr a-z- A-Z_)_PORT=$port"
                        return 0
                fi
                pid=$(cat "$COORD_TEST_DIR/$name.pid")
                kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
                grep -q "Failed to listen" "$COORD_TEST_DIR/$name.log" || break
        done
        cat "$COORD_TEST_DIR/$name.log" >&2
        fail "coordinatord $name did not start"
}

cd_single() {
        harness_start_redis
        cd_start cd1 "${1:-}"
        URL=$CD1_URL
}

token_of() {
        case $1 in
        read) echo "$TOKEN_READ" ;;
        deploy) echo "$TOKEN_DEPLOY" ;;
        admin) echo "$TOKEN_ADMIN" ;;
        wrong) echo "wrong-token-0123456789abcdef" ;;
        *) echo "" ;;
        esac
}

api() {
        method=$1 path=$2 role=$3
        shift 3
        tok=$(token_of "$role")
        STATUS=$(curl -s --path-as-is -o "$BODY_FILE" -w '%{http_code}' -X "$method" \
                ${tok:+-H "Authorization: Bearer $tok"} "$@" "${URL:?}$path") || STATUS=000
}

expect() {
        code=$1
        shift
        api "$@"
        if [ "$STATUS" != "$code" ]; then
                echo "response body: $(head -c 400 "$BODY_FILE")" >&2
                fail "$1 $2 as $3: expected $code, got $STATUS"
        fi
        # Every error carries the documented shape.
        case $code in
        4*|5*)
                if [ "$1" != HEAD ] && [ "$2" != /health/ready ]; then
                        jq -e '.error.code and .error.message' "$BODY_FILE" >/dev/null ||
                                fail "$1 $2: error body not {\"error\":{\"code\",\"message\"}}: $(head -c 300 "$BODY_FILE")"
                fi ;;
        esac
}

body() { cat "$BODY_FILE"; }

rcli() { redis-cli -p "$REDIS_PORT" "$@"; }

register() {
        id=$1 service=$2 host=$3 ttl=${4:-3000} state=${5:-healthy} cv=${6:-0}
        now=$(now_ms)
        rcli hset "coord:{$NS}:instance:$id" id "$id" service "$service" host "$host" \
                address "10.0.0.1:8080" version 1.0 state "$state" config_version "$cv" \
                last_seen "$now" ttl_ms "$ttl" registered_at "$now" detail "" >/dev/null
        rcli set "coord:{$NS}:alive:$id" 1 px "$ttl" >/dev/null
        rcli zadd "coord:{$NS}:instances" "$now" "$id" >/dev/null
        rcli publish "coord:{$NS}:events" "{\"type\":\"instance\",\"id\":\"$id\",\"state\":\"$state\"}" >/dev/null
}

heartbeat() {
        id=$1 ttl=${2:-3000}
        now=$(now_ms)
        rcli hset "coord:{$NS}:instance:$id" last_seen "$now" >/dev/null
        rcli set "coord:{$NS}:alive:$id" 1 px "$ttl" >/dev/null
        rcli zadd "coord:{$NS}:instances" "$now" "$id" >/dev/null
}

ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$1/health/ready")" = 200 ]; }

# spawn_listening NAME WRITER [ENV=VALUE...]: pick a free port, call "WRITER PORT"
# (it writes the config to $COORD_TEST_DIR/NAME.json), start coordinatord with it
# and wait until it listens; retried when the port was taken meanwhile.  Sets PORT.
spawn_listening() {
        name=$1 writer=$2
        shift 2
        for _try in 1 2 3 4; do
                PORT=$(harness_free_port)
                "$writer" "$PORT"
                harness_spawn "$name" env "$@" "$COORDINATORD" --config "$COORD_TEST_DIR/$name.json"
                harness_wait_for 10 sh -c "curl -sf http://127.0.0.1:$PORT/health/live || ! kill -0 \$(cat $COORD_TEST_DIR/$name.pid)" || true
                curl -sf "http://127.0.0.1:$PORT/health/live" >/dev/null && return 0
                grep -q "Failed to listen" "$COORD_TEST_DIR/$name.log" || break
        done
        cat "$COORD_TEST_DIR/$name.log" >&2
        fail "coordinatord $name did not start"
}
