#!/usr/bin/env bash
# Pushing and pulling to a remote: mlx against rclone (Debian: rclone) on
# the same data and the same remote, in one run.
#
#   push     mlx push of N files of 4–64 KiB to an empty remote
#            vs rclone copy of the same files, best of --transfers 4 8 16 32
#   pull     mlx pull into a fresh clone (fetch, verify, store, check out)
#            vs rclone copy from the remote, best --transfers; mlx's is
#            the best of as many pulls, taken in turn with rclone's tries
#   no-op    mlx push and mlx pull again (nothing to do)
#            vs rclone sync again (nothing to do)
#   big      one 2 GiB file pushed and pulled (BIG=1, or PARTS=big for
#            this part alone), vs rclone copy, with peak RSS
#   memory   peak RSS of mlx push and mlx pull at N files, and at N2 files
#            of 4 KiB (0: skipped)
# Every timed transfer starts after a sync(1), so that no tool writes out
# the data of the try before it.
#
# usage: bench/remote.sh [path/to/mlx] [REMOTE]
# REMOTE is a directory (default: a new one under BENCH_DIR), an
# https:// WebDAV URL (rclone then uses its webdav backend on the same URL),
# or `webdav`: nginx with its DAV modules on 127.0.0.1, started and stopped
# here (tests/helper/dav_server.sh).
# N (default 20000), N2 (default 0; 200000 for the memory figure), BIG
# (default 0), PARTS (default "small"; "big" or "small big"), BENCH_DIR
# (default: a new directory under /var/tmp, on disk, removed at the end
# unless KEEP=1; the directory remote and the clones go there too, so
# BENCH_DIR=/dev/shm/NAME runs both tools on a tmpfs, to tell the file
# system's share from theirs). Prints one line per measurement and
# the ratios rclone/mlx (above 1: mlx is faster).
set -euo pipefail
MLX=$(realpath "${1:-build/mlx}")
REMOTE=${2:-}
N=${N:-20000}
N2=${N2:-0}
BIG=${BIG:-0}
PARTS=${PARTS:-small}
[ "$BIG" != 1 ] || PARTS="$PARTS big"
command -v rclone >/dev/null || { echo "bench/remote.sh: needs rclone (apt-get install rclone)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "bench/remote.sh: needs python3" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench/remote.sh: needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
work=${BENCH_DIR:-$(mktemp -d /var/tmp/mlx-bench-remote-XXXXXX)}
mkdir -p "$work"
dav_server=$(cd "$(dirname "$0")/.." && pwd)/tests/helper/dav_server.sh
dav_dir=""
cleanup() {
	[ -z "$dav_dir" ] || "$dav_server" stop "$dav_dir"
	[ "${KEEP:-0}" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT
if [ "$REMOTE" = webdav ]; then
	eval "$("$dav_server" start)"
	dav_dir=$MLX_TEST_DAV_DIR
	REMOTE=$MLX_TEST_DAV_URL
	export no_proxy=127.0.0.1
fi
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@localhost GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@localhost
export RCLONE_CONFIG=$work/rclone.conf
: >"$RCLONE_CONFIG"

now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$2 - $1:.3f}')"; }
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }

# The remote as mlx and rclone name it, and a way to empty it.
remote_for() { # NAME — prints "MLX_URL RCLONE_PATH"
	if [ -z "$REMOTE" ]; then
		echo "$work/remotes/$1 $work/remotes/$1-rclone"
	else
		case "$REMOTE" in
		http*://*)
			[ -s "$RCLONE_CONFIG" ] || printf '[dav]\ntype = webdav\nurl = %s\nvendor = other\n' "$REMOTE" >"$RCLONE_CONFIG"
			echo "${REMOTE%/}/$1/ dav:$1-rclone"
			;;
		*) echo "$REMOTE/$1 $REMOTE/$1-rclone" ;;
		esac
	fi
}

make_files() { # DIR COUNT [MAX_KIB] — COUNT files of 4 KiB to MAX_KIB (64)
	python3 - "$1" "$2" "${3:-64}" <<'PY'
import os, random, sys
random.seed(7)
root, n, top = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    d = os.path.join(root, "d%03d" % (i % 200))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%06d.bin" % i), "wb") as f:
        f.write(os.urandom(random.randint(4 << 10, max(4, top) << 10)))
PY
}

project() { # DIR DATA URL — a git project tracking DATA (moved in), remote URL
	mkdir -p "$1" && cd "$1"
	git init -q . && "$MLX" init >/dev/null
	mv "$2" data
	"$MLX" add data >/dev/null
	"$MLX" remote add origin "$3" >/dev/null
	git add -A && git commit -qm data
	cd "$work"
}

# Writes out what is dirty on the file systems before a timed try: a tool
# that syncs (mlx's store commit) would otherwise also write the data the
# try before it left in the page cache (rclone's 700 MB), and one that does
# not would leave its own to the next try.
settle() { sync; }

# 0 if seconds A < B: faster A B
faster() { python3 -c "import sys; sys.exit(0 if $1 < $2 else 1)"; }

best_rclone() { # SRC DST [BETWEEN] — sets best to the best time of rclone copy over --transfers
	# Each try copies to a destination of its own (DST-4 … DST-32), none
	# deleted in between: on ext4, creating files right after thousands
	# were deleted is slower for minutes, which would slow the later tries.
	# BETWEEN, a command, runs between two tries.
	local t tr
	best=""
	for tr in 4 8 16 32; do
		local t0 t1
		settle
		t0=$(now)
		rclone copy --transfers "$tr" --checkers "$tr" "$1" "$2-$tr" >/dev/null 2>&1
		t1=$(now)
		t=$(elapsed "$t0" "$t1")
		echo "#   rclone copy --transfers $tr: $t s" >&2
		if [ -z "$best" ] || faster "$t" "$best"; then best=$t; fi
		[ "$tr" != 32 ] && [ -n "${3:-}" ] && $3
	done
	return 0
}

run_set() { # NAME COUNT — push/pull/no-op of COUNT small files; prints results
	local name=$1 count=$2
	read -r url rpath <<<"$(remote_for "$name")"
	echo "# preparing $count files for $name in $work" >&2
	rm -rf "$work/$name-data" && make_files "$work/$name-data" "$count" "${MAX_KIB:-64}"
	cp -r "$work/$name-data" "$work/$name-plain" # rclone's copy of the same bytes
	project "$work/$name-a" "$work/$name-data" "$url"
	find "$work/$name-a/data" "$work/$name-plain" -type f -print0 | xargs -0 cat >/dev/null

	cd "$work/$name-a"
	local t0 t1 push noop_push pull noop_pull
	settle
	t0=$(now); /usr/bin/time -f %M -o "$work/rss-push" "$MLX" push >/dev/null; t1=$(now)
	push=$(elapsed "$t0" "$t1")
	t0=$(now); "$MLX" push >/dev/null; t1=$(now)
	noop_push=$(elapsed "$t0" "$t1")
	cd "$work"
	git clone -q "$work/$name-a" "$work/$name-b"
	cd "$work/$name-b"
	settle
	t0=$(now); /usr/bin/time -f %M -o "$work/rss-pull" "$MLX" pull >/dev/null; t1=$(now)
	pull=$(elapsed "$t0" "$t1")
	echo "#   mlx pull, try 1: $pull s" >&2
	t0=$(now); "$MLX" pull >/dev/null; t1=$(now)
	noop_pull=$(elapsed "$t0" "$t1")
	cmp -s <(cd "$work/$name-a/data" && find . -type f -print0 | sort -z | xargs -0 sha256sum) \
		<(cd "$work/$name-b/data" && find . -type f -print0 | sort -z | xargs -0 sha256sum) ||
		{ echo "bench/remote.sh: the pulled data differs" >&2; exit 1; }
	cd "$work"
	echo "mlx $name: push $push s, no-op push $noop_push s, pull $pull s, no-op pull $noop_pull s," \
		"peak RSS push $(($(cat "$work/rss-push") / 1024)) MiB, pull $(($(cat "$work/rss-pull") / 1024)) MiB"
	[ "${MEMORY_ONLY:-0}" = 1 ] && return

	local rpush rpull rnoop try=1
	# One more mlx pull into a fresh clone, kept if faster (name, pull and
	# try are run_set's).
	pull_again() {
		try=$((try + 1))
		git clone -q "$work/$name-a" "$work/$name-b$try"
		cd "$work/$name-b$try"
		local t0 t1 t
		settle
		t0=$(now); "$MLX" pull >/dev/null; t1=$(now)
		cd "$work"
		t=$(elapsed "$t0" "$t1")
		echo "#   mlx pull, try $try: $t s" >&2
		if faster "$t" "$pull"; then pull=$t; fi
	}
	best_rclone "$work/$name-plain" "$rpath"
	rpush=$best
	rpath=$rpath-4 # a full copy, made by the first try
	settle
	t0=$(now); rclone sync --transfers 16 --checkers 16 "$work/$name-plain" "$rpath" >/dev/null 2>&1; t1=$(now)
	rnoop=$(elapsed "$t0" "$t1")
	# rclone's pull is the best of its four --transfers settings, so mlx's
	# is the best of as many pulls into fresh clones, taken in turn with
	# them: on a shared machine the best of four beats one try by chance.
	best_rclone "$rpath" "$work/$name-rclone-dest" pull_again
	rpull=$best
	echo "rclone $name: copy to $rpush s, no-op sync $rnoop s, copy from $rpull s (best --transfers)"
	echo "mlx $name: pull $pull s (best of $try)"
	echo "ratios (rclone / mlx; above 1: mlx faster): push $(ratio "$rpush" "$push")," \
		"pull $(ratio "$rpull" "$pull"), no-op push $(ratio "$rnoop" "$noop_push"), no-op pull $(ratio "$rnoop" "$noop_pull")"
}

echo "# mlx $("$MLX" --version), $(rclone version | head -1), $(nproc) CPUs, remote: ${REMOTE:-a directory beside the data}," \
	"work dir $work ($(df --output=fstype "$work" | tail -1 | tr -d ' '))"
case " $PARTS " in *" small "*) run_set small "$N" ;; esac
if [[ " $PARTS " == *" big "* ]]; then
	mkdir -p "$work/big-data" && head -c $((2 << 30)) /dev/urandom >"$work/big-data/big.bin"
	cp "$work/big-data/big.bin" "$work/big-plain.bin"
	read -r url rpath <<<"$(remote_for big)"
	project "$work/big-a" "$work/big-data" "$url"
	cd "$work/big-a"
	t0=$(now); /usr/bin/time -f %M -o "$work/rss-big-push" "$MLX" push >/dev/null; t1=$(now)
	push=$(elapsed "$t0" "$t1")
	cd "$work" && git clone -q "$work/big-a" "$work/big-b" && cd "$work/big-b"
	t0=$(now); /usr/bin/time -f %M -o "$work/rss-big-pull" "$MLX" pull >/dev/null; t1=$(now)
	pull=$(elapsed "$t0" "$t1")
	cmp -s "$work/big-a/data/big.bin" "$work/big-b/data/big.bin" ||
		{ echo "bench/remote.sh: the pulled 2 GiB file differs" >&2; exit 1; }
	cd "$work"
	mkdir -p "$work/big-plain" && mv "$work/big-plain.bin" "$work/big-plain/big.bin"
	t0=$(now); rclone copy "$work/big-plain" "$rpath" >/dev/null 2>&1; t1=$(now); rpush=$(elapsed "$t0" "$t1")
	t0=$(now); rclone copy "$rpath" "$work/big-dest" >/dev/null 2>&1; t1=$(now); rpull=$(elapsed "$t0" "$t1")
	echo "2 GiB file: mlx push $push s, pull $pull s" \
		"(peak RSS push $(($(cat "$work/rss-big-push") / 1024)) MiB, pull $(($(cat "$work/rss-big-pull") / 1024)) MiB);" \
		"rclone copy to $rpush s, from $rpull s; ratios push $(ratio "$rpush" "$push"), pull $(ratio "$rpull" "$pull")"
fi
if [ "$N2" -gt 0 ]; then
	# Memory depends on the number of files, not their size: 4 KiB each.
	MEMORY_ONLY=1 MAX_KIB=4 run_set many "$N2"
fi
