# The systemd units: `systemd-analyze verify` prints nothing (no error, no
# warning) for every unit the build generates and for the example
# deploy/examples/app@.service; `systemd-analyze security --offline=yes`
# rates coordinatord at most 1.4 and coord-agent at most 3.0; the polkit rule
# allows coord-agent exactly the documented unit actions.
#
# verify checks that every Exec*= binary exists and that every
# Documentation=man: page can be found, so the copies verified here point at
# the build tree's programs (the example's dotnet at /bin/true) and MANPATH
# at the build tree's man pages.
. "$COORD_HARNESS"
harness_init
harness_need systemd-analyze man
D=$COORD_TEST_DIR

max_exposure_coordinatord=1.4
max_exposure_coord_agent=3.0

mkdir -p "$D/units" "$D/man/man1" "$D/man/man5" "$D/man/man8"
for p in "$top_builddir"/man/*.1 "$top_builddir"/man/*.5 "$top_builddir"/man/*.8; do
        [ -f "$p" ] || fail "$p: man page not built"
        cp "$p" "$D/man/man${p##*.}/"
done
MANPATH=$D/man
export MANPATH

# Point the Exec*= lines at the build tree: "ExecStart=/usr/sbin/coord-agent ..."
# becomes "ExecStart=$COORD_AGENT ...".
to_build_tree() { # SRC DST
        sed -E \
                -e "s#^(Exec[A-Za-z]*=[-@:+!]*)[^ ]*/coordinatord( |\$)#\\1$COORDINATORD\\2#" \
                -e "s#^(Exec[A-Za-z]*=[-@:+!]*)[^ ]*/coord-agent( |\$)#\\1$COORD_AGENT\\2#" \
                -e "s#/usr/bin/coordctl( |\$)#$COORDCTL\\1#" \
                -e "s#^(Exec[A-Za-z]*=[-@:+!]*)/usr/bin/dotnet( |\$)#\\1/bin/true\\2#" \
                "$1" >"$2"
        if grep -E '^Exec[A-Za-z]*=' "$2" | grep -qE '/usr/bin/dotnet|=[-@:+!]*/usr/(local/)?s?bin/coord'; then
                fail "$1: an Exec line still names an installed path: $(grep -E '^Exec' "$2")"
        fi
}

units=""
for u in coordinatord coord-agent; do
        src="$top_builddir/systemd/$u.service"
        [ -f "$src" ] || fail "$src: unit not generated"
        grep -q '@[a-z]*@' "$src" && fail "$src: unsubstituted @...@ left: $(grep '@[a-z]*@' "$src")"
        to_build_tree "$src" "$D/units/$u.service"
        units="$units $D/units/$u.service"
done
to_build_tree "$top_srcdir/deploy/examples/app@.service" "$D/units/app@.service"

# Any output at all is a failure: verify reports warnings on stderr with exit 0.
verify() { # UNIT
        set +e
        out=$(cd "$D/units" && systemd-analyze verify "$1" 2>&1)
        rc=$?
        set -e
        [ "$rc" -eq 0 ] && [ -z "$out" ] || fail "systemd-analyze verify $1: exit $rc: $out"
        note "verify $(basename "$1"): clean"
}
for u in $units; do
        verify "$u"
done
# A template is verified through an instance of it.
verify "$D/units/app@1.service"

# Exposure: parse "→ Overall exposure level for coord-agent.service: 1.5 OK".
exposure() { # UNIT MAX
        out=$(systemd-analyze security --offline=yes "$1" 2>&1) || fail "systemd-analyze security $1: $out"
        score=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9][0-9.]*\).*/\1/p')
        [ -n "$score" ] || fail "systemd-analyze security $1: no exposure level in: $out"
        awk -v s="$score" -v m="$2" 'BEGIN { exit !(s + 0 <= m + 0) }' ||
                fail "$(basename "$1"): exposure $score is above $2:
$(printf '%s\n' "$out" | grep '✗')"
        note "$(basename "$1"): exposure $score (at most $2)"
}
exposure "$D/units/coordinatord.service" "$max_exposure_coordinatord"
exposure "$D/units/coord-agent.service" "$max_exposure_coord_agent"

# The agent's unit: a dedicated user, no capabilities, no way to gain any.
for want in User=coord-agent NoNewPrivileges=yes CapabilityBoundingSet= AmbientCapabilities= \
        StateDirectory=coord-agent; do
        grep -qx "$want" "$D/units/coord-agent.service" || fail "coord-agent.service: no '$want' line"
done

# The polkit rule: evaluated with a stand-in for polkit's JavaScript API
# (polkitd itself needs a system bus).  node is optional.
rules="$top_srcdir/systemd/50-coord-agent.rules"
grep -A1 'EDIT THIS LINE' "$rules" | grep -q 'var UNITS = ' || fail "$rules: the UNITS line is not marked as the one to edit"
if command -v node >/dev/null 2>&1; then
        cat >"$D/polkit-check.js" <<'JS'
var fs = require("fs"), rules = [];
var polkit = { Result: { YES: "yes", NO: "no", NOT_HANDLED: null },
               addRule: function (f) { rules.push(f); } };
eval(fs.readFileSync(process.argv[2], "utf8"));
function decide(user, id, unit, verb) {
        var action = { id: id, lookup: function (k) { return { unit: unit, verb: verb }[k]; } };
        for (var i = 0; i < rules.length; i++) {
                var r = rules[i](action, { user: user });
                if (r) return r;
        }
        return "default";
}
var M = "org.freedesktop.systemd1.manage-units", bad = 0;
[["coord-agent", M, "app@1.service", "restart", "yes"],
 ["coord-agent", M, "app@web-1.service", "reload", "yes"],
 ["coord-agent", M, "app@1.service", "start", "yes"],
 ["coord-agent", M, "app@1.service", "stop", "yes"],
 ["coord-agent", M, "app@1.service", "reload-or-restart", "no"],
 ["coord-agent", M, "app@1.service", "try-restart", "no"],
 ["coord-agent", M, "app@.service", "restart", "no"],
 ["coord-agent", M, "sshd.service", "restart", "no"],
 ["coord-agent", M, "app@1.service sshd.service", "restart", "no"],
 ["coord-agent", M, "app@1.socket", "start", "no"],
 ["coord-agent", M, undefined, undefined, "no"],
 ["coord-agent", "org.freedesktop.systemd1.manage-unit-files", "app@1.service", "restart", "default"],
 ["coord-agent", "org.freedesktop.login1.reboot", undefined, undefined, "default"],
 ["web", M, "app@1.service", "restart", "default"],
 ["root", M, "app@1.service", "restart", "default"]].forEach(function (c) {
        var got = decide(c[0], c[1], c[2], c[3]);
        if (got !== c[4]) { bad++; console.log(JSON.stringify(c) + " -> " + got); }
});
process.exit(bad ? 1 : 0);
JS
        out=$(node "$D/polkit-check.js" "$rules" 2>&1) || fail "polkit rule decides wrongly: $out"
        note "polkit rule: allows start/stop/restart/reload of app@*.service to coord-agent only"
else
        note "node is not installed: the polkit rule's decisions were not evaluated"
fi
echo "units: verify clean, exposure within limits"
