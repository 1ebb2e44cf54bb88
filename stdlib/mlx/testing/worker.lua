--- mlx.testing.worker: the child side of `mlx test`. One process per test
--- file (so each file has fresh globals, and one that exits, crashes or
--- loops cannot take the others with it), started by mlx.testing.runner as
---     mlx lua -e 'require("mlx.testing.worker").main()'
--- with the file and where to write its results in the environment:
---   MLX_TEST_FILE     the test file
---   MLX_TEST_RESULTS  a JSON file this process writes its results to
---   MLX_TEST_PATTERN  LuaUnit name patterns, one a line ("!" excludes)
--- The file may end with `os.exit(lu.LuaUnit.run(...))` or not call run at
--- all; either way its tests run once, with the runner's patterns (the
--- file's own output options are ignored: the runner reports).
local core = require "mlx.core"
local json = require "mlx.json"

local M = {}

local function lines_of(text)
  local list = {}
  for line in (text or ""):gmatch("[^\n]+") do list[#list + 1] = line end
  return list
end

local function write_results(path, tests, ran)
  local doc = { ran = ran, tests = json.array(tests) }
  -- A plain write: the file lives as long as the parent reads it.
  local f, err = io.open(path, "wb")
  if f then f:write(json.encode(doc)) f:close() end
  if not f then
    io.stderr:write("mlx test: cannot write results: ", tostring(err), "\n")
    os.exit(3)
  end
end

--- Runs the test file named by the environment and writes its results.
--- Never returns normally: ends the process with 0 (the file was run;
--- results say how it went) or another status when the results could not
--- be written.
function M.main()
  local file = assert(os.getenv("MLX_TEST_FILE"), "MLX_TEST_FILE is not set")
  local results = assert(os.getenv("MLX_TEST_RESULTS"), "MLX_TEST_RESULTS is not set")
  local patterns = lines_of(os.getenv("MLX_TEST_PATTERN"))
  local lu = require "luaunit"
  local tests, ran = {}, false

  -- Wall time per test (LuaUnit's own duration is CPU time).
  local start_test, end_test = lu.LuaUnit.startTest, lu.LuaUnit.endTest
  function lu.LuaUnit:startTest(name)
    start_test(self, name)
    self.result.currentNode.wall_start = core.clock()
  end
  function lu.LuaUnit:endTest()
    local node = self.result.currentNode
    node.wall = core.clock() - node.wall_start
    end_test(self)
  end

  function lu.LuaUnit:runSuite()
    self:setOutputType("nil")
    self.patternIncludeFilter = #patterns > 0 and patterns or nil
    self:registerSuite()
    self:internalRunSuiteByNames(lu.LuaUnit.collectTests())
    self:unregisterSuite()
    ran = true
    for _, node in ipairs(self.result.allTests) do
      tests[#tests + 1] = { class = node.className, name = node.testName, status = node.status,
        message = node.msg and tostring(node.msg) or nil, trace = node.stackTrace,
        time = node.wall or node.duration or 0 }
    end
    write_results(results, tests, ran)
    return self.result.notSuccessCount
  end

  local chunk, err = loadfile(file)
  local ok = chunk ~= nil
  if ok then
    _G.arg = { [0] = file }
    ok, err = xpcall(chunk, debug.traceback)
  end
  if not ok then
    -- A file that does not load or raises outside a test is one error,
    -- reported beside whatever tests it ran.
    -- The traceback down to the file, not through this runner.
    local text = tostring(err)
    local message, trace = text:match("^([^\n]*)\n(.-)\n\t%[C%]: in function 'xpcall'")
    tests[#tests + 1] = { class = "(file)", name = "load", status = "ERROR",
      message = message or text, trace = trace, time = 0 }
    write_results(results, tests, ran)
  elseif not ran then
    lu.LuaUnit.run()
  end
  os.exit(0, true)
end

return M
