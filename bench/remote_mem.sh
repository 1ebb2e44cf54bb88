#!/usr/bin/env bash
# Memory of remote transfers as the file count grows: peak RSS
# (/usr/bin/time -f %M) of mlx push, a no-op push, mlx pull into a fresh
# clone and a no-op pull, to and from a directory remote, for each count.
# Files are 4 KiB (memory depends on their number, not their size), in 200
# subdirectories of one tracked directory.
#
# usage: bench/remote_mem.sh [path/to/mlx]
# COUNTS (default "20000 200000"), BENCH_DIR (default: a new directory under
# /var/tmp, removed at the end unless KEEP=1). Prints one line per count
# and the ratio of the last count's peaks to the first's.
set -euo pipefail
MLX=$(realpath "${1:-build/mlx}")
COUNTS=${COUNTS:-20000 200000}
command -v python3 >/dev/null || { echo "bench/remote_mem.sh: needs python3" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench/remote_mem.sh: needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
work=${BENCH_DIR:-$(mktemp -d /var/tmp/mlx-bench-remote-mem-XXXXXX)}
mkdir -p "$work"
trap '[ "${KEEP:-0}" = 1 ] || rm -rf "$work"' EXIT
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@localhost GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@localhost

# peak NAME ARGS… — runs mlx ARGS, prints its peak RSS in MiB (one decimal)
peak() {
	local name=$1
	shift
	/usr/bin/time -f %M -o "$work/rss-$name" "$MLX" "$@" >/dev/null
	python3 -c "print(f'{$(cat "$work/rss-$name") / 1024:.1f}')"
}

first=""
for n in $COUNTS; do
	echo "# $n files of 4 KiB in $work" >&2
	rm -rf "$work/$n"
	mkdir -p "$work/$n/a/data"
	python3 - "$work/$n/a/data" "$n" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, "d%03d" % (i % 200))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%07d.bin" % i), "wb") as f:
        f.write(os.urandom(4096))
PY
	cd "$work/$n/a"
	git init -q . && "$MLX" init >/dev/null
	"$MLX" add data >/dev/null
	"$MLX" remote add origin "$work/$n/remote" >/dev/null
	git add -A && git commit -qm data
	push=$(peak push push)
	noop_push=$(peak noop-push push)
	git clone -q "$work/$n/a" "$work/$n/b"
	cd "$work/$n/b"
	pull=$(peak pull pull)
	noop_pull=$(peak noop-pull pull)
	[ "$(find data -type f | wc -l)" -eq "$n" ] || { echo "bench/remote_mem.sh: the pull is incomplete" >&2; exit 1; }
	cd "$work"
	echo "mlx $n files: peak RSS push $push MiB, no-op push $noop_push MiB, pull $pull MiB, no-op pull $noop_pull MiB"
	line="$push $noop_push $pull $noop_pull"
	[ -n "$first" ] || first=$line
	last=$line
	rm -rf "$work/$n"
done
if [ "$first" != "$last" ]; then
	python3 - "$first" "$last" <<'PY'
import sys
a, b = ([float(x) for x in s.split()] for s in sys.argv[1:3])
names = ["push", "no-op push", "pull", "no-op pull"]
print("ratios (last count / first):", ", ".join(f"{n} {y / x:.2f}" for n, x, y in zip(names, a, b)))
PY
fi
