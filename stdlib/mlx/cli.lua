--- mlx.cli: the mlx command line. Subcommands are modules mlx.cli.NAME, found
--- among the built-in ones first, then on package.path (the project's lib/
--- and MLX_PATH), so that lib/mlx/cli/hello.lua becomes `mlx hello`.
---
--- A command module returns a table: { summary = "one line", usage = "…",
--- description = "…", options = { option specs, see mlx.argparse },
--- args = { min = 0, max = n, name = "what is missing" },
--- stop_at_positional = bool, main = function(opts, args) return exit_code end,
--- subcommands = { { name = "show", and the same fields }, … } }.
--- A command with subcommands dispatches on its first argument (`mlx model
--- register …`); its own main, if any, runs when no subcommand is named
--- (`mlx runs`). The help, docs/cli.md and the man page are all made from
--- these declarations (tools/clidocs.lua).
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
-- --debug is global, and also accepted after the command (unless the
-- command gives it a meaning of its own), where users type it.
local DEBUG_OPTION = { "debug", help = "show Lua tracebacks with errors (also before the command)" }

--- Options that mean the same in every command that has them: a command
--- takes them with M.option, so a letter or a name never means two things.
--- (tests/lua/test_cli.lua checks every declaration against each other.)
M.OPTIONS = {
  ["dry-run"] = { "dry-run", short = "n", help = "say what would be done; change nothing" },
  force = { "force", short = "f", help = "do it even when it would be refused or skipped" },
  filter = { "filter", arg = "EXPR", help = "only runs matching EXPR (MLflow's search syntax; see 'mlx help runs')" },
  limit = { "limit", arg = "N", type = "integer", default = 50, help = "show at most N (0: all; default 50)" },
  param = { "param", short = "p", arg = "KEY=VALUE", multiple = true,
    help = "a param value, converted to the type of its default (repeatable)" },
  ["params-file"] = { "params-file", arg = "FILE", help = "param values from a JSON object of name: value (-p wins)" },
  jobs = { "jobs", short = "j", arg = "N", type = "integer", help = "N threads or commands at once (default: one per CPU)" },
  json = { "json", help = "print JSON" },
  remote = { "remote", short = "r", arg = "NAME", help = "the remote to use (default: the default remote)" },
  ["run-cache"] = { "run-cache", help = "also move run-cache entries (of deterministic steps) and their objects" },
}

--- Returns a copy of the shared option spec `name` (see M.OPTIONS) with
--- the fields of `changes` (help, default) replaced. Raises for an unknown name.
function M.option(name, changes)
  local spec = assert(M.OPTIONS[name], "no shared option named " .. tostring(name))
  local copy = {}
  for k, v in pairs(spec) do copy[k] = v end
  for k, v in pairs(changes or {}) do copy[k] = v end
  return copy
end

-- What an existing path that is not a directory is, by fs.stat's type.
local KIND_NAMES = { file = "a file, not a directory", link = "a symbolic link to no directory",
  other = "a special file, not a directory" }

-- Is the existing path p (lstat'ed as s) a directory, or a symbolic link
-- that resolves to one?
local function is_directory(p, s)
  if s.type == "directory" then return true end
  if s.type ~= "link" then return false end
  local real = fs.realpath(p)
  local target = real and fs.stat(real)
  return target ~= nil and target.type == "directory"
end

--- Checks, before a command does its work, the path it will write its
--- output to (given as `name`: a flag such as "--out", or "DEST"): every
--- directory above it that exists must be a directory (or a link to one);
--- those missing are for the writer to make. Unless opts.directory, the
--- path must name a file: not empty, no final "/", not an existing
--- directory (opts.example, a file name, is suggested in it). Returns
--- nothing; raises a usage failure (exit 2) with one line naming name, the
--- path and the component at fault.
function M.check_output(name, path, opts)
  opts = opts or {}
  if path == "" then ui.usage_error("%s: the path is empty; name a file", name) end
  if not opts.directory and path:sub(-1) == "/" then
    ui.usage_error("%s %s: ends with '/'; name a file, e.g. %s%s", name, path, path, opts.example or "out")
  end
  -- Each existing prefix, from the top: the first missing one ends the walk
  -- (below it the writer makes the directories).
  local prefix = path:sub(1, 1) == "/" and "" or nil
  local parts = {}
  for part in path:gmatch("[^/]+") do parts[#parts + 1] = part end
  for i = 1, #parts - 1 do
    prefix = prefix and (prefix .. "/" .. parts[i]) or parts[i]
    local s = fs.stat(prefix)
    if not s then break end
    if not is_directory(prefix, s) then
      ui.usage_error("%s %s: %s is %s; choose a path whose parent directories are directories",
        name, path, prefix, KIND_NAMES[s.type] or "not a directory")
    end
  end
  local s = fs.stat(path)
  if not opts.directory and s and is_directory(path, s) then
    ui.usage_error("%s %s is a directory; name a file in it, e.g. %s %s/%s", name, path, name,
      (path:gsub("/+$", "")), opts.example or "out")
  end
end

--- Returns a spec for an old spelling that now means something else in
--- other commands: refused with `instead`, and left out of the help.
function M.retired(short, instead)
  return { short = short, retired = instead }
end

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

-- DVC's commands that mlx does under another name: a team moving from
-- DVC types these first.
local DVC_EQUIVALENTS = {
  repro = "mlx recipe RECIPE",
  params = "mlx metrics diff [REV] (it lists the params that differ; --all lists every one)",
  commit = "mlx add PATH, or mlx recipe RECIPE for a pipeline's outs",
  ["git-hook"] = "mlx init (it sets up git's merge driver for mlx.lock)",
  install = "mlx init (it sets up git's merge driver for mlx.lock)",
}

local function suggestion(name)
  local candidates = M.builtin_names()
  for _, user in ipairs(M.user_names()) do candidates[#candidates + 1] = user end
  return suggest.closest(name, candidates)
end

--- Returns the command module for name, or raises a usage failure (exit 2)
--- if there is no such command or its module does not compile or is not a
--- valid command.
function M.find(name)
  local modname = "mlx.cli." .. tostring(name)
  local found = valid_name(name) and (package.preload[modname]
    or package.searchpath(modname, package.path))
  if not found then
    if DVC_EQUIVALENTS[name] then
      ui.usage_error("'%s' is not an mlx command; for dvc %s, use %s", name, name, DVC_EQUIVALENTS[name])
    end
    local guess = valid_name(name) and suggestion(name)
    ui.usage_error("'%s' is not an mlx command%s", tostring(name),
      guess and ("; did you mean '" .. guess .. "'?") or " (see 'mlx help')")
  end
  if type(found) == "string" and not package.loaded[modname] then
    -- A command of the project's lib/ (or MLX_PATH) that does not compile
    -- is bad input, said in one line as for a recipe: require would wrap
    -- it in a second line and exit 1.
    local chunk, err = loadfile(found)
    if not chunk then ui.usage_error("%s", err) end
  end
  local command = require(modname)
  if type(command) ~= "table" or (type(command.main) ~= "function" and type(command.subcommands) ~= "table") then
    local where = type(found) == "string" and found or modname
    ui.usage_error("%s: a command module must return a table with a main function or subcommands", where)
  end
  return command
end

--- Returns the option specs a command (or subcommand) declaration accepts:
--- -h, its own options, and --debug unless it declares a debug of its own.
function M.specs(decl)
  local specs, own_debug = { HELP_OPTION }, false
  for _, spec in ipairs(decl.options or {}) do
    specs[#specs + 1] = spec
    if spec[1] == "debug" then own_debug = true end
  end
  if not own_debug then specs[#specs + 1] = DEBUG_OPTION end
  return specs
end

--- Returns the usage lines of a declaration: its own usage (for a command
--- with subcommands, only when it has a main of its own), then each
--- subcommand's. path is "model" or "model register".
function M.usage_lines(path, decl)
  local lines = {}
  if not decl.subcommands or decl.main then
    lines[1] = decl.usage or ("mlx " .. path .. " [options]")
  end
  for _, sub in ipairs(decl.subcommands or {}) do
    lines[#lines + 1] = sub.usage or ("mlx " .. path .. " " .. sub.name .. " [options]")
  end
  return lines
end

local function or_list(names)
  if #names == 1 then return names[1] end
  return table.concat(names, ", ", 1, #names - 1) .. " or " .. names[#names]
end

--- Returns the subcommand declaration of command named word, or nil.
function M.subcommand(command, word)
  for _, sub in ipairs(command.subcommands or {}) do
    if sub.name == word then return sub end
  end
  return nil
end

-- Raises the usage failure for word, which names no subcommand of command.
local function unknown_subcommand(name, command, word)
  local names = {}
  for _, sub in ipairs(command.subcommands) do names[#names + 1] = sub.name end
  local guess = suggest.closest(word, names)
  if guess then
    ui.usage_error("unknown 'mlx %s' subcommand '%s'; did you mean '%s'? (see 'mlx help %s')", name, word,
      guess, name)
  end
  ui.usage_error("unknown 'mlx %s' subcommand '%s' (%s; see 'mlx help %s')", name, word, or_list(names), name)
end

--- Returns the path ("model register") and declaration named by words
--- (a command name, then optionally a subcommand name), as `mlx help`
--- takes them. Raises a usage failure (exit 2) for an unknown name.
function M.resolve(words)
  local command = M.find(words[1])
  if not words[2] then return words[1], command end
  if not command.subcommands then
    ui.usage_error("'mlx %s' has no subcommands (see 'mlx help %s')", words[1], words[1])
  end
  local sub = M.subcommand(command, words[2]) or unknown_subcommand(words[1], command, words[2])
  return words[1] .. " " .. words[2], sub
end

local function options_lines(lines, specs)
  for _, line in ipairs(argparse.describe(specs)) do lines[#lines + 1] = line end
end

--- Returns the help text of a command or subcommand as a string: usage,
--- summary, description and options; a command with subcommands also
--- lists each subcommand with its usage, summary and options.
function M.command_help(path, decl)
  local usage = M.usage_lines(path, decl)
  local lines = { "usage: " .. (usage[1] or "") }
  for i = 2, #usage do lines[#lines + 1] = "       " .. usage[i] end
  lines[#lines + 1] = ""
  if decl.summary then lines[#lines + 1] = decl.summary end
  if decl.description then
    lines[#lines + 1] = ""
    lines[#lines + 1] = decl.description:gsub("%s+$", "")
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "options:"
  options_lines(lines, (not decl.subcommands or decl.main) and M.specs(decl) or { HELP_OPTION, DEBUG_OPTION })
  if decl.subcommands then
    lines[#lines + 1] = ""
    lines[#lines + 1] = "subcommands:"
    for _, sub in ipairs(decl.subcommands) do
      lines[#lines + 1] = ""
      lines[#lines + 1] = "  " .. (sub.usage or ("mlx " .. path .. " " .. sub.name))
      if sub.summary then lines[#lines + 1] = "    " .. sub.summary end
      local own = {}
      for _, spec in ipairs(sub.options or {}) do own[#own + 1] = spec end
      for _, line in ipairs(argparse.describe(own)) do lines[#lines + 1] = "  " .. line end
    end
    lines[#lines + 1] = ""
    lines[#lines + 1] = ("'mlx help %s SUBCOMMAND' tells more about one."):format(path)
  end
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
  lines[#lines + 1] = "'mlx help COMMAND [SUBCOMMAND]' tells more about one command."
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
    name, rest = "help", { "help", rest[1], rest[2] }
  elseif not name then
    io.stderr:write(M.overview())
    return ui.EXIT.USAGE
  end

  local command = M.find(name)
  local word = rest[2]
  if command.subcommands and word and word:sub(1, 1) ~= "-" then
    local sub = M.subcommand(command, word)
    if sub then return M.invoke(name .. " " .. word, sub, rest, 3) end
    if not command.main or ((command.args or {}).max or 0) == 0 then unknown_subcommand(name, command, word) end
  elseif command.subcommands and not command.main then
    local names = {}
    for _, sub in ipairs(command.subcommands) do names[#names + 1] = sub.name end
    if word == "-h" or word == "--help" then
      io.stdout:write(M.command_help(name, command))
      return ui.EXIT.OK
    end
    ui.usage_error("'mlx %s' needs a subcommand: %s (see 'mlx help %s')", name, or_list(names), name)
  end
  return M.invoke(name, command, rest, 2)
end

--- Parses argv[first..] against a command or subcommand declaration (path
--- as "runs show"), checks the number of arguments and returns what its
--- main returns (an exit code; 0 when it returns nothing). Prints the help
--- for -h. Raises a usage failure (exit 2) for bad options or arguments.
function M.invoke(path, decl, argv, first)
  local opts, args = argparse.parse(M.specs(decl), argv, {
    first = first, context = "mlx " .. path, hint = "mlx help " .. path,
    stop_at_positional = decl.stop_at_positional,
  })
  if opts.debug then M.globals.debug = true end
  if opts.help then
    io.stdout:write(M.command_help(path, decl))
    return ui.EXIT.OK
  end
  local arity = decl.args or {}
  if #args < (arity.min or 0) then
    ui.usage_error("'mlx %s' needs %s (see 'mlx help %s')", path, arity.name or "more arguments", path)
  end
  if arity.max and #args > arity.max then
    ui.usage_error("'mlx %s' takes at most %d argument%s, got '%s' (see 'mlx help %s')",
      path, arity.max, arity.max == 1 and "" or "s", args[arity.max + 1], path)
  end
  local code = decl.main(opts, args)
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
