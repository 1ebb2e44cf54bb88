-- mlx verify: re-execute pipeline steps in copies of the workspace and
-- compare their outs with mlx.lock (mlx.verify).
local fs = require "mlx.fs"
local project = require "mlx.project"
local ui = require "mlx.ui"

-- The recipe and the steps among the arguments: a first argument that
-- names a file (or ends in .lua) is the recipe, else the recipe is the
-- project's pipeline.lua.
local function split_args(root, args)
  local first = args[1]
  if first and (first:match("%.lua$") or (fs.stat(first) or {}).type == "file") then
    return table.remove(args, 1), args
  end
  local default = root .. "/pipeline.lua"
  if not fs.stat(default) then
    ui.usage_error("no RECIPE given and no pipeline.lua at the project root; name the recipe (mlx verify RECIPE [STEP...])")
  end
  return default, args
end

local function command_line(recipe, steps, opts)
  local word = require("mlx.pipeline.key").shell_word
  local words = { "mlx", "verify", word(recipe) }
  for _, s in ipairs(steps) do words[#words + 1] = word(s) end
  if opts.tolerance then words[#words + 1] = "--tolerance " .. word(opts.tolerance) end
  return table.concat(words, " ")
end

local function report(result)
  for _, s in ipairs(result.steps) do
    if s.status == "reproduced" then
      local within = s.within > 0 and (" (%d metric field%s within --tolerance)"):format(s.within,
        s.within == 1 and "" or "s") or s.bytes_differ and " (metrics equal field by field, not byte by byte)" or ""
      ui.out(("reproduced: %s%s"):format(s.step, within))
    elseif s.status == "unchecked" then
      ui.out(("unchecked:  %s: %s"):format(s.step, s.changed_input
        and ("its input '%s' differed from mlx.lock, as made upstream"):format(s.changed_input)
        or "a step upstream did not complete"))
    else
      ui.out(("DIVERGED:   %s"):format(s.step))
      if s.failed and #s.outs == 0 then
        ui.out(("  failed in copy %d"):format(s.failed))
        for _, line in ipairs(result.tails[s.failed] or {}) do ui.out("    | " .. line) end
      end
      for _, d in ipairs(s.outs) do
        ui.out(("  %s differs (copy %d):"):format(d.path, d.copy))
        for _, line in ipairs(d.text) do ui.out("    " .. line) end
      end
    end
  end
  for _, name in ipairs(result.left_out) do
    ui.out(("not run:    %s: cache = false (it acts on the world); name it to verify it"):format(name))
  end
end

return {
  summary = "re-execute pipeline steps in copies of the workspace and check their outs match mlx.lock",
  usage = "mlx verify [RECIPE] [STEP...] [--tolerance X] [--keep]",
  description = [[
Proves that what mlx.lock pins reproduces. Each chosen STEP (default: every
step of the pipeline of RECIPE, default pipeline.lua, except steps declared
cache = false, which act on the world) is re-executed from its inputs as
mlx.lock pins them, with the param values the lock records, twice: in two
copies of the workspace at other paths, made from the store (or the
workspace, where a file still has its pinned hash), under different time
zones, locales, umasks, job counts and file creation orders. Every out is
then compared with mlx.lock: a JSON metrics file field by field, a
directory file by file.

Prints one line per step (reproduced, DIVERGED with what differs, or
unchecked when a step upstream diverged), records the outcome as a run
tagged mlx.verify = passed or failed, and marks each diverged step
"deterministic": false in mlx.lock (kept by later runs until a verify of it
passes). Exit codes: 0 every step reproduced, 1 something diverged, 2 usage
or bad input (an unknown step, a lock that does not pin what the recipe
declares, an input that is neither in the store nor in the workspace), 3
the recipe failed in a copy before any step ran (say, it reads a file the
copy does not hold as it loads): nothing was verified, nothing is marked,
the run is tagged mlx.verify = error; 130 interrupted. The copies are
removed however mlx verify ends.]],
  options = {
    { "tolerance", arg = "X", type = "number",
      help = "numbers in metrics files agree when they differ by at most X (default 0)" },
    { "keep", help = "keep the copies (under .mlx/tmp/) and print where they are" },
  },
  main = function(opts, args)
    local root = project.require_root()
    if opts.tolerance and (opts.tolerance < 0 or opts.tolerance ~= opts.tolerance) then
      ui.usage_error("--tolerance needs a number >= 0, not %s", tostring(opts.tolerance))
    end
    local recipe, steps = split_args(root, args)
    if not fs.stat(recipe) then ui.usage_error("%s: no such recipe file", recipe) end
    recipe = project.absolute(recipe)
    local ok, err = fs.chdir(root)
    if not ok then ui.fail(ui.EXIT.FAILED, "%s", err) end
    -- Relative to the root, where verify works, so messages name it as
    -- 'mlx recipe' does.
    recipe = project.relative(recipe, root)
    -- As runs record it, which does not depend on where the project is.
    local recorded = project.recorded_recipe(recipe, root)
    local track = require "mlx.track"
    local result = require("mlx.verify").run {
      root = root, recipe = recipe, steps = steps, tolerance = opts.tolerance, keep = opts.keep,
      track = track, recipe_path = recorded, git = track.git_context(root),
      command = command_line(recorded, steps, opts),
      on_copy = function(i, n, dir, description)
        ui.note(("verify: copy %d of %d: %s (%s)"):format(i, n, dir:sub(#root + 2), description))
      end,
    }
    report(result)
    if opts.keep then ui.note("verify: the copies are kept in " .. result.base:sub(#root + 2)) end
    if not result.passed then
      ui.fail(ui.EXIT.FAILED, "%s", result.message or "some steps could not be checked")
    end
    ui.note(("verify: %d step%s reproduced in %d copies"):format(#result.steps,
      #result.steps == 1 and "" or "s", #result.copies))
    return ui.EXIT.OK
  end,
}
