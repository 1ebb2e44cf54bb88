#!/usr/bin/env bash
# The shared tracking database on a real PostgreSQL: the project id scopes
# runs and models (two clones share them), which setting wins, a schema
# newer than mlx knows, passwords kept out of messages, liveness across
# machines by heartbeat after kill -9, and 32 processes writing at once.
MLX_TEST_BACKEND=postgresql
. "$(dirname "$0")/tap.sh"

psql_mlx() { "$MLX_PG_BIN/psql" -qAtX -v ON_ERROR_STOP=1 -d "$MLX_PG_URI" -c "$1"; }

# --- two clones of one project, and another project -----------------------
mkdir a b other
(cd a && "$MLX" init >/dev/null)
cp -r a/.mlx/config.lua b/ 2>/dev/null
mkdir -p b/.mlx && mv b/config.lua b/.mlx/config.lua
(cd other && "$MLX" init >/dev/null)
id_a=$(sed -n 's/^ *project = "\([a-z0-9]*\)".*/\1/p' a/.mlx/config.lua)
id_other=$(sed -n 's/^ *project = "\([a-z0-9]*\)".*/\1/p' other/.mlx/config.lua)
like "$id_a" '^[0-9a-z]{16}$' "mlx init writes a project id into the committed config"
isnt() { if [ "$1" != "$2" ]; then tap_result 0 "$3"; else tap_result 1 "$3"; echo "#   both: $1"; fi; }
isnt "$id_a" "$id_other" "each project gets its own"

cat >a/train.lua <<'LUA'
local mlx = require "mlx"
mlx.log.params { lr = 0.1 }
for i = 1, 3 do mlx.log.metric("loss", 1 / i) end
local f = assert(io.open("model.json", "w"))
f:write('{"w": 1}\n')
f:close()
LUA
cp a/train.lua b/train.lua
cd a || exit 1
mlx recipe train.lua
is "$RC" 0 "machine A runs a recipe into PostgreSQL"
mlx model register iris model.json -a staging
is "$RC" 0 "and registers its model"
cd ../b || exit 1
mlx runs
is "$(printf '%s\n' "$OUT" | awk 'NR > 1 { print $2, $3, $NF }')" "train.lua FINISHED 0.333333" \
	"a second clone of the project sees the run"
mlx model ls
like "$(printf '%s\n' "$OUT" | sed -n 2p)" '^iris +1 +1 +staging=1 ' "and the model with its alias"
[ ! -e .mlx/runs.db ]
is "$?" 0 "with no runs.db of its own"
cd ../other || exit 1
mlx runs
is "$RC $(printf '%s\n' "$OUT" | wc -l)" "0 1" "another project in the same database sees none of them"
mlx model ls
is "$(printf '%s\n' "$OUT" | grep -c iris)" 0 "nor their models"
cd .. || exit 1

# --- migration 2: the redundant runs_by_parent index goes ------------------
index_count() { psql_mlx "SELECT count(*) FROM pg_indexes WHERE schemaname = 'mlx_$id_a' AND indexname = '$1'"; }
is "$(index_count runs_by_parent) $(index_count runs_by_parent_start)" "0 1" \
	"a new project's schema has runs_by_parent_start and not runs_by_parent"
# The schema as migration 1 left it, with its runs.
psql_mlx "CREATE INDEX runs_by_parent ON mlx_$id_a.runs (parent_id) WHERE parent_id IS NOT NULL;
	DELETE FROM mlx_$id_a.mlx_schema WHERE version > 1"
cd a || exit 1
mlx runs
is "$RC $(printf '%s\n' "$OUT" | awk 'NR > 1 { print $2, $3 }')" "0 train.lua FINISHED" \
	"a schema at version 1 opens, its runs kept"
cd .. || exit 1
is "$(index_count runs_by_parent) $(index_count runs_by_parent_start)" "0 1" \
	"migration 2 drops runs_by_parent and keeps runs_by_parent_start"
is "$(psql_mlx "SELECT max(version) FROM mlx_$id_a.mlx_schema")" 2 "and records version 2"

# --- which setting wins -----------------------------------------------------
mkdir order && cd order || exit 1
"$MLX" init >/dev/null
printf 'print("x")\n' >r.lua
MLX_TRACKING_URI= MLX_RUNS_DB="$TEST_DIR/order/env.db" mlx recipe r.lua
[ -f env.db ]
is "$?" 0 "without MLX_TRACKING_URI or a config setting, MLX_RUNS_DB is used"
sed -i "s|^return {|return {\n  tracking = \"$MLX_PG_URI\",|" .mlx/config.lua
MLX_TRACKING_URI= MLX_RUNS_DB="$TEST_DIR/order/env.db" mlx recipe r.lua
MLX_TRACKING_URI= mlx runs --json
is "$(printf '%s' "$OUT" | grep -c '"recipe": "r.lua"')" 1 "tracking in .mlx/config.lua wins over MLX_RUNS_DB"
MLX_TRACKING_URI="$TEST_DIR/order/uri.db" mlx recipe r.lua
[ -f uri.db ]
is "$?" 0 "and MLX_TRACKING_URI (here a path) wins over the config"
cd .. || exit 1

# --- passwords stay out of messages; host= stays ----------------------------
cd other || exit 1
MLX_TRACKING_URI="postgresql://mlxuser:s3cret@localhost/nodb?host=$PGHOST&password=hunter2" mlx runs
is "$RC" 2 "a role the server does not have is bad input (exit 2): no retry cures it"
like "$ERR" "host=$PGHOST" "its message keeps host="
like "$ERR" 'role "mlxuser" does not exist; check the user and database in the URI$' "and says what to check"
case "$ERR" in *s3cret* | *hunter2*) tap_result 1 "and shows no password"; echo "# $ERR" ;; *) tap_result 0 "and shows no password" ;; esac
MLX_TRACKING_URI="postgresql:///nodb?host=$PGHOST" mlx runs
is "$RC" 2 "a database the server does not have is exit 2"
like "$ERR" 'database "nodb" does not exist; check the user and database in the URI$' "naming it"
MLX_TRACKING_URI="postgresql:///mlx?host=$TEST_DIR/no-server" mlx runs
is "$RC" 1 "a server that does not answer is a failure of the world (exit 1)"
like "$ERR" "^mlx: error: tracking database postgresql:///mlx\?host=$TEST_DIR/no-server: cannot connect to PostgreSQL: .*; check that the server runs and the host and port in the URI$" \
	"in one line saying what to check"
cd .. || exit 1

# --- a role that logs in with a password --------------------------------------
psql_mlx "CREATE ROLE mlx_pw LOGIN PASSWORD 'right-one'; GRANT ALL ON DATABASE mlx TO mlx_pw"
sed -i '1i local all mlx_pw scram-sha-256' "$TAP_PG/data/pg_hba.conf"
if [ "$(id -u)" -eq 0 ]; then
	runuser -u postgres -- "$MLX_PG_BIN/pg_ctl" -D "$TAP_PG/data" reload >/dev/null
else
	"$MLX_PG_BIN/pg_ctl" -D "$TAP_PG/data" reload >/dev/null
fi
sleep 0.5 # the postmaster reads pg_hba.conf when it gets the signal
mkdir pw && cd pw || exit 1
"$MLX" init >/dev/null
pw_uri="postgresql://mlx_pw@/mlx?host=$PGHOST"
MLX_TRACKING_URI=$pw_uri PGPASSWORD='' mlx runs
is "$RC" 2 "no password for a server that wants one is exit 2"
is "$ERR" "mlx: error: tracking database postgresql://***@/mlx?host=$PGHOST: cannot connect to PostgreSQL: the server wants a password and none was given; set PGPASSWORD, or tracking_password in .mlx/config.local.lua (which git ignores), or a line in ~/.pgpass" \
	"in one line saying where the password goes"
MLX_TRACKING_URI=$pw_uri PGPASSWORD=wrong-one mlx runs
is "$RC" 2 "a wrong password is exit 2"
like "$ERR" 'password authentication failed for user "mlx_pw"; check the user and database in the URI, and the password \(from PGPASSWORD\)$' \
	"naming where the refused password came from"
printf 'return { tracking_password = "wrong-too" }\n' >.mlx/config.local.lua
MLX_TRACKING_URI=$pw_uri PGPASSWORD='' mlx runs
like "$ERR" "the password \(from tracking_password in \.mlx/config\.local\.lua\)$" "or from the local config"
case "$ERR" in *wrong-one* | *wrong-too*) tap_result 1 "and never shows it"; echo "# $ERR" ;; *) tap_result 0 "and never shows it" ;; esac
printf 'return { tracking_password = "right-one" }\n' >.mlx/config.local.lua
MLX_TRACKING_URI=$pw_uri PGPASSWORD='' mlx runs
is "$RC" 0 "the right password in .mlx/config.local.lua logs in"
cd ../a || exit 1
MLX_TRACKING_URI=$pw_uri PGPASSWORD=right-one mlx runs
is "$RC" 2 "a role of its own on a schema another role made is exit 2"
is "$ERR" "mlx: error: tracking database postgresql://***@/mlx?host=$PGHOST: role mlx_pw may not use the schema mlx_$id_a of this project (role $(id -un) made it): connect as $(id -un), or have it grant the schema to mlx_pw (docs/tracking.md, \"Projects\")" \
	"saying which role made it and where the grants are"
psql_mlx "GRANT ALL ON SCHEMA mlx_$id_a TO mlx_pw; GRANT ALL ON ALL TABLES IN SCHEMA mlx_$id_a TO mlx_pw;
	GRANT ALL ON ALL SEQUENCES IN SCHEMA mlx_$id_a TO mlx_pw"
MLX_TRACKING_URI=$pw_uri PGPASSWORD=right-one mlx runs
is "$RC $(printf '%s\n' "$OUT" | awk 'NR > 1 { print $2 }' | sort -u)" "0 train.lua" "the grants of docs/tracking.md let it read the runs"
MLX_TRACKING_URI=$pw_uri PGPASSWORD=right-one mlx model alias iris production 1
is "$RC" 0 "and move an alias"
cd .. || exit 1

# --- a schema newer than this mlx -------------------------------------------
psql_mlx "INSERT INTO mlx_$id_other.mlx_schema (version, applied) VALUES (99, 0)"
cd other || exit 1
mlx runs
is "$RC" 2 "a schema newer than mlx knows is bad input (exit 2)"
like "$ERR" "^mlx: error: tracking database postgresql:///mlx\?host=.*: its schema is version 99, newer than this mlx knows \([0-9]+\): upgrade mlx$" \
	"and the message says what to do"
cd .. || exit 1

# --- kill -9 on machine A, seen from machine B -------------------------------
cat >a/spin.lua <<'LUA'
local mlx = require "mlx"
mlx.log.metric("started", 1)
while true do require("mlx.core").sleep(0.05) end
LUA
cd a || exit 1
MLX_HOSTNAME=machine-a MLX_HEARTBEAT_LIMIT=2 "$MLX" recipe spin.lua 2>/dev/null &
pid=$!
for _ in $(seq 200); do
	MLX_HOSTNAME=machine-b MLX_HEARTBEAT_LIMIT=2 mlx runs --limit 1 --json
	[[ $OUT == *'"started": 1'* && $OUT == *'"status": "RUNNING"'* ]] && break
	sleep 0.05
done
sleep 3
MLX_HOSTNAME=machine-b MLX_HEARTBEAT_LIMIT=2 mlx runs --limit 1 --json
like "$OUT" '"status": "RUNNING"' "a live run of machine A stays RUNNING for machine B past the limit: it beats"
like "$OUT" '"host": "machine-a"' "and records its host"
{
	kill -9 $pid
	wait $pid
} 2>/dev/null
MLX_HOSTNAME=machine-b MLX_HEARTBEAT_LIMIT=2 mlx runs --limit 1 --json
like "$OUT" '"status": "RUNNING"' "right after kill -9 it is still RUNNING for machine B (the limit has not passed)"
sleep 3
MLX_HOSTNAME=machine-b MLX_HEARTBEAT_LIMIT=2 mlx runs --limit 1 --json
like "$OUT" '"status": "KILLED"' "once the heartbeat limit passes, machine B sees it KILLED"
like "$OUT" '"message": "no heartbeat from its mlx process on machine-a for [0-9]+ s \(the limit is 2 s\)"' \
	"with the reason"
cd .. || exit 1

# --- 32 writers at once --------------------------------------------------------
cd a || exit 1
cat >writer.lua <<'LUA'
local track = require "mlx.track"
-- Small batches: many short write transactions at once.
local store = assert(track.open(nil, { batch_rows = 100 }))
local run = assert(store:start_run { step = "writer", git = false })
for i = 1, 2000 do assert(run:log_metric("m" .. (i % 4), i, i)) end
assert(run:log_params { writer = arg[1] })
assert(run:finish())
LUA
pids=()
for w in $(seq 32); do
	"$MLX" recipe writer.lua "$w" >"w$w.out" 2>&1 &
	pids+=($!)
done
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
is "$failed $(cat w*.out)" "0 " "32 concurrent writers all succeed"
is "$(track_sql "SELECT count(*), count(DISTINCT m.run_id) FROM metrics m JOIN runs r ON r.id = m.run_id WHERE r.step = 'writer'")" \
	"64000|32" "and lose no point"
is "$(track_sql "SELECT count(*) FROM runs WHERE step = 'writer' AND status = 'FINISHED'")" 32 "every run finished"
cd .. || exit 1

# --- moving up: mlx tracking migrate ------------------------------------------
mkdir up && cd up || exit 1
"$MLX" init >/dev/null
cat >t.lua <<'LUA'
local mlx = require "mlx"
mlx.log.params { lr = 0.1, note = "a\ttab" }
for i = 1, 50 do mlx.log.metric("loss", 1 / i) end
mlx.log.metric("odd", 0 / 0)
mlx.log.tag("team", "vision")
local f = assert(io.open("m.json", "w"))
f:write("{}")
f:close()
mlx.log.artifact("m.json", "out")
LUA
export MLX_TRACKING_URI=
mlx recipe t.lua
mlx recipe t.lua
mlx model register m m.json -a staging
mlx model alias m prod 1
mlx model alias m prod --delete
mlx runs
sqlite_runs=$OUT
mlx exp
sqlite_exp=$OUT
mlx model ls
sqlite_models=$OUT
mlx model alias m --history
sqlite_history=$(printf '%s\n' "$OUT" | cut -c1-40)
mlx tracking migrate "$MLX_PG_URI"
is "$RC" 0 "mlx tracking migrate copies a project's SQLite database into PostgreSQL"
like "$(printf '%s\n' "$OUT" | tail -1)" "^migrated $TEST_DIR/up/.mlx/runs.db to postgresql:///mlx\?host=.* \(project [0-9a-z]{16}\): 1[0-9]{2} rows copied, 0 there already; every row checked$" \
	"and says how many rows, checked"
like "$(printf '%s\n' "$OUT" | grep '^metrics ')" "^metrics +102 rows, +102 copied" "every metric point"
mlx tracking migrate "$MLX_PG_URI"
like "$(printf '%s\n' "$OUT" | tail -1)" ": 0 rows copied, 1[0-9]{2} there already; every row checked$" "a second migration copies nothing"
export MLX_TRACKING_URI=$MLX_PG_URI
mlx runs
is "$OUT" "$sqlite_runs" "mlx runs prints the same on both backends"
mlx exp
is "$OUT" "$sqlite_exp" "so does mlx exp"
mlx model ls
is "$OUT" "$sqlite_models" "and mlx model ls"
mlx model alias m --history
is "$(printf '%s\n' "$OUT" | cut -c1-40)" "$sqlite_history" "and the alias history"
mlx tracking migrate /tmp/x.db
is "$RC $ERR" "2 mlx: error: mlx tracking migrate: /tmp/x.db is not a PostgreSQL URI (postgresql://…)" \
	"a target that is not PostgreSQL is bad input"
cd .. || exit 1

done_testing
