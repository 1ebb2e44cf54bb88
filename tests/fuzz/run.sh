#!/usr/bin/env bash
# run.sh TARGET — runs one fuzz target of $MLX_FUZZ (tests/fuzz/fuzz.c) for
# MLX_FUZZ_SECONDS (default 10) and reports it as one TAP test. It starts
# from the seed corpus in the source tree (tests/fuzz/corpus/TARGET, never
# written) and the inputs earlier runs found, kept in the build tree
# ($MLX_FUZZ_WORK/TARGET). A finding fails the test and names the input
# libFuzzer saved, with the command that reproduces it.
set -u
target=${1:?usage: run.sh TARGET}
if [ -z "${MLX_FUZZ:-}" ] || [ ! -x "$MLX_FUZZ" ]; then
	echo "1..0 # SKIP clang with libFuzzer not found (install clang and libclang-rt-14-dev, then reconfigure)"
	exit 0
fi
: "${MLX_FUZZ_CORPUS:?}" "${MLX_FUZZ_WORK:?}"
seconds=${MLX_FUZZ_SECONDS:-10}
seeds=$MLX_FUZZ_CORPUS/$target
found=$MLX_FUZZ_WORK/$target
crashes=$MLX_FUZZ_WORK/crashes
mkdir -p "$found" "$crashes" || exit 1
log=$MLX_FUZZ_WORK/$target.log

options=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096
	-print_final_stats=1 -artifact_prefix="$crashes/$target-")
[ -f "$MLX_FUZZ_CORPUS/$target.dict" ] && options+=(-dict="$MLX_FUZZ_CORPUS/$target.dict")

# The lock and run-cache targets write and fsync a file per input: on a
# disk that costs milliseconds, on tmpfs nothing, which is 20x the inputs.
scratch=${TMPDIR:-/tmp}
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
	scratch=/dev/shm
fi
# The target removes its temporary directory when it exits, but not when
# it aborts on a finding: this one is removed either way.
TMPDIR=$(mktemp -d "$scratch/mlx-fuzz-$target-XXXXXX") || exit 1
export TMPDIR
trap 'rm -rf "$TMPDIR"' EXIT

echo "1..1"
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
MLX_FUZZ_TARGET=$target "$MLX_FUZZ" "${options[@]}" "$found" "$seeds" >"$log" 2>&1
rc=$?
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
if [ "$rc" -eq 0 ]; then
	echo "ok 1 - $target: ${runs:-?} inputs in ${seconds} s, no finding"
	exit 0
fi
echo "not ok 1 - $target: finding (libFuzzer exit $rc)"
# The details go to stderr, which meson test --print-errorlogs shows.
{
	crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
	if [ -n "$crash" ]; then
		echo "mlx fuzz $target: the input is kept in $crash"
		echo "mlx fuzz $target: reproduce with: MLX_FUZZ_TARGET=$target $MLX_FUZZ $crash"
	fi
	echo "mlx fuzz $target: libFuzzer's output, in full in $log:"
	grep -v '^#[0-9]' "$log" | tail -n 60
} >&2
exit 1
