#!/usr/bin/env bash
# kill -9 of a pull into a fresh clone, at random points: nothing it leaves
# is taken as good later. Every file at its final name is whole and right
# (the workspace copies are published by rename), the store holds only
# whole objects that hash to their names (mlx fsck), and the next pull
# completes the workspace byte for byte, with no temp file left in it.
. "$(dirname "$0")/tap.sh"

mkdir -p a && cd a || exit 1
git init -q .
git config user.email test@example.com
git config user.name test
"$MLX" init >/dev/null
mkdir -p data/many
for d in 0 1 2 3 4 5; do
	mkdir -p "data/many/d$d"
	for i in $(seq 1 100); do head -c $((4096 + (i * 331 + d * 977) % 16384)) /dev/urandom >"data/many/d$d/f$i"; done
done
"$MLX" add data >/dev/null
mlx remote add origin "$TEST_DIR/remote"
mlx push
is "$RC" 0 "push 600 files to a directory remote"
git add -A && git commit -qm data
(cd data && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$TEST_DIR/want.txt"
cd "$TEST_DIR" && git clone -q a b && cd b || exit 1

# Whole and right: each file found under data/ has A's bytes.
check_whole() {
	local n bad
	n=$(cd data 2>/dev/null && find . -type f ! -name '.*' | wc -l)
	bad=$(cd data 2>/dev/null && find . -type f ! -name '.*' -print0 | sort -z | xargs -0 -r sha256sum |
		grep -v -x -F -f "$TEST_DIR/want.txt" | wc -l)
	echo "${n:-0} ${bad:-0}"
}

for round in 1 2 3 4; do
	"$MLX" pull -j 4 >/dev/null 2>&1 &
	pid=$!
	# From the fetch's first objects to the checkout's last files.
	sleep "0.$((RANDOM % 6))$((RANDOM % 10))"
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	read -r n bad <<<"$(check_whole)"
	is "$bad" 0 "round $round: the $n files at their names after kill -9 are whole and right"
	# Objects not fetched yet are missing (exit 1); none may be corrupt.
	mlx fsck
	like "$OUT" "checked [0-9]+ objects?: 0 corrupt" "round $round: the store holds only whole objects (mlx fsck)"
done

mlx pull
is "$RC" 0 "the pull re-run completes"
[ "$RC" = 0 ] || echo "# $ERR" | head -5
(cd data && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$TEST_DIR/got.txt"
if cmp -s "$TEST_DIR/want.txt" "$TEST_DIR/got.txt"; then ok=1; else ok=0; fi
is "$ok" 1 "the workspace is A's, byte for byte, and holds nothing else"
mlx status
is "$RC" 0 "status after the re-run exits 0"
is "$(printf '%s\n%s\n' "$OUT" "$ERR" | grep -cE 'modified|missing|untracked')" 0 "and reports nothing changed"
mlx pull
like "$OUT" "^(nothing to fetch|fetched 0)|up to date|already" "a third pull has nothing to do"

done_testing
