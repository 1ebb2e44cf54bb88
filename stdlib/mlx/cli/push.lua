-- mlx push: send data, models and the run-cache to a remote.
local cli = require "mlx.cli"
local project = require "mlx.project"

return {
  summary = "send pinned data, models and (with --run-cache) run-cache entries to a remote",
  usage = "mlx push [TARGET...] [-r NAME] [--run-cache] [--verify] [-j N] [--dry-run]",
  description = [[
Sends to the remote (-r NAME, else the default: see 'mlx remote') the
objects that TARGETs need and the remote lacks. A TARGET is a tracked path,
a pipeline step ("train" or "pipeline/train") or one of its outs, or a model
("iris", "iris:3", "iris@production"); without one, everything mlx.lock pins
and every registered model version. A directory sends its manifest and its
files. With --run-cache, also the run-cache entries (of steps that mlx
verify did not find non-deterministic) and their objects, so that a clone
restores outputs instead of executing. Every object is re-hashed before it
is sent and appears on the remote whole or not at all; what the remote
holds is read from its index, so a push with nothing to do costs a few
requests. A push that was interrupted sends, when run again, only what is
missing. An object that a fetch found corrupt (or absent) on the remote is
marked bad there, and the next push that has it sends it again. With
--verify, the index is not trusted: each object is asked for (its size) and
sent when the remote lacks it or holds another size, and the index learns
what is there. Exit 1 when an object is not in the local store or is
corrupt.]],
  options = {
    cli.option("remote"),
    cli.option("run-cache"),
    { "verify", help = "ask the remote for each object instead of trusting its index; resend what is wrong" },
    cli.option("jobs", { help = "N transfers at once (default: 8)" }),
    cli.option("dry-run", { help = "print how many objects would be sent" }),
  },
  main = function(opts, targets)
    local root = project.require_root()
    return require("mlx.remote.report").run("push", require("mlx.remote").push, root, {
      remote = opts.remote, targets = targets, run_cache = opts.run_cache, jobs = opts.jobs,
      dry_run = opts.dry_run, verify = opts.verify,
    })
  end,
}
