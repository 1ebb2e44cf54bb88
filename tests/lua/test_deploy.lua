-- mlx.deploy against the quickstart's model server (recipes/quickstart/
-- serve.py) started on 127.0.0.1 by the test, with model files written by
-- hand; promote and rollback on a real registry in a temporary project.
local lu = require "luaunit"
local deploy = require "mlx.deploy"
local fs = require "mlx.fs"
local hash = require "mlx.hash"
local http = require "mlx.http"
local json = require "mlx.json"
local proc = require "mlx.proc"
local registry = require "mlx.registry"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local support = require "support"
local tempdir = support.tempdir

local SERVE = (arg[0]:match("^(.*)/") or ".") .. "/../../recipes/quickstart/serve.py"

-- Classifies iris flowers by petal length alone: < 2.5 setosa, > 5 virginica.
local GOOD = [==[{"classes": ["setosa", "versicolor", "virginica"],
 "features": ["sepal_length", "sepal_width", "petal_length", "petal_width"],
 "weights": [[0, 0, -2, 0], [0, 0, 0, 0], [0, 0, 2, 0]], "bias": [5, 0, -10],
 "mean": [0, 0, 0, 0], "std": [1, 1, 1, 1]}
]==]
-- The same with the classes in the wrong order: a broken export.
local WRONG = GOOD:gsub('"setosa", "versicolor", "virginica"', '"virginica", "versicolor", "setosa"', 1)

local ROWS = { { 5.1, 3.5, 1.4, 0.2 }, { 7.0, 3.2, 4.7, 1.4 }, { 6.3, 3.3, 6.0, 2.5 } }

local files = tempdir()
local good_file, wrong_file = files .. "/good.json", files .. "/wrong.json"
assert(fs.write(good_file, GOOD))
assert(fs.write(wrong_file, WRONG))

--- Starts serve.py with args before the port (0); returns {base, handle}.
local function start_server(args)
  local port
  local command = { "python3", SERVE, stdout = function(line) port = port or line end, stderr = "capture" }
  for _, a in ipairs(args or {}) do command[#command + 1] = a end
  command[#command + 1] = "0"
  local h = assert(proc.spawn(command))
  for _ = 1, 200 do
    if port then break end
    local result = h:wait(0.05)
    if result then error("serve.py exited: " .. tostring(result.stderr)) end
  end
  assert(port and port:match("^%d+$"), "serve.py printed no port")
  return setmetatable({ base = "http://127.0.0.1:" .. port, handle = h },
    { __close = function(server) server.handle:close() end })
end

-- One server for the tests that set the model they need first; tests of an
-- empty server start their own.
local shared = start_server()

local function put_model(base, body, version)
  return http.put(base .. "/model", { body = body, headers = { ["X-Model-Version"] = version } })
end

-- ---- the model server ---------------------------------------------------------------

TestServer = {}

function TestServer:setUp()
  self.server = shared
end

function TestServer:test_it_serves_nothing_until_a_model_is_uploaded()
  local server <close> = start_server()
  local base = server.base
  local res = assert(http.get(base .. "/health"))
  lu.assertEquals({ res.status, res:json().status }, { 503, "no model" })
  res = assert(http.post(base .. "/predict", { json = { features = ROWS } }))
  lu.assertEquals(res.status, 503)
  res = assert(put_model(base, GOOD, "4"))
  lu.assertEquals(res.status, 200)
  lu.assertEquals(res:json(), { sha256 = hash.bytes(GOOD), version = "4" })
  local health = assert(http.get(base .. "/health", { expect = 200 })):json()
  lu.assertEquals({ health.status, health.sha256, health.version, health.classes[2], #health.features },
    { "ok", hash.bytes(GOOD), "4", "versicolor", 4 })
end

function TestServer:test_predict_answers_a_class_and_probabilities_per_row()
  local base = self.server.base
  assert(put_model(base, GOOD, "1"))
  local answer = assert(http.post(base .. "/predict", { json = { features = ROWS }, expect = 200 })):json()
  lu.assertEquals(answer.predictions, { "setosa", "versicolor", "virginica" })
  lu.assertEquals(#answer.probabilities, 3)
  for i, p in ipairs(answer.probabilities) do
    lu.assertEquals(#p, 3)
    lu.assertAlmostEquals(p[1] + p[2] + p[3], 1, 1e-9)
    local best = 1
    for k = 2, 3 do if p[k] > p[best] then best = k end end
    lu.assertEquals(best, i)
  end
  -- softmax of the logits (2.2, 0, -7.2) for the first row
  lu.assertAlmostEquals(answer.probabilities[1][1], math.exp(2.2) / (math.exp(2.2) + 1 + math.exp(-7.2)), 1e-9)
  lu.assertEquals({ answer.sha256, answer.version }, { hash.bytes(GOOD), "1" })
end

function TestServer:test_bad_requests_get_400_or_404_and_say_why()
  local base = self.server.base
  assert(put_model(base, GOOD))
  local cases = {
    { { features = { { 5.1, 3.5 } } }, "row 1: expected 4 numbers" },
    { { features = { { 5.1, 3.5, "x", 0.2 } } }, 'row 1: "x" is not a finite number' },
    { { rows = ROWS }, 'expected {"features"' },
  }
  for _, c in ipairs(cases) do
    local res = assert(http.post(base .. "/predict", { json = c[1] }))
    lu.assertEquals(res.status, 400)
    lu.assertStrContains(res:json().error, c[2])
  end
  local res = assert(http.post(base .. "/predict", { body = "{not json" }))
  lu.assertEquals(res.status, 400)
  res = assert(http.get(base .. "/nothing"))
  lu.assertEquals(res.status, 404)
end

function TestServer:test_a_bad_model_is_refused_and_the_old_one_kept()
  local base = self.server.base
  assert(put_model(base, GOOD, "1"))
  local bad = {
    { "{", "not JSON" },
    { '{"classes": ["a"], "features": ["x"], "weights": [[1]], "bias": [0], "mean": [0], "std": [1]}', "at least 2" },
    { GOOD:gsub('"bias": %[5, 0, %-10%]', '"bias": [5, 0]'), '"bias" has 2 numbers, expected 3' },
    { GOOD:gsub('%[0, 0, 2, 0%]', '[0, 0, 2]'), '"weights" has 3 numbers, expected 4' },
    { GOOD:gsub('"std": %[1, 1, 1, 1%]', '"std": [1, 0, 1, 1]'), '"std" must be positive' },
    { GOOD:gsub('"mean": %[0, 0, 0, 0%]', '"mean": [0, NaN, 0, 0]'), "finite numbers only" },
  }
  for _, b in ipairs(bad) do
    local res = assert(put_model(base, b[1], "2"))
    lu.assertEquals(res.status, 400, b[2])
    lu.assertStrContains(res:json().error, b[2])
  end
  local health = assert(http.get(base .. "/health")):json()
  lu.assertEquals({ health.sha256, health.version }, { hash.bytes(GOOD), "1" })
  local answer = assert(http.post(base .. "/predict", { json = { features = ROWS }, expect = 200 })):json()
  lu.assertEquals(answer.predictions, { "setosa", "versicolor", "virginica" })
end

function TestServer:test_a_model_file_given_at_start_is_served_and_a_bad_one_refused()
  local server <close> = start_server { "--model", good_file, "--model-version", "7" }
  local health = assert(http.get(server.base .. "/health", { expect = 200 })):json()
  lu.assertEquals({ health.sha256, health.version }, { hash.bytes(GOOD), "7" })
  local none, _, code, result = proc.run { "python3", SERVE, "--model", wrong_file .. ".missing", "0",
    stdout = "capture", stderr = "capture" }
  lu.assertEquals({ none, code, result.code, result.stdout }, { nil, "exit", 2, "" })
  lu.assertStrContains(result.stderr, "serve: cannot load " .. wrong_file .. ".missing")
end

-- ---- wait_healthy -------------------------------------------------------------------

TestWaitHealthy = {}

function TestWaitHealthy:test_an_unhealthy_service_times_out_saying_why()
  local server <close> = start_server()
  local none, err, code = deploy.wait_healthy(server.base .. "/health", { timeout = 0.3, interval = 0.1 })
  lu.assertEquals({ none, code }, { nil, "timeout" })
  lu.assertEquals(err, server.base .. "/health: not healthy after 0.3 s: status 503 Service Unavailable")
  none, err, code = deploy.wait_healthy("http://127.0.0.1:1/health", { timeout = 0.2, interval = 0.1 })
  lu.assertEquals(code, "timeout")
  lu.assertEquals(err, "http://127.0.0.1:1/health: not healthy after 0.2 s: connection refused")
end

function TestWaitHealthy:test_it_waits_until_the_service_is_healthy()
  local server <close> = start_server()
  local url = server.base .. "/model"
  local uploader = assert(proc.spawn { "python3", "-c", ([[
import time, urllib.request as r
time.sleep(0.4)
r.urlopen(r.Request(%q, data=open(%q, "rb").read(), method="PUT"))]]):format(url, good_file) })
  local res = assert(deploy.wait_healthy(server.base .. "/health", { timeout = 60, interval = 0.05 }))
  assert(uploader:wait())
  uploader:close()
  lu.assertEquals(res.status, 200)
  lu.assertEquals(res:json().sha256, hash.bytes(GOOD))
  -- It waited for the upload (0.4 s after python starts, which can take
  -- seconds on a loaded machine) and returned once healthy, within the timeout.
  lu.assertTrue(res.waited >= 0.3 and res.waited < 60, tostring(res.waited))
end

function TestWaitHealthy:test_a_check_must_pass_too()
  self.server = shared
  assert(put_model(self.server.base, GOOD))
  local function serves(digest)
    return function(res)
      local sha = res:json().sha256
      return sha == digest, "serves " .. sha:sub(1, 8)
    end
  end
  local res = assert(deploy.wait_healthy(self.server.base .. "/health", { check = serves(hash.bytes(GOOD)) }))
  lu.assertTrue(res.waited < 5)
  local none, err, code = deploy.wait_healthy(self.server.base .. "/health",
    { timeout = 0.2, interval = 0.1, check = serves(hash.bytes(WRONG)) })
  lu.assertEquals({ none, code }, { nil, "timeout" })
  lu.assertStrContains(err, "not healthy after 0.2 s: serves " .. hash.bytes(GOOD):sub(1, 8))
  lu.assertErrorMsgContains("unknown field 'retries'", deploy.wait_healthy, "http://x/", { retries = 1 })
end

-- ---- smoke ----------------------------------------------------------------------------

TestSmoke = {}

function TestSmoke:setUp()
  self.server = shared
  assert(put_model(self.server.base, GOOD, "1"))
end

function TestSmoke:test_passing_cases_make_a_clean_report()
  local report = deploy.smoke(self.server.base .. "/", {
    { name = "setosa", method = "POST", path = "/predict", json = { features = { ROWS[1] } },
      expect = { predictions = { "setosa" }, version = "1" } },
    { path = "/health", expect = { status = "ok" },
      check = function(_, body) return #body.features == 4, "4 features" end },
    { name = "bad width", method = "POST", path = "/predict", json = { features = { { 1 } } }, status = 400 },
  })
  lu.assertEquals({ report.ok, report.total, report.passed, report.failed }, { true, 3, 3, 0 })
  lu.assertEquals(report.failures, {})
  lu.assertEquals({ report.cases[1].name, report.cases[2].name }, { "setosa", "GET /health" })
  lu.assertEquals(report.cases[1].answer.predictions, { "setosa" })
  lu.assertEquals(report.cases[3].status, 400)
end

function TestSmoke:test_each_failure_is_listed_with_its_case()
  assert(put_model(self.server.base, WRONG, "2"))
  local report = deploy.smoke(self.server.base, {
    { name = "species", method = "POST", path = "/predict", json = { features = ROWS },
      expect = { predictions = { "setosa", "versicolor", "virginica" } } },
    { name = "status", path = "/health", status = 204 },
    { name = "predicate", path = "/health", check = function(_, body) return body.version == "1", "version " .. body.version end },
    { name = "fine", path = "/health" },
  })
  lu.assertEquals({ report.ok, report.passed, report.failed }, { false, 1, 3 })
  lu.assertEquals(#report.failures, 4)
  lu.assertEquals(report.failures[1], 'species: json.predictions[1]: expected "setosa", got "virginica"')
  lu.assertEquals(report.failures[2], 'species: json.predictions[3]: expected "virginica", got "setosa"')
  lu.assertStrContains(report.failures[3], 'status: status 200, expected 204: {"status": "ok"')
  lu.assertEquals(report.failures[4], "predicate: version 2")
  lu.assertFalse(report.cases[1].ok)
  lu.assertTrue(report.cases[4].ok)

  local down = deploy.smoke("http://127.0.0.1:1", { { name = "up", path = "/health", timeout = 2 } })
  lu.assertFalse(down.ok)
  lu.assertStrContains(down.failures[1], "up: GET http://127.0.0.1:1/health: connection refused")
end

function TestSmoke:test_misuse_raises()
  lu.assertErrorMsgContains("non-empty list", deploy.smoke, self.server.base, {})
  lu.assertErrorMsgContains("case 1: unknown field 'expected'", deploy.smoke, self.server.base, { { expected = {} } })
  lu.assertErrorMsgContains("field 'status' must be a number", deploy.smoke, self.server.base, { { status = "200" } })
end

-- ---- promote and rollback -------------------------------------------------------------

TestPromote = {}

-- Registers a version of iris made by a run with this accuracy.
function TestPromote:version(content, accuracy)
  local path = self.root .. "/work/model.json"
  assert(fs.write(path, content))
  local run = assert(self.reg.runs:start_run { step = "train", git = false })
  assert(run:log_metric("accuracy", accuracy))
  assert(run:record_artifact { role = "out", path = "work/model.json", hash = hash.bytes(content), size = #content })
  assert(run:finish())
  return assert(self.reg:register { name = "iris", path = path }).version
end

function TestPromote:setUp()
  self.root = tempdir()
  assert(fs.mkdirs(self.root .. "/.mlx"))
  assert(fs.mkdirs(self.root .. "/work"))
  support.new_project(self.root)
  self.reg = assert(registry.open(self.root))
  assert((self.reg.runs.postgresql or false) == (support.backend == "postgresql"), "the backend under test is not in use")
  lu.assertEquals(self:version(GOOD, 0.9), 1)
  lu.assertEquals(self:version(WRONG, 0.95), 2)
end

function TestPromote:tearDown()
  self.reg:close()
  os.execute("rm -rf '" .. self.root .. "'")
end

function TestPromote:test_a_gate_decides_with_the_metrics_of_both_versions()
  assert(self.reg:set_alias("iris", "staging", 1))
  local seen
  local function gate(candidate, current)
    seen = { candidate.ref, candidate.metrics.accuracy, current and current.ref }
    return candidate.metrics.accuracy >= 0.9, "accuracy below 0.9"
  end
  local r = assert(deploy.promote { name = "iris", from = "staging", to = "production", gate = gate, registry = self.reg })
  lu.assertEquals(seen, { "iris:1", 0.9, nil }) -- no production yet
  lu.assertEquals({ r.version, r.previous, r.moved }, { 1, nil, true })

  assert(self.reg:set_alias("iris", "staging", 2))
  r = assert(deploy.promote { name = "iris", from = "staging", to = "production", registry = self.reg,
    gate = function(candidate, current)
      seen = { candidate.metrics.accuracy, current.metrics.accuracy }
      return candidate.metrics.accuracy > current.metrics.accuracy
    end })
  lu.assertEquals(seen, { 0.95, 0.9 })
  lu.assertEquals({ r.version, r.previous, r.moved }, { 2, 1, true })
  lu.assertEquals(assert(self.reg:get("iris@production")).version, 2)
  lu.assertEquals(assert(self.reg:alias_history("iris", "production"))[1].action, "set")
end

function TestPromote:test_a_failing_gate_moves_nothing()
  assert(self.reg:set_alias("iris", "production", 1))
  assert(self.reg:set_alias("iris", "staging", 2))
  local none, err, code = deploy.promote { name = "iris", from = "staging", to = "production", registry = self.reg,
    gate = function(c) return c.metrics.accuracy >= 0.99, ("accuracy %.2f < 0.99"):format(c.metrics.accuracy) end }
  lu.assertEquals({ none, err, code }, { nil, "iris:2 did not pass the gate: accuracy 0.95 < 0.99", "rejected" })
  lu.assertEquals(assert(self.reg:get("iris@production")).version, 1)
  lu.assertEquals(#assert(self.reg:alias_history("iris", "production")), 1)
end

function TestPromote:test_promoting_what_is_there_asks_no_gate_and_moves_nothing()
  assert(self.reg:set_alias("iris", "production", 2))
  assert(self.reg:set_alias("iris", "staging", 2))
  local r = assert(deploy.promote { name = "iris", from = "staging", to = "production", registry = self.reg,
    gate = function() error("the gate was asked") end })
  lu.assertEquals({ r.version, r.moved }, { 2, false })
  local none, err, code = deploy.promote { name = "iris", from = "canary", to = "production", registry = self.reg }
  lu.assertEquals({ none, err, code }, { nil, "model iris has no alias canary", "notfound" })
  lu.assertErrorMsgContains("name, from and to are required", deploy.promote, { name = "iris", registry = self.reg })
end

function TestPromote:test_rollback_goes_back_through_the_alias_history()
  assert(self.reg:set_alias("iris", "staging", 1))
  assert(deploy.promote { name = "iris", from = "staging", to = "production", registry = self.reg })
  assert(self.reg:set_alias("iris", "staging", 2))
  assert(deploy.promote { name = "iris", from = "staging", to = "production", registry = self.reg })
  local r = assert(deploy.rollback { name = "iris", alias = "production", registry = self.reg })
  lu.assertEquals({ r.version, r.previous }, { 1, 2 })
  lu.assertEquals(assert(self.reg:get("iris@production")).version, 1)
  r = assert(deploy.rollback { name = "iris", alias = "production", registry = self.reg })
  lu.assertEquals({ r.version, r.previous }, { nil, 1 })
  local none, _, code = deploy.rollback { name = "iris", alias = "production", registry = self.reg }
  lu.assertEquals({ none, code }, { nil, "notfound" })
end

local status = lu.LuaUnit.run("-o", "tap")
shared.handle:close()
os.execute("rm -rf '" .. files .. "'")
os.exit(status, true)
