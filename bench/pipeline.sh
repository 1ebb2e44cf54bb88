#!/usr/bin/env bash
# The pipeline engine against GNU make and Snakemake on the same shapes, on
# this machine in one run: (a) a chain of 100 steps, (b) 1,000 independent
# steps, each writing one small output. For each: the first run, a no-op
# re-run and a dry run; wall-clock medians, and mlx's ratio to each peer.
#
# usage: bench/pipeline.sh [path/to/mlx]
#   RUNS=N       repetitions of the no-op and dry runs (default 10)
#   FIRST_RUNS=N repetitions of first runs (default 3)
#   SNAKEMAKE=0  leave Snakemake out (its first run of (b) takes ~70 s)
# needs: hyperfine, make, python3 (apt-get install hyperfine make snakemake)
set -euo pipefail
MLX=$(realpath "${1:-build/mlx}")
RUNS=${RUNS:-10}
FIRST_RUNS=${FIRST_RUNS:-3}
SNAKEMAKE=${SNAKEMAKE:-1}
JOBS=$(nproc)
for tool in hyperfine make python3; do
	command -v "$tool" >/dev/null || { echo "bench/pipeline.sh: needs $tool (apt-get install $tool)" >&2; exit 2; }
done
if [ "$SNAKEMAKE" = 1 ] && ! command -v snakemake >/dev/null; then
	echo "bench/pipeline.sh: needs snakemake (apt-get install snakemake), or run with SNAKEMAKE=0" >&2
	exit 2
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/mlx-bench-pipeline-XXXXXX")
trap 'rm -rf "$work"' EXIT
results="$work/results.tsv"
: >"$results"

# make_shape DIR chain|wide N: the same pipeline for the three tools.
make_shape() {
	local dir=$1 shape=$2 n=$3 i dep
	mkdir -p "$dir"
	echo input >"$dir/input.txt"
	{
		echo 'local p = require("mlx").pipeline "bench"'
		for i in $(seq 1 "$n"); do
			if [ "$shape" = chain ] && [ "$i" -gt 1 ]; then dep="out/$((i - 1))"; else dep=input.txt; fi
			echo "p:step \"s$i\" { deps = { \"$dep\" }, outs = { \"out/$i\" }, cmd = \"cat $dep > out/$i; echo $i >> out/$i\" }"
		done
		echo 'return p'
	} >"$dir/recipe.lua"
	{
		printf 'all:'
		for i in $(seq 1 "$n"); do printf ' out/%d' "$i"; done
		echo
		for i in $(seq 1 "$n"); do
			if [ "$shape" = chain ] && [ "$i" -gt 1 ]; then dep="out/$((i - 1))"; else dep=input.txt; fi
			printf 'out/%d: %s\n\t@mkdir -p out; cat %s > out/%d; echo %d >> out/%d\n' "$i" "$dep" "$dep" "$i" "$i" "$i"
		done
	} >"$dir/Makefile"
	{
		echo 'rule all:'
		printf '    input: [%s]\n' "$(seq -s, 1 "$n" | sed 's/\([0-9]\+\)/"out\/\1"/g')"
		for i in $(seq 1 "$n"); do
			if [ "$shape" = chain ] && [ "$i" -gt 1 ]; then dep="out/$((i - 1))"; else dep=input.txt; fi
			printf 'rule s%d:\n    input: "%s"\n    output: "out/%d"\n    shell: "cat %s > out/%d; echo %d >> out/%d"\n' \
				"$i" "$dep" "$i" "$dep" "$i" "$i" "$i"
		done
	} >"$dir/Snakefile"
}

# measure NAME DIR RUNS PREPARE COMMAND: median seconds into $results.
measure() {
	local name=$1 dir=$2 runs=$3 prepare=$4 command=$5
	(cd "$dir" && hyperfine --shell=bash --runs "$runs" --prepare "$prepare" \
		--export-json "$work/h.json" "$command" >/dev/null 2>&1)
	python3 -c 'import json,sys; print(sys.argv[1] + "\t" + str(json.load(open(sys.argv[2]))["results"][0]["median"]))' \
		"$name" "$work/h.json" >>"$results"
}

for spec in "chain 100" "wide 1000"; do
	set -- $spec
	shape=$1 n=$2
	dir="$work/$shape"
	make_shape "$dir" "$shape" "$n"
	(cd "$dir" && "$MLX" init >/dev/null)
	# A first run starts from no outputs and an empty store. What a previous
	# run left is moved aside, not deleted: on ext4, creating files right
	# after deleting thousands makes every new inode search past the
	# recently freed ones, which would measure the file system's
	# bookkeeping rather than the tools (it slows both make and mlx).
	aside="mkdir -p $work/aside && mv -t \$(mktemp -d $work/aside/XXXXXX)"
	clean_mlx="for f in out mlx.lock .mlx/cache .mlx/runs.db .mlx/runs.db-wal .mlx/runs.db-shm .mlx/state.db .mlx/state.db-wal .mlx/state.db-shm .mlx/logs .mlx/tmp; do [ -e \$f ] && $aside \$f; done; true"
	measure "$shape mlx first" "$dir" "$FIRST_RUNS" "$clean_mlx" "$MLX recipe recipe.lua -j $JOBS >/dev/null 2>&1"
	measure "$shape mlx noop" "$dir" "$RUNS" "true" "$MLX recipe recipe.lua >/dev/null 2>&1"
	measure "$shape mlx dry" "$dir" "$RUNS" "true" "$MLX recipe recipe.lua -n >/dev/null 2>&1"
	measure "$shape make first" "$dir" "$FIRST_RUNS" "[ -e out ] && $aside out; true" "make -s -j $JOBS >/dev/null 2>&1"
	measure "$shape make noop" "$dir" "$RUNS" "true" "make -s -j $JOBS >/dev/null 2>&1"
	measure "$shape make dry" "$dir" "$RUNS" "true" "make -n >/dev/null 2>&1"
	if [ "$SNAKEMAKE" = 1 ]; then
		measure "$shape snakemake first" "$dir" 1 "for f in out .snakemake; do [ -e \$f ] && $aside \$f; done; true" "snakemake -c $JOBS -q >/dev/null 2>&1"
		measure "$shape snakemake noop" "$dir" 3 "true" "snakemake -c $JOBS -q >/dev/null 2>&1"
		measure "$shape snakemake dry" "$dir" 3 "true" "snakemake -c $JOBS -n -q >/dev/null 2>&1"
	fi
done

python3 - "$results" <<'PY'
import sys
rows = dict(line.rstrip("\n").split("\t") for line in open(sys.argv[1]))
print("%-7s %-6s %10s %10s %10s %11s %12s" % ("shape", "phase", "mlx", "make", "snakemake", "mlx/make", "snake/mlx"))
for shape in ("chain", "wide"):
    for phase in ("first", "noop", "dry"):
        m = float(rows["%s mlx %s" % (shape, phase)])
        k = float(rows["%s make %s" % (shape, phase)])
        s = rows.get("%s snakemake %s" % (shape, phase))
        print("%-7s %-6s %9.3fs %9.3fs %10s %10.2fx %11s" % (
            shape, phase, m, k, ("%.3fs" % float(s)) if s else "-", m / k,
            ("%.1fx" % (float(s) / m)) if s else "-"))
print("chain = 100 steps in a chain, wide = 1,000 independent steps; medians;")
print("mlx/make: mlx time divided by make's; snake/mlx: how many times faster mlx is than Snakemake")
PY
