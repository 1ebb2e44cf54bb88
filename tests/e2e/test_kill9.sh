#!/usr/bin/env bash
# kill -9 of mlx: its keeper ends every process of the running step within
# a second, and the next run's restored outputs stay as mlx.lock pins them.
# With the keeper killed too, the next run ends the group the dead step's
# run recorded. Also the keeper's own life: one per mlx, gone when mlx ends
# normally.
. "$(dirname "$0")/tap.sh"
: "${MLX_SOURCE_ROOT:?set MLX_SOURCE_ROOT to the source tree}"

mkdir proj
at_proj() { (cd proj && exec "$@"); }
at_proj "$MLX" init >/dev/null
# The step: a shell that starts a writer rewriting the out every 0.1 s (a
# trainer saving checkpoints), then "trains" for TRAIN_SECONDS.
cat >proj/train.sh <<'SH'
: >started
( while :; do echo "late write" >model.txt; sleep 0.1; done ) &
writer=$!
sleep "${TRAIN_SECONDS:-0}"
kill "$writer"
wait "$writer"
echo "model of $(cat in.txt)" >model.txt
SH
cat >proj/recipe.lua <<'LUA'
local p = require("mlx").pipeline "kill"
p:step "train" { deps = { "in.txt", "train.sh" }, outs = { "model.txt" }, cmd = "sh train.sh" }
return p
LUA
proj=$(cd proj && pwd -P)

# The live processes whose working directory is the project (steps run
# from its root; this script does not).
in_project() {
	local p
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/cwd" 2>/dev/null)" = "$proj" ] || continue
		case "$(awk '{print $3}' "$p/stat" 2>/dev/null)" in Z | X | "") continue ;; esac
		echo "${p#/proc/}"
	done
}

running() { # PID: prints it if that process exists and is not a zombie
	case "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" in Z | X | "") ;; *) echo "$1" ;; esac
}

echo a >proj/in.txt
at_proj "$MLX" recipe recipe.lua >/dev/null 2>err.txt
is "$?" 0 "a first run trains the model of a"

# A second input; mlx is killed while the step runs.
echo b >proj/in.txt
rm -f proj/started
(cd proj && TRAIN_SECONDS=60 exec "$MLX" recipe recipe.lua >/dev/null 2>&1) &
MLX_PID=$!
for _ in $(seq 200); do [ -e proj/started ] && break; sleep 0.05; done
sleep 0.3 # the writer is at work
keeper=$(ps -o pid=,comm= --ppid "$MLX_PID" | awk '$2 == "mlx-keeper" { print $1 }')
like "$keeper" '^[0-9]+$' "mlx started a keeper process"
tree=$(in_project | grep -vx "$MLX_PID" | wc -l)
is "$([ "$tree" -ge 3 ] && echo yes)" yes "the step runs a tree of processes ($tree)"
kill -9 "$MLX_PID"
wait "$MLX_PID" 2>/dev/null
t0=$EPOCHREALTIME
left=x
while [ -n "$left" ] && awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { exit !(b - a < 1) }'; do
	left=$(in_project)
	[ -n "$left" ] && sleep 0.02
done
is "$(echo $left)" "" "within 1 s of kill -9 no process of the step is left"
[ -n "$left" ] && kill -9 $left
is "$(running "$keeper")" "" "and the keeper has exited"

echo a >proj/in.txt
at_proj "$MLX" recipe recipe.lua >/dev/null 2>err.txt
is "$?" 0 "the next run exits 0 (the model of a comes from the run-cache)"
sleep 10
hash=$(sha256sum proj/model.txt | cut -d' ' -f1)
is "$(cat proj/model.txt)" "model of a" "10 s later model.txt still holds the model of a"
grep -q "\"$hash\"" proj/mlx.lock
is "$?" 0 "which is what mlx.lock pins"

# mlx and its keeper killed at once (pkill -9 mlx would match both): the
# tree lives on until the next mlx finds the run dead and kills the group
# it recorded, before it restores anything.
echo b >proj/in.txt
rm -f proj/started
(cd proj && TRAIN_SECONDS=60 exec "$MLX" recipe recipe.lua >/dev/null 2>&1) &
MLX_PID=$!
for _ in $(seq 200); do [ -e proj/started ] && break; sleep 0.05; done
sleep 2 # the step's group is recorded 0.05 s after its start, written with the next batch of writes: within ~1.35 s
keeper=$(ps -o pid=,comm= --ppid "$MLX_PID" | awk '$2 == "mlx-keeper" { print $1 }')
kill -9 "$keeper" # first: killed second, it could act on mlx's end in between
kill -9 "$MLX_PID"
wait "$MLX_PID" 2>/dev/null
sleep 0.5
left=$(in_project)
is "$([ -n "$left" ] && echo yes)" yes "with the keeper killed too, the step's tree is still running"
echo a >proj/in.txt
at_proj "$MLX" recipe recipe.lua >/dev/null 2>err.txt
is "$?" 0 "the next run exits 0"
is "$(echo $(in_project))" "" "and has killed the tree of the dead run"
sleep 2
is "$(cat proj/model.txt)" "model of a" "2 s later model.txt still holds the model of a"
at_proj "$MLX" runs --filter "message like '%process group%'" --csv >out.txt 2>&1
like "$(cat out.txt)" "train.*KILLED" "the step's run, marked KILLED, says its group was killed"
[ -n "$left" ] && kill -9 $left 2>/dev/null

# A normal end: the keeper goes with mlx, reaped (no zombie left).
cat >proj/spawn.lua <<'LUA'
local proc = require "mlx.proc"
assert(proc.run{ "true" })
io.open("spawned", "w"):close()
proc.run{ "sleep", "0.5" }
LUA
(cd proj && exec "$MLX" lua spawn.lua) &
MLX_PID=$!
for _ in $(seq 200); do [ -e proj/spawned ] && break; sleep 0.05; done
keeper=$(ps -o pid=,comm= --ppid "$MLX_PID" | awk '$2 == "mlx-keeper" { print $1 }')
is "$(echo "$keeper" | wc -w)" 1 "one keeper for several commands"
wait "$MLX_PID"
is "$?" 0 "mlx ends normally"
is "$(ps -o pid= -p "${keeper:-0}" 2>/dev/null | tr -d ' ')" "" "its keeper is gone with it, reaped"

# Random moments, as bench/kill_loop.sh does 50 times.
out=$(KILLS=5 bash "$MLX_SOURCE_ROOT/bench/kill_loop.sh" "$MLX" 2>&1)
is "$?" 0 "5 kills at random moments: nothing left, nothing overwritten"
like "$out" "^kills: 5 .*survivors: 0; mismatches: 0; failed next runs: 0" "the loop's summary says so"
[ "$TAP_FAILED" -gt 0 ] && printf '%s\n' "$out" | sed 's/^/# /'

done_testing
