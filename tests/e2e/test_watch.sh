#!/usr/bin/env bash
# The file-system watcher (mlx watch): with a watcher running, mlx status
# and mlx add DIR stat only what changed, and every answer is exactly the
# one a full walk gives — for every kind of change and for a change made
# just before the question. test_watch_fallback.sh: when it cannot vouch.
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/watch.sh"

"$MLX" init >/dev/null
mkdir -p data/a/deep data/b data/c
for i in $(seq 1 60); do printf 'file %03d\n' "$i" >"data/a/f$i"; done
for i in $(seq 1 60); do printf 'other %03d\n' "$i" >"data/b/g$i"; done
for i in $(seq 1 60); do printf 'c %03d\n' "$i" >"data/c/h$i"; done
printf 'deep\n' >data/a/deep/x.txt
printf 'top\n' >data/top.txt
# Entries of files changed less than 100 ms before they were hashed are
# racy (re-hashed); let them age, as real data has.
sleep 0.3
mlx add data
is "$RC" 0 "add of the directory"
sleep 0.3
"$MLX" status >/dev/null 2>&1

mlx watch status
is "$RC:$OUT" "1:no watcher runs for $TEST_DIR" "watch status without a watcher exits 1"
grep -qx '/watch\*' .mlx/.gitignore
is "$?" 0 "mlx init lists the watcher's files in .mlx/.gitignore"
sed -i '/^\/watch\*$/d' .mlx/.gitignore # as a project made before the watcher
start_watcher
grep -qx '/watch\*' .mlx/.gitignore
is "$?" 0 "mlx watch start adds them to an older .mlx/.gitignore"
like "$OUT" "^watching $TEST_DIR \(pid [0-9]+\); log: .mlx/logs/watch.log$" "and says what it watches"
[ -S .mlx/watch.sock ]
is "$?" 0 "the watcher listens on .mlx/watch.sock"
like "$(cat .mlx/logs/watch.log)" "started: pid [0-9]+, instance [0-9a-f]{16}, 6 directories watched" \
	"its log names the directories it watches (not .git/ or .mlx/)"
mlx watch start
like "$RC:$OUT" "^0:a watcher already runs for $TEST_DIR \(pid [0-9]+\)$" "a second start says one runs, exit 0"

# The first look walks (no token yet) and leaves the tree's token.
mlx status -v
is "$RC:$OUT" "0:" "status with the watcher: nothing changed"
ls .mlx/state.db-trees/*.watch >/dev/null 2>&1
is "$?" 0 "the tree's token is kept beside it"

# Each change is looked at with the watcher, then without its token (a
# full walk), and both must print the same: exactness first.
check() { # DESCRIPTION EXPECTED-REGEX
	local before after
	before=$(everything)
	mlx status -v
	local watched="$RC:$OUT:$ERR"
	after=$(everything)
	is "$after" "$before" "$1: the watcher answered with paths"
	like "$(flat "$watched")" "$2" "$1: status sees it"
	rm -f .mlx/state.db-trees/*.watch
	mlx status -v
	is "$RC:$OUT:$ERR" "$watched" "$1: the same as a full walk"
	reset
}

printf 'file 999\n' >data/a/f1
check "a change of the same size" "modified: +data/a/f1"
printf 'more\n' >>data/a/f2
check "an append" "modified: +data/a/f2"
printf 'new\n' >data/b/new.txt
check "a new file" "added: +data/b/new.txt"
rm data/c/h3
check "a deleted file" "deleted: +data/c/h3"
mv data/c/h4 data/c/h4.renamed
check "a rename" "added: +data/c/h4.renamed.*deleted: +data/c/h4"
mkdir -p data/n/m
printf 'n1\n' >data/n/one
printf 'm2\n' >data/n/m/two
check "a new directory with files" "added: +data/n/m/two.*added: +data/n/one"
chmod +x data/a/f5
check "a chmod" "modified: +data/a/f5"
mv data/b data/b2
check "a directory renamed" "added: +data/b2/g1.*deleted: +data/b/g1"
rm -rf data/c
printf 'now a file\n' >data/c
check "a directory replaced by a file" "added: +data/c .*deleted: +data/c/h1"
rm data/top.txt
mkdir data/top.txt
printf 'below\n' >data/top.txt/inner
check "a file replaced by a directory" "added: +data/top.txt/inner.*deleted: +data/top.txt:"
mlx status -v
is "$RC:$OUT" "0:" "after add, nothing differs"

# mlx add DIR with the watcher: only the changed file is read, and the
# lock is what a full hash gives.
sleep 0.2
printf 'changed for add\n' >data/a/f7
mlx add data
is "$RC" 0 "add after one change"
lock_hash=$("$MLX" lua -e "print(require('mlx.json').load('mlx.lock').artifacts.data.hash)")
full_hash=$("$MLX" hash data | cut -d' ' -f1)
is "$lock_hash" "$full_hash" "the lock holds the directory's id as a full hash gives it"
mlx status -v
is "$RC:$OUT" "0:" "and status after it finds nothing"

# A file replaced by a symlink: refused, as by the full walk.
rm data/a/f8
ln -s ../b2/g1 data/a/f8
check "a file replaced by a symlink" "data/a/f8: is a symbolic link"
rm data/a/f8
printf 'file 008\n' >data/a/f8
reset

# Only what changed is stat'ed (the full walk stats every file).
if command -v strace >/dev/null; then
	printf 'x\n' >>data/a/f20
	"$MLX" status >/dev/null 2>&1
	strace -f -e trace=newfstatat,statx -o trace.txt "$MLX" status >/dev/null 2>&1
	watched=$(grep -c 'stat' trace.txt)
	rm -f .mlx/state.db-trees/*.watch
	strace -f -e trace=newfstatat,statx -o trace.txt "$MLX" status >/dev/null 2>&1
	walked=$(grep -c 'stat' trace.txt)
	rm -f trace.txt
	files=$(find data -type f | wc -l)
	[ "$((walked - watched))" -ge "$files" ]
	is "$?" 0 "a status after one change stats a few paths, the full walk each of $files files ($watched, $walked stats)"
	reset
else
	skip "a status after one change stats a few paths" "strace is not installed"
fi

# A change made immediately before status is always in its answer (the
# cookie), whether it makes the file differ from the lock or not.
fails=0
for i in $(seq 1 30); do
	if [ $((i % 2)) -eq 1 ]; then
		printf 'loop %d\n' "$i" >data/a/f10
		out=$("$MLX" status -v 2>/dev/null)
		case "$out" in *"modified:"*"data/a/f10"*) ;; *) fails=$((fails + 1)) ;; esac
	else
		printf 'file 010\n' >data/a/f10
		out=$("$MLX" status -v 2>/dev/null)
		[ -z "$out" ] || fails=$((fails + 1))
	fi
done
is "$fails" 0 "30 changes each followed at once by status: each seen exactly"

mlx watch stop
is "$RC" 0 "stopped at the end"

# Without a watcher, a status pays one failed connect for it, nothing more.
if command -v strace >/dev/null; then
	strace -f -e trace=connect -o trace.txt "$MLX" status >/dev/null 2>&1
	is "$(grep -c 'watch.sock' trace.txt)" 1 "without a watcher, a no-op status tries one connect"
	like "$(grep 'watch.sock' trace.txt)" "= -1 ENOENT" "which fails at once"
	rm -f trace.txt
else
	skip "without a watcher, a no-op status tries one connect" "strace is not installed"
	skip "which fails at once" "strace is not installed"
fi
done_testing
