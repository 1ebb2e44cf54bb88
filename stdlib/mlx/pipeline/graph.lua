--- mlx.pipeline.graph: the steps of a pipeline as a DAG — who produces each
--- path, which steps feed which, a topological order, and the validation of
--- the whole (missing deps, outs produced twice, cycles).
---
--- Lookups go through maps keyed by path and by each ancestor directory, so
--- building the graph is linear in the total length of the declared paths:
--- a 1,000-step recipe must be checked in milliseconds on every run.
local fs = require "mlx.fs"
local paths = require "mlx.pipeline.paths"
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

local function describe_cycle(stack, from, to)
  local names = {}
  for i = from, to do names[#names + 1] = stack[i].name end
  names[#names + 1] = stack[from].name
  return table.concat(names, " -> ")
end

--- Builds and validates the graph of pipeline p. exists(path) tells whether a
--- dep that no step produces is present in the workspace.
--- Returns { steps = p.steps, order = {step…}, upstream = {[step] = {step…}},
--- downstream = {[step] = {step…}}, producer_of = {[out] = step} }.
--- Raises a usage failure (exit 2) naming the steps for: two steps whose outs
--- overlap, a dep that neither exists nor is produced, a step that depends
--- on its own out, and a cycle (printed as "a -> b -> a").
function M.build(p, exists)
  -- Many steps share an input: ask about each path once.
  local known = {}
  local ask = exists
  exists = function(path)
    if known[path] == nil then known[path] = ask(path) and true or false end
    return known[path]
  end
  local producer_of = {}  -- out path → step
  local under = {}        -- ancestor dir → { out paths below it }
  for _, step in ipairs(p.steps) do
    for _, out in ipairs(step.outs) do
      local other = producer_of[out]
      if other then
        ui.usage_error("%ssteps '%s' and '%s' both produce '%s'", step.where,
          other.name, step.name, out)
      end
      producer_of[out] = step
      -- Each ancestor directory of out, walked in place rather than listed
      -- (a table per path is most of the garbage of a large graph).
      local stop = #out - 1
      local i = out:find("/", 1, true)
      while i and i <= stop do
        local dir = out:sub(1, i)
        local list = under[dir]
        if not list then
          list = {}
          under[dir] = list
        end
        list[#list + 1] = out
        i = out:find("/", i + 1, true)
      end
    end
  end
  -- An out inside another step's directory out is produced twice.
  for dir, inside in pairs(under) do
    local outer = producer_of[dir]
    if outer then
      for _, out in ipairs(inside) do
        local step = producer_of[out]
        if step ~= outer then
          ui.usage_error("%ssteps '%s' and '%s' both produce '%s' ('%s' is inside '%s')",
            step.where, outer.name, step.name, out, out, dir)
        end
      end
    end
  end

  local upstream, downstream = {}, {}
  for _, step in ipairs(p.steps) do
    upstream[step], downstream[step] = {}, {}
  end
  -- A step's upstream list is searched while short (most steps have one
  -- or two), and indexed by a set once long, so linking stays linear.
  local upstream_set = {}
  local function link(step, producer, dep)
    if producer == step then
      ui.usage_error("%sstep '%s' depends on its own out '%s'", step.where, step.name, dep)
    end
    local ups = upstream[step]
    local set = upstream_set[step]
    if set then
      if set[producer] then return end
      set[producer] = true
    else
      for i = 1, #ups do
        if ups[i] == producer then return end
      end
      if #ups >= 8 then
        set = {}
        for i = 1, #ups do set[ups[i]] = true end
        set[producer] = true
        upstream_set[step] = set
      end
    end
    ups[#ups + 1] = producer
    local downs = downstream[producer]
    downs[#downs + 1] = step
  end
  for _, step in ipairs(p.steps) do
    for _, dep in ipairs(step.deps) do
      local found = false
      local producer = producer_of[dep]
      if producer then
        link(step, producer, dep)
        found = true
      end
      local stop = #dep - 1 -- dep inside a directory out
      local i = dep:find("/", 1, true)
      while i and i <= stop do
        local dir_producer = producer_of[dep:sub(1, i)]
        if dir_producer then
          link(step, dir_producer, dep)
          found = true
        end
        i = dep:find("/", i + 1, true)
      end
      if dep:sub(-1) == "/" then          -- a directory dep holding outs
        for _, out in ipairs(under[dep] or {}) do
          link(step, producer_of[out], dep)
          found = true
        end
      end
      if not found and not exists(dep) then
        ui.usage_error("%sstep '%s': dep '%s' does not exist and no step produces it",
          step.where, step.name, dep)
      end
    end
  end

  -- Depth-first topological order, visiting steps in declaration order so
  -- the order is stable; a grey step met again closes a cycle. The walk
  -- keeps its own stack (step, next upstream index): a chain of a million
  -- steps is deeper than Lua's call stack may grow.
  local order, color, stack, next_up = {}, {}, {}, {}
  for _, root in ipairs(p.steps) do
    if not color[root] then
      color[root] = "grey"
      stack[1], next_up[1] = root, 1
      local depth = 1
      while depth > 0 do
        local step = stack[depth]
        local ups = upstream[step]
        local i = next_up[depth]
        local up = ups[i]
        if up then
          next_up[depth] = i + 1
          local c = color[up]
          if c == "grey" then
            for j = 1, depth do
              if stack[j] == up then
                ui.usage_error("%scycle in pipeline '%s': %s", up.where, p.name, describe_cycle(stack, j, depth))
              end
            end
          elseif not c then
            color[up] = "grey"
            depth = depth + 1
            stack[depth], next_up[depth] = up, 1
          end
        else
          color[step] = "black"
          order[#order + 1] = step
          stack[depth] = nil
          depth = depth - 1
        end
      end
    end
  end

  return { steps = p.steps, order = order, upstream = upstream, downstream = downstream,
    producer_of = producer_of }
end

--- Returns the step of pipeline p named name. Raises a usage failure naming
--- it (and `option`, e.g. "--force-step", when given), with the closest
--- step name as a suggestion, when p has no such step.
function M.step_named(p, name, option)
  local step = p.by_name[name]
  if step then return step end
  local known = {}
  for _, s in ipairs(p.steps) do known[#known + 1] = s.name end
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
