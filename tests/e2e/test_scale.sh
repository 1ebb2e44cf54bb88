#!/usr/bin/env bash
# A large pipeline's no-op is exact: after one change in the middle of the
# graph, exactly the steps downstream of it run, no more and no fewer, and
# the plan (-n) names the same steps first.
#
# The graph is a binary tree of Lua-function steps: step i reads its own
# input in/i and the out of step i/2 (rounded down), so each step has a
# subtree of descendants of its own, chains of depth log2(N) and fan-out at
# every level. The suite runs SCALE_STEPS=2000 (~20 s on a quiet machine,
# most of it the first run); bench/scale.sh times 100,000-step graphs, and
# SCALE_STEPS=100000 runs this test at that size (the first run then takes
# minutes).
. "$(dirname "$0")/tap.sh"

N=${SCALE_STEPS:-2000}
# The step whose input is changed: halfway down the tree (depth log2(N)/2),
# so that it has upstream steps and a subtree of its own below it.
K=$(awk -v n="$N" 'BEGIN { d = 0; while (2 ^ (d + 1) <= n) d++; print 2 ^ int(d / 2) + 1 }')

mkdir -p in out
awk -v n="$N" 'BEGIN { for (i = 1; i <= n; i++) { f = "in/" i; print i > f; close(f) } }'
cat >recipe.lua <<'LUA'
local p = require("mlx").pipeline "tree"
local n = assert(tonumber(os.getenv("SCALE_N")))
local function read(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  return text
end
local function run(ctx)
  local text = read(ctx.root .. "/" .. ctx.deps[1])
  if ctx.deps[2] then text = text .. read(ctx.root .. "/" .. ctx.deps[2]):sub(1, 200) end
  local f = assert(io.open(ctx.root .. "/" .. ctx.outs[1], "wb"))
  f:write(text)
  f:close()
  -- What ran, outside the step's declared outs: the test's witness.
  f = assert(io.open(ctx.root .. "/ran.log", "ab"))
  f:write(ctx.name, "\n")
  f:close()
end
for i = 1, n do
  local deps = { "in/" .. i }
  if i > 1 then deps[2] = "out/" .. (i // 2) end
  p:step("s" .. i) { deps = deps, outs = { "out/" .. i }, run = run }
end
return p
LUA
export SCALE_N=$N
"$MLX" init >/dev/null

mlx recipe recipe.lua -q
is "$RC" 0 "the first run of $N steps succeeds"
is "$(wc -l <ran.log)" "$N" "and runs every step once"

: >ran.log
mlx recipe recipe.lua
is "$RC" 0 "the no-op succeeds"
is "$(wc -c <ran.log)" "0" "and runs no step"
like "$ERR" "$N up to date" "and says all $N are up to date"

# The steps below K in the tree: K, 2K, 2K+1, 4K … 4K+3, …
awk -v n="$N" -v k="$K" 'BEGIN {
	for (i = 1; i <= n; i++) { j = i; while (j > k) j = int(j / 2); if (j == k) print "s" i }
}' | sort >expected
want=$(wc -l <expected)
[ "$want" -gt 2 ] || { echo "Bail out! s$K has no subtree in $N steps"; exit 1; }

echo changed >>"in/$K"
mlx recipe recipe.lua -n
is "$RC" 0 "the plan after changing in/$K succeeds"
printf '%s\n' "$OUT" | sed -n 's/^would run \([^:]*\):.*/\1/p' | sort >planned
is "$(comm -3 planned expected | head -5)" "" "the plan names exactly the $want steps downstream of s$K"
is "$(wc -c <ran.log)" "0" "and runs nothing"

mlx recipe recipe.lua -q
is "$RC" 0 "the run after the change succeeds"
sort ran.log >ran
is "$(comm -3 ran expected | head -5)" "" "exactly the $want steps downstream of s$K ran"
is "$(sort ran | uniq -d | head -1)" "" "each of them once"

: >ran.log
mlx recipe recipe.lua
is "$(wc -c <ran.log)" "0" "the next no-op runs nothing again"
like "$ERR" "$N up to date" "and all $N are up to date"

done_testing
