-- mlx remove: stop tracking a path, a pipeline or a step (dvc remove).
local cli = require "mlx.cli"
local project = require "mlx.project"
local ui = require "mlx.ui"

return {
  summary = "stop tracking a path, a pipeline or a step: drop it from mlx.lock and .gitignore",
  usage = "mlx remove [--dry-run] TARGET...",
  description = [[
Removes each TARGET's entries from mlx.lock (in one atomic write) and their
lines from the .gitignore blocks mlx maintains, so git sees the files again.
A TARGET is a tracked path (as given to mlx add), a pipeline of mlx.lock
(its whole section: for a pipeline renamed or deleted from its recipe), or
one step ("train" or "pipeline/train"). The files in the workspace and the
objects in the store are left as they are: delete the files yourself if you
no longer want them, and mlx gc frees the objects that nothing pins. A step
its recipe still declares is run again by the next mlx recipe. A path that
another entry still pins keeps its .gitignore line. Exit 2, with nothing
changed, when a TARGET is not in mlx.lock.]],
  options = {
    cli.option("dry-run", { help = "say what would be removed; change nothing" }),
  },
  args = { min = 1, name = "at least one TARGET" },
  main = function(opts, targets)
    local root = project.require_root()
    local results, err, code = require("mlx.untrack").remove(root, targets, { dry_run = opts.dry_run })
    if not results then ui.fail(ui.exit_code_for(code), "%s", err) end
    local verb = opts.dry_run and "would remove" or "removed"
    for _, r in ipairs(results) do
      local outs = r.outs > 0 and (" (%d out%s)"):format(r.outs, r.outs == 1 and "" or "s") or ""
      ui.out(("%s %s%s"):format(verb, r.what, outs))
    end
    if not opts.dry_run then
      ui.note("the files stay in the workspace; commit mlx.lock and .gitignore, and 'mlx gc' frees the objects")
    end
    return ui.EXIT.OK
  end,
}
