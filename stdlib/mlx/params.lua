--- mlx.params: the parameters a recipe runs with. A recipe declares each
--- with its default; `mlx recipe FILE -p KEY=VALUE` (and --params-file)
--- overrides it, converted to the default's type:
---
---     local params = require("mlx.params").declare { model = "iris", min_accuracy = 0.9 }
---
--- A pipeline's p:params{…} declares through here too. A -p that names no
--- declared param is an error (exit 2) once the recipe has been loaded.
--- KEY=VALUE words among the recipe's arguments (`mlx recipe FILE x=1`)
--- whose KEY is a declared param set it too, over -p, as make takes its
--- variables; other words stay plain arguments (arg[1]...).
local ui = require "mlx.ui"

local M = {}

-- The -p values of the recipe being run (name → string or JSON value),
-- where each came from when not -p (name → "--params-file FILE"), and
-- every param declared while it runs (name → default), and the KEY=VALUE
-- words among its arguments (name → value string).
local overrides, origins, declared, words = {}, {}, {}, {}

--- Starts a recipe run: sets its -p values and forgets earlier declarations.
--- origins names where values came from other than -p (name → the flag and
--- file, e.g. "--params-file p.json"), for the messages about them. args are
--- the recipe's arguments: a KEY=VALUE word among them sets a declared
--- param KEY (the last such word wins).
function M.reset(values, from, args)
  overrides, origins, declared, words = values or {}, from or {}, {}, {}
  for _, word in ipairs(args or {}) do
    local key, value = tostring(word):match("^([%a_][%w_]*)=(.*)$")
    if key then words[key] = value end
  end
end

-- How a message names the given value of param name: "-p lr=abc", or the
-- params file it came from.
local function given_as(name, value)
  if origins[name] then return origins[name] end
  return value == nil and "-p " .. name or ("-p %s=%s"):format(name, tostring(value))
end

local TRUE_WORDS = { ["true"] = true, ["1"] = true, yes = true, on = true }
local FALSE_WORDS = { ["false"] = false, ["0"] = false, no = false, off = false }

--- Returns value (a -p string, or a value from a params file) converted to
--- the type of default, or nil and why it does not fit.
function M.coerce(value, default)
  if type(value) ~= "string" then
    if type(value) == type(default) then return value end
    return nil, ("must be a %s, not a %s"):format(type(default), type(value))
  end
  if math.type(default) == "integer" then
    local n = math.tointeger(tonumber(value))
    if not n then return nil, "must be an integer, not '" .. value .. "'" end
    return n
  elseif type(default) == "number" then
    local n = tonumber(value)
    if not n then return nil, "must be a number, not '" .. value .. "'" end
    return n + 0.0
  elseif type(default) == "boolean" then
    local b = TRUE_WORDS[value:lower()]
    if b == nil then b = FALSE_WORDS[value:lower()] end
    if b == nil then return nil, "must be true or false, not '" .. value .. "'" end
    return b
  end
  return value
end

--- Declares params with their defaults (numbers, strings, booleans) and
--- returns their values in effect: the value of a KEY=VALUE argument, else
--- of -p (or the params file), converted to the default's type, else the
--- default. Raises a usage failure (exit 2) for a name that is
--- not an identifier, a default of another type, or a -p value that does not
--- convert.
function M.declare(defaults)
  if type(defaults) ~= "table" then ui.usage_error("params must be a table of name = default") end
  local values = {}
  for name, default in pairs(defaults) do
    if type(name) ~= "string" or not name:match("^[%a_][%w_]*$") then
      ui.usage_error("param name %s must be an identifier", tostring(name))
    end
    local t = type(default)
    if t ~= "number" and t ~= "string" and t ~= "boolean" then
      ui.usage_error("param '%s' must default to a number, string or boolean, not %s", name, t)
    end
    declared[name] = default
    local given, how = words[name], nil
    if given ~= nil then
      how = ("argument %s=%s"):format(name, given)
    else
      given = overrides[name]
      how = given ~= nil and given_as(name, given)
    end
    if given ~= nil then
      local value, err = M.coerce(given, default)
      if value == nil then ui.usage_error("%s: param '%s' %s", how, name, err) end
      values[name] = value
    else
      values[name] = default
    end
  end
  return values
end

--- Raises a usage failure naming a -p param (or one of a params file) that
--- nothing declared, listing the declared ones; the recipe runner calls it
--- once the recipe is loaded.
function M.check()
  local unknown = {}
  for name in pairs(overrides) do
    if declared[name] == nil then unknown[#unknown + 1] = name end
  end
  if #unknown == 0 then return end
  table.sort(unknown)
  local names = {}
  for name in pairs(declared) do names[#names + 1] = name end
  table.sort(names)
  ui.usage_error("%s: the recipe declares no param '%s' (it declares: %s)", given_as(unknown[1]), unknown[1],
    #names > 0 and table.concat(names, ", ") or "none")
end

return M
