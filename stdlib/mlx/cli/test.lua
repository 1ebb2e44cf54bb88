-- mlx test: run a project's LuaUnit tests (mlx.testing.runner), print TAP,
-- optionally write JUnit XML.
local cli = require "mlx.cli"
local core = require "mlx.core"
local fs = require "mlx.fs"
local project = require "mlx.project"
local ui = require "mlx.ui"

local function hostname()
  local f = io.open("/proc/sys/kernel/hostname", "r")
  local name = f and f:read("l") or "localhost"
  if f then f:close() end
  return name
end

local function make_tmpdir()
  local path = os.tmpname()
  os.remove(path)
  local ok, err = fs.mkdirs(path, tonumber("700", 8))
  if not ok then ui.fail(ui.EXIT.FAILED, "cannot make a temporary directory: %s", err) end
  return path
end

return {
  summary = "run the project's LuaUnit tests; TAP on stdout, JUnit XML with --junit",
  usage = "mlx test [PATH...] [--junit FILE] [-P PATTERN]... [--exclude PATTERN]... [--timeout SECONDS] [-j N]",
  description = [[
Runs LuaUnit tests with the mlx modules and mlx.testing available. Each
PATH is a test file or a directory whose test_*.lua files, at any depth,
are run (default: tests/ of the project root, or of the working directory
outside a project). Each file runs in its own mlx process, from the working
directory, with MLX_TEST_ROOT set to the project root; its tests are what
LuaUnit discovers (global Test* tables and test* functions), and a file
that ends with os.exit(lu.LuaUnit.run()) works as well. -P and --exclude
take Lua patterns matched against Class.method names (LuaUnit's own -p and
its -x; -p is --param in mlx). -j N runs N files at once (default 1: tests
may share the working directory). Prints TAP version 13 on stdout as each
file finishes, in the order of the files; --junit writes
the results as JUnit XML (testsuites, one testsuite per file) for CI test
reporters; its FILE is checked before any test runs (missing directories
are made). Exit codes: 0 every test passed (skips included), 1 a test
failed or a file did not run to the end, 2 usage (a PATH that does not
exist, a directory without test files, a bad option, a --junit FILE below a
file), 130 interrupted.]],
  options = {
    { "junit", arg = "FILE", help = "also write the results as JUnit XML to FILE" },
    { "pattern", short = "P", arg = "PATTERN", multiple = true,
      help = "run only tests whose Class.method name matches the Lua PATTERN (repeatable)" },
    { "exclude", arg = "PATTERN", multiple = true,
      help = "leave out tests whose Class.method name matches the Lua PATTERN (repeatable)" },
    { "timeout", arg = "SECONDS", type = "number",
      help = "stop a test file after SECONDS and count it as an error (default 600)" },
    cli.option("jobs", { help = "run N test files at once (default 1)" }),
  },
  main = function(opts, args)
    local root = project.root()
    local timeout = opts.timeout or 600
    if timeout <= 0 or timeout ~= timeout then ui.usage_error("--timeout needs a number of seconds > 0, not %s", tostring(opts.timeout)) end
    if opts.jobs and opts.jobs < 1 then ui.usage_error("--jobs needs a number of files >= 1, not %d", opts.jobs) end
    local paths = args
    if #paths == 0 then
      paths = { project.relative(root .. "/tests", fs.cwd()) }
      if not fs.stat(paths[1]) then
        ui.usage_error("%s: no tests directory; name the test files or directories (mlx test PATH...)", paths[1])
      end
    end
    -- Checked before the tests run, not when their results are written.
    if opts.junit then cli.check_output("--junit", opts.junit, { example = "junit.xml" }) end
    local runner = require "mlx.testing.runner"
    local files, err = runner.discover(paths)
    if not files then ui.usage_error("%s", err) end
    local patterns = {}
    for _, p in ipairs(opts.pattern) do patterns[#patterns + 1] = p end
    for _, p in ipairs(opts.exclude) do patterns[#patterns + 1] = "!" .. p end

    local report = require "mlx.testing.report"
    local tap = report.tap(function(line) io.stdout:write(line, "\n") io.stdout:flush() end)
    local tmpdir = make_tmpdir()
    local started = os.date("!%Y-%m-%dT%H:%M:%S")
    local clock0 = core.clock()
    local ok, suites = pcall(runner.run, files, { patterns = patterns, timeout = timeout, tmpdir = tmpdir,
      env = { MLX_TEST_ROOT = root }, jobs = opts.jobs or 1 }, function(_, suite) tap:suite(suite) end)
    fs.remove_tree(tmpdir)
    if not ok then error(suites, 0) end
    tap:finish()
    local c = tap.counts
    if opts.junit then
      local xml = report.junit(suites, { name = "mlx test", timestamp = started, hostname = hostname() })
      local parent = opts.junit:match("^(.*)/[^/]*$")
      local wrote, werr = true, nil
      if parent and parent ~= "" then wrote, werr = fs.mkdirs(parent) end
      if wrote then wrote, werr = fs.write(opts.junit, xml) end
      if not wrote then ui.fail(ui.EXIT.USAGE, "--junit %s: %s", opts.junit, werr) end
    end
    ui.note(("test: %d test%s in %d file%s: %d passed, %d failed, %d errors, %d skipped (%.1f s)"):format(
      c.tests, c.tests == 1 and "" or "s", #files, #files == 1 and "" or "s",
      c.tests - c.failures - c.errors - c.skipped, c.failures, c.errors, c.skipped, core.clock() - clock0))
    if c.failures + c.errors > 0 then return ui.EXIT.FAILED end
    return ui.EXIT.OK
  end,
}
