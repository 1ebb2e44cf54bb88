--- mlx.artifacts: data tracked outside any pipeline — `mlx add`, `mlx
--- status`, `mlx checkout`. Files and directories are stored in the
--- project's object store (mlx.store) and pinned in the "artifacts" section
--- of mlx.lock (mlx.lock). Functions return nil, message, code on failure
--- ("invalid" and "notfound" are bad input; others failures of the world).
local fs = require "mlx.fs"
local lockfile = require "mlx.lock"
local project = require "mlx.project"

local M = {}

-- ---- paths --------------------------------------------------------------

local function dirname(p)
  return p:match("^(.*)/[^/]*$") or "."
end

local function basename(p)
  return p:match("([^/]*)$")
end

-- The physical path of abs without following its last component: the
-- nearest existing ancestor is resolved (symlinks and all), the rest kept.
local function physical(abs)
  if abs == "/" then return "/" end
  local parent = dirname(abs)
  if parent == "" then parent = "/" end
  local real = fs.realpath(parent)
  if not real then real = physical(parent) end
  return (real == "/" and "" or real) .. "/" .. basename(abs)
end

--- Returns the project-relative form of path (relative to the working
--- directory or absolute), or nil, message, "invalid" if it is outside the
--- project, is its root, or is inside .mlx/ or .git/.
function M.relpath(root, path)
  local abs = project.absolute(path)
  local real = abs == "/" and "/" or physical(abs)
  local real_root = fs.realpath(root) or root
  if real == real_root then
    return nil, ("%s is the project root; add the files or directories in it instead"):format(path), "invalid"
  end
  if real:sub(1, #real_root + 1) ~= real_root .. "/" then
    return nil, ("%s is outside the project %s"):format(path, root), "invalid"
  end
  local rel = real:sub(#real_root + 2)
  local top = rel:match("^[^/]+")
  if top == ".mlx" or top == ".git" or rel == lockfile.NAME then
    return nil, ("%s belongs to %s and cannot be tracked"):format(path, top == ".git" and "git" or "mlx"),
      "invalid"
  end
  return rel
end

--- Returns the key of set (a table keyed by project-relative paths) that is
--- rel or the nearest directory above it, or nil: the tracked artifact, or
--- the pinned path, that holds rel.
function M.owner(set, rel)
  local p = rel
  while p do
    if set[p] then return p end
    p = p:match("^(.*)/[^/]*$")
  end
end
local owner = M.owner

-- The pipeline out that rel is, lies in or contains, and its step
-- ("pipeline/step"), from M.pinned's step_of; nil when none: a path both
-- added and an out would have two records in mlx.lock, the staler winning.
local function out_overlap(step_of, rel)
  local above = owner(step_of, rel)
  if above then return above, step_of[above] end
  for out, step in pairs(step_of) do
    if out:sub(1, #rel + 1) == rel .. "/" then return out, step end
  end
  return nil
end

--- Returns what mlx.lock pins in the workspace: {path → record} of the
--- tracked artifacts and of every pipeline step's outs (paths without a
--- trailing "/"), {path → "pipeline/step"} naming the step of each out,
--- and {path → true} of the outs of steps the lock marks `"cache": false`,
--- which no store keeps. A path both tracked and an out is taken as tracked.
function M.pinned(current)
  local pinned, step_of, uncached = {}, {}, {}
  for pname, steps in pairs(type(current.steps) == "table" and current.steps or {}) do
    for sname, entry in pairs(steps) do
      for path, r in pairs(type(entry.outs) == "table" and entry.outs or {}) do
        local bare = path:gsub("/$", "")
        pinned[bare] = r
        step_of[bare] = pname .. "/" .. sname
        uncached[bare] = entry.cache == false or nil
      end
    end
  end
  for path, r in pairs(current.artifacts or {}) do
    pinned[path] = r
    step_of[path] = nil
    uncached[path] = nil
  end
  return pinned, step_of, uncached
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

-- ---- configuration --------------------------------------------------------

local function load_config(path)
  local chunk, err = loadfile(path, "t", {})
  if not chunk then
    if not fs.stat(path) then return {} end
    return nil, err
  end
  local ok, value = pcall(chunk)
  if not ok then return nil, path .. ": " .. tostring(value) end
  if type(value) ~= "table" then return nil, path .. ": must return a table" end
  return value
end

local LINKS = { copy = true, hardlink = true, symlink = true }

--- Returns the workspace link strategy of the project ("copy", "hardlink"
--- or "symlink": cache.link in .mlx/config.lua, overridden by
--- .mlx/config.local.lua), or nil, message, "invalid".
function M.link_strategy(root)
  local link = "copy"
  for _, name in ipairs({ "config.lua", "config.local.lua" }) do
    local path = root .. "/.mlx/" .. name
    local config, err = load_config(path)
    if not config then return nil, err, "invalid" end
    if type(config.cache) == "table" and config.cache.link ~= nil then link = config.cache.link end
  end
  if not LINKS[link] then
    return nil, ("%s/.mlx/config.lua: cache.link must be \"copy\", \"hardlink\" or \"symlink\", not %q")
      :format(root, tostring(link)), "invalid"
  end
  return link
end

-- opts.progress: a function for st:progress (mlx.progress), or nil.
local function open_store(root, opts)
  local st, err, code = require("mlx.store").open(root, { jobs = opts and opts.jobs })
  if st and opts and opts.progress then st:progress(opts.progress) end
  return st, err, code
end

-- The record pinned in the lock for what st:put or st:hash returned.
local function entry_of(info)
  if info.type == "dir" then
    return { type = "dir", hash = info.hash, size = info.size, files = info.files }
  end
  return { type = "file", hash = info.hash, size = info.size, mode = info.mode }
end
M.entry_of = entry_of

--- Returns the manifest line of a file at path (relative to its directory)
--- whose record f has hash, size and mode: "HASH SIZE MODE PATH\n", the
--- line a directory's manifest object holds (docs/design.md).
function M.manifest_line(f, path)
  return ("%s %d %s %s\n"):format(f.hash, f.size, f.mode, path)
end

local function same_entry(a, b)
  return a and b and a.type == b.type and a.hash == b.hash and (a.type == "dir" or a.mode == b.mode)
end

-- ---- add ------------------------------------------------------------------

--- Stores each path (files or directories, relative to the working
--- directory) and pins it in mlx.lock. A path inside a tracked directory
--- updates that directory's record with what the path holds now (its
--- other files keep their locked records) and reports the directory. opts: {jobs = n, link = strategy
--- (default: the project's)}. The objects are durable (one batch sync)
--- before the lock is written; the user's files are not changed, except
--- that with the hardlink or symlink strategy they are then replaced by
--- read-only links to their objects. Returns a list of {path, entry,
--- action = "added"|"updated"|"unchanged"} (its field warnings lists the
--- .gitignore files mlx.gitignore.ensure left alone) or nil, message, code.
function M.add(root, paths, opts)
  opts = opts or {}
  local link = opts.link
  if not link then
    local err, code
    link, err, code = M.link_strategy(root)
    if not link then return nil, err, code end
  end
  local current, err, code = lockfile.read(root)
  if not current then return nil, err, code end
  local tracked = current.artifacts or {}
  local _, step_of = M.pinned(current)
  -- Paths inside a tracked directory update its record: members[dir] are
  -- their paths relative to dir, in order.
  local rels, seen, members = {}, {}, {}
  for _, path in ipairs(paths) do
    local rel
    rel, err, code = M.relpath(root, path)
    if not rel then return nil, err, code end
    local st = fs.stat(root .. "/" .. rel)
    if not st then return nil, ("cannot add %s: no such file or directory"):format(path), "notfound" end
    if st.type == "link" then
      return nil, ("cannot add %s: it is a symbolic link; add the file or directory it points to"):format(path),
        "invalid"
    elseif st.type == "other" then
      return nil, ("cannot add %s: not a regular file or directory (fifo, socket or device)"):format(path),
        "invalid"
    end
    local above = owner(tracked, rel)
    if above and above ~= rel and tracked[above].type ~= "dir" then
      return nil, ("cannot add %s: %s is a tracked file"):format(path, above), "invalid"
    end
    local out, step = out_overlap(step_of, rel)
    if out then
      return nil, ("cannot add %s: %s is an out of step %s, which mlx.lock pins already; to track it by hand"
        .. " instead, 'mlx remove %s' first"):format(path, out, step, step), "invalid"
    end
    for other in pairs(seen) do
      if rel:sub(1, #other + 1) == other .. "/" or other:sub(1, #rel + 1) == rel .. "/" then
        return nil, ("cannot add both %s and %s: one contains the other"):format(other, rel), "invalid"
      end
    end
    if not seen[rel] then
      seen[rel] = true
      if above and above ~= rel then
        if not members[above] then
          members[above] = {}
          rels[#rels + 1] = above
        end
        local list = members[above]
        list[#list + 1] = rel:sub(#above + 2)
      else
        rels[#rels + 1] = rel
      end
    end
  end

  local st
  st, err, code = open_store(root, opts)
  if not st then return nil, err, code end
  local results = {}
  for _, rel in ipairs(rels) do
    local info
    if members[rel] then
      -- Only those files are hashed; the rest of the record comes from
      -- the locked manifest, line for line.
      info, err, code = st:put_members(rel, tracked[rel].hash, members[rel])
    elseif tracked[rel] and tracked[rel].type == "dir" then
      -- A tracked directory: what differs from its locked manifest, as
      -- the stat cache's tree tells, is all that is read.
      info, err, code = st:put(rel, tracked[rel].hash)
    else
      -- Tracked from now on: the commit records the store's shards, so
      -- that the next add of a changed file looks up none of the objects.
      info, err, code = st:put(rel, nil, { track = true })
    end
    if not info then
      st:close()
      return nil, "cannot add " .. rel .. ": " .. err, code
    end
    local entry = entry_of(info)
    local old = tracked[rel]
    results[#results + 1] = {
      path = rel, entry = entry,
      action = (not old and "added") or (same_entry(old, entry) and "unchanged") or "updated",
    }
  end
  local ok
  ok, err, code = st:commit()
  if not ok then
    st:close()
    return nil, err, code
  end
  if link ~= "copy" then
    for _, r in ipairs(results) do
      ok, err, code = M.link_workspace(st, r.path, r.entry, link)
      if not ok then
        st:close()
        return nil, err, code
      end
    end
  end
  local written
  written, err, code = lockfile.update(root, "artifacts", function(artifacts)
    for _, r in ipairs(results) do
      for path in pairs(artifacts) do
        if path:sub(1, #r.path + 1) == r.path .. "/" then artifacts[path] = nil end
      end
      artifacts[r.path] = r.entry
    end
  end)
  st:close()
  if not written then return nil, err, code end
  -- A hint for a later checkout of another commit, never a failure here.
  require("mlx.stalepins").remember(root, written)
  -- Tracked data stays out of git; mlx pull brings it to a clone.
  local ignored = {}
  for _, r in ipairs(results) do ignored[#ignored + 1] = r.path end
  local skipped
  written, skipped, code = require("mlx.gitignore").ensure(root, ignored)
  if not written then return nil, skipped, code end
  results.warnings = skipped
  return results
end

-- Replaces the workspace copy of a just-stored artifact by links.
function M.link_workspace(st, rel, entry, link)
  if entry.type == "file" then
    local parent = rel:match("^(.*)/[^/]*$") or ""
    return st:checkout(parent, { { path = basename(rel), hash = entry.hash, mode = entry.mode } }, link)
  end
  local files, err, code = st:manifest(entry.hash)
  if not files then return nil, err, code end
  return st:checkout(rel, files, link)
end

-- ---- status ---------------------------------------------------------------

-- The state of one tracked artifact in the workspace, using the stat cache.
-- For a modified directory, r.diff = {added, modified, deleted} (sorted
-- paths), r.locked and r.now: the locked and current records of the
-- changed files only (st:diff merges the two sorted lists in C, so a
-- directory of a million files with one changed makes one record); if its
-- locked manifest cannot be read, r.diff_err and r.diff_code say why.
local function inspect(st, root, rel, entry)
  local r = { path = rel, entry = entry }
  local s = fs.stat(root .. "/" .. rel)
  if not s then
    r.state = "missing"
    return r
  end
  if (entry.type == "dir") ~= (s.type == "directory") then
    r.state = "modified"
    r.reason = entry.type == "dir" and "not a directory any more" or "now a directory"
    return r
  end
  local info, d, derr, dcode
  if entry.type == "dir" then
    info, d, derr, dcode = st:diff(rel, entry.hash)
    if not info then d = d or derr end
  else
    info, d = st:hash(rel)
  end
  if not info then
    r.state = "error"
    r.reason = d
    return r
  end
  r.info = info
  if same_entry(entry, entry_of(info)) then
    r.state = "ok"
    return r
  end
  r.state = "modified"
  if entry.type == "file" then
    r.reason = entry.hash == info.hash and "mode changed" or nil
  elseif d then
    r.diff = { added = d.added, modified = d.modified, deleted = d.deleted }
    r.locked, r.now = d.locked, d.now
  else
    r.diff_err, r.diff_code = derr, dcode
  end
  return r
end

--- Returns the state of every tracked artifact (or of those named in
--- paths): a list sorted by path of {path, entry, state = "ok"|"modified"|
--- "missing"|"error", reason, diff = {added, modified, deleted} for
--- directories, cached = false when the locked object is not in the store},
--- with `unpinned`, the paths an earlier lock pinned that are left in the
--- workspace (mlx.stalepins.find); or nil, message, code. Unchanged files
--- are not read (stat cache).
function M.status(root, opts)
  opts = opts or {}
  local current, err, code = lockfile.read(root)
  if not current then return nil, err, code end
  local artifacts, step_of = M.pinned(current)
  local st
  st, err, code = open_store(root, opts)
  if not st then return nil, err, code end
  local results = {}
  for _, rel in ipairs(sorted_keys(artifacts)) do
    local r = inspect(st, root, rel, artifacts[rel])
    r.step = step_of[rel]
    if opts.diff == false then r.diff, r.locked, r.now, r.diff_err, r.diff_code = nil end
    r.cached = st:has(artifacts[rel].hash)
    results[#results + 1] = r
  end
  st:close()
  results.unpinned = require("mlx.stalepins").find(root, current)
  return results
end

-- ---- checkout -------------------------------------------------------------

local function remove_empty_parents(root, rel, stop)
  local p = rel:match("^(.*)/[^/]*$")
  while p and p ~= stop and p:sub(1, #stop + 1) == stop .. "/" do
    if not os.remove(root .. "/" .. p) then return end
    p = p:match("^(.*)/[^/]*$")
  end
end

-- Decides how to restore one artifact, changing nothing: returns a plan
-- {path, action, entry, files = entries to write, extra = paths to
-- remove}, or nil, message, code if it may not or cannot be done.
local function plan(st, root, rel, entry, opts)
  local r = inspect(st, root, rel, entry)
  if r.state == "ok" then return { path = rel, action = "unchanged" } end
  if r.state == "error" then return nil, r.reason, "invalid" end
  local s = fs.stat(root .. "/" .. rel)
  if s and (entry.type == "dir") ~= (s.type == "directory") then
    return nil, ("%s is %s in the workspace but a %s in mlx.lock; move it away and retry")
      :format(rel, s.type == "directory" and "a directory" or "a file", entry.type == "dir" and "directory" or "file"),
      "invalid"
  end
  local action = r.state == "missing" and "restored" or "updated"
  if entry.type == "file" then
    if r.info and not opts.force and not st:has(r.info.hash) then
      return nil, ("%s has local changes that are not stored; 'mlx add %s' to keep them, or checkout --force to discard them")
        :format(rel, rel), "invalid"
    end
    return {
      path = rel, action = action, dir = rel:match("^(.*)/[^/]*$") or "",
      files = { { path = basename(rel), hash = entry.hash, mode = entry.mode } }, extra = {},
    }
  end
  -- Nothing there to diff: every file of the manifest is checked out, by
  -- C reading it in pieces (st:checkout_manifest), never as a list; here it
  -- is only verified and counted.
  local err, code, nfiles
  if r.info then
    err, code = r.diff_err, r.diff_code
  else
    local n, merr, mcode = st:manifest_count(entry.hash)
    if n then nfiles = n else err, code = merr, mcode end
  end
  if err then
    if code == "corrupt" then st:quarantine(entry.hash) end
    if code == "notfound" then
      err = ("the objects of %s are not in the store; %s"):format(rel, require("mlx.remote.config").pull_hint(root))
    end
    return nil, err, code
  end
  if not r.info then
    return { path = rel, action = action, dir = rel, manifest = entry.hash, nfiles = nfiles, extra = {} }
  end
  local todo, extra = {}, {}
  local d, lk, cur = r.diff, r.locked, r.now
  for _, path in ipairs(d.modified) do todo[#todo + 1] = lk[path] end
  for _, path in ipairs(d.deleted) do todo[#todo + 1] = lk[path] end
  local unsafe = {}
  for _, path in ipairs(d.modified) do
    if not st:has(cur[path].hash) then unsafe[#unsafe + 1] = path end
  end
  for _, path in ipairs(d.added) do
    extra[#extra + 1] = path
    if not st:has(cur[path].hash) then unsafe[#unsafe + 1] = path end
  end
  if #unsafe > 0 and not opts.force then
    table.sort(unsafe)
    return nil, ("%s has local changes that are not stored (%s%s); 'mlx add %s' to keep them, or checkout --force to discard them")
      :format(rel, table.concat(unsafe, ", ", 1, math.min(#unsafe, 3)), #unsafe > 3 and ", …" or "", rel),
      "invalid"
  end
  return { path = rel, action = action, dir = rel, files = todo, extra = extra }
end

-- Carries out a plan; returns a change record, or nil, message, code.
local function apply(st, root, p, link, verified)
  if p.action == "unchanged" then return { path = p.path, action = "unchanged" } end
  local ok, err, code
  if p.manifest then
    ok, err, code = st:checkout_manifest(p.dir, p.manifest, link, verified)
  else
    ok, err, code = st:checkout(p.dir, p.files, link, verified)
  end
  if not ok then
    -- The store says "(mlx pull)"; name the remote it would come from.
    if code == "notfound" or code == "corrupt" then
      local hint = require("mlx.remote.config").pull_hint
      err = err:gsub("fetch it %(mlx pull%)", (hint(root, "it"):gsub("%%", "%%%%")))
      err = err:gsub("fetch a good copy %(mlx pull%)", (hint(root, "a good copy"):gsub("%%", "%%%%")))
    end
    return nil, err, code
  end
  for _, path in ipairs(p.extra) do
    ok, err, code = fs.remove_below(root, p.path .. "/" .. path)
    if not ok then return nil, err, code end
    remove_empty_parents(root, p.path .. "/" .. path, p.path)
  end
  return { path = p.path, action = p.action, files = p.nfiles or #p.files, removed = #p.extra }
end

--- Makes the workspace match mlx.lock for every tracked artifact and every
--- pipeline step's outs (M.pinned), or for those named in paths (relative
--- to the working directory). An out whose objects are not in the store
--- (its step has cache = false) is left alone, reported with action
--- "unavailable" and its step, unless named. A modified
--- file whose current content is not in the store is an untracked local
--- edit: it is refused ("invalid") unless opts.force. opts: {force, link,
--- jobs, verified}. Every object is verified as it is copied, except those
--- in opts.verified ({id = true} or an mlx.transfer.ids set: just
--- fetched and verified by this process, as mlx.remote.pull passes); a
--- corrupt one is moved to quarantine and reported ("corrupt"). Returns
--- a list of {path, action = "restored"|"updated"|"unchanged"|
--- "unavailable", files, removed, step},
--- or nil, message, code.
function M.checkout(root, paths, opts)
  opts = opts or {}
  local current, err, code = lockfile.read(root)
  if not current then return nil, err, code end
  local artifacts, step_of, uncached = M.pinned(current)
  local stalepins = require "mlx.stalepins"
  stalepins.remember(root, current)
  if not opts.link then
    opts.link, err, code = M.link_strategy(root)
    if not opts.link then return nil, err, code end
  end
  local targets = {}
  if paths and #paths > 0 then
    for _, path in ipairs(paths) do
      local rel
      rel, err, code = M.relpath(root, path)
      if not rel then return nil, err, code end
      local above = owner(artifacts, rel)
      if not above then return nil, ("%s is not tracked in mlx.lock"):format(path), "notfound" end
      targets[#targets + 1] = above
    end
  else
    targets = sorted_keys(artifacts)
  end
  local st
  st, err, code = open_store(root, opts)
  if not st then return nil, err, code end
  -- Every target is checked before anything is written, so a refusal
  -- leaves the whole workspace as it was.
  local plans, done, unavailable = {}, {}, {}
  for _, rel in ipairs(targets) do
    -- An out of a step with cache = false (or one never stored) cannot come
    -- from the store: unless named, it is left for its step to make again.
    -- Named, one the lock marks uncached says so rather than send the
    -- user to a pull that cannot bring it.
    local named = paths and #paths > 0
    if step_of[rel] and not done[rel] and (uncached[rel] or not named) and not st:has(artifacts[rel].hash)
      and inspect(st, root, rel, artifacts[rel]).state ~= "ok" then
      if named then
        st:close()
        return nil, ("%s is an out of step %s, which keeps no copy in the store (cache = false); run its recipe "
          .. "to make it"):format(rel, step_of[rel]), "notfound"
      end
      done[rel] = true
      unavailable[#unavailable + 1] = { path = rel, action = "unavailable", step = step_of[rel] }
    end
    if not done[rel] then
      done[rel] = true
      local p
      p, err, code = plan(st, root, rel, artifacts[rel], opts)
      if not p then
        st:close()
        return nil, err, code
      end
      plans[#plans + 1] = p
    end
  end
  local changes = {}
  for _, p in ipairs(plans) do
    local change
    change, err, code = apply(st, root, p, opts.link, opts.verified)
    if not change then
      st:close()
      return nil, err, code
    end
    changes[#changes + 1] = change
  end
  -- What a checkout of a whole lock leaves must match it, as git's does.
  if not (paths and #paths > 0) then
    for _, c in ipairs(stalepins.sweep(root, current, st)) do changes[#changes + 1] = c end
  end
  st:close()
  for _, u in ipairs(unavailable) do changes[#changes + 1] = u end
  return changes
end

return M
