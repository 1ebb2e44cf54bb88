--- mlx.gc: what the object store must keep, and `mlx gc` / `mlx fsck`.
---
--- The objects to keep (the roots) come from a list of providers, each a
--- function(ctx) returning a list of records {hash, type = "file"|"dir"|nil}
--- or nil, message, code; a directory's manifest is read so that its files
--- are kept too. ctx = {root, store}. The providers:
---   lock            the "artifacts" section of mlx.lock (and any other
---                   section holding records with a "hash", e.g. "steps",
---                   less the outs of steps marked "cache": false)
---   run_cache       the entries of .mlx/cache/runs/ (mlx.pipeline.runcache):
---                   {"version": 1, "key": …, "outs": {path: record}}
---   model_versions  the artifact_hash column of the model_versions table of
---                   the tracking database (mlx.track.tracking): the SQLite
---                   file read directly, PostgreSQL asked through its backend
local fs = require "mlx.fs"
local lockfile = require "mlx.lock"

local M = {}

local is_id = lockfile.is_id

-- Collects every {hash, type} record below value (any depth), except
-- below a step's lock entry marked "cache": false: its outs are in no
-- store, so gc has nothing of theirs to keep and fsck none to miss.
local function collect_records(value, out, depth)
  if type(value) ~= "table" or depth > 8 or value.cache == false then return end
  if is_id(value.hash) then
    out[#out + 1] = { hash = value.hash, type = value.type }
  end
  for _, v in pairs(value) do collect_records(v, out, depth + 1) end
end

local function lock_roots(ctx)
  local lock, err, code = lockfile.read(ctx.root)
  if not lock then return nil, err, code end
  local out = {}
  for name, section in pairs(lock) do
    if name ~= "version" then collect_records(section, out, 0) end
  end
  return out
end

--- The run-cache directory of the project at root.
function M.run_cache_dir(root)
  return root .. "/.mlx/cache/runs"
end

local function run_cache_roots(ctx)
  local out = {}
  local ok, err, code = require("mlx.pipeline.runcache").each(ctx.root, function(_, entry)
    collect_records(entry.outs, out, 0)
  end)
  if not ok then return nil, err, code end
  return out
end

local function model_version_roots(ctx)
  -- The registry is in the tracking database mlx.track uses.
  local ids, err, code = require("mlx.track").model_artifact_ids(ctx.root)
  if not ids then return nil, err, code end
  local out = {}
  for _, id in ipairs(ids) do out[#out + 1] = { hash = id } end -- type unknown: probed
  return out
end

--- The providers, in order; a module that records object ids elsewhere
--- appends its own.
M.providers = {
  { name = "lock", roots = lock_roots },
  { name = "run_cache", roots = run_cache_roots },
  { name = "model_versions", roots = model_version_roots },
}

-- Is object id (of unknown type) a manifest? Manifests start with
-- "<64 hex> <digits> "; a data file could too, in which case keeping the
-- objects it happens to name only keeps more.
local function looks_like_manifest(st, id)
  local f = io.open(st:path(id), "rb")
  if not f then return false end
  local head = f:read(80) or ""
  f:close()
  return head:match("^%x+ %d+ [67][45][45] ") ~= nil and #head:match("^%x+") == 64
end

--- Returns the set of object ids to keep ({[id] = true}) gathered from
--- every provider, with the files of directories, or nil, message, code
--- (a provider failed or a manifest is unreadable: nothing may then be
--- deleted safely).
function M.roots(root, st)
  local keep = {}
  local ctx = { root = root, store = st }
  for _, provider in ipairs(M.providers) do
    local records, err, code = provider.roots(ctx)
    if not records then return nil, err, code end
    for _, r in ipairs(records) do
      if not keep[r.hash] then
        keep[r.hash] = true
        local dir = r.type == "dir" or (r.type == nil and st:has(r.hash) and looks_like_manifest(st, r.hash))
        if dir and st:has(r.hash) then
          local files
          files, err, code = st:manifest(r.hash)
          if not files then
            return nil, ("cannot read the manifest %s (%s): %s; run mlx fsck"):format(r.hash, provider.name, err),
              code
          end
          for _, f in ipairs(files) do keep[f.hash] = true end
        end
      end
    end
  end
  return keep
end

local function open_exclusive(root)
  local st, err, code = require("mlx.store").open(root, { exclusive = true, wait = false })
  if not st and code == "busy" then
    err = "another mlx process is using the store; run mlx gc again when it has finished"
  end
  return st, err, code
end

-- A symbolic link in the store, where a shard directory or an object should
-- be, is listed by st:objects() under its name below objects/ ("ab" or
-- "ab/cdef…"), never an id: it is not an object, and no store function
-- follows it.
local function is_link_entry(o)
  return not is_id(o.id)
end

-- Removes (with dry_run only counts) the events files that steps of
-- pipelines wrote (.mlx/tmp/events-<run id>.jsonl) and no engine ingested
-- and removed: its mlx was killed, or its database failed. Called only
-- while gc holds the store exclusively: every engine holds it shared for its
-- whole run, so no live mlx of this project can own one of these files.
-- Returns how many.
local function remove_stale_events(root, dry_run)
  local dir = root .. "/.mlx/tmp"
  local n = 0
  for _, name in ipairs(fs.list(dir) or {}) do
    if name:match("^events%-.+%.jsonl$") and (dry_run or os.remove(dir .. "/" .. name)) then n = n + 1 end
  end
  return n
end

--- Deletes the objects no provider refers to, every symbolic link in the
--- store (the link itself, never what it points to: a link is not an
--- object, whatever its name) and the events files of steps whose mlx died;
--- with opts.dry_run only lists them. Holds the store exclusively (fails
--- with "busy" if another mlx process has it open). Returns {removed =
--- {{id, size}…}, bytes, kept = n, links = {name…}, events = n} (names below
--- .mlx/cache/objects/), or nil, message, code.
function M.gc(root, opts)
  opts = opts or {}
  local st, err, code = open_exclusive(root)
  if not st then return nil, err, code end
  local keep
  keep, err, code = M.roots(root, st)
  local objects = keep and st:objects()
  if not objects then
    st:close()
    return nil, err, code
  end
  local result = { removed = {}, bytes = 0, kept = 0, links = {},
    events = remove_stale_events(root, opts.dry_run) }
  for _, o in ipairs(objects) do
    local link = is_link_entry(o)
    if not link and keep[o.id] then
      result.kept = result.kept + 1
    else
      if not opts.dry_run then
        local ok
        ok, err, code = st:remove(o.id) -- a link: the link itself
        if not ok then
          st:close()
          return nil, err, code
        end
      end
      if link then
        result.links[#result.links + 1] = o.id
      else
        result.removed[#result.removed + 1] = o
        result.bytes = result.bytes + o.size
      end
    end
  end
  st:close()
  return result
end

--- Re-hashes every object; moves the corrupt or truncated ones to
--- .mlx/cache/quarantine/ so that the next checkout or pull fetches a good
--- copy, and lists the objects the lock refers to that are missing. A
--- symbolic link in the store is not an object: it is listed in links
--- (its name below .mlx/cache/objects/), never followed nor moved (mlx gc
--- removes it), and an object only a link stands for counts as missing.
--- Returns {checked = n, corrupt = {{id, size, got}…}, missing = {id…},
--- links = {name…}}, or nil, message, code.
function M.fsck(root, opts)
  local st, err, code = require("mlx.store").open(root, { jobs = opts and opts.jobs })
  if not st then return nil, err, code end
  if opts and opts.progress then st:progress(opts.progress) end
  local checked, bad = st:check()
  if not checked then
    st:close()
    return nil, bad, code
  end
  local corrupt, links = {}, {}
  for _, b in ipairs(bad) do
    if is_link_entry(b) then
      links[#links + 1] = b.id
    else
      local ok
      ok, err, code = st:quarantine(b.id)
      if not ok then
        st:close()
        return nil, err, code
      end
      corrupt[#corrupt + 1] = b
    end
  end
  local missing = {}
  local records
  records, err, code = lock_roots({ root = root })
  if not records then
    st:close()
    return nil, err, code
  end
  local seen = {}
  for _, r in ipairs(records) do
    if not seen[r.hash] then
      seen[r.hash] = true
      if not st:has(r.hash) then
        missing[#missing + 1] = r.hash
      elseif r.type == "dir" then
        for _, f in ipairs(st:manifest(r.hash) or {}) do
          if not seen[f.hash] and not st:has(f.hash) then missing[#missing + 1] = f.hash end
          seen[f.hash] = true
        end
      end
    end
  end
  table.sort(missing)
  st:close()
  return { checked = checked - #links, corrupt = corrupt, missing = missing, links = links }
end

return M
