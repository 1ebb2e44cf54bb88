--- mlx.lockmerge: the three-way merge of mlx.lock that git runs as a merge
--- driver (`mlx lock merge %O %A %B`) and `mlx lock merge` runs on a lock
--- left in conflict. Git merges text line by line, and two branches that
--- pinned different paths, or re-ran different steps, touch neighbouring
--- lines of one JSON object: a conflict with nothing really in conflict.
--- Here each entry (an artifact, a step of a pipeline, an unknown section)
--- is merged as one value: the side that changed it wins; when both changed
--- it differently, ours is kept. For a step that is always sound (a step
--- record only caches a run: if the merged deps or params are not ours, its
--- key no longer matches and the next `mlx recipe` runs it again), so it is
--- a note; for an artifact it is a conflict the user resolves, since which
--- data is right is theirs to say.
local json = require "mlx.json"
local lock = require "mlx.lock"

local M = {}

local function same(a, b)
  if a == nil or b == nil then return a == b end
  return json.encode(a) == json.encode(b)
end

local function sorted_keys(...)
  local seen, keys = {}, {}
  for i = 1, select("#", ...) do
    for k in pairs(select(i, ...) or {}) do
      if not seen[k] then
        seen[k] = true
        keys[#keys + 1] = k
      end
    end
  end
  table.sort(keys)
  return keys
end

-- The three-way merge of one value: returns the merged value (nil: absent)
-- and whether both sides changed it differently (ours is then returned).
local function merge_value(base, ours, theirs)
  if same(ours, theirs) then return ours, false end
  if same(base, ours) then return theirs, false end
  if same(base, theirs) then return ours, false end
  return ours, true
end

-- A short description of a record for a message: "absent", or its type
-- and the first 8 digits of its hash.
local function describe(record)
  if record == nil then return "removed" end
  if type(record) == "table" and type(record.hash) == "string" then
    return ("%s %s"):format(record.type or "record", record.hash:sub(1, 8))
  end
  return "changed"
end

-- Merges the map section of the three locks entry by entry, calling
-- on_both(key, ours, theirs) for an entry both sides changed differently;
-- what it returns, if anything, replaces ours.
local function merge_map(base, ours, theirs, on_both)
  local out = json.object({})
  for _, key in ipairs(sorted_keys(base, ours, theirs)) do
    local value, both = merge_value(base and base[key], ours and ours[key], theirs and theirs[key])
    if both then value = on_both(key, ours and ours[key], theirs and theirs[key]) or value end
    out[key] = value
  end
  return out
end

--- Merges three decoded locks (base may be an empty table: both sides added
--- the file). merge_dir (optional, as M.dir_merger returns) merges a tracked
--- directory both sides changed. Returns the merged lock, the list of
--- conflicts (one line each: an artifact both sides changed differently,
--- ours kept) and the list of notes (a step both sides re-ran differently,
--- ours kept until the recipe runs it again; a directory merged file by
--- file). Raises on an argument that is not a table.
function M.merge(base, ours, theirs, merge_dir)
  assert(type(base) == "table" and type(ours) == "table" and type(theirs) == "table",
    "lockmerge.merge: three lock tables expected")
  local conflicts, notes = {}, {}
  local merged = json.object({ version = lock.VERSION })
  local base_artifacts = base.artifacts or {}
  merged.artifacts = merge_map(base.artifacts, ours.artifacts, theirs.artifacts, function(path, o, t)
    local record, why
    if merge_dir and o and t and o.type == "dir" and t.type == "dir" then
      record, why = merge_dir(path, base_artifacts[path], o, t)
      if record then
        notes[#notes + 1] = ("artifact %s: files changed on both sides, merged file by file (%d files)")
          :format(path, record.files)
        return record
      end
    end
    conflicts[#conflicts + 1] = ("artifact %s: changed on both sides (ours: %s, theirs: %s%s); kept ours:"
      .. " put the data you want at %s, run 'mlx add %s' and 'git add mlx.lock'")
      :format(path, describe(o), describe(t), why and "; " .. why or "", path, path)
  end)
  local steps_base, steps_ours, steps_theirs = base.steps or {}, ours.steps or {}, theirs.steps or {}
  local steps = json.object({})
  for _, pipeline in ipairs(sorted_keys(steps_base, steps_ours, steps_theirs)) do
    local b, o, t = steps_base[pipeline], steps_ours[pipeline], steps_theirs[pipeline]
    local value
    if o == nil or t == nil then
      -- A pipeline one side removed ('mlx remove PIPELINE') while the other
      -- kept it: merged as one value.
      local both
      value, both = merge_value(b, o, t)
      if both then
        notes[#notes + 1] = ("pipeline %s: removed on one side, re-run on the other; kept ours"):format(pipeline)
      end
    else
      value = merge_map(b, o, t, function(step)
        notes[#notes + 1] = ("step %s/%s: re-run on both sides; kept ours, the next 'mlx recipe' runs it"
          .. " again unless its deps and params are ours"):format(pipeline, step)
      end)
    end
    steps[pipeline] = value
  end
  if next(steps) ~= nil then merged.steps = steps end
  if next(merged.artifacts) == nil and base.artifacts == nil and ours.artifacts == nil
    and theirs.artifacts == nil then
    merged.artifacts = nil
  end
  -- Sections of a newer mlx, or of the user's own tools: whole values.
  for _, name in ipairs(sorted_keys(base, ours, theirs)) do
    if name ~= "version" and name ~= "artifacts" and name ~= "steps" then
      local value, both = merge_value(base[name], ours[name], theirs[name])
      if both then
        conflicts[#conflicts + 1] = ("section %q: changed on both sides; kept ours: edit it, then"
          .. " 'git add mlx.lock'"):format(name)
      end
      merged[name] = value
    end
  end
  return merged, conflicts, notes
end

-- The three-way merge of directory manifests (lists of {path, hash, size,
-- mode}; base may be nil): the merged list sorted by path, or nil and the
-- first file both sides changed differently.
local function merge_manifests(base, ours, theirs)
  local function by_path(list)
    local map = {}
    for _, e in ipairs(list or {}) do map[e.path] = e end
    return map
  end
  local b, o, t = by_path(base), by_path(ours), by_path(theirs)
  local function key(e) return e and (e.hash .. " " .. e.mode) end
  local out = {}
  for _, path in ipairs(sorted_keys(b, o, t)) do
    local kb, ko, kt = key(b[path]), key(o[path]), key(t[path])
    local entry
    if ko == kt or kb == kt then
      entry = o[path]
    elseif kb == ko then
      entry = t[path]
    else
      return nil, path
    end
    if entry then out[#out + 1] = entry end
  end
  return out
end

--- Returns a function merge_dir(path, base, ours, theirs) for M.merge that
--- merges two records of a tracked directory of the project at root file by
--- file against base (nil: both added it): a file one side added, changed
--- or deleted takes that side. Manifests the store lacks are fetched from
--- the default remote, if there is one. The merged manifest is stored, and
--- the function returns its record ({type = "dir", hash, size, files}), or
--- nil and why not (a file both sides changed differently, a manifest
--- neither the store nor the remote has).
function M.dir_merger(root)
  local st
  return function(path, base, ours, theirs)
    local err, code
    if not st then
      st, err = require("mlx.store").open(root)
      if not st then return nil, err end
    end
    local ids = { ours.hash, theirs.hash, base and base.type == "dir" and base.hash or nil }
    local absent = {}
    for _, id in ipairs(ids) do
      if not st:has(id) then absent[#absent + 1] = id end
    end
    if #absent > 0 then
      local remote = require "mlx.remote"
      -- A remote that cannot be reached leaves the manifests absent, which
      -- is said below; the merge itself never fails on it.
      local h = remote.open(root)
      if h then pcall(h.r.fetch, h.r, root, require("mlx.transfer").ids(absent), {}) end
    end
    local lists = {}
    for i, id in ipairs(ids) do
      lists[i], err, code = st:manifest(id)
      if not lists[i] then
        if code == "notfound" then
          return nil, ("manifest %s is neither in the store nor on the default remote: 'mlx push' it from"
            .. " the clone that made it"):format(id:sub(1, 8))
        end
        return nil, err
      end
    end
    local merged, both = merge_manifests(lists[3], lists[1], lists[2])
    if not merged then return nil, ("%s/%s changed on both sides"):format(path, both) end
    local lines, size = {}, 0
    for i, e in ipairs(merged) do
      lines[i] = require("mlx.artifacts").manifest_line(e, e.path)
      size = size + e.size
    end
    -- The manifest is an object like any other: staged from a file, which
    -- stays inside .mlx/tmp/ (never a path from the lock).
    local tmp = ".mlx/tmp/lockmerge-" .. require("mlx.hash").bytes(path):sub(1, 16)
    local ok
    ok, err = require("mlx.fs").write(root .. "/" .. tmp, table.concat(lines))
    if not ok then return nil, err end
    local info
    info, err = st:put(tmp)
    if info then ok, err = st:commit() end
    os.remove(root .. "/" .. tmp)
    if not info or not ok then return nil, err end
    return { type = "dir", hash = info.hash, size = size, files = #merged }
  end
end

return M
