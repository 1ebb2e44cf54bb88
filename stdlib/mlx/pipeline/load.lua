--- mlx.pipeline.load: runs a recipe file and returns the pipeline it
--- declares, with -p overrides applied while it is declared.
local params = require "mlx.params"
local pipeline = require "mlx.pipeline"
local script = require "mlx.script"
local ui = require "mlx.ui"

local M = {}

-- The params files of override tables (overrides → name → "--params-file
-- FILE"), so that a bad value names the file it came from, not -p.
local origins = setmetatable({}, { __mode = "k" })

--- Parses "-p key=value" strings into {key = "value"}. Raises a usage
--- failure for one without "=".
function M.parse_overrides(list)
  local overrides = {}
  for _, item in ipairs(list or {}) do
    local k, v = item:match("^([^=]+)=(.*)$")
    if not k then ui.usage_error("-p %s: expected KEY=VALUE", item) end
    overrides[k] = v
  end
  return overrides
end

--- Merges a params file (JSON object of name → value) under the -p overrides.
--- Raises a usage failure naming the file if it is missing or malformed.
function M.read_params_file(path, overrides)
  local json = require "mlx.json"
  local values, err, code = json.load(path)
  if values == nil and code == "invalid" then
    -- A params.yaml given as DVC reads it: say what the file must be.
    ui.usage_error("--params-file: %s; a params file is a JSON object of name: value", err)
  end
  if values == nil then ui.usage_error("--params-file: %s", err) end
  if type(values) ~= "table" then ui.usage_error("--params-file %s: expected a JSON object", path) end
  local merged, from = {}, {}
  for k, v in pairs(values) do
    if v == json.null or type(v) == "table" then
      ui.usage_error("--params-file %s: param '%s' must be a number, string or boolean", path, k)
    end
    merged[k], from[k] = v, "--params-file " .. path
  end
  for k, v in pairs(overrides) do merged[k], from[k] = v, nil end
  origins[merged] = from
  return merged
end

--- Returns the param overrides of a command's options: its --params-file
--- (opts.params_file) under its -p values (opts.param), as every command
--- that loads a recipe takes them. Raises a usage failure as the two above.
function M.overrides(opts)
  local overrides = M.parse_overrides(opts.param)
  if opts.params_file then overrides = M.read_params_file(opts.params_file, overrides) end
  return overrides
end

--- Runs a compiled recipe chunk (from script.load) with arguments args and
--- -p overrides (see mlx.params), and returns the pipeline it returned or, failing that, the
--- last one it declared; nil for a recipe that declares none (a script,
--- which has then run to completion). Errors propagate: a declaration error
--- is a usage failure (exit 2), a runtime error raises.
function M.run_chunk(chunk, path, args, overrides)
  params.reset(overrides, overrides and origins[overrides], args)
  pipeline.last = nil
  local result = script.run(chunk, path, args or {})
  params.check()
  return pipeline.is_pipeline(result) and result or pipeline.last
end

--- As run_chunk, loading the recipe at path first (a missing file or one
--- that does not compile is a usage failure).
function M.recipe(path, args, overrides)
  return M.run_chunk(script.load(path, "recipe"), path, args, overrides)
end

return M
