# coord-agent --check-config: valid files print the effective config with the
# password masked (exit 0); bad files exit 2 with a message naming the key.
. "$top_srcdir/tests/e2e/agent-lib.sh"
harness_init
D=$COORD_TEST_DIR

check() { # EXPECTED_RC SUBSTRING FILE
        set +e
        out=$("$COORD_AGENT" --check-config --config "$3" 2>&1)
        rc=$?
        set -e
        [ "$rc" -eq "$1" ] || fail "$3: exit $rc, expected $1: $out"
        case "$out" in
        *"$2"*) ;;
        *) fail "$3: output does not mention '$2': $out" ;;
        esac
}

svc='"name":"web","version":"1.0"'
printf 'redis://:pw-secret-1@127.0.0.1:6379/0\n' >"$D/redis.cred"
cat >"$D/ok.json" <<JSON
{"redis_file":"$D/redis.cred","host":"h1","services":[{$svc,"health":{"http":"http://127.0.0.1:1/health/ready"}}]}
JSON
check 0 '"redis": "redis://:*****@127.0.0.1:6379/0"' "$D/ok.json"
"$COORD_AGENT" --check-config --config "$D/ok.json" | grep -q pw-secret-1 && fail "password printed"

echo "{\"redis\":\"redis://127.0.0.1:1\",\"services\":[{$svc,\"health\":{\"intervall\":\"2s\"}}]}" >"$D/unknown.json"
check 2 'services[0].health.intervall: unknown key' "$D/unknown.json"
echo "{\"redis\":\"redis://127.0.0.1:1\",\"heartbeat_interval\":\"5\",\"services\":[{$svc}]}" >"$D/dur.json"
check 2 'heartbeat_interval' "$D/dur.json"
echo "{\"redis\":\"redis://127.0.0.1:1\",\"services\":[{$svc,\"hooks\":{\"timeout\":\"soon\"}}]}" >"$D/dur2.json"
check 2 'services[0].hooks.timeout' "$D/dur2.json"
echo '{"redis":"redis://127.0.0.1:1","services":[{"version":"1.0"}]}' >"$D/noname.json"
check 2 'services[0].name' "$D/noname.json"
echo '{"redis":"redis://127.0.0.1:1","services":[{"name":"bad name","version":"1"}]}' >"$D/badname.json"
check 2 'services[0].name' "$D/badname.json"
echo "{\"redis\":\"redis://127.0.0.1:1\"" >"$D/syntax.json"
check 2 'syntax.json' "$D/syntax.json"
check 2 'missing.json' "$D/missing.json"
echo "{\"services\":[{$svc}]}" >"$D/noredis.json"
check 2 'redis' "$D/noredis.json"

# Environment overrides the file, and is masked too.
COORD_REDIS='127.0.0.1:6379,password=env-secret-2' "$COORD_AGENT" --check-config --config "$D/ok.json" >"$D/env.out"
grep -q 'env-secret-2' "$D/env.out" && fail "env password printed"
grep -q '\*\*\*\*\*' "$D/env.out" || fail "env password not shown masked"

"$COORD_AGENT" --help | grep -q -- '--check-config' || fail "--help"
"$COORD_AGENT" --version | grep -q '^coord-agent ' || fail "--version"
set +e
"$COORD_AGENT" --bogus >/dev/null 2>&1
rc=$?
set -e
[ "$rc" -eq 2 ] || fail "bad flag: exit $rc"
echo "agent-check-config: ok"
