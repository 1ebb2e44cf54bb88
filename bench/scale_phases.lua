-- The phases of one `mlx recipe` of bench/scale_recipe.lua, timed with
-- os.clock in one process, with the Lua heap and RSS after declaring and
-- at the end (docs/design.md, §4, where a large no-op spends its time):
--
--   cd PROJECT && SHAPE=chain N=100000 mlx lua bench/scale_phases.lua recipe.lua [dry]
--
-- PROJECT is an mlx project holding the recipe (bench/scale.sh's make_big
-- makes one; run the recipe once first for a no-op); "dry" plans (-n).
-- COUNT=1 also counts the fields read from the steps, per step.
local recipe, mode = arg[1], arg[2]
local clock = os.clock
local load = require "mlx.pipeline.load"
local graph = require "mlx.pipeline.graph"
local state = require "mlx.pipeline.state"
local lockindex = require "mlx.pipeline.lockindex"
local engine = require "mlx.pipeline.engine"
local t = {}
local function wrap(mod, name, label)
  local f = mod[name]
  mod[name] = function(...)
    local a = clock()
    local r = table.pack(f(...))
    t[label] = (t[label] or 0) + clock() - a
    return table.unpack(r, 1, r.n)
  end
end
wrap(graph, "build", "graph")
wrap(state, "prefetch", "prefetch")
wrap(lockindex, "steps", "lockindex")
local function rss_mb()
  for line in io.lines("/proc/self/status") do
    local kb = line:match("^VmRSS:%s+(%d+)")
    if kb then return kb / 1024 end
  end
end
local a = clock()
local p = load.recipe(recipe, {}, {})
t.declare = clock() - a
local heap_declared, rss_declared = collectgarbage("count") / 1024, rss_mb()
local reads = {}
if os.getenv("COUNT") and type(p.steps[1]) == "userdata" then
  local mt = getmetatable(p.steps[1])
  local index = mt.__index
  mt.__index = function(s, k)
    reads[k] = (reads[k] or 0) + 1
    return index(s, k)
  end
end
local b = clock()
local result = engine.run(p, { root = os.getenv("PWD"), dry_run = mode == "dry", quiet = true })
local run = clock() - b
t.decide = run - (t.graph or 0) - (t.prefetch or 0) - (t.lockindex or 0)
print(("declare %.3f  graph %.3f  lockindex %.3f  prefetch %.3f  decide %.3f  all %.3f CPU s"):format(t.declare,
  t.graph or 0, t.lockindex or 0, t.prefetch or 0, t.decide, t.declare + run))
print(("Lua heap %.1f MB, RSS %.0f MB after declaring; %.1f MB, %.0f MB at the end"):format(heap_declared,
  rss_declared, collectgarbage("count") / 1024, rss_mb()))
local counts = {}
for outcome, n in pairs(result.counts) do counts[#counts + 1] = outcome .. " " .. n end
print(table.concat(counts, ", "))
if next(reads) then
  local keys, total = {}, 0
  for k, n in pairs(reads) do
    keys[#keys + 1] = k
    total = total + n
  end
  table.sort(keys, function(x, y) return reads[x] > reads[y] end)
  for i, k in ipairs(keys) do keys[i] = ("%s %.1f"):format(k, reads[k] / #p.steps) end
  print(("fields read per step: %.1f (%s)"):format(total / #p.steps, table.concat(keys, ", ")))
end
