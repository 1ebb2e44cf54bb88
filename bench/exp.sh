#!/usr/bin/env bash
# The experiments table's speed: `mlx exp` over RECIPES (default 10,000)
# recipe runs of 3 step runs each (40,000 runs): 3 params per recipe run,
# the train step's loss over 20 steps, the evaluate step's accuracy, every
# third recipe's steps CACHED. The rows are written by the sqlite3 shell
# into a database whose schema mlx made (writing 40,000 runs through
# mlx.track would take minutes and measure something else). Medians by
# hyperfine of the default table, a sort on a metric, a filter on a param
# and a metric, --json and --all, against `lua5.4 -e ''` for scale.
#
# usage: bench/exp.sh [path/to/mlx]    (needs hyperfine, sqlite3, python3,
#        lua5.4; env: RECIPES, RUNS)
set -euo pipefail
MLX=$(realpath "${1:-build/mlx}")
RECIPES=${RECIPES:-10000}
RUNS=${RUNS:-20}
for tool in hyperfine sqlite3 python3 lua5.4; do
	command -v "$tool" >/dev/null || { echo "bench/exp.sh: needs $tool" >&2; exit 2; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/proj/.mlx"
db="$work/proj/.mlx/runs.db"
printf 'assert(require("mlx.track").open(arg[1])):close()\n' >"$work/schema.lua"
"$MLX" lua "$work/schema.lua" "$db"
sqlite3 "$db" <<SQL
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $RECIPES)
INSERT INTO runs (id, status, start_time, end_time, recipe, command)
SELECT printf('r%015d', i), 'FINISHED', 1700000000000 + i * 1000, 1700000000000 + i * 1000 + 500,
       'train.lua', 'mlx recipe train.lua' FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $RECIPES),
     s(j, name) AS (VALUES (1, 'prepare'), (2, 'train'), (3, 'evaluate'))
INSERT INTO runs (id, parent_id, status, start_time, end_time, recipe, step, step_key)
SELECT printf('s%014d%d', i, j), printf('r%015d', i), CASE WHEN i % 3 = 0 THEN 'CACHED' ELSE 'FINISHED' END,
       1700000000000 + i * 1000 + j, 1700000000000 + i * 1000 + j + 1, 'train.lua', name,
       printf('%064d', i * 10 + j) FROM n, s;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $RECIPES),
     k(key, f) AS (VALUES ('lr', 0.001), ('n_estimators', 1.0), ('max_depth', 1.0))
INSERT INTO params (run_id, key, value, num)
SELECT printf('r%015d', i), key, CAST((i % 97 + 1) * f AS TEXT), (i % 97 + 1) * f FROM n, k;
INSERT INTO params (run_id, key, value, num)
SELECT s.id, p.key, p.value, p.num FROM runs s JOIN params p ON p.run_id = s.parent_id WHERE s.step = 'train';
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $RECIPES),
     st(step) AS (SELECT 0 UNION ALL SELECT step + 1 FROM st WHERE step < 19)
INSERT INTO metrics (run_id, key, step, ts, value)
SELECT printf('s%014d%d', i, 2), 'loss', step, 1700000000000 + i * 1000 + step, 1.0 / (step + 1 + (i % 13))
  FROM n, st;
INSERT INTO latest_metrics (run_id, key, step, ts, value)
SELECT run_id, key, step, ts, value FROM metrics WHERE step = 19;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $RECIPES)
INSERT INTO latest_metrics (run_id, key, step, ts, value)
SELECT printf('s%014d%d', i, 3), 'accuracy', 0, 1700000000000 + i * 1000, ((i * 7919) % 1000) / 1000.0 FROM n;
INSERT INTO metrics (run_id, key, step, ts, value)
SELECT run_id, key, step, ts, value FROM latest_metrics WHERE key = 'accuracy';
COMMIT;
SQL
echo "mlx exp over $(sqlite3 "$db" 'SELECT count(*) FROM runs WHERE parent_id IS NULL') recipe runs" \
	"($(sqlite3 "$db" 'SELECT count(*) FROM runs') runs, $(sqlite3 "$db" 'SELECT count(*) FROM metrics') metric points)"
hyperfine --shell=none --warmup 3 --runs "$RUNS" --export-json "$work/exp.json" \
	"lua5.4 -e ''" \
	"$MLX -C $work/proj exp" \
	"$MLX -C $work/proj exp --sort -metrics.accuracy" \
	"$MLX -C $work/proj exp --filter 'params.lr < 0.05 and metrics.loss < 0.2' --sort -metrics.accuracy" \
	"$MLX -C $work/proj exp --json" \
	"$MLX -C $work/proj exp --all --csv" >/dev/null
python3 - "$work/exp.json" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
names = ["lua5.4 -e ''", "mlx exp (50 rows)", "mlx exp --sort -metrics.accuracy",
         "mlx exp --filter ... --sort ...", "mlx exp --json", "mlx exp --all --csv (every row)"]
print("%-36s %10s %10s" % ("", "median", "user"))
for name, r in zip(names, results):
    print("%-36s %7.1f ms %7.1f ms" % (name, r["median"] * 1000, r["user"] * 1000))
print("the bar: well under 100 ms for the first four")
PY
