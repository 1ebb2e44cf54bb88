--- mlx.track.events: metrics, params, tags and artifacts from a process in
--- any language. mlx gives the process MLX_RUN_ID and MLX_EVENTS (a file
--- path); the process appends one JSON object per line:
---
---     {"metric": "loss", "value": 0.31, "step": 12}
---     {"metrics": {"loss": 0.31, "acc": 0.9}, "step": 12}
---     {"param": "lr", "value": 0.1}          {"params": {"lr": 0.1, "opt": "adam"}}
---     {"tag": "stage", "value": "train"}     {"tags": {"stage": "train"}}
---     {"artifact": "work/model.bin", "role": "out"}
---
--- A reader ingests the complete lines added since its last poll while the
--- process runs, and the rest when it ends. A malformed line is reported
--- with its number and text and skipped; the others are not affected.
local json = require "mlx.json"
local ui = require "mlx.ui"

local M = {}

local OBJECT = getmetatable(json.object())
local CHUNK = 1 << 20
local NONFINITE = { NaN = 0 / 0, Infinity = math.huge, ["-Infinity"] = -math.huge }

-- Python's json module writes NaN, Infinity and -Infinity bare, which JSON
-- does not allow; as a second chance they are read as strings.
local function quote_nonfinite(line)
  return (line:gsub("([:,%[]%s*)(%-?Infinity)%f[^%w]", '%1"%2"'):gsub("([:,%[]%s*)(NaN)%f[^%w]", '%1"%2"'))
end

local function decode(line)
  local event, err = json.decode(line)
  if event == nil and (line:find("NaN", 1, true) or line:find("Infinity", 1, true)) then
    event = json.decode(quote_nonfinite(line))
  end
  if event == nil then return nil, (err:gsub("^invalid JSON at line %d+, column", "invalid JSON at column")) end
  if getmetatable(event) ~= OBJECT then return nil, "not a JSON object" end
  return event
end

local function number_of(v)
  if type(v) == "string" then return NONFINITE[v] end
  if type(v) == "number" then return v end
  return nil
end

local function step_of(event)
  local step = event.step
  if step == nil then return true, nil end
  step = math.tointeger(step)
  if not step then return false, "\"step\" must be an integer" end
  return true, step
end

local function is_scalar(v)
  local t = type(v)
  return t == "string" or t == "number" or t == "boolean"
end

-- Each handler records one event in run, or returns why it cannot.
local handlers = {}

function handlers.metric(run, event)
  local key, value = event.metric, number_of(event.value)
  if type(key) ~= "string" then return "\"metric\" must be a name (a string)" end
  if value == nil then return "\"value\" must be a number" end
  local ok, step = step_of(event)
  if not ok then return step end
  local ts = event.timestamp ~= nil and math.tointeger(event.timestamp)
  if event.timestamp ~= nil and not ts then return "\"timestamp\" must be an integer (milliseconds)" end
  return select(2, run:log_metric(key, value, step, ts or nil))
end

function handlers.metrics(run, event)
  if getmetatable(event.metrics) ~= OBJECT then return "\"metrics\" must be an object of numbers" end
  local ok, step = step_of(event)
  if not ok then return step end
  local values = {}
  for k, v in pairs(event.metrics) do
    values[k] = number_of(v)
    if values[k] == nil then return ("metric \"%s\" must be a number"):format(k) end
  end
  return select(2, run:log_metrics(values, step))
end

local function key_value(setter, what)
  return function(run, event)
    local key, value = event[what], event.value
    if type(key) ~= "string" then return ("\"%s\" must be a name (a string)"):format(what) end
    if not is_scalar(value) then return "\"value\" must be a string, number or boolean" end
    return select(2, run[setter](run, key, value))
  end
end

local function key_values(setter, what)
  return function(run, event)
    local t = event[what]
    if getmetatable(t) ~= OBJECT then return ("\"%s\" must be an object"):format(what) end
    for k, v in pairs(t) do
      if not is_scalar(v) then return ("\"%s\" must be a string, number or boolean"):format(k) end
    end
    return select(2, run[setter](run, t))
  end
end

handlers.param = key_value("log_param", "param")
handlers.params = key_values("log_params", "params")
handlers.tag = key_value("set_tag", "tag")
handlers.tags = key_values("set_tags", "tags")

function handlers.artifact(run, event, dir)
  local path, role = event.artifact, event.role or "out"
  if type(path) ~= "string" or path == "" then return "\"artifact\" must be a path" end
  if role ~= "in" and role ~= "out" then return "\"role\" must be \"in\" or \"out\"" end
  -- A relative path is the child's: relative to its working directory.
  local where = (path:sub(1, 1) == "/" or not dir) and path or (dir .. "/" .. path)
  local facts, err = require("mlx.track").measure_artifact(where)
  if not facts then return err end
  facts.role, facts.path = role, path
  return select(2, run:record_artifact(facts))
end

local KINDS = { "metric", "metrics", "param", "params", "tag", "tags", "artifact" }

-- Records one event; returns nil or why it was skipped.
local function record(run, event, dir)
  for _, kind in ipairs(KINDS) do
    if event[kind] ~= nil then
      local ok, why = pcall(handlers[kind], run, event, dir)
      if not ok then return tostring(why):gsub("^[^:]*:%d+: ", "") end
      return why
    end
  end
  return "no \"metric\", \"metrics\", \"param\", \"params\", \"tag\", \"tags\" or \"artifact\" field"
end

local Reader = {}
Reader.__index = Reader

--- Returns a reader of the events file at path (which need not exist yet)
--- that records into run (an mlx.Run). options: dir, the child's working
--- directory, against which relative artifact paths are measured (they are
--- recorded as written); on_malformed(line_number, text, why), called for
--- each line skipped — by default it prints "mlx: warning: PATH:LINE:
--- skipped event: WHY: TEXT". The reader's fields events (lines recorded)
--- and malformed ({line, text, why}…) count what it did; opened is true
--- once the file was found (a step that logs nothing never makes it).
function M.reader(run, path, options)
  assert(type(path) == "string", "events reader: path must be a string")
  options = options or {}
  local on_malformed = options.on_malformed or function(line, text, why)
    if #text > 200 then text = text:sub(1, 200) .. "…" end
    ui.warn(("%s:%d: skipped event: %s: %s"):format(path, line, why, text))
  end
  return setmetatable({ run = run, path = path, dir = options.dir, offset = 0, line = 0, partial = "",
    events = 0, malformed = {}, on_malformed = on_malformed }, Reader)
end

function Reader:ingest(text)
  self.line = self.line + 1
  text = text:gsub("\r$", "")
  if not text:find("%S") then return 0 end
  local event, why = decode(text)
  if event then why = record(self.run, event, self.dir) end
  if why then
    self.malformed[#self.malformed + 1] = { line = self.line, text = text, why = why }
    self.on_malformed(self.line, text, why)
    return 0
  end
  self.events = self.events + 1
  return 1
end

--- Records the complete lines appended since the last poll (a last line
--- without its newline waits for the next poll) and writes them to the
--- database. Returns the number of events recorded; nil, message, code if
--- the file exists but cannot be read.
function Reader:poll()
  if not self.file then
    local f, err, errno = io.open(self.path, "rb")
    if not f then
      if errno == 2 then return 0 end -- not written yet
      return nil, err, "io"
    end
    self.file = f
    self.opened = true
  end
  local n = 0
  self.file:seek("set", self.offset)
  while true do
    local data = self.file:read(CHUNK)
    if not data then break end
    self.offset = self.offset + #data
    data = self.partial .. data
    local start = 1
    while true do
      local nl = data:find("\n", start, true)
      if not nl then break end
      n = n + self:ingest(data:sub(start, nl - 1))
      start = nl + 1
    end
    self.partial = data:sub(start)
  end
  local ok, err, code = self.run:flush()
  if not ok then return nil, err, code end
  return n
end

--- Polls a last time, records a final line that has no newline, and closes
--- the file. Returns the total number of events recorded and the list of
--- malformed lines; nil, message, code as poll.
function Reader:finish()
  local n, err, code = self:poll()
  if not n then return nil, err, code end
  if self.partial ~= "" then
    self:ingest(self.partial)
    self.partial = ""
    local ok, ferr, fcode = self.run:flush()
    if not ok then return nil, ferr, fcode end
  end
  if self.file then
    self.file:close()
    self.file = nil
  end
  return self.events, self.malformed
end

return M
