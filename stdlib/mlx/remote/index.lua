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

local HEADER = "mlx-index 1\n"

--- Lists prefix on the remote r (an mlx.transfer handle): {key → size}, or
--- nil, message, code after transport failures were retried as the
--- transfer engine retries (mlx.http's backoff: 0.5 s doubling, with
--- jitter, five times). The listing of index/ is the first request of every
--- command, and one 503 should not end a push; the engine does not retry a
--- listing itself, as its callback has seen part of it, but here each try
--- fills a new table.
function M.list(r, prefix)
  local keys, err, code
  for attempt = 0, 5 do
    keys, err, code = r:list(prefix)
    if keys or code ~= "io" then break end
    if attempt < 5 then require("mlx.core").sleep(math.min(0.5 * 2 ^ attempt, 60) * (0.5 + math.random() / 2)) end
  end
  return keys, err, code
end

--- The local directory of what is cached about the remote at url.
function M.cache_dir(root, url)
  return ("%s/.mlx/cache/remotes/%s"):format(root, hash.bytes(url):sub(1, 16))
end

-- One line of a segment: "o <id>" or "r <id>", lowercase hex.
local LINE = "([or]) (" .. ("[0-9a-f]"):rep(64) .. ")\n"
local LINE_LEN = 67

-- Parses a segment into the sets; returns true, or nil when a line is
-- not "o <id>" or "r <id>" (or the text does not end with a newline).
-- One pattern over the whole text, not a match per line: a no-op push or
-- pull reads 20,000 lines here. The matches cover the text exactly when
-- their count times the line length is its length, so nothing between
-- them was skipped. (A damaged segment may have added ids: the caller
-- then replaces the sets by a listing.)
local function parse(text, objects, runs)
  if text:sub(1, #HEADER) ~= HEADER or (#text - #HEADER) % LINE_LEN ~= 0 then return nil end
  local n = 0
  for kind, id in text:gmatch(LINE, #HEADER + 1) do
    n = n + 1
    if kind == "o" then objects[id] = true else runs[id] = true end
  end
  return n * LINE_LEN == #text - #HEADER or nil
end

--- Returns the text of a segment listing objects and runs (lists of ids).
function M.segment_text(objects, runs)
  local lines = { HEADER }
  table.sort(objects)
  table.sort(runs)
  for _, id in ipairs(objects) do lines[#lines + 1] = "o " .. id .. "\n" end
  for _, id in ipairs(runs) do lines[#lines + 1] = "r " .. id .. "\n" end
  return table.concat(lines)
end

--- Lists the remote (objects/ and runcache/) into the sets; keys that are
--- not an object or a run-cache entry are ignored (they are data).
function M.list_remote(r)
  local objects, runs = {}, {}
  local keys, err, code = M.list(r, "objects/")
  if not keys then return nil, err, code end
  for key in pairs(keys) do
    local a, b = key:match("^objects/(%x%x)/(%x+)$")
    if a and lock.is_id(a .. b) then objects[a .. b] = true end
  end
  keys, err, code = M.list(r, "runcache/")
  if not keys then return nil, err, code end
  for key in pairs(keys) do
    local k = key:match("^runcache/(%x+)%.json$")
    if k and lock.is_id(k) then runs[k] = true end
  end
  return objects, runs
end

--- Reads the index of the remote r (an mlx.transfer handle) at url:
--- {objects = {id → true}, runs = {key → true}, segments = {names},
--- bad = {id → true} (marked by M.mark_bad, and left out of objects),
--- listed = true when it came from a listing (exact), warning = text when
--- the index was damaged}; or nil, message, code.
function M.read(root, r, url)
  local keys, err, code = M.list(r, "index/")
  if not keys then return nil, err, code end
  local dir = M.cache_dir(root, url) .. "/index"
  local idx = { objects = {}, runs = {}, segments = {}, bad = {} }
  local damaged
  for key in pairs(keys) do
    local bad = key:match("^index/bad%-(%x+)$")
    if bad and lock.is_id(bad) then idx.bad[bad] = true end
    local name = key:match("^index/(%x+)$")
    if name and lock.is_id(name) then
      idx.segments[#idx.segments + 1] = name
      local path = dir .. "/" .. name
      local f = io.open(path, "rb")
      local text = f and f:read("a")
      if f then f:close() end
      if not text then
        text, err, code = r:read(key)
        if not text then
          if code ~= "notfound" then return nil, err, code end -- compacted meanwhile: ignore
        elseif hash.bytes(text) ~= name then
          damaged = key .. " does not match its name"
          text = nil
        else
          fs.mkdirs(dir)
          fs.write(path, text)
        end
      end
      if text and not parse(text, idx.objects, idx.runs) then damaged = key .. " does not parse" end
    end
  end
  if damaged or #idx.segments == 0 then
    local objects, runs, lcode = M.list_remote(r)
    if not objects then return nil, runs, lcode end
    idx.objects, idx.runs, idx.listed = objects, runs, true
    if damaged then idx.warning = ("the index of the remote is damaged (%s); listed the remote instead"):format(damaged) end
  end
  -- A corrupt object is listed too: the mark wins over segments and listings.
  for id in pairs(idx.bad) do idx.objects[id] = nil end
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

--- Appends a segment naming objects and runs (lists of ids) to the remote
--- and to the local cache. Returns its name, or nil, message, code.
function M.append(root, r, url, objects, runs)
  if #objects == 0 and #runs == 0 then return true end
  local text = M.segment_text(objects, runs)
  local name = hash.bytes(text)
  local ok, err, code = r:write("index/" .. name, text, root .. "/.mlx/tmp")
  if not ok then return nil, err, code end
  local dir = M.cache_dir(root, url) .. "/index"
  fs.mkdirs(dir)
  fs.write(dir .. "/" .. name, text)
  return name
end

--- Compacts the index of the remote: one segment with everything the
--- remote holds (listed, so it is exact), then the segments it replaces are
--- removed. A push running meanwhile writes a segment of its own, which is
--- kept, and so are the marks of bad objects (a listing cannot tell a
--- corrupt object from a good one). With dry_run, only counts. Returns
--- {before = number of segments, objects, runs} or nil,
--- message, code.
function M.compact(root, r, url, dry_run)
  local keys, err, code = M.list(r, "index/")
  if not keys then return nil, err, code end
  local objects, runs, lcode = M.list_remote(r)
  if not objects then return nil, runs, lcode end
  local ol, rl = {}, {}
  for id in pairs(objects) do ol[#ol + 1] = id end
  for id in pairs(runs) do rl[#rl + 1] = id end
  local before = 0
  for key in pairs(keys) do
    local segment = key:match("^index/(%x+)$")
    if segment and lock.is_id(segment) then before = before + 1 end
  end
  if dry_run then return { before = before, objects = #ol, runs = #rl } end
  local name
  name, err, code = M.append(root, r, url, ol, rl)
  if not name then return nil, err, code end
  for key in pairs(keys) do
    local segment = key:match("^index/(%x+)$")
    if segment and lock.is_id(segment) and key ~= "index/" .. tostring(name) then
      local ok
      ok, err, code = r:remove(key)
      if not ok then return nil, err, code end
    end
  end
  return { before = before, objects = #ol, runs = #rl }
end

return M
