-- mlx fetch: bring objects from a remote into the store.
local cli = require "mlx.cli"
local project = require "mlx.project"

return {
  summary = "bring pinned objects (and with --run-cache, run-cache entries) from a remote into the store",
  usage = "mlx fetch [TARGET...] [-r NAME] [--run-cache] [-j N] [--dry-run]",
  description = [[
Brings into the store (.mlx/cache/) every object that TARGETs need and the
store lacks, from the remote (-r NAME, else the default), without touching
the workspace (mlx pull also checks out). TARGETs are as for mlx push;
without one, everything mlx.lock pins. Every download is hashed before the
store takes it: an object whose bytes do not match its id is reported by
name and never used. With --run-cache, also the remote's run-cache entries,
each checked as a local one (valid paths and records only), and their
objects. Exit 1 when an object is not on the remote or is corrupt there.]],
  options = {
    cli.option("remote"),
    cli.option("run-cache"),
    cli.option("jobs", { help = "N transfers at once (default: 8)" }),
    cli.option("dry-run", { help = "print how many objects would be fetched" }),
  },
  main = function(opts, targets)
    local root = project.require_root()
    return require("mlx.remote.report").run("fetch", require("mlx.remote").fetch, root, {
      remote = opts.remote, targets = targets, run_cache = opts.run_cache, jobs = opts.jobs,
      dry_run = opts.dry_run,
    })
  end,
}
