# Two coordinatords on one Redis: exactly one leads at every sample; kill -9
# of the leader hands over within lease + 1 s; SIGTERM within 1 s; a leader
# frozen past its lease has stopped leading the moment it runs again.
. "$COORD_HARNESS"
harness_init
harness_need curl jq
. "$top_srcdir/tests/e2e/coordinatord-lib.sh"
harness_start_redis
LEASE_MS=2000   # cd_write_config sets leader_lease 2s

cd_start cda
cd_start cdb
A=$CDA_URL B=$CDB_URL

is_leader() { curl -s -m 1 -H "Authorization: Bearer $TOKEN_READ" "$1/v1/leader" | jq -e '.is_leader' >/dev/null; }
leader_json() { curl -s -m 1 -H "Authorization: Bearer $TOKEN_READ" "$1/v1/leader"; }
count_leaders() {
        n=0
        for u in "$@"; do is_leader "$u" && n=$((n + 1)); done
        echo $n
}
one_leader() { [ "$(count_leaders "$A" "$B")" = 1 ]; }
# handover SECS URL SIGNAL PID WHAT: kill -SIGNAL PID, then wait up to SECS
# for URL to lead (fail WHAT otherwise); dt: the ms in between.
handover() {
        t0=$(now_ms)
        kill "-$3" "$4"
        harness_wait_for "$1" is_leader "$2" || fail "$5"
        dt=$(( $(now_ms) - t0 ))
}

harness_wait_for 10 one_leader || fail "no single leader emerged"
# Sample for 3 s (more than a lease): always exactly one, both agree who and which term.
end=$(( $(now_ms) + 3000 ))
samples=0
while [ "$(now_ms)" -lt "$end" ]; do
        n=$(count_leaders "$A" "$B")
        [ "$n" = 1 ] || fail "sample $samples: $n leaders"
        samples=$((samples + 1))
done
[ $samples -ge 5 ] || fail "too few samples ($samples) in 3 s"
ja=$(leader_json "$A") jb=$(leader_json "$B")
[ "$(echo "$ja" | jq -r .leader)" = "$(echo "$jb" | jq -r .leader)" ] || fail "disagree on the leader: $ja / $jb"
[ "$(echo "$ja" | jq -r .term)" = "$(echo "$jb" | jq -r .term)" ] || fail "disagree on the term: $ja / $jb"
term1=$(echo "$ja" | jq -r .term)
echo "one leader in $samples samples: $(echo "$ja" | jq -r .leader) term $term1"

if is_leader "$A"; then L=cda LU=$A S=cdb SU=$B; else L=cdb LU=$B S=cda SU=$A; fi
lpid=$(cat "$COORD_TEST_DIR/$L.pid")

# kill -9: the standby leads within lease + 1 s.
handover 10 "$SU" KILL "$lpid" "standby never took over after kill -9"
echo "kill -9 hand-over: ${dt} ms (lease ${LEASE_MS} ms)"
[ $dt -le $((LEASE_MS + 1000)) ] || fail "kill -9 hand-over took ${dt} ms > lease + 1 s"
term2=$(leader_json "$SU" | jq -r .term)
[ "$term2" -gt "$term1" ] || fail "term did not grow ($term1 -> $term2)"

# Restart the killed one: it stays standby.
cd_start "$L"
eval "LU=\$$(echo "$L" | tr a-z A-Z)_URL"
harness_wait_for 5 sh -c "curl -s -H 'Authorization: Bearer $TOKEN_READ' $LU/v1/leader | jq -e '.leader != null' >/dev/null" ||
        fail "restarted coordinatord does not see the leader"
# Leadership staying put is a property over time: the standby tries the lock
# every tick (250 ms) and the leader renews every 667 ms, invisibly.
harness_quiet_period 1 "the restarted standby must not take the lead"
[ "$(count_leaders "$LU" "$SU")" = 1 ] && is_leader "$SU" || fail "leadership moved without reason"

# SIGTERM: hand-over within 1 s (the lock is released, the standby is woken).
spid=$(cat "$COORD_TEST_DIR/$S.pid")
handover 5 "$LU" TERM "$spid" "no hand-over after SIGTERM"
echo "SIGTERM hand-over: ${dt} ms"
[ $dt -le 1000 ] || fail "SIGTERM hand-over took ${dt} ms > 1 s"
harness_wait_for 5 sh -c "! kill -0 $spid 2>/dev/null" || fail "SIGTERM did not stop coordinatord"
grep -q "Released leadership" "$COORD_TEST_DIR/$S.log" || fail "no release logged"

# Freeze the leader past its lease: the other takes over, and the frozen one,
# once thawed, does not claim leadership even for a moment.
cd_start "$S"
eval "SU=\$$(echo "$S" | tr a-z A-Z)_URL"
lpid=$(cat "$COORD_TEST_DIR/$L.pid")
is_leader "$LU" || fail "expected $L to lead"
kill -STOP "$lpid"
harness_wait_for 10 is_leader "$SU" || fail "no take-over from a frozen leader"
kill -CONT "$lpid"
curl -s -m 2 -H "Authorization: Bearer $TOKEN_READ" "$LU/v1/leader" >"$COORD_TEST_DIR/thawed"
jq -e '.is_leader == false' "$COORD_TEST_DIR/thawed" >/dev/null || fail "thawed leader still claims: $(cat "$COORD_TEST_DIR/thawed")"
curl -s -H "Authorization: Bearer $TOKEN_READ" "$LU/metrics" | grep -qx 'coordinatord_leader 0' || fail "thawed leader's metrics still say leader"
[ "$(count_leaders "$LU" "$SU")" = 1 ] || fail "not exactly one leader after the thaw"
echo "coordinatord-leader: ok"
