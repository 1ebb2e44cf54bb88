--- mlx.pipeline.runcache: step key → the outs a successful run produced,
--- so that a step whose inputs come back to a state seen before is restored
--- from the store instead of run again. An entry is {"version": 1, "key",
--- "outs": {path → record}} (docs/artifacts.md). Entries are written in
--- segments, one file per checkpoint holding one entry per line:
--- .mlx/cache/runs/<time>-<sha256 of the text>.jsonl, where <time> is 12
--- hex digits of milliseconds, so names sort by age; a segment whose bytes
--- do not hash to its name (cut short by a crash) is skipped whole. It is
--- made durable by the store's batch sync together with the objects its
--- entries name. Files cost an inode each,
--- which ext4 makes expensive, so a thousand steps cost a few segments
--- rather than a thousand files. Entries of older mlx versions,
--- .mlx/cache/runs/<ab>/<key>.json, one file each, are still read; a
--- segment's entry is newer than such a file, and a later segment's than an
--- earlier one's.
local core = require "mlx.core"
local fs = require "mlx.fs"
local hash = require "mlx.hash"
local json = require "mlx.json"
local lock = require "mlx.lock"
local state = require "mlx.pipeline.state"

local M = {}

-- More segments than this are merged into one by the next write of a
-- process that has read them, so that reading the run-cache stays one
-- small number of files however many checkpoints made it.
local MERGE_ABOVE = 16

local function dir_of(root)
  return root .. "/.mlx/cache/runs"
end

local function legacy_path(root, k)
  return ("%s/%s/%s.json"):format(dir_of(root), k:sub(1, 2), k)
end

--- Whether name is a segment's file name; returns its hash part.
local function segment_hash(name)
  return name:match("^%x%x%x%x%x%x%x%x%x%x%x%x%-(%x+)%.jsonl$")
end

-- The segments read by this process, per project root: {names = {sorted
-- segment names read}, lines = {key → entry text, the newest}, legacy =
-- whether any <ab>/ directory of one-file entries exists}.
local indexes = {}

-- Reads every segment whose bytes hash to its name (one that does not, a
-- segment damaged by a crash before the store's sync, is skipped: its
-- entries are unusable, and the steps simply run), oldest first.
local function read_index(root)
  local index = { names = {}, lines = {}, legacy = false }
  local dir = dir_of(root)
  local names = fs.list(dir) or {}
  table.sort(names)
  for _, name in ipairs(names) do
    local h = segment_hash(name)
    if h then
      local f = io.open(dir .. "/" .. name, "rb")
      local text = f and f:read("a")
      if f then f:close() end
      if text and hash.bytes(text) == h then
        index.names[#index.names + 1] = name
        for line in text:gmatch("[^\n]+") do
          local k = line:match('"key"%s*:%s*"(%x+)"')
          if k then index.lines[k] = line end
        end
      end
    elseif #name == 2 and name:match("^%x%x$") then
      index.legacy = true
    end
  end
  return index
end

local function index_of(root)
  local index = indexes[root]
  if not index then
    index = read_index(root)
    indexes[root] = index
  end
  return index
end

--- Returns the entry of key k as decoded JSON (unchecked but for its key),
--- the newest one: from a segment, else from a one-file entry; nil when
--- there is none or it does not decode.
function M.entry(root, k)
  local index = index_of(root)
  local line = index.lines[k]
  local entry
  if line then
    local ok, decoded = pcall(json.decode, line)
    entry = ok and decoded or nil
  elseif index.legacy then
    entry = json.load(legacy_path(root, k))
  end
  if type(entry) ~= "table" or entry.key ~= k then return nil end
  return entry
end

--- Returns the outs {path → record} of the entry for key k when every object
--- they need is in the store; nil when there is no usable entry (none, a
--- damaged one, or objects gone — the step then simply runs). An entry is
--- data that may come from elsewhere (a pull, a crafted file): it must name
--- exactly the outs the step declares, each a path that passes the rule of
--- fs.check_path; one that names anything else is refused, with nil and a
--- message saying why (the step then runs, and nothing is restored).
function M.lookup(root, st, k, step)
  local entry = M.entry(root, k)
  if not entry or type(entry.outs) ~= "table" then return nil end
  local declared = {}
  for _, out in ipairs(step.outs) do declared[out] = true end
  for path in pairs(entry.outs) do
    if not declared[path] then
      return nil, ("run-cache entry %s names %s, which step '%s' does not declare; ignored")
        :format(k:sub(1, 12), tostring(path), step.name)
    end
  end
  local outs = {}
  for _, out in ipairs(step.outs) do
    local r = entry.outs[out]
    if type(r) ~= "table" or lock.entry_problem(r) or not st:has(r.hash) then return nil end
    outs[out] = r
  end
  return outs
end

--- Calls fn(key, entry) for every entry of the run-cache (the newest of
--- each key), entry as decoded JSON, unchecked; skips what does not
--- decode. Returns true, or nil, message, code when a one-file entry cannot
--- be read (gc must then stop rather than drop what it names).
function M.each(root, fn)
  local index = read_index(root)
  for k, line in pairs(index.lines) do
    local ok, entry = pcall(json.decode, line)
    if ok and type(entry) == "table" then fn(k, entry) end
  end
  if not index.legacy then return true end
  local dir = dir_of(root)
  for _, sub in ipairs(fs.list(dir) or {}) do
    if #sub == 2 and sub:match("^%x%x$") then
      for _, name in ipairs(fs.list(dir .. "/" .. sub) or {}) do
        local k = name:match("^(%x+)%.json$")
        if k and not index.lines[k] then
          local path = dir .. "/" .. sub .. "/" .. name
          local entry, err = json.load(path)
          if entry == nil then
            return nil, ("cannot read run-cache entry %s: %s; remove it and retry"):format(path, err), "invalid"
          end
          if type(entry) == "table" then fn(k, entry) end
        end
      end
    end
  end
  return true
end

-- Writes text as a new segment of the run-cache at root; returns its name,
-- or nil, message, code. The file is written under its final name, not
-- renamed into place: the name carries the hash of the bytes, so a segment
-- cut short (mlx killed while writing it) reads as damaged and is skipped,
-- and one temp name and rename fewer is one inode allocation fewer.
local function write_segment(root, text)
  local dir = dir_of(root)
  local ok, err, code = fs.mkdirs(dir)
  if not ok then return nil, err, code end
  local name = ("%012x-%s.jsonl"):format(math.floor(core.now_ms()), hash.bytes(text))
  local path = dir .. "/" .. name
  local f
  f, err = io.open(path, "wb")
  if not f then return nil, err, "io" end
  local wrote, werr = f:write(text)
  local closed, cerr = f:close()
  if not wrote or not closed then
    os.remove(path)
    return nil, ("cannot write %s: %s"):format(path, werr or cerr), "io"
  end
  return name
end

--- Writes the entries of a list {{key = k, outs = {path → record}}} as one
--- segment, without syncing: the store's next commit makes it durable with
--- the objects its entries name. When this process has read more than a
--- few segments, the new segment holds every entry they hold too, and
--- M.prune (after that commit) removes them. Returns true or nil, message,
--- code.
function M.write_many(root, entries)
  if #entries == 0 then return true end
  local index = indexes[root]
  local lines = {}
  for i, e in ipairs(entries) do
    lines[i] = json.encode({ version = 1, key = e.key, outs = json.object(e.outs) })
  end
  local merged
  if index and #index.names > MERGE_ABOVE then
    local fresh = {}
    for i, e in ipairs(entries) do fresh[e.key] = lines[i] end
    local keys = {}
    for k in pairs(index.lines) do
      if not fresh[k] then keys[#keys + 1] = k end
    end
    table.sort(keys)
    for _, k in ipairs(keys) do lines[#lines + 1] = index.lines[k] end
    merged = index.names
  end
  local name, err, code = write_segment(root, table.concat(lines, "\n") .. "\n")
  if not name then return nil, err, code end
  if index then
    for i, e in ipairs(entries) do index.lines[e.key] = lines[i] end
    if merged then
      index.merged = merged
      index.names = {}
    end
    index.names[#index.names + 1] = name
  end
  return true
end

--- Writes the entry for key k (outs: {path → record}), as M.write_many.
function M.write(root, k, outs)
  return M.write_many(root, { { key = k, outs = outs } })
end

--- Removes the segments that a write merged into a new one; call it once
--- that write is durable (after the store's commit), so that a crash
--- never loses the only copy of an entry. Other processes' segments are
--- never removed: only those this process read and merged.
function M.prune(root)
  local index = indexes[root]
  if not index or not index.merged then return end
  for _, name in ipairs(index.merged) do os.remove(dir_of(root) .. "/" .. name) end
  index.merged = nil
end

--- Forgets what this process read of the run-cache at root (another
--- process may have written since).
function M.forget(root)
  indexes[root] = nil
end

--- Puts the outs recorded in outs ({path → record}) back into the
--- workspace from the store st, replacing whatever is there; each object is
--- verified as it is copied. Returns true or nil, message, code.
function M.restore(root, st, outs, link)
  for path, r in pairs(outs) do
    local target = state.store_path(path)
    -- Removed and rewritten below the root without following a symlink.
    local ok, err, code = fs.remove_below(root, target)
    if not ok then return nil, err, code end
    local entries
    if r.type == "dir" then
      local files
      files, err, code = st:manifest(r.hash)
      if not files then return nil, err, code end
      entries = {}
      for i, f in ipairs(files) do
        entries[i] = { path = target .. "/" .. f.path, hash = f.hash, mode = f.mode }
      end
    else
      entries = { { path = target, hash = r.hash, mode = r.mode } }
    end
    ok, err, code = st:checkout("", entries, link)
    if not ok then return nil, err, code end
  end
  return true
end

return M
