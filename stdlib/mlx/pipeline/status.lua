--- mlx.pipeline.status: the per-step section of `mlx status RECIPE`: for
--- each step of the recipe's pipeline, whether it would run and why.
local fs = require "mlx.fs"
local load = require "mlx.pipeline.load"
local ui = require "mlx.ui"

local M = {}

--- Returns a list, in run order, of {step, action = "run"|"restore"|
--- "blocked", reasons} for the steps of pipeline p at root that are not up
--- to date, and the number of steps: the plan of a dry run of the engine,
--- so that status says exactly what `mlx recipe` would do. Raises a usage
--- failure for an invalid pipeline or a corrupt lock.
function M.stale_steps(root, p)
  local engine = require "mlx.pipeline.engine"
  local result = engine.run(p, { root = root, dry_run = true, quiet = true })
  local stale = {}
  for _, step in ipairs(result.order) do
    local action = result.planned[step]
    if action and action ~= "uptodate" then
      stale[#stale + 1] = { step = step, action = action, reasons = result.reasons[step] or {} }
    end
  end
  return stale, #result.order
end

local SHOWN = { run = "", restore = " (restore from the run-cache)", blocked = " (blocked)" }

--- Loads the pipeline of recipe path with the params of opts (-p,
--- --params-file). Raises a usage failure (exit 2) for a recipe that is
--- missing, does not compile, declares an invalid pipeline or none.
function M.load(path, opts)
  local p = load.recipe(path, {}, load.overrides(opts))
  if not p then ui.usage_error("%s declares no pipeline (it ran as a script)", path) end
  return p
end

--- The status section: prints "stale: STEP: reason; reason" per step that
--- would run and returns how many. With no RECIPE argument it prints nothing.
--- p is the recipe's pipeline when the caller loaded it already (M.load).
function M.section(root, opts, args, p)
  local path = args[1]
  if not path then return 0 end
  p = p or M.load(path, opts)
  local ok, err = fs.chdir(root)
  if not ok then ui.fail(ui.EXIT.FAILED, "%s", err) end
  local stale, total = M.stale_steps(root, p)
  for _, s in ipairs(stale) do
    ui.out(("stale:    %s: %s%s"):format(s.step.name, table.concat(s.reasons, "; "), SHOWN[s.action]))
  end
  if #stale == 0 then
    ui.note(("pipeline '%s': %d step%s up to date"):format(p.name, total, total == 1 and "" or "s"))
  end
  return #stale
end

return M
