--- mlx.pipeline.graph: the steps of a pipeline as a DAG — who produces each
--- path, which steps feed which, a topological order, and the validation of
--- the whole (missing deps, outs produced twice, cycles).
---
--- The graph is built in C (mlx.stepgraph, core/graph.c) over interned
--- paths and each ancestor directory of an out, so building it is linear in
--- the total length of the declared paths: a 100,000-step recipe must be
--- checked in a fraction of a second on every run.
local fs = require "mlx.fs"
local stepgraph = require "mlx.stepgraph"
local suggest = require "mlx.suggest"
local ui = require "mlx.ui"

local M = {}

--- Returns the function graph.build wants for a project at root: whether a
--- declared path (file or "dir/") is present in the workspace.
function M.in_workspace(root)
  return function(path)
    return fs.stat(root .. "/" .. path:gsub("/$", "")) ~= nil
  end
end

local function describe_cycle(cycle)
  local names = {}
  for i = 1, #cycle do names[i] = cycle[i].name end
  names[#names + 1] = cycle[1].name
  return table.concat(names, " -> ")
end

-- The list every step without upstream or downstream steps shares (most
-- steps of a fan-out); writing to it raises rather than linking them all.
local NONE = setmetatable({}, {
  __newindex = function() error("a graph's empty list of steps is read-only", 2) end,
})

--- Builds and validates the graph of pipeline p. exists(path) tells whether a
--- dep that no step produces is present in the workspace; it is asked once
--- per path. Returns { steps = p.steps, order = {step…}, upstream =
--- {[step] = {step…}}, downstream = {[step] = {step…}} } (the lists are
--- read-only). Raises a usage failure (exit 2) naming the steps for: two
--- steps whose outs overlap, a dep that neither exists nor is produced, a
--- step that depends on its own out, and a cycle (printed as "a -> b -> a").
function M.build(p, exists)
  -- Producers, links and the order are found in C over interned paths
  -- (core/graph.c); what it finds wrong is worded here.
  local g = stepgraph.build(p.steps, NONE)
  if g.kind == "duplicate" then
    ui.usage_error("%ssteps '%s' and '%s' both produce '%s'", g.step.where, g.other.name, g.step.name, g.path)
  elseif g.kind == "nested" then
    ui.usage_error("%ssteps '%s' and '%s' both produce '%s' ('%s' is inside '%s')",
      g.step.where, g.other.name, g.step.name, g.path, g.path, g.dir)
  end
  -- The deps no step produces, each once, in the order first declared: the
  -- first missing one is the error a walk of the steps would meet first,
  -- before any self-link found after it.
  local unproduced = g.unproduced
  for i = 1, #unproduced, 2 do
    local dep, step = unproduced[i], unproduced[i + 1]
    if not exists(dep) then
      ui.usage_error("%sstep '%s': dep '%s' does not exist and no step produces it", step.where, step.name, dep)
    end
  end
  if g.kind == "self" then
    ui.usage_error("%sstep '%s' depends on its own out '%s'", g.step.where, g.step.name, g.path)
  elseif g.kind == "cycle" then
    ui.usage_error("%scycle in pipeline '%s': %s", g.step.where, p.name, describe_cycle(g.cycle))
  end
  return { steps = p.steps, order = g.order, upstream = g.upstream, downstream = g.downstream }
end

--- Returns the step of pipeline p named name. Raises a usage failure naming
--- it (and `option`, e.g. "--force-step", when given), with the closest
--- step name as a suggestion (or -p for a KEY=VALUE word), when p has no
--- such step.
function M.step_named(p, name, option)
  local step = p.by_name[name]
  if step then return step end
  local known = {}
  for _, s in ipairs(p.steps) do known[#known + 1] = s.name end
  -- "lr=0.5" where a step was expected is a param, as make takes them.
  local key, value = tostring(name):match("^([%a_][%w_]*)=(.*)$")
  if key and not option then
    ui.usage_error("no step named '%s' in pipeline '%s'; to set a param, give -p %s=%s", name, p.name, key, value)
  end
  local guess = suggest.closest(name, known)
  ui.usage_error("%sno step named '%s' in pipeline '%s'; %s", option and (option .. ": ") or "", name, p.name,
    guess and ("did you mean '" .. guess .. "'?") or ("its steps: " .. table.concat(known, ", ")))
end

--- Returns the set {[step] = true} of the named steps and everything they
--- depend on, transitively. Raises a usage failure for an unknown name.
function M.select(graph, p, names)
  local selected = {}
  local function add(step)
    if selected[step] then return end
    selected[step] = true
    for _, up in ipairs(graph.upstream[step]) do add(up) end
  end
  for _, name in ipairs(names) do
    add(M.step_named(p, name))
  end
  return selected
end

--- Returns the set of steps downstream of step (not including it).
function M.descendants(graph, step)
  local seen = {}
  local function walk(s)
    for _, down in ipairs(graph.downstream[s]) do
      if not seen[down] then
        seen[down] = true
        walk(down)
      end
    end
  end
  walk(step)
  return seen
end

return M
