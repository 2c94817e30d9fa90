# The man pages: each renders without a single warning
# (`MANWIDTH=80 man --warnings -l PAGE` writes nothing on stderr), its NAME
# line parses for apropos (lexgrog), and every flag and subcommand the
# programs' --help texts name appears in the page, so the pages cannot fall
# behind the programs.
. "$COORD_HARNESS"
harness_init
harness_need man lexgrog
D=$COORD_TEST_DIR

pages="coordctl.1 coord-migrations.5 coordinatord.8 coord-agent.8"
for p in $pages; do
        f="$top_builddir/man/$p"
        [ -f "$f" ] || fail "$f: not built"
        grep -q '@[a-zA-Z_]*@' "$f" && fail "$f: unsubstituted @...@ left: $(grep '@[a-zA-Z_]*@' "$f")"
        warnings=$(MANWIDTH=80 man --warnings -l "$f" 2>&1 >/dev/null)
        [ -z "$warnings" ] || fail "man --warnings -l $p:
$warnings"
        MANWIDTH=80 man -l "$f" >"$D/$p.txt" 2>/dev/null
        [ -s "$D/$p.txt" ] || fail "$p renders empty"
        lexgrog "$f" >/dev/null 2>&1 || fail "$p: lexgrog cannot parse its NAME section: $(lexgrog "$f" 2>&1)"
        # the roff source with \- turned into -, for the flag checks below
        sed 's/\\-/-/g' "$f" >"$D/$p.src"
        note "$p: renders without warnings"
done

flags_of() { # the --flags a help text names
        grep -oE -- '--[a-z][a-z-]*' | sort -u
}
check_flags() { # PAGE WHAT HELP-TEXT
        for flag in $(printf '%s\n' "$3" | flags_of); do
                grep -qF -- "$flag" "$D/$1.src" || fail "$1 does not document $flag (from $2)"
        done
}

help=$("$COORDCTL" --help)
check_flags coordctl.1 "coordctl --help" "$help"
# Every command coordctl --help lists ("  pause|resume|cancel|revert ID ...").
cmds=$(printf '%s\n' "$help" | sed -n '/^Commands:/,/^$/s/^  \([a-z][a-z|]*\) .*/\1/p' | tr '|' ' ')
[ -n "$cmds" ] || fail "no commands found in coordctl --help"
for want in deploy status deployments pause resume cancel revert instances config migrate lock; do
        case " $(echo $cmds) " in
        *" $want "*) ;;
        *) fail "coordctl --help no longer lists $want" ;;
        esac
done
for cmd in $cmds; do
        grep -qE "^\.SS \"([a-z]+ \| )*$cmd" "$D/coordctl.1.src" || fail "coordctl.1 has no section for $cmd"
        check_flags coordctl.1 "coordctl $cmd --help" "$("$COORDCTL" "$cmd" --help)"
done
for sub in apply status plan validate baseline repair; do
        "$COORDCTL" migrate --help | grep -qE "^  $sub " || fail "coordctl migrate --help no longer lists $sub"
        grep -qE "^\.BI? $sub( |\$)" "$D/coordctl.1.src" || fail "coordctl.1 does not describe migrate $sub"
done
check_flags coordinatord.8 "coordinatord --help" "$("$COORDINATORD" --help)"
check_flags coord-agent.8 "coord-agent --help" "$("$COORD_AGENT" --help)"

# coord-migrations(5): every directive and every history column.
for word in 'coord:no-transaction' 'coord:statement-timeout' 'coord:lock-timeout' 'coord:post-deploy' \
        coord_schema_history rank version description type script checksum installed_by installed_at \
        execution_ms success fencing_token; do
        grep -qF -- "$word" "$D/coord-migrations.5.src" || fail "coord-migrations.5 does not mention $word"
done
echo "man pages: $pages render cleanly and cover every flag"
