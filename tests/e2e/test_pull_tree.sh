#!/usr/bin/env bash
# A pull into a fresh clone leaves the stat-cache tree of each directory it
# restores, as mlx add or a status walk would: the next status or no-op pull
# compares the directory with that tree instead of walking it into a list,
# and still sees every change made after the pull.
. "$(dirname "$0")/tap.sh"

mkdir -p a && cd a || exit 1
git init -q .
git config user.email test@example.com
git config user.name test
"$MLX" init >/dev/null
mkdir -p data/sub/deep
for i in $(seq 1 40); do printf 'sample %02d\n' "$i" >"data/s$i.txt"; done
for i in $(seq 1 20); do printf 'sub %02d\n' "$i" >"data/sub/t$i.txt"; done
printf 'deep\n' >data/sub/deep/x.txt
sleep 0.3
mlx add data
is "$RC" 0 "mlx add data"
mlx remote add origin "$TEST_DIR/remote"
mlx push
is "$RC" 0 "push to a directory remote"
locked=$("$MLX" lua -e "print(require('mlx.json').load('mlx.lock').artifacts.data.hash)")
git add -A && git commit -qm data
cd "$TEST_DIR" && git clone -q a b && cd b || exit 1

mlx pull
is "$RC" 0 "pull into a fresh clone"
is "$(ls .mlx/state.db-trees 2>/dev/null | wc -l)" 1 "the pull wrote the restored directory's stat-cache tree"
trees=(.mlx/state.db-trees/*)
# The tree names its prefix and the locked manifest id (statcache_tree.c).
is "$(head -c 16 "${trees[0]}" | tail -c 4)" "data" "for the directory data"
is "$(od -An -tx1 -j16 -N32 "${trees[0]}" | tr -d ' \n')" "$locked" "with the locked manifest's id"

sleep 0.3
if command -v strace >/dev/null; then
	strace -f -e trace=open,openat -o trace.txt "$MLX" status --check >/dev/null 2>&1
	is "$?" 0 "the first status after the pull finds the directory up to date"
	like "$(cat trace.txt)" 'state\.db-trees/[0-9a-f]{64}", O_RDONLY\|O_CLOEXEC\) = [0-9]' \
		"and compares it with the tree the pull wrote"
	strace -f -e trace=open,openat -o trace.txt "$MLX" pull >/dev/null 2>&1
	is "$?" 0 "a no-op pull"
	is "$(grep -c 'state.db"' trace.txt)" "0" "opens no stat-cache row: its tree answers"
	is "$(grep -v O_DIRECTORY trace.txt | grep -c '/data/')" "0" "and reads no tracked file"
else
	for t in "the first status after the pull finds the directory up to date" \
		"and compares it with the tree the pull wrote" "a no-op pull" \
		"opens no stat-cache row: its tree answers" "and reads no tracked file"; do
		skip "$t" "strace is not installed"
	done
fi

# Exact all the same: every kind of change after the pull is seen, a
# same-size rewrite included.
printf 'sample XX\n' >data/s7.txt
rm data/sub/t3.txt
printf 'new\n' >data/sub/deep/new.txt
mlx status
is "$RC" 0 "status after changes exits 0"
like "$OUT" 'modified: +data/s7\.txt' "a same-size rewrite after the pull is seen"
like "$OUT" 'deleted: +data/sub/t3\.txt' "a file deleted after the pull is seen"
like "$OUT" 'added: +data/sub/deep/new\.txt' "a file added after the pull is seen"
mlx status --check
is "$RC" 1 "status --check fails on them"

# Restored by a checkout of only what differs, the directory is found up to
# date again, and a later look answers from the tree alone.
mlx checkout --force
is "$RC" 0 "checkout --force restores the locked files"
is "$(cat data/s7.txt)" "sample 07" "with their locked bytes"
is "$(test -e data/sub/deep/new.txt && echo there || echo gone)" "gone" "and without the added file"
sleep 0.3
mlx status --check
is "$RC" 0 "the directory is up to date after the checkout"
if command -v strace >/dev/null; then
	strace -f -e trace=open,openat -o trace.txt "$MLX" status --check >/dev/null 2>&1
	is "$?" 0 "a later status"
	is "$(grep -c 'state.db"' trace.txt)" "0" "opens no stat-cache row either"
else
	skip "a later status" "strace is not installed"
	skip "opens no stat-cache row either" "strace is not installed"
fi
touch data/s1.txt
mlx status --check
is "$RC" 0 "a touched file is no change"
printf 'sample 01 changed\n' >data/s1.txt
mlx status --check
is "$RC" 1 "a file rewritten after the tree took its touch is seen"

done_testing
