#!/usr/bin/env bash
# The cost of running a command from mlx: N (default 1000) sequential runs
# of /bin/true from a Lua loop over mlx.proc.run, against the same from a
# minimal C program using posix_spawn + waitpid (bench/spawn_true.c, built
# here with cc) and from a bash loop. Medians of RUNS (default 10) runs of
# each, measured by hyperfine in one go; ratios to the C program.
#
# usage: bench/spawn.sh [path/to/mlx]     (needs hyperfine, cc, python3)
set -euo pipefail
MLX=$(realpath "${1:-build/mlx}")
N=${N:-1000}
RUNS=${RUNS:-10}
for tool in hyperfine cc python3; do
	command -v "$tool" >/dev/null || { echo "bench/spawn.sh: needs $tool (apt-get install $tool)" >&2; exit 2; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -O2 -o "$work/spawn_true" "$(dirname "$0")/spawn_true.c"

hyperfine --shell=none --warmup 2 --runs "$RUNS" --export-json "$work/r.json" \
	-n "C posix_spawn + waitpid" "$work/spawn_true $N" \
	-n "mlx: proc.run{'/bin/true'}" "$MLX lua -e 'local run = require(\"mlx.proc\").run for _ = 1, $N do run{\"/bin/true\"} end'" \
	-n "mlx: same, capturing stdout+stderr" "$MLX lua -e 'local run = require(\"mlx.proc\").run for _ = 1, $N do run{\"/bin/true\", stdout = \"capture\", stderr = \"capture\"} end'" \
	-n "bash loop" "bash -c 'for ((i = 0; i < $N; i++)); do /bin/true; done'" >/dev/null

python3 - "$work/r.json" "$N" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
n = int(sys.argv[2])
base = results[0]["median"]
print("%-38s %10s %12s %8s" % ("%d runs of /bin/true" % n, "median", "per command", "ratio"))
for r in results:
    print("%-38s %8.0f ms %9.0f us %7.2fx" % (r["command"], r["median"] * 1000, r["median"] / n * 1e6, r["median"] / base))
print("ratio = median / median of the C program (the target for mlx is <= 1.5x)")
PY
