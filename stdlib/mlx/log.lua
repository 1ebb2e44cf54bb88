--- mlx.log: logging to the current run, from a recipe or a Lua step.
---
---     local mlx = require "mlx"
---     mlx.log.param("lr", 0.1)
---     mlx.log.metric("loss", 0.31, 12)     -- step optional: the next one
---
--- Where a record goes: to the innermost run this process has open
--- (mlx.track.current(): the recipe's run under `mlx recipe`, a Lua step's
--- run in a pipeline); else, in a process mlx started with MLX_EVENTS set,
--- to a line of that events file (see mlx.track.events); else nowhere, so a
--- recipe runs the same outside a project. Each function returns true when
--- the record went somewhere, false when there was nowhere to send it, or
--- nil, message, code when writing failed. Wrong argument types raise.
local M = {}

local events_file -- the open MLX_EVENTS file, once used

local function current_run()
  local track = package.loaded["mlx.track"] -- no run was started unless it is loaded
  return track and track.current()
end

-- JSON has no NaN or infinities; the events protocol takes them as strings.
local function nonfinite_text(x)
  if x ~= x then return '"NaN"' end
  if x == math.huge then return '"Infinity"' end
  if x == -math.huge then return '"-Infinity"' end
  return nil
end

-- Appends one event line to MLX_EVENTS; false if it is not set.
local function emit(event)
  local path = os.getenv("MLX_EVENTS")
  if not path or path == "" then return false end
  local json = require "mlx.json"
  local value = type(event.value) == "number" and nonfinite_text(event.value)
  if value then event.value = nil end
  local line = json.encode(event)
  if value then line = line:sub(1, -2) .. ',"value":' .. value .. "}" end
  if not events_file then
    local f, err = io.open(path, "a")
    if not f then return nil, err, "io" end
    f:setvbuf("full", 1 << 16)
    events_file = f
  end
  -- One write per line, so lines of concurrent writers never interleave.
  local ok, err = events_file:write(line .. "\n")
  if ok then ok, err = events_file:flush() end
  if not ok then return nil, err, "io" end
  return true
end

local function check(cond, fn, what)
  if not cond then error(("mlx.log.%s: %s"):format(fn, what), 3) end
end

local function done(ok, err, code)
  if ok == nil then return nil, err, code end
  return true
end

--- log.metric(name, value[, step]): one point of a metric.
function M.metric(name, value, step)
  check(type(name) == "string", "metric", "name must be a string")
  check(type(value) == "number", "metric", "value must be a number")
  check(step == nil or math.tointeger(step), "metric", "step must be an integer")
  local run = current_run()
  if run then return done(run:log_metric(name, value, step)) end
  return emit({ metric = name, value = value, step = step })
end

--- log.metrics({name = value…}[, step]): several metrics at one step.
function M.metrics(values, step)
  check(type(values) == "table", "metrics", "expected a table {name = number}")
  check(step == nil or math.tointeger(step), "metrics", "step must be an integer")
  local run = current_run()
  if run then return done(run:log_metrics(values, step)) end
  local ok, err, code = false, nil, nil
  for name, value in pairs(values) do
    ok, err, code = emit({ metric = name, value = value, step = step })
    if not ok then return ok, err, code end
  end
  return ok
end

--- log.param(name, value): a parameter (string, number or boolean).
function M.param(name, value)
  check(type(name) == "string", "param", "name must be a string")
  local run = current_run()
  if run then return done(run:log_param(name, value)) end
  return emit({ param = name, value = value })
end

--- log.params({name = value…}): several parameters.
function M.params(values)
  check(type(values) == "table", "params", "expected a table {name = value}")
  local run = current_run()
  if run then return done(run:log_params(values)) end
  return emit({ params = values })
end

--- log.tag(name, value): a tag.
function M.tag(name, value)
  check(type(name) == "string", "tag", "name must be a string")
  local run = current_run()
  if run then return done(run:set_tag(name, value)) end
  return emit({ tag = name, value = value })
end

--- log.artifact(path[, role]): a file or directory read ("in") or
--- written ("out", the default), recorded with its hash and size.
function M.artifact(path, role)
  check(type(path) == "string", "artifact", "path must be a string")
  check(role == nil or role == "in" or role == "out", "artifact", "role must be \"in\" or \"out\"")
  local run = current_run()
  if run then return done(run:log_artifact(path, role)) end
  return emit({ artifact = path, role = role })
end

return M
