--- mlx.argparse: command-line options as a user of git expects them.
---
--- An option spec is a table: { "name", short = "n", arg = "METAVAR",
--- type = "integer"|"number"|"string", multiple = true, help = "…" }.
--- Without `arg` the option is a flag (true when given). Long options take
--- `--name value` or `--name=value`; short ones `-n value`, `-nvalue`, and
--- flags bundle (`-fk`). With `optional = true` the long option's value is
--- optional and comes only after `=` (`--name` alone is true, as git's
--- `--abbrev[=N]`), so one letter keeps one meaning across commands. `--` ends the options; a lone `-` is positional.
--- Keys in the result use `_` for `-` (`--keep-going` → opts.keep_going).
---
--- A spec with `retired = "what to use instead"` (and `short` and/or a
--- name) is an old spelling that now means something else elsewhere: it is
--- refused with that text, never silently taken for another option, and
--- left out of the help.
local ui = require "mlx.ui"

local M = {}

local function key_of(name)
  return (name:gsub("-", "_"))
end

local function convert(spec, value, shown)
  if spec.type == "integer" then
    local n = math.tointeger(tonumber(value))
    if not n then ui.usage_error("option '%s' needs an integer, not '%s'", shown, value) end
    return n
  elseif spec.type == "number" then
    local n = tonumber(value)
    if not n then ui.usage_error("option '%s' needs a number, not '%s'", shown, value) end
    return n
  end
  return value
end

local function store(opts, spec, value, shown)
  local key = key_of(spec[1])
  if spec.arg then
    value = convert(spec, value, shown)
    if spec.multiple then
      opts[key] = opts[key] or {}
      table.insert(opts[key], value)
      return
    end
  end
  opts[key] = value
end

--- Parses argv[first..#argv] against the option specs.
--- Returns opts (a table keyed by option name) and the positional arguments.
--- Raises a usage failure (exit 2) naming the option for an unknown option, a
--- missing or malformed value, or a value given to a flag.
---@param specs table list of option specs
---@param argv table the arguments
---@param config table|nil { first = index to start at (1), context = "mlx hash"
---   for messages, stop_at_positional = true to leave everything from the
---   first positional argument on unparsed }
function M.parse(specs, argv, config)
  config = config or {}
  local context = config.context or "mlx"
  local hint = config.hint and (" (see '" .. config.hint .. "')") or ""
  local by_long, by_short = {}, {}
  for _, spec in ipairs(specs) do
    if spec[1] then by_long[spec[1]] = spec end
    if spec.short then by_short[spec.short] = spec end
  end
  local function refuse_retired(spec, shown)
    if spec.retired then
      ui.usage_error("option '%s' of '%s' is retired: %s%s", shown, context, spec.retired, hint)
    end
  end
  local opts, positional = {}, {}
  for _, spec in ipairs(specs) do
    if not spec.retired then
      if spec.multiple then opts[key_of(spec[1])] = {} end
      if spec.default ~= nil then opts[key_of(spec[1])] = spec.default end
    end
  end

  local i = config.first or 1
  local n = #argv
  while i <= n do
    local a = argv[i]
    if a == "--" then
      for j = i + 1, n do positional[#positional + 1] = argv[j] end
      break
    elseif a:sub(1, 2) == "--" then
      local name, value = a:match("^%-%-([^=]+)=(.*)$")
      name = name or a:sub(3)
      local spec = by_long[name]
      if not spec then
        -- A mistyped long option (--jbos) gets the one it was meant as;
        -- retired spellings are never suggested.
        local names = {}
        for long, known in pairs(by_long) do
          if not known.retired then names[#names + 1] = long end
        end
        local guess = require("mlx.suggest").closest(name, names)
        if guess then
          ui.usage_error("unknown option '--%s' for '%s'; did you mean '--%s'?%s", name, context, guess, hint)
        end
        ui.usage_error("unknown option '--%s' for '%s'%s", name, context, hint)
      end
      refuse_retired(spec, "--" .. name)
      if spec.arg and spec.optional and value == nil then
        opts[key_of(spec[1])] = true
      elseif spec.arg then
        if value == nil then
          i = i + 1
          value = argv[i]
          if value == nil then
            ui.usage_error("option '--%s' needs a value (%s)%s", name, spec.arg, hint)
          end
        end
        store(opts, spec, value, "--" .. name)
      else
        if value ~= nil then
          ui.usage_error("option '--%s' takes no value%s", name, hint)
        end
        store(opts, spec, true)
      end
    elseif a:sub(1, 1) == "-" and #a > 1 then
      local j = 2
      while j <= #a do
        local c = a:sub(j, j)
        local spec = by_short[c]
        if not spec then
          ui.usage_error("unknown option '-%s' for '%s'%s", c, context, hint)
        end
        refuse_retired(spec, "-" .. c)
        if spec.arg then
          local value = a:sub(j + 1)
          if value == "" then
            i = i + 1
            value = argv[i]
            if value == nil then
              ui.usage_error("option '-%s' needs a value (%s)%s", c, spec.arg, hint)
            end
          end
          store(opts, spec, value, "-" .. c)
          break
        end
        store(opts, spec, true)
        j = j + 1
      end
    else
      if config.stop_at_positional then
        for j = i, n do positional[#positional + 1] = argv[j] end
        break
      end
      positional[#positional + 1] = a
    end
    i = i + 1
  end
  return opts, positional
end

--- Returns how an option is written in help: "-j, --jobs N" or "--keep".
function M.spelling(spec)
  local left = spec.short and ("-" .. spec.short .. ", ") or ""
  if spec.arg and spec.optional then return left .. "--" .. spec[1] .. "[=" .. spec.arg .. "]" end
  return left .. "--" .. spec[1] .. (spec.arg and (" " .. spec.arg) or "")
end

--- Returns the help lines for a list of option specs, aligned (retired
--- spellings left out).
function M.describe(specs)
  local rows, width = {}, 0
  for _, spec in ipairs(specs) do
    if not spec.retired then
      local left = (spec.short and "" or "    ") .. M.spelling(spec)
      rows[#rows + 1] = { left, spec.help or "" }
      width = math.max(width, #left)
    end
  end
  local lines = {}
  for _, row in ipairs(rows) do
    lines[#lines + 1] = ("  %-" .. width .. "s  %s"):format(row[1], row[2])
  end
  return lines
end

return M
