--- mlx.stalepins: paths that an earlier mlx.lock of this clone pinned and
--- the current one does not. Git removes a file it tracked when a checkout
--- goes to a commit without it; data that mlx.lock pinned is ignored by git
--- only while that commit's .gitignore lists it, so after `git checkout` of
--- an older commit (or a switch to another branch) it stays behind,
--- untracked: `git add -A` would then commit the data itself. mlx remembers
--- every path pinned by a lock that `mlx add` or a recipe run wrote or that
--- a checkout placed (.mlx/state.db-pins, local state that git ignores), so
--- that `mlx status` names those left behind and `mlx checkout` removes the
--- ones whose bytes are in the store.
local fs = require "mlx.fs"
local json = require "mlx.json"

local M = {}

local FILE = "/.mlx/state.db-pins"

-- The remembered paths of each project root this process has read:
-- every lock write would otherwise read the file again.
local remembered_by_root = {}

local function remembered(root)
  local set = remembered_by_root[root]
  if set then return set end
  set = {}
  -- Local state, but a copied .mlx/ may bring it: every path passes the
  -- path rule, and a damaged file is only a memory lost.
  local doc = json.load(root .. FILE)
  if type(doc) == "table" and type(doc.paths) == "table" then
    for _, p in ipairs(doc.paths) do
      if type(p) == "string" and fs.check_path(p) then set[p] = true end
    end
  end
  remembered_by_root[root] = set
  return set
end

local function save(root, set)
  local list = {}
  for p in pairs(set) do list[#list + 1] = p end
  table.sort(list)
  return fs.write(root .. FILE, json.encode({ paths = json.array(list) }) .. "\n")
end

--- Remembers the paths lock pins in the project at root. Returns true, or
--- nil and why (the memory is a hint: callers go on without it).
function M.remember(root, lock)
  local set, added = remembered(root), false
  for path in pairs((require("mlx.artifacts").pinned(lock))) do
    if not set[path] then
      set[path], added = true, true
    end
  end
  if not added then return true end
  return save(root, set)
end

--- Forgets paths (a tracked path `mlx remove` gave back to the user, whose
--- file stays). Returns true, or nil and why.
function M.forget(root, paths)
  local set, dropped = remembered(root), false
  for _, path in ipairs(paths) do
    if set[path] then
      set[path], dropped = nil, true
    end
  end
  if not dropped then return true end
  return save(root, set)
end

-- True when path is pinned, lies inside a pinned path, or holds one.
local function overlaps(pinned, path)
  local p = path
  while p do
    if pinned[p] then return true end
    p = p:match("^(.*)/[^/]*$")
  end
  local prefix = path .. "/"
  for q in pairs(pinned) do
    if q:sub(1, #prefix) == prefix then return true end
  end
  return false
end

-- The subset of paths that git tracks in the repository holding root
-- (none without git, or outside a repository).
local function tracked_by_git(root, paths)
  local tracked = {}
  local okp, proc = pcall(require, "mlx.proc")
  if not okp then return tracked end
  local argv = { "git", "ls-files", "-z", "--", cwd = root, stdout = "capture", stderr = "null" }
  for _, p in ipairs(paths) do argv[#argv + 1] = ":(literal)" .. p end
  local ok, result = pcall(proc.run, argv)
  if not ok or not result then return tracked end
  for name in result.stdout:gmatch("([^%z]+)%z") do
    -- ls-files lists the files below a directory given.
    local p = name
    while p do
      tracked[p] = true
      p = p:match("^(.*)/[^/]*$")
    end
  end
  return tracked
end

--- Returns the sorted list of paths that an earlier lock pinned, that lock
--- (the current one) does not pin (nor a path above or below them), that
--- are in the workspace at root as a file or a directory (never through a
--- symbolic link) and that git does not track.
function M.find(root, lock)
  local pinned = require("mlx.artifacts").pinned(lock)
  local candidates = {}
  for path in pairs(remembered(root)) do
    if not overlaps(pinned, path) and fs.check_parents(root, path) then
      local st = fs.stat(root .. "/" .. path)
      if st and (st.type == "file" or st.type == "directory") then candidates[#candidates + 1] = path end
    end
  end
  if #candidates == 0 then return candidates end
  local tracked = tracked_by_git(root, candidates)
  local out = {}
  for _, path in ipairs(candidates) do
    if not tracked[path] then out[#out + 1] = path end
  end
  table.sort(out)
  return out
end

--- Removes, from the workspace at root, each path M.find gives whose bytes
--- the store st holds (a file's object, or every object of a directory's
--- manifest), so that nothing is lost: the lock that pinned it brings it
--- back with `mlx checkout`. Returns the list of {path, action = "removed"}
--- and {path, action = "left", reason} for those it left as they are.
function M.sweep(root, lock, st)
  local out = {}
  for _, path in ipairs(M.find(root, lock)) do
    local info, err = st:hash(path, { manifest = false })
    local stored = info and st:has(info.hash)
    if stored and info.type == "dir" then
      local missing = st:missing(info.hash, require("mlx.transfer").ids())
      stored = missing and #missing == 0
    end
    if not info then
      out[#out + 1] = { path = path, action = "left", reason = err }
    elseif not stored then
      out[#out + 1] = { path = path, action = "left", reason = "changed since, or never stored" }
    else
      local ok, rerr = fs.remove_below(root, path)
      out[#out + 1] = ok and { path = path, action = "removed" } or { path = path, action = "left", reason = rerr }
    end
  end
  return out
end

--- Returns the one-line warning for a change M.sweep left ("left").
function M.left_message(change)
  return ("%s: not pinned by this mlx.lock (an earlier one pinned it) and left as it is: %s; 'mlx add %s'"
    .. " to track it here, or delete it"):format(change.path, change.reason, change.path)
end

return M
