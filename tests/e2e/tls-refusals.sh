# What coordctl says when TLS cannot be had: exit 3 with the reason named
# (never a plain-text fallback), exit 2 for unusable TLS files, and the
# password masked in every message.
. "$COORD_HARNESS"
. "$top_srcdir/tests/e2e/tls-lib.sh"
harness_init
tls_make_certs
tls_start_redis mtls --tls-auth-clients yes
mtls=$TLS_PORT
tls_start_redis
D=$COORD_TEST_DIR
pw='Refusal-Pw-77'
export COORD_TLS_CA_FILE="$TLS_DIR/ca.crt"

# expect CODE PATTERN CMD...: CMD exits CODE, its stderr ($D/err) says PATTERN
# (a fixed string), and neither output has the password.
expect() {
        harness_expect -F "$@"
        shift 2
        ! grep -qF -- "$pw" "$D/err" "$D/out" || fail "'$*': the password reached the output"
}
lock() {
        "$COORDCTL" lock refusal --redis "$1,password=$pw,connectTimeout=1000" --wait-timeout 3s -- true
}

expect 0 "" lock "127.0.0.1:$TLS_PORT,ssl=true"
# The server's certificate: an unknown CA, the system store, another name.
expect 3 "certificate verify failed: self-signed certificate in certificate chain" \
        env COORD_TLS_CA_FILE="$TLS_DIR/other-ca.crt" "$COORDCTL" lock refusal \
        --redis "127.0.0.1:$TLS_PORT,ssl=true,password=$pw" -- true
expect 3 "certificate verify failed" env -u COORD_TLS_CA_FILE "$COORDCTL" lock refusal \
        --redis "rediss://:$pw@127.0.0.1:$TLS_PORT" -- true
expect 3 "hostname mismatch" lock "127.0.0.1:$TLS_PORT,ssl=true,sslHost=redis.example.net"
# The wrong protocol either way.
expect 3 "TLS handshake with Redis at 127.0.0.1:$REDIS_PORT timed out" lock "127.0.0.1:$REDIS_PORT,ssl=true"
expect 3 "does it need ssl=true?" lock "127.0.0.1:$TLS_PORT,ssl=false"
# Client certificates: none, expired, valid.
expect 3 "certificate required" lock "127.0.0.1:$mtls,ssl=true"
export COORD_TLS_CERT_FILE="$TLS_DIR/expired.crt" COORD_TLS_KEY_FILE="$TLS_DIR/expired.key"
expect 3 "certificate expired" lock "127.0.0.1:$mtls,ssl=true"
grep -qF "expired.crt: the certificate expired on" "$D/err" || { cat "$D/err" >&2; fail "no early warning"; }
export COORD_TLS_CERT_FILE="$TLS_DIR/client.crt" COORD_TLS_KEY_FILE="$TLS_DIR/client.key"
expect 0 "" lock "127.0.0.1:$mtls,ssl=true"
# Unusable files are a usage error naming them; without ssl they are not read.
expect 2 "/nonexistent/ca.pem" env COORD_TLS_CA_FILE=/nonexistent/ca.pem "$COORDCTL" lock refusal \
        --redis "rediss://127.0.0.1:$TLS_PORT" -- true
expect 2 "other-ca.key" env COORD_TLS_KEY_FILE="$TLS_DIR/other-ca.key" "$COORDCTL" lock refusal \
        --redis "rediss://127.0.0.1:$TLS_PORT" -- true
expect 0 "" env COORD_TLS_CA_FILE=/nonexistent/ca.pem "$COORDCTL" lock refusal --redis "$REDIS_URL" -- true
echo "tls-refusals: ok"
