--- mlx.testing.runner: finds a project's LuaUnit test files and runs each
--- in its own mlx process (mlx.testing.worker), collecting one record per
--- test; mlx.testing.report turns the records into TAP and JUnit XML.
local core = require "mlx.core"
local fs = require "mlx.fs"
local json = require "mlx.json"
local proc = require "mlx.proc"

local M = {}

local function is_test_file(name)
  return name:match("^test_.*%.lua$") ~= nil
end

local function walk(dir, found)
  local names, err, code = fs.list(dir)
  if not names then return nil, err, code end
  for _, name in ipairs(names) do
    local path = dir .. "/" .. name
    local st = fs.stat(path)
    if st and st.type == "directory" and name ~= ".git" and name ~= ".mlx" then
      local ok, werr, wcode = walk(path, found)
      if not ok then return nil, werr, wcode end
    elseif st and st.type == "file" and is_test_file(name) then
      found[#found + 1] = path
    end
  end
  return true
end

--- Returns the test files that paths name, in order: a file is itself
--- (whatever its name), a directory gives its test_*.lua files at any
--- depth, sorted. Returns nil, "PATH: no such file or directory",
--- "notfound" for a path that does not exist, and nil, "PATH: no
--- test_*.lua files", "notfound" for a directory without any.
---@param paths string[]
function M.discover(paths)
  local files, seen = {}, {}
  for _, path in ipairs(paths) do
    path = path:gsub("(.)/+$", "%1")
    local st = fs.stat(path)
    if not st then return nil, path .. ": no such file or directory", "notfound" end
    local found = {}
    if st.type == "directory" then
      local ok, err, code = walk(path, found)
      if not ok then return nil, err, code end
      if #found == 0 then return nil, path .. ": no test_*.lua files (name a file or a directory holding some)", "notfound" end
    else
      found[1] = path
    end
    for _, f in ipairs(found) do
      if not seen[f] then
        seen[f] = true
        files[#files + 1] = f
      end
    end
  end
  return files
end

local function tail(text, n)
  local lines = {}
  for line in (text or ""):gmatch("[^\n]*") do lines[#lines + 1] = line end
  while #lines > 0 and lines[#lines] == "" do lines[#lines] = nil end
  return table.concat(lines, "\n", math.max(1, #lines - n + 1))
end

local function command(file, options)
  local results = options.tmpdir .. "/results-" .. tostring(options.index or 1) .. ".json"
  os.remove(results)
  local env = { MLX_TEST_FILE = file, MLX_TEST_RESULTS = results,
    MLX_TEST_PATTERN = table.concat(options.patterns or {}, "\n") }
  for k, v in pairs(options.env or {}) do env[k] = v end
  return { core.exe_dir .. "/mlx", "lua", "-e", 'require("mlx.testing.worker").main()',
    env = env, stdout = "capture", stderr = "stdout", timeout = options.timeout }, results
end

--- The suite of a finished worker: r is its proc result (nil with err when
--- it could not run), results the file it wrote them to.
local function collect(file, options, r, err, results, time)
  local suite = { file = file, time = time, output = r and r.stdout or "" }
  local doc = fs.stat(results) and json.load(results)
  os.remove(results)
  -- A file ending in os.exit(lu.LuaUnit.run()) exits with its failure count.
  if doc and r and r.code ~= nil and not r.timed_out then
    suite.tests = doc.tests
    if not doc.ran and #suite.tests == 0 then
      suite.tests = { { class = "(file)", name = "load", status = "ERROR", time = 0,
        message = "the file defines no tests (no global Test* table or test* function)" } }
    end
    return suite
  end
  local why
  if not r then
    why = "could not run: " .. tostring(err)
  elseif r.timed_out then
    why = ("stopped after the time limit of %g s"):format(options.timeout)
  elseif r.signal then
    why = "killed by signal " .. tostring(r.signal)
  else
    why = ("exited with status %d before its tests reported"):format(r.code or -1)
  end
  suite.tests = doc and doc.tests or {}
  suite.tests[#suite.tests + 1] = { class = "(file)", name = "run", status = "ERROR", time = suite.time,
    message = why, trace = tail(suite.output, 20) }
  return suite
end

--- Runs test files in child mlx processes, up to options.jobs at once
--- (default 1), and calls on_suite(i, suite) for each in the order of
--- files, as soon as it and those before it finished. A suite is {file,
--- tests = {{class, name, status = SUCCESS|FAIL|ERROR|SKIP, message,
--- trace, time}}, time, output (what the file printed)}. A child that ends
--- without results (it crashed, exited early or ran past options.timeout)
--- gives one ERROR test naming what happened. options: patterns ({…}, "!"
--- excludes), timeout (seconds per file), env ({…}), tmpdir (where results
--- are written), jobs. Returns the suites; an interruption raises
--- "interrupted" after stopping the children.
---@param files string[]
---@param options table
---@param on_suite fun(i: integer, suite: table)
function M.run(files, options, on_suite)
  local jobs = math.max(1, options.jobs or 1)
  local suites, running, next_file, reported = {}, {}, 1, 0
  local function report_ready()
    while suites[reported + 1] do
      reported = reported + 1
      on_suite(reported, suites[reported])
    end
  end
  local ok, failure = pcall(function()
    while next_file <= #files or #running > 0 do
      while #running < jobs and next_file <= #files do
        local i = next_file
        next_file = next_file + 1
        local o = setmetatable({ index = i }, { __index = options })
        local cmd, results = command(files[i], o)
        local h, err = proc.spawn(cmd)
        if h then
          running[#running + 1] = { handle = h, index = i, results = results, started = core.clock() }
        else
          suites[i] = collect(files[i], options, nil, err, results, 0)
        end
      end
      report_ready()
      if #running > 0 then
        local handles = {}
        for j, job in ipairs(running) do handles[j] = job.handle end
        local h, result, j = proc.wait_any(handles)
        if not h then error(result, 0) end
        local job = table.remove(running, j)
        suites[job.index] = collect(files[job.index], options, result, nil, job.results, core.clock() - job.started)
        h:close()
        report_ready()
      end
    end
  end)
  for _, job in ipairs(running) do job.handle:close() end
  if not ok then error(failure, 0) end
  return suites
end

return M
