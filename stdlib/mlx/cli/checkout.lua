-- mlx checkout: make the workspace match mlx.lock.
local artifacts = require "mlx.artifacts"
local cli = require "mlx.cli"
local project = require "mlx.project"
local ui = require "mlx.ui"

return {
  summary = "restore tracked data and pipeline outs from the store to match mlx.lock",
  usage = "mlx checkout [--force] [-j N] [PATH...]",
  description = [[
Restores every tracked path and every pipeline step's out (or those named,
or the tracked directory containing a named path) that is missing or
differs from mlx.lock, copying
from the object store with the project's link strategy, and prints what it
changed. Every object is verified while it is copied; a corrupt one is moved
to .mlx/cache/quarantine/ and reported (exit 1), leaving the workspace file
as it was. A modified file whose content is not in the store (a local edit
never added) is not overwritten: the command stops with exit 2 unless
--force is given. Files in a tracked directory that mlx.lock does not list
are removed under the same rule.

Without PATH, the workspace is made to match mlx.lock as git's checkout
makes the work tree match a commit: a path that an earlier mlx.lock of
this clone pinned (a tracked path or a step's out, left behind by git
checkout or git switch to a commit that does not pin it) is removed when
its bytes are in the store, so that checking out the commit that pins it
brings it back ("removed   extra.bin"); one changed since, or one git
tracks, is left as it is, with a warning.]],
  options = {
    cli.option("force", { help = "overwrite local changes that are not in the store" }),
    cli.option("jobs", { help = "copy with N threads (default: one per CPU)" }),
  },
  main = function(opts, paths)
    local root = project.require_root()
    local bar <close> = require("mlx.progress").new("checking out")
    local changes, err, code = artifacts.checkout(root, paths, { force = opts.force, jobs = opts.jobs,
      progress = bar.report })
    bar:done()
    if not changes then ui.fail(ui.exit_code_for(code), "%s", err) end
    local changed = 0
    for _, c in ipairs(changes) do
      if c.action == "left" then
        ui.warn(require("mlx.stalepins").left_message(c))
      elseif c.action == "unavailable" then
        ui.warn(("%s: not in the store (an out of step %s, which is not cached); run its recipe to make it")
          :format(c.path, c.step))
      elseif c.action ~= "unchanged" then
        changed = changed + 1
        local detail = ""
        if c.removed and c.removed > 0 then
          detail = (" (%d file%s written, %d removed)"):format(c.files, c.files == 1 and "" or "s", c.removed)
        elseif c.files and c.files > 1 then
          detail = (" (%d files written)"):format(c.files)
        end
        ui.out(("%-9s %s%s"):format(c.action, c.path, detail))
      end
    end
    if changed == 0 then ui.note("the workspace already matches mlx.lock") end
    return ui.EXIT.OK
  end,
}
