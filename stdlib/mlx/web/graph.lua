--- mlx.web.graph: the pipeline graphs of `mlx ui`, drawn from what mlx.lock
--- and the runs recorded — a request never loads or runs a recipe. A step
--- of the lock waits for another when one of its deps is, or lies inside,
--- an out of the other; its state is that of the newest run of its name
--- (of the recipe that produced its locked key, when a run did: another
--- pipeline may have a step of that name) and whether a run produced the
--- key the lock pins. mlx verify's runs (tagged
--- mlx.verify) ran in copies of the workspace: they are never the newest
--- run or the producer, and are shown apart, as the step's verification.
local json = require "mlx.json"

local M = {}

--- Returns the pipelines of the lock of the project at root, sorted by
--- name: {{name, steps = {{name, key, deps = {path…}, outs = {path…},
--- params}…}, edges = {{from, to}…}}…}; raises with the lock's message
--- when it is corrupt.
function M.pipelines(root)
  local lock, err = require("mlx.lock").read(root)
  if not lock then error({ status = 500, message = err }) end
  local out = {}
  for name, steps in pairs(lock.steps or {}) do
    local list = {}
    for step, entry in pairs(steps) do
      local deps, outs = {}, {}
      for path in pairs(entry.deps or {}) do deps[#deps + 1] = path end
      for path in pairs(entry.outs or {}) do outs[#outs + 1] = path end
      table.sort(deps)
      table.sort(outs)
      list[#list + 1] = { name = step, key = entry.key, deps = deps, outs = outs, params = entry.params,
        deterministic = entry.deterministic }
    end
    table.sort(list, function(a, b) return a.name < b.name end)
    local edges = {}
    for _, to in ipairs(list) do
      for _, from in ipairs(list) do
        if from ~= to then
          local found = false
          for _, dep in ipairs(to.deps) do
            for _, o in ipairs(from.outs) do
              local dir = o:gsub("/$", "") .. "/"
              if dep == o or dep:gsub("/$", "") == o:gsub("/$", "") or dep:sub(1, #dir) == dir then found = true end
            end
          end
          if found then edges[#edges + 1] = { from = from.name, to = to.name } end
        end
      end
    end
    out[#out + 1] = { name = name, steps = list, edges = edges }
  end
  table.sort(out, function(a, b) return a.name < b.name end)
  return out
end

-- A string literal of the filter language (a quote is doubled).
local function literal(text)
  return "'" .. text:gsub("'", "''") .. "'"
end

-- The runs matching "FIELD IN (values)" and the condition extra, newest
-- first, a few hundred values per query (one query per page of steps, not
-- one per step).
local function runs_in(store, field, values, extra)
  local out = {}
  for first = 1, #values, 500 do
    local quoted = {}
    for i = first, math.min(first + 499, #values) do quoted[#quoted + 1] = literal(values[i]) end
    local runs = store:runs { filter = ("%s IN (%s)%s"):format(field, table.concat(quoted, ", "), extra or "") }
    for _, r in ipairs(runs or {}) do out[#out + 1] = r end
  end
  table.sort(out, function(a, b) return a.start_time > b.start_time or (a.start_time == b.start_time and a.id > b.id) end)
  return out
end

-- The newest run of step s that is not mlx verify's: of recipe (that of
-- the run that produced its locked key) when there is one, as another
-- pipeline (another recipe) may have a step of the same name.
local function newest_run(store, s, recipe)
  local filter = ("step = '%s' and tags.mlx.verify IS NULL"):format(s.name)
  if recipe then filter = filter .. " and recipe = " .. literal(recipe) end
  local runs = store:runs { filter = filter, limit = 1 }
  return runs and runs[1]
end

-- The state of each step from the runs: the newest run of its name, the
-- run that produced the locked key, and the newest verification of that
-- key ({id, result = "passed"|"failed"|"unchecked", start_time}).
local function add_states(store, pipelines)
  for _, p in ipairs(pipelines) do
    local producers, keys = {}, {}
    for _, s in ipairs(p.steps) do
      s.state = "locked"
      s.hex_key = type(s.key) == "string" and s.key:match("^%x+$") and s.key or nil
      if store and s.hex_key then
        s.producer = store:step_producer(s.hex_key) or nil
        producers[#producers + 1] = s.producer
        keys[#keys + 1] = s.hex_key
      end
    end
    local recipe_of, verified = {}, {}
    if store then
      for _, r in ipairs(runs_in(store, "id", producers)) do recipe_of[r.id] = r.recipe end
      for _, r in ipairs(runs_in(store, "step_key", keys, " and tags.mlx.verify IS NOT NULL and step IS NOT NULL")) do
        verified[r.step_key] = verified[r.step_key]
          or { id = r.id, result = r.tags["mlx.verify"], start_time = r.start_time, step = r.step }
      end
    end
    for _, s in ipairs(p.steps) do
      if store and not s.name:find("['\\]") then
        local latest = newest_run(store, s, s.producer and recipe_of[s.producer])
        if latest then
          s.latest = { id = latest.id, status = latest.status, start_time = latest.start_time,
            duration = latest.duration, parent = latest.parent }
        end
        local v = s.hex_key and verified[s.hex_key]
        if v and v.step == s.name then
          s.verification = { id = v.id, result = v.result, start_time = v.start_time }
        end
        if latest and latest.status == "RUNNING" then
          s.state = "running"
        elseif latest and (latest.status == "FAILED" or latest.status == "KILLED") and latest.step_key ~= s.key then
          s.state = "failed"
        elseif s.producer then
          s.state = "done"
        end
      end
    end
  end
  return pipelines
end

--- Returns the dot program to run: MLX_WEB_DOT, or "dot" found on PATH;
--- nil when there is none (or ctx.dot is false).
function M.dot_program(ctx)
  if ctx.dot == false then return nil end
  local override = ctx.dot or os.getenv("MLX_WEB_DOT")
  local candidates = {}
  if override then
    candidates[1] = override
  else
    for dir in (os.getenv("PATH") or "/usr/bin:/bin"):gmatch("[^:]+") do candidates[#candidates + 1] = dir .. "/dot" end
  end
  for _, path in ipairs(candidates) do
    local f = io.open(path, "rb")
    if f then
      f:close()
      return path
    end
  end
  return nil
end

-- Text inside a dot string: no control characters, \ and " escaped.
local function escaped(s)
  return (tostring(s):gsub("%c", " "):gsub("\\", "\\\\"):gsub('"', '\\"'))
end

local function quoted(s)
  return '"' .. escaped(s) .. '"'
end

local FILL = { done = "#d9f2d9", running = "#fff2b3", failed = "#f8d0d0", locked = "#e8e8e8" }

--- Returns the Graphviz text of pipeline p (as M.pipelines, with states).
function M.dot(p)
  local lines = { "digraph " .. quoted(p.name) .. " {", "  rankdir=LR;",
    '  node [shape=box, style="rounded,filled", fontname="sans-serif", fontsize=11];' }
  for _, s in ipairs(p.steps) do
    lines[#lines + 1] = ("  %s [label=%s, fillcolor=%s];"):format(quoted(s.name),
      '"' .. escaped(s.name) .. "\\n" .. escaped(s.latest and s.latest.status or s.state) .. '"',
      quoted(FILL[s.state] or "#ffffff"))
  end
  for _, e in ipairs(p.edges) do
    lines[#lines + 1] = ("  %s -> %s;"):format(quoted(e.from), quoted(e.to))
  end
  lines[#lines + 1] = "}"
  return table.concat(lines, "\n") .. "\n"
end

-- The recipe runs RUNNING now with their steps so far: a recipe's first
-- run has steps that no lock pins yet. A verification (mlx verify) is
-- marked: its steps run in copies, not in the workspace.
local function running(store)
  local out = json.array()
  if not store then return out end
  local recipes = store:runs { filter = "status = 'RUNNING' and parent IS NULL", limit = 20 }
  for _, r in ipairs(recipes or {}) do
    local full = store:get(r.id)
    if full then
      local steps = json.array()
      for _, id in ipairs(full.children) do
        local c = store:get(id)
        if c then steps[#steps + 1] = { id = c.id, step = c.step, status = c.status, duration = c.duration } end
      end
      out[#out + 1] = { id = r.id, recipe = r.recipe, start_time = r.start_time, steps = steps,
        verification = r.tags["mlx.verify"] ~= nil }
    end
  end
  return out
end

--- /api/graph: the pipelines with states, their dot text, whether Graphviz
--- can draw them (/api/graph.svg), and the recipes running now with their
--- steps so far.
function M.json(ctx, store)
  local pipelines = add_states(store, M.pipelines(ctx.root))
  local out = json.array()
  for i, p in ipairs(pipelines) do
    local steps = json.array()
    for j, s in ipairs(p.steps) do
      steps[j] = { name = s.name, key = s.key, state = s.state, latest = s.latest, producer = s.producer,
        verification = s.verification, deterministic = s.deterministic,
        deps = json.array(s.deps), outs = json.array(s.outs), params = json.object(s.params or {}) }
    end
    out[i] = { name = p.name, steps = steps, edges = json.array(p.edges), dot = M.dot(p) }
  end
  return 200, "json", json.encode({ pipelines = out, graphviz = M.dot_program(ctx) ~= nil, running = running(store) })
end

--- /api/graph.svg?pipeline=NAME: the pipeline drawn by dot -Tsvg; 404 when
--- there is no such pipeline or no Graphviz.
function M.svg(ctx, store, name)
  local dot = M.dot_program(ctx)
  if not dot then error({ status = 404, message = "Graphviz is not installed: apt-get install graphviz" }) end
  for _, p in ipairs(add_states(store, M.pipelines(ctx.root))) do
    if p.name == name then
      local result, err = require("mlx.proc").run { dot, "-Tsvg", stdin = { data = M.dot(p) },
        stdout = "capture", stderr = "capture", timeout = 20 }
      if not result then error(("dot failed: %s"):format(err), 0) end
      return 200, "svg", result.stdout
    end
  end
  error({ status = 404, message = ("no pipeline '%s' in mlx.lock"):format(tostring(name)) })
end

return M
