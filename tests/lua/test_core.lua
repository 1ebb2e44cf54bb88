-- mlx.core, the part of the binary that needs no library: the wall clock and
-- the sleep that Ctrl-C cuts short.
local lu = require "luaunit"
local core = require "mlx.core"
local fs = require "mlx.fs"
local proc = require "mlx.proc"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local support = require "support"

local MLX = core.exe_dir .. "/mlx"

TestCore = {}

function TestCore:setUp()
  self.dir = support.tempdir()
end

function TestCore:tearDown()
  os.execute("rm -rf '" .. self.dir .. "'")
end

-- The command that runs text as a script in a child mlx.
function TestCore:mlx_lua(text)
  local script = self.dir .. "/script.lua"
  assert(fs.write(script, text))
  return { MLX, "lua", script }
end

function TestCore:test_now_ms_is_the_wall_clock_in_milliseconds()
  local before = os.time()
  local ms = core.now_ms()
  lu.assertEquals(math.type(ms), "integer")
  -- time(2) reads the kernel's coarse clock, which may lag a few ms behind.
  lu.assertTrue(ms // 1000 >= before and ms // 1000 <= os.time() + 1, "now_ms " .. ms .. " vs os.time " .. before)
end

function TestCore:test_sleep_waits_the_time_asked()
  local t0 = core.clock()
  lu.assertTrue(core.sleep(0.2))
  local slept = core.clock() - t0
  lu.assertTrue(slept >= 0.2, "slept " .. slept .. " s")
  lu.assertTrue(slept < 5, "slept " .. slept .. " s")
  lu.assertTrue(core.sleep(0))
end

function TestCore:test_sleep_refuses_what_is_not_a_duration()
  lu.assertErrorMsgContains("seconds must be from 0 to 1e9", core.sleep, -1)
  lu.assertErrorMsgContains("seconds must be from 0 to 1e9", core.sleep, 0 / 0)
  lu.assertErrorMsgContains("number expected", core.sleep, "soon")
end

function TestCore:test_number_text_is_the_shortest_exact_form()
  local cases = { { 0.1, "0.1" }, { 1 / 3, "0.3333333333333333" }, { 2.0, "2" }, { 7, "7" },
    { math.mininteger, "-9223372036854775808" }, { 5e-324, "5e-324" }, { 1e21, "1e+21" },
    { 0 / 0, "nan" }, { 1 / 0, "inf" }, { -1 / 0, "-inf" } }
  for _, c in ipairs(cases) do
    lu.assertEquals(core.number_text(c[1]), c[2])
    if c[1] == c[1] and math.abs(c[1]) ~= math.huge then lu.assertEquals(tonumber(c[2]), c[1]) end
  end
  lu.assertErrorMsgContains("number expected", core.number_text, "0.1")
end

-- A child mlx sleeps 30 s; SIGINT ends the sleep at once, the interruption is
-- raised as an error, and a later sleep returns false without waiting.
function TestCore:test_sigint_cuts_a_sleep_short()
  local command = self:mlx_lua [[
local core = require "mlx.core"
io.stdout:write("ready\n")
io.stdout:flush()
local t0 = core.clock()
local ok, err = pcall(core.sleep, 30)
io.stdout:write(("%s %s %.1f\n"):format(tostring(ok), tostring(err), core.clock() - t0))
local t1 = core.clock()
io.stdout:write(("%s %.1f\n"):format(tostring(core.sleep(30)), core.clock() - t1))
]]
  local lines = {}
  command.stdout = { on_line = function(l) lines[#lines + 1] = l end }
  local h <close> = assert(proc.spawn(command))
  local waited = 0
  while #lines == 0 and waited < 20 do
    h:wait(0.05)
    waited = waited + 0.05
  end
  lu.assertEquals(lines[1], "ready")
  -- "ready" comes just before the sleep: wait until the child is blocked
  -- in it (state S), or, on a loaded machine, the SIGINT can land before
  -- the pcall and end the child as an interrupted script.
  local stat_path = "/proc/" .. h:pid() .. "/stat"
  for _ = 1, 2000 do
    local f = io.open(stat_path)
    local state = f and f:read("a"):match("^%d+ %b() (%a)")
    if f then f:close() end
    if state == "S" then break end
    h:wait(0.01)
  end
  local t0 = core.clock()
  assert(h:kill("INT"))
  local result = assert(h:wait(20))
  local elapsed = core.clock() - t0
  lu.assertTrue(elapsed < 5, "the child took " .. elapsed .. " s to stop sleeping")
  lu.assertStrMatches(lines[2] or "", "false interrupted %d%.%d")
  lu.assertStrMatches(lines[3] or "", "false 0%.0")
  lu.assertEquals(result.code, 0)
end

-- The run filter reads the clock (duration of a running run) from mlx.core:
-- compiling it loads no SQLite, as `mlx runs --filter` checks a filter
-- before it opens the database.
function TestCore:test_the_filter_reads_the_clock_without_loading_sqlite()
  local command = self:mlx_lua [[
local filter = require "mlx.track.filter"
local sql, params = assert(filter.compile("duration > 1"))
io.stdout:write(math.type(params[1]), " ", tostring(package.loaded["mlx.rundb"] ~= nil), "\n")
]]
  command.stdout = "capture"
  local result = assert(proc.run(command))
  lu.assertEquals(result.stdout, "integer false\n")
end

os.exit(lu.LuaUnit.run("-o", "tap"), true)
