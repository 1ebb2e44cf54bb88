#!/usr/bin/env bash
# kill -9 of mlx at random moments while a step runs a process tree, and
# what is left afterwards. The step is a shell that starts a writer (a
# subshell rewriting the step's out every 0.1 s, as a training process
# saving checkpoints would) and then "trains" for a minute. Each round:
#   1. mlx recipe with a changed input, killed with SIGKILL after a random
#      0-1.5 s (before, while or after it starts the step);
#   2. within 1 s no process of the tree may be left (any process whose
#      working directory is the project: steps run from its root);
#   3. the input is put back and mlx recipe restores the out from the
#      run-cache (exit 0); SETTLE seconds later (default 1, ten times the
#      writer's period) the out must still hold the bytes mlx.lock pins.
# Rounds killed before the step started are counted too: mlx may be
# writing the lock, the store or the database then. Prints one line per round and a summary; exits 1 on any survivor or
# mismatch.
#
# usage: bench/kill_loop.sh [path/to/mlx]
#   KILLS=N     rounds (default 50)
#   SETTLE=S    seconds to watch the restored out (default 1)
set -uo pipefail
MLX=$(realpath "${1:-build/mlx}")
KILLS=${KILLS:-50}
SETTLE=${SETTLE:-1}
work=$(mktemp -d "${TMPDIR:-/tmp}/mlx-kill-loop-XXXXXX")
trap 'rm -rf "$work"' EXIT
proj="$work/proj"
mkdir -p "$proj"
# This script stays outside the project, so that it is not counted.
cd "$work" || exit 2
at_proj() { (cd "$proj" && exec "$@"); }
at_proj "$MLX" init >/dev/null || exit 2
cat >"$proj/train.sh" <<'SH'
# The writer stands for a trainer that saves model.txt as it goes.
: >started
( while :; do echo "late write" >model.txt; sleep 0.1; done ) &
writer=$!
sleep "${TRAIN_SECONDS:-0}"
kill "$writer"
wait "$writer"
echo "model of $(cat in.txt)" >model.txt
SH
cat >"$proj/recipe.lua" <<'LUA'
local p = require("mlx").pipeline "kill"
p:step "train" { deps = { "in.txt", "train.sh" }, outs = { "model.txt" }, cmd = "sh train.sh" }
return p
LUA

# The processes whose working directory is the project, zombies aside.
in_project() {
	local p
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/cwd" 2>/dev/null)" = "$proj" ] || continue
		case "$(awk '{print $3}' "$p/stat" 2>/dev/null)" in Z | X | "") continue ;; esac
		echo "${p#/proc/}"
	done
}

# The out matches what mlx.lock pins for it.
matches_lock() {
	local hash
	hash=$(sha256sum "$proj/model.txt" 2>/dev/null | cut -d' ' -f1)
	[ -n "$hash" ] && grep -q "\"$hash\"" "$proj/mlx.lock" && [ "$(cat "$proj/model.txt")" = "model of a" ]
}

echo a >"$proj/in.txt"
if ! at_proj "$MLX" recipe recipe.lua >/dev/null 2>"$work/err"; then
	echo "kill_loop: the first run failed: $(cat "$work/err")" >&2
	exit 2
fi
survivors=0 mismatches=0 failures=0 during=0
for round in $(seq 1 "$KILLS"); do
	echo b >"$proj/in.txt"
	delay=$(awk -v r="$RANDOM" 'BEGIN { printf "%.3f", r / 32768 * 1.5 }')
	rm -f "$proj/started"
	t0=$EPOCHREALTIME
	(cd "$proj" && TRAIN_SECONDS=60 exec "$MLX" recipe recipe.lua >/dev/null 2>&1) &
	pid=$!
	sleep "$delay"
	kill -9 "$pid"
	delay=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
	wait "$pid" 2>/dev/null
	step="not started"
	[ -e "$proj/started" ] && step=running && during=$((during + 1))
	left=""
	for _ in $(seq 20); do
		left=$(in_project)
		[ -z "$left" ] && break
		sleep 0.05
	done
	[ -n "$left" ] && survivors=$((survivors + 1))
	echo a >"$proj/in.txt"
	ok=yes
	if ! at_proj "$MLX" recipe recipe.lua >/dev/null 2>"$work/err"; then
		failures=$((failures + 1))
		ok="no: the next run failed: $(head -n 1 "$work/err")"
	else
		sleep "$SETTLE"
		if ! matches_lock; then
			mismatches=$((mismatches + 1))
			ok="no: model.txt holds '$(head -c 40 "$proj/model.txt")'"
		fi
	fi
	printf 'round %2d: killed after %s s, step %s; left after 1 s: %s; next run matches mlx.lock: %s\n' \
		"$round" "$delay" "$step" "$(echo ${left:-none})" "$ok"
	# A survivor would spoil the next rounds: end it.
	[ -n "$left" ] && kill -9 $left 2>/dev/null
done
echo "kills: $KILLS (step running at $during of them); survivors: $survivors; mismatches: $mismatches; failed next runs: $failures"
[ "$survivors" -eq 0 ] && [ "$mismatches" -eq 0 ] && [ "$failures" -eq 0 ]
