#!/usr/bin/env bash
# Where the wall time of a first run of 1,000 short command steps goes:
# bench/scale.sh's `pipe` project run once under a system-wide trace of the
# scheduler's events (fork, exec, exit, switch, wake-up), summarised by
# bench/timeline.py: how many steps run at once, what mlx's own thread does
# between one step's exit and the next one's start, how long a child waits
# for a CPU before its exec. CPU profiles do not show this; the wall does.
#
# usage: bench/timeline.sh [path/to/mlx] [JOBS]   (JOBS: -j, default nproc)
# needs: perf (linux-perf), python3; root or kernel.perf_event_paranoid <= -1
# Data lives in a new directory under /tmp, removed at the end.
set -euo pipefail
MLX=$(realpath "${1:-build/mlx}")
JOBS=${2:-$(nproc)}
SRC=$(cd "$(dirname "$0")/.." && pwd)
command -v perf >/dev/null || { echo "bench/timeline.sh: needs perf (apt-get install linux-perf)" >&2; exit 2; }
work=$(mktemp -d /tmp/mlx-bench-timeline-XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/p/out" && echo input >"$work/p/input.txt"
{
	echo 'local p = require("mlx").pipeline "bench"'
	for i in $(seq 1 1000); do
		echo "p:step \"s$i\" { deps = { \"input.txt\" }, outs = { \"out/$i\" }, cmd = \"cat input.txt > out/$i; echo $i >> out/$i\" }"
	done
	echo 'return p'
} >"$work/p/recipe.lua"
(cd "$work/p" && "$MLX" init >/dev/null)
echo "# load: $(cut -d' ' -f1-3 /proc/loadavg)"
(cd "$work/p" && perf record -q -a -o "$work/perf.data" \
	-e sched:sched_process_fork,sched:sched_process_exec,sched:sched_process_exit,sched:sched_switch,sched:sched_wakeup \
	-- "$MLX" recipe recipe.lua -j "$JOBS" >/dev/null 2>&1)
perf script -i "$work/perf.data" >"$work/perf.txt" 2>/dev/null
python3 "$SRC/bench/timeline.py" "$work/perf.txt" "$(basename "$MLX")"
