--- mlx.untrack: `mlx remove` — stop tracking a path, a pipeline or a step,
--- as `dvc remove` does. Its entries leave mlx.lock and their lines leave
--- the .gitignore blocks mlx maintains; the files in the workspace and the
--- objects in the store are left as they are (mlx gc frees the objects once
--- nothing pins them).
local artifacts = require "mlx.artifacts"
local gitignore = require "mlx.gitignore"
local lockfile = require "mlx.lock"

local M = {}

-- Every name a target may take, for "did you mean …?".
local function known_names(lock)
  local names = {}
  for path in pairs(lock.artifacts or {}) do names[#names + 1] = path end
  for pname, steps in pairs(lock.steps or {}) do
    names[#names + 1] = pname
    for sname in pairs(steps) do
      names[#names + 1] = pname .. "/" .. sname
      names[#names + 1] = sname
    end
  end
  return names
end

-- The pipelines that have a step named sname.
local function pipelines_with(lock, sname)
  local found = {}
  for pname, steps in pairs(lock.steps or {}) do
    if steps[sname] ~= nil then found[#found + 1] = pname end
  end
  table.sort(found)
  return found
end

-- Resolves one target against lock: {kind = "artifact", path = P} |
-- {kind = "pipeline", pipeline = P} | {kind = "step", pipeline = P, step = S},
-- or nil, message.
local function resolve(root, lock, target)
  local steps = lock.steps or {}
  local tracked = lock.artifacts or {}
  if steps[target] ~= nil then return { kind = "pipeline", pipeline = target } end
  local pname, sname = target:match("^([^/]+)/([^/]+)$")
  if pname and steps[pname] and steps[pname][sname] ~= nil then
    return { kind = "step", pipeline = pname, step = sname }
  end
  local rel = artifacts.relpath(root, (target:gsub("(.)/+$", "%1")))
  if rel and tracked[rel] ~= nil then return { kind = "artifact", path = rel } end
  local above = rel and artifacts.owner(tracked, rel)
  if above then
    return nil, ("%s is inside the tracked directory %s; remove %s, or delete %s and run 'mlx add %s'")
      :format(target, above, above, target, above)
  end
  local owners = pipelines_with(lock, target)
  if #owners == 1 then return { kind = "step", pipeline = owners[1], step = target } end
  if #owners > 1 then
    return nil, ("%s names a step of several pipelines (%s); give PIPELINE/%s"):format(target,
      table.concat(owners, ", "), target)
  end
  local hint = require("mlx.suggest").closest(target, known_names(lock))
  return nil, ("%s is not in mlx.lock: not a tracked path, a pipeline or a step%s"):format(target,
    hint and ("; did you mean %s?"):format(hint) or "")
end

-- The out paths (no trailing "/") of one step's entry.
local function outs_of(entry, into)
  for path in pairs(type(entry) == "table" and type(entry.outs) == "table" and entry.outs or {}) do
    into[#into + 1] = (path:gsub("/$", ""))
  end
end

-- Removes what one resolved target names from lock; returns the paths whose
-- .gitignore lines it had.
local function drop(lock, t)
  local paths = {}
  if t.kind == "artifact" then
    paths[1] = t.path
    lock.artifacts[t.path] = nil
  elseif t.kind == "pipeline" then
    for _, entry in pairs(lock.steps[t.pipeline]) do outs_of(entry, paths) end
    lock.steps[t.pipeline] = nil
  elseif lock.steps[t.pipeline] then
    outs_of(lock.steps[t.pipeline][t.step], paths)
    lock.steps[t.pipeline][t.step] = nil
    if next(lock.steps[t.pipeline]) == nil then lock.steps[t.pipeline] = nil end
  end
  return paths
end

-- Whether what a resolved target names is still in lock.
local function still_there(lock, t)
  if t.kind == "artifact" then return (lock.artifacts or {})[t.path] ~= nil end
  local steps = (lock.steps or {})[t.pipeline]
  if t.kind == "pipeline" then return steps ~= nil end
  return steps ~= nil and steps[t.step] ~= nil
end

-- How a resolved target is shown.
local function describe(t)
  if t.kind == "artifact" then return "tracked path " .. t.path end
  if t.kind == "pipeline" then return "pipeline " .. t.pipeline end
  return "step " .. t.pipeline .. "/" .. t.step
end

--- Stops tracking each target: a tracked path (as given on the command line:
--- relative to the working directory), a pipeline of mlx.lock's steps
--- section, PIPELINE/STEP, or a step name that one pipeline has. Removes
--- their entries from mlx.lock in one atomic write and their lines from the
--- .gitignore blocks mlx maintains (a path another entry still pins keeps its
--- line); with opts.dry_run changes nothing. Returns a list of {what =
--- description, outs = n, kind, path|pipeline, step}, or nil, message,
--- "invalid" when a target is unknown (nothing is changed) or a lock error.
function M.remove(root, targets, opts)
  opts = opts or {}
  local lock, err, code = lockfile.read(root)
  if not lock then return nil, err, code end
  local resolved = {}
  for _, target in ipairs(targets) do
    local t, why = resolve(root, lock, target)
    if not t then return nil, why, "invalid" end
    resolved[#resolved + 1] = t
  end
  local gone
  local function apply(current)
    gone = {}
    for _, t in ipairs(resolved) do
      local paths = drop(current, t)
      for _, p in ipairs(paths) do gone[#gone + 1] = p end
      t.what = describe(t)
      t.outs = t.kind == "artifact" and 0 or #paths
    end
  end
  local after
  if opts.dry_run then
    apply(lock)
    after = lock
  else
    -- Checked again under the lock's own lock, in case it changed since.
    local ok, problem = pcall(function()
      after, err, code = lockfile.update_all(root, function(current)
        for _, t in ipairs(resolved) do
          if not still_there(current, t) then
            error(("%s left mlx.lock while it was being removed; run mlx remove again"):format(describe(t)), 0)
          end
        end
        apply(current)
      end)
    end)
    if not ok then return nil, problem, "invalid" end
    if not after then return nil, err, code end
  end
  -- A path still pinned by what is left (an out tracked twice) keeps its line.
  local still = artifacts.pinned(after)
  local unignore = {}
  for _, p in ipairs(gone) do
    if still[p] == nil then unignore[#unignore + 1] = p end
  end
  if not opts.dry_run and #unignore > 0 then
    local ok, gerr = gitignore.drop(root, unignore)
    if not ok then return nil, "mlx.lock was updated, but a .gitignore was not: " .. gerr, "io" end
    -- The files stay, now the user's: no later checkout may take them away.
    require("mlx.stalepins").forget(root, unignore)
  end
  return resolved
end

return M
