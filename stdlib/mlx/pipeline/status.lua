--- mlx.pipeline.status: the per-step section of `mlx status RECIPE`: for
--- each step of the recipe's pipeline, whether it would run and why.
local fs = require "mlx.fs"
local graph = require "mlx.pipeline.graph"
local load = require "mlx.pipeline.load"
local state = require "mlx.pipeline.state"
local store = require "mlx.store"
local ui = require "mlx.ui"

local M = {}

--- Returns a list, in run order, of {step, reasons} for the steps of pipeline
--- p at root that would run (reasons non-empty), and the number of steps.
--- Raises a usage failure for an invalid pipeline or a corrupt lock.
function M.stale_steps(root, p)
  local engine = require "mlx.pipeline.engine"
  local g = graph.build(p, graph.in_workspace(root))
  local locked = engine.locked_steps(root, p)
  local st, err, code = store.open(root)
  if not st then ui.fail(ui.exit_code_for(code), "%s", err) end
  local ctx = { store = st, values = p.values, tool_cache = {}, hashes = {} }
  state.prefetch(ctx, g.order)
  local stale, is_stale = {}, {}
  for _, step in ipairs(g.order) do
    local ev, everr = state.evaluate(ctx, step, locked[step.name])
    if not ev then
      st:close()
      ui.fail(ui.EXIT.FAILED, "%s", everr)
    end
    local reasons = ev.reasons
    if #reasons == 0 then
      for _, up in ipairs(g.upstream[step]) do
        if is_stale[up] then
          reasons = { ("upstream step '%s' would run"):format(up.name) }
          break
        end
      end
    end
    if #reasons > 0 then
      is_stale[step] = true
      stale[#stale + 1] = { step = step, reasons = reasons }
    end
  end
  st:close()
  return stale, #g.order
end

--- The status section: prints "stale: STEP: reason; reason" per step that
--- would run and returns how many. With no RECIPE argument it prints nothing.
function M.section(root, opts, args)
  local path = args[1]
  if not path then return 0 end
  local p = load.recipe(path, {}, load.parse_overrides(opts.param))
  if not p then ui.usage_error("%s declares no pipeline (it ran as a script)", path) end
  local ok, err = fs.chdir(root)
  if not ok then ui.fail(ui.EXIT.FAILED, "%s", err) end
  local stale, total = M.stale_steps(root, p)
  for _, s in ipairs(stale) do
    ui.out(("stale:    %s: %s"):format(s.step.name, table.concat(s.reasons, "; ")))
  end
  if #stale == 0 then
    ui.note(("pipeline '%s': %d step%s up to date"):format(p.name, total, total == 1 and "" or "s"))
  end
  return #stale
end

return M
