#!/usr/bin/env bash
# Start-up time of mlx against the Lua interpreter and Python, on this machine
# in one run: medians over RUNS runs (default 200) measured by hyperfine
# without a shell in between, printed with their ratio to `lua5.4 -e ''`.
#
# usage: bench/startup.sh [path/to/mlx]     (needs hyperfine, lua5.4, python3)
set -euo pipefail
MLX=$(realpath "${1:-build/mlx}")
RUNS=${RUNS:-200}
for tool in hyperfine lua5.4 python3; do
	command -v "$tool" >/dev/null || { echo "bench/startup.sh: needs $tool (apt-get install $tool)" >&2; exit 2; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
: >"$work/empty.lua"

hyperfine --shell=none --warmup 20 --runs "$RUNS" --export-json "$work/r.json" \
	"lua5.4 -e ''" \
	"$MLX --version" \
	"$MLX recipe $work/empty.lua" \
	"$MLX help" \
	"python3 -c ''" >/dev/null

python3 - "$work/r.json" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
base = results[0]["median"]
print("%-40s %10s %8s" % ("command", "median", "ratio"))
for r in results:
    cmd = r["command"].replace(r["command"].split(" ")[0], r["command"].split(" ")[0].rsplit("/", 1)[-1], 1)
    print("%-40s %8.2f ms %7.2fx" % (cmd[:40], r["median"] * 1000, r["median"] / base))
print("ratio = median / median of lua5.4 -e ''")
PY
