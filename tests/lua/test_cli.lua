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

os.exit(lu.LuaUnit.run("-o", "tap"), true)
