--- mlx.cli: the mlx command line. Subcommands are modules mlx.cli.NAME, found
--- among the built-in ones first, then on package.path (the project's lib/
--- and MLX_PATH), so that lib/mlx/cli/hello.lua becomes `mlx hello`.
---
--- A command module returns a table: { summary = "one line", usage = "…",
--- description = "…", options = { option specs, see mlx.argparse },
--- args = { min = 0, max = n }, stop_at_positional = bool,
--- main = function(opts, args) return exit_code end }.
local argparse = require "mlx.argparse"
local core = require "mlx.core"
local fs = require "mlx.fs"
local project = require "mlx.project"
local suggest = require "mlx.suggest"
local ui = require "mlx.ui"

local M = {}

--- Options accepted before the command name.
M.global_options = {
  { "help", short = "h", help = "show help (of a command: mlx help CMD)" },
  { "version", help = "print the version (with -v: of each library too)" },
  { "verbose", short = "v", help = "say more" },
  { "debug", help = "show Lua tracebacks with errors" },
  { "directory", short = "C", arg = "DIR", help = "run as if mlx was started in DIR" },
}

local HELP_OPTION = { "help", short = "h", help = "show this help" }

local function valid_name(name)
  return type(name) == "string" and name:match("^[%w][%w_%-]*$") ~= nil
end

--- Returns the sorted names of the built-in commands.
function M.builtin_names()
  local names = {}
  if core.stdlib_path then
    for _, file in ipairs(fs.list(core.stdlib_path .. "/mlx/cli") or {}) do
      local name = file:match("^(.+)%.lua$")
      if name then names[#names + 1] = name end
    end
  else
    for _, module in ipairs(core.embedded()) do
      local name = module:match("^mlx%.cli%.([^.]+)$")
      if name then names[#names + 1] = name end
    end
  end
  table.sort(names)
  return names
end

--- Returns the sorted names of the commands users added on package.path
--- (those that do not shadow a built-in one).
function M.user_names()
  local builtin, seen, names = {}, {}, {}
  for _, name in ipairs(M.builtin_names()) do builtin[name] = true end
  for template in package.path:gmatch("[^;]+") do
    local dir = template:match("^(.*)%?%.lua$")
    if dir and dir ~= "" then
      for _, file in ipairs(fs.list(dir .. "mlx/cli") or {}) do
        local name = file:match("^(.+)%.lua$")
        if name and valid_name(name) and not builtin[name] and not seen[name] then
          seen[name] = true
          names[#names + 1] = name
        end
      end
    end
  end
  table.sort(names)
  return names
end

local function suggestion(name)
  local candidates = M.builtin_names()
  for _, user in ipairs(M.user_names()) do candidates[#candidates + 1] = user end
  return suggest.closest(name, candidates)
end

--- Returns the command module for name, or raises a usage failure (exit 2)
--- if there is no such command or its module is not a valid command.
function M.find(name)
  local modname = "mlx.cli." .. tostring(name)
  local found = valid_name(name) and (package.preload[modname]
    or package.searchpath(modname, package.path))
  if not found then
    local guess = valid_name(name) and suggestion(name)
    ui.usage_error("'%s' is not an mlx command%s", tostring(name),
      guess and ("; did you mean '" .. guess .. "'?") or " (see 'mlx help')")
  end
  local command = require(modname)
  if type(command) ~= "table" or type(command.main) ~= "function" then
    local where = type(found) == "string" and found or modname
    ui.usage_error("%s: a command module must return a table with a main function", where)
  end
  return command
end

--- Returns the help text of a command as a string.
function M.command_help(name, command)
  local lines = { "usage: " .. (command.usage or ("mlx " .. name .. " [options]")), "" }
  if command.summary then lines[#lines + 1] = command.summary end
  if command.description then
    lines[#lines + 1] = ""
    lines[#lines + 1] = command.description:gsub("%s+$", "")
  end
  local specs = { HELP_OPTION }
  for _, spec in ipairs(command.options or {}) do specs[#specs + 1] = spec end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "options:"
  for _, line in ipairs(argparse.describe(specs)) do lines[#lines + 1] = line end
  return table.concat(lines, "\n") .. "\n"
end

--- Returns the text of `mlx help`: global options and every command.
function M.overview()
  local lines = {
    "usage: mlx [--version] [-v] [--debug] [-C DIR] COMMAND [ARGS...]",
    "",
    "mlx runs recipes: Lua files that automate, test, version and deploy ML work.",
    "",
    "commands:",
  }
  local function add(names)
    for _, name in ipairs(names) do
      local ok, command = pcall(M.find, name)
      local summary = ok and command.summary or "(cannot be loaded: see 'mlx help " .. name .. "')"
      lines[#lines + 1] = ("  %-10s %s"):format(name, summary)
    end
  end
  add(M.builtin_names())
  local user = M.user_names()
  if #user > 0 then
    lines[#lines + 1] = ""
    lines[#lines + 1] = "commands added by this project (lib/) and MLX_PATH:"
    add(user)
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "global options:"
  for _, line in ipairs(argparse.describe(M.global_options)) do lines[#lines + 1] = line end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "'mlx help COMMAND' tells more about one command."
  return table.concat(lines, "\n") .. "\n"
end

--- The global options of the running invocation (debug, verbose, …).
M.globals = {}

local function run(argv)
  local globals, rest = argparse.parse(M.global_options, argv,
    { context = "mlx", hint = "mlx help", stop_at_positional = true })
  M.globals = globals
  -- Library modules take options; the CLI passes its own. (mlx.http loads
  -- libcurl only at its first request.)
  if globals.verbose then require("mlx.http").set_defaults { verbose = true } end
  if globals.directory then
    local ok, err = fs.chdir(globals.directory)
    if not ok then ui.usage_error("-C: %s", err) end
  end
  project.setup_package_path()

  local name = rest[1]
  if globals.version then
    name, rest = "version", { "version" }
  elseif globals.help then
    name, rest = "help", { "help", rest[1] }
  elseif not name then
    io.stderr:write(M.overview())
    return ui.EXIT.USAGE
  end

  local command = M.find(name)
  local specs = { HELP_OPTION }
  for _, spec in ipairs(command.options or {}) do specs[#specs + 1] = spec end
  local opts, args = argparse.parse(specs, rest, {
    first = 2, context = "mlx " .. name, hint = "mlx help " .. name,
    stop_at_positional = command.stop_at_positional,
  })
  if opts.help then
    io.stdout:write(M.command_help(name, command))
    return ui.EXIT.OK
  end
  local arity = command.args or {}
  if #args < (arity.min or 0) then
    ui.usage_error("'mlx %s' needs %s (see 'mlx help %s')", name,
      arity.name or "more arguments", name)
  end
  if arity.max and #args > arity.max then
    ui.usage_error("'mlx %s' takes at most %d argument%s, got '%s' (see 'mlx help %s')",
      name, arity.max, arity.max == 1 and "" or "s", args[arity.max + 1], name)
  end
  local code = command.main(opts, args)
  return math.tointeger(code) or ui.EXIT.OK
end

local function on_error(err)
  if ui.is_failure(err) or err == "interrupted" then return err end
  local message = tostring(err)
  if M.globals.debug then return debug.traceback(message, 2) end
  return message
end

--- Runs the mlx command line `argv` (argv[0] is the program) and returns the
--- exit code. Every error is reported here as one line on stderr (with a
--- traceback under --debug); nothing is raised to the caller.
function M.main(argv)
  local ok, result = xpcall(run, on_error, argv)
  if ok then return result end
  if result == "interrupted" then
    ui.note("interrupted")
    return ui.EXIT.INTERRUPTED
  end
  if ui.is_failure(result) then
    ui.error(result.message)
    return result.code
  end
  ui.error(result)
  return ui.EXIT.FAILED
end

return M
