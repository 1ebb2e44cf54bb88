#!/usr/bin/env bash
# What a pipeline run prints, as ninja does: on a terminal one live line
# redrawn in place; in CI (or not on a terminal) at most one plain line per
# step; with -q only errors.
. "$(dirname "$0")/tap.sh"

mlx init
{
	echo 'local p = require("mlx").pipeline "wide"'
	echo 'for i = 1, tonumber(os.getenv("STEPS") or 1000) do'
	echo '  p:step("s" .. i) { outs = { "out/" .. i .. ".txt" }, cmd = "echo " .. i .. " > out/" .. i .. ".txt" }'
	echo 'end'
	echo 'return p'
} >wide.lua
mkdir out

# A pseudo-terminal, as a user's shell has (script(1) from util-linux).
TERM=xterm COLUMNS=100 script -qefc "env -u CI -u NO_COLOR '$MLX' recipe wide.lua" tty.log >/dev/null 2>&1
is "$?" 0 "a 1,000-step first run on a terminal succeeds"
# script(1) frames the log with a "Script started/done" line of its own.
lines=$(grep -av '^Script \(started\|done\) on' tty.log | tr -cd '\n' | wc -c)
[ "$lines" -le 2 ]
is "$?" 0 "and prints one updating line and the summary, not a line per step ($lines lines)"
grep -aq "running: " tty.log && grep -aqE '\[[0-9]+/1000\]' tty.log
is "$?" 0 "the live line shows [done/total] and the running steps"
grep -aq "pipeline 'wide': 1000 ran" tty.log
is "$?" 0 "the summary says what happened"

# 200 steps tell as much here as 1,000.
CI=true STEPS=200 "$MLX" recipe wide.lua -f >ci.out 2>ci.err
is "$?" 0 "the same run under CI succeeds"
lines=$(cat ci.out ci.err | wc -l)
[ "$lines" -le 201 ]
is "$?" 0 "and prints at most one line per step and the summary ($lines lines)"
is "$(grep -c '^mlx: ran s' ci.err)" 200 "one plain 'ran' line per step"
if grep -q $'\r' ci.err; then tap_result 1 "no carriage return in plain output"; else tap_result 0 "no carriage return in plain output"; fi

rm -r out/1.txt out/2.txt
STEPS=200 "$MLX" recipe wide.lua -q >q.out 2>q.err
is "$(cat q.out q.err)" "" "-q prints nothing when all goes well"

# Long data work on a terminal: files, bytes and rate, then the line is
# cleared; in CI, nothing of it.
mkdir data
for i in $(seq 1 200); do head -c 2000000 /dev/urandom >"data/f$i"; done
TERM=xterm MLX_PROGRESS_AFTER=0 script -qefc "env -u CI -u NO_COLOR '$MLX' add -j1 data" add.log >/dev/null 2>&1
is "$?" 0 "mlx add of 400 MB on a terminal succeeds"
grep -aqE 'adding [0-9]+/200 files, [0-9.]+ MB of 400\.0 MB, [0-9.]+ [kMG]?B/s' add.log
is "$?" 0 "and shows files, bytes and rate while it works"
rm -r data/f1
TERM=xterm MLX_PROGRESS_AFTER=0 script -qefc "env -u CI -u NO_COLOR '$MLX' checkout -j1" co.log >/dev/null 2>&1
grep -aqE 'updated +data' co.log
is "$?" 0 "mlx checkout on a terminal restores as before"
CI=true MLX_PROGRESS_AFTER=0 "$MLX" hash -j1 data >hash.out 2>hash.err
is "$(cat hash.err)" "" "in CI, hashing prints no progress"

cat >fail.lua <<'LUA'
local p = require("mlx").pipeline "fails"
p:step "bad" { outs = { "x" }, cmd = "echo why it broke >&2; exit 3" }
return p
LUA
mlx recipe fail.lua -q
is "$RC" 1 "a failing step fails the run under -q"
like "$ERR" "step 'bad' failed \(exit status 3\)" "and -q still prints the failure"
like "$ERR" "why it broke" "with the step's own words"

done_testing
