-- mlx.web, mlx.web.api and mlx.web.graph without a browser: the Host rule,
-- the routes a request may reach, downsampling and the graph from a lock.
-- The handler is called as mlx.httpd calls it, on a real project.
local lu = require "luaunit"
local fs = require "mlx.fs"
local json = require "mlx.json"
local track = require "mlx.track"
local web = require "mlx.web"
local api = require "mlx.web.api"
local graph = require "mlx.web.graph"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local support = require "support"

TestWeb = {}

function TestWeb:setUp()
  self.dir = support.tempdir()
  support.new_project(self.dir)
end

-- The project's tracking database, on the backend under test (as the
-- server finds it: mlx.track.tracking of the project).
function TestWeb:store()
  return assert(track.open_tracking(assert(track.tracking(self.dir))))
end

function TestWeb:tearDown()
  os.execute("rm -rf '" .. self.dir .. "'")
end

function TestWeb:test_host_header_names_this_machine_or_the_bound_host()
  -- An IP address is the server's own origin (bound to 0.0.0.0, the
  -- machine's address); a DNS name is refused unless it is the --host.
  for _, host in ipairs({ "localhost", "localhost:8470", "127.0.0.1:1", "[::1]:8470", "LOCALHOST",
    "192.168.1.5:8470", "[fe80::1]:80" }) do
    lu.assertTrue(web.host_allowed(host), host)
  end
  for _, host in ipairs({ "evil.example", "127.0.0.1.evil.example", "localhost.evil:80", "", "1.2.3.4.nip.io",
    "127.0.0.1:80@evil", "a b", "[::1" }) do
    lu.assertFalse(web.host_allowed(host), host)
  end
  lu.assertFalse(web.host_allowed(nil))
  lu.assertTrue(web.host_allowed("box.lan:8470", "box.lan"))
  lu.assertTrue(web.host_allowed("[fe80::1]:80", "fe80::1"))
  lu.assertFalse(web.host_allowed("other.lan:8470", "box.lan"))
end

-- The handler of a project, called as mlx.httpd calls it.
function TestWeb:get(path, query, host)
  local handler = web.app { root = self.dir, dot = false }
  return handler { method = "GET", path = path, host = host or "127.0.0.1:8470", query = query or {} }
end

function TestWeb:test_only_the_page_files_and_the_api_are_served()
  local status, ctype, body, headers = self:get("/")
  lu.assertEquals(status, 200)
  lu.assertEquals(ctype, "text/html; charset=utf-8")
  lu.assertStrContains(body, "/app.js")
  lu.assertStrContains(headers["Content-Security-Policy"], "script-src 'self'")
  lu.assertNil(headers["Access-Control-Allow-Origin"])
  for _, path in ipairs({ "/../mlx.lock", "/mlx.lock", "/.mlx/runs.db", "/web/app.js", "/app.js/", "/index.htm" }) do
    lu.assertEquals((self:get(path)), 404, path)
  end
  lu.assertEquals((self:get("/", {}, "evil.example")), 421)
end

function TestWeb:test_an_empty_project_answers_without_creating_a_database()
  local status, _, body = self:get("/api/runs")
  lu.assertEquals(status, 200)
  lu.assertEquals(json.decode(body).total, 0)
  status, _, body = self:get("/api/project")
  lu.assertEquals(json.decode(body).runs, 0)
  status, _, body = self:get("/api/graph")
  lu.assertEquals(json.decode(body).pipelines, {})
  lu.assertNil(fs.stat(self.dir .. "/.mlx/runs.db"))
end

function TestWeb:test_api_errors_are_json_with_a_status()
  local store = self:store()
  local run = assert(store:start_run { recipe = "r.lua", git = false })
  for step = 1, 5 do run:log_metric("loss", 1 / step, step) end
  run:finish("FINISHED")
  store:close()
  local status, _, body = self:get("/api/runs", { filter = "metrics.loss >" })
  lu.assertEquals(status, 400)
  lu.assertStrContains(json.decode(body).error, "filter: column")
  status, _, body = self:get("/api/runs", { limit = "0" })
  lu.assertEquals(status, 400)
  status = self:get("/api/runs/zzzz")
  lu.assertEquals(status, 404)
  status = self:get("/api/nothing")
  lu.assertEquals(status, 404)
  status, _, body = self:get("/api/runs/" .. run.id .. "/metrics/loss", { points = "10" })
  lu.assertEquals(status, 200)
  lu.assertEquals(json.decode(body).values, { 1, 0.5, 1 / 3, 0.25, 0.2 })
end

function TestWeb:test_history_of_several_runs_in_one_request()
  local store = self:store()
  local ids = {}
  for r = 1, 3 do
    local run = assert(store:start_run { recipe = "r.lua", git = false })
    for step = 1, r do run:log_metric("loss", r * step, step) end
    run:finish("FINISHED")
    ids[r] = run.id
  end
  store:close()
  local status, _, body = self:get("/api/history", { key = "loss", runs = table.concat(ids, ",") })
  lu.assertEquals(status, 200)
  local h = json.decode(body)
  lu.assertEquals(#h.series, 3)
  lu.assertEquals(h.series[3].run, ids[3])
  lu.assertEquals(h.series[3].values, { 3, 6, 9 })
  lu.assertEquals(h.series[1].steps, { 1 })
  lu.assertEquals((self:get("/api/history", { key = "loss", runs = ids[1] .. ",zzzz" })), 404)
  lu.assertEquals((self:get("/api/history", { runs = ids[1] })), 400)
end

function TestWeb:test_downsampling_keeps_ends_peaks_and_troughs()
  local history = {}
  for i = 1, 10000 do history[i] = { step = i, value = (i == 5000) and 100 or (i == 7000 and -100 or i % 7) } end
  local out = api.downsample(history, 100)
  lu.assertTrue(#out <= 100)
  lu.assertEquals(out[1].step, 1)
  lu.assertEquals(out[#out].step, 10000)
  local max, min, last = -math.huge, math.huge, 0
  for _, p in ipairs(out) do
    max, min = math.max(max, p.value), math.min(min, p.value)
    lu.assertTrue(p.step > last, "in step order")
    last = p.step
  end
  lu.assertEquals(max, 100)
  lu.assertEquals(min, -100)
  lu.assertIs(api.downsample({ history[1] }, 100)[1], history[1])
end

function TestWeb:test_the_graph_comes_from_the_lock()
  -- A lock as a run writes it: mlx.lock refuses malformed keys and outs.
  local h = ("ab"):rep(32)
  local function out(type) return { type = type, hash = h, size = 1, mode = "644", files = 1 } end
  assert(json.save(self.dir .. "/mlx.lock", { version = 1, steps = { p = {
    prep = { key = ("a"):rep(64), deps = { ["data/x"] = h }, outs = { ["work/split"] = out("dir") } },
    train = { key = ("b"):rep(64), deps = { ["work/split/train.csv"] = h }, outs = { ["model"] = out("file") } },
    ['say "hi"\\'] = { key = ("c"):rep(64), deps = { model = h }, outs = {} },
  } } }))
  local pipelines = graph.pipelines(self.dir)
  lu.assertEquals(#pipelines, 1)
  lu.assertEquals(pipelines[1].edges, { { from = "train", to = 'say "hi"\\' }, { from = "prep", to = "train" } })
  local dot = graph.dot(pipelines[1])
  lu.assertStrContains(dot, '"say \\"hi\\"\\\\" [label="say \\"hi\\"\\\\\\n')
  lu.assertStrContains(dot, '"prep" -> "train";')
end

function TestWeb:test_verify_runs_are_shown_apart_from_the_steps_runs()
  -- mlx verify records a step run with the locked key, newer than the
  -- project's own: it is neither the step's newest run nor its producer.
  local h, key = ("ab"):rep(32), ("d"):rep(64)
  assert(json.save(self.dir .. "/mlx.lock", { version = 1, steps = { p = {
    train = { key = key, deps = { ["data/x"] = h },
      outs = { model = { type = "file", hash = h, size = 1, mode = "644" } },
      deterministic = false },
  } } }))
  local store = self:store()
  local recipe = assert(store:start_run { recipe = "pipeline.lua", git = false })
  local own = assert(store:start_run {
    parent = recipe, recipe = "pipeline.lua", step = "train", step_key = key, git = false,
  })
  own:finish("FINISHED")
  recipe:finish("FINISHED")
  local verify = assert(store:start_run { recipe = "pipeline.lua", git = false, tags = { ["mlx.verify"] = "passed" } })
  local checked = assert(store:start_run { parent = verify, recipe = "pipeline.lua", step = "train", step_key = key,
    git = false, tags = { ["mlx.verify"] = "passed" } })
  checked:finish("FINISHED")
  verify:finish("FINISHED")
  lu.assertEquals(store:step_producer(key), own.id, "the producer of the key is the project's run")
  store:close()
  local status, _, body = self:get("/api/graph")
  lu.assertEquals(status, 200)
  local s = json.decode(body).pipelines[1].steps[1]
  lu.assertEquals(s.latest.id, own.id)
  lu.assertEquals(s.producer, own.id)
  lu.assertEquals(s.state, "done")
  lu.assertEquals(s.verification.id, checked.id)
  lu.assertEquals(s.verification.result, "passed")
  lu.assertEquals(s.deterministic, false)
  -- A verification running now is listed as one.
  store = self:store()
  local running = assert(store:start_run {
    recipe = "pipeline.lua", git = false, tags = { ["mlx.verify"] = "incomplete" },
  })
  assert(store:flush())
  local listed = json.decode(select(3, self:get("/api/graph"))).running
  running:finish("KILLED")
  store:close()
  lu.assertEquals(#listed, 1)
  lu.assertEquals(listed[1].id, running.id)
  lu.assertTrue(listed[1].verification)
end

function TestWeb:test_a_steps_newest_run_is_of_its_own_recipe()
  -- Two pipelines with a step of the same name: the other one's failure
  -- is not this one's.
  local h, kp, kq = ("ab"):rep(32), ("e"):rep(64), ("f"):rep(64)
  local function entry(key)
    return { key = key, deps = {}, outs = { m = { type = "file", hash = h, size = 1, mode = "644" } } }
  end
  assert(json.save(self.dir .. "/mlx.lock", {
    version = 1, steps = { p = { train = entry(kp) }, q = { train = entry(kq) } },
  }))
  local store = self:store()
  local function step_run(recipe, key, status)
    local r = assert(store:start_run { recipe = recipe, git = false })
    local s = assert(store:start_run { parent = r, recipe = recipe, step = "train", step_key = key, git = false })
    s:finish(status)
    r:finish(status)
    return s.id
  end
  local p_run = step_run("p's.lua", kp, "FINISHED")
  local q_run = step_run("q.lua", ("0"):rep(64), "FAILED")
  store:close()
  local pipelines = json.decode(select(3, self:get("/api/graph"))).pipelines
  lu.assertEquals(pipelines[1].name, "p")
  lu.assertEquals(pipelines[1].steps[1].latest.id, p_run)
  lu.assertEquals(pipelines[1].steps[1].state, "done")
  lu.assertEquals(pipelines[2].steps[1].latest.id, q_run, "a step no run produced: the newest of its name")
  lu.assertEquals(pipelines[2].steps[1].state, "failed")
end

os.exit(lu.LuaUnit.run("-o", "tap"), true)
