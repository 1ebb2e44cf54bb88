--- mlx.pipeline.key: what a step runs, and its key — the SHA-256 of a
--- canonical JSON encoding of exactly what DESIGN §4 lists: the resolved
--- command (or the Lua function's source text), the values of the params it
--- declares, the hash of every dep, the declared env variables' values, the
--- declared tools' version output, and the declared out paths.
local hash = require "mlx.hash"
local json = require "mlx.json"

local M = {}

--- Returns value as a POSIX shell word: as is when it is plain (letters,
--- digits and . _ - / : = + , @ %), else single-quoted.
function M.shell_word(value)
  local s = tostring(value)
  if s ~= "" and not s:find("[^%w%._%-/:=+,@%%]") then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local function substitute(text, values, declared, quote)
  if not text:find("${", 1, true) then return text end
  return (text:gsub("%${([^}]*)}", function(name)
    if not declared[name] then return nil end -- a shell variable: kept as written
    local v = values[name]
    return quote and M.shell_word(v) or tostring(v)
  end))
end

--- Returns the step's command with ${param} replaced by the param's value
--- for each param the step declares (any other ${NAME} is left to the
--- shell): for a string command (run by /bin/sh) each value is shell-quoted
--- when it is not a plain word; for an argv list each value is inserted as is.
function M.resolve_command(step, values)
  local declared = {}
  for _, name in ipairs(step.params or {}) do declared[name] = true end
  if type(step.cmd) == "string" then return substitute(step.cmd, values, declared, true) end
  local argv = {}
  for i, a in ipairs(step.cmd) do argv[i] = substitute(a, values, declared, false) end
  return argv
end

local source_cache = {}

--- Returns the source text of a Lua function (the lines that define it), so
--- that editing a step's function changes its key. Values it captures from
--- outside (upvalues) are not part of it: declare them as params.
function M.function_source(fn)
  local info = debug.getinfo(fn, "S")
  local lines = source_cache[info.source]
  if not lines then
    lines = {}
    if info.source:sub(1, 1) == "@" then
      local f = io.open(info.source:sub(2), "rb")
      if f then
        for line in f:lines() do lines[#lines + 1] = line end
        f:close()
      end
    elseif info.source:sub(1, 1) ~= "=" then
      for line in (info.source .. "\n"):gmatch("(.-)\r?\n") do lines[#lines + 1] = line end
    end
    source_cache[info.source] = lines
  end
  local body = table.concat(lines, "\n", info.linedefined, math.min(info.lastlinedefined, #lines))
  if body == "" then
    -- No source available (stripped or C): fall back to where it is defined.
    body = ("%s:%d-%d"):format(info.short_src, info.linedefined, info.lastlinedefined)
  end
  return body
end

--- Returns the key of step (64 hex digits) and the canonical record it hashes.
--- inputs = { values = {param → value}, dep_hashes = {path → hash},
--- env = {name → value or nil}, tools = {name → version text} }.
function M.compute(step, inputs)
  local record = { v = 1, outs = json.array({}) }
  if step.run then
    record.fn = M.function_source(step.run)
  else
    local cmd = M.resolve_command(step, inputs.values)
    record.cmd = type(cmd) == "table" and json.array(cmd) or cmd
  end
  record.params = json.object({})
  for _, name in ipairs(step.params) do record.params[name] = inputs.values[name] end
  record.deps = json.object({})
  for _, dep in ipairs(step.deps) do record.deps[dep] = inputs.dep_hashes[dep] or json.null end
  record.env = json.object({})
  for _, name in ipairs(step.env) do record.env[name] = inputs.env[name] or json.null end
  record.tools = json.object({})
  for name in pairs(step.tools) do record.tools[name] = inputs.tools[name] or json.null end
  local outs = {}
  for i, out in ipairs(step.outs) do outs[i] = out end
  table.sort(outs)
  for i, out in ipairs(outs) do record.outs[i] = out end
  return hash.bytes(json.encode(record)), record
end

return M
