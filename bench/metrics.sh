#!/usr/bin/env bash
# Tracking speed, on this machine in one run (medians by hyperfine):
#
# 1. Logging N (default 1,000,000) metric points from Lua through mlx.track
#    — run:log_metric, and mlx.log.metric — against bench/sqlite_metrics.c,
#    the least a C program must do to insert the same rows into SQLite: one
#    prepared INSERT, transactions of BATCH rows (mlx's batch size), the
#    same table, WAL and synchronous = NORMAL. Rates and their ratio.
# 2. `mlx runs` over 10,000 runs × 20 metrics (2 params, 1 tag each), with
#    and without a filter and sort, against the sqlite3 shell running the
#    listing's own query, and `lua5.4 -e ''` for scale.
#
# usage: bench/metrics.sh [path/to/mlx]    (needs hyperfine, cc, sqlite3,
#        libsqlite3-dev, python3, lua5.4; env: N, BATCH, RUNS)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
MLX=$(realpath "${1:-build/mlx}")
N=${N:-1000000}
BATCH=${BATCH:-10000}
RUNS=${RUNS:-5}
for tool in hyperfine cc sqlite3 python3 lua5.4; do
	command -v "$tool" >/dev/null || { echo "bench/metrics.sh: needs $tool" >&2; exit 2; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -O2 -o "$work/sqlite_metrics" "$here/sqlite_metrics.c" -lsqlite3

# The same rows as sqlite_metrics: 4 metrics, steps 0..N/4-1.
cat >"$work/log_run.lua" <<'LUA'
local track = require "mlx.track"
local store = assert(track.open(arg[1], { batch_rows = tonumber(arg[3]) }))
local run = assert(store:start_run { git = false })
local keys = { "metric0", "metric1", "metric2", "metric3" }
for i = 0, tonumber(arg[2]) - 1 do
  run:log_metric(keys[i % 4 + 1], 1 / (i + 1), i // 4)
end
assert(run:finish())
assert(store:close())
LUA
cat >"$work/log_mlx_log.lua" <<'LUA'
local track = require "mlx.track"
local log = require "mlx.log"
local store = assert(track.open(arg[1], { batch_rows = tonumber(arg[3]) }))
local run = assert(store:start_run { git = false })
local keys = { "metric0", "metric1", "metric2", "metric3" }
for i = 0, tonumber(arg[2]) - 1 do
  log.metric(keys[i % 4 + 1], 1 / (i + 1), i // 4)
end
assert(run:finish())
assert(store:close())
LUA

echo "1. logging $N points (batches of $BATCH rows), $RUNS runs each"
hyperfine --shell=none --warmup 1 --runs "$RUNS" --export-json "$work/log.json" \
	--prepare "rm -f $work/c.db $work/c.db-wal $work/c.db-shm $work/m.db $work/m.db-wal $work/m.db-shm" \
	"$work/sqlite_metrics $work/c.db $N 4 $BATCH" \
	"$MLX lua $work/log_run.lua $work/m.db $N $BATCH" \
	"$MLX lua $work/log_mlx_log.lua $work/m.db $N $BATCH" >/dev/null
sqlite3 "$work/m.db" "SELECT 'rows written by the last mlx run: ' || count(*) FROM metrics" 

python3 - "$work/log.json" "$N" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
n = int(sys.argv[2])
names = ["C + SQLite (sqlite_metrics.c)", "mlx lua: run:log_metric", "mlx lua: mlx.log.metric"]
base = n / results[0]["median"]
print("%-32s %10s %14s %8s" % ("", "median", "points/s", "ratio"))
for name, r in zip(names, results):
    rate = n / r["median"]
    print("%-32s %8.0f ms %14.0f %7.2fx" % (name, r["median"] * 1000, rate, rate / base))
print("ratio = rate / rate of the C program (1.00 = as fast; >= 0.50 is the bar)")
PY

echo
echo "2. mlx runs over 10,000 runs x 20 metrics"
mkdir -p "$work/proj/.mlx"
cat >"$work/fill.lua" <<'LUA'
local track = require "mlx.track"
local store = assert(track.open(arg[1]))
for r = 1, 10000 do
  local run = assert(store:start_run { recipe = "train.lua", git = false,
    params = { lr = 0.001 * (r % 100 + 1), seed = r }, tags = { team = r % 2 == 0 and "vision" or "nlp" } })
  local m = {}
  for k = 1, 20 do m["m" .. k] = ((r * 7919 + k * 104729) % 1000) / 1000 end
  assert(run:log_metrics(m, 1))
  assert(run:finish())
end
assert(store:close())
LUA
"$MLX" lua "$work/fill.lua" "$work/proj/.mlx/runs.db"
query="SELECT r.*, (SELECT group_concat(key || '=' || value) FROM latest_metrics WHERE run_id = r.id) FROM runs r ORDER BY r.start_time DESC, r.id DESC LIMIT 50"
hyperfine --shell=none --warmup 5 --runs "$((RUNS * 10))" --export-json "$work/runs.json" \
	"lua5.4 -e ''" \
	"sqlite3 $work/proj/.mlx/runs.db \"$query\"" \
	"$MLX -C $work/proj runs --limit 50" \
	"$MLX -C $work/proj runs --limit 50 --filter 'metrics.m3 > 0.5 and params.lr < 0.05' --sort -metrics.m1" \
	"$MLX -C $work/proj runs --limit 50 --json" >/dev/null
python3 - "$work/runs.json" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
names = ["lua5.4 -e ''", "sqlite3: the listing query", "mlx runs --limit 50",
         "mlx runs --limit 50 --filter --sort", "mlx runs --limit 50 --json"]
base = results[1]["median"]
print("%-38s %10s %8s" % ("", "median", "ratio"))
for name, r in zip(names, results):
    print("%-38s %7.1f ms %7.2fx" % (name, r["median"] * 1000, r["median"] / base))
print("ratio = median / median of the sqlite3 shell running the listing query (the bar: mlx runs < 100 ms)")
PY
