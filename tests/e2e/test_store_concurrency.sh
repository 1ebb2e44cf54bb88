#!/usr/bin/env bash
# Many mlx processes adding to one store at once: each one's temp directory
# must be safe from the others' clean-up of stale ones (docs/design.md §3).
. "$(dirname "$0")/tap.sh"

# ---- 8 concurrent mlx add, 15 rounds ----------------------------------------
"$MLX" init >/dev/null
fails=0
errors=$TEST_DIR/errors
: >"$errors"
for round in $(seq 1 15); do
	pids=()
	for j in $(seq 1 8); do
		mkdir -p "d$round-$j"
		for k in 1 2 3; do head -c $((200 + k * j)) /dev/urandom >"d$round-$j/f$k"; done
		"$MLX" add "d$round-$j" >/dev/null 2>"$TEST_DIR/err-$j" &
		pids+=($!)
	done
	for j in $(seq 1 8); do
		if ! wait "${pids[$((j - 1))]}"; then
			fails=$((fails + 1))
			cat "$TEST_DIR/err-$j" >>"$errors"
		fi
	done
done
is "$fails" 0 "8 concurrent adds x 15 rounds: none fails"
[ -s "$errors" ] && sed 's/^/#   /' "$errors" | sort | uniq -c | head -5
is "$(find .mlx/tmp -maxdepth 1 -name 'put-*' | wc -l)" 0 "and no temp directory is left behind"
"$MLX" status --check >/dev/null 2>&1
is "$?" 0 "the lock pins all 120 directories as they are"

# ---- a temp directory not yet locked survives another process's clean-up ----
# slow_mkdtemp.so stops the first add for 3 s right after it made its temp
# directory; a second add cleans up stale ones meanwhile.
mkdir late early
echo late >late/f
echo early >early/f
LD_PRELOAD=$MLX_SLOW_MKDTEMP MLX_TEST_MKDTEMP_DELAY_MS=3000 "$MLX" add late >/dev/null 2>"$TEST_DIR/err-late" &
slow=$!
for _ in $(seq 1 600); do
	ls .mlx/tmp | grep -Eq "^(put|new)-$slow-" && break
	sleep 0.1
done
"$MLX" add early >/dev/null 2>&1
is "$?" 0 "an add while another's temp directory is being made succeeds"
wait "$slow"
is "$?" 0 "and the other add succeeds too"
is "$(cat "$TEST_DIR/err-late")" "" "with nothing on stderr"

# ---- a dead process's temp directory is removed, a live one's is not --------
# A batch directory whose owner died (its lock free) goes; so does one left
# half-made (new-) by a dead pid; a live owner's half-made one stays.
sleep 1000 &
live=$!
dead=$(bash -c 'echo $$')
mkdir -p ".mlx/tmp/put-$dead-AAAAAA/00" ".mlx/tmp/new-$dead-BBBBBB" ".mlx/tmp/new-$live-CCCCCC"
touch ".mlx/tmp/put-$dead-AAAAAA/.lock" ".mlx/tmp/put-$dead-AAAAAA/00/1"
echo x >extra && "$MLX" add extra >/dev/null 2>&1
is "$?" 0 "an add beside stale temp directories succeeds"
is "$(ls .mlx/tmp | grep -E '^(put|new)-' | tr '\n' ' ')" "new-$live-CCCCCC " \
	"it removes the dead processes' directories, not the live one's"
kill "$live"
wait "$live" 2>/dev/null

done_testing
