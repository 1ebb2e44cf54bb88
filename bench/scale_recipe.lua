-- The pipeline of bench/scale.sh: N steps (env N) in a chain (SHAPE=chain,
-- each step reads the one before) or a fan-out (SHAPE=fan, all read
-- input.txt). Each step is a Lua function, so a run measures mlx rather
-- than process start-up: it writes the first 64 bytes of its dep and its
-- name, as the Makefile's `head -c 64 DEP > OUT; echo NAME >> OUT` does.
local p = require("mlx").pipeline "scale"
local n = assert(tonumber(os.getenv("N")), "set N to the number of steps")
local fan = os.getenv("SHAPE") == "fan"
local function run(ctx)
  local f = assert(io.open(ctx.root .. "/" .. ctx.deps[1], "rb"))
  local head = f:read(64) or ""
  f:close()
  f = assert(io.open(ctx.root .. "/" .. ctx.outs[1], "wb"))
  f:write(head, ctx.name, "\n")
  f:close()
end
for i = 1, n do
  local dep = (i > 1 and not fan) and ("out/" .. (i - 1)) or "input.txt"
  p:step("s" .. i) { deps = { dep }, outs = { "out/" .. i }, run = run }
end
return p
