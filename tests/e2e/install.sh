# make install / make uninstall, as a package build does them: everything
# lands where configure said (binaries, units, sysusers.d and tmpfiles.d
# entries, the polkit rule, man pages, example configs, hooks and the example
# app@.service), a real config already in /etc/coord is never touched, and
# `make uninstall` leaves nothing behind but empty directories (and that
# config).  The sysusers.d and tmpfiles.d entries are applied to a scratch
# root to check that they create what the unit expects.
. "$COORD_HARNESS"
harness_init
harness_need make
D=$COORD_TEST_DIR/destdir
mkdir -p "$D"

# This runs inside `make check`: do not inherit its jobserver or flags.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES || true
cd "$top_builddir"

# The configured directories, fully expanded by make itself.
make -s -f Makefile -f - coord-print-dirs >"$COORD_TEST_DIR/dirs" <<'EOF'
coord-print-dirs:
	@echo "bindir='$(bindir)' sbindir='$(sbindir)' sysconfdir='$(sysconfdir)'"
	@echo "mandir='$(mandir)' docdir='$(docdir)' pkgdatadir='$(pkgdatadir)'"
	@echo "systemdsystemunitdir='$(systemdsystemunitdir)' sysusersdir='$(sysusersdir)'"
	@echo "tmpfilesdir='$(tmpfilesdir)' polkitrulesdir='$(polkitrulesdir)'"
EOF
. "$COORD_TEST_DIR/dirs"
[ -n "$sbindir" ] && [ -n "$polkitrulesdir" ] || fail "could not read the install directories: $(cat "$COORD_TEST_DIR/dirs")"

# A real configuration that must survive install and uninstall.
mkdir -p "$D$sysconfdir/coord"
echo '{"listen": "127.0.0.1:9999"}' >"$D$sysconfdir/coord/coordinatord.json"
real_sum=$(sha256sum <"$D$sysconfdir/coord/coordinatord.json")

make install DESTDIR="$D" >"$COORD_TEST_DIR/install.log" 2>&1 ||
        fail "make install failed: $(tail -30 "$COORD_TEST_DIR/install.log")"

expect_file() { # PATH [x]
        [ -f "$D$1" ] || fail "make install did not install $1"
        [ "${2:-}" != x ] || [ -x "$D$1" ] || fail "$1 is not executable"
}
expect_file "$bindir/coordctl" x
expect_file "$sbindir/coordinatord" x
expect_file "$sbindir/coord-agent" x
for u in coordinatord coord-agent; do
        expect_file "$systemdsystemunitdir/$u.service"
        grep -qx "ExecStart=$sbindir/$u --config $sysconfdir/coord/$(echo $u | sed 's/^coord-//').json" \
                "$D$systemdsystemunitdir/$u.service" ||
                fail "$u.service does not start $sbindir/$u: $(grep '^ExecStart' "$D$systemdsystemunitdir/$u.service")"
done
expect_file "$sysusersdir/coord.conf"
expect_file "$tmpfilesdir/coord.conf"
expect_file "$polkitrulesdir/50-coord-agent.rules"
expect_file "$mandir/man1/coordctl.1"
expect_file "$mandir/man5/coord-migrations.5"
expect_file "$mandir/man8/coordinatord.8"
expect_file "$mandir/man8/coord-agent.8"
expect_file "$sysconfdir/coord/coordinatord.json.example"
expect_file "$sysconfdir/coord/agent.json.example"
expect_file "$docdir/examples/app@.service"
cmp -s "$top_srcdir/deploy/examples/agent.json" "$D$sysconfdir/coord/agent.json.example" ||
        fail "agent.json.example differs from deploy/examples/agent.json"
# Every hook in the source tree is installed (the list in deploy/Makefile.inc
# is explicit, so a new hook must be added there).
n=0
for h in "$top_srcdir"/deploy/examples/hooks/*; do
        [ -f "$h" ] || continue
        expect_file "$pkgdatadir/hooks/$(basename "$h")" x
        n=$((n + 1))
done
[ "$n" -gt 0 ] || fail "no hooks in deploy/examples/hooks"
[ "$(sha256sum <"$D$sysconfdir/coord/coordinatord.json")" = "$real_sum" ] ||
        fail "make install changed the real $sysconfdir/coord/coordinatord.json"
[ -e "$D$sysconfdir/coord/agent.json" ] && fail "make install created $sysconfdir/coord/agent.json"
"$D$bindir/coordctl" --version | grep -q '^coordctl ' || fail "the installed coordctl does not run"
"$D$sbindir/coord-agent" --version | grep -q '^coord-agent ' || fail "the installed coord-agent does not run"
note "installed: $(find "$D" -type f | wc -l) files, $n hook(s)"

# sysusers.d and tmpfiles.d applied to a scratch root: the user coord-agent,
# /var/lib/coord-agent 0750 and /run/coord 0755, both owned by it.
if command -v systemd-sysusers >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
        R=$COORD_TEST_DIR/root
        mkdir -p "$R/etc" "$R/var/lib" "$R/run"
        out=$(systemd-sysusers --root="$R" - <"$D$sysusersdir/coord.conf" 2>&1) || fail "systemd-sysusers: $out"
        uid=$(awk -F: '$1 == "coord-agent" { print $3 }' "$R/etc/passwd")
        gid=$(awk -F: '$1 == "coord-agent" { print $3 }' "$R/etc/group")
        [ -n "$uid" ] && [ -n "$gid" ] || fail "sysusers.d/coord.conf created no coord-agent user and group"
        out=$(systemd-tmpfiles --root="$R" --create - <"$D$tmpfilesdir/coord.conf" 2>&1) || fail "systemd-tmpfiles: $out"
        [ "$(stat -c '%a %u %g' "$R/var/lib/coord-agent")" = "750 $uid $gid" ] ||
                fail "/var/lib/coord-agent: $(stat -c '%a %u %g' "$R/var/lib/coord-agent"), expected 750 $uid $gid"
        [ "$(stat -c '%a %u %g' "$R/run/coord")" = "755 $uid $gid" ] ||
                fail "/run/coord: $(stat -c '%a %u %g' "$R/run/coord"), expected 755 $uid $gid"
        note "sysusers.d and tmpfiles.d entries create coord-agent ($uid:$gid) and its directories"
else
        note "not root or no systemd-sysusers: sysusers.d/tmpfiles.d entries not applied"
fi

make uninstall DESTDIR="$D" >"$COORD_TEST_DIR/uninstall.log" 2>&1 ||
        fail "make uninstall failed: $(tail -30 "$COORD_TEST_DIR/uninstall.log")"
left=$(cd "$D" && find . ! -type d | sed 's|^\.||' | grep -vx "$sysconfdir/coord/coordinatord.json" || true)
[ -z "$left" ] || fail "make uninstall left files behind:
$left"
[ "$(sha256sum <"$D$sysconfdir/coord/coordinatord.json")" = "$real_sum" ] ||
        fail "make uninstall removed or changed the real $sysconfdir/coord/coordinatord.json"
echo "install: every file installed where configured; uninstall left only empty directories"
