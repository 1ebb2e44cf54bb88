-- mlx fsck: re-hash every stored object.
local gc = require "mlx.gc"
local project = require "mlx.project"
local ui = require "mlx.ui"

return {
  summary = "verify every stored object; quarantine corrupt ones",
  usage = "mlx fsck [-j N]",
  description = [[
Re-hashes every object in .mlx/cache/objects/ (one thread per CPU). An
object whose bytes do not match its name (bit rot, truncation, an edit
through a hard link) is reported and moved to .mlx/cache/quarantine/, so
that the next mlx checkout or mlx pull fetches a good copy instead of
trusting it. Objects that mlx.lock needs but the store lacks are listed too.
A symbolic link in the store, in the place of an object or of a directory
of objects, is not an object: it is named, never followed nor moved, and
mlx gc removes it. Exit 0 when all is well, 1 when anything is corrupt,
missing or a link.]],
  options = {
    require("mlx.cli").option("jobs", { help = "hash with N threads (default: one per CPU)" }),
  },
  args = { max = 0 },
  main = function(opts)
    local root = project.require_root()
    local bar <close> = require("mlx.progress").new("checking")
    local result, err, code = gc.fsck(root, { jobs = opts.jobs, progress = bar.report })
    bar:done()
    if not result then ui.fail(ui.exit_code_for(code), "%s", err) end
    for _, b in ipairs(result.corrupt) do
      ui.out(("corrupt   %s (%s) moved to .mlx/cache/quarantine/"):format(b.id,
        b.got == "" and "unreadable" or "hashes to " .. b.got:sub(1, 12)))
    end
    for _, id in ipairs(result.missing) do
      ui.out(("missing   %s (needed by mlx.lock)"):format(id))
    end
    for _, name in ipairs(result.links) do
      ui.out(("not an object .mlx/cache/objects/%s: a symbolic link, never followed; mlx gc removes it")
        :format(name))
    end
    local links = #result.links == 0 and ""
      or (", %d symbolic link%s"):format(#result.links, #result.links == 1 and "" or "s")
    ui.out(("checked %d object%s: %d corrupt, %d missing%s"):format(result.checked,
      result.checked == 1 and "" or "s", #result.corrupt, #result.missing, links))
    if #result.corrupt > 0 or #result.missing > 0 or #result.links > 0 then return ui.EXIT.FAILED end
    return ui.EXIT.OK
  end,
}
