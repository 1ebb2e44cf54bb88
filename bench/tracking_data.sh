# tracking_data.sh — the runs that bench/tracking.sh (part 3) and
# bench/scale.sh (part track) list: BIG finished recipe runs, 20 metrics
# and 2 params each. Sourced by both; it defines functions only.

# The rows, in SQL both SQLite and PostgreSQL take; $1 is a series of
# 1..BIG as "n(i)", and a table m20(j) of 1..20 must exist.
track_fill_sql() {
	cat <<SQL
INSERT INTO runs (id, status, start_time, end_time, recipe, command, host)
  SELECT 'r' || substr('000000000000000' || i, -15, 15), 'FINISHED', 1700000000000 + i * 1000,
         1700000000000 + i * 1000 + 500, 'train.lua', 'mlx recipe train.lua', 'bench' FROM $1;
INSERT INTO params (run_id, key, value, num)
  SELECT 'r' || substr('000000000000000' || i, -15, 15), k.key, CAST(i % 7 AS text), i % 7
  FROM $1, (SELECT 'lr' AS key UNION ALL SELECT 'depth') k;
INSERT INTO metrics (run_id, key, step, ts, value)
  SELECT 'r' || substr('000000000000000' || i, -15, 15), 'metric' || substr('0' || m.j, -2, 2), 0,
         1700000000000 + i * 1000 + 400, (i % 1000) / 1000.0 + m.j
  FROM $1, (SELECT j FROM m20) m;
INSERT INTO latest_metrics SELECT * FROM metrics;
SQL
}

# Makes DIR an mlx project (project bench_big) whose .mlx/runs.db, with
# the schema MLX creates, holds BIG runs: track_fill_sqlite MLX DIR BIG.
track_fill_sqlite() {
	mkdir -p "$2/.mlx"
	printf 'return { project = "bench_big" }\n' >"$2/.mlx/config.lua"
	echo 'assert(require("mlx.track").open(arg[1], { project = "bench_big" })):close()' |
		"$1" lua - "$2/.mlx/runs.db"
	sqlite3 "$2/.mlx/runs.db" <<SQL
BEGIN;
CREATE TEMP TABLE m20 (j INTEGER);
WITH RECURSIVE s(j) AS (SELECT 1 UNION ALL SELECT j + 1 FROM s WHERE j < 20) INSERT INTO m20 SELECT j FROM s;
CREATE TEMP TABLE nn (i INTEGER);
WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < $3) INSERT INTO nn SELECT i FROM s;
$(track_fill_sql "temp.nn n")
COMMIT;
ANALYZE;
SQL
}
