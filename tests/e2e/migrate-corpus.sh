# Real-world-shaped migration sets (tests/e2e/corpus/<set>/, written for this project):
# each is applied with coordctl migrate into one database and, into another, the way
# people run such files by hand: psql -v ON_ERROR_STOP=1 -f, one session per file, in
# coord's order (versioned ascending, then repeatables, then seeds).  The schema
# (pg_dump --schema-only) and the data of both must be identical, and a second apply
# must find nothing to do.
#
#   shop-baseline   a pg_dump-style baseline (SET headers, set_config('search_path', '',
#                   false), COPY data with quotes and backslashes) followed by ordinary
#                   migrations, CREATE INDEX CONCURRENTLY without a directive, DO blocks,
#                   functions with tagged dollar quotes, ALTER TYPE ... ADD VALUE
#   ledger-roles    SET ROLE without RESET, session_replication_role = replica left set,
#                   triggers, grants and default privileges, SECURITY DEFINER
#   catalog-data    COPY in text and CSV format (quotes, backslashes, tabs, newlines in
#                   fields, \N), DO blocks with EXECUTE format($sql$...$sql$), concurrent
#                   indexes without a directive, a seed with COPY
#
# CORPUS_SETS="a b" runs only those sets.  Every set runs even when one fails; the
# summary names each set's outcome.
. "$top_srcdir/tests/e2e/migrate-lib.sh"
harness_need pg_dump
harness_init
harness_start_postgres
harness_start_redis
unset COORD_REDIS || true
T=$COORD_TEST_DIR
CORPUS=$top_srcdir/tests/e2e/corpus
base="postgresql://postgres@127.0.0.1:$PG_PORT"

# The files of a set in coord's order: V by version (parts compared numerically), R, S.
ordered() {
        for f in "$1"/V*__*.sql; do
                [ -e "$f" ] || continue
                b=${f##*/}
                v=${b#V}
                v=${v%%__*}
                printf '%s\t%s\n' "$(printf '%s' "$v" | tr _ .)" "$f"
        done | sort -t"$(printf '\t')" -k1,1V | cut -f2-
        for f in "$1"/R__*.sql "$1"/S__*.sql; do
                [ -e "$f" ] && printf '%s\n' "$f"
        done
        return 0
}

# dump DB OUT: schema and data, without coord's own tables, and without the random
# \restrict key newer pg_dump versions write.
dump() {
        pg_dump --no-sync -d "$1" --schema-only --exclude-table='coord_schema_*' | grep -v '^\\\(un\)\?restrict ' >"$2.schema"
        pg_dump --no-sync -d "$1" --data-only --exclude-table='coord_schema_*' | grep -v '^\\\(un\)\?restrict ' >"$2.data"
}

summary=""
failed=0
for dir in "$CORPUS"/*/; do
        set_name=$(basename "$dir")
        if [ -n "${CORPUS_SETS:-}" ]; then
                case " $CORPUS_SETS " in *" $set_name "*) ;; *) continue ;; esac
        fi
        db=$(printf '%s' "$set_name" | tr -c 'a-z0-9\n' '_')
        q "CREATE DATABASE ${db}_coord" >/dev/null
        q "CREATE DATABASE ${db}_psql" >/dev/null
        out=$T/$set_name
        problems=""

        # psql, one session per file.
        for f in $(ordered "$dir"); do
                if ! psql -X -q -v ON_ERROR_STOP=1 -d "$base/${db}_psql" -f "$f" >"$out.psql.log" 2>&1; then
                        cat "$out.psql.log" >&2
                        fail "$set_name: the corpus itself is broken: psql -f $(basename "$f") failed"
                fi
        done

        # coordctl migrate.
        rc=$(run_migrate "$out.coord.log" --dir "$dir" --database "$base/${db}_coord" --redis "$REDIS_URL")
        if [ "$rc" != 0 ]; then
                note "$set_name: coordctl migrate exit $rc:"
                sed 's/^/#   /' "$out.coord.log" >&2
                problems="coordctl migrate exit $rc: $(grep -v '^applied ' "$out.coord.log" | tail -n1)"
        else
                dump "$base/${db}_coord" "$out.coord"
                dump "$base/${db}_psql" "$out.psql"
                if ! diff -u "$out.psql.schema" "$out.coord.schema" >"$out.schema.diff"; then
                        note "$set_name: pg_dump --schema-only differs (- psql, + coord):"
                        sed 's/^/#   /' "$out.schema.diff" | head -n 60 >&2
                        problems="schema differs"
                fi
                if ! diff -u "$out.psql.data" "$out.coord.data" >"$out.data.diff"; then
                        note "$set_name: the data differ (- psql, + coord):"
                        sed 's/^/#   /' "$out.data.diff" | head -n 60 >&2
                        problems="${problems:+$problems; }data differ"
                fi
                rc=$(run_migrate "$out.again.log" --dir "$dir" --database "$base/${db}_coord" --redis "$REDIS_URL")
                if [ "$rc" != 0 ] || ! grep -q "nothing to apply" "$out.again.log"; then
                        sed 's/^/#   /' "$out.again.log" >&2
                        problems="${problems:+$problems; }a second apply exit $rc, not up to date"
                fi
        fi
        outcome=${problems:-ok}
        [ "$outcome" = ok ] || failed=$((failed + 1))
        summary="$summary
  $set_name: $outcome"
done

echo "migrate-corpus:$summary"
[ "$failed" = 0 ] || fail "$failed corpus set(s) differ between coordctl migrate and psql -f"
echo "migrate-corpus: ok"
