# Coming from Flyway: coordctl migrate takes over a flyway_schema_history (created exactly
# as Flyway creates it on PostgreSQL) without running again what Flyway applied; a
# BASELINE row; a failed Flyway row is refused; a file changed since Flyway applied it is
# caught with Flyway's own checksum; ${placeholders}; U undo files, callbacks and
# .sql.conf files are refused.
. "$top_srcdir/tests/e2e/migrate-lib.sh"
harness_need python3
harness_init
harness_start_postgres
harness_start_redis
unset COORD_REDIS || true
T=$COORD_TEST_DIR
O=$T/out
DB="postgresql://postgres@127.0.0.1:$PG_PORT/postgres"

# Flyway's checksum of a file, computed independently of coord: CRC32 of the lines
# without their terminators, a leading BOM dropped, as a signed 32-bit integer.
fw_crc() {
        python3 -c 'import sys, zlib
d = open(sys.argv[1], "rb").read()
d = d[3:] if d.startswith(b"\xef\xbb\xbf") else d
c = zlib.crc32(d.replace(b"\r", b"").replace(b"\n", b""))
print(c - (1 << 32) if c >= 1 << 31 else c)' "$1"
}

# flyway_table SCHEMA: flyway_schema_history as PostgreSQLDatabase.getRawCreateScript()
# creates it (Flyway 7 to 11).
flyway_table() {
        q "CREATE TABLE \"$1\".\"flyway_schema_history\" (
    \"installed_rank\" INT NOT NULL,
    \"version\" VARCHAR(50),
    \"description\" VARCHAR(200) NOT NULL,
    \"type\" VARCHAR(20) NOT NULL,
    \"script\" VARCHAR(1000) NOT NULL,
    \"checksum\" INTEGER,
    \"installed_by\" VARCHAR(100) NOT NULL,
    \"installed_on\" TIMESTAMP NOT NULL DEFAULT now(),
    \"execution_time\" INTEGER NOT NULL,
    \"success\" BOOLEAN NOT NULL
);
ALTER TABLE \"$1\".\"flyway_schema_history\" ADD CONSTRAINT \"flyway_schema_history_pk\" PRIMARY KEY (\"installed_rank\");
CREATE INDEX \"flyway_schema_history_s_idx\" ON \"$1\".\"flyway_schema_history\" (\"success\");" >/dev/null
}

# flyway_applied SCHEMA RANK DIR FILE [SUCCESS]: run FILE as Flyway would have (into
# SCHEMA) and record it the way Flyway does.
flyway_applied() {
        s=$1 rank=$2 f=$3/$4 ok=${5:-true}
        v=${4#V}
        v=$(printf '%s' "${v%%__*}" | tr _ .)
        d=${4#*__}
        d=$(printf '%s' "${d%.sql}" | tr _ ' ')
        if [ "$ok" = true ]; then
                psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -c "SET search_path = $s" -f "$f" >/dev/null
        fi
        q "INSERT INTO \"$s\".flyway_schema_history (installed_rank, version, description, type, script, checksum,
           installed_by, execution_time, success)
           VALUES ($rank, '$v', '$d', 'SQL', '$4', $(fw_crc "$f"), 'deployer', 17, $ok)" >/dev/null
}

# --- the directory: V1..V3 applied by Flyway, V4 and V5 new ------------------------------------------
D=$T/m
mig "$D" V1__create_users.sql "CREATE TABLE users (id int PRIMARY KEY, name text);"
mig "$D" V2__create_orders.sql "CREATE TABLE orders (id int PRIMARY KEY, user_id int REFERENCES users);"
mig "$D" V3__add_email.sql "ALTER TABLE users ADD COLUMN email text;"
mig "$D" V4__create_items.sql "CREATE TABLE items (id int);"
mig "$D" V5__index_items.sql "CREATE INDEX items_id ON items (id);"

q "CREATE SCHEMA fw" >/dev/null
flyway_table fw
q "INSERT INTO fw.flyway_schema_history VALUES (0, NULL, '<< Flyway Schema Creation >>', 'SCHEMA', '\"fw\"', NULL,
   'deployer', now(), 0, true)" >/dev/null
for i in 1 2 3; do
        flyway_applied fw "$i" "$D" "$(cd "$D" && ls V${i}__*)"
done
DBF="$DB?options=-csearch_path%3Dfw"

# Before anything is written, status and plan already know what Flyway applied.
expect_rc 0 "$O" status --dir "$D" --database "$DBF"
[ "$(grep -c 'flyway:deployer.*taken over by the next apply' "$O")" = 3 ] || { cat "$O"; fail "status before adoption"; }
expect_in "$O" "5 migrations: 3 applied 2 pending (3 to take over from flyway_schema_history)"
expect_rc 0 "$O" plan --dir "$D" --database "$DBF"
expect_in "$O" "2 to apply."
expect_in "$O" "First, 3 rows of flyway_schema_history will be taken over"
expect_not_in "$O" "V1__"
[ "$(q "SELECT to_regclass('fw.coord_schema_history') IS NULL")" = t ] || fail "status/plan wrote a history"

# The first apply takes over, then runs only V4 and V5.
expect_rc 0 "$O" --dir "$D" --database "$DBF" --redis "$REDIS_URL"
expect_in "$O" "applied V4__create_items.sql"
expect_in "$O" "applied V5__index_items.sql"
expect_in "$O" "applied 2 migrations"
expect_not_in "$O" "applied V1"
expect_in "$O" "Took over 3 rows of flyway_schema_history"
[ "$(q "SELECT string_agg(version || ':' || installed_by || ':' || type, ',' ORDER BY \"rank\") FROM fw.coord_schema_history")" = \
  "1:flyway:deployer:versioned,2:flyway:deployer:versioned,3:flyway:deployer:versioned,4:postgres@$(hostname):versioned,5:postgres@$(hostname):versioned" ] ||
        fail "history: $(q "SELECT string_agg(version || ':' || installed_by, ',' ORDER BY \"rank\") FROM fw.coord_schema_history")"
# coord's SHA-256 of the files present; Flyway's description, time and duration kept.
[ "$(q "SELECT checksum FROM fw.coord_schema_history WHERE version = '2'")" = "$(sha256sum <"$D/V2__create_orders.sql" | cut -d' ' -f1)" ] ||
        fail "adopted checksum is not the file's SHA-256"
[ "$(q "SELECT description || '/' || execution_ms FROM fw.coord_schema_history WHERE version = '1'")" = "create users/17" ] ||
        fail "adopted description/execution time"
[ "$(q "SELECT count(*) FROM fw.flyway_schema_history")" = 4 ] || fail "Flyway's table changed"
expect_rc 0 "$O" status --dir "$D" --database "$DBF"
[ "$(grep -c 'flyway:deployer.*# adopted from flyway_schema_history' "$O")" = 3 ] || { cat "$O"; fail "status: adopted rows"; }
expect_in "$O" "5 migrations: 5 applied (3 adopted from flyway_schema_history)"
"$COORDCTL" --output json migrate status --dir "$D" --database "$DBF" >"$O"
[ "$(grep -c '"adopted": true' "$O")" = 3 ] || { cat "$O"; fail "JSON adopted"; }
expect_rc 0 "$O" validate --dir "$D" --database "$DBF"
expect_rc 0 "$O" --dir "$D" --database "$DBF" --redis "$REDIS_URL"
expect_in "$O" "nothing to apply"
expect_not_in "$O" "Took over"

# --- several runners at once on a Flyway schema: one takes over, the others wait --------------------
q "CREATE SCHEMA fwc" >/dev/null
flyway_table fwc
for i in 1 2 3; do
        flyway_applied fwc "$i" "$D" "$(cd "$D" && ls V${i}__*)"
done
for i in 1 2 3; do
        harness_spawn "c$i" "$COORDCTL" migrate --dir "$D" --database "$DB?options=-csearch_path%3Dfwc" --redis "$REDIS_URL"
done
for i in 1 2 3; do
        eval "pid=\$PID_c$i"
        wait "$pid" || fail "concurrent runner $i failed: $(cat "$T/c$i.log")"
done
[ "$(q "SELECT count(*) FILTER (WHERE installed_by = 'flyway:deployer') || '/' || count(*) FROM fwc.coord_schema_history")" = 3/5 ] ||
        fail "concurrent takeover: $(q "SELECT string_agg(version || ':' || installed_by, ',') FROM fwc.coord_schema_history")"

# --- a BASELINE row (flyway baseline on an existing schema), then V3 by Flyway -----------------------
q "CREATE SCHEMA fwb" >/dev/null
flyway_table fwb
q "CREATE TABLE fwb.users (id int PRIMARY KEY, name text); CREATE TABLE fwb.orders (id int PRIMARY KEY, user_id int REFERENCES fwb.users);
   INSERT INTO fwb.flyway_schema_history VALUES (1, '2', '<< Flyway Baseline >>', 'BASELINE', '<< Flyway Baseline >>', NULL,
   'deployer', now(), 0, true)" >/dev/null
flyway_applied fwb 2 "$D" V3__add_email.sql
DBB="$DB?options=-csearch_path%3Dfwb"
expect_rc 0 "$O" --dir "$D" --database "$DBB" --redis "$REDIS_URL"
expect_in "$O" "applied 2 migrations"
expect_not_in "$O" "applied V1"
expect_not_in "$O" "applied V3"
expect_rc 0 "$O" status --dir "$D" --database "$DBB"
[ "$(grep -c '^versioned .* ignored ' "$O")" = 2 ] || { cat "$O"; fail "status: V1 and V2 ignored (at or below the baseline)"; }
expect_in "$O" "the baseline version: not run; adopted from flyway_schema_history"
expect_in "$O" "5 migrations: 3 applied 2 ignored (2 adopted from flyway_schema_history)"
[ "$(q "SELECT type FROM fwb.coord_schema_history WHERE version = '2'")" = baseline ] || fail "BASELINE row"

# --- a failed Flyway row: refused, nothing taken over or applied ------------------------------------
q "CREATE SCHEMA fwf" >/dev/null
flyway_table fwf
flyway_applied fwf 1 "$D" V1__create_users.sql
flyway_applied fwf 2 "$D" V2__create_orders.sql false
DBX="$DB?options=-csearch_path%3Dfwf"
expect_rc 1 "$O" --dir "$D" --database "$DBX" --redis "$REDIS_URL"
expect_in "$O" "V2__create_orders.sql: failed in Flyway"
expect_in "$O" "flyway repair"
[ "$(q "SELECT count(*) FROM fwf.coord_schema_history")" = 0 ] || fail "a failed Flyway row was taken over"
[ "$(q "SELECT to_regclass('fwf.items') IS NULL")" = t ] || fail "applied despite a failed Flyway row"
expect_rc 1 "$O" repair --dir "$D" --database "$DBX" --redis "$REDIS_URL"
expect_in "$O" "failed in Flyway"
expect_rc 4 "$O" validate --dir "$D" --database "$DBX"

# --- a file changed since Flyway applied it: Flyway's checksum catches it -----------------------------
q "CREATE SCHEMA fwx" >/dev/null
flyway_table fwx
D2=$T/m2
cp -r "$D" "$D2"
for i in 1 2 3; do
        flyway_applied fwx "$i" "$D2" "$(cd "$D2" && ls V${i}__*)"
done
DBC="$DB?options=-csearch_path%3Dfwx"
# Line endings only: the same file for Flyway (and for coord, once taken over).
sed -i 's/$/\r/' "$D2/V1__create_users.sql"
echo "-- edited after Flyway ran it" >>"$D2/V2__create_orders.sql"
expect_rc 4 "$O" --dir "$D2" --database "$DBC" --redis "$REDIS_URL"
expect_in "$O" "V2__create_orders.sql: changed since Flyway applied it"
expect_not_in "$O" "V1__create_users.sql: changed"
[ "$(q "SELECT count(*) FROM fwx.coord_schema_history")" = 0 ] || fail "taken over despite a changed file"
# repair takes over and accepts the file as it is; then apply runs the rest.
expect_rc 0 "$O" repair --dir "$D2" --database "$DBC" --redis "$REDIS_URL"
expect_in "$O" "V2__create_orders.sql: checksum realigned"
expect_rc 0 "$O" --dir "$D2" --database "$DBC" --redis "$REDIS_URL"
expect_in "$O" "applied 2 migrations"
expect_rc 0 "$O" validate --dir "$D2" --database "$DBC"

# --- placeholders -----------------------------------------------------------------------------------------
q "CREATE SCHEMA ph; CREATE ROLE ph_owner NOLOGIN" >/dev/null
D3=$T/m3
mig "$D3" V1__tables.sql "CREATE TABLE \${table_prefix}_users (id int);
ALTER TABLE \${TABLE_PREFIX}_users OWNER TO \${owner};
COMMENT ON TABLE \${table_prefix}_users IS 'in \${flyway:defaultSchema} by \${flyway:user} from \${flyway:filename}';"
mig "$D3" V2__function.sql "CREATE FUNCTION \${table_prefix}_count() RETURNS bigint LANGUAGE plpgsql AS \$fn\$
BEGIN
  RETURN (SELECT count(*) FROM \${table_prefix}_users); -- replaced inside the dollar quotes too
END;
\$fn\$;"
mig "$D3" R__view.sql "CREATE OR REPLACE VIEW user_view AS SELECT id, '\${label}'::text AS label FROM \${table_prefix}_users;"
DBP="$DB?options=-csearch_path%3Dph"
# Unknown: exit 2 naming the file, the line and the key; nothing applied.
(unset FLYWAY_PLACEHOLDERS_OWNER COORD_PLACEHOLDER_LABEL; expect_rc 2 "$O" --dir "$D3" --database "$DBP" --placeholder table_prefix=app) || exit 1
expect_in "$O" "R__view.sql:1: no value for placeholder \${label}"
(unset FLYWAY_PLACEHOLDERS_OWNER; expect_rc 2 "$O" --dir "$D3" --database "$DBP" --placeholder table_prefix=app --placeholder label=x) || exit 1
expect_in "$O" "V1__tables.sql:2: no value for placeholder \${owner} (pass --placeholder owner=VALUE, or set COORD_PLACEHOLDER_OWNER"
[ "$(q "SELECT to_regclass('ph.app_users') IS NULL")" = t ] || fail "applied despite an unknown placeholder"
expect_rc 2 "$O" --dir "$D3" --database "$DBP" --placeholder novalue
expect_in "$O" "--placeholder 'novalue': expected KEY=VALUE"
# From Flyway's environment variables, coord's (which win over Flyway's), and flags (which win over both).
(
        export FLYWAY_PLACEHOLDERS_OWNER=nobody_here COORD_PLACEHOLDER_OWNER=ph_owner FLYWAY_PLACEHOLDERS_LABEL=first
        expect_rc 0 "$O" --dir "$D3" --database "$DBP" --redis "$REDIS_URL" --placeholder table_prefix=wrong \
                --placeholder TABLE_PREFIX=app
) || exit 1
expect_in "$O" "applied 3 migrations"
[ "$(q "SELECT tableowner FROM pg_tables WHERE schemaname = 'ph' AND tablename = 'app_users'")" = ph_owner ] || fail "owner placeholder"
[ "$(q "SELECT obj_description('ph.app_users'::regclass)")" = "in ph by postgres from V1__tables.sql" ] ||
        fail "built-in placeholders: $(q "SELECT obj_description('ph.app_users'::regclass)")"
[ "$(q "SET search_path = ph; SELECT app_count()")" = 0 ] || fail "placeholder in a dollar-quoted body"
q "SELECT pg_get_viewdef('ph.user_view')" | grep -q "'first'" || fail "placeholder in a repeatable"
# A versioned file's checksum is the file as written (as Flyway's); a repeatable's covers the values.
[ "$(q "SELECT checksum FROM ph.coord_schema_history WHERE version = '1'")" = "$(sha256sum <"$D3/V1__tables.sql" | cut -d' ' -f1)" ] ||
        fail "versioned checksum is not over the file as written"
export COORD_PLACEHOLDER_OWNER=ph_owner COORD_PLACEHOLDER_TABLE_PREFIX=app COORD_PLACEHOLDER_LABEL=first
expect_rc 0 "$O" --dir "$D3" --database "$DBP" --redis "$REDIS_URL"
expect_in "$O" "nothing to apply"
export COORD_PLACEHOLDER_LABEL=second
expect_rc 0 "$O" status --dir "$D3" --database "$DBP"
grep -q "^repeatable .* changed " "$O" || { cat "$O"; fail "a changed placeholder value should re-run the repeatable"; }
expect_rc 0 "$O" --dir "$D3" --database "$DBP" --redis "$REDIS_URL"
expect_in "$O" "applied R__view.sql"
q "SELECT pg_get_viewdef('ph.user_view')" | grep -q "'second'" || fail "repeatable re-run with the new value"
# A pending version with placeholders is split again after replacement (here: detected as
# one that runs without a transaction).
mig "$D3" V3__index.sql "CREATE INDEX CONCURRENTLY \${table_prefix}_users_id ON \${table_prefix}_users (id);"
expect_rc 0 "$O" plan --dir "$D3" --database "$DBP"
expect_in "$O" "V3__index.sql"
expect_in "$O" "no transaction (detected: CREATE INDEX CONCURRENTLY at line 1)"
expect_rc 0 "$O" --dir "$D3" --database "$DBP" --redis "$REDIS_URL"
expect_in "$O" "applied V3__index.sql"
[ "$(q "SELECT indisvalid FROM pg_index WHERE indexrelid = 'ph.app_users_id'::regclass")" = t ] || fail "index from V3"
# Replacement off (Flyway's switch): files run as written.
mig "$T/m4" V1__literal.sql "CREATE TABLE literal (t text DEFAULT '\${not_replaced}');"
(export FLYWAY_PLACEHOLDER_REPLACEMENT=false; expect_rc 0 "$O" --dir "$T/m4" --database "$DB" --redis "$REDIS_URL") || exit 1
[ "$(q "SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = 'literal'::regclass")" = "'\${not_replaced}'::text" ] ||
        fail "replacement off"
unset COORD_PLACEHOLDER_OWNER COORD_PLACEHOLDER_TABLE_PREFIX COORD_PLACEHOLDER_LABEL

# --- Flyway files coord does not run: exit 2 with a clear message, before connecting -------------------
mig "$T/u" V1__a.sql "SELECT 1;"
mig "$T/u" U1__undo.sql "DROP TABLE a;"
expect_rc 2 "$O" --dir "$T/u" --database "$DB"
expect_in "$O" "U1__undo.sql: undo migrations are not supported (coord never undoes; write a new versioned migration)"
mig "$T/cb" V1__a.sql "SELECT 1;"
mig "$T/cb" afterMigrate.sql "ANALYZE;"
expect_rc 2 "$O" --dir "$T/cb" --database "$DB"
expect_in "$O" "afterMigrate.sql: Flyway callbacks (afterMigrate) are not supported"
mig "$T/conf" V1__a.sql "SELECT 1;"
printf 'executeInTransaction=false\n' >"$T/conf/V1__a.sql.conf"
expect_rc 2 "$O" --dir "$T/conf" --database "$DB"
expect_in "$O" "V1__a.sql.conf: Flyway per-script configuration is not read"
echo "migrate-flyway: ok"
