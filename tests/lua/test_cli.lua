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
