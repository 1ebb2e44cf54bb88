-- mlx.proc through the real binding, with the helper programs of
-- tests/helper/ (in $MLX_TEST_HELPERS) as misbehaving children.
local lu = require "luaunit"
local fs = require "mlx.fs"
local proc = require "mlx.proc"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local support = require "support"
local tempdir = support.tempdir

local HELPERS = assert(os.getenv("MLX_TEST_HELPERS"), "set MLX_TEST_HELPERS")
local function helper(name) return HELPERS .. "/" .. name end

local function now()
  local r = assert(proc.run{ "date", "+%s.%N", stdout = "capture" })
  return tonumber(r.stdout)
end

-- A process is gone when it does not exist or is a zombie nobody reaps.
local function gone(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return true end
  local stat = f:read("a")
  f:close()
  return stat:match("%) (%a)") == "Z"
end

local function pids_in(text)
  local pids = {}
  for pid in text:gmatch("%d+") do pids[#pids + 1] = tonumber(pid) end
  return pids
end

local function open_fds()
  return #assert(fs.list("/proc/self/fd"))
end

local function under_valgrind()
  return (os.getenv("LD_PRELOAD") or ""):find("vgpreload") ~= nil
end

TestRun = {}

function TestRun:test_result_of_a_successful_command()
  local r = proc.run{ "sh", "-c", "echo out; echo err >&2", stdout = "capture", stderr = "capture" }
  lu.assertTrue(r.ok)
  lu.assertEquals(r.code, 0)
  lu.assertNil(r.signal)
  lu.assertFalse(r.timed_out)
  lu.assertFalse(r.leftovers)
  lu.assertEquals(r.stdout, "out\n")
  lu.assertEquals(r.stderr, "err\n")
  lu.assertTrue(math.type(r.pid) == "integer" and r.pid > 0)
  lu.assertTrue(r.wall > 0 and r.wall < 5)
  lu.assertTrue(r.user >= 0 and r.sys >= 0)
  lu.assertTrue(math.type(r.max_rss) == "integer" and r.max_rss > 0)
end

function TestRun:test_streams_not_captured_are_absent_from_the_result()
  local r = assert(proc.run{ "true", stdout = "null" })
  lu.assertNil(r.stdout)
  lu.assertNil(r.stderr)
end

function TestRun:test_nonzero_exit_is_a_failure_with_the_result()
  for _, code in ipairs{ 1, 2, 42, 126, 127, 128, 255 } do
    local ok, msg, kind, r = proc.run{ helper("exit_status"), "code", code, stderr = "null" }
    lu.assertNil(ok)
    lu.assertStrContains(msg, "exit_status exited with status " .. code)
    lu.assertEquals(kind, "exit")
    lu.assertEquals(r.code, code)
    lu.assertFalse(r.ok)
  end
  local ok, err = pcall(function() assert(proc.run{ "false" }) end)
  lu.assertFalse(ok)
  lu.assertStrContains(err, "false exited with status 1")
end

function TestRun:test_death_by_signal_is_reported_exactly()
  for name, number in pairs{ TERM = 15, KILL = 9, SEGV = 11, ABRT = 6, INT = 2, PIPE = 13 } do
    local ok, msg, kind, r = proc.run{ helper("exit_status"), "signal", number, stderr = "null" }
    lu.assertNil(ok)
    lu.assertEquals(kind, "signal")
    lu.assertStrContains(msg, "was killed by signal " .. number .. " (SIG" .. name .. ")")
    lu.assertEquals(r.signal, number)
    lu.assertNil(r.code)
  end
end

function TestRun:test_shell_strings_run_with_sh()
  local r = assert(proc.run{ shell = "printf '%s|' \"$0\" a\\ b; exit 0", stdout = "capture" })
  lu.assertEquals(r.stdout, "/bin/sh|a b|")
  local _, msg = proc.run{ shell = "exit 3" }
  lu.assertEquals(msg, "'exit 3' exited with status 3")
end

function TestRun:test_timeout_stops_with_sigterm()
  local t0 = now()
  local ok, msg, kind, r = proc.run{ "sleep", "30", timeout = 0.3 }
  lu.assertNil(ok)
  lu.assertEquals(kind, "timeout")
  lu.assertEquals(msg, "sleep timed out after 0.3 s and was stopped (SIGTERM)")
  lu.assertTrue(r.timed_out)
  lu.assertEquals(r.signal, 15)
  lu.assertTrue(now() - t0 < 3)
end

function TestRun:test_a_group_ignoring_sigterm_gets_sigkill_after_the_grace()
  local ok, msg, kind, r = proc.run{ helper("ignore_term"), "2", timeout = 0.3, grace = 0.2,
    stdout = "capture" }
  lu.assertNil(ok)
  lu.assertEquals(kind, "timeout")
  lu.assertStrContains(msg, "was killed (SIGKILL)")
  lu.assertEquals(r.signal, 9)
  lu.assertTrue(r.wall >= 0.5 and r.wall < 3)
  local pids = pids_in(r.stdout)
  lu.assertEquals(#pids, 3)
  for _, pid in ipairs(pids) do lu.assertTrue(gone(pid)) end
end

function TestRun:test_processes_left_behind_are_stopped()
  for _, mode in ipairs{ "keep", "close" } do
    local r = assert(proc.run{ helper("spawn_grandchildren"), "3", mode, stdout = "capture" })
    lu.assertTrue(r.leftovers)
    lu.assertTrue(r.wall < 3)
    local pids = pids_in(r.stdout)
    lu.assertEquals(#pids, 3)
    for _, pid in ipairs(pids) do lu.assertTrue(gone(pid)) end
  end
end

function TestRun:test_flooding_both_streams_captures_every_byte()
  local r = assert(proc.run{ helper("flood"), "100000", stdout = "capture", stderr = "capture" })
  lu.assertEquals(#r.stdout, 100000 * 13)
  lu.assertEquals(#r.stderr, 100000 * 13)
  lu.assertEquals(r.stdout:sub(1, 13), "out 00000001\n")
  lu.assertEquals(r.stderr:sub(-13), "err 00100000\n")
end

-- Our own peak resident set, in bytes.
local function own_peak_rss()
  for line in io.lines("/proc/self/status") do
    local kb = line:match("^VmHWM:%s*(%d+) kB")
    if kb then return tonumber(kb) * 1024 end
  end
end

function TestRun:test_resources_are_accounted()
  -- dd holds a 64 MiB buffer; true holds next to nothing. A child's peak
  -- includes its parent's at the time of the spawn (Linux carries it over
  -- exec): a few MB for mlx, far more under valgrind.
  local big = assert(proc.run{ "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1", stderr = "null" })
  local small = assert(proc.run{ "true" })
  lu.assertTrue(big.max_rss > 64 * 1024 * 1024, big.max_rss)
  lu.assertTrue(small.max_rss < own_peak_rss() + 8 * 1024 * 1024, small.max_rss)
  local busy = assert(proc.run{ shell = "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done" })
  lu.assertTrue(busy.user + busy.sys > 0.01)
  lu.assertTrue(busy.wall >= (busy.user + busy.sys) * 0.5)
end

function TestRun:test_stdin_from_a_string_or_a_file()
  local r = assert(proc.run{ "cat", stdin = { data = "a\0b\n" }, stdout = "capture" })
  lu.assertEquals(r.stdout, "a\0b\n")
  r = assert(proc.run{ "cat", stdin = { file = "/etc/hostname" }, stdout = "capture" })
  local f = assert(io.open("/etc/hostname"))
  lu.assertEquals(r.stdout, f:read("a"))
  f:close()
  r = assert(proc.run{ "cat", stdout = "capture" })
  lu.assertEquals(r.stdout, "") -- no stdin: /dev/null, never the terminal
end

function TestRun:test_environment_added_removed_or_clean()
  local home = os.getenv("HOME")
  local r = assert(proc.run{ shell = 'echo "$MLX_A|$MLX_N|${HOME-unset}|${PATH+set}"',
    env = { MLX_A = "a b", MLX_N = 7, HOME = false }, stdout = "capture" })
  lu.assertEquals(r.stdout, "a b|7|unset|set\n")
  r = assert(proc.run{ "/usr/bin/env", clean_env = true, env = { ONLY = "this" }, stdout = "capture" })
  lu.assertEquals(r.stdout, "ONLY=this\n")
  lu.assertEquals(os.getenv("HOME"), home)
end

function TestRun:test_cwd_and_relative_programs()
  local dir = tempdir()
  assert(fs.write(dir .. "/hello.sh", "#!/bin/sh\npwd\n", tonumber("755", 8)))
  local r = assert(proc.run{ "./hello.sh", cwd = dir, stdout = "capture" })
  lu.assertEquals(r.stdout, dir .. "\n")
  os.execute("rm -rf '" .. dir .. "'")
end

function TestRun:test_failures_to_start_name_the_cause()
  local dir = tempdir()
  assert(fs.write(dir .. "/data.csv", "a,b\n"))
  local cases = {
    { { "mlx-no-such-program" }, "cannot run mlx-no-such-program: command not found in PATH", "notfound" },
    { { "/nonexistent/prog" }, "cannot run /nonexistent/prog: no such file", "notfound" },
    { { dir .. "/data.csv" }, "cannot run " .. dir .. "/data.csv: not executable (no x permission)", "invalid" },
    { { dir }, "cannot run " .. dir .. ": it is a directory", "invalid" },
    { { "true", cwd = dir .. "/missing" },
      "cannot run true: working directory " .. dir .. "/missing does not exist", "notfound" },
    { { "true", cwd = dir .. "/data.csv" },
      "cannot run true: working directory " .. dir .. "/data.csv is not a directory", "notfound" },
    { { "cat", stdin = { file = dir .. "/missing.txt" } },
      "cannot open input file " .. dir .. "/missing.txt: No such file or directory", "notfound" },
    { { "true", stdout = { log = dir .. "/no/such/dir/x.log" } },
      "cannot open log file " .. dir .. "/no/such/dir/x.log: No such file or directory", "notfound" },
  }
  local fds = open_fds()
  for _, case in ipairs(cases) do
    local h, msg, code = proc.spawn(case[1])
    lu.assertNil(h)
    lu.assertEquals(msg, case[2])
    lu.assertEquals(code, case[3])
    local ok, rmsg, rcode = proc.run(case[1])
    lu.assertNil(ok)
    lu.assertEquals({ rmsg, rcode }, { case[2], case[3] })
  end
  lu.assertEquals(open_fds(), fds)
  os.execute("rm -rf '" .. dir .. "'")
end

function TestRun:test_a_script_whose_interpreter_is_missing()
  lu.skipIf(under_valgrind(), "valgrind dies in its child when such an exec fails")
  local dir = tempdir()
  assert(fs.write(dir .. "/old.py", "#!/usr/bin/python1.5\nprint 1\n", tonumber("755", 8)))
  local ok, msg, code = proc.run{ dir .. "/old.py" }
  lu.assertNil(ok)
  lu.assertEquals(msg, "cannot run " .. dir .. "/old.py: its interpreter /usr/bin/python1.5 was not found")
  lu.assertEquals(code, "notfound")
  os.execute("rm -rf '" .. dir .. "'")
end

function TestRun:test_misuse_raises()
  -- One wording for every field of every binding: "field 'NAME' must be
  -- WHAT, not VALUE" (lua/binding.c), as an argument error.
  local function raises(spec, text)
    local ok, err = pcall(proc.run, spec)
    lu.assertFalse(ok)
    lu.assertEquals(err, "bad argument #1 to 'mlx.proc.run' (" .. text .. ")")
  end
  raises({ "true", stdot = "null" }, "unknown field 'stdot'")
  raises({ "true", [3] = "x" }, "unknown field '[3]'")
  raises({ "true", shell = "true" }, "give either an argv or shell = STRING, not both")
  raises({}, "a command is needed: {PROGRAM, ARGS...} or {shell = STRING}")
  raises({ "echo", {} }, "field '[2]' must be a string without NUL bytes, not a table")
  raises({ "echo", "a\0b" }, "field '[2]' must be a string without NUL bytes, not a string with a NUL byte")
  raises({ "true", cwd = 7 }, "field 'cwd' must be a string, not 7")
  raises({ "true", stdout = "file" },
    "field 'stdout' must be \"inherit\", \"null\", \"capture\", a function or a table, not 'file'")
  raises({ "true", stdout = "stdout" },
    "field 'stdout' must be \"inherit\", \"null\", \"capture\", a function or a table, not 'stdout'")
  raises({ "true", stderr = { capture = true, tee = true } }, "unknown field 'stderr.tee'")
  raises({ "true", stderr = { capture = "yes" } }, "field 'stderr.capture' must be true or false, not 'yes'")
  raises({ "true", stdout = { on_line = 1 } }, "field 'stdout.on_line' must be a function, not 1")
  raises({ "true", timeout = 0 }, "field 'timeout' must be a positive number of seconds, not 0")
  raises({ "true", timeout = "5" }, "field 'timeout' must be a number, not '5'")
  raises({ "true", grace = -1 }, "field 'grace' must be zero or more seconds, not -1")
  raises({ "true", clean_env = 1 }, "field 'clean_env' must be true or false, not 1")
  raises({ "true", env = { ["A=B"] = "x" } }, "field 'env' must be keyed by variable names (not empty, no '='), not 'A=B'")
  raises({ "true", env = { A = true } }, "field 'env.A' must be a string without NUL bytes or false, not true")
  raises({ "true", stdin = "data" }, "field 'stdin' must be \"null\", {file = PATH} or {data = STRING}, not 'data'")
  raises({ "true", stdin = { file = "a", data = "b" } },
    "field 'stdin' must be a table with exactly one of file = PATH and data = STRING, not a table")
  lu.assertErrorMsgContains("bad argument #1", proc.run, "true")
end

TestLines = {}

function TestLines:test_callbacks_get_each_line_as_it_comes()
  local got, t0, first = {}, now(), nil
  local r = assert(proc.run{ helper("print_slowly"), "3", "300", "tick",
    stdout = function(line, stream)
      first = first or now()
      got[#got + 1] = stream .. ":" .. line
    end })
  lu.assertEquals(got, { "stdout:tick 1", "stdout:tick 2", "stdout:tick 3" })
  lu.assertTrue(first - t0 < 0.5) -- the first line came long before the end
  lu.assertTrue(r.wall >= 0.6)
  lu.assertNil(r.stdout)
end

function TestLines:test_merged_streams_capture_and_log_together()
  local dir = tempdir()
  local log = dir .. "/step.log"
  local lines = {}
  local r = assert(proc.run{ shell = "echo one; echo two >&2; printf three",
    stdout = { capture = true, log = log, on_line = function(l, s) lines[#lines + 1] = s .. ":" .. l end },
    stderr = "stdout" })
  lu.assertEquals(r.stdout, "one\ntwo\nthree")
  lu.assertEquals(lines, { "stdout:one", "stdout:two", "stdout:three" })
  local f = assert(io.open(log))
  lu.assertEquals(f:read("a"), "one\ntwo\nthree\n")
  f:close()
  os.execute("rm -rf '" .. dir .. "'")
end

function TestLines:test_a_flood_of_lines_on_both_streams()
  local counts = { stdout = 0, stderr = 0 }
  local function count(line, stream)
    counts[stream] = counts[stream] + 1
    assert(#line == 12)
  end
  assert(proc.run{ helper("flood"), "50000", stdout = count, stderr = count })
  lu.assertEquals(counts, { stdout = 50000, stderr = 50000 })
end

function TestLines:test_an_error_in_a_callback_stops_the_child()
  local pid
  local ok, err = pcall(proc.run, { helper("ignore_term"), grace = 0.1,
    stdout = function(line) pid = tonumber(line); error("seen enough") end })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "seen enough")
  lu.assertTrue(gone(pid))
end

TestHandles = {}

function TestHandles:test_a_child_runs_on_the_cpus_mlx_may_use()
  -- mlx pins itself to its CPU around the vfork (so the child starts at
  -- once); the child gets the whole set back before exec, and so does mlx.
  local function allowed(text) return text:match("Cpus_allowed_list:%s*(%S+)") end
  local function mine()
    local f = assert(io.open("/proc/self/status"))
    local text = f:read("a")
    f:close()
    return allowed(text)
  end
  local before = mine()
  local seen
  assert(proc.run{ shell = "cat /proc/self/status", stdout = function(line) seen = seen or allowed(line) end })
  lu.assertEquals(seen, before)
  lu.assertEquals(mine(), before)
end

function TestHandles:test_finished_says_when_the_child_is_reaped()
  -- A wait reaps a child that ended while another one was waited for.
  local short = assert(proc.spawn{ "true" })
  local h = assert(proc.spawn{ "sleep", "0.3" })
  lu.assertFalse(h:finished())
  local _, _, position = proc.wait_any({ h, short })
  lu.assertEquals(position, 2)
  lu.assertTrue(short:finished())
  lu.assertFalse(h:finished())
  assert(h:wait())
  lu.assertTrue(h:finished())
  lu.assertTrue(h:close())
  lu.assertTrue(h:finished()) -- closed: nothing of it runs
  short:close()
end

function TestHandles:test_spawn_wait_with_timeout_then_kill()
  local h = assert(proc.spawn{ "sleep", "30" })
  lu.assertStrContains(tostring(h), "mlx.Proc (pid " .. h:pid() .. ", running)")
  local r, msg, code = h:wait(0.1)
  lu.assertNil(r)
  lu.assertEquals(msg, "still running after 0.1 s")
  lu.assertEquals(code, "timeout")
  lu.assertTrue(h:kill())
  r = h:wait()
  lu.assertEquals(r.signal, 15)
  lu.assertFalse(r.timed_out)
  lu.assertIs(h:wait(), r) -- the same result again
  lu.assertFalse(h:kill()) -- nothing left to signal
  lu.assertTrue(h:close())
  lu.assertTrue(h:close())
  lu.assertEquals(tostring(h), "mlx.Proc (closed)")
  lu.assertErrorMsgContains("closed process handle", h.wait, h)
  lu.assertErrorMsgContains("closed process handle", h.kill, h)
end

function TestHandles:test_kill_with_a_named_or_numbered_signal()
  local h = assert(proc.spawn{ helper("ignore_term") , stdout = "null" })
  h:wait(0.1)
  lu.assertTrue(h:kill("TERM")) -- ignored
  lu.assertNil(h:wait(0.2))
  lu.assertTrue(h:kill("SIGKILL"))
  lu.assertEquals(h:wait().signal, 9)
  h:close()
  h = assert(proc.spawn{ "sleep", "30" })
  lu.assertTrue(h:kill(2))
  lu.assertEquals(h:wait().signal, 2)
  lu.assertErrorMsgContains("unknown signal 'NOPE'", h.kill, h, "NOPE")
  lu.assertErrorMsgContains("not a signal number", h.kill, h, 0)
  h:close()
end

function TestHandles:test_kill_without_a_signal_escalates_after_the_grace()
  local h = assert(proc.spawn{ helper("ignore_term"), grace = 0.2, stdout = "null" })
  h:wait(0.1)
  lu.assertTrue(h:kill())
  local r = h:wait()
  lu.assertEquals(r.signal, 9)
  h:close()
end

function TestHandles:test_a_close_variable_stops_the_child()
  local pid
  do
    local h <close> = assert(proc.spawn{ helper("ignore_term"), "2", grace = 0.1, stdout = "capture" })
    pid = h:pid()
    h:wait(0.1)
  end
  lu.assertTrue(gone(pid))
end

function TestHandles:test_a_collected_handle_stops_its_child()
  local pid = assert(proc.spawn{ "sleep", "30" }):pid()
  collectgarbage()
  collectgarbage()
  -- Any use of mlx.proc reaps what was stopped; on a busy machine the
  -- SIGTERM'd child may take a moment to be scheduled and die.
  local deadline = now() + 5
  repeat assert(proc.run{ "true" }) until gone(pid) or now() > deadline
  lu.assertTrue(gone(pid))
end

function TestHandles:test_wait_any_interleaves_parallel_children()
  local order = {}
  local function record(line) order[#order + 1] = line end
  local slow = assert(proc.spawn{ helper("print_slowly"), "3", "250", "slow", stdout = record })
  local fast = assert(proc.spawn{ helper("print_slowly"), "3", "50", "fast", stdout = record })
  local list = { slow, fast }
  local h, r, i = proc.wait_any(list)
  lu.assertIs(h, fast)
  lu.assertEquals(i, 2)
  lu.assertTrue(r.ok)
  table.remove(list, i)
  local none, msg, code = proc.wait_any(list, 0)
  lu.assertNil(none)
  lu.assertEquals(code, "timeout")
  lu.assertStrContains(msg, "still running")
  h, r, i = proc.wait_any(list)
  lu.assertIs(h, slow)
  lu.assertEquals(i, 1)
  lu.assertEquals(#order, 6)
  -- Each child's lines in order; the fast ones all before the slow end.
  local seen = { slow = 0, fast = 0 }
  for pos, line in ipairs(order) do
    local who, n = line:match("(%a+) (%d)")
    seen[who] = seen[who] + 1
    lu.assertEquals(tonumber(n), seen[who])
    if who == "fast" then lu.assertTrue(pos < 6) end
  end
  lu.assertEquals(order[#order], "slow 3")
  slow:close()
  fast:close()
  lu.assertErrorMsgContains("no process handles", proc.wait_any, {})
  lu.assertErrorMsgContains("item 1 is not an open process handle", proc.wait_any, { slow })
end

function TestHandles:test_no_descriptor_is_leaked_or_inherited()
  local before = open_fds()
  local held = assert(io.open("/etc/hostname")) -- not close-on-exec
  local r = assert(proc.run{ helper("list_fds"), stdout = "capture", stderr = "capture",
    stdin = { data = "x" } })
  lu.assertEquals(r.stdout, "0\n1\n2\n")
  for _ = 1, 20 do
    local h = assert(proc.spawn{ "sleep", "30", stdout = "capture", stderr = function() end })
    h:close()
    proc.run{ "/nonexistent" }
    proc.run{ "true", cwd = "/nonexistent" }
  end
  held:close()
  lu.assertEquals(open_fds(), before)
end

TestQuote = {}

function TestQuote:test_quoted_strings_survive_the_shell()
  local nasty = { "", "plain", "two words", "it's", "\"double\"", "$HOME", "`id`", "$(id)", "a\\b",
    "line\nbreak", "*", "~", "-n", "tab\there", "'", "''", "!x" }
  for _, s in ipairs(nasty) do
    local r = assert(proc.run{ shell = "printf %s " .. proc.quote(s), stdout = "capture" })
    lu.assertEquals(r.stdout, s)
  end
  lu.assertEquals(proc.quote("it's"), [['it'\''s']])
  lu.assertEquals(proc.quote{ "a b", "c", 3 }, "'a b' 'c' '3'")
  local r = assert(proc.run{ shell = "printf '<%s>' " .. proc.quote(nasty), stdout = "capture" })
  lu.assertEquals(r.stdout, "<" .. table.concat(nasty, "><") .. ">")
  lu.assertErrorMsgContains("without NUL", proc.quote, "a\0b")
end

os.exit(lu.LuaUnit.run("-o", "tap"), true)
