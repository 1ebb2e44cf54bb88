#!/usr/bin/env bash
# No child of mlx outlives it: interrupted (SIGINT, SIGTERM, twice), ending
# normally, by os.exit or by an error, mlx stops every process it started,
# grandchildren included.
. "$(dirname "$0")/tap.sh"
: "${MLX_TEST_HELPERS:?set MLX_TEST_HELPERS to the helper programs}"
H=$MLX_TEST_HELPERS

# A script that starts two groups of children (one ignoring SIGTERM), writes
# every pid to pids.txt, touches ready, then does $1 (Lua code).
script() {
	cat >children.lua <<LUA
local proc = require "mlx.proc"
local pids = {}
local a = assert(proc.spawn{ "$H/ignore_term", "2", grace = tonumber(os.getenv("GRACE") or "0.3"),
  stdout = function(pid) pids[#pids + 1] = pid end })
local b = assert(proc.spawn{ shell = "sleep 60 & sleep 60 & echo \$!; echo \$\$; wait",
  stdout = function(pid) pids[#pids + 1] = pid end })
while #pids < 5 do proc.wait_any({ a, b }, 0.05) end
local f = assert(io.open("pids.txt", "w"))
f:write(table.concat(pids, "\n"), "\n")
f:close()
io.open("ready", "w"):close()
$1
LUA
}

# Starts mlx on children.lua in the background; waits until it is ready.
start() {
	rm -f ready pids.txt
	"$MLX" lua children.lua >out.txt 2>err.txt &
	MLX_PID=$!
	for _ in $(seq 100); do [ -e ready ] && return; sleep 0.05; done
	echo "# mlx did not get ready: $(cat err.txt)"
}

alive_children() { # prints the pids of pids.txt still running
	[ "$(wc -l <pids.txt 2>/dev/null)" = 5 ] || { echo "pids.txt does not hold 5 pids"; return; }
	while read -r pid; do
		stat=$(ps -o stat= -p "$pid" 2>/dev/null)
		[ -n "$stat" ] && [ "${stat#Z}" = "$stat" ] && echo "$pid"
	done <pids.txt
}

script 'proc.run{ "sleep", "60" }'
start
is "$(wc -l <pids.txt)" 5 "the script started 5 processes"
kill -INT "$MLX_PID"
wait "$MLX_PID"
is "$?" 130 "SIGINT: mlx exits 130"
is "$(cat err.txt)" "mlx: interrupted" "and says so"
is "$(alive_children)" "" "no child or grandchild is left"

start
kill -TERM "$MLX_PID"
wait "$MLX_PID"
is "$?" 130 "SIGTERM: mlx exits 130"
is "$(alive_children)" "" "no child or grandchild is left"

# With a long grace period a second Ctrl-C cuts it short: SIGKILL at once.
export GRACE=60
start
SECONDS=0
kill -INT "$MLX_PID"
sleep 0.3
kill -INT "$MLX_PID"
wait "$MLX_PID"
rc=$?
is "$rc" 130 "a second SIGINT ends mlx at once (killed by SIGINT)"
is "$(alive_children)" "" "and no child is left"
[ "$SECONDS" -lt 10 ]
is "$?" 0 "without waiting for the grace period"
unset GRACE

script 'print("the end")'
start
wait "$MLX_PID"
is "$?" 0 "a script ending with children running exits 0"
is "$(cat out.txt)" "the end" "after its output"
is "$(alive_children)" "" "and stops them"

script 'os.exit(3)'
start
wait "$MLX_PID"
is "$?" 3 "os.exit(3) exits 3"
is "$(alive_children)" "" "and stops the children"

script 'error("boom")'
start
wait "$MLX_PID"
is "$?" 1 "an error exits 1"
like "$(cat err.txt)" "children.lua:[0-9]+: boom" "naming the line"
is "$(alive_children)" "" "and stops the children"

# What the script wrote comes out before what its children write.
cat >order.lua <<'LUA'
local proc = require "mlx.proc"
io.write("before\n")
assert(proc.run{ "echo", "child" })
print("after")
LUA
mlx lua order.lua
is "$OUT" "before
child
after" "output of mlx and of its children keeps its order"

done_testing
