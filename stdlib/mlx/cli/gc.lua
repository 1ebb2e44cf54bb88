-- mlx gc: delete objects nothing refers to.
local gc = require "mlx.gc"
local project = require "mlx.project"
local ui = require "mlx.ui"

return {
  summary = "delete stored objects that nothing refers to",
  usage = "mlx gc [--dry-run] [-r NAME]",
  description = [[
Deletes the objects in .mlx/cache/objects/ that are referred to by neither
mlx.lock, the run-cache (.mlx/cache/runs/) nor a registered model version
(.mlx/runs.db), and the events files of steps whose mlx was killed
(.mlx/tmp/events-*.jsonl). Objects of older versions of your data are only in git
history: check out the commit and run mlx pull to get them back from a
remote. A symbolic link in the store (in the place of an object or of a
directory of objects) is not an object: the link itself is deleted, never
what it points to. --dry-run prints what would be deleted and how many
bytes. Stops with exit 1 if another mlx process is using the store. With
-r NAME, also compacts the index of remote NAME: its segments become one,
listing what the remote holds; an index that is one segment already is
left as it is.]],
  options = {
    require("mlx.cli").option("dry-run", { help = "only print what would be deleted" }),
    require("mlx.cli").option("remote", { help = "also compact the index of remote NAME" }),
  },
  args = { max = 0 },
  main = function(opts)
    local root = project.require_root()
    local result, err, code = gc.gc(root, { dry_run = opts.dry_run })
    if not result then ui.fail(ui.exit_code_for(code), "%s", err) end
    for _, name in ipairs(result.links) do
      ui.out(("%s symbolic link .mlx/cache/objects/%s (not a store object, never followed)"):format(
        opts.dry_run and "would remove" or "removed", name))
    end
    if opts.dry_run then
      for _, o in ipairs(result.removed) do
        ui.out(("would remove %s  %s"):format(o.id, ui.format_size(o.size)))
      end
    end
    ui.out(("%s %d object%s, %s; kept %d"):format(opts.dry_run and "would remove" or "removed",
      #result.removed, #result.removed == 1 and "" or "s", ui.format_size(result.bytes), result.kept))
    if result.events > 0 then
      ui.out(("%s %d stale events file%s (.mlx/tmp/events-*.jsonl)"):format(
        opts.dry_run and "would remove" or "removed", result.events, result.events == 1 and "" or "s"))
    end
    if opts.remote then
      local res
      res, err, code = require("mlx.remote").compact(root, { remote = opts.remote, dry_run = opts.dry_run })
      if not res then ui.fail(ui.exit_code_for(code), "%s", require("mlx.remote.report").advice(err, code)) end
      if not res.compacted then
        ui.out(("the index of remote '%s' is one segment already (%d objects, %d run-cache entries): nothing to "
          .. "compact"):format(res.remote, res.objects, res.runs))
        return ui.EXIT.OK
      end
      ui.out(("%s the index of remote '%s': %d segment%s into one (%d objects, %d run-cache entries)")
        :format(opts.dry_run and "would compact" or "compacted", res.remote, res.before,
          res.before == 1 and "" or "s", res.objects, res.runs))
    end
    return ui.EXIT.OK
  end,
}
