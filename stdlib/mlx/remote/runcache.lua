--- mlx.remote.runcache: run-cache entries crossing to and from a remote
--- (runcache/<key>.json there, mlx.pipeline.runcache's segments here). What
--- arrives is data: an entry must have the shape of a local one, with out
--- paths that pass mlx.lock's path rule and valid records, else it is
--- refused and not written.
local json = require "mlx.json"
local lockfile = require "mlx.lock"
local runcache = require "mlx.pipeline.runcache"

local M = {}

local is_id = lockfile.is_id

--- Returns nil if entry (decoded JSON) is a valid run-cache entry for key,
--- else why not: the rules of local entries (version, key, outs of valid
--- paths and records).
function M.entry_problem(entry, key)
  if type(entry) ~= "table" or entry.version ~= 1 or entry.key ~= key or type(entry.outs) ~= "table" then
    return "not a run-cache entry for its key"
  end
  for path, r in pairs(entry.outs) do
    if type(path) ~= "string" then return "an out that is not a path" end
    local problem = lockfile.path_problem((path:gsub("/$", "")))
    if problem then return problem end
    problem = lockfile.entry_problem(r)
    if problem then return ("%s: %s"):format(path, problem) end
  end
end

--- Returns the local run-cache entries {key → entry} that may be pushed:
--- valid ones, without those of steps mlx verify found non-deterministic
--- (marked in mlx.lock); and the keys left out, {key → "pipeline/step"}.
function M.local_entries(root)
  local lock = lockfile.read(root) or {}
  local skip = {}
  for pn, section in pairs(type(lock.steps) == "table" and lock.steps or {}) do
    for sn, entry in pairs(section) do
      if entry.deterministic == false and entry.key then skip[entry.key] = pn .. "/" .. sn end
    end
  end
  local runs = {}
  runcache.each(root, function(key, entry)
    if is_id(key) and not skip[key] and not M.entry_problem(entry, key) then runs[key] = entry end
  end)
  return runs, skip
end

--- Returns how many run-cache entries the index idx lists that this
--- project lacks (what a fetch would bring, for a dry run).
function M.missing(root, idx)
  local n = 0
  for key in pairs(idx.runs) do
    if M.entry_problem(runcache.entry(root, key), key) then n = n + 1 end
  end
  return n
end

--- Fetches the run-cache entries that the index idx lists and this
--- project lacks from the remote r (an mlx.transfer handle), each checked
--- as a local entry is (M.entry_problem) before it is written. Returns the
--- records of the outs of every listed entry, the keys written, and the
--- refused ones as {key, why}; or nil, message, code.
function M.fetch(root, r, idx)
  local records, written, refused, fetched = {}, {}, {}, {}
  local keys = {}
  for key in pairs(idx.runs) do keys[#keys + 1] = key end
  table.sort(keys)
  for _, key in ipairs(keys) do
    local entry = runcache.entry(root, key)
    if M.entry_problem(entry, key) then
      local text, err, code = r:read("runcache/" .. key .. ".json", 1 << 20)
      if not text then
        if code ~= "notfound" then return nil, err, code end
        entry = nil
      else
        local ok, decoded = pcall(json.decode, text)
        entry = ok and decoded or nil
        local problem = M.entry_problem(entry, key)
        if problem then
          refused[#refused + 1] = { key = key, why = problem }
          entry = nil
        else
          fetched[#fetched + 1] = { key = key, outs = entry.outs }
          written[#written + 1] = key
        end
      end
    end
    if entry then
      for out, r in pairs(entry.outs) do
        records[#records + 1] = { hash = r.hash, type = r.type, size = r.size, path = (out:gsub("/$", "")) }
      end
    end
  end
  -- One segment for every entry fetched, not a file each.
  local ok, err, code = runcache.write_many(root, fetched)
  if not ok then return nil, err, code end
  return records, written, refused
end

return M
