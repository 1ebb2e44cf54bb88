--- mlx.gate: a quality gate for a step or a recipe — the deploy recipe's
--- gate (mlx.deploy.gate_check) on the working tree's metrics against a
--- baseline.
---
---     p:step "gate" { deps = { "work/eval.json" }, run = function()
---       mlx.gate { metric = "accuracy", min = 0.9, max_drop = 0.01, baseline = "iris@production",
---                  file = "work/eval.json" }
---     end }
---
--- mlx.gate{…} raises (the step or recipe fails, exit 1) with both numbers
--- in the message; mlx.gate.check{…} returns instead.
local deploy = require "mlx.deploy"
local project = require "mlx.project"
local ui = require "mlx.ui"

local M = {}

local FIELDS = {
  metric = "string", min = "number", max_drop = "number", baseline = "string", direction = "string",
  value = "number", file = "string", root = "string",
}

local function misuse(fmt, ...)
  error("mlx.gate: " .. fmt:format(...), 0)
end

-- The candidate's value of o.metric and its name in messages.
local function candidate(o, root, metrics)
  if o.value then return o.value, "the working tree" end
  if o.file then
    local path = o.file:sub(1, 1) == "/" and o.file or (root .. "/" .. o.file)
    local doc, err = require("mlx.json").load(path)
    if doc == nil then return nil, o.file, err end
    return metrics.flatten(doc, "", {})[o.metric], o.file
  end
  local side, err = metrics.workspace(root, { runs = false })
  if not side then return nil, "the working tree", err end
  return side.metrics[o.metric], "the working tree"
end

--- Checks the gate o = {metric, min, max_drop, direction ("higher" or
--- "lower"), baseline (a git revision or NAME@ALIAS: see mlx.metrics),
--- value | file (the candidate's value, or a metrics JSON file holding it;
--- default: the working tree's metrics files, as mlx.lock names them),
--- root (the project; default the current one)}. Returns {ok, metric,
--- value, base, message}; the message has both numbers. Fails with nil,
--- message, code when the baseline or the file cannot be read. Raises on
--- misuse (an unknown field, no metric, neither min nor baseline).
function M.check(o)
  if type(o) ~= "table" then misuse("expected a table of fields") end
  for k, v in pairs(o) do
    if not FIELDS[k] then misuse("unknown field '%s'", tostring(k)) end
    if type(v) ~= FIELDS[k] then misuse("field '%s' must be a %s, not a %s", k, FIELDS[k], type(v)) end
  end
  if not o.metric then misuse("metric is required") end
  if o.min == nil and o.baseline == nil then misuse("give min, baseline or both") end
  if o.max_drop and not o.baseline then misuse("max_drop needs a baseline") end
  if o.value and o.file then misuse("give value or file, not both") end
  local metrics = require "mlx.metrics"
  local root = o.root
  if not root then
    local err
    root, err = project.root()
    if not root then return nil, err, "notfound" end
  end
  local value, name, err = candidate(o, root, metrics)
  if err then return nil, ("gate: %s: %s"):format(name, err), "invalid" end
  local base, base_name
  if o.baseline then
    local side, serr, code = metrics.side(root, o.baseline)
    if not side then return nil, "gate: " .. serr, code end
    base, base_name = side.metrics[o.metric], side.label
    if base == nil then
      return nil, ("gate: the baseline %s has no %s metric"):format(side.label, o.metric), "notfound"
    end
  end
  local ok, why = deploy.gate_check { metric = o.metric, value = value, candidate = name, min = o.min,
    max_drop = o.max_drop, direction = o.direction, base = base, baseline = base_name }
  return { ok = ok, metric = o.metric, value = value, base = base, message = why }
end

--- Checks the gate as M.check does and returns its result when it passes;
--- else raises the failure "gate: WHY" (exit 1 from a recipe; a step that
--- calls it fails with the message), as it does when the baseline cannot
--- be read.
function M.gate(o)
  local result, err, code = M.check(o)
  if not result then ui.fail(ui.exit_code_for(code), "%s", err) end
  if not result.ok then ui.fail(ui.EXIT.FAILED, "gate: %s", result.message) end
  return result
end

return setmetatable(M, { __call = function(_, o) return M.gate(o) end })
