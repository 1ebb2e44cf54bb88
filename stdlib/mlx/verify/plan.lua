--- mlx.verify.plan: what `mlx verify` re-executes and from what — the
--- steps chosen, the param values mlx.lock records, the check that the
--- recipe still declares what the lock pins, and where each input the
--- copies need comes from (the store, else the workspace).
local fs = require "mlx.fs"
local paths = require "mlx.pipeline.paths"
local state = require "mlx.pipeline.state"
local suggest = require "mlx.suggest"
local ui = require "mlx.ui"

local M = {}

--- Returns the steps to verify, as a set {[step] = true}, and the names of
--- those left out: the steps named (an unknown name is a usage failure with
--- a suggestion), else every step except those with cache = false, which
--- act on the world (register, deploy) and are verified only when named.
function M.choose(p, names)
  local chosen, left_out = {}, {}
  if #names > 0 then
    for _, name in ipairs(names) do
      local step = p.by_name[name]
      if not step then
        local guess = suggest.closest(name, p.by_name)
        ui.usage_error("no step named '%s' in pipeline '%s'%s", name, p.name,
          guess and ("; did you mean '" .. guess .. "'?") or "")
      end
      chosen[step] = true
    end
  else
    for _, step in ipairs(p.steps) do
      if step.cache then chosen[step] = true else left_out[#left_out + 1] = step.name end
    end
  end
  return chosen, left_out
end

--- Returns {name → value}: the param values mlx.lock records for the steps
--- in selected (a set), which the recipe is loaded with. Two steps that
--- record different values of one param mean the lock is not one run's: a
--- usage failure.
function M.locked_values(p, locked, selected)
  local values, from = {}, {}
  for _, step in ipairs(p.steps) do
    local entry = selected[step] and locked[step.name]
    for name, value in pairs(entry and entry.params or {}) do
      if p.defaults[name] ~= nil then
        if values[name] ~= nil and values[name] ~= value then
          ui.usage_error("mlx.lock records param '%s' as %s for step '%s' and %s for step '%s'; run the recipe to bring mlx.lock up to date",
            name, tostring(values[name]), from[name], tostring(value), step.name)
        end
        values[name], from[name] = value, step.name
      end
    end
  end
  return values
end

--- Raises a usage failure unless each step in selected, declared as the
--- recipe now declares it and given the locked params and dep hashes, has
--- the key mlx.lock records: verify proves what the lock pins, so the
--- recipe must still describe it.
function M.check_keys(root, st, p, g, locked, selected, recipe)
  local memo = {}
  local ctx = { store = st, values = p.values, tool_cache = {}, hashes = memo }
  for _, step in ipairs(g.order) do
    if selected[step] then
      local entry = locked[step.name]
      if not entry then
        ui.usage_error("step '%s' has no entry in mlx.lock: run 'mlx recipe %s' first", step.name, recipe)
      end
      local reasons = {}
      for _, dep in ipairs(step.deps) do
        local h = entry.deps and entry.deps[dep]
        if type(h) == "string" then memo[dep] = { hash = h } else memo[dep] = nil end
        if type(h) ~= "string" then reasons[#reasons + 1] = ("mlx.lock pins no hash for dep '%s'"):format(dep) end
      end
      for _, out in ipairs(step.outs) do
        local r = entry.outs and entry.outs[out]
        memo[out] = r
        if not r then reasons[#reasons + 1] = ("mlx.lock pins no out '%s'"):format(out) end
      end
      if #reasons == 0 then
        local ev, err = state.evaluate(ctx, step, entry)
        if not ev then ui.fail(ui.EXIT.FAILED, "%s", err) end
        if ev.key ~= entry.key then reasons = ev.reasons end
      end
      if #reasons > 0 then
        ui.usage_error("step '%s' is not what mlx.lock pins (%s): run 'mlx recipe %s' first, then verify",
          step.name, table.concat(reasons, "; "), recipe)
      end
    end
  end
end

-- The lock record of a dep pinned as hash h: from the step that produced
-- it, or the artifacts section, when they pin the same hash.
local function record_of(doc, locked, path, h)
  for _, entry in pairs(locked) do
    local r = entry.outs and entry.outs[path]
    if r and r.hash == h then return r end
  end
  local r = (doc.artifacts or {})[state.store_path(path)]
  if r and r.hash == h then return r end
  return nil
end

-- Where the bytes of path, pinned as hash h (record r if known), come
-- from: the store, else the workspace if it still has them. Raises a usage
-- failure when neither has them.
local function source_of(root, st, path, h, r)
  local bare = state.store_path(path)
  local is_dir = (r and r.type == "dir") or (not r and path:sub(-1) == "/")
  if st:has(h) then
    if is_dir then
      local files = st:manifest(h)
      local complete = files ~= nil
      for _, f in ipairs(files or {}) do
        if not st:has(f.hash) then complete = false break end
      end
      if complete then
        local entries = {}
        for i, f in ipairs(files) do entries[i] = { path = bare .. "/" .. f.path, hash = f.hash, mode = f.mode } end
        return { kind = "store", entries = entries }
      end
    else
      local mode = r and r.mode
      if not mode then
        local now = st:hash(bare)
        mode = now and now.mode or "644"
      end
      return { kind = "store", entries = { { path = bare, hash = h, mode = mode } } }
    end
  end
  local now = fs.stat(root .. "/" .. bare) and st:hash(bare)
  if now and now.hash == h then return { kind = "workspace" } end
  ui.usage_error("cannot verify: '%s' as mlx.lock pins it (%s…) is neither in the store nor in the workspace; put it back (mlx checkout, or git) and verify again",
    path, h:sub(1, 12))
end

--- Returns the inputs the copies need, {{path, source = {kind = "store",
--- entries} | {kind = "workspace"}}…}, directories first: each dep of a
--- selected step that no chosen step produces, and the outs of selected
--- steps that are not re-executed (or persist), as mlx.lock pins them.
--- Raises a usage failure naming an input that is neither in the store nor
--- in the workspace.
function M.items(root, st, doc, locked, g, selected, chosen)
  local items, seen = {}, {}
  local function add(path, h, r)
    if seen[path] or type(h) ~= "string" then return end
    seen[path] = true
    items[#items + 1] = { path = path, source = source_of(root, st, path, h, r) }
  end
  for _, step in ipairs(g.order) do
    if selected[step] then
      local entry = locked[step.name]
      for _, dep in ipairs(step.deps) do
        local made_here = false
        for _, up in ipairs(g.upstream[step]) do
          if chosen[up] then
            for _, out in ipairs(up.outs) do
              if paths.overlap(dep, out) then made_here = true end
            end
          end
        end
        if not made_here then add(dep, entry.deps[dep], record_of(doc, locked, dep, entry.deps[dep])) end
      end
      if not chosen[step] or step.persist then
        for _, out in ipairs(step.outs) do add(out, entry.outs[out].hash, entry.outs[out]) end
      end
    end
  end
  table.sort(items, function(a, b)
    local ad, bd = a.path:sub(-1) == "/", b.path:sub(-1) == "/"
    if ad ~= bd then return ad end
    return a.path < b.path
  end)
  return items
end

return M
