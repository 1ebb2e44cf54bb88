--- mlx.gitignore: keeps tracked data and pipeline outs out of git, as
--- `dvc add` does, so that a clone has the pins (mlx.lock) and `mlx pull`
--- brings the bytes. mlx writes only inside a marked block of the
--- .gitignore of each path's directory:
---
---     # >>> mlx: tracked by mlx.lock (mlx maintains this block)
---     /iris.csv
---     # <<< mlx
---
--- Lines outside the block are the user's and are never changed.
local fs = require "mlx.fs"

local M = {}

M.BEGIN = "# >>> mlx: tracked by mlx.lock (mlx maintains this block)"
M.END = "# <<< mlx"

-- Splits text into the lines before the block, the block's entries and
-- the lines after it.
local function split(text)
  local before, entries, after, seen = {}, {}, {}, {}
  local where = before
  if text ~= "" and text:sub(-1) ~= "\n" then text = text .. "\n" end
  for line in text:gmatch("(.-)\n") do
    if line == M.BEGIN and where == before then
      where = entries
    elseif line == M.END and where == entries then
      where = after
    elseif where ~= entries or not seen[line] then
      where[#where + 1] = line
    end
    -- A block git merged with the union driver may list a path twice.
    if where == entries then seen[line] = true end
  end
  return before, entries, after
end

-- A gitignore pattern matching exactly name in its directory: special
-- characters escaped, anchored with a leading "/".
local function pattern(name)
  return "/" .. name:gsub("([%*%?%[%]\\!# ])", "\\%1")
end

-- The text of a .gitignore: before, mlx's block of entries (none when
-- there are no entries), after; without the final newline.
local function join(before, entries, after)
  local out = {}
  for _, l in ipairs(before) do out[#out + 1] = l end
  if #entries > 0 then
    out[#out + 1] = M.BEGIN
    for _, l in ipairs(entries) do out[#out + 1] = l end
    out[#out + 1] = M.END
  end
  for _, l in ipairs(after) do out[#out + 1] = l end
  return table.concat(out, "\n")
end

-- paths (relative to the root, no trailing "/") grouped by directory:
-- {dir ("" for the root) → {name…}}.
local function by_directory(paths)
  local by_dir = {}
  for _, path in ipairs(paths) do
    local dir, name = path:match("^(.*)/([^/]+)$")
    if not dir then dir, name = "", path end
    by_dir[dir] = by_dir[dir] or {}
    table.insert(by_dir[dir], name)
  end
  return by_dir
end

--- Adds an entry for each path (relative to root, no trailing "/") to the
--- block of the .gitignore in the path's directory, creating the file or
--- block when needed; a file whose block already lists the path is not
--- rewritten. Paths must have passed the path rule (lock.path_problem).
--- A .gitignore that is not the project's own regular file (a symbolic link,
--- or reached through one, as a clone may hold) is neither read nor
--- written: its paths are listed in skipped instead, for the caller to
--- report. Returns true, skipped ({message…}, possibly empty), or nil,
--- message, code.
function M.ensure(root, paths)
  local skipped = {}
  for dir, names in pairs(by_directory(paths)) do
    local rel = (dir == "" and "" or dir .. "/") .. ".gitignore"
    local file = root .. "/" .. rel
    local st = fs.check_parents(root, rel) and (fs.stat(file) or { type = "none" })
    if not st or st.type ~= "none" and st.type ~= "file" then
      local lines = {}
      for _, name in ipairs(names) do lines[#lines + 1] = pattern(name) end
      table.sort(lines)
      skipped[#skipped + 1] = ("%s is not a regular file of the project (a symbolic link, or below one); mlx"
        .. " leaves it alone: add %s to git's ignores yourself"):format(rel, table.concat(lines, " "))
    else
      local f = st.type == "file" and io.open(file, "rb")
      local text = f and f:read("a") or ""
      if f then f:close() end
      local before, entries, after = split(text)
      local have, added = {}, false
      for _, e in ipairs(entries) do have[e] = true end
      for _, name in ipairs(names) do
        local p = pattern(name)
        if not have[p] then
          entries[#entries + 1] = p
          have[p] = true
          added = true
        end
      end
      if added then
        table.sort(entries)
        local ok, err, code = fs.write(file, join(before, entries, after) .. "\n")
        if not ok then return nil, err, code end
      end
    end
  end
  table.sort(skipped)
  return true, skipped
end

-- Takes the entries in gone (patterns → true) out of mlx's block of the
-- .gitignore rel below root, if it is the project's own file. Returns true
-- or nil, message, code.
local function drop_from(root, rel, gone)
  local file = root .. "/" .. rel
  -- The paths may come from a lock made elsewhere: a .gitignore reached
  -- through a symbolic link, or one itself, is not the project's.
  local st = fs.check_parents(root, rel) and fs.stat(file)
  local f = st and st.type == "file" and io.open(file, "rb")
  if not f then return true end
  local before, entries, after = split(f:read("a"))
  f:close()
  local kept = {}
  for _, e in ipairs(entries) do
    if not gone[e] then kept[#kept + 1] = e end
  end
  if #kept == #entries then return true end
  local text = join(before, kept, after)
  if text ~= "" then return fs.write(file, text .. "\n") end
  local ok, err = os.remove(file)
  if not ok then return nil, err, "io" end
  return true
end

--- Removes the entry of each path (relative to root, no trailing "/") from
--- the block of the .gitignore in the path's directory; the user's lines are
--- kept, an emptied block goes, and a file left with nothing is removed.
--- Paths not listed are ignored. Returns true or nil, message, code.
function M.drop(root, paths)
  for dir, names in pairs(by_directory(paths)) do
    local gone = {}
    for _, name in ipairs(names) do gone[pattern(name)] = true end
    local ok, err, code = drop_from(root, (dir == "" and "" or dir .. "/") .. ".gitignore", gone)
    if not ok then return nil, err, code end
  end
  return true
end

return M
