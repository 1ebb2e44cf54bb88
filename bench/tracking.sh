#!/usr/bin/env bash
# The tracking backends, SQLite and PostgreSQL, on this machine in one run:
#
# 1. N (default 1,000,000) metric points from Lua (run:log_metric through
#    mlx.track) into each backend, against bench/pg_copy.c — the least a C
#    program must do to write the same rows into PostgreSQL with libpq
#    COPY, in transactions of BATCH rows — and bench/sqlite_metrics.c for
#    SQLite. Rates and the ratio to the C program of the same backend.
# 2. WRITERS (default 32) processes at once, each an `mlx lua` script:
#    (a) creating RUNS_EACH runs each (runs/s), (b) logging N/WRITERS
#    points each into one run (points/s); lost points and errors counted.
#    Printed next to MLflow's published figures (issue 14).
# 3. `mlx runs --limit 50` and `mlx exp` (the experiments table, 50 rows)
#    over BIG (default 100,000) runs x 20 metrics (2,000,000 metric rows)
#    and 2 params each, medians by hyperfine, on both backends.
#
# PostgreSQL: MLX_PG_URI if set (a database this may fill), else a server
# of its own started with tests/helper/pg_server.sh in a temporary
# directory (as the tests do), stopped at the end.
#
# usage: bench/tracking.sh [path/to/mlx]    (needs cc, libpq-dev,
#        libsqlite3-dev, sqlite3, hyperfine, postgresql; env: N, BATCH,
#        REPS, WRITERS, RUNS_EACH, BIG, RUNS, PARTS: which of 1 2 3 to run)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/tracking_data.sh"
MLX=$(realpath "${1:-build/mlx}")
N=${N:-1000000}
BATCH=${BATCH:-10000}
WRITERS=${WRITERS:-32}
RUNS_EACH=${RUNS_EACH:-25}
BIG=${BIG:-100000}
RUNS=${RUNS:-10}
PARTS=${PARTS:-1 2 3}
REPS=${REPS:-3}
for tool in cc sqlite3 hyperfine; do
	command -v "$tool" >/dev/null || { echo "bench/tracking.sh: needs $tool" >&2; exit 2; }
done
work=$(mktemp -d)
pgdir=""
cleanup() {
	[ -n "$pgdir" ] && "$here/../tests/helper/pg_server.sh" stop "$pgdir"
	rm -rf "$work" ${pgdir:+"$pgdir"}
}
trap cleanup EXIT
if [ -z "${MLX_PG_URI:-}" ]; then
	pgdir=$(mktemp -d /tmp/mlx-bench-pg-XXXXXX)
	eval "$("$here/../tests/helper/pg_server.sh" start "$pgdir")"
fi
psql_bin=${MLX_PG_BIN:-/usr/lib/postgresql/15/bin}
psql() { "$psql_bin/psql" -qAtX -v ON_ERROR_STOP=1 -d "$MLX_PG_URI" "$@"; }
# The schemas this fills, emptied first (a database given in MLX_PG_URI
# may hold them from an earlier run).
for schema in bench_copy mlx_bench_lua mlx_bench_many mlx_bench_pts mlx_bench_big; do
	psql -c "SET client_min_messages = warning" -c "DROP SCHEMA IF EXISTS $schema CASCADE"
done
cc -O2 -o "$work/pg_copy" "$here/pg_copy.c" -I"$(pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)" -lpq
cc -O2 -o "$work/sqlite_metrics" "$here/sqlite_metrics.c" -lsqlite3

rate() { python3 -c "import sys; print('%12.0f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$@"; }

# ---- 1. one million points ---------------------------------------------------
if [[ " $PARTS " == *" 1 "* ]]; then
cat >"$work/log_run.lua" <<'LUA'
-- arg: target, N, batch, project; prints the seconds from start to close.
local core = require "mlx.core"
local track = require "mlx.track"
local t0 = core.now_ms()
local store = assert(track.open(arg[1], { batch_rows = tonumber(arg[3]), project = arg[4] }))
local run = assert(store:start_run { git = false })
local keys = { "metric0", "metric1", "metric2", "metric3" }
for i = 0, tonumber(arg[2]) - 1 do
  run:log_metric(keys[i % 4 + 1], 1 / (i + 1), i // 4)
end
assert(run:finish())
assert(store:close())
print((core.now_ms() - t0) / 1000)
LUA
echo "1. $N metric points from one process (batches of $BATCH rows), medians of $REPS alternating runs"
# Alternating, so that both see the same load on a shared machine.
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
pg_c=() pg_lua=() sq_c=() sq_lua=()
for _ in $(seq "$REPS"); do
	pg_c+=("$("$work/pg_copy" "$MLX_PG_URI" bench_copy "$N" 4 "$BATCH")")
	psql -c "SET client_min_messages = warning" -c "DROP SCHEMA IF EXISTS mlx_bench_lua CASCADE"
	pg_lua+=("$("$MLX" lua "$work/log_run.lua" "$MLX_PG_URI" "$N" "$BATCH" bench_lua)")
	got=$(psql -c "SELECT count(*) FROM mlx_bench_lua.metrics")
	rm -f "$work"/c.db* "$work"/m.db*
	sq_c+=("$("$work/sqlite_metrics" "$work/c.db" "$N" 4 "$BATCH")")
	sq_lua+=("$("$MLX" lua "$work/log_run.lua" "$work/m.db" "$N" "$BATCH" x)")
done
t_pg_c=$(median "${pg_c[@]}") t_pg_lua=$(median "${pg_lua[@]}")
t_sq_c=$(median "${sq_c[@]}") t_sq_lua=$(median "${sq_lua[@]}")
printf '%-44s %8s %12s %7s\n' "" seconds points/s ratio
python3 - "$N" "$t_pg_c" "$t_pg_lua" "$t_sq_c" "$t_sq_lua" <<'PY'
import sys
n = int(sys.argv[1]); pc, pl, sc, sl = map(float, sys.argv[2:])
for name, t, base in (("PostgreSQL, C + libpq COPY (pg_copy.c)", pc, pc), ("PostgreSQL, mlx Lua run:log_metric", pl, pc),
                      ("SQLite, C (sqlite_metrics.c)", sc, sc), ("SQLite, mlx Lua run:log_metric", sl, sc)):
    print("%-44s %8.2f %12.0f %6.2fx" % (name, t, n / t, base / t))
print("ratio: rate / rate of the C program on the same backend (>= 0.50 is the bar)")
PY
echo "rows in PostgreSQL after the Lua run: $got (of $N)"
fi

# ---- 2. many writers at once ---------------------------------------------------
if [[ " $PARTS " == *" 2 "* ]]; then
cat >"$work/runs.lua" <<'LUA'
-- arg: target, project, runs: creates and finishes that many runs.
local track = require "mlx.track"
local store = assert(track.open(arg[1], { project = arg[2] }))
for i = 1, tonumber(arg[3]) do
  local run = assert(store:start_run { git = false, recipe = "bench.lua" })
  assert(run:log_param("i", i))
  assert(run:finish())
end
assert(store:close())
LUA
cat >"$work/points.lua" <<'LUA'
-- arg: target, project, points: one run logging that many, in batches of 10
-- (as MLflow's benchmark logs them).
local track = require "mlx.track"
local store = assert(track.open(arg[1], { project = arg[2], batch_rows = 10 }))
local run = assert(store:start_run { git = false, step = "writer" })
for i = 0, tonumber(arg[3]) - 1 do assert(run:log_metric("m" .. i % 10, i, i // 10)) end
assert(run:finish())
assert(store:close())
LUA
many() { # SCRIPT TARGET PROJECT COUNT -> seconds, errors in $work/errors
	local start end_ errors=0 pids=()
	start=$(date +%s.%N)
	for w in $(seq "$WRITERS"); do
		"$MLX" lua "$work/$1" "$2" "$3" "$4" >"$work/w$w.out" 2>&1 &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || errors=$((errors + 1)); done
	end_=$(date +%s.%N)
	echo "$errors" >"$work/errors"
	python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$start" "$end_"
}
per=$((N / WRITERS))
echo
echo "2. $WRITERS writer processes at once"
printf '%-44s %10s %12s %7s %6s\n' "" runs/s points/s lost errors
for backend in PostgreSQL SQLite; do
	if [ $backend = PostgreSQL ]; then target=$MLX_PG_URI; else target=$work/many.db; fi
	t=$(many runs.lua "$target" bench_many $RUNS_EACH)
	e=$(cat "$work/errors")
	printf '%-44s %10s %12s %7s %6s\n' "$backend: $((WRITERS * RUNS_EACH)) runs" "$(rate $((WRITERS * RUNS_EACH)) "$t")" - - "$e"
	t=$(many points.lua "$target" bench_pts $per)
	e=$(cat "$work/errors")
	if [ $backend = PostgreSQL ]; then
		n=$(psql -c "SELECT count(*) FROM mlx_bench_pts.metrics")
	else
		n=$(sqlite3 "$target" "SELECT count(*) FROM metrics")
	fi
	printf '%-44s %10s %12s %7s %6s\n' "$backend: $((WRITERS * per)) points" - "$(rate $((WRITERS * per)) "$t")" \
		"$((WRITERS * per - n))" "$e"
done
printf '%-44s %10s %12s\n' "MLflow, Python server (published)" 784 "~3,400"
printf '%-44s %10s %12s\n' "MLflow, Go backend (published)" 1448 "~10,900"
fi

# ---- 3. listing 100,000 runs -----------------------------------------------------
[[ " $PARTS " == *" 3 "* ]] || exit 0
echo
echo "3. mlx runs --limit 50 and mlx exp over $BIG runs x 20 metrics ($((BIG * 20)) metric rows), $RUNS runs each"
track_fill_sqlite "$MLX" "$work/big" "$BIG"
printf 'assert(require("mlx.track").open(arg[1], { project = "bench_big" })):close()\n' >"$work/schema.lua"
"$MLX" lua "$work/schema.lua" "$MLX_PG_URI"
# PostgreSQL's substr takes no negative start: lpad in its place.
psql -c "SET search_path TO mlx_bench_big" -c "CREATE TEMP TABLE m20 AS SELECT generate_series(1, 20) AS j" \
	-c "CREATE TEMP TABLE nn AS SELECT generate_series(1, $BIG) AS i" \
	-c "$(track_fill_sql "nn n" | sed "s/substr('000000000000000' || i, -15, 15)/lpad(CAST(i AS text), 15, '0')/g; s/substr('0' || m.j, -2, 2)/lpad(CAST(m.j AS text), 2, '0')/g")" \
	-c "ANALYZE"
# As autovacuum would soon: sets the visibility map, so counts can be
# answered from indexes.
psql -c "VACUUM ANALYZE mlx_bench_big.runs" -c "VACUUM ANALYZE mlx_bench_big.latest_metrics" \
	-c "VACUUM ANALYZE mlx_bench_big.params" -c "VACUUM ANALYZE mlx_bench_big.tags"
cd "$work/big"
hyperfine --shell=none --warmup 2 --runs "$RUNS" --export-json "$work/big.json" \
	-n "SQLite: mlx runs --limit 50" "env MLX_TRACKING_URI= $MLX runs --limit 50" \
	-n "SQLite: mlx exp" "env MLX_TRACKING_URI= $MLX exp" \
	-n "PostgreSQL: mlx runs --limit 50" "env MLX_TRACKING_URI=$MLX_PG_URI $MLX runs --limit 50" \
	-n "PostgreSQL: mlx exp" "env MLX_TRACKING_URI=$MLX_PG_URI $MLX exp" >/dev/null
python3 - "$work/big.json" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print("%-36s %8.1f ms  %s" % (r["command"], r["median"] * 1000, "ok (< 100 ms)" if r["median"] < 0.1 else "OVER 100 ms"))
PY
