-- mlx.argparse: options as git users expect them.
local lu = require "luaunit"
local argparse = require "mlx.argparse"
local ui = require "mlx.ui"

local SPECS = {
  { "jobs", short = "j", arg = "N", type = "integer" },
  { "param", short = "p", arg = "K=V", multiple = true },
  { "force", short = "f" },
  { "keep-going", short = "k" },
}

local function usage_error_of(fn)
  local ok, err = pcall(fn)
  lu.assertFalse(ok)
  lu.assertTrue(ui.is_failure(err), tostring(err))
  lu.assertEquals(err.code, 2)
  return err.message
end

TestArgparse = {}

function TestArgparse:test_long_short_and_equals_forms()
  local opts, args = argparse.parse(SPECS,
    { "a", "--jobs", "3", "-p", "x=1", "--param=y=2", "-py=3", "b", "-fk" })
  lu.assertEquals(opts.jobs, 3)
  lu.assertEquals(opts.param, { "x=1", "y=2", "y=3" })
  lu.assertTrue(opts.force)
  lu.assertTrue(opts.keep_going)
  lu.assertEquals(args, { "a", "b" })
end

function TestArgparse:test_an_optional_value_comes_after_equals_or_with_the_letter()
  local specs = { { "remote", short = "r", arg = "NAME", optional = true } }
  local opts, args = argparse.parse(specs, { "--remote", "recipe.lua" })
  lu.assertEquals({ opts.remote, args }, { true, { "recipe.lua" } })
  opts = argparse.parse(specs, { "--remote=origin" })
  lu.assertEquals(opts.remote, "origin")
  opts = argparse.parse(specs, { "-r", "ci" })
  lu.assertEquals(opts.remote, "ci")
  lu.assertStrContains(usage_error_of(function() argparse.parse(specs, { "-r" }) end), "'-r' needs a value")
  lu.assertEquals(argparse.spelling(specs[1]), "-r, --remote[=NAME]")
end

function TestArgparse:test_double_dash_ends_options_and_dash_is_positional()
  local opts, args = argparse.parse(SPECS, { "-", "--", "--force", "-j" })
  lu.assertNil(opts.force)
  lu.assertEquals(args, { "-", "--force", "-j" })
end

function TestArgparse:test_stop_at_positional_leaves_the_rest()
  local opts, args = argparse.parse(SPECS, { "-f", "script.lua", "-j", "2" }, { stop_at_positional = true })
  lu.assertTrue(opts.force)
  lu.assertNil(opts.jobs)
  lu.assertEquals(args, { "script.lua", "-j", "2" })
end

function TestArgparse:test_unknown_options_name_the_option_and_the_command()
  local msg = usage_error_of(function() argparse.parse(SPECS, { "--frobnicate" }, { context = "mlx hash", hint = "mlx help hash" }) end)
  lu.assertEquals(msg, "unknown option '--frobnicate' for 'mlx hash' (see 'mlx help hash')")
  msg = usage_error_of(function() argparse.parse(SPECS, { "-fz" }, { context = "mlx x" }) end)
  lu.assertStrContains(msg, "unknown option '-z'")
end

function TestArgparse:test_a_mistyped_long_option_gets_a_suggestion()
  local msg = usage_error_of(function() argparse.parse(SPECS, { "--jbos", "2" }, { context = "mlx hash", hint = "mlx help hash" }) end)
  lu.assertEquals(msg, "unknown option '--jbos' for 'mlx hash'; did you mean '--jobs'? (see 'mlx help hash')")
  msg = usage_error_of(function() argparse.parse(SPECS, { "--forc=1" }, { context = "mlx x" }) end)
  lu.assertEquals(msg, "unknown option '--forc' for 'mlx x'; did you mean '--force'?")
end

function TestArgparse:test_bad_values_are_usage_errors()
  lu.assertStrContains(usage_error_of(function() argparse.parse(SPECS, { "--jobs" }) end), "needs a value")
  lu.assertStrContains(usage_error_of(function() argparse.parse(SPECS, { "-j", "many" }) end), "needs an integer, not 'many'")
  lu.assertStrContains(usage_error_of(function() argparse.parse(SPECS, { "--force=yes" }) end), "takes no value")
end

function TestArgparse:test_describe_aligns_options()
  local lines = argparse.describe({ { "jobs", short = "j", arg = "N", help = "threads" }, { "force", help = "again" } })
  lu.assertEquals(lines, { "  -j, --jobs N  threads", "      --force   again" })
end

function TestArgparse:test_retired_spellings_are_refused_with_the_new_one()
  local specs = { { "limit", arg = "N", type = "integer" }, { short = "n", retired = "use --limit N" } }
  lu.assertEquals(usage_error_of(function() argparse.parse(specs, { "-n", "5" }, { context = "mlx runs" }) end),
    "option '-n' of 'mlx runs' is retired: use --limit N")
  lu.assertEquals(argparse.parse(specs, { "--limit", "5" }).limit, 5)
  lu.assertEquals(argparse.describe(specs), { "      --limit N  " })
end

os.exit(lu.LuaUnit.run("-o", "tap"), true)
