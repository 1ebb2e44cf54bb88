--- mlx.executor: where a pipeline's command steps run. An executor is a
--- module mlx.executor.NAME — built in (`local`, `slurm`) or a project's
--- lib/mlx/executor/NAME.lua — returning { new = function(ctx) … end }.
--- new(ctx) gets ctx = { root (the project root), jobs (-j), options (the
--- executor's table from p:executor{…} and .mlx/config.lua), note =
--- function(message) } and returns an object with these methods:
---
---   ex:submit(job)           start (or queue) one job; true, or nil, message
---   ex:flush()               optional: submit what submit queued (a round
---                            of steps started at once, e.g. as a job array)
---   ex:poll(jobs, seconds)   wait at most seconds for any of jobs (the list
---                            of submitted, unfinished ones) to end; returns
---                            a list of { job = job, result = result }
---                            (empty when none ended); raises "interrupted"
---                            on Ctrl-C
---   ex:cancel(jobs)          stop every job of the list, and return once
---                            none of them runs any more
---   ex:slots(job)            optional: the -j slots the job takes (default 1)
---   ex:close()               optional: called once when the pipeline ends
---   ex.cancel_on_failure     optional: true to have the jobs still running
---                            cancelled when a step fails without -k (a
---                            cluster's queue); local steps finish instead
---
--- A job is { name (the step's name), shell (a string for /bin/sh -c) or
--- argv (a list), cwd, env = {NAME = value}, resources = { cpus, mem, time,
--- gpus, partition } (all optional), timeout (seconds or nil), run_id (or
--- nil), stdout = function(line), stderr = function(line) }; an executor may
--- add fields of its own to it. A result is { ok (exit status 0), code,
--- signal, timed_out, wall, user, sys, max_rss (bytes), message (why it
--- failed, when the executor knows better than an exit status), tags =
--- { name = value } (recorded on the step's run) }.
---
--- Selection: the command line (--executor) wins over the step's
--- `executor`, the step over the pipeline's (p:executor), the pipeline over
--- `executor` in .mlx/config.lua; the default is "local". Resources merge
--- the same way, field by field: step over pipeline over config.
local suggest = require "mlx.suggest"

local M = {}

--- The fields of a resources table, with the check of each value: nil when
--- it is valid, else what it must be.
M.RESOURCE_FIELDS = {
  cpus = function(v)
    if math.type(v) ~= "integer" or v < 1 then return "a positive integer" end
  end,
  gpus = function(v)
    if math.type(v) ~= "integer" or v < 0 then return "a non-negative integer" end
  end,
  mem = function(v)
    if type(v) ~= "string" or not v:match("^%d+[KMGT]?$") then
      return 'a size such as "512M" or "8G" (K, M, G, T; no unit: megabytes)'
    end
  end,
  time = function(v)
    local ok = type(v) == "string" and (v:match("^%d+$") or v:match("^%d+:%d%d$") or v:match("^%d+:%d%d:%d%d$")
      or v:match("^%d+%-%d+$") or v:match("^%d+%-%d+:%d%d$") or v:match("^%d+%-%d+:%d%d:%d%d$"))
    if not ok then return 'a Slurm time such as "30" (minutes), "02:00:00" or "1-00:00:00"' end
  end,
  partition = function(v)
    if type(v) ~= "string" or not v:match("^[%w_.%-,]+$") then return "a partition name" end
  end,
}

--- Returns nil when resources is a valid resources table, else a message
--- naming the field and what it must be.
function M.resources_problem(resources)
  if type(resources) ~= "table" then return "resources must be a table such as { cpus = 4, mem = \"8G\" }" end
  for field, value in pairs(resources) do
    local check = type(field) == "string" and M.RESOURCE_FIELDS[field]
    if not check then
      local guess = type(field) == "string" and suggest.closest(field, M.RESOURCE_FIELDS)
      return ("resources: unknown field '%s'%s"):format(tostring(field),
        guess and (" (did you mean '" .. guess .. "'?)") or " (cpus, mem, time, gpus, partition)")
    end
    local must = check(value)
    if must then return ("resources.%s must be %s, not %s"):format(field, must, tostring(value)) end
  end
end

--- Returns nil when name can name an executor module, else a message.
function M.name_problem(name)
  if type(name) ~= "string" or not name:match("^[%a_][%w_]*$") then
    return ("executor must be a name such as \"local\" or \"slurm\", not %s"):format(tostring(name))
  end
end

local function load_config(path)
  local chunk, err = loadfile(path, "t", {})
  if not chunk then
    if not io.open(path, "r") then return {} end
    return nil, err
  end
  local ok, value = pcall(chunk)
  if not ok then return nil, path .. ": " .. tostring(value) end
  if type(value) ~= "table" then return nil, path .. ": must return a table" end
  return value
end

--- Returns the executor settings of the project at root: { executor =
--- name or nil, resources = {…}, options = { name → table } } from
--- .mlx/config.lua, overridden by .mlx/config.local.lua (`executor`,
--- `resources`, and one table per executor: `slurm = { poll = 2 }`). Returns
--- nil and a message naming the file for a config that does not load or
--- holds an invalid value.
function M.config(root)
  local result = { resources = {}, options = {} }
  for _, name in ipairs({ "config.lua", "config.local.lua" }) do
    local path = root .. "/.mlx/" .. name
    local config, err = load_config(path)
    if not config then return nil, err end
    if config.executor ~= nil then
      local problem = M.name_problem(config.executor)
      if problem then return nil, path .. ": " .. problem end
      result.executor = config.executor
    end
    if config.resources ~= nil then
      local problem = M.resources_problem(config.resources)
      if problem then return nil, path .. ": " .. problem end
      for k, v in pairs(config.resources) do result.resources[k] = v end
    end
    for key, value in pairs(config) do
      if type(key) == "string" and type(value) == "table" and key ~= "resources" and key ~= "cache"
        and key ~= "remotes" and key ~= "remote" then
        result.options[key] = result.options[key] or {}
        for k, v in pairs(value) do result.options[key][k] = v end
      end
    end
  end
  return result
end

--- Returns the name of the executor of step and what chose it ("the
--- command line", "the step", "the pipeline", "the config", "the default"):
--- cli (the --executor value or nil) > step.executor > p.executor >
--- config.executor > "local".
function M.choose(step, p, config, cli)
  if cli then return cli, "the command line" end
  if step.executor then return step.executor, "the step" end
  if p.executor_spec then return p.executor_spec.name, "the pipeline" end
  if config and config.executor then return config.executor, "the config" end
  return "local", "the default"
end

--- Returns the resources of step: its own fields over the pipeline's
--- (p:resources) over the config's, field by field (a new table).
function M.resources(step, p, config)
  local merged = {}
  for _, layer in ipairs({ config and config.resources or {}, p.default_resources or {}, step.resources or {} }) do
    for k, v in pairs(layer) do merged[k] = v end
  end
  return merged
end

--- Returns the executor module named name, or nil and a message: the
--- built-in mlx.executor.NAME, else lib/mlx/executor/NAME.lua on
--- package.path (the project's lib/ and MLX_PATH).
function M.module(name)
  local problem = M.name_problem(name)
  if problem then return nil, problem end
  local modname = "mlx.executor." .. name
  if not package.preload[modname] and not package.searchpath(modname, package.path) then
    return nil, ("no executor named '%s' (built in: local, slurm; a project adds one as lib/mlx/executor/%s.lua)")
      :format(name, name)
  end
  local ok, module = pcall(require, modname)
  if not ok then return nil, ("executor '%s': %s"):format(name, tostring(module)) end
  if type(module) ~= "table" or type(module.new) ~= "function" then
    return nil, ("executor '%s': its module must return a table with a function new(ctx)"):format(name)
  end
  return module
end

--- Returns a new executor named name for a pipeline run: ctx is passed to
--- its module's new (see above). Returns nil and a message when there is
--- no such executor or it cannot start (new returned nil, message, or
--- raised).
function M.open(name, ctx)
  local module, err = M.module(name)
  if not module then return nil, err end
  local ok, ex, nerr = pcall(module.new, ctx)
  if not ok then return nil, ("executor '%s': %s"):format(name, tostring(ex)) end
  if not ex then return nil, ("executor '%s': %s"):format(name, tostring(nerr)) end
  for _, method in ipairs({ "submit", "poll", "cancel" }) do
    if type(ex[method]) ~= "function" then
      return nil, ("executor '%s' has no method %s (see docs/extending.md)"):format(name, method)
    end
  end
  return ex
end

return M
