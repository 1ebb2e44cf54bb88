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
local index = require "mlx.remote.index"
local json = require "mlx.json"
local lockfile = require "mlx.lock"
local runcache = require "mlx.remote.runcache"
local verify = require "mlx.remote.verify"

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

--- Returns the records ({hash, type = "file"|"dir"|nil, size, path}) that
--- targets name — tracked paths, pipeline steps ("step" or
--- "pipeline/step") or outs, models ("iris@production", "iris:3",
--- "iris") — or, without targets, everything mlx.lock pins plus every
--- registered model version; or nil, message, code ("notfound": a target
--- that is none of those).
function M.records(root, targets)
  local lock, err, code = lockfile.read(root)
  if not lock then return nil, err, code end
  local pinned, step_of, uncached = artifacts.pinned(lock)
  local out = {}
  local function add(path, r, step)
    out[#out + 1] = { hash = r.hash, type = r.type, size = r.size, path = path, step = step,
      uncached = step and uncached[path] }
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
    ids, err, code = require("mlx.track").model_artifact_ids(root)
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
      local above = rel and artifacts.owner(pinned, rel)
      if above then
        add(above, pinned[above])
        found = true
      end
    end
    if not found and target:match("^[%w][%w_.%-]*[@:]?[%w_.%-]*$") then
      local reg, rerr, rcode = require("mlx.registry").open(root)
      -- A reference to a model ("iris@production") whose registry cannot
      -- be read says why (a tracking database that does not answer), not
      -- that no such model exists.
      if not reg and target:find("[@:]") then return nil, ("%s: %s"):format(target, rerr), rcode end
      if reg then
        local v, verr = reg:get(target)
        reg:close()
        if v then
          out[#out + 1] = { hash = v.hash, type = v.type, size = v.size, path = "model " .. v.ref, model = v.ref,
            target = target }
          found = true
        elseif verr and verr:match("^model ") then
          -- The model is there, its alias or version is not: say which.
          return nil, ("%s: %s (see 'mlx model show %s')"):format(target, verr, target:match("^[^@:]+")),
            "notfound"
        end
      end
    end
    if not found then
      -- A registry in a SQLite file stays on the machine that registered
      -- the model: a fresh clone has none. Say so when a model is named.
      local t = target:find("[@:]") and require("mlx.track").tracking(root)
      local elsewhere = t and not t.postgresql and "; a model registered on another machine is in its .mlx/runs.db: "
        .. "share the registry with PostgreSQL tracking (docs/tracking.md, \"Backends\")" or ""
      return nil, ("%s is not a tracked path, a pipeline step or out in mlx.lock, nor a model of this project's "
        .. "registry (see 'mlx status' and 'mlx model ls')%s"):format(target, elsewhere),
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

-- Adds to want (an mlx.transfer.ids set: flat C memory, however many
-- files a directory holds) the object ids records need: a directory, its
-- manifest and its files, read from the local store st. Ids in the set
-- except (or nil) are not added but marked there (except:mark), so that a
-- push holds only what the remote's index lacks. Returns the records
-- whose manifest st lacks, or nil, message, code.
local function expand(st, records, want, except)
  local unread = {}
  for _, r in ipairs(records) do
    if not lockfile.is_id(r.hash) then
      return nil, ("%s: '%s' is not an object id"):format(r.path, tostring(r.hash)), "invalid"
    end
    if not (except and except:mark(r.hash)) then want:add(r.hash, r.type ~= "dir" and r.size or nil) end
    local dir = r.type == "dir" or (r.type == nil and st:has(r.hash) and looks_like_manifest(st, r.hash))
    if dir then
      if st:has(r.hash) then
        -- Read in pieces and verified in C: a manifest of millions of
        -- lines is never a Lua string.
        local ok, err, code = want:add_manifest_object(st:path(r.hash), r.hash, except)
        if not ok then
          if code ~= "corrupt" or err:find(r.hash, 1, true) then return nil, ("%s: %s"):format(r.path, err), code end
          return nil, ("%s: manifest %s: %s"):format(r.path, r.hash, err), code
        end
      else
        unread[#unread + 1] = r
      end
    end
  end
  return unread
end

-- Where each id of the list ids (few: those that failed) comes from, as
-- {id → path}: the first record, or file of a record's manifest in st,
-- that names it.
local function origins(st, records, ids)
  local from, wanted, left = {}, {}, 0
  for _, id in ipairs(ids) do
    if not wanted[id] then
      wanted[id] = true
      left = left + 1
    end
  end
  for _, r in ipairs(records) do
    if left == 0 then break end
    local function found(id, path)
      if wanted[id] and not from[id] then
        from[id] = path
        left = left - 1
      end
    end
    found(r.hash, r.path)
    if st:has(r.hash) and (r.type == "dir" or (r.type == nil and looks_like_manifest(st, r.hash))) then
      for _, f in ipairs(st:manifest(r.hash) or {}) do found(f.hash, r.path .. "/" .. f.path) end
    end
  end
  return from
end

-- As expand, into a list with where each id came from: for mlx status,
-- which names every missing object's path.
local function expand_paths(st, records)
  local list, seen, from, unread = {}, {}, {}, {}
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
        local files, err, code = st:manifest(r.hash)
        if not files then return nil, ("%s: %s"):format(r.path, err), code end
        for _, f in ipairs(files) do add(f.hash, f.size, r.path .. "/" .. f.path) end
      else
        unread[#unread + 1] = r
      end
    end
  end
  return list, seen, from, unread
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
--- segment. Objects marked bad on the remote (a fetch found them corrupt
--- or absent: mlx.remote.index.mark_bad) are sent again, overwriting what
--- is there, and their marks removed. With opts.verify the index is not
--- trusted: every object is asked for (size) and sent when absent or of
--- the wrong size. opts: {remote, targets, run_cache, jobs, dry_run, verify,
--- progress}. Returns {remote, sent, present, bytes, runs (entries sent),
--- repaired (bad objects sent again), nondeterministic = {"pipeline/step"}
--- (whose entries were left out), missing = {{hash, path}} (not in the
--- local store), corrupt = {…}, todo (objects to send: the dry-run's
--- answer), warning}; or nil, message, code.
function M.push(root, opts)
  opts = opts or {}
  local h, err, code = M.open(root, opts.remote, opts)
  if not h then return nil, err, code end
  local records
  records, err, code = M.records(root, opts.targets)
  if not records then return nil, err, code end
  local runs, nondeterministic = {}, {}
  if opts.run_cache then
    local skipped
    runs, skipped = runcache.local_entries(root)
    for _, step in pairs(skipped) do nondeterministic[#nondeterministic + 1] = step end
    table.sort(nondeterministic)
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
    if r.uncached or (r.step and not st:has(r.hash)) then
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
  local transfer = require "mlx.transfer"
  -- Without --verify, what the index lists is only counted (marked in
  -- idx.objects), never copied into want: a no-op push of 200,000 objects
  -- holds one set of them, not two.
  local want = transfer.ids()
  local unread
  unread, err, code = expand(st, records, want, not opts.verify and idx.objects or nil)
  st:close()
  if not unread then return nil, err, code end
  local result = { remote = h.name, sent = 0, present = 0, bytes = 0, runs = 0, missing = {}, corrupt = {},
    warning = idx.warning, objects = #want + (opts.verify and 0 or idx.objects:marked()),
    unavailable = unavailable, nondeterministic = nondeterministic }
  for _, r in ipairs(unread) do result.missing[#result.missing + 1] = { hash = r.hash, path = r.path } end
  -- Objects marked bad go again whatever the remote has under their key
  -- (the marks are few: a Lua list).
  local forced_list = {}
  for id in pairs(idx.bad) do
    if want:has(id) then forced_list[#forced_list + 1] = id end
  end
  table.sort(forced_list)
  local forced = transfer.ids(forced_list)
  -- What the index lacks (with --verify, which distrusts the index: all),
  -- sent now or found on the remote by a listing.
  local fresh = opts.verify and want:minus(idx.objects) or want
  local base = opts.verify and want or fresh
  local todo = #forced > 0 and base:minus(forced) or base
  -- Sets of 200,000 ids are megabytes of C memory that Lua's collector
  -- does not see: what is no longer needed is freed now.
  if todo ~= want and fresh ~= want then want:clear() end
  idx.objects:clear()
  local check = opts.verify or false
  if opts.verify and opts.dry_run then
    local items = {}
    for _, id in ipairs(todo:list()) do items[#items + 1] = { hash = id } end
    local absent, verr, vcode = verify.absent(root, h.r, items)
    if not absent then return nil, verr, vcode end
    todo = absent
  elseif #todo > 0 and not idx.listed and not opts.verify then
    if #todo > LIST_ABOVE then
      local objects = index.list_remote(h.r)
      if objects then
        local before = #todo
        todo = todo:minus(objects)
        result.present = result.present + before - #todo
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
  result.todo = #todo + #forced
  result.todo_runs = #new_runs
  result.runs_present = 0
  for _ in pairs(runs) do result.runs_present = result.runs_present + 1 end
  result.runs_present = result.runs_present - #new_runs
  result.repaired = 0
  if opts.dry_run then return result end
  local res
  res, err, code = h.r:push(root, todo, { check = check, progress = opts.progress })
  if not res then return nil, err, code end
  if #forced > 0 then
    local fres
    fres, err, code = h.r:push(root, forced, { progress = opts.progress })
    if not fres then return nil, err, code end
    local failed = {}
    for _, id in ipairs(fres.missing) do failed[id] = true end
    for _, id in ipairs(fres.corrupt) do failed[id] = true end
    for _, id in ipairs(forced_list) do
      if not failed[id] then
        local ok
        ok, err, code = index.clear_bad(h.r, id)
        if not ok then return nil, err, code end
        result.repaired = result.repaired + 1
      end
    end
    res.sent, res.bytes = res.sent + fres.sent, res.bytes + fres.bytes
    table.move(fres.missing, 1, #fres.missing, #res.missing + 1, res.missing)
    table.move(fres.corrupt, 1, #fres.corrupt, #res.corrupt + 1, res.corrupt)
  end
  result.sent, result.bytes = res.sent, res.bytes
  result.present = result.present + res.present
  local bad, from = {}, {}
  if #res.missing + #res.corrupt > 0 then
    st, err, code = require("mlx.store").open(root)
    if not st then return nil, err, code end
    from = origins(st, records, table.move(res.corrupt, 1, #res.corrupt, #res.missing + 1,
      table.move(res.missing, 1, #res.missing, 1, {})))
    st:close()
  end
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
  local objects = fresh
  if next(bad) then
    local bad_ids = {}
    for id in pairs(bad) do bad_ids[#bad_ids + 1] = id end
    objects = fresh:minus(require("mlx.transfer").ids(bad_ids))
  end
  local ok
  ok, err, code = index.append(root, h.r, h.url, objects, pushed_runs)
  if not ok then return nil, err, code end
  h.r:close()
  return result
end

-- ---- fetch and pull -------------------------------------------------------

-- For a dry run: adds to result.todo the files of the directories unread
-- (records whose manifest the store lacks) that the store lacks too,
-- reading each manifest from the remote r. A manifest that is absent or
-- does not match its id is not counted (the fetch would report it).
local function count_unread(r, st, unread, asked, result)
  for _, rec in ipairs(unread) do
    local text, err, code = r:read(("objects/%s/%s"):format(rec.hash:sub(1, 2), rec.hash:sub(3)), 1 << 30)
    if not text and code ~= "notfound" then return nil, err, code end
    if text and require("mlx.hash").bytes(text) == rec.hash then
      for line in text:gmatch("[^\n]+") do
        local id = line:match("^(%x+) ")
        if id and #id == 64 and not asked:has(id) and not st:has(id) then
          asked:add(id)
          result.todo = result.todo + 1
        end
      end
    end
  end
  return true
end

-- Marks on the remote the objects a fetch found corrupt, or absent though
-- its index lists them, so that the next push from any project that has
-- them sends them again (mlx.remote.index.mark_bad). A remote that refuses
-- the mark (read-only credentials) costs a warning, not the fetch.
local function mark_bad(root, r, idx, res, result)
  local marks = {}
  for _, id in ipairs(res.corrupt) do marks[#marks + 1] = { id, "corrupt" } end
  for _, id in ipairs(res.missing) do
    if idx.objects:has(id) then marks[#marks + 1] = { id, "missing" } end
  end
  for _, m in ipairs(marks) do
    local ok, err = index.mark_bad(root, r, m[1], m[2])
    if ok then
      result.marked = (result.marked or 0) + 1
    else
      result.warning = ("could not mark object %s bad on remote '%s' (%s); 'mlx push --verify' from a clone "
        .. "that has it sends it again"):format(m[1]:sub(1, 12), result.remote, err)
    end
  end
end

--- Brings into the store every object that targets name (see M.records)
--- and the store lacks — directories' manifests first, then their files —
--- each verified before the store takes it; with opts.run_cache, also the
--- remote's run-cache entries (checked as local ones) and their objects.
--- opts: {remote, targets, run_cache, jobs, dry_run, progress}. Returns
--- {remote, sent (objects fetched), present, bytes, runs (entries
--- fetched), missing = {{hash, path}} (on no remote), corrupt = {…},
--- refused = {{key, why}}, todo, warning, verified = an mlx.transfer.ids set (the
--- objects fetched)}; or nil, message, code.
function M.fetch(root, opts)
  opts = opts or {}
  local h, err, code = M.open(root, opts.remote, opts)
  if not h then return nil, err, code end
  local records
  records, err, code = M.records(root, opts.targets)
  if not records then return nil, err, code end
  -- Objects are asked for by id, so only the run-cache and a dry run need
  -- the index up front: a no-op pull without them makes no request for it.
  -- A fetch that finds objects absent reads it then, to mark those the
  -- index lists (mark_bad).
  local transfer = require "mlx.transfer"
  local idx = { objects = transfer.ids(), runs = {} }
  local function read_index()
    local got, rerr, rcode = index.read(root, h.r, h.url)
    if not got then return nil, rerr, rcode end
    idx = got
    return true
  end
  if opts.run_cache or opts.dry_run then
    local ok
    ok, err, code = read_index()
    if not ok then return nil, err, code end
  end
  local result = { remote = h.name, sent = 0, present = 0, bytes = 0, runs = 0, missing = {}, corrupt = {},
    refused = {}, todo = 0, warning = idx.warning, objects = 0, targeted = records, unavailable = {},
    verified = transfer.ids() }
  -- Which step makes each object of a step's out (see M.records). The
  -- outs of steps the lock marks uncached are never asked for: no remote
  -- has them, and a remote that is down must not fail a pull on them.
  local step_of_id, asked_records = {}, {}
  for _, r in ipairs(records) do
    if r.uncached then
      result.unavailable[#result.unavailable + 1] = { path = r.path, step = r.step }
    else
      if r.step then step_of_id[r.hash] = r.step end
      asked_records[#asked_records + 1] = r
    end
  end
  records = asked_records
  if opts.run_cache and not opts.dry_run then
    local extra, written, refused = runcache.fetch(root, h.r, idx)
    if not extra then return nil, written, refused end
    records = table.move(records, 1, #records, 1, {})
    for _, r in ipairs(extra) do records[#records + 1] = r end
    result.runs, result.refused = #written, refused
  elseif opts.run_cache then
    result.todo_runs = runcache.missing(root, idx)
  end
  local st
  st, err, code = require("mlx.store").open(root)
  if not st then return nil, err, code end
  local asked = transfer.ids()
  local function fetch(want, last)
    -- Each id is asked for once; the engine skips, in parallel, those the
    -- store has (a no-op is one pass over the ids, not one per round).
    -- What the last round asks is not kept, nor are sets once used: sets
    -- of 200,000 ids are megabytes of C memory that Lua's collector does
    -- not see.
    -- Before anything was asked (the first round), the set itself is
    -- asked for, not a copy: a no-op pull then holds one set of its ids.
    local todo = want
    if #asked > 0 then todo = want:minus(asked) end
    result.objects = math.max(result.objects, #want)
    if todo ~= want then want:clear() end
    if not last or opts.dry_run then asked:merge(todo) end
    if opts.dry_run then
      for _, id in ipairs(todo:list()) do
        -- A step's out the remote does not hold would be "not fetched".
        local passed = step_of_id[id] and not idx.objects:has(id)
        if not passed and not st:has(id) then result.todo = result.todo + 1 end
      end
      return true
    end
    if #todo == 0 then return true end
    local res, terr, tcode = h.r:fetch(root, todo, { progress = opts.progress })
    todo:clear()
    if not res then return nil, terr, tcode end
    result.todo = result.todo + res.sent + #res.missing + #res.corrupt
    if #result.verified == 0 then
      result.verified = res.verified
    else
      result.verified:merge(res.verified)
      res.verified:clear()
    end
    result.sent, result.bytes = result.sent + res.sent, result.bytes + res.bytes
    result.present = result.present + res.present
    local from = {}
    if #res.missing + #res.corrupt > 0 then
      from = origins(st, records, table.move(res.corrupt, 1, #res.corrupt, #res.missing + 1,
        table.move(res.missing, 1, #res.missing, 1, {})))
    end
    for _, id in ipairs(res.missing) do
      if step_of_id[id] then
        result.unavailable[#result.unavailable + 1] = { path = from[id], step = step_of_id[id] }
      else
        result.missing[#result.missing + 1] = { hash = id, path = from[id] }
      end
    end
    for _, id in ipairs(res.corrupt) do
      result.corrupt[#result.corrupt + 1] = { hash = id, path = from[id] }
    end
    if #res.missing > 0 and not idx.segments then
      local ok, ierr = read_index()
      if not ok then result.warning = ierr end
    end
    mark_bad(root, h.r, idx, res, result)
    return true
  end
  -- Two rounds: the first brings the manifests of directories, whose
  -- files the second can then name.
  for _ = 1, 2 do
    local want = transfer.ids()
    local unread, eerr, ecode = expand(st, records, want)
    local ok = unread ~= nil
    if ok then ok, eerr, ecode = fetch(want, #unread == 0) end
    if not ok then
      st:close()
      return nil, eerr, ecode
    end
    if #unread == 0 then break end
    if opts.dry_run then
      -- Nothing enters the store: read the directories' manifests from
      -- the remote to count their files.
      ok, eerr, ecode = count_unread(h.r, st, unread, asked, result)
      st:close()
      if not ok then return nil, eerr, ecode end
      return result
    end
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

--- What is missing where, for targets (see M.records), on the remote
--- opts.remote (else the default): {remote (its name), url, local_missing
--- = {{hash, path}} (not in the store), remote_missing = {{hash, path,
--- why}} (not on the remote by its index; why = "bad" when a fetch marked
--- it corrupt or absent there; with opts.verify, by a listing of the
--- remote instead, why = "missing" or "size"), objects (counted),
--- unavailable = {{path, step}} (step outs kept nowhere: their steps make
--- them)}; or nil, message, code.
function M.status(root, opts)
  opts = opts or {}
  local h, err, code = M.open(root, opts.remote, opts)
  if not h then return nil, err, code end
  local records
  records, err, code = M.records(root, opts.targets)
  if not records then return nil, err, code end
  local idx
  idx, err, code = index.read(root, h.r, h.url)
  if not idx then return nil, err, code end
  local st
  st, err, code = require("mlx.store").open(root)
  if not st then return nil, err, code end
  -- A step's out that neither the store nor the remote has (a step with
  -- cache = false keeps no copy) is neither unpushed nor unfetched: push
  -- and pull pass it by, and its step makes it again.
  local unavailable, kept = {}, {}
  for _, r in ipairs(records) do
    if r.uncached or (r.step and not st:has(r.hash) and not idx.objects:has(r.hash)) then
      unavailable[#unavailable + 1] = { path = r.path, step = r.step }
    else
      kept[#kept + 1] = r
    end
  end
  local list, _, from = expand_paths(st, kept)
  if not list then
    st:close()
    return nil, _, from
  end
  local result = { remote = h.name, url = h.url, local_missing = {}, remote_missing = {}, objects = #list,
    warning = idx.warning, verified = opts.verify or nil, unavailable = unavailable }
  for _, item in ipairs(list) do
    if not st:has(item.hash) then
      result.local_missing[#result.local_missing + 1] = { hash = item.hash, path = from[item.hash] }
    end
    if not opts.verify and not idx.objects:has(item.hash) then
      result.remote_missing[#result.remote_missing + 1] = { hash = item.hash, path = from[item.hash],
        why = idx.bad[item.hash] and "bad" or nil }
    end
  end
  st:close()
  if opts.verify then
    local absent
    absent, err, code = verify.absent(root, h.r, list)
    if not absent then return nil, err, code end
    local shown = {}
    for _, item in ipairs(absent) do
      shown[item.hash] = true
      result.remote_missing[#result.remote_missing + 1] = { hash = item.hash, path = from[item.hash], why = item.why }
    end
    -- A listing cannot see a corrupt object of the right size; a mark can.
    for _, item in ipairs(list) do
      if idx.bad[item.hash] and not shown[item.hash] then
        result.remote_missing[#result.remote_missing + 1] = { hash = item.hash, path = from[item.hash], why = "bad" }
      end
    end
  end
  h.r:close()
  return result
end

--- Compacts the index of the remote opts.remote (mlx.remote.index.compact;
--- with opts.dry_run, only counts). Returns its result with `remote`, or
--- nil, message, code.
function M.compact(root, opts)
  opts = opts or {}
  local h, err, code = M.open(root, opts.remote, opts)
  if not h then return nil, err, code end
  local res
  res, err, code = index.compact(root, h.r, h.url, opts.dry_run)
  h.r:close()
  if not res then return nil, err, code end
  res.remote = h.name
  return res
end

return M
