--- mlx.pipeline.runcache: step key → the outs a successful run produced,
--- so that a step whose inputs come back to a state seen before is restored
--- from the store instead of run again. Entries are
--- .mlx/cache/runs/<ab>/<key>.json, {"version": 1, "key", "outs": {path →
--- record}} (docs/artifacts.md), made durable by the store's batch sync
--- together with the objects they name.
local fs = require "mlx.fs"
local json = require "mlx.json"
local lock = require "mlx.lock"
local state = require "mlx.pipeline.state"

local M = {}

local function entry_path(root, k)
  return ("%s/.mlx/cache/runs/%s/%s.json"):format(root, k:sub(1, 2), k)
end

--- Returns the outs {path → record} of the entry for key k when every object
--- they need is in the store; nil when there is no usable entry (none, a
--- damaged one, or objects gone — the step then simply runs). An entry is
--- data that may come from elsewhere (a pull, a crafted file): it must name
--- exactly the outs the step declares, each a path that passes the rule of
--- fs.check_path; one that names anything else is refused, with nil and a
--- message saying why (the step then runs, and nothing is restored).
function M.lookup(root, st, k, step)
  local entry = json.load(entry_path(root, k))
  if type(entry) ~= "table" or entry.key ~= k or type(entry.outs) ~= "table" then return nil end
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

--- Writes the entry for key k (outs: {path → record}) without syncing:
--- the store's next commit makes a batch of entries durable at once.
--- Returns true or nil, message, code.
-- Directories of entries made by this process: one mkdir walk each, not one
-- per entry.
local made = {}

function M.write(root, k, outs)
  local path = entry_path(root, k)
  local dir = path:match("^(.*)/")
  if not made[dir] then
    local ok, err, code = fs.mkdirs(dir)
    if not ok then return nil, err, code end
    made[dir] = true
  end
  local err
  local tmp = path .. ".tmp"
  local f
  f, err = io.open(tmp, "wb")
  if not f then return nil, err, "io" end
  local text = json.encode({ version = 1, key = k, outs = json.object(outs) }) .. "\n"
  local wrote, werr = f:write(text)
  local closed, cerr = f:close()
  if not wrote or not closed then
    os.remove(tmp)
    return nil, ("cannot write %s: %s"):format(path, werr or cerr), "io"
  end
  local renamed, rerr = os.rename(tmp, path)
  if not renamed then return nil, rerr, "io" end
  return true
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
