#!/usr/bin/env bash
# mlx ui at scale: RUNS runs (default 10,000, then 100,000) × 20 metrics and
# 3 params each, plus one run whose metric has 100,000 points, written by
# the sqlite3 shell into a database whose schema mlx made (writing them
# through mlx.track would measure something else). Then `mlx ui` serves
# them and headless Chromium (Selenium) loads the page:
#   served    the experiments table's first page (/api/exp, 50 rows) and
#             /api/runs as the page asks for them (count=0), and the counts
#             it asks for after drawing them, by curl: median of 5 after
#             one warm-up
#   rendered  from navigation start to the table drawn (the page marks
#             body[data-ready] and the time): median of 3 loads
#   chart     the 100,000-point metric: /api/runs/ID/metrics/KEY served
#             (downsampled to 1,000 points) and the run page with its
#             chart drawn
#   compare   the 100 newest runs side by side (20 metrics, 3 params)
# The bars (issue 17): served < 50 ms, rendered < 500 ms, chart < 500 ms.
#
# usage: bench/ui.sh [path/to/mlx]   (env: SIZES="10000 100000"; needs
#        sqlite3, curl, chromium, chromium-driver, python3-selenium)
set -euo pipefail
MLX=$(realpath "${1:-build/mlx}")
SIZES=${SIZES:-"10000 100000"}
for tool in sqlite3 curl /usr/bin/python3 chromium chromedriver; do
	command -v "$tool" >/dev/null || { echo "bench/ui.sh: needs $tool" >&2; exit 2; }
done
work=$(mktemp -d)
ui_pid=
cleanup() {
	if [ -n "$ui_pid" ]; then kill "$ui_pid" 2>/dev/null || true; wait "$ui_pid" 2>/dev/null || true; fi
	# Chromium's helpers may still be leaving its profile: a second try.
	rm -rf "$work" 2>/dev/null || { sleep 1; rm -rf "$work"; }
}
trap cleanup EXIT

make_db() { # $1 = project dir, $2 = runs
	mkdir -p "$1/.mlx"
	local db="$1/.mlx/runs.db"
	printf 'assert(require("mlx.track").open(arg[1])):close()\n' >"$work/schema.lua"
	"$MLX" lua "$work/schema.lua" "$db"
	sqlite3 "$db" >/dev/null <<SQL
PRAGMA journal_mode = WAL;
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $2)
INSERT INTO runs (id, status, start_time, end_time, recipe, command, peak_rss, cpu_seconds)
SELECT printf('r%015d', i), CASE WHEN i % 50 = 0 THEN 'FAILED' ELSE 'FINISHED' END,
       1700000000000 + i * 1000, 1700000000000 + i * 1000 + 500 + i % 700,
       'train.lua', 'mlx recipe train.lua', 100000000 + i, 1.5 FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $2),
     k(key, f) AS (VALUES ('lr', 0.001), ('batch_size', 8.0), ('max_depth', 1.0))
INSERT INTO params (run_id, key, value, num)
SELECT printf('r%015d', i), key, CAST((i % 97 + 1) * f AS TEXT), (i % 97 + 1) * f FROM n, k;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $2),
     m(j) AS (SELECT 1 UNION ALL SELECT j + 1 FROM m WHERE j < 20)
INSERT INTO latest_metrics (run_id, key, step, ts, value)
SELECT printf('r%015d', i), printf('metric_%02d', j), 10, 1700000000000 + i * 1000, ((i * 7919 + j * 104729) % 10000) / 10000.0
  FROM n, m;
INSERT INTO metrics (run_id, key, step, ts, value) SELECT run_id, key, step, ts, value FROM latest_metrics;
-- One long curve: 100,000 points of a noisy decaying loss.
INSERT INTO runs (id, status, start_time, end_time, recipe, command)
VALUES ('zlongcurve00000', 'FINISHED', 1800000000000, 1800000100000, 'long.lua', 'mlx recipe long.lua');
WITH RECURSIVE s(step) AS (SELECT 0 UNION ALL SELECT step + 1 FROM s WHERE step < 99999)
INSERT INTO metrics (run_id, key, step, ts, value)
SELECT 'zlongcurve00000', 'loss', step, 1800000000000 + step,
       2.0 / (1 + step / 2000.0) + ((step * 7919) % 1000) / 5000.0 FROM s;
INSERT INTO latest_metrics (run_id, key, step, ts, value)
SELECT run_id, key, step, ts, value FROM metrics WHERE run_id = 'zlongcurve00000' AND step = 99999;
COMMIT;
SQL
}

cat >"$work/browser.py" <<'PY'
import os, statistics, sys, time
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
url, profile = sys.argv[1], sys.argv[2]
opts = webdriver.ChromeOptions()
opts.binary_location = "/usr/bin/chromium"
for a in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
          "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
          "--window-size=1400,1000", "--user-data-dir=" + profile]:
    opts.add_argument(a)
d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
def load(path, view):
    d.get("about:blank")
    d.get(url + path)
    WebDriverWait(d, 60).until(lambda _: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == view)
    return float(d.find_element(By.TAG_NAME, "body").get_attribute("data-rendered-at"))
try:
    load("", "exp")  # warm-up: Chromium's own first start
    table = statistics.median(load("", "exp") for _ in range(3))
    rows = len(d.find_elements(By.CSS_SELECTOR, "#runs-table tbody tr"))
    chart = statistics.median(load("#/run/zlongcurve00000", "run") for _ in range(3))
    canvases = len(d.find_elements(By.CSS_SELECTOR, "canvas[data-metric]"))
    n = int(sys.argv[3])
    ids = ",".join("r%015d" % i for i in range(n - 99, n + 1))
    compare = statistics.median(load("#/compare/" + ids, "compare") for _ in range(3))
    print("%.0f %d %.0f %d %.0f" % (table, rows, chart, canvases, compare))
finally:
    d.quit()
PY

served() { # median of 5 curl times in ms, after one warm-up
	curl -s -o /dev/null "$1"
	for _ in 1 2 3 4 5; do curl -s -o /dev/null -w '%{time_total}\n' "$1"; done |
		sort -n | sed -n 3p | awk '{ printf "%.1f", $1 * 1000 }'
}

printf '%-9s %-34s %10s %6s\n' runs measure value bar
for n in $SIZES; do
	proj="$work/p$n"
	start=$(date +%s.%N)
	make_db "$proj" "$n"
	made=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
	(cd "$proj" && exec "$MLX" ui --port 0 >"$work/url" 2>"$work/ui.err") &
	ui_pid=$!
	for _ in $(seq 100); do [ -s "$work/url" ] && break; sleep 0.1; done
	url=$(head -1 "$work/url")
	printf '%-9s %-34s %9ss\n' "$n" "database written (sqlite3)" "$made"
	# As the page asks: the rows (count=0), then the count.
	printf '%-9s %-34s %8s ms %6s\n' "$n" "/api/exp first page served" "$(served "${url}api/exp?limit=50&count=0")" "< 50"
	printf '%-9s %-34s %8s ms %6s\n' "$n" "/api/count/exp (after the table)" "$(served "${url}api/count/exp")" ""
	printf '%-9s %-34s %8s ms %6s\n' "$n" "/api/runs first page served" "$(served "${url}api/runs?limit=50&count=0")" "< 50"
	printf '%-9s %-34s %8s ms %6s\n' "$n" "/api/count/runs (after the table)" "$(served "${url}api/count/runs")" ""
	printf '%-9s %-34s %8s ms %6s\n' "$n" "/api/exp sorted by a metric" \
		"$(served "${url}api/exp?limit=50&count=0&sort=-metrics.metric_07")" ""
	printf '%-9s %-34s %8s ms %6s\n' "$n" "100,000-point metric served" \
		"$(served "${url}api/runs/zlongcurve00000/metrics/loss")" ""
	read -r table rows chart canvases compare < <(/usr/bin/python3 "$work/browser.py" "$url" "$work/profile$n" "$n")
	printf '%-9s %-34s %8s ms %6s\n' "$n" "table rendered ($rows rows)" "$table" "< 500"
	printf '%-9s %-34s %8s ms %6s\n' "$n" "100,000-point chart rendered ($canvases)" "$chart" "< 500"
	printf '%-9s %-34s %8s ms %6s\n' "$n" "compare of 100 runs rendered" "$compare" ""
	kill "$ui_pid"
	wait "$ui_pid" 2>/dev/null || true
	ui_pid=
	rm -rf "$proj"
done
