#!/usr/bin/env bash
# Hashing, storing and re-checking data: mlx against its peers, on this
# machine in one run. Data sets: (a) one 2 GiB file, (b) 20,000 files of
# 4–64 KiB (~700 MB). Everything is read once first, so all tools hash from
# the page cache; the medians of RUNS runs (hyperfine) are printed with
# their ratio to mlx.
#
#   (a), (b)  mlx hash  vs  sha256sum, xargs -P$(nproc) sha256sum,
#             openssl dgst -sha256, b3sum (xargs -P$(nproc) on (b)),
#             git hash-object
#   (b)       mlx add   vs  git annex add (on a 2,000-file subset, scaled
#             ×10: git annex takes minutes on all 20,000)
#   (b)       no-op re-check: mlx status after mlx add  vs  git status on
#             the same files committed to git
#
# usage: bench/hash.sh [path/to/mlx]
# PARTS (default "a b add status") picks the measurements: a = one 2 GiB
# file, b = hashing 20,000 files, add = mlx add against git annex add,
# status = the no-op re-check; e.g. PARTS="b status" for the two that need
# no 2 GiB file and no git-annex.
# Needs: hyperfine b3sum git-annex openssl git python3 (Debian:
#   apt-get install hyperfine b3sum git-annex openssl git python3).
# BENCH_DIR (default: a new directory under /var/tmp, on disk, not tmpfs)
# holds the data (~3 GB) and is removed at the end unless KEEP=1.
set -euo pipefail
MLX=$(realpath "${1:-build/mlx}")
RUNS=${RUNS:-5}
PARTS=" ${PARTS:-a b add status} "
JOBS=$(nproc)
missing=()
for tool in hyperfine b3sum git-annex openssl git python3 sha256sum; do
	command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "bench/hash.sh: needs ${missing[*]}; install with: apt-get install ${missing[*]}" >&2
	exit 2
fi
work=${BENCH_DIR:-$(mktemp -d /var/tmp/mlx-bench-XXXXXX)}
mkdir -p "$work"
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
cd "$work"
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@localhost GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@localhost

echo "# preparing data in $work" >&2
case $PARTS in *" a "*) [ -f big.bin ] || head -c $((2 << 30)) /dev/urandom >big.bin ;; esac
if [ ! -d proj/data ]; then
	mkdir -p proj/data
	python3 - proj/data <<'PY'
import os, random, sys
random.seed(7)
root = sys.argv[1]
for i in range(20000):
    d = os.path.join(root, "d%02d" % (i % 50))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d.bin" % i), "wb") as f:
        f.write(os.urandom(random.randint(4 << 10, 64 << 10)))
PY
fi
[ ! -f big.bin ] || cat big.bin >/dev/null
find proj/data -type f -print0 | xargs -0 cat >/dev/null
files=$(find proj/data -type f | wc -l)
bytes=$(du -sb proj/data | cut -f1)
echo "# (a) $( [ -f big.bin ] && du -b big.bin | cut -f1 || echo 0) bytes in one file; (b) $files files, $bytes bytes; $JOBS CPUs" >&2

report() { # JSON BASE-INDEX TITLE
	python3 - "$@" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
base = results[int(sys.argv[2])]["median"]
print("\n## " + sys.argv[3])
print("%-58s %10s %9s" % ("command", "median", "vs mlx"))
for r in results:
    print("%-58s %8.3f s %8.2fx" % (r["command"][:58], r["median"], r["median"] / base))
PY
}

hf() { hyperfine --style none --shell bash "$@" >/dev/null; }

part() { case $PARTS in *" $1 "*) return 0 ;; esac; return 1; }

# (a) one 2 GiB file (sha256sum and git take ~10 s each: 2 runs)
if part a; then
hf --warmup 1 --runs "$RUNS" --export-json a1.json \
	"$MLX hash big.bin" \
	"openssl dgst -sha256 big.bin" \
	"b3sum big.bin" \
	"b3sum --num-threads 1 big.bin"
hf --runs 2 --export-json a2.json "sha256sum big.bin" "git hash-object big.bin"
python3 -c 'import json,sys; a=json.load(open("a1.json")); a["results"]+=json.load(open("a2.json"))["results"]; json.dump(a, open("a.json","w"))'
report a.json 0 "(a) one 2 GiB file: hash"
fi

# (b) 20,000 small files
list="find proj/data -type f -print0"
if part b; then
hf --warmup 1 --runs "$RUNS" --export-json b.json \
	"$MLX hash proj/data" \
	"$list | xargs -0 sha256sum >/dev/null" \
	"$list | xargs -0 -P$JOBS -n 500 sha256sum >/dev/null" \
	"$list | xargs -0 -P$JOBS -n 500 openssl dgst -sha256 >/dev/null" \
	"$list | xargs -0 -P$JOBS -n 500 b3sum >/dev/null" \
	"$list | xargs -0 b3sum >/dev/null" \
	"$list | tr '\\0' '\\n' | git hash-object --stdin-paths >/dev/null"
report b.json 0 "(b) $files files of 4-64 KiB: hash"
fi

# mlx add, each run in a fresh project over the same files, including the
# batch sync that makes the objects durable before mlx.lock is written.
# The previous run's store is moved aside, not deleted: ext4 skips inodes
# freed in the last minutes when it allocates new ones, and deleting 20,000
# files just before would make any tool creating files several times slower.
mkdir -p trash
if part add; then
hf --warmup 1 --runs "$RUNS" --export-json add.json \
	--prepare "cd proj && mv .mlx ../trash/\$(date +%s%N) 2>/dev/null; rm -f mlx.lock; $MLX init >/dev/null; sync" \
	"cd proj && $MLX add data >/dev/null"
# git annex add on a subset (all 20,000 take minutes), scaled to the full set.
subset=2000
rm -rf annex && mkdir annex
# (a list file, not a pipe into head: with pipefail, sort killed by SIGPIPE
# when head has enough would end the script)
find proj/data -type f | sort >annex-files.txt
head -n $subset annex-files.txt | while read -r f; do
	mkdir -p "annex/$(dirname "${f#proj/}")"
	cp "$f" "annex/${f#proj/}"
done
(cd annex && git init -q && git annex init -q bench >/dev/null 2>&1)
start=$(date +%s.%N)
(cd annex && git annex add --quiet data >/dev/null 2>&1)
end=$(date +%s.%N)
python3 - add.json "$start" "$end" "$subset" "$files" <<'PY'
import json, sys
mlx = json.load(open(sys.argv[1]))["results"][0]["median"]
annex = (float(sys.argv[3]) - float(sys.argv[2])) * int(sys.argv[5]) / int(sys.argv[4])
print("\n## (b) add to the store")
print("%-58s %10s %9s" % ("command", "median", "vs mlx"))
print("%-58s %8.3f s %8.2fx" % ("mlx add data", mlx, 1.0))
print("%-58s %8.3f s %8.2fx" % ("git annex add data (%s files, x%g)" % (sys.argv[4], int(sys.argv[5]) / int(sys.argv[4])), annex, annex / mlx))
PY
fi

# no-op re-check: mlx status after mlx add; git status on the same files
# committed to git.
if part status; then
(cd proj && { [ ! -d .mlx ] || mv .mlx "../trash/$(date +%s%N)"; } && rm -f mlx.lock && $MLX init >/dev/null &&
	$MLX add data >/dev/null && git init -q && git add -A && git commit -q --allow-empty -m data)
# let the stat cache entries age past the racy window, as in real use
sleep 1
hf --warmup 3 --runs $((RUNS * 4)) --export-json status.json \
	"cd proj && $MLX status" \
	"cd proj && git status --porcelain"
report status.json 0 "(b) no-op re-check after add (mlx status vs git status)"
fi
rm -rf "$work/trash"
