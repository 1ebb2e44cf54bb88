-- mlx add: store files or directories and pin them in mlx.lock.
local artifacts = require "mlx.artifacts"
local project = require "mlx.project"
local ui = require "mlx.ui"

local function describe(entry)
  if entry.type == "dir" then
    return ("%d file%s, %s"):format(entry.files, entry.files == 1 and "" or "s", ui.format_size(entry.size))
  end
  return ui.format_size(entry.size)
end

-- The added paths that git has committed as well (they are in HEAD): the
-- .gitignore lines mlx writes do not untrack them, so git would go on
-- versioning their bytes beside mlx. Outside a git work tree, none.
local function committed_to_git(root, results)
  local repo = require("mlx.git").open(root)
  if not repo then return {} end
  local top = repo:root()
  local found = {}
  if root == top or root:sub(1, #top + 1) == top .. "/" then
    local prefix = root == top and "" or root:sub(#top + 2) .. "/"
    for _, r in ipairs(results) do
      -- A file in HEAD reads; a directory there is "invalid" to show.
      local content, _, code = repo:show("HEAD", prefix .. r.path)
      if content or code == "invalid" then found[#found + 1] = r.path end
    end
  end
  repo:close()
  return found
end

return {
  summary = "store files or directories and pin them in mlx.lock",
  usage = "mlx add [-j N] PATH...",
  description = [[
Copies each file or directory into the object store (.mlx/cache/objects/,
hashing the copy) and records its SHA-256 in the "artifacts" section of
mlx.lock; commit mlx.lock to git. A directory is recorded as the hash of its
manifest. The objects are made durable by one batch sync before mlx.lock is
written; the files in the workspace are left as they are (with the hardlink
or symlink link strategy of .mlx/config.lua they become read-only links to
the store). Unchanged files are not read again (stat cache, .mlx/state.db).

A PATH inside a tracked directory (mlx add data/images/img1.png) updates
that directory's record with what PATH holds now, a file or a directory:
only PATH is read, and the directory's other files keep their records in
mlx.lock as they are, even if they changed (mlx status still shows those).

A path that git has committed too (it is in HEAD) is stored all the same,
with a warning saying to untrack it in git (git rm -r --cached PATH, then
commit).

Refused, with the file named: paths outside the project, symbolic links,
fifos, sockets and devices, unreadable files, and a pipeline's out (or a
directory holding one, or a path inside one), which its step pins already. Exit 0 when all are stored, 2
on bad input, 1 if storing failed (e.g. a full disk: mlx.lock and the files
are then untouched).]],
  options = {
    require("mlx.cli").option("jobs", { help = "hash with N threads (default: one per CPU)" }),
  },
  args = { min = 1, name = "at least one PATH" },
  main = function(opts, paths)
    local root = project.require_root()
    local bar <close> = require("mlx.progress").new("adding")
    local results, err, code = artifacts.add(root, paths, { jobs = opts.jobs, progress = bar.report })
    bar:done()
    if not results then ui.fail(ui.exit_code_for(code), "%s", err) end
    for _, r in ipairs(results) do
      local shown = r.path .. (r.entry.type == "dir" and "/" or "")
      ui.out(("%-9s %s (%s)"):format(r.action, shown, describe(r.entry)))
    end
    for _, warning in ipairs(results.warnings or {}) do ui.warn(warning) end
    for _, path in ipairs(committed_to_git(root, results)) do
      -- git takes the path from where the user is, not from the project root.
      local here = project.relative(root .. "/" .. path, require("mlx.fs").cwd())
      ui.warn(("%s is committed to git too; untrack it there with 'git rm -r --cached %s' and commit"
        .. " (mlx.lock pins it, and .gitignore keeps it out of git from now on)"):format(path, here))
    end
    return ui.EXIT.OK
  end,
}
