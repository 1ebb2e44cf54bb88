--- mlx.remote.index: what a remote holds, so that a push or pull with
--- nothing to do costs one listing of index/ whatever the number of
--- objects.
---
--- The index is append-only segments, index/<id>, one per push, each named
--- by the SHA-256 of its text, so two pushes at once write two segments and
--- neither is lost (WebDAV and S3 offer no conditional write):
---
---     mlx-index 1
---     o <object id>
---     r <run-cache key>
---
--- Segments already seen are kept in .mlx/cache/remotes/<id of the URL>/
--- and not read again. Beside the segments, index/bad-<id> marks an object
--- that a fetch found corrupt (or absent) although the index lists it: the
--- index is append-only, so this is how it stops claiming the object; a
--- push that sends a good copy again removes the mark. A segment whose bytes do not hash to its name, or
--- that does not parse, is damaged: the index is then not trusted and the
--- remote is listed instead (objects/ and runcache/), as when there is no
--- index. `mlx gc --remote` compacts the segments into one.
local fs = require "mlx.fs"
local hash = require "mlx.hash"
local lock = require "mlx.lock"

local M = {}

-- A set of ids in C (mlx.transfer.ids); the module is loaded on first use.
local function ids(list)
  return require("mlx.transfer").ids(list)
end

--- Lists prefix on the remote r (an mlx.transfer handle): {key → size}
--- (with as_ids, prefix "objects/": the ids of the objects, an
--- mlx.transfer.ids set), or nil, message, code after transport failures
--- were retried as the transfer engine retries (mlx.http's backoff: 0.5 s
--- doubling, with jitter, five times). The listing of index/ is the first
--- request of every command, and one 503 should not end a push; the engine
--- does not retry a listing itself, as its callback has seen part of it,
--- but here each try fills a new table or set.
function M.list(r, prefix, as_ids)
  local keys, err, code
  for attempt = 0, 5 do
    if as_ids then
      keys, err, code = r:list_objects(ids())
    else
      keys, err, code = r:list(prefix)
    end
    if keys or code ~= "io" then break end
    if attempt < 5 then require("mlx.core").sleep(math.min(0.5 * 2 ^ attempt, 60) * (0.5 + math.random() / 2)) end
  end
  return keys, err, code
end

--- The local directory of what is cached about the remote at url.
function M.cache_dir(root, url)
  return ("%s/.mlx/cache/remotes/%s"):format(root, hash.bytes(url):sub(1, 16))
end

--- Lists the remote (objects/ and runcache/): returns the ids of its
--- objects (an mlx.transfer.ids set, flat in C: a remote may hold
--- millions) and its run-cache keys ({key → true}); keys that are not an
--- object or a run-cache entry are ignored (they are data).
function M.list_remote(r)
  local runs = {}
  local objects, err, code = M.list(r, "objects/", true)
  if not objects then return nil, err, code end
  local keys
  keys, err, code = M.list(r, "runcache/")
  if not keys then return nil, err, code end
  for key in pairs(keys) do
    local k = key:match("^runcache/(%x+)%.json$")
    if k and lock.is_id(k) then runs[k] = true end
  end
  return objects, runs
end

--- Reads the index of the remote r (an mlx.transfer handle) at url:
--- {objects = the ids it holds (an mlx.transfer.ids set: objects:has(id)),
--- runs = {key → true}, segments = {names}, bad = {id → true} (marked by
--- M.mark_bad, and left out of objects),
--- listed = true when it came from a listing (exact), warning = text when
--- the index was damaged}; or nil, message, code.
function M.read(root, r, url)
  local keys, err, code = M.list(r, "index/")
  if not keys then return nil, err, code end
  return M.read_listed(root, r, url, keys)
end

--- As M.read, from keys, a listing of index/ already made ({key → size}).
function M.read_listed(root, r, url, keys)
  local err, code
  local dir = M.cache_dir(root, url) .. "/index"
  local idx = { objects = ids(), runs = {}, segments = {}, bad = {} }
  local damaged
  for key in pairs(keys) do
    local bad = key:match("^index/bad%-(%x+)$")
    if bad and lock.is_id(bad) then idx.bad[bad] = true end
    local name = key:match("^index/(%x+)$")
    if name and lock.is_id(name) then
      idx.segments[#idx.segments + 1] = name
      -- A cached segment is read in C, line by line: no Lua string of
      -- megabytes for an index of millions of objects.
      local path = dir .. "/" .. name
      local parsed = idx.objects:add_segment_file(path, idx.runs) -- nil: not cached
      if parsed == nil then
        local text
        text, err, code = r:read(key)
        if not text then
          if code ~= "notfound" then return nil, err, code end -- compacted meanwhile: ignore
        elseif hash.bytes(text) ~= name then
          damaged = key .. " does not match its name"
        else
          -- Cached first, then read as a cached segment is: one parser.
          local ok, werr, wcode = fs.mkdirs(dir)
          if ok then ok, werr, wcode = fs.write(path, text) end
          if not ok then return nil, werr, wcode end
          parsed = idx.objects:add_segment_file(path, idx.runs)
          if parsed == nil then damaged = key .. " could not be read back from " .. path end
        end
      end
      if parsed == false then damaged = key .. " does not parse" end
    end
  end
  if damaged or #idx.segments == 0 then
    local objects, runs, lcode = M.list_remote(r)
    if not objects then return nil, runs, lcode end
    idx.objects, idx.runs, idx.listed = objects, runs, true
    if damaged then idx.warning = ("the index of the remote is damaged (%s); listed the remote instead"):format(damaged) end
  end
  -- A corrupt object is listed too: the mark wins over segments and listings.
  if next(idx.bad) then
    local bad = {}
    for id in pairs(idx.bad) do bad[#bad + 1] = id end
    idx.objects = idx.objects:minus(ids(bad))
  end
  table.sort(idx.segments)
  return idx
end

--- Marks the object id as bad on the remote r (why: "corrupt" or
--- "missing"), so that every project's index stops counting it and the
--- next push that has a good copy sends it again. Returns true, or nil,
--- message, code (a remote that refuses writes, as read-only credentials).
function M.mark_bad(root, r, id, why)
  return r:write("index/bad-" .. id, why .. "\n", root .. "/.mlx/tmp")
end

--- Removes the mark of id (M.mark_bad), once a good copy was sent. Returns
--- true, or nil, message, code.
function M.clear_bad(r, id)
  return r:remove("index/bad-" .. id)
end

--- Appends a segment naming objects (an mlx.transfer.ids set or a list of
--- ids) and runs (a list of keys) to the remote and to the local cache.
--- Returns its name, or nil, message, code.
function M.append(root, r, url, objects, runs)
  if #objects == 0 and #runs == 0 then return true end
  if type(objects) == "table" then objects = ids(objects) end
  runs = table.move(runs, 1, #runs, 1, {})
  table.sort(runs)
  -- Written to a file line by line and sent from it: a segment of
  -- millions of objects is never a Lua string.
  local name, path, code = objects:write_segment(runs, root .. "/.mlx/tmp")
  if not name then return nil, path, code end
  local ok, err
  ok, err, code = r:put_file("index/" .. name, path)
  if not ok then
    os.remove(path)
    return nil, err, code
  end
  local dir = M.cache_dir(root, url) .. "/index"
  fs.mkdirs(dir)
  if not os.rename(path, dir .. "/" .. name) then os.remove(path) end
  return name
end

--- Compacts the index of the remote: one segment with everything the
--- remote holds (listed, so it is exact), then the segments it replaces are
--- removed. A push running meanwhile writes a segment of its own, which is
--- kept, and so are the marks of bad objects (a listing cannot tell a
--- corrupt object from a good one). An index that is one intact segment
--- already is left as it is (compacted = false): rewriting it would PUT the
--- whole index again and race other pushes for nothing. With dry_run, only
--- counts. Returns {before = number of segments, objects, runs, compacted}
--- or nil, message, code.
function M.compact(root, r, url, dry_run)
  local keys, err, code = M.list(r, "index/")
  if not keys then return nil, err, code end
  local before = 0
  for key in pairs(keys) do
    local segment = key:match("^index/(%x+)$")
    if segment and lock.is_id(segment) then before = before + 1 end
  end
  if before == 1 then
    -- Read from the local cache when this clone has seen it: no transfer.
    local idx
    idx, err, code = M.read_listed(root, r, url, keys)
    if not idx then return nil, err, code end
    if not idx.warning then
      local nruns = 0
      for _ in pairs(idx.runs) do nruns = nruns + 1 end
      return { before = 1, objects = #idx.objects, runs = nruns, compacted = false }
    end
  end
  local objects, runs, lcode = M.list_remote(r)
  if not objects then return nil, runs, lcode end
  local rl = {}
  for id in pairs(runs) do rl[#rl + 1] = id end
  if dry_run then return { before = before, objects = #objects, runs = #rl, compacted = true } end
  local name
  name, err, code = M.append(root, r, url, objects, rl)
  if not name then return nil, err, code end
  for key in pairs(keys) do
    local segment = key:match("^index/(%x+)$")
    if segment and lock.is_id(segment) and key ~= "index/" .. tostring(name) then
      local ok
      ok, err, code = r:remove(key)
      if not ok then return nil, err, code end
    end
  end
  return { before = before, objects = #objects, runs = #rl, compacted = true }
end

return M
