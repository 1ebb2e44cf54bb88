-- mlx pull: fetch from a remote, then check out.
local cli = require "mlx.cli"
local project = require "mlx.project"

return {
  summary = "fetch pinned objects from a remote, then make the workspace match mlx.lock",
  usage = "mlx pull [TARGET...] [-r NAME] [--run-cache] [-j N] [--force] [--dry-run]",
  description = [[
mlx fetch, then mlx checkout of the same TARGETs (all of mlx.lock without
one): fetches every pinned object the store lacks, whether or not the
workspace file already matches, then restores what is missing or differs.
In a fresh clone, 'mlx pull --run-cache' then 'mlx recipe RECIPE' executes
nothing that was pushed. A local edit that is not stored is not overwritten
unless --force.]],
  options = {
    cli.option("remote"),
    cli.option("run-cache"),
    cli.option("jobs", { help = "N transfers at once (default: 8)" }),
    cli.option("force", { help = "overwrite local changes that are not in the store" }),
    cli.option("dry-run", { help = "print how many objects would be fetched" }),
  },
  main = function(opts, targets)
    local root = project.require_root()
    return require("mlx.remote.report").run("pull", require("mlx.remote").pull, root, {
      remote = opts.remote, targets = targets, run_cache = opts.run_cache, jobs = opts.jobs,
      dry_run = opts.dry_run, force = opts.force,
    })
  end,
}
