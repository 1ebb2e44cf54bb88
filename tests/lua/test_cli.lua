-- mlx.cli: discovery of commands, help generation, exit codes of main.
local lu = require "luaunit"
local cli = require "mlx.cli"
local fs = require "mlx.fs"

TestCli = {}

function TestCli:test_builtin_commands_are_discovered()
  local names = cli.builtin_names()
  for _, expected in ipairs({ "hash", "help", "init", "lua", "recipe", "version" }) do
    lu.assertTableContains(names, expected)
  end
end

function TestCli:test_user_commands_come_from_package_path()
  local dir = os.tmpname()
  os.remove(dir)
  assert(fs.mkdirs(dir .. "/mlx/cli"))
  assert(fs.write(dir .. "/mlx/cli/greet.lua",
    'return { summary = "greet", main = function(_, a) return #a end }'))
  assert(fs.write(dir .. "/mlx/cli/hash.lua", 'return { main = function() return 99 end }'))
  local saved = package.path
  package.path = dir .. "/?.lua;" .. package.path
  local users = cli.user_names()
  lu.assertTableContains(users, "greet")
  lu.assertNotTableContains(users, "hash") -- a built-in is not shadowed
  lu.assertEquals(cli.main({ [0] = "mlx", "greet", "a", "b", "c" }), 3)
  lu.assertStrContains(cli.overview(), "greet")
  package.path = saved
  os.execute("rm -rf '" .. dir .. "'")
end

function TestCli:test_unknown_command_is_a_usage_error_with_a_suggestion()
  local ok, err = pcall(cli.find, "hahs")
  lu.assertFalse(ok)
  lu.assertEquals(err.code, 2)
  lu.assertStrContains(err.message, "did you mean 'hash'?")
end

function TestCli:test_command_help_lists_options()
  local text = cli.command_help("lua", cli.find("lua"))
  lu.assertStrContains(text, "usage: mlx lua")
  lu.assertStrContains(text, "-e, --execute CODE")
end

function TestCli:test_main_maps_errors_to_exit_codes()
  lu.assertEquals(cli.main({ [0] = "mlx", "lua", "-e", "x = 1" }), 0)
  lu.assertEquals(cli.main({ [0] = "mlx", "hash", "--nope" }), 2)
  lu.assertEquals(cli.main({ [0] = "mlx", "lua", "-e", "error('x')" }), 1)
end

-- Every declaration of every built-in command and subcommand, with its path.
local function declarations()
  local out = {}
  for _, name in ipairs(cli.builtin_names()) do
    local command = cli.find(name)
    out[#out + 1] = { path = name, decl = command }
    for _, sub in ipairs(command.subcommands or {}) do
      out[#out + 1] = { path = name .. " " .. sub.name, decl = sub }
    end
  end
  return out
end

-- A letter or a name means one thing in every command (issue: -n was a
-- limit in runs and a dry run in recipe; -d a description and a delete).
function TestCli:test_options_mean_one_thing_everywhere()
  local by_short, by_long = {}, {}
  local function note(path, spec)
    if spec.retired then return end
    local seen = by_short[spec.short or ""]
    if spec.short then
      if seen then
        lu.assertEquals(spec[1], seen.name, ("-%s is --%s in '%s' but --%s in '%s'"):format(spec.short, spec[1],
          path, seen.name, seen.path))
      end
      by_short[spec.short] = { name = spec[1], path = path }
    end
    local other = by_long[spec[1]]
    if other then
      -- The same name may be a flag in one command and take a value in
      -- another (--delete of an alias, --delete KEY of a tag), but never
      -- two letters or two types.
      local what = ("--%s in '%s' and '%s'"):format(spec[1], path, other.path)
      if spec.short and other.short then lu.assertEquals(spec.short, other.short, what) end
      if spec.arg and other.arg then lu.assertEquals(spec.type, other.type, what) end
    end
    other = other or {}
    by_long[spec[1]] = {
      arg = spec.arg or other.arg, short = spec.short or other.short, path = path,
      type = (spec.arg and spec.type) or other.type,
    }
  end
  for _, spec in ipairs(cli.global_options) do note("mlx", spec) end
  local n = 0
  for _, d in ipairs(declarations()) do
    for _, spec in ipairs(d.decl.options or {}) do
      note(d.path, spec)
      n = n + 1
    end
  end
  lu.assertTrue(n > 30, "the options of every command were seen")
  -- The shared ones are declared once and taken from there.
  for name, spec in pairs(cli.OPTIONS) do
    local seen = by_long[name]
    if seen and spec.short then lu.assertEquals(seen.short, spec.short, name) end
  end
  lu.assertEquals(by_short.n.name, "dry-run")
  lu.assertEquals(by_short.f.name, "force")
  lu.assertEquals(by_short.d.name, "description")
end

function TestCli:test_every_declaration_is_complete()
  for _, d in ipairs(declarations()) do
    lu.assertIsString(d.decl.summary, d.path .. " has a summary")
    if not d.decl.subcommands or d.decl.main then
      lu.assertIsString(d.decl.usage, d.path .. " has a usage")
      lu.assertStrContains(d.decl.usage, "mlx " .. d.path, false)
      lu.assertIsFunction(d.decl.main, d.path .. " has a main")
    end
    for _, spec in ipairs(d.decl.options or {}) do
      if not spec.retired then lu.assertIsString(spec.help, d.path .. " --" .. spec[1] .. " has a help") end
    end
  end
end

function TestCli:test_subcommands_are_resolved_and_described()
  local path, decl = cli.resolve({ "model", "alias" })
  lu.assertEquals(path, "model alias")
  lu.assertStrContains(cli.command_help(path, decl), "--rollback")
  local text = cli.command_help(cli.resolve({ "runs" }))
  lu.assertStrContains(text, "mlx runs show ID [--json]")
  lu.assertStrContains(text, "-c, --changed")
  local ok, err = pcall(cli.resolve, { "model", "regster" })
  lu.assertFalse(ok)
  lu.assertEquals(err.code, 2)
  lu.assertStrContains(err.message, "did you mean 'register'?")
end

-- The one map from failure codes (nil, message, code) to exit codes.
function TestCli:test_failure_codes_map_to_exit_codes_in_one_place()
  local ui = require "mlx.ui"
  lu.assertEquals(ui.exit_code_for("invalid"), 2)
  lu.assertEquals(ui.exit_code_for("notfound"), 2)
  lu.assertEquals(ui.exit_code_for("corrupt"), 1)
  lu.assertEquals(ui.exit_code_for("corrupt", "corrupt"), 2)
  lu.assertEquals(ui.exit_code_for("io"), 1)
  lu.assertEquals(ui.exit_code_for(nil), 1)
  local ok, err = pcall(ui.exit_code_for, "interrupted")
  lu.assertEquals({ ok, err }, { false, "interrupted" })
  lu.assertEquals(ui.check(42, "unused", "io"), 42)
  local function failure(f, ...)
    local fok, f_err = pcall(f, ...)
    lu.assertFalse(fok)
    lu.assertTrue(ui.is_failure(f_err))
    return f_err.code, f_err.message
  end
  lu.assertEquals({ failure(ui.check, nil, "no run with id 'x'", "notfound") }, { 2, "no run with id 'x'" })
  lu.assertEquals({ failure(ui.check, nil, "disk full", "io") }, { 1, "disk full" })
  lu.assertEquals({ failure(ui.check, nil, "runs.db is not a database", "corrupt") }, { 1, "runs.db is not a database" })
  lu.assertEquals({ failure(ui.check_file, nil, "runs.db is not a database", "corrupt") },
    { 2, "runs.db is not a database" })
  lu.assertEquals({ failure(ui.check, nil, "100% done", "io") }, { 1, "100% done" })
end

os.exit(lu.LuaUnit.run("-o", "tap"), true)
