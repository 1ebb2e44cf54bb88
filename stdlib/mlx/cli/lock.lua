-- mlx lock merge: merge mlx.lock across git branches (dvc git-hook's
-- merge driver, for mlx.lock).
local fs = require "mlx.fs"
local lock = require "mlx.lock"
local ui = require "mlx.ui"

-- Loads one side of a merge; exit 2 naming the file when it is no lock.
local function load_side(path)
  local doc, err, code = lock.load(path)
  if not doc then ui.fail(ui.exit_code_for(code), "%s", err) end
  return doc
end

-- The text of mlx.lock at a stage of git's index (1 base, 2 ours, 3
-- theirs) in the repository of root, or nil when that stage is absent.
local function stage(root, n)
  local result = require("mlx.proc").run({ "git", "show", (":%d:%s"):format(n, lock.NAME),
    cwd = root, stdout = "capture", stderr = "null" })
  return result and result.stdout or nil
end

-- Decodes a stage's text through lock.load, so that a side is checked as
-- a lock on disk is; the file is a temporary one in .mlx/tmp/.
local function load_stage(root, n, name)
  local text = stage(root, n)
  if not text then return nil end
  assert(fs.mkdirs(root .. "/.mlx/tmp"))
  local path = ("%s/.mlx/tmp/mlx.lock.%s"):format(root, name)
  local ok, err = fs.write(path, text)
  if not ok then ui.fail(ui.EXIT.FAILED, "%s", err) end
  local doc, lerr, code = lock.load(path)
  os.remove(path)
  if not doc then
    ui.fail(ui.exit_code_for(code), "%s (%s, git show :%d:%s)", lerr, name, n, lock.NAME)
  end
  return doc
end

local function report(conflicts, notes, where)
  for _, line in ipairs(notes) do ui.note(where .. ": " .. line) end
  for _, line in ipairs(conflicts) do ui.error(where .. ": " .. line) end
end

local function merge(_, args)
  local lockmerge = require "mlx.lockmerge"
  if #args == 3 then
    -- As git's merge driver: %O %A %B; the result replaces %A.
    local base = fs.stat(args[1]) and load_side(args[1]) or {}
    local ours, theirs = load_side(args[2]), load_side(args[3])
    -- git runs the driver at the top of the work tree, the project's root.
    local root = require("mlx.project").find_root()
    local merged, conflicts, notes = lockmerge.merge(base, ours, theirs, root and lockmerge.dir_merger(root))
    local ok, err = fs.write(args[2], lock.encode(merged))
    if not ok then ui.fail(ui.EXIT.FAILED, "%s", err) end
    report(conflicts, notes, lock.NAME)
    return #conflicts == 0 and ui.EXIT.OK or ui.EXIT.FAILED
  end
  if #args ~= 0 then ui.usage_error("mlx lock merge takes no argument, or three (BASE OURS THEIRS)") end
  local root = require("mlx.project").require_root()
  local ours = load_stage(root, 2, "ours")
  local theirs = load_stage(root, 3, "theirs")
  if not ours or not theirs then
    ui.usage_error("%s/%s is not in a git merge conflict (git has no %s side of it); nothing to merge",
      root, lock.NAME, ours and "theirs" or "our")
  end
  local base = load_stage(root, 1, "base") or {}
  local merged, conflicts, notes = lockmerge.merge(base, ours, theirs, lockmerge.dir_merger(root))
  local guard, gerr = fs.lock(root .. "/.mlx/tmp/mlx.lock.flock")
  if not guard then ui.fail(ui.EXIT.FAILED, "%s", gerr) end
  local ok, err = fs.write(lock.path(root), lock.encode(merged))
  guard:close()
  if not ok then ui.fail(ui.EXIT.FAILED, "%s", err) end
  report(conflicts, notes, lock.path(root))
  if #conflicts > 0 then return ui.EXIT.FAILED end
  ui.out(("merged %s; mark it resolved with 'git add %s', then 'mlx pull' and 'mlx recipe RECIPE'")
    :format(lock.NAME, lock.NAME))
  return ui.EXIT.OK
end

return {
  summary = "merge mlx.lock across git branches (git's merge driver for it)",
  description = [[
mlx.lock is JSON that git merges line by line, so two branches that pinned
different paths or re-ran different steps often conflict although nothing
is in conflict. mlx init makes git merge it with mlx lock merge instead;
see docs/git.md.]],
  subcommands = {
    {
      name = "merge",
      summary = "merge the two sides of mlx.lock entry by entry",
      usage = "mlx lock merge [BASE OURS THEIRS]",
      description = [[
Merges mlx.lock entry by entry: each tracked path, each step of each
pipeline. An entry one side changed takes that side; one both sides changed
alike is kept. A step both sides re-ran differently keeps ours (a note):
the next mlx recipe runs it again unless the merged deps and params are
ours. A tracked path both sides changed differently keeps ours and is a
conflict: one line names it and what to do, and the exit code is 1.

With three files, as git's merge driver runs it (mlx lock merge %O %A %B),
the result replaces OURS. Without arguments, in a merge that left mlx.lock
in conflict, the three sides are read from git's index and the result
replaces mlx.lock; 'git add mlx.lock' then marks it resolved. Exit 2 when a
side is not a valid lock, or mlx.lock is not in conflict.]],
      options = {},
      args = { max = 3, name = "BASE OURS THEIRS" },
      main = merge,
    },
  },
}
