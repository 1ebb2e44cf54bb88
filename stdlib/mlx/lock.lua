--- mlx.lock: reading and writing mlx.lock, the committed file that pins the
--- hashes of tracked data (section "artifacts") and, with pipelines, of each
--- step (section "steps"). Every writer goes through M.update, which holds
--- an exclusive lock while it reads, changes one section and writes the
--- file back atomically with sorted keys, so concurrent mlx processes never
--- lose each other's changes and git diffs stay small. The format is in
--- docs/artifacts.md.
local fs = require "mlx.fs"
local json = require "mlx.json"

local M = {}

--- The format version this mlx writes and reads.
M.VERSION = 1

--- The file name, at the project root.
M.NAME = "mlx.lock"

local function is_id(s)
  return type(s) == "string" and #s == 64 and not s:find("[^0-9a-f]")
end
M.is_id = is_id

--- Returns nil if p may be written from data (relative to the project
--- root, '/'-separated, no ".", ".." or empty component, no trailing '/',
--- nothing under .git/ or .mlx/, not mlx.lock: fs.check_path, the one rule
--- of core/path.c), else a message "P: why".
function M.path_problem(p)
  if type(p) ~= "string" then return "path must be a string" end
  local ok, why = fs.check_path(p)
  if ok then return nil end
  return why
end

--- Returns nil if entry is a valid output record (as in the artifacts
--- section and the run-cache: {type = "file"|"dir", hash, size, mode (file),
--- files (dir)}), else a message saying what is wrong.
function M.entry_problem(e)
  if type(e) ~= "table" then return "not an object" end
  if e.type ~= "file" and e.type ~= "dir" then return "type must be \"file\" or \"dir\"" end
  if not is_id(e.hash) then return "hash must be 64 lowercase hex digits" end
  if math.type(e.size) ~= "integer" or e.size < 0 then return "size must be a non-negative integer" end
  if e.type == "file" and e.mode ~= "644" and e.mode ~= "755" then
    return "mode must be \"644\" or \"755\""
  end
  if e.type == "dir" and (math.type(e.files) ~= "integer" or e.files < 0) then
    return "files must be a non-negative integer"
  end
  return nil
end

local function validate_artifacts(section)
  if type(section) ~= "table" then return "\"artifacts\" must be an object" end
  for path, entry in pairs(section) do
    local why = M.path_problem(path)
    if why then return ("artifact %s"):format(why) end
    why = M.entry_problem(entry)
    if why then return ("artifact %q: %s"):format(path, why) end
  end
  return nil
end

--- Validators of the sections this mlx knows, by name: function(value) ->
--- nil if valid, else a message. Modules that own a section add theirs
--- (the pipeline: "steps"). Unknown sections are kept as they are.
M.sections = { artifacts = validate_artifacts }

--- Returns the path of the lock file of the project at root.
function M.path(root)
  return root .. "/" .. M.NAME
end

-- A lock is data from elsewhere: a name it holds may carry a newline or
-- another control character, which the one-line message shows escaped.
local function invalid(path, fmt, ...)
  local why = fmt:format(...):gsub("%c", function(c) return ("\\x%02x"):format(c:byte()) end)
  return nil, path .. ": " .. why ..
    "; fix it or restore it from git (git checkout -- " .. M.NAME .. ")", "invalid"
end

-- The line number of the first git conflict marker ("<<<<<<< ") in the
-- file at path, or nil. Asked only of a lock that is not valid JSON: during
-- a merge the usual advice, 'git checkout -- mlx.lock', is refused by git.
local function merge_conflict_line(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local n = 0
  for line in f:lines() do
    n = n + 1
    if line:sub(1, 8) == "<<<<<<< " or line == "<<<<<<<" then
      f:close()
      return n
    end
  end
  f:close()
  return nil
end

--- Reads and validates the lock file at path (any name: git's merge driver
--- is given temporary copies). Returns the lock as a table, or nil, a
--- message naming the file and the problem, and "invalid" (a corrupt lock;
--- one in a git merge conflict is named as such, with the commands that
--- resolve it) or an I/O code ("notfound" when there is no file).
function M.load(path)
  local doc, err, code = json.load(path)
  if doc == nil then
    if code == "invalid" then
      local conflict = merge_conflict_line(path)
      if conflict then
        return nil, ("%s:%d: unresolved git merge conflict; merge it with 'mlx lock merge',"
          .. " or take one side with 'git checkout --ours %s' or 'git checkout --theirs %s'"
          .. " and re-pin with 'mlx recipe RECIPE' or 'mlx add PATH'"):format(path, conflict, M.NAME, M.NAME),
          "invalid"
      end
      return nil, err .. "; fix it or restore it from git (git checkout -- " .. M.NAME .. ")", "invalid"
    end
    return nil, err, code
  end
  if type(doc) ~= "table" or getmetatable(doc) == getmetatable(json.array()) then
    return invalid(path, "not a JSON object")
  end
  if doc.version == nil then return invalid(path, "no \"version\" field") end
  if math.type(doc.version) ~= "integer" then return invalid(path, "\"version\" must be an integer") end
  if doc.version > M.VERSION then
    return nil, ("%s: format version %d is newer than this mlx reads (%d); upgrade mlx")
      :format(path, doc.version, M.VERSION), "invalid"
  end
  -- The pipeline registers the validator of "steps" when it loads; a
  -- command that never loads it (status, checkout, push, gc) must still
  -- refuse a malformed section rather than act on it.
  if doc.steps ~= nil and M.sections.steps == nil then require "mlx.pipeline.engine" end
  for name, check in pairs(M.sections) do
    if doc[name] ~= nil then
      local why = check(doc[name])
      if why then return invalid(path, "%s", why) end
    end
  end
  return doc
end

--- Reads and validates the lock of the project at root. Returns the lock
--- as a table ({version = 1} when there is no file yet), or nil, a message
--- naming the file and the problem, and "invalid" (a corrupt lock, which
--- the CLI reports with exit code 2; a lock in a git merge conflict is
--- named as such, with the commands that resolve it) or an I/O code.
function M.read(root)
  local path = M.path(root)
  if not fs.stat(path) then return { version = M.VERSION } end
  return M.load(path)
end

--- Returns the lock of the project at root as M.read does, and the SHA-256
--- of the bytes it was read from (nil when there is no file, or when the
--- file was replaced while being read: the table then matches no digest).
--- Fails as M.read.
function M.read_digest(root)
  local hash = require "mlx.hash" -- only the engine asks for digests
  local before = hash.file(M.path(root))
  local doc, err, code = M.read(root)
  if not doc then return nil, err, code end
  local after = hash.file(M.path(root))
  return doc, before == after and before or nil
end

--- Returns the text of lock as mlx.lock holds it: the version this mlx
--- writes, indent 2, sorted keys, a final newline.
function M.encode(lock)
  lock.version = M.VERSION
  -- A section made in Lua is an object even while empty; one read from the
  -- file keeps its kind (an unknown section may be an array).
  for _, value in pairs(lock) do
    if type(value) == "table" and getmetatable(value) == nil then json.object(value) end
  end
  return json.encode(lock, { indent = 2 }) .. "\n"
end

--- Writes lock to the project at root: atomically (temp file, fsync,
--- rename), sorted keys, indented. Returns true and the SHA-256 of the bytes
--- written, or nil, message, code.
function M.write(root, lock)
  -- Encoded here rather than by json.save so that the digest is of exactly
  -- these bytes.
  local text = M.encode(lock)
  local ok, err, code = fs.write(M.path(root), text)
  if not ok then return nil, err, code end
  return true, require("mlx.hash").bytes(text)
end

--- Changes the lock under an exclusive lock: reads it, calls fn(lock) with
--- the whole table (fn changes it in place), validates every known section
--- and writes the file once. Returns the new lock and the SHA-256 of the
--- bytes written, or nil, message, code (the file is then untouched).
--- last (optional) is the caller's memory of its previous update,
--- {lock = the table it returned, digest = its SHA-256}: while the file
--- still holds exactly those bytes, that table, validated when it was
--- written, is changed instead of the file being decoded and validated
--- again (half of a checkpoint of a 1,000-step pipeline). The update takes
--- the table out of last (last.lock = nil): the caller puts back what this
--- update returns, so a failed one leaves nothing that differs from the file.
function M.update_all(root, fn, last)
  local guard, err, code = fs.lock(root .. "/.mlx/tmp/mlx.lock.flock")
  if not guard then
    if code == "notfound" then
      assert(fs.mkdirs(root .. "/.mlx/tmp"))
      guard, err, code = fs.lock(root .. "/.mlx/tmp/mlx.lock.flock")
    end
    if not guard then return nil, err, code end
  end
  local lock
  local kept = last and last.lock
  if last then last.lock = nil end
  if kept and last.digest and require("mlx.hash").file(M.path(root)) == last.digest then
    lock = kept
  else
    lock, err, code = M.read(root)
  end
  if lock then
    local ok, problem = pcall(fn, lock)
    if not ok then
      guard:close()
      error(problem, 0)
    end
    for section, check in pairs(M.sections) do
      local why = lock[section] ~= nil and check(lock[section])
      if why then
        guard:close()
        error(("lock section %q: %s"):format(section, why), 2)
      end
    end
    local written, digest, wcode = M.write(root, lock)
    guard:close()
    if not written then return nil, digest, wcode end
    return lock, digest
  end
  guard:close()
  return nil, err, code
end

--- Changes one section under an exclusive lock: reads the lock, calls
--- fn(section) with the section's table (empty if absent; fn changes it in
--- place), validates and writes the file. Returns the new lock and the
--- SHA-256 of the bytes written, or nil, message, code (the file is then
--- untouched). last: as M.update_all's.
function M.update(root, section, fn, last)
  return M.update_all(root, function(lock)
    local value = lock[section] or {}
    fn(value)
    lock[section] = value
  end, last)
end

return M
