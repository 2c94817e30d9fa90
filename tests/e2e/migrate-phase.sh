# coordctl migrate --phase: expand/contract.  A post-deploy ("-- coord:post-deploy")
# version is held back by --phase pre even below a version that runs, recorded as
# deferred so that status and validate call it no gap; --phase post applies it
# afterwards; --phase all (the default) applies everything in version order.
. "$top_srcdir/tests/e2e/migrate-lib.sh"
migrate_init --redis --no-coord-redis
DB=$DATABASE_URL

# has_column TABLE COLUMN [SCHEMA]: t or f
has_column() {
        q "SELECT count(*) = 1 FROM information_schema.columns WHERE table_schema = '${3:-public}' AND table_name = '$1' AND column_name = '$2'"
}

# plan_runs OUTFILE: "SCRIPT/PHASE ..." of the numbered lines of a text plan, in order.
plan_runs() {
        awk '/^ *[0-9]+\. / { for (i = 2; i < NF; i++) if ($i ~ /\.sql$/) { printf "%s/%s ", $i, $(i + 1); break } }' "$1"
}

# status_row OUTFILE VERSION: the status row of one version ("TYPE VERSION PHASE ...").
status_row() {
        awk -v v="$2" '$1 == "versioned" && $2 == v' "$1"
}

mig "$D" V1__create_t.sql "CREATE TABLE t (a int, b int);"
mig "$D" V2__drop_a.sql "-- Contract: no release reads t.a any more.
-- coord:post-deploy
ALTER TABLE t DROP COLUMN a;"
mig "$D" V3__add_c.sql "ALTER TABLE t ADD COLUMN c int;"
mig "$D" R__view.sql "CREATE OR REPLACE VIEW t_b AS SELECT b FROM t;"

# --- usage: a bad phase is exit 2 naming the value --------------------------------------------------
expect_rc 2 "$O" apply --phase bogus --dir "$D" --database "$DB" --redis "$REDIS_URL"
expect_in "$O" "--phase: 'bogus' is not a phase"
expect_rc 2 "$O" --phase --dir "$D" --database "$DB"
[ "$(q "SELECT to_regclass('coord_schema_history') IS NULL")" = t ] || fail "a usage error touched the database"

# A post-deploy directive on a repeatable is an error naming the file and line.
mig "$T/badr" V1__ok.sql "SELECT 1;"
mig "$T/badr" R__v.sql "-- a view
-- coord:post-deploy
SELECT 1;"
expect_rc 2 "$O" plan --phase pre --dir "$T/badr" --database "$DB"
expect_in "$O" "R__v.sql:2: directive 'coord:post-deploy' is only valid in versioned migrations"

# --- plan and status show each file's phase -------------------------------------------------------
expect_rc 0 "$O" plan --phase pre --dir "$D" --database "$DB"
expect_in "$O" "3 to apply."
[ "$(plan_runs "$O")" = "V1__create_t.sql/pre V3__add_c.sql/pre R__view.sql/pre " ] ||
        { cat "$O"; fail "plan --phase pre order"; }
grep -qE '^ +versioned +2 +V2__drop_a\.sql +post' "$O" || { cat "$O"; fail "plan --phase pre: V2 not listed as held (post)"; }
expect_rc 0 "$O" plan --dir "$D" --database "$DB"
[ "$(plan_runs "$O")" = "V1__create_t.sql/pre V2__drop_a.sql/post V3__add_c.sql/pre R__view.sql/pre " ] ||
        { cat "$O"; fail "plan (all): order or phases"; }
"$COORDCTL" --output json migrate plan --phase pre --dir "$D" --database "$DB" >"$O"
[ "$(jq -r '.phase' "$O")" = pre ] || { cat "$O"; fail "plan JSON: phase"; }
[ "$(jq -r '[.migrations[] | .script + ":" + .phase] | join(" ")' "$O")" = "V1__create_t.sql:pre V3__add_c.sql:pre R__view.sql:pre" ] ||
        { cat "$O"; fail "plan JSON: entries"; }

# --- --phase pre: V1 and V3 (and the repeatable), not V2; a is still there -----------------------------
expect_rc 0 "$O" apply --phase pre --dir "$D" --database "$DB" --redis "$REDIS_URL"
expect_in "$O" "applied V1__create_t.sql"
expect_in "$O" "applied V3__add_c.sql"
expect_in "$O" "applied R__view.sql"
expect_not_in "$O" "applied V2__drop_a.sql"
expect_in "$O" "applied 3 migrations (1 post-deploy migration held back for --phase post)"
[ "$(has_column t a)$(has_column t b)$(has_column t c)" = ttt ] || fail "after pre: columns a, b, c expected"
# The history records V2 as deferred, in V3's transaction (same fencing token, right before it).
[ "$(q "SELECT string_agg(coalesce(version, '') || ':' || type, ',' ORDER BY \"rank\") FROM coord_schema_history")" = "1:versioned,2:deferred,3:versioned,:repeatable" ] ||
        fail "history after pre: $(q "SELECT string_agg(coalesce(version, '') || ':' || type, ',' ORDER BY \"rank\") FROM coord_schema_history")"
[ "$(q "SELECT count(DISTINCT fencing_token) FROM coord_schema_history")" = 1 ] || fail "fencing tokens after pre"

expect_rc 0 "$O" status --dir "$D" --database "$DB"
status_row "$O" 2 | grep -qE '^versioned +2 +post +.* pending ' || { cat "$O"; fail "status: V2 should be pending, phase post"; }
status_row "$O" 3 | grep -qE '^versioned +3 +pre +.* applied ' || { cat "$O"; fail "status: V3 should be applied, phase pre"; }
expect_in "$O" "runs with --phase post or all"
expect_not_in "$O" "out of order"
"$COORDCTL" --output json migrate status --dir "$D" --database "$DB" >"$O"
[ "$(jq -r '.migrations[] | select(.version == "2") | "\(.phase),\(.state),\(.deferred),\(.problem)"' "$O")" = "post,pending,true,false" ] ||
        { cat "$O"; fail "status JSON: V2"; }
expect_rc 0 "$O" validate --dir "$D" --database "$DB"
expect_in "$O" "validation passed"

# pre again: nothing to do, and nothing more recorded.
expect_rc 0 "$O" apply --phase pre --dir "$D" --database "$DB" --redis "$REDIS_URL"
expect_in "$O" "nothing to apply (1 post-deploy migration held back for --phase post)"
[ "$(q "SELECT count(*) FROM coord_schema_history WHERE type = 'deferred'")" = 1 ] || fail "deferred recorded twice"

# --- --phase post: V2, and nothing else; a is gone ------------------------------------------------------
mig "$D" R__view.sql "CREATE OR REPLACE VIEW t_b AS SELECT b, c FROM t;"
expect_rc 0 "$O" plan --phase post --dir "$D" --database "$DB"
[ "$(plan_runs "$O")" = "V2__drop_a.sql/post " ] || { cat "$O"; fail "plan --phase post"; }
expect_rc 0 "$O" apply --phase post --dir "$D" --database "$DB" --redis "$REDIS_URL"
expect_in "$O" "applied V2__drop_a.sql"
expect_not_in "$O" "applied R__view.sql"
expect_in "$O" "applied 1 migration (1 pending outside --phase post)"
[ "$(has_column t a)$(has_column t b)$(has_column t c)" = ftt ] || fail "after post: a should be gone"
expect_rc 0 "$O" validate --dir "$D" --database "$DB"
expect_rc 0 "$O" status --dir "$D" --database "$DB"
status_row "$O" 2 | grep -qE '^versioned +2 +post +.* applied ' || { cat "$O"; fail "status: V2 should be applied"; }
# A second post is a no-op.
expect_rc 0 "$O" apply --phase post --dir "$D" --database "$DB" --redis "$REDIS_URL"
expect_in "$O" "nothing to apply"
[ "$(q "SELECT count(*) FROM coord_schema_history WHERE version = '2' AND type = 'versioned'")" = 1 ] || fail "V2 applied twice"
# The changed repeatable runs with all (and pre), not post.
expect_rc 0 "$O" --dir "$D" --database "$DB" --redis "$REDIS_URL"
expect_in "$O" "applied R__view.sql"
expect_rc 0 "$O" validate --dir "$D" --database "$DB"

# A post-deploy file edited after it was applied is a checksum mismatch like any versioned one.
echo "-- edited" >>"$D/V2__drop_a.sql"
expect_rc 4 "$O" validate --dir "$D" --database "$DB"
expect_in "$O" "V2__drop_a.sql: changed"
expect_rc 4 "$O" apply --phase post --dir "$D" --database "$DB" --redis "$REDIS_URL"
expect_rc 4 "$O" apply --phase pre --dir "$D" --database "$DB" --redis "$REDIS_URL"

# schema_trio SCHEMA DIR V1_FILE V1_SQL: a new SCHEMA (SCHEMA_DB: $DB using it) and
# in DIR V1_FILE (V1_SQL, creating t (a, b)), V2 (post-deploy: drop a), V3 (add c).
schema_trio() {
        q "CREATE SCHEMA $1" >/dev/null
        SCHEMA_DB="$DB?options=-csearch_path%3D$1"
        mig "$2" "$3" "$4"
        mig "$2" V2__drop_a.sql "-- coord:post-deploy
ALTER TABLE t DROP COLUMN a;"
        mig "$2" V3__add_c.sql "ALTER TABLE t ADD COLUMN c int;"
}

# --- --phase all on a fresh schema: V1, V2, V3 in order ------------------------------------------------
D2=$T/m2
schema_trio fresh "$D2" V1__create_t.sql "CREATE TABLE t (a int, b int);"
DBF=$SCHEMA_DB
expect_rc 0 "$O" apply --phase all --dir "$D2" --database "$DBF" --redis "$REDIS_URL"
expect_in "$O" "applied 3 migrations"
[ "$(grep '^applied V' "$O" | awk '{print $2}' | tr '\n' ' ')" = "V1__create_t.sql V2__drop_a.sql V3__add_c.sql " ] ||
        { cat "$O"; fail "all: order"; }
[ "$(q "SELECT string_agg(version || ':' || type, ',' ORDER BY \"rank\") FROM fresh.coord_schema_history")" = "1:versioned,2:versioned,3:versioned" ] ||
        fail "all: history"
[ "$(has_column t a fresh)$(has_column t c fresh)" = ft ] || fail "all: columns"

# --- post before pre is refused when it would leave a pre-deploy version below it pending ---------------
mig "$D2" V4__add_d.sql "ALTER TABLE t ADD COLUMN d int;"
mig "$D2" V5__drop_b.sql "-- coord:post-deploy
ALTER TABLE t DROP COLUMN b;"
expect_rc 1 "$O" apply --phase post --dir "$D2" --database "$DBF" --redis "$REDIS_URL"
expect_in "$O" "V5__drop_b.sql: post-deploy, but the pre-deploy V4__add_d.sql below it is pending: run --phase pre first"
[ "$(has_column t b fresh)$(has_column t d fresh)" = tf ] || fail "refused post changed the schema"
# pre applies V4 alone (V5 is above everything that runs: nothing to record), then post V5.
expect_rc 0 "$O" apply --phase pre --dir "$D2" --database "$DBF" --redis "$REDIS_URL"
expect_in "$O" "applied 1 migration (1 post-deploy migration held back for --phase post)"
[ "$(q "SELECT count(*) FROM fresh.coord_schema_history WHERE type = 'deferred'")" = 0 ] || fail "V5 recorded as deferred"
expect_rc 0 "$O" apply --phase post --dir "$D2" --database "$DBF" --redis "$REDIS_URL"
expect_in "$O" "applied V5__drop_b.sql"
[ "$(has_column t b fresh)$(has_column t d fresh)" = ft ] || fail "post: V5"
expect_rc 0 "$O" validate --dir "$D2" --database "$DBF"
# The version that jumps over a post-deploy one may be a no-transaction file: the deferral is
# recorded with its history row, at its end.
mig "$D2" V6__drop_d.sql "-- coord:post-deploy
ALTER TABLE t DROP COLUMN d;"
mig "$D2" V7__index_c.sql "-- coord:no-transaction
CREATE INDEX CONCURRENTLY t_c ON t (c);"
expect_rc 0 "$O" apply --phase pre --dir "$D2" --database "$DBF" --redis "$REDIS_URL"
expect_in "$O" "applied V7__index_c.sql"
[ "$(q "SELECT string_agg(version || ':' || type, ',' ORDER BY \"rank\") FROM fresh.coord_schema_history WHERE version::int >= 6")" = "6:deferred,7:versioned" ] ||
        fail "no-transaction carrier: history"
expect_rc 0 "$O" validate --dir "$D2" --database "$DBF"
expect_rc 0 "$O" apply --phase post --dir "$D2" --database "$DBF" --redis "$REDIS_URL"
expect_in "$O" "applied V6__drop_d.sql"
[ "$(has_column t d fresh)" = f ] || fail "post: V6"
expect_rc 0 "$O" validate --dir "$D2" --database "$DBF"

# --- concurrent runners of one phase: one applies, the others wait for that phase's target ------------
D3=$T/m3
schema_trio conc "$D3" V1__slow.sql "CREATE TABLE t (a int, b int); SELECT pg_sleep(1);"
DBC=$SCHEMA_DB
for i in 1 2 3; do
        harness_spawn "pre$i" "$COORDCTL" migrate apply --phase pre --dir "$D3" --database "$DBC" --redis "$REDIS_URL" --wait-timeout 30s
done
for i in 1 2 3; do
        eval "pid=\$PID_pre$i"
        wait "$pid" || { cat "$T/pre$i.log" >&2; fail "pre runner $i failed"; }
done
[ "$(cat "$T"/pre?.log | grep -c 'applied 2 migrations')" = 1 ] || { cat "$T"/pre?.log; fail "pre: exactly one runner applies"; }
[ "$(cat "$T"/pre?.log | grep -c 'nothing to apply')" = 2 ] || { cat "$T"/pre?.log; fail "pre: the others find nothing"; }
[ "$(has_column t a conc)$(has_column t c conc)" = tt ] || fail "concurrent pre: columns"
[ "$(q "SELECT string_agg(version || ':' || type, ',' ORDER BY \"rank\") FROM conc.coord_schema_history")" = "1:versioned,2:deferred,3:versioned" ] ||
        fail "concurrent pre: history"
for i in 1 2; do
        harness_spawn "post$i" "$COORDCTL" migrate apply --phase post --dir "$D3" --database "$DBC" --redis "$REDIS_URL" --wait-timeout 30s
done
for i in 1 2; do
        eval "pid=\$PID_post$i"
        wait "$pid" || { cat "$T/post$i.log" >&2; fail "post runner $i failed"; }
done
[ "$(cat "$T"/post?.log | grep -c 'applied V2__drop_a.sql')" = 1 ] || { cat "$T"/post?.log; fail "post: exactly one runner applies"; }
[ "$(has_column t a conc)" = f ] || fail "concurrent post: a should be gone"
expect_rc 0 "$O" validate --dir "$D3" --database "$DBC"
# --- the example directory: its post-deploy step is held back by pre, applied by post --------------------
q "CREATE SCHEMA ex" >/dev/null
DBE="$DB?options=-csearch_path%3Dex"
EX=$top_srcdir/deploy/examples/migrations
expect_rc 0 "$O" apply --phase pre --dir "$EX" --database "$DBE" --redis "$REDIS_URL"
expect_in "$O" "held back for --phase post"
[ "$(has_column greetings created_at ex)" = t ] || fail "example: pre dropped created_at"
expect_rc 0 "$O" status --dir "$EX" --database "$DBE"
grep -qE '^versioned +3 +post +.* pending ' "$O" || { cat "$O"; fail "example: V3 should be pending, phase post"; }
expect_rc 0 "$O" apply --phase post --dir "$EX" --database "$DBE" --redis "$REDIS_URL"
expect_in "$O" "applied V3__drop_greetings_created_at.sql"
[ "$(has_column greetings created_at ex)" = f ] || fail "example: post kept created_at"
expect_rc 0 "$O" validate --dir "$EX" --database "$DBE"
echo "migrate-phase: ok"
