--- mlx.remote: share the store with a team — push, fetch and pull objects
--- and run-cache entries to and from a remote (a directory, WebDAV or S3;
--- docs/remotes.md).
---
---     local remote = require "mlx.remote"
---     local res = assert(remote.push(root, { targets = { "data/iris.csv" } }))
---
--- The remote has the store's layout: objects/<2 hex>/<62 hex>, the
--- run-cache as runcache/<key>.json and the index (mlx.remote.index).
--- Bytes move through the C engine (mlx.transfer: parallel, retried,
--- verified); what to move, the index and the run-cache are decided here.
--- Everything read from a remote is data: ids must be ids, run-cache
--- entries pass the rules of local ones (mlx.lock's record and path
--- checks), and manifests are read by the store, which refuses bad paths.
local artifacts = require "mlx.artifacts"
local config = require "mlx.remote.config"
local fs = require "mlx.fs"
local index = require "mlx.remote.index"
local json = require "mlx.json"
local lockfile = require "mlx.lock"
local runcache = require "mlx.remote.runcache"

local M = {}

--- Opens the remote name (nil: the default) of the project at root:
--- {name, url, r = mlx.transfer handle}; or nil, message, code.
--- opts: {jobs, retries}.
function M.open(root, name, opts)
  opts = opts or {}
  local rc, err, code = config.resolve(root, name)
  if not rc then return nil, err, code end
  local r
  r, err, code = require("mlx.transfer").open { name = rc.name, url = rc.url, options = rc.options,
    jobs = opts.jobs, retries = opts.retries }
  if not r then return nil, err, code end
  return { name = rc.name, url = rc.url, r = r }
end

-- ---- what to move ----------------------------------------------------------

local function owner(pinned, rel)
  local p = rel
  while p do
    if pinned[p] then return p end
    p = p:match("^(.*)/[^/]*$")
  end
end

-- The ids of registered model versions ({} without a runs database).
local function model_ids(root)
  local path = os.getenv("MLX_RUNS_DB")
  if not path or path == "" then path = root .. "/.mlx/runs.db" end
  if not fs.stat(path) then return {} end
  local ids, err, code = require("mlx.store").db_ids(path, "model_versions", "artifact_hash")
  if not ids then return nil, err, code end
  return ids
end

--- Returns the records ({hash, type = "file"|"dir"|nil, size, path}) that
--- targets name — tracked paths, pipeline steps ("step" or
--- "pipeline/step") or outs, models ("iris@production", "iris:3",
--- "iris") — or, without targets, everything mlx.lock pins plus every
--- registered model version; or nil, message, code ("notfound": a target
--- that is none of those).
function M.records(root, targets)
  local lock, err, code = lockfile.read(root)
  if not lock then return nil, err, code end
  local pinned, step_of = artifacts.pinned(lock)
  local out = {}
  local function add(path, r, step)
    out[#out + 1] = { hash = r.hash, type = r.type, size = r.size, path = path, step = step }
  end
  if not targets or #targets == 0 then
    -- A step's out carries its step: when nothing is named, one that
    -- cannot be moved is left for its step to make again (as mlx
    -- checkout leaves it), not an error.
    local paths = {}
    for path in pairs(pinned) do paths[#paths + 1] = path end
    table.sort(paths)
    for _, path in ipairs(paths) do add(path, pinned[path], step_of[path]) end
    local ids
    ids, err, code = model_ids(root)
    if not ids then return nil, err, code end
    for _, id in ipairs(ids) do out[#out + 1] = { hash = id, path = "model " .. id:sub(1, 12) } end
    return out
  end
  local steps = type(lock.steps) == "table" and lock.steps or {}
  for _, target in ipairs(targets) do
    local found = false
    -- A step: "name" or "pipeline/name".
    local pname, sname = target:match("^([^/]+)/([^/]+)$")
    for pn, section in pairs(steps) do
      for sn, entry in pairs(section) do
        if (sn == target or (pn == pname and sn == sname)) and type(entry.outs) == "table" then
          for path, r in pairs(entry.outs) do add((path:gsub("/$", "")), r) end
          found = true
        end
      end
    end
    if not found then
      local rel = artifacts.relpath(root, target)
      local above = rel and owner(pinned, rel)
      if above then
        add(above, pinned[above])
        found = true
      end
    end
    if not found and target:match("^[%w][%w_.%-]*[@:]?[%w_.%-]*$") then
      local reg = require("mlx.registry").open(root)
      if reg then
        local v = reg:get(target)
        reg:close()
        if v then
          out[#out + 1] = { hash = v.hash, type = v.type, size = v.size, path = "model " .. v.ref }
          found = true
        end
      end
    end
    if not found then
      return nil, ("%s is not a tracked path, a pipeline step or out in mlx.lock, nor a model"):format(target),
        "notfound"
    end
  end
  return out
end

-- Does the object id in store st look like a manifest? (The type of a
-- model version's object is not recorded where gc reads it.)
local function looks_like_manifest(st, id)
  local f = io.open(st:path(id), "rb")
  if not f then return false end
  local head = f:read(80) or ""
  f:close()
  return head:match("^%x+ %d+ [67][45][45] ") ~= nil and #head:match("^%x+") == 64
end

-- Expands records into the object ids they need (a directory: its
-- manifest and its files, read from the local store st). Returns the list
-- of {hash, size}, the set of ids, and where each id came from; records
-- whose manifest is not in st are listed in `unread`. With missing_only (a
-- fetch: true; a push: the set of ids the remote's index lists), a
-- directory brings into the list only the files the store lacks (a push:
-- that the index lacks); the ids of the others only enter the set, and
-- the fifth result counts them per manifest: no table per file when
-- nothing is to move.
local function expand(st, records, missing_only)
  local list, seen, from, unread, had = {}, {}, {}, {}, {}
  local function add(id, size, path)
    if not seen[id] then
      seen[id] = true
      from[id] = path
      list[#list + 1] = { hash = id, size = size or 0 }
    end
  end
  for _, r in ipairs(records) do
    add(r.hash, r.type ~= "dir" and r.size or nil, r.path)
    local dir = r.type == "dir" or (r.type == nil and st:has(r.hash) and looks_like_manifest(st, r.hash))
    if dir then
      if st:has(r.hash) then
        -- st:missing enters the ids the store has in seen, and counts
        -- those that were new there.
        local files, n_or_err, code
        if missing_only then
          files, n_or_err, code = st:missing(r.hash, seen, missing_only ~= true and missing_only or nil)
        else
          files, n_or_err, code = st:manifest(r.hash)
        end
        if not files then return nil, ("%s: %s"):format(r.path, n_or_err), code end
        for _, f in ipairs(files) do add(f.hash, f.size, r.path .. "/" .. f.path) end
        if missing_only then had[r.hash] = (had[r.hash] or 0) + n_or_err end
      else
        unread[#unread + 1] = r
      end
    end
  end
  return list, seen, from, unread, had
end

--- Returns nil if entry (decoded JSON) is a valid run-cache entry for key,
--- else why not (mlx.remote.runcache.entry_problem).
M.entry_problem = runcache.entry_problem

-- ---- push ----------------------------------------------------------------

-- Above this many objects missing from the index, one listing of the
-- remote costs less than asking for each.
local LIST_ABOVE = 1000

--- Sends what targets name (see M.records) to the remote: the objects the
--- remote's index lacks and, with opts.run_cache, the run-cache entries
--- (of deterministic steps) and their objects; then appends an index
--- segment. opts: {remote, targets, run_cache, jobs, dry_run, progress}.
--- Returns {remote, sent, present, bytes, runs (entries sent), missing =
--- {{hash, path}} (not in the local store), corrupt = {…}, todo (objects
--- to send: the dry-run's answer), warning}; or nil, message, code.
function M.push(root, opts)
  opts = opts or {}
  local h, err, code = M.open(root, opts.remote, opts)
  if not h then return nil, err, code end
  local records
  records, err, code = M.records(root, opts.targets)
  if not records then return nil, err, code end
  local runs = {}
  if opts.run_cache then
    runs = runcache.local_entries(root)
    for _, entry in pairs(runs) do
      for path, r in pairs(entry.outs) do records[#records + 1] = { hash = r.hash, type = r.type, size = r.size,
        path = path } end
    end
  end
  local st
  st, err, code = require("mlx.store").open(root)
  if not st then return nil, err, code end
  -- A step's out the store lacks (a step with cache = false keeps no copy)
  -- has nothing to send; its step makes it again wherever it is pulled.
  local unavailable, kept = {}, {}
  for _, r in ipairs(records) do
    if r.step and not st:has(r.hash) then
      unavailable[#unavailable + 1] = { path = r.path, step = r.step }
    else
      kept[#kept + 1] = r
    end
  end
  records = kept
  local idx
  idx, err, code = index.read(root, h.r, h.url)
  if not idx then
    st:close()
    return nil, err, code
  end
  -- Files the index already lists stay in C (counted, not listed).
  local list, _, from, unread, had = expand(st, records, idx.objects)
  st:close()
  if not list then return nil, _, from end
  local known = #list
  for _, n in pairs(had) do known = known + n end
  local result = { remote = h.name, sent = 0, present = 0, bytes = 0, runs = 0, missing = {}, corrupt = {},
    warning = idx.warning, objects = known, unavailable = unavailable }
  for _, r in ipairs(unread) do result.missing[#result.missing + 1] = { hash = r.hash, path = r.path } end
  local todo = {}
  for _, item in ipairs(list) do
    if not idx.objects[item.hash] then todo[#todo + 1] = item end
  end
  local check = false
  if #todo > 0 and not idx.listed then
    if #todo > LIST_ABOVE then
      local objects = index.list_remote(h.r)
      if objects then
        local left = {}
        for _, item in ipairs(todo) do
          if objects[item.hash] then result.present = result.present + 1 else left[#left + 1] = item end
        end
        todo = left
      else
        check = true
      end
    else
      check = true
    end
  end
  local new_runs = {}
  for key in pairs(runs) do
    if not idx.runs[key] then new_runs[#new_runs + 1] = key end
  end
  table.sort(new_runs)
  result.todo = #todo
  result.todo_runs = #new_runs
  if opts.dry_run then return result end
  local res
  res, err, code = h.r:push(root, todo, { check = check, progress = opts.progress })
  if not res then return nil, err, code end
  result.sent, result.bytes = res.sent, res.bytes
  result.present = result.present + res.present
  local bad = {}
  for _, id in ipairs(res.missing) do
    bad[id] = true
    result.missing[#result.missing + 1] = { hash = id, path = from[id] }
  end
  for _, id in ipairs(res.corrupt) do
    bad[id] = true
    result.corrupt[#result.corrupt + 1] = { hash = id, path = from[id] }
  end
  -- Entries go up only once every object they name is there.
  local pushed_runs = {}
  for _, key in ipairs(new_runs) do
    local complete = true
    for _, r in pairs(runs[key].outs) do
      if bad[r.hash] then complete = false end
    end
    if complete then
      local text = json.encode(runs[key]) .. "\n"
      local ok
      ok, err, code = h.r:write("runcache/" .. key .. ".json", text, root .. "/.mlx/tmp")
      if not ok then return nil, err, code end
      pushed_runs[#pushed_runs + 1] = key
    end
  end
  result.runs = #pushed_runs
  -- The segment names what the remote now holds that its index lacked.
  local objects = {}
  for _, item in ipairs(list) do
    if not idx.objects[item.hash] and not bad[item.hash] then objects[#objects + 1] = item.hash end
  end
  local ok
  ok, err, code = index.append(root, h.r, h.url, objects, pushed_runs)
  if not ok then return nil, err, code end
  h.r:close()
  return result
end

-- ---- fetch and pull -------------------------------------------------------

--- Brings into the store every object that targets name (see M.records)
--- and the store lacks — directories' manifests first, then their files —
--- each verified before the store takes it; with opts.run_cache, also the
--- remote's run-cache entries (checked as local ones) and their objects.
--- opts: {remote, targets, run_cache, jobs, dry_run, progress}. Returns
--- {remote, sent (objects fetched), present, bytes, runs (entries
--- fetched), missing = {{hash, path}} (on no remote), corrupt = {…},
--- refused = {{key, why}}, todo, warning, verified = {id = true} (the
--- objects fetched)}; or nil, message, code.
function M.fetch(root, opts)
  opts = opts or {}
  local h, err, code = M.open(root, opts.remote, opts)
  if not h then return nil, err, code end
  local records
  records, err, code = M.records(root, opts.targets)
  if not records then return nil, err, code end
  -- Objects are asked for by id, so only the run-cache needs the index: a
  -- no-op pull without it makes no request for the index at all.
  local idx = { objects = {}, runs = {} }
  if opts.run_cache then
    idx, err, code = index.read(root, h.r, h.url)
    if not idx then return nil, err, code end
  end
  local result = { remote = h.name, sent = 0, present = 0, bytes = 0, runs = 0, missing = {}, corrupt = {},
    refused = {}, todo = 0, warning = idx.warning, objects = 0, targeted = records, unavailable = {},
    verified = {} }
  -- Which step makes each object of a step's out (see M.records).
  local step_of_id = {}
  for _, r in ipairs(records) do
    if r.step then step_of_id[r.hash] = r.step end
  end
  if opts.run_cache and not opts.dry_run then
    local extra, written, refused = runcache.fetch(root, h.r, idx)
    if not extra then return nil, written, refused end
    records = table.move(records, 1, #records, 1, {})
    for _, r in ipairs(extra) do records[#records + 1] = r end
    result.runs, result.refused = #written, refused
  end
  local st
  st, err, code = require("mlx.store").open(root)
  if not st then return nil, err, code end
  local bad, asked, counted = {}, {}, {}
  local function transfer(list, from, had)
    -- Objects of manifests that the store has are counted, not listed.
    local known = #list
    for id, n in pairs(had) do
      known = known + n
      if not counted[id] then
        counted[id] = true
        result.present = result.present + n
      end
    end
    -- Each id is asked for once; the engine skips, in parallel, those the
    -- store has (a no-op is one pass over the ids, not one per round).
    local todo = {}
    for _, item in ipairs(list) do
      if not asked[item.hash] then
        asked[item.hash] = true
        todo[#todo + 1] = item
      end
    end
    result.objects = math.max(result.objects, known)
    if opts.dry_run then
      for _, item in ipairs(todo) do
        if not st:has(item.hash) then result.todo = result.todo + 1 end
      end
      return true
    end
    if #todo == 0 then return true end
    local res, terr, tcode = h.r:fetch(root, todo, { progress = opts.progress })
    if not res then return nil, terr, tcode end
    result.todo = result.todo + res.sent + #res.missing + #res.corrupt
    for id in pairs(res.verified) do result.verified[id] = true end
    result.sent, result.bytes = result.sent + res.sent, result.bytes + res.bytes
    result.present = result.present + res.present
    for _, id in ipairs(res.missing) do
      bad[id] = true
      if step_of_id[id] then
        result.unavailable[#result.unavailable + 1] = { path = from[id], step = step_of_id[id] }
      else
        result.missing[#result.missing + 1] = { hash = id, path = from[id] }
      end
    end
    for _, id in ipairs(res.corrupt) do
      bad[id] = true
      result.corrupt[#result.corrupt + 1] = { hash = id, path = from[id] }
    end
    return true
  end
  -- Two rounds: the first brings the manifests of directories, whose
  -- files the second can then name.
  for _ = 1, 2 do
    local list, _, from, unread, had = expand(st, records, true)
    if not list then
      st:close()
      return nil, _, from
    end
    local ok, terr, tcode = transfer(list, from, had)
    if not ok then
      st:close()
      return nil, terr, tcode
    end
    if #unread == 0 then break end
  end
  st:close()
  h.r:close()
  return result
end

--- Fetches (M.fetch) and then checks out what was fetched, so that the
--- workspace matches mlx.lock (mlx.artifacts.checkout). Returns the fetch
--- result with `changes` (checkout's list), or nil, message, code.
function M.pull(root, opts)
  local result, err, code = M.fetch(root, opts)
  if not result then return nil, err, code end
  if opts.dry_run then return result end
  local lock
  lock, err, code = lockfile.read(root)
  if not lock then return nil, err, code end
  local pinned = artifacts.pinned(lock)
  local paths, seen = {}, {}
  if opts.targets and #opts.targets > 0 then
    for _, r in ipairs(result.targeted) do
      if pinned[r.path] and not seen[r.path] then
        seen[r.path] = true
        paths[#paths + 1] = root .. "/" .. r.path
      end
    end
  end
  if opts.targets and #opts.targets > 0 and #paths == 0 then
    result.changes = {}
    return result
  end
  -- What the fetch verified as it arrived is copied without a second read.
  local copts = { jobs = opts.checkout_jobs, progress = opts.checkout_progress, force = opts.force,
    verified = result.verified }
  if #result.missing > 0 or #result.corrupt > 0 then
    -- Some objects did not come (reported by the fetch): check out path
    -- by path, leaving those that need them as they are.
    if #paths == 0 then
      for path in pairs(pinned) do paths[#paths + 1] = root .. "/" .. path end
    end
    table.sort(paths)
    result.changes = {}
    for _, path in ipairs(paths) do
      local changes
      changes, err, code = artifacts.checkout(root, { path }, copts)
      if not changes and code ~= "notfound" and code ~= "corrupt" then return nil, err, code end
      for _, c in ipairs(changes or {}) do result.changes[#result.changes + 1] = c end
    end
    return result
  end
  local changes
  changes, err, code = artifacts.checkout(root, paths, copts)
  if not changes then return nil, err, code end
  result.changes = changes
  return result
end

--- What is missing where, for targets (see M.records): {remote, local_missing
--- = {{hash, path}} (not in the store), remote_missing = {…} (not on the
--- remote, by its index), objects (counted)}; or nil, message, code.
function M.status(root, opts)
  opts = opts or {}
  local h, err, code = M.open(root, opts.remote, opts)
  if not h then return nil, err, code end
  local records
  records, err, code = M.records(root, opts.targets)
  if not records then return nil, err, code end
  local st
  st, err, code = require("mlx.store").open(root)
  if not st then return nil, err, code end
  local list, _, from = expand(st, records)
  if not list then
    st:close()
    return nil, _, from
  end
  local idx
  idx, err, code = index.read(root, h.r, h.url)
  if not idx then
    st:close()
    return nil, err, code
  end
  local result = { remote = h.name, local_missing = {}, remote_missing = {}, objects = #list, warning = idx.warning }
  for _, item in ipairs(list) do
    if not st:has(item.hash) then
      result.local_missing[#result.local_missing + 1] = { hash = item.hash, path = from[item.hash] }
    end
    if not idx.objects[item.hash] then
      result.remote_missing[#result.remote_missing + 1] = { hash = item.hash, path = from[item.hash] }
    end
  end
  st:close()
  h.r:close()
  return result
end

--- Compacts the index of the remote (mlx.remote.index.compact). Returns
--- its result with `remote`, or nil, message, code.
function M.compact(root, opts)
  opts = opts or {}
  local h, err, code = M.open(root, opts.remote, opts)
  if not h then return nil, err, code end
  local res
  res, err, code = index.compact(root, h.r, h.url)
  h.r:close()
  if not res then return nil, err, code end
  res.remote = h.name
  return res
end

return M
