#!/usr/bin/env bash
# mlx at scale, each figure beside its peer, on this machine in one run:
#
#   pipe   1,000 independent command steps: no-op against ninja, first run
#          against make (-j nproc); hyperfine medians.
#   big    STEPS (100,000) Lua-function steps in a chain and in a fan-out:
#          the plan (-n) of a fresh project, the first run, and the no-op
#          twice (the first re-hashes the outs the run just wrote: racy),
#          with wall time and peak memory, against make -n and make's
#          no-op on the same graph; and the first run's cost per finished
#          step at STEPS/100 and STEPS/10 steps (constant means no rescans).
#   mega   MEGA_STEPS (1,000,000) steps: the plan (-n) of a fresh project.
#   hash   20,000 files of 4-64 KiB: mlx hash against the in-memory SHA-256
#          limit of 2 threads over the same bytes (bench/sha256_limit.c),
#          and against a C loop that opens, fstats, reads, closes and
#          hashes them the same way (sha256_limit --read): wall and CPU
#          seconds, the fastest of 2*RUNS interleaved runs of each.
#   track  TRACK_RUNS (100,000) runs x 20 metrics (2,000,000 metric rows)
#          and 2 params each in SQLite (bench/tracking_data.sh, as
#          bench/tracking.sh fills them): mlx runs --limit 50 and mlx exp
#          against sqlite3 running the same statements on the same file;
#          medians of 4*RUNS runs, mlx and sqlite3 alternately.
#   data   FILES (1,000,000) small files: mlx add (time, peak memory), the
#          no-op mlx status against git status on the same committed tree,
#          and one changed file: mlx status and mlx add (time, peak memory),
#          also with the watcher (mlx watch) running;
#          the add beside the floor of a file per object on this file system
#          (bench/create_limit.c: FILES files of 500 bytes created in 256
#          directories, and the same through the store's temp directories,
#          sync and renames).
#
# usage: bench/scale.sh [path/to/mlx]   (run from the repository root, with
#        the build in build/: the hash part links build/core/libmlx_core.a)
#   PARTS="pipe big mega hash track data"   which parts (default all)
#   STEPS=N MEGA_STEPS=N FILES=N TRACK_RUNS=N   sizes (defaults above)
#   RUNS=N                            hyperfine repetitions (default 5)
# Data lives in a new directory under /tmp, removed at the end.
# needs: hyperfine ninja-build make git gcc python3 sqlite3 (tools/install-deps.sh --bench)
set -euo pipefail
MLX=$(realpath "${1:-build/mlx}")
SRC=$(cd "$(dirname "$0")/.." && pwd)
PARTS=" ${PARTS:-pipe big mega hash track data} "
STEPS=${STEPS:-100000}
MEGA_STEPS=${MEGA_STEPS:-1000000}
FILES=${FILES:-1000000}
TRACK_RUNS=${TRACK_RUNS:-100000}
RUNS=${RUNS:-5}
JOBS=$(nproc)
for tool in hyperfine ninja make git cc python3; do
	command -v "$tool" >/dev/null || { echo "bench/scale.sh: needs $tool (apt-get install $tool)" >&2; exit 2; }
done
work=$(mktemp -d /tmp/mlx-bench-scale-XXXXXX)
trap 'rm -rf "$work"' EXIT
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@localhost GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@localhost
part() { case $PARTS in *" $1 "*) return 0 ;; esac; return 1; }
row() { printf '%-52s %12s %12s %10s\n' "$@"; }

# median SECONDS of hyperfine over COMMAND (run in DIR): hf DIR RUNS COMMAND [PREPARE]
# (STAT=min for the fastest run instead, for throughput on a shared machine)
hf() {
	(cd "$1" && hyperfine --shell=bash --runs "$2" ${4:+--prepare "$4"} --export-json "$work/h.json" "$3" >/dev/null 2>&1)
	python3 -c 'import json,sys; print("%.4f" % json.load(open(sys.argv[1]))["results"][0][sys.argv[2]])' \
		"$work/h.json" "${STAT:-median}"
}
# wall seconds, peak RSS (MB) and CPU seconds (user + system, with the
# children it waited for) of one run: once DIR COMMAND... -> "S MB CPU".
# On a shared machine the CPU time is the steadier figure.
once() {
	local dir=$1 t0 t1
	shift
	t0=$(date +%s%N)
	(cd "$dir" && /usr/bin/time -f "%M %U %S" -o "$work/t" "$@" >/dev/null 2>"$work/once.err") ||
		{ echo "bench/scale.sh: failed in $dir: $*" >&2; tail -3 "$work/once.err" >&2; exit 1; }
	t1=$(date +%s%N)
	awk -v ns=$((t1 - t0)) '{ printf "%.3f %.0f %.2f", ns / 1e9, $1 / 1024, $2 + $3 }' "$work/t"
}
ratio() { python3 -c 'import sys; print("%.2fx" % (float(sys.argv[1]) / float(sys.argv[2])))' "$1" "$2"; }

echo "# mlx at scale: $(nproc) CPUs, $(date -u +%F)"
row "figure" "mlx" "peer" "mlx/peer"

# --- 1,000 independent command steps --------------------------------------
if part pipe; then
	d=$work/pipe && mkdir -p "$d/out" && echo input >"$d/input.txt"
	{
		echo 'local p = require("mlx").pipeline "bench"'
		for i in $(seq 1 1000); do
			echo "p:step \"s$i\" { deps = { \"input.txt\" }, outs = { \"out/$i\" }, cmd = \"cat input.txt > out/$i; echo $i >> out/$i\" }"
		done
		echo 'return p'
	} >"$d/recipe.lua"
	{
		echo 'rule cat'
		echo '  command = cat input.txt > $out; echo $n >> $out'
		for i in $(seq 1 1000); do printf 'build out/%d: cat input.txt\n  n = %d\n' "$i" "$i"; done
	} >"$d/build.ninja"
	{
		printf 'all:'
		for i in $(seq 1 1000); do printf ' out/%d' "$i"; done
		echo
		for i in $(seq 1 1000); do printf 'out/%d: input.txt\n\tcat input.txt > out/%d; echo %d >> out/%d\n' "$i" "$i" "$i" "$i"; done
	} >"$d/Makefile"
	(cd "$d" && "$MLX" init >/dev/null)
	# A first run starts from no outputs and an empty store; what the last
	# run left is moved aside (deleting thousands of files just before would
	# slow every tool's file creation on ext4).
	aside="mkdir -p $work/aside && mv -t \$(mktemp -d $work/aside/XXXXXX)"
	clean_mlx="for f in out mlx.lock .mlx/cache .mlx/runs.db .mlx/runs.db-wal .mlx/runs.db-shm .mlx/state.db .mlx/state.db-wal .mlx/state.db-shm .mlx/logs .mlx/tmp; do [ -e \$f ] && $aside \$f; done; true"
	m_first=$(hf "$d" 3 "$MLX recipe recipe.lua -j $JOBS" "$clean_mlx")
	m_noop=$(hf "$d" "$((RUNS * 2))" "$MLX recipe recipe.lua")
	k_first=$(hf "$d" 3 "make -s -j $JOBS" "[ -e out ] && $aside out; mkdir out")
	n_first=$(hf "$d" 3 "ninja -j $JOBS" "[ -e out ] && $aside out; rm -f .ninja_log .ninja_deps; mkdir out")
	n_noop=$(hf "$d" "$((RUNS * 2))" "ninja -j $JOBS")
	row "1,000 steps: no-op (goal <= 3x ninja)" "${m_noop}s" "${n_noop}s" "$(ratio "$m_noop" "$n_noop")"
	row "1,000 steps: first run (goal <= 1.2x make)" "${m_first}s" "${k_first}s" "$(ratio "$m_first" "$k_first")"
	row "1,000 steps: first run, against ninja" "${m_first}s" "${n_first}s" "$(ratio "$m_first" "$n_first")"
	rm -rf "$d" "$work/aside"
fi

# A project of N Lua-function steps (chain or fan): each copies the head of
# its dep and appends its name; the same graph as a Makefile.
make_big() { # DIR SHAPE N
	mkdir -p "$1/out" && echo input >"$1/input.txt"
	cp "$SRC/bench/scale_recipe.lua" "$1/recipe.lua"
	python3 - "$1/Makefile" "$2" "$3" <<'PY'
import sys
path, shape, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(path, "w") as f:
    f.write("all: " + " ".join("out/%d" % i for i in range(1, n + 1)) + "\n")
    for i in range(1, n + 1):
        dep = "out/%d" % (i - 1) if shape == "chain" and i > 1 else "input.txt"
        f.write("out/%d: %s\n\thead -c 64 %s > out/%d; echo s%d >> out/%d\n" % (i, dep, dep, i, i, i))
PY
	(cd "$1" && "$MLX" init >/dev/null)
}

if part big; then
	for shape in chain fan; do
		d=$work/big-$shape
		make_big "$d" "$shape" "$STEPS"
		export SHAPE=$shape N=$STEPS
		read -r m_plan m_plan_mb m_plan_cpu <<<"$(once "$d" "$MLX" recipe recipe.lua -n)"
		read -r k_plan k_plan_mb k_plan_cpu <<<"$(once "$d" make -n)"
		read -r m_first m_first_mb m_first_cpu <<<"$(once "$d" "$MLX" recipe recipe.lua)"
		read -r m_noop m_noop_mb m_noop_cpu <<<"$(once "$d" "$MLX" recipe recipe.lua)"
		read -r k_noop k_noop_mb k_noop_cpu <<<"$(once "$d" make -s)"
		# The first no-op re-hashes every out: each was hashed within 100 ms
		# of being written (racy, as git's rule has it). The next one trusts
		# the stat cache: that is what every later no-op costs.
		read -r m_noop2 m_noop2_mb m_noop2_cpu <<<"$(once "$d" "$MLX" recipe recipe.lua)"
		read -r m_uplan m_uplan_mb m_uplan_cpu <<<"$(once "$d" "$MLX" recipe recipe.lua -n)"
		row "$STEPS $shape: plan -n, fresh (goal < 2 s, < 150 MB)" "${m_plan}s" "${k_plan}s" "$(ratio "$m_plan" "$k_plan")"
		row "  CPU seconds (make -n)" "${m_plan_cpu}s" "${k_plan_cpu}s" "$(ratio "$m_plan_cpu" "$k_plan_cpu")"
		row "  peak memory (make -n)" "${m_plan_mb}MB" "${k_plan_mb}MB" "$(ratio "$m_plan_mb" "$k_plan_mb")"
		row "$STEPS $shape: first no-op, re-hashes racy outs" "${m_noop}s" "${k_noop}s" "$(ratio "$m_noop" "$k_noop")"
		row "  CPU seconds (make)" "${m_noop_cpu}s" "${k_noop_cpu}s" "$(ratio "$m_noop_cpu" "$k_noop_cpu")"
		row "  peak memory (make)" "${m_noop_mb}MB" "${k_noop_mb}MB" "$(ratio "$m_noop_mb" "$k_noop_mb")"
		row "$STEPS $shape: no-op again, outs not racy (goal < 2 s)" "${m_noop2}s" "${k_noop}s" "$(ratio "$m_noop2" "$k_noop")"
		row "  CPU seconds (make)" "${m_noop2_cpu}s" "${k_noop_cpu}s" "$(ratio "$m_noop2_cpu" "$k_noop_cpu")"
		row "  peak memory (make)" "${m_noop2_mb}MB" "${k_noop_mb}MB" "$(ratio "$m_noop2_mb" "$k_noop_mb")"
		row "$STEPS $shape: plan -n, up to date" "${m_uplan}s ${m_uplan_mb}MB" "cpu ${m_uplan_cpu}s" "-"
		row "$STEPS $shape: first run, µs per step" "$(python3 -c "print('%.0f' % ($m_first * 1e6 / $STEPS))")" \
			"cpu $(python3 -c "print('%.0f' % ($m_first_cpu * 1e6 / $STEPS))")" "-"
		rm -rf "$d"
	done
	# The first run's cost per finished step as the graph grows: constant
	# when completing a step does not rescan the others.
	for n in $((STEPS / 100)) $((STEPS / 10)); do
		d=$work/grow-$n
		make_big "$d" chain "$n"
		read -r t _ cpu <<<"$(SHAPE=chain N=$n once "$d" "$MLX" recipe recipe.lua)"
		row "first run of a $n chain: µs per step" "$(python3 -c "print('%.0f' % ($t * 1e6 / $n))")" \
			"cpu $(python3 -c "print('%.0f' % ($cpu * 1e6 / $n))")" "-"
		rm -rf "$d"
	done
fi

if part mega; then
	d=$work/mega
	make_big "$d" fan 1
	read -r m_plan m_plan_mb m_plan_cpu <<<"$(SHAPE=fan N=$MEGA_STEPS once "$d" "$MLX" recipe recipe.lua -n)"
	row "$MEGA_STEPS fan: plan -n, fresh (goal < 30 s)" "${m_plan}s ${m_plan_mb}MB" "cpu ${m_plan_cpu}s" "-"
	rm -rf "$d"
fi

# --- data ------------------------------------------------------------------
if part hash; then
	d=$work/hash && mkdir -p "$d"
	python3 - "$d/data" <<'PY'
import os, random, sys
random.seed(7)
root = sys.argv[1]
for i in range(20000):
    d = os.path.join(root, "d%02d" % (i % 50))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d.bin" % i), "wb") as f:
        f.write(os.urandom(random.randint(4 << 10, 64 << 10)))
PY
	cc -O2 -I"$SRC/core" "$SRC/bench/sha256_limit.c" "$SRC/build/core/libmlx_core.a" -lcrypto -lpthread -o "$work/sha256_limit"
	find "$d/data" -type f | sort >"$work/list"
	bytes=$(du -sb "$d/data" | cut -f1)
	# Interleaved rounds, so that all three see the same load, and the
	# fastest of 2*RUNS of each: other work on the machine only ever slows a
	# run down. Wall and CPU seconds are minimized separately; on a busy
	# machine the CPU seconds are the steadier figure. The page cache is
	# filled before each run that reads the files.
	warm="cat $d/data/*/* >/dev/null"
	: >"$work/limit" && : >"$work/floor" && : >"$work/mlx"
	for _ in $(seq "$((RUNS * 2))"); do
		"$work/sha256_limit" 2 <"$work/list" | awk '{ print $3, $5 }' >>"$work/limit"
		bash -c "$warm"
		"$work/sha256_limit" --read 2 <"$work/list" | awk '{ print $3, $5 }' >>"$work/floor"
		bash -c "$warm"
		once "$d" "$MLX" hash data | awk '{ print $1, $3 }' >>"$work/mlx"
	done
	best() { sort -g -k"$2" "$work/$1" | head -1 | cut -d' ' -f"$2"; }
	limit=$(best limit 1) limit_cpu=$(best limit 2)
	floor=$(best floor 1) floor_cpu=$(best floor 2)
	m_hash=$(best mlx 1) m_cpu=$(best mlx 2)
	gbs() { python3 -c "print('%.2f GB/s' % ($bytes / $1 / 1e9))"; }
	pct() { python3 -c "print('%.0f%%' % (100 * $1 / $2))"; }
	row "20,000 files: mlx hash vs in-memory limit (>= 90%)" "$(gbs "$m_hash")" "$(gbs "$limit")" "$(pct "$limit" "$m_hash")"
	row "  CPU seconds (the limit: hashing alone)" "${m_cpu}s" "${limit_cpu}s" "$(pct "$limit_cpu" "$m_cpu")"
	row "  mlx hash vs a C read loop (sha256_limit --read)" "$(gbs "$m_hash")" "$(gbs "$floor")" "$(pct "$floor" "$m_hash")"
	row "    CPU seconds (the C read loop)" "${m_cpu}s" "${floor_cpu}s" "$(pct "$floor_cpu" "$m_cpu")"
	row "  C read loop vs in-memory limit (kernel's cost)" "$(gbs "$floor")" "$(gbs "$limit")" "$(pct "$limit" "$floor")"
	rm -rf "$d"
fi

# --- tracking ----------------------------------------------------------------
if part track; then
	command -v sqlite3 >/dev/null || { echo "bench/scale.sh: needs sqlite3 (apt-get install sqlite3)" >&2; exit 2; }
	. "$SRC/bench/tracking_data.sh"
	d=$work/track
	track_fill_sqlite "$MLX" "$d" "$TRACK_RUNS"
	# The peer: sqlite3 on the same file, running the statements mlx runs
	# for each listing (mlx.track's runs and attach, mlx.track.exp's rows):
	# the newest 50 rows, the metrics, params and tags of those ids (bound
	# as a list, as mlx binds them), and the count of all rows.
	noop="r.id NOT IN (SELECT run_id FROM tags WHERE key = 'mlx.noop')"
	joined=$(sed -n '/^local JOINED = \[\[$/,/^\]\]$/p' "$SRC/stdlib/mlx/track/exp.lua" | sed '1d;$d')
	[ -n "$joined" ] || { echo "bench/scale.sh: no JOINED query in stdlib/mlx/track/exp.lua" >&2; exit 1; }
	peer_sql() { # WHERE FROM-METRICS FROM-PARAMS
		local newest="SELECT r.* FROM main.runs r WHERE $1 ORDER BY r.start_time DESC, r.id DESC LIMIT 50"
		local ids
		ids=$(sqlite3 "$d/.mlx/runs.db" "SELECT group_concat(quote(id), ',') FROM ($newest)")
		echo "$newest;"
		echo "$2 WHERE run_id IN ($ids);"
		echo "$3 WHERE run_id IN ($ids);"
		echo "SELECT run_id, key, value FROM main.tags WHERE run_id IN ($ids);"
		echo "SELECT count(*) AS n FROM main.runs r WHERE $1;"
	}
	peer_sql "(1 = 1) AND $noop" "SELECT run_id, key, value FROM latest_metrics" \
		"SELECT run_id, key, value FROM params" >"$work/runs.sql"
	peer_sql "r.parent_id IS NULL AND (1 = 1) AND $noop" "$joined SELECT run_id, key, value FROM latest_metrics" \
		"$joined SELECT run_id, key, value FROM params" >"$work/exp.sql"
	# Once each first: the page cache holds the database for every run.
	for cmd in "$MLX runs --limit 50" "$MLX exp" "sqlite3 .mlx/runs.db <$work/runs.sql" "sqlite3 .mlx/runs.db <$work/exp.sql"; do
		(cd "$d" && MLX_TRACKING_URI= bash -c "$cmd" >/dev/null 2>"$work/track.err") ||
			{ echo "bench/scale.sh: failed: $cmd" >&2; tail -3 "$work/track.err" >&2; exit 1; }
	done
	# mlx and its peer alternately, 4*RUNS times each, so that both see the
	# same load; the medians of their wall times.
	: >"$work/track.t"
	for _ in $(seq "$((RUNS * 4))"); do
		(
			cd "$d" && export MLX_TRACKING_URI=
			t0=$EPOCHREALTIME
			"$MLX" runs --limit 50 >/dev/null 2>&1 || exit
			t1=$EPOCHREALTIME
			sqlite3 .mlx/runs.db <"$work/runs.sql" >/dev/null || exit
			t2=$EPOCHREALTIME
			"$MLX" exp >/dev/null 2>&1 || exit
			t3=$EPOCHREALTIME
			sqlite3 .mlx/runs.db <"$work/exp.sql" >/dev/null || exit
			echo "$t0 $t1 $t2 $t3 $EPOCHREALTIME"
		) >>"$work/track.t" || { echo "bench/scale.sh: a listing failed in $d" >&2; exit 1; }
	done
	read -r m_runs q_runs m_exp q_exp <<<"$(python3 - "$work/track.t" <<'PY'
import statistics, sys
rows = [[float(x) for x in line.split()] for line in open(sys.argv[1])]
print(*("%.4f" % statistics.median(r[k + 1] - r[k] for r in rows) for k in range(4)))
PY
)"
	ms() { python3 -c "print('%.1f ms' % ($1 * 1000))"; }
	row "$TRACK_RUNS runs: mlx runs --limit 50 (goal < 100 ms)" "$(ms "$m_runs")" "$(ms "$q_runs")" "$(ratio "$m_runs" "$q_runs")"
	row "$TRACK_RUNS runs: mlx exp (goal < 100 ms)" "$(ms "$m_exp")" "$(ms "$q_exp")" "$(ratio "$m_exp" "$q_exp")"
	rm -rf "$d"
fi

if part data; then
	d=$work/data && mkdir -p "$d"
	echo "# generating $FILES files" >&2
	python3 - "$d/data" "$FILES" <<'PY'
import os, random, sys
random.seed(11)
root, n = sys.argv[1], int(sys.argv[2])
per = 1000
blob = os.urandom(1 << 20)
for i in range(n):
    if i % per == 0:
        sub = os.path.join(root, "d%04d" % (i // per))
        os.makedirs(sub)
    size = random.randint(16, 1024)
    at = random.randint(0, len(blob) - size)
    with open(os.path.join(sub, "f%07d" % i), "wb") as f:
        f.write(b"%d\n" % i + blob[at:at + size])
PY
	(cd "$d" && "$MLX" init >/dev/null)
	sync
	read -r m_add m_add_mb m_add_cpu <<<"$(once "$d" "$MLX" add data)"
	cc -O2 "$SRC/bench/create_limit.c" -lpthread -o "$work/create_limit"
	read -r _ _ l_create _ <<<"$("$work/create_limit" create "$d/limit-create" "$FILES" 2 2>/dev/null)"
	read -r _ _ l_stage _ <<<"$("$work/create_limit" stage "$d/limit-stage" "$FILES" 2 2>/dev/null)"
	rm -rf "$d/limit-create" "$d/limit-stage"
	# mlx add lists data/ in .gitignore (tracked data stays out of git);
	# moved aside, so that git tracks the same files as its peer.
	mv "$d/.gitignore" "$d/mlx.gitignore"
	(cd "$d" && git init -q)
	read -r g_add g_add_mb g_add_cpu <<<"$(once "$d" git add -A)"
	(cd "$d" && git commit -q -m data)
	sleep 1 # past the racy-timestamp window of both tools' caches
	(cd "$d" && git status --porcelain >/dev/null && "$MLX" status >/dev/null 2>&1)
	m_st=$(hf "$d" "$RUNS" "$MLX status")
	g_st=$(hf "$d" "$RUNS" "git status")
	read -r _ m_st_mb _ <<<"$(once "$d" "$MLX" status)"
	row "$FILES files: mlx add (goal < 60 s, < 1 GB)" "${m_add}s ${m_add_mb}MB" "${g_add}s" "$(ratio "$m_add" "$g_add")"
	row "  CPU seconds (git add -A)" "${m_add_cpu}s" "${g_add_cpu}s" "$(ratio "$m_add_cpu" "$g_add_cpu")"
	row "  peak memory (git add -A)" "${m_add_mb}MB" "${g_add_mb}MB" "$(ratio "$m_add_mb" "$g_add_mb")"
	row "  add vs creating $FILES files (create_limit)" "${m_add}s" "${l_create}s" "$(ratio "$m_add" "$l_create")"
	row "  add vs temp+rename of them (create_limit stage)" "${m_add}s" "${l_stage}s" "$(ratio "$m_add" "$l_stage")"
	row "$FILES files: no-op status (goal <= 0.7x git)" "${m_st}s" "${g_st}s" "$(ratio "$m_st" "$g_st")"
	row "  mlx status peak memory" "${m_st_mb}MB" "" ""
	echo changed >>"$d/data/d0000/f0000000"
	sleep 1
	read -r m_c1 m_c1_mb _ <<<"$(once "$d" "$MLX" status)"
	read -r g_c1 _ _ <<<"$(once "$d" git status)"
	read -r m_c2 m_c2_mb _ <<<"$(once "$d" "$MLX" add data)"
	# The same change added by its path: the directory's record is
	# updated from its locked manifest, without a walk.
	echo again >>"$d/data/d0000/f0000000"
	read -r m_c3 m_c3_mb _ <<<"$(once "$d" "$MLX" add data/d0000/f0000000)"
	row "one file changed: mlx status (goal < 1 s)" "${m_c1}s ${m_c1_mb}MB" "${g_c1}s" "$(ratio "$m_c1" "$g_c1")"
	row "one file changed: mlx add (goal < 1 s)" "${m_c2}s ${m_c2_mb}MB" "-" "-"
	row "one file changed: mlx add data/d0000/f0000000" "${m_c3}s ${m_c3_mb}MB" "-" "-"
	# The same with the watcher (mlx watch), started before the change:
	# the looks before it leave the tree's token (the first re-hashes
	# the file added just now, racy), so each look after it stats only
	# what the watcher reports.
	read -r m_w_start _ _ <<<"$(once "$d" "$MLX" watch start)"
	sleep 1
	(cd "$d" && "$MLX" status >/dev/null 2>&1 && "$MLX" status >/dev/null 2>&1)
	m_w0=$(hf "$d" "$RUNS" "$MLX status")
	echo watched >>"$d/data/d0001/f0001000"
	sleep 1
	read -r m_w1 m_w1_mb _ <<<"$(once "$d" "$MLX" status)"
	read -r m_w2 m_w2_mb _ <<<"$(once "$d" "$MLX" add data)"
	(cd "$d" && "$MLX" watch stop >/dev/null)
	row "  mlx watch start ($FILES files)" "${m_w_start}s" "-" "-"
	row "  with the watcher: no-op status" "${m_w0}s" "${g_st}s" "$(ratio "$m_w0" "$g_st")"
	row "  with the watcher: one file changed, status" "${m_w1}s ${m_w1_mb}MB" "${g_c1}s" "$(ratio "$m_w1" "$g_c1")"
	row "  with the watcher: one file changed, add" "${m_w2}s ${m_w2_mb}MB" "-" "-"
	rm -rf "$d"
fi
