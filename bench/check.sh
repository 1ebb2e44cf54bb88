#!/usr/bin/env bash
# mlx.check against pandas on the same data and the same checks: a CSV of
# ROWS (default 1,000,000) rows and 20 columns (an id, 11 decimals, 4
# integers, 4 categories; 0.1% of one decimal column empty) and a reference
# of REF_ROWS (default 100,000) rows. Both check the schema (the columns and
# their types), ranges, nulls, the allowed values of the categories, and
# drift of one column against the reference (PSI over the reference's
# deciles and the two-sample Kolmogorov-Smirnov statistic). pandas:
# read_csv of both files, then the same checks with numpy (KS exact, by
# sorting). One run each, wall time and peak RSS by /usr/bin/time -v.
#
# usage: bench/check.sh [path/to/mlx]   (needs Debian's python3-pandas and
#        /usr/bin/time; env: ROWS, REF_ROWS, PYTHON (default /usr/bin/python3))
set -euo pipefail
MLX=$(realpath "${1:-build/mlx}")
ROWS=${ROWS:-1000000}
REF_ROWS=${REF_ROWS:-100000}
PYTHON=${PYTHON:-/usr/bin/python3}
[ -x /usr/bin/time ] || { echo "bench/check.sh: needs /usr/bin/time (Debian: time)" >&2; exit 2; }
"$PYTHON" -c 'import pandas' 2>/dev/null || { echo "bench/check.sh: needs pandas for $PYTHON (Debian: python3-pandas)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat >"$work/make.py" <<'PY'
import random, sys
def write(path, n, seed, shift):
    r = random.Random(seed)
    cats = ["alpha", "beta", "gamma", "delta"]
    with open(path, "w") as f:
        f.write(",".join(f"c{i}" for i in range(20)) + "\n")
        for k in range(n):
            row = [str(k + 1)]
            for i in range(1, 12):
                row.append("" if i == 2 and r.random() < 0.001 else f"{r.gauss(shift, 1):.5f}")
            for i in range(12, 16):
                row.append(str(r.randint(0, 1000)))
            for i in range(16, 20):
                row.append(cats[r.randrange(4)])
            f.write(",".join(row) + "\n")
write(sys.argv[1], int(sys.argv[2]), 1, 0.0)
write(sys.argv[3], int(sys.argv[4]), 2, 0.0)
PY
"$PYTHON" "$work/make.py" "$work/data.csv" "$ROWS" "$work/ref.csv" "$REF_ROWS"

cat >"$work/check.lua" <<'LUA'
local check = require "mlx.check"
local columns = { { "c0", type = "int", nulls = false, min = 1, unique = false } }
for i = 1, 11 do columns[#columns + 1] = { "c" .. i, type = "number", nulls = i == 2 and 0.01 or false, min = -10, max = 10 } end
for i = 12, 15 do columns[#columns + 1] = { "c" .. i, type = "int", nulls = false, min = 0, max = 1000 } end
for i = 16, 19 do
  columns[#columns + 1] = { "c" .. i, type = "string", nulls = false, allowed = { "alpha", "beta", "gamma", "delta" } }
end
local report = assert(check.file(arg[1], { columns = columns, strict = true,
  drift = { reference = arg[2], columns = { c1 = { psi = 0.2, ks = 0.1 } } } }))
local d = report.statistics.c1
print(("mlx.check: rows %d, failures %d, c2 nulls %d, psi %.5f, ks %.5f"):format(report.rows, #report.failures,
  report.columns.c2.nulls, d.psi, d.ks))
LUA

cat >"$work/check.py" <<'PY'
import sys
import numpy as np
import pandas as pd
df = pd.read_csv(sys.argv[1])
ref = pd.read_csv(sys.argv[2], usecols=["c1"])["c1"].to_numpy()
expected = [f"c{i}" for i in range(20)]
failures = 0
failures += list(df.columns) != expected
kinds = {0: "i"} | {i: "f" for i in range(1, 12)} | {i: "i" for i in range(12, 16)} | {i: "O" for i in range(16, 20)}
for i, kind in kinds.items():
    c = df[f"c{i}"]
    nulls = int(c.isna().sum())
    if c.dtype.kind != kind and not (kind == "i" and c.dtype.kind == "f" and nulls):
        failures += 1
    if i == 2:
        failures += nulls / len(df) > 0.01
    else:
        failures += nulls > 0
    if i == 0:
        failures += int((c < 1).sum()) > 0
    elif i < 12:
        failures += int(((c < -10) | (c > 10)).sum()) > 0
    elif i < 16:
        failures += int(((c < 0) | (c > 1000)).sum()) > 0
    else:
        failures += int((~c.isin(["alpha", "beta", "gamma", "delta"])).sum()) > 0
cur = df["c1"].dropna().to_numpy()
ref = np.sort(ref[~np.isnan(ref)])
edges = np.unique(np.quantile(ref, np.arange(1, 10) / 10, method="inverted_cdf"))
e = np.bincount(np.searchsorted(edges, ref, side="left"), minlength=len(edges) + 1) / len(ref)
a = np.bincount(np.searchsorted(edges, cur, side="left"), minlength=len(edges) + 1) / len(cur)
e, a = np.maximum(e, 1e-4), np.maximum(a, 1e-4)
psi = float(np.sum((a - e) * np.log(a / e)))
cur = np.sort(cur)
grid = np.concatenate([ref, cur])
ks = float(np.max(np.abs(np.searchsorted(ref, grid, side="right") / len(ref)
                         - np.searchsorted(cur, grid, side="right") / len(cur))))
failures += (psi > 0.2) + (ks > 0.1)
print(f"pandas:    rows {len(df)}, failures {failures}, c2 nulls {int(df['c2'].isna().sum())}, psi {psi:.5f}, ks {ks:.5f}")
PY

measure() { # NAME COMMAND... — prints the command's output, then "NAME wall rss"
	local name=$1
	shift
	/usr/bin/time -v -o "$work/time" "$@"
	local wall rss
	wall=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; print s }' "$work/time")
	rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$work/time")
	echo "$name $wall $rss" >>"$work/results"
}
size=$(du -m "$work/data.csv" | cut -f1)
echo "data: $ROWS rows x 20 columns ($size MB), reference $REF_ROWS rows"
measure mlx "$MLX" lua "$work/check.lua" "$work/data.csv" "$work/ref.csv"
measure pandas "$PYTHON" "$work/check.py" "$work/data.csv" "$work/ref.csv"
awk '{ wall[$1] = $2; rss[$1] = $3 }
END {
	printf "%-8s %9s %12s\n", "", "wall s", "peak RSS MB"
	printf "%-8s %9.2f %12.1f\n", "mlx", wall["mlx"], rss["mlx"] / 1024
	printf "%-8s %9.2f %12.1f\n", "pandas", wall["pandas"], rss["pandas"] / 1024
	printf "mlx.check is %.1fx faster than pandas, with %.0fx less memory\n", wall["pandas"] / wall["mlx"], rss["pandas"] / rss["mlx"]
}' "$work/results"
