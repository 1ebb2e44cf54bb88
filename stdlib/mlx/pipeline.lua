--- mlx.pipeline: the recipe DSL. A recipe declares a pipeline of steps; the
--- engine (mlx.pipeline.engine) runs what is stale.
---
---     local p = mlx.pipeline "iris"
---     p:params { seed = 7, lr = 0.1 }
---     p:step "split" { deps = { "data/iris.csv" }, outs = { "work/split/" },
---                      params = { "seed" }, cmd = "python3 split.py --seed ${seed}" }
---     return p
---
--- Declaration errors are raised at the recipe line that declared the step,
--- as usage failures (exit 2): "recipe.lua:12: step 'train': unknown field
--- 'dep' (did you mean 'deps'?)".
local executor = require "mlx.executor"
local params = require "mlx.params"
local stepgraph = require "mlx.stepgraph"
local suggest = require "mlx.suggest"
local ui = require "mlx.ui"

local M = {}

local Pipeline = {}
Pipeline.__index = Pipeline

--- The fields a step may declare, with the type each must have.
M.STEP_FIELDS = {
  deps = "list", outs = "list", metrics = "list", plots = "list", params = "list", env = "list",
  tools = "map", cmd = "command", run = "function", persist = "boolean",
  always = "boolean", cache = "boolean", timeout = "number", desc = "string",
  executor = "executor", resources = "resources",
}

-- The one empty list or map that every step declaring no metrics, plots,
-- params, env or tools shares (five tables less per step of a 100,000-step
-- pipeline); writing to it raises rather than changing every step.
local NONE = setmetatable({}, {
  __newindex = function() error("a step's undeclared metrics, plots, params, env and tools are read-only", 2) end,
})

-- The recipe line that called into the DSL: the first stack frame outside
-- the mlx stdlib ("recipe.lua:12: "), found in C (no table per step).
local function caller_location()
  local where = stepgraph.where(3)
  return where
end

local function declaration_error(where, fmt, ...)
  ui.usage_error("%s%s", where, fmt:format(...))
end

local function is_list_of_strings(v)
  if type(v) ~= "table" then return false end
  local n = 0
  for k, item in pairs(v) do
    if math.type(k) ~= "integer" or type(item) ~= "string" then return false end
    n = n + 1
  end
  return n == #v
end

local function check_type(where, step, field, value)
  local kind = M.STEP_FIELDS[field]
  local ok
  if kind == "list" then
    ok = is_list_of_strings(value)
  elseif kind == "map" then
    ok = type(value) == "table"
    for k, v in pairs(type(value) == "table" and value or {}) do
      if type(k) ~= "string" or type(v) ~= "string" then ok = false end
    end
  elseif kind == "command" then
    ok = type(value) == "string" or (is_list_of_strings(value) and #value > 0)
  elseif kind == "executor" or kind == "resources" then
    local problem
    if kind == "executor" then problem = executor.name_problem(value) else problem = executor.resources_problem(value) end
    if problem then declaration_error(where, "step '%s': %s", step, problem) end
    ok = true
  else
    ok = type(value) == kind
  end
  if not ok then
    local expected = ({ list = "a list of strings", map = "a table of name = string",
      command = "a string or a non-empty list of strings" })[kind] or ("a " .. kind)
    declaration_error(where, "step '%s': field '%s' must be %s, not %s", step, field, expected,
      type(value))
  end
end

--- Creates a pipeline named name. Raises a usage failure if name is not a
--- non-empty string.
function M.new(name)
  if type(name) ~= "string" or name == "" then
    declaration_error(caller_location(), "mlx.pipeline needs a name (a string)")
  end
  local p = setmetatable({ name = name, steps = {}, by_name = {}, defaults = {}, values = {},
    stepset = stepgraph.stepset(NONE) }, Pipeline)
  M.last = p
  return p
end

--- Returns the effective value of param name: its override, else its default.
function Pipeline:param(name)
  return self.values[name]
end

-- Reads the params file at path (relative to the project root, or to the
-- working directory outside a project) for p:params, and records it in
-- p.params_files, the files mlx verify copies with the recipe. Raises a
-- declaration error for a path outside the project, a missing file, or
-- one that is not a JSON object.
local function read_params_file(p, where, path)
  local rel, why = require("mlx.pipeline.paths").normalize(path)
  if rel and (rel:sub(-1) == "/" or rel:match("^%.mlx/") or rel:match("^%.git/")) then
    rel, why = nil, "is not a file of the project"
  end
  if not rel then declaration_error(where, "params file '%s' %s", path, why) end
  local root = require("mlx.project").find_root()
  local values, err = require("mlx.json").load(root and (root .. "/" .. rel) or rel)
  if values == nil then declaration_error(where, "params file: %s", err) end
  if type(values) ~= "table" or #values > 0 then
    declaration_error(where, "params file %s must hold a JSON object of name: value", rel)
  end
  p.params_files = p.params_files or {}
  if not p.params_files[rel] then
    p.params_files[rel] = true
    p.params_files[#p.params_files + 1] = rel
  end
  return values
end

--- Declares the pipeline's parameters and their defaults (numbers, strings,
--- booleans): a table of name = default, or the path of a JSON file holding
--- one (relative to the project root, as DVC's params.yaml), whose values
--- are then the defaults. May be called more than once; later values win.
--- Returns self. Raises a usage failure for a bad name or value, or a
--- params file that is missing, not a JSON object or outside the project.
function Pipeline:params(defaults)
  local where = caller_location()
  if type(defaults) == "string" then defaults = read_params_file(self, where, defaults) end
  if type(defaults) ~= "table" then
    declaration_error(where, "params must be a table of name = value, or the path of a JSON file of them")
  end
  for k, v in pairs(defaults) do
    if type(k) ~= "string" or not k:match("^[%a_][%w_]*$") then
      declaration_error(where, "param name %s must be an identifier", tostring(k))
    end
    local t = type(v)
    if t ~= "number" and t ~= "string" and t ~= "boolean" then
      declaration_error(where, "param '%s' must be a number, string or boolean, not %s", k, t)
    end
  end
  for k, v in pairs(params.declare(defaults)) do
    self.defaults[k] = defaults[k]
    self.values[k] = v
  end
  return self
end

--- Sets the executor of the pipeline's command steps (those without an
--- `executor` of their own): p:executor "slurm", or p:executor { "slurm",
--- poll = 2 } with options for that executor (see docs/cluster.md). The
--- command line's --executor wins over it, and it over .mlx/config.lua.
--- Returns self; raises a usage failure for a bad name.
function Pipeline:executor(spec)
  local where = caller_location()
  local name, options = spec, {}
  if type(spec) == "table" then
    name = spec[1]
    for k, v in pairs(spec) do
      if k ~= 1 then
        if type(k) ~= "string" then declaration_error(where, "p:executor{…}: options must be name = value") end
        options[k] = v
      end
    end
  end
  local problem = executor.name_problem(name)
  if problem then declaration_error(where, "p:executor: %s", problem) end
  self.executor_spec = { name = name, options = options }
  return self
end

--- Sets the default resources of the pipeline's steps, field by field
--- under each step's own `resources`: p:resources { cpus = 2, mem = "4G",
--- time = "01:00:00" }. Returns self; raises a usage failure naming a bad
--- field.
function Pipeline:resources(resources)
  local where = caller_location()
  local problem = executor.resources_problem(resources)
  if problem then declaration_error(where, "p:resources: %s", problem) end
  self.default_resources = {}
  for k, v in pairs(resources) do self.default_resources[k] = v end
  return self
end
-- The fields of a step that list paths, ranked in the order they are
-- checked.
local PATH_RANK = { deps = 1, outs = 2, metrics = 3, plots = 4 }
-- The fields a step has only when it declares them (those a step set reads
-- as defaults only when they differ from the default).
local RARE_FIELDS = { "desc", "timeout", "executor", "resources", "params", "env", "tools", "persist", "always",
  "cache" }

--- Returns a function that takes the step's fields and declares the step
--- `name`; so a recipe writes p:step "train" { … }. The function returns
--- the step: a view of the pipeline's step set (mlx.stepgraph, lua/l_steps.c)
--- whose fields read as a table's would (name, where, index, deps, outs,
--- cmd or run, and each declared field; undeclared metrics, plots, params,
--- env and tools read as one shared empty table; persist and always as
--- false, cache as true). Its deps and outs lists may be shared with other
--- steps: read them, never change them. Raises a usage failure naming the
--- step and field for a duplicate name, an unknown field, a value of the
--- wrong type, neither or both of cmd and run, a path outside the project,
--- or a ${name} in cmd that is not among the step's params.
Pipeline.step = stepgraph.step

--- Raises the usage failure for a step name that is not one (Pipeline:step
--- asks, with the recipe line where).
function Pipeline:refuse_step_name(name, where)
  declaration_error(where, "step name %q must be letters, digits, and _ . - : /", tostring(name))
end

--- Checks and declares the step name with fields at the recipe line where,
--- and returns it; raises the failures Pipeline:step lists. Pipeline:step
--- comes here for every step that is not the common case it declares in C
--- (deps, outs, and a function or a command without ${…}).
function Pipeline:declare(name, fields, where)
  if type(fields) ~= "table" then
    declaration_error(where, "step '%s' needs a table of fields", name)
  end
  if self.by_name[name] then
    declaration_error(where, "step '%s' is declared twice (first at %s)", name,
      self.by_name[name].where:sub(1, -3))
  end
  -- The path lists are checked, normalized and copied in C, one call per
  -- list; a refused path is reported after the other fields' types, the
  -- first of deps, outs, metrics and plots.
  local deps, outs, metrics, plots, bad_list, bad_path, bad_why, bad_kind
  local rare = false -- a field other than the paths, cmd and run
  for field, value in pairs(fields) do
    if type(field) ~= "string" or not M.STEP_FIELDS[field] then
      local guess = type(field) == "string" and suggest.closest(field, M.STEP_FIELDS)
      declaration_error(where, "step '%s': unknown field '%s'%s", name, tostring(field),
        guess and (" (did you mean '" .. guess .. "'?)") or "")
    end
    local rank = PATH_RANK[field]
    if rank then
      -- mlx deletes, writes and restores outs: they obey the rule for
      -- paths from data (nothing in .git/ or .mlx/, not mlx.lock). Deps
      -- are only read, and may be anywhere in the project.
      local list, _, path, why, kind = stepgraph.paths(value, field ~= "deps")
      if list == false then check_type(where, name, field, value) end
      if list then
        if rank == 1 then deps = list elseif rank == 2 then outs = list elseif rank == 3 then metrics = list
        else plots = list end
      elseif not bad_list or rank < PATH_RANK[bad_list] then
        bad_list, bad_path, bad_why, bad_kind = field, path, why, kind
      end
    else
      if field ~= "cmd" and field ~= "run" then rare = true end
      check_type(where, name, field, value)
    end
  end
  if (fields.cmd == nil) == (fields.run == nil) then
    declaration_error(where, "step '%s' needs exactly one of 'cmd' (a command) or 'run' (a Lua function)", name)
  end
  if bad_kind == "normalize" then
    declaration_error(where, "step '%s': %s '%s': %s", name, bad_list:sub(1, -2), bad_path, bad_why)
  elseif bad_kind then
    declaration_error(where, "step '%s': %s %s", name, bad_list:sub(1, -2), bad_why)
  end
  outs = outs or {}
  -- The fields the step set does not keep in its row: in a table of the
  -- step's own, set only when they differ from the defaults.
  local own
  if metrics or plots or rare then
    own = { metrics = metrics, plots = plots }
    if rare then
      for _, field in ipairs(RARE_FIELDS) do
        if fields[field] ~= nil then own[field] = fields[field] end
      end
    end
  end
  -- Metrics files are outputs too: stored, locked and restored like outs.
  -- Plots files too (mlx report draws them), unless already declared an out.
  if metrics or plots then
    local declared = {}
    for _, path in ipairs(outs) do declared[path] = true end
    for _, list in ipairs({ metrics or NONE, plots or NONE }) do
      for _, path in ipairs(list) do
        if not declared[path] then
          declared[path] = true
          table.insert(outs, path)
        end
      end
    end
  end
  local declared_params = fields.params or NONE
  for _, p in ipairs(declared_params) do
    if self.defaults[p] == nil then
      declaration_error(where, "step '%s': param '%s' is not declared in p:params{…}", name, p)
    end
  end
  -- ${name} is a param when the step lists it in params; a name the
  -- pipeline declares as a param but the step does not list is a
  -- mistake; any other ${NAME} (${HOME}, ${SLURM_JOB_ID}) is the shell's.
  local cmd = fields.cmd
  local text = type(cmd) == "table" and table.concat(cmd, " ") or cmd
  if text and text:find("${", 1, true) then
    local declared = {}
    for _, p in ipairs(declared_params) do declared[p] = true end
    for used in text:gmatch("%${([^}]*)}") do
      if not declared[used] and self.defaults[used] ~= nil then
        declaration_error(where, "step '%s': cmd uses ${%s}, which is not in the step's params", name, used)
      end
    end
  end
  if fields.timeout and fields.timeout <= 0 then
    declaration_error(where, "step '%s': timeout must be a positive number of seconds", name)
  end
  return stepgraph.add(self, name, where, deps or {}, outs, fields.cmd, fields.run, own)
end

--- Returns true if v is a pipeline made by mlx.pipeline.
function M.is_pipeline(v)
  return getmetatable(v) == Pipeline
end

return setmetatable(M, {
  __call = function(_, name) return M.new(name) end,
})
