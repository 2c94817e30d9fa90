# 4 concurrent `coordctl migrate` runners over TLS with a client certificate
# (COORD_TLS_CA_FILE, COORD_TLS_CERT_FILE, COORD_TLS_KEY_FILE; the server
# requires one): each migration applied exactly once, all exit 0.  Then the
# same runner with the wrong CA exits 3 naming the verification error.
. "$top_srcdir/tests/e2e/migrate-lib.sh"
. "$top_srcdir/tests/e2e/tls-lib.sh"
harness_init
tls_make_certs
harness_start_postgres
tls_start_redis redis --tls-auth-clients yes
export COORD_TLS_CA_FILE="$TLS_DIR/ca.crt" COORD_TLS_CERT_FILE="$TLS_DIR/client.crt" COORD_TLS_KEY_FILE="$TLS_DIR/client.key"
T=$COORD_TEST_DIR
D=$T/m
redis="127.0.0.1:$TLS_PORT,ssl=true,abortConnect=false"
mig "$D" V1__log.sql "CREATE TABLE applied_log (version int);
INSERT INTO applied_log VALUES (1);"
for i in $(seq 2 20); do
        extra=""
        [ "$i" = 10 ] && extra="SELECT pg_sleep(0.5);"
        mig "$D" "V${i}__table_$i.sql" "CREATE TABLE t_$i (id int);
INSERT INTO applied_log VALUES ($i); $extra"
done

for i in 1 2 3 4; do
        harness_spawn "r$i" "$COORDCTL" migrate --dir "$D" --database "$DATABASE_URL" --redis "$redis" \
                --lease 3s --wait-timeout 60s
done
for i in 1 2 3 4; do
        eval "pid=\$PID_r$i"
        wait "$pid" || { cat "$T/r$i.log" >&2; fail "runner $i exited $?"; }
done
appliers=0
for i in 1 2 3 4; do
        grep -q "applied 20 migrations" "$T/r$i.log" && appliers=$((appliers + 1))
        grep -qE "applied 20 migrations|nothing to apply" "$T/r$i.log" || { cat "$T/r$i.log"; fail "runner $i: unexpected output"; }
done
[ "$appliers" = 1 ] || fail "$appliers runners applied everything (want exactly 1)"
[ "$(harness_psql -c "SELECT count(*), count(DISTINCT version) FROM applied_log")" = "20|20" ] ||
        fail "applied_log: $(harness_psql -c "SELECT count(*), count(DISTINCT version) FROM applied_log")"
[ "$(harness_redis_cli --scan --pattern 'coord:*' | wc -l)" -ge 1 ] || fail "the runners left no trace in Redis"

# The wrong CA: exit 3, the X.509 reason named, nothing applied.
mig "$D" V21__late.sql "CREATE TABLE t_21 (id int);"
COORD_TLS_CA_FILE="$TLS_DIR/other-ca.crt"
expect_rc 3 "$T/bad-ca.out" --dir "$D" --database "$DATABASE_URL" --redis "$redis" --wait-timeout 5s
COORD_TLS_CA_FILE="$TLS_DIR/ca.crt"
expect_in "$T/bad-ca.out" "certificate verify failed: self-signed certificate in certificate chain"
[ "$(harness_psql -c "SELECT to_regclass('t_21') IS NULL")" = t ] || fail "applied without the lock"
echo "tls-migrate: ok"
