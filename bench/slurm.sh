#!/usr/bin/env bash
# The slurm executor against plain sbatch on the single-node test cluster
# (tools/slurm-test-cluster.sh; a running one is reused), one run each:
#  (a) N one-second jobs: mlx --executor slurm -j 1 against a loop of
#      `sbatch --wait`, and -j 8 against 8 `sbatch --wait` at a time;
#      the ratio of wall times is the overhead mlx adds per step;
#  (b) ARRAY_N tiny steps that mlx submits as one job array, against
#      ARRAY_N separate sbatch calls (submitted, then waited for);
#  (c) mlx's resident memory and threads while PENDING_N jobs wait in the
#      queue (held with --begin), and at a tenth of that: flat, no thread
#      per job.
#
# usage: bench/slurm.sh [path/to/mlx]
#   N=100 ARRAY_N=1000 PENDING_N=1000   (smaller while developing)
set -euo pipefail
MLX=$(realpath "${1:-build/mlx}")
N=${N:-100}
ARRAY_N=${ARRAY_N:-1000}
PENDING_N=${PENDING_N:-1000}
here=$(cd "$(dirname "$0")/.." && pwd)
PATH=$PATH:/usr/sbin
if exports=$("$here/tools/slurm-test-cluster.sh" status 2>/dev/null); then
	eval "$exports"
	stop=
else
	eval "$("$here/tools/slurm-test-cluster.sh" start)"
	stop=1
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/mlx-bench-slurm-XXXXXX")
trap 'rm -rf "$work"; [ -z "$stop" ] || "$here/tools/slurm-test-cluster.sh" stop' EXIT

now() { date +%s.%N; }
elapsed() { echo "$(now) - $1" | bc; }
ratio() { echo "scale=2; $1 / $2" | bc; }

project() { # DIR N CMD-TEMPLATE (with %d for the step number) [EXECUTOR-OPTIONS]
	local dir=$1 n=$2 cmd=$3 opts=${4:-}
	mkdir -p "$dir/out"
	(cd "$dir" && "$MLX" init >/dev/null)
	{
		echo 'local p = require("mlx").pipeline "bench"'
		echo "p:executor { \"slurm\", poll = 1 $opts }"
		echo "for i = 1, $n do"
		echo "  p:step(\"s\" .. i) { outs = { \"out/\" .. i }, cmd = (\"$cmd\"):format(i, i) }"
		echo "end"
		echo 'return p'
	} >"$dir/recipe.lua"
}

# The time from the first sbatch to the end of the last job, JOBS at a time.
sbatch_wait_loop() { # DIR N JOBS
	local dir=$1 n=$2 jobs=$3 i
	mkdir -p "$dir/out"
	cd "$dir"
	for i in $(seq 1 "$n"); do
		sbatch --wait --quiet --output=/dev/null --wrap "sleep 1; echo $i > out/$i" &
		while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
	done
	wait
	cd - >/dev/null
}

echo "# (a) $N one-second jobs"
for jobs in 1 8; do
	project "$work/a$jobs" "$N" 'sleep 1; echo %d > out/%d'
	t0=$(now)
	(cd "$work/a$jobs" && "$MLX" recipe recipe.lua -q -j "$jobs")
	mlx_s=$(elapsed "$t0")
	t0=$(now)
	sbatch_wait_loop "$work/s$jobs" "$N" "$jobs"
	sbatch_s=$(elapsed "$t0")
	printf '%-32s mlx %7.1f s   sbatch --wait %7.1f s   ratio %s\n' "-j $jobs" "$mlx_s" "$sbatch_s" \
		"$(ratio "$mlx_s" "$sbatch_s")"
done

echo "# (b) $ARRAY_N tiny steps"
project "$work/b" "$ARRAY_N" 'echo %d > out/%d'
t0=$(now)
(cd "$work/b" && "$MLX" recipe recipe.lua -q -j "$ARRAY_N")
mlx_s=$(elapsed "$t0")
mkdir -p "$work/bs/out"
t0=$(now)
ids=()
for i in $(seq 1 "$ARRAY_N"); do
	ids+=("$(cd "$work/bs" && sbatch --parsable --output=/dev/null --wrap "echo $i > out/$i")")
done
submitted_s=$(elapsed "$t0")
while [ -n "$(squeue --noheader --format=%i --jobs="$(IFS=,; echo "${ids[*]}")" 2>/dev/null)" ]; do sleep 0.2; done
sbatch_s=$(elapsed "$t0")
printf '%-32s mlx (one array) %7.1f s   %d x sbatch %7.1f s (submitting: %.1f s)   ratio %s\n' \
	"$ARRAY_N steps" "$mlx_s" "$ARRAY_N" "$sbatch_s" "$submitted_s" "$(ratio "$mlx_s" "$sbatch_s")"

echo "# (c) mlx's memory while jobs wait in the queue"
for n in $((PENDING_N / 10)) "$PENDING_N"; do
	# array = false: one job per step, the most a poll has to follow.
	project "$work/c$n" "$n" 'echo %d > out/%d' ', array = false, sbatch = { "--begin=now+3600" }'
	(cd "$work/c$n" && exec "$MLX" recipe recipe.lua -q -j "$n" >/dev/null 2>&1) &
	pid=$!
	until [ "$(squeue --noheader --states=PENDING --format=%i | wc -l)" -ge "$n" ]; do sleep 0.5; done
	sleep 3 # a few polls with every job pending
	rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
	threads=$(awk '/^Threads:/ { print $2 }' "/proc/$pid/status")
	printf '%-32s mlx RSS %6.1f MiB, %s threads\n' "$n jobs pending" "$(echo "scale=1; $rss / 1024" | bc)" "$threads"
	kill -INT "$pid"
	wait "$pid" || true
done
