--- mlx.pipeline.key: what a step runs, and its key — the SHA-256 of a
--- canonical JSON encoding of exactly what DESIGN §4 lists: the resolved
--- command (or the Lua function's source text), the values of the params it
--- declares, the hash of every dep, the declared env variables' values, the
--- declared tools' version output, and the declared out paths.
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
  -- Most commands name no param: no set of declared names to make.
  if type(step.cmd) == "string" and not step.cmd:find("${", 1, true) then return step.cmd end
  local declared = {}
  for _, name in ipairs(step.params or {}) do declared[name] = true end
  if type(step.cmd) == "string" then return substitute(step.cmd, values, declared, true) end
  local argv = {}
  for i, a in ipairs(step.cmd) do argv[i] = substitute(a, values, declared, false) end
  return argv
end

local source_cache = {}
-- Function → its source text: the 100,000 steps of a recipe often share one.
local fn_cache = setmetatable({}, { __mode = "k" })

--- Returns the source text of a Lua function (the lines that define it), so
--- that editing a step's function changes its key. Values it captures from
--- outside (upvalues) are not part of it: declare them as params.
function M.function_source(fn)
  local known = fn_cache[fn]
  if known then return known end
  local info = debug.getinfo(fn, "S")
  local lines = source_cache[info.source]
  if not lines then
    lines = {}
    local loaded = require("mlx.script").source(info.source)
    if loaded then
      -- Split as f:lines() splits the file, so the key stays the same.
      for line in loaded:gmatch("([^\n]*)\n?") do lines[#lines + 1] = line end
    elseif info.source:sub(1, 1) == "@" then
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
  fn_cache[fn] = body
  return body
end

local EMPTY_PARAMS = json.object({})
local NO_NAMES = {}

-- A value as json.encode writes it. Most strings here (paths, hashes,
-- names) need no escape and are plain ASCII: quoted here, without a call
-- into the encoder per string; any other value goes to json.encode.
local NEEDS_ENCODER = "[\0-\31\"\\\128-\255]"
local function encode(v)
  if type(v) == "string" and not v:find(NEEDS_ENCODER) then return '"' .. v .. '"' end
  return json.encode(v)
end
local fn_json = setmetatable({}, { __mode = "k" })

-- The piece ',"fn":"…"' of the key text of a Lua step whose function is
-- fn, made once per function: the 100,000 steps of a recipe often share
-- one, and its text is most of the key text's bytes.
local function fn_piece(fn)
  local text = fn_json[fn]
  if not text then
    text = ',"fn":' .. json.encode(M.function_source(fn))
    fn_json[fn] = text
  end
  return text
end

-- The JSON object {name → values[name]} over the names of list, exactly as
-- json.encode writes it: a nil or false value is null, or, when skip_nil,
-- nil is no key at all. Written in C (json.encode_fields): checking and
-- quoting each name and each 64-digit hash here was most of a key's cost.
local encode_fields = json.encode_fields
local function object_text(list, values, skip_nil)
  if #list == 0 then return "{}" end
  return encode_fields(list, values, skip_nil)
end

-- How many pieces key_pieces returns.
local PIECES = 14

-- The pieces of the key text of step that its deps and outs do not make:
-- the head ('{' or '{"cmd":…,'), the env object, the fn piece (or ""), the
-- params object and the tools object, as key_pieces joins them; cmd is the
-- resolved command (a json.array for an argv list), nil for a Lua step.
local function fixed_pieces(step, values, env, tools, cmd)
  local head, fn = "{", ""
  if step.run then
    fn = fn_piece(step.run)
  else
    head = '{"cmd":' .. json.encode(cmd) .. ","
  end
  local tool_names = NO_NAMES
  if next(step.tools) ~= nil then
    tool_names = {}
    for name in pairs(step.tools) do tool_names[#tool_names + 1] = name end
  end
  return head, object_text(step.env, env), fn, object_text(step.params, values, true), object_text(tool_names, tools)
end

-- The text whose SHA-256 is the key of step (see M.compute), as PIECES
-- strings to be joined; cmd as for fixed_pieces. In pieces, so that the
-- up-to-date check hashes them in C without joining them
-- (lockindex.same_key).
local function key_pieces(step, values, dep_hashes, env, tools, cmd)
  local head, env_text, fn, params_text, tools_text = fixed_pieces(step, values, env, tools, cmd)
  local outs = step.outs
  local out_text
  if #outs == 1 then
    out_text = encode(outs[1])
  else
    outs = table.move(outs, 1, #outs, 1, {})
    table.sort(outs)
    out_text = {}
    for i, out in ipairs(outs) do out_text[i] = encode(out) end
    out_text = table.concat(out_text, ",")
  end
  return head, '"deps":', object_text(step.deps, dep_hashes), ',"env":', env_text, fn, ',"outs":[', out_text, "]",
    ',"params":', params_text, ',"tools":', tools_text, ',"v":1}'
end

-- The SHA-256 of strings joined, in C: the key text is never one string.
local digest = require("mlx.stepgraph").digest

-- The resolved command of a command step as the key and the lock hold it.
local function command_of(step, values)
  local cmd = M.resolve_command(step, values)
  return type(cmd) == "table" and json.array(cmd) or cmd
end

--- Returns the key of step (64 hex digits) and the record of what it
--- covers that the lock keeps: {fn (the source text) or cmd (resolved),
--- params = {name → value}}. The key is the SHA-256 of the canonical JSON
--- (sorted keys, no spaces) of {v = 1, fn or cmd, params, deps = {path →
--- hash or null}, env = {name → value or null}, tools = {name → version or
--- null}, outs = [sorted paths]}, written here without building that
--- table: the same bytes json.encode makes of it, at a fraction of the
--- cost per step. Raises as json.encode does (a string that is not UTF-8).
--- inputs = { values = {param → value}, dep_hashes = {path → hash},
--- env = {name → value or nil}, tools = {name → version text} }.
function M.compute(step, inputs)
  local record = { v = 1 }
  local values = inputs.values
  if step.run then
    record.fn = M.function_source(step.run)
  else
    record.cmd = command_of(step, values)
  end
  local params = EMPTY_PARAMS
  if #step.params > 0 then
    params = json.object({})
    for _, name in ipairs(step.params) do params[name] = values[name] end
  end
  record.params = params
  return digest(key_pieces(step, values, inputs.dep_hashes, inputs.env, inputs.tools, record.cmd)), record
end

--- Returns the number of pieces and the pieces of the text whose SHA-256
--- is the key of step, as M.compute hashes it: the pieces joined are that
--- text. What a no-op needs of each step, with little garbage: the caller
--- hashes the pieces in C (lockindex.same_key) rather than joining them.
--- See M.compute for the arguments and failures.
function M.pieces(step, values, dep_hashes, env, tools)
  return PIECES, key_pieces(step, values, dep_hashes, env, tools, not step.run and command_of(step, values) or nil)
end

local plain_run = require("mlx.stepgraph").plain_run

--- Returns true when the pieces of step's key text (M.pieces) cannot raise
--- whatever the inputs: a Lua step of a step set without env, params or
--- tools (stepgraph.plain_run), whose function's piece is made already
--- and whose deps and outs json writes as they are; false when they might
--- (the caller then makes them). A dry run asks it for each never-run step
--- of a fresh plan, which shows no key: one call instead of the pieces.
--- run: what stepgraph.plain_run gave for step, when the caller has it.
function M.cannot_raise(step, run)
  run = run or plain_run(step)
  return run ~= nil and fn_json[run] ~= nil
end

--- Returns the five pieces M.fixed_pieces gives for a step that
--- stepgraph.plain_run answers with the function fn (a Lua step without
--- env, params or tools): '{', '{}', its function's piece, '{}', '{}'.
--- Raises as M.fixed_pieces does when the function's source cannot be read.
function M.plain_pieces(fn)
  return "{", "{}", fn_piece(fn), "{}", "{}"
end

--- Returns the five pieces of the key text of step that its deps and outs
--- do not make — the head ('{', or '{"cmd":…,' with the resolved command),
--- the env object, the fn piece ('' for a command step), the params object
--- and the tools object — for lockindex.same_step, which writes the deps
--- and outs between them from the hashes it holds. The same bytes M.compute
--- hashes; see it for the arguments (less dep_hashes) and failures.
function M.fixed_pieces(step, values, env, tools)
  return fixed_pieces(step, values, env, tools, not step.run and command_of(step, values) or nil)
end

return M
