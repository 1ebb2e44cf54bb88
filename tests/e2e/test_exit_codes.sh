#!/usr/bin/env bash
# One map from failure codes to exit codes (mlx.ui.exit_code_for): the
# commands that read runs and models exit 2 for bad input — an unknown run, a
# bad filter, a runs database that is corrupt or written by a newer mlx — as
# every other command does, and never 1, which means a step or check failed.
. "$(dirname "$0")/tap.sh"

mlx init
printf 'require("mlx").log.metric("acc", 0.9)\n' >r.lua
mlx recipe r.lua
mlx runs --json
id=$(printf '%s' "$OUT" | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["id"])')
is "${#id}" 16 "a run to look at"

mlx runs show nope0000
is "$RC $ERR" "2 mlx: error: no run with id 'nope0000' in $TEST_DIR/.mlx/runs.db" "runs show: an unknown id exits 2"
mlx metrics nope0000
is "$RC $ERR" "2 mlx: error: no run with id 'nope0000' in $TEST_DIR/.mlx/runs.db" "metrics: an unknown id exits 2"
mlx metrics 'a-b'
is "$RC $ERR" "2 mlx: error: invalid run id 'a-b' (run ids are letters and digits)" "metrics: a malformed id exits 2"
mlx runs --filter 'metrics.acc >'
is "$RC" 2 "runs: a bad filter exits 2"
mlx model get nope@1 out
is "$RC" 2 "model get: an unknown model exits 2"

# A database written by a newer mlx: upgrade mlx, exit 2.
python3 -c 'import sqlite3, sys; sqlite3.connect(sys.argv[1]).backup(sqlite3.connect(sys.argv[2]))' \
	.mlx/runs.db saved.db
python3 -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute("PRAGMA user_version = 99"); c.commit()' \
	.mlx/runs.db
newer="$TEST_DIR/.mlx/runs.db: written by a newer mlx \(schema 99; this mlx knows up to"
mlx runs
is "$RC" 2 "runs: a newer database exits 2"
like "$ERR" "^mlx: error: $newer [0-9]+\): upgrade mlx$" "naming the file and the fix"
mlx metrics "$id"
is "$RC" 2 "metrics: a newer database exits 2"
like "$ERR" "^mlx: error: $newer" "naming it"
mlx model ls
is "$RC" 2 "model ls: a newer database exits 2"
mlx recipe r.lua
is "$RC" 2 "recipe: a newer database exits 2"
like "$ERR" "^mlx: error: cannot record the run: $newer" "naming it"

# A runs database that is not one: bad input too.
printf 'not a database, but long enough to be read as a header of one.....\n' >.mlx/runs.db
rm -f .mlx/runs.db-wal .mlx/runs.db-shm
notdb="mlx: error: $TEST_DIR/.mlx/runs.db is not an mlx runs database (file is not a database)"
mlx runs
is "$RC $ERR" "2 $notdb" "runs: a corrupt database exits 2, naming it"
mlx metrics "$id"
is "$RC $ERR" "2 $notdb" "metrics: so does metrics"
mlx runs show "$id"
is "$RC $ERR" "2 $notdb" "runs show: and runs show"
mlx model ls
is "$RC" 2 "model ls: and model ls"

rm -f .mlx/runs.db-wal .mlx/runs.db-shm
mv saved.db .mlx/runs.db
mlx runs show "$id"
is "$RC" 0 "with the database back, the run shows again"

done_testing
