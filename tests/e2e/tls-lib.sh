# Helpers for the TLS tests (sourced after tests/harness.sh, not a test itself).
#
#   tls_make_certs                 a CA and its server, client and expired client
#                                  certificates in $TLS_DIR (plus an unrelated CA)
#   tls_start_redis [NAME] [ARGS]  a redis on a plain port (REDIS_PORT, for
#                                  redis-cli and the harness) and a TLS port
#                                  (TLS_PORT, NAME_TLS_PORT); client certificates
#                                  optional unless ARGS say otherwise
#   tls_restart_redis [NAME] [ARGS] the same again, on the same ports
#   tls_start_sentinel MASTER_TLS_PORT [SERVICE]  a TLS-only redis-sentinel that
#                                  talks TLS to the master and replicas too
#                                  (SENTINEL_TLS_PORT)
#   tls_cli PORT ARGS...           redis-cli over TLS
#   tls_mtls_redis USER PASSWORD DIR  certificates, tls_start_redis mtls (client
#                                  certificates required), the ACL user USER and the
#                                  daemons' credentials in DIR (redis, tls_key)
#   tls_redis_credential USER PASSWORD DIR  DIR/redis: rediss://USER:PASSWORD@...
#   tls_write_cd PORT              a coordinatord config for spawn_listening
# Certificates are EC P-256 made with the openssl CLI; the server certificate
# is valid for 127.0.0.1 and localhost, the expired one ended a day before it began.

# TLS_DIR is set by tls_make_certs, after harness_init made COORD_TEST_DIR:
# computed at source time it was "/tls", one directory every concurrent TLS
# test overwrote (their servers then presented each other's CAs).
TLS_DIR=

tls_key() {
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
}

# tls_sign NAME SUBJECT DAYS EXTFILE: NAME.key and NAME.crt signed by ca.
tls_sign() {
        tls_key "$TLS_DIR/$1.key"
        openssl req -new -key "$TLS_DIR/$1.key" -subj "$2" -out "$TLS_DIR/$1.csr" 2>/dev/null
        openssl x509 -req -in "$TLS_DIR/$1.csr" -CA "$TLS_DIR/ca.crt" -CAkey "$TLS_DIR/ca.key" -CAcreateserial \
                -days "$3" -extfile "$4" -out "$TLS_DIR/$1.crt" 2>/dev/null || fail "openssl x509 for $1 failed"
}

tls_make_certs() {
        harness_need openssl
        [ -n "${COORD_TEST_DIR:-}" ] || fail "tls_make_certs before harness_init"
        TLS_DIR=$COORD_TEST_DIR/tls
        export TLS_DIR
        mkdir -p "$TLS_DIR"
        for ca in ca other-ca; do
                tls_key "$TLS_DIR/$ca.key"
                openssl req -x509 -new -key "$TLS_DIR/$ca.key" -days 30 -subj "/CN=coord test $ca" \
                        -out "$TLS_DIR/$ca.crt" 2>/dev/null || fail "openssl req for $ca failed"
        done
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' >"$TLS_DIR/server.ext"
        printf 'extendedKeyUsage=clientAuth\n' >"$TLS_DIR/client.ext"
        tls_sign server "/CN=localhost" 30 "$TLS_DIR/server.ext"
        tls_sign client "/CN=coord client" 30 "$TLS_DIR/client.ext"
        tls_sign expired "/CN=coord expired client" -1 "$TLS_DIR/client.ext"
        ! openssl verify -CAfile "$TLS_DIR/ca.crt" "$TLS_DIR/expired.crt" >/dev/null 2>&1 ||
                fail "the expired certificate verifies"
}

tls_server_args() {
        echo "--tls-cert-file $TLS_DIR/server.crt --tls-key-file $TLS_DIR/server.key" \
                "--tls-ca-cert-file $TLS_DIR/ca.crt --tls-auth-clients optional"
}

tls_start_redis() {
        t_name=${1:-redis}
        [ $# -gt 0 ] && shift
        # shellcheck disable=SC2046 # the arguments are words without blanks
        harness_start_redis "$t_name" --tls-port @FREEPORT@ $(tls_server_args) "$@"
        t_port=$HARNESS_FREEPORT
        echo "$t_port" >"$COORD_TEST_DIR/$t_name.tlsport"
        TLS_PORT=$t_port
        export TLS_PORT
        eval "$(echo "$t_name" | tr a-z- A-Z_)_TLS_PORT=$t_port"
}

tls_restart_redis() {
        t_name=${1:-redis}
        [ $# -gt 0 ] && shift
        # shellcheck disable=SC2046
        harness_restart_redis "$t_name" --tls-port "$(cat "$COORD_TEST_DIR/$t_name.tlsport")" $(tls_server_args) "$@"
}

tls_cli() {
        t_cli_port=$1
        shift
        redis-cli --tls --cacert "$TLS_DIR/ca.crt" -p "$t_cli_port" "$@"
}

tls_start_sentinel() {
        s_master=$1
        s_service=${2:-mymaster}
        harness_need redis-sentinel redis-cli
        for _attempt in 1 2 3 4 5; do
                s_port=$(harness_free_port)
                s_dir="$COORD_TEST_DIR/tls-sentinel-$s_port"
                mkdir -p "$s_dir"
                {
                        echo "port 0"
                        echo "tls-port $s_port"
                        echo "tls-cert-file $TLS_DIR/server.crt"
                        echo "tls-key-file $TLS_DIR/server.key"
                        echo "tls-ca-cert-file $TLS_DIR/ca.crt"
                        echo "tls-auth-clients optional"
                        echo "tls-replication yes"
                        harness_sentinel_conf "$s_dir" "$s_service" "$s_master"
                } >"$s_dir/sentinel.conf"
                redis-sentinel "$s_dir/sentinel.conf" &
                s_pid=$!
                HARNESS_PIDS="$HARNESS_PIDS $s_pid"
                if harness_wait_for 10 sh -c "redis-cli --tls --cacert '$TLS_DIR/ca.crt' -p $s_port \
                        sentinel get-master-addr-by-name $s_service | grep -qx $s_master"; then
                        SENTINEL_TLS_PORT=$s_port
                        export SENTINEL_TLS_PORT
                        return 0
                fi
                kill -KILL "$s_pid" 2>/dev/null || true
        done
        fail "TLS redis-sentinel did not start or report master $s_service (see $COORD_TEST_DIR/tls-sentinel-*.log)"
}

# tls_failover SERVICE NEW_TLS_PORT: make the sentinel promote the replica and wait for it.
tls_failover() {
        harness_wait_for 30 sh -c "redis-cli --tls --cacert '$TLS_DIR/ca.crt' -p $SENTINEL_TLS_PORT \
                sentinel failover $1 | grep -qx OK" || fail "SENTINEL FAILOVER refused"
        harness_wait_for 30 sh -c "redis-cli --tls --cacert '$TLS_DIR/ca.crt' -p $SENTINEL_TLS_PORT \
                sentinel get-master-addr-by-name $1 | grep -qx $2" || fail "sentinel did not switch to $2"
}

# tls_redis_credential USER PASSWORD DIR: DIR/redis, the systemd credential
# with the connection string to the TLS port ($TLS_PORT) as USER.
tls_redis_credential() {
        printf 'rediss://%s:%s@127.0.0.1:%s/0\n' "$1" "$2" "$TLS_PORT" >"$3/redis"
}

# tls_mtls_redis USER PASSWORD DIR: certificates, a redis that requires client
# certificates (tls_start_redis mtls), on it the ACL user USER with PASSWORD
# limited to coord's keys and channels, and in DIR the daemons' systemd
# credentials: redis (tls_redis_credential) and tls_key (the client key).
tls_mtls_redis() {
        tls_make_certs
        tls_start_redis mtls --tls-auth-clients yes
        harness_redis_cli ACL SETUSER "$1" on ">$2" resetchannels '~coord:*' '&coord:*' '+@all' | grep -qx OK ||
                fail "ACL SETUSER failed"
        mkdir -p "$3"
        tls_redis_credential "$1" "$2" "$3"
        cp "$TLS_DIR/client.key" "$3/tls_key"
}

# tls_write_cd PORT: the writer for spawn_listening (coordinatord-lib.sh): the
# config of coordinatord $CD in $COORD_TEST_DIR/$CD.json, with no "redis" key
# (the credential is used), tls_ca_file, tls_cert_file $TLS_CD_CERT_FILE
# (default: the client certificate), a reader token and an admin token file
# ($COORD_TEST_DIR/admin.token).
tls_write_cd() {
        printf '{"listen":"127.0.0.1:%s","namespace":"%s","id":"%s","leader_lease":"2s",
 "tls_ca_file":"%s","tls_cert_file":"%s",
 "tokens":[{"name":"reader","role":"read","sha256":"%s"},{"name":"ops","role":"admin","token_file":"%s/admin.token"}]}\n' \
                "$1" "$NS" "$CD" "$TLS_DIR/ca.crt" "${TLS_CD_CERT_FILE:-$TLS_DIR/client.crt}" "$(sha "$TOKEN_READ")" \
                "$COORD_TEST_DIR" >"$COORD_TEST_DIR/$CD.json"
}
