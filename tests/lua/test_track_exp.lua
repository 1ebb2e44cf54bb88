-- mlx.track.exp: the experiments table over a real database — which run's
-- value a row shows, filters and sorts on the joined values, no-op runs.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local lu = require "luaunit"
local support = require "support"
local track = require "mlx.track"
local exp = require "mlx.track.exp"

TestExp = {}

-- A recipe run at start time t (seconds) with params, and step runs
-- {name, metrics, params} started one after the other.
local function recipe(store, t, params, steps, tags)
  local run = assert(store:start_run { recipe = "r.lua", parent = false, git = false, params = params, tags = tags })
  for i, s in ipairs(steps or {}) do
    local step = assert(store:start_run { recipe = "r.lua", step = s[1], parent = run.id, git = false,
      params = s.params })
    for k, v in pairs(s.metrics or {}) do step:log_metric(k, v, 0) end
    assert(step:finish(s.status or "FINISHED"))
    os.execute(("sqlite3 '%s' \"UPDATE runs SET start_time = %d WHERE id = '%s'\""):format(store.path,
      t * 1000 + i, step.id))
  end
  assert(run:finish())
  os.execute(("sqlite3 '%s' \"UPDATE runs SET start_time = %d WHERE id = '%s'\""):format(store.path, t * 1000,
    run.id))
  return run.id
end

function TestExp:setUp()
  self.dir = support.tempdir()
  self.store = assert(track.open(self.dir .. "/runs.db"))
  local s = self.store
  self.a = recipe(s, 100, { lr = 0.1 }, {
    { "train", metrics = { loss = 0.5, acc = 0.7 }, params = { lr = 0.1, depth = 3 } },
    { "evaluate", metrics = { acc = 0.8 } },
  })
  self.b = recipe(s, 200, { lr = 0.5 }, {
    { "train", metrics = { loss = 0.2 } },
    { "evaluate", metrics = { acc = 0.95 }, status = "CACHED" },
  })
  self.c = recipe(s, 300, { lr = 0.9 }, { { "train", metrics = { loss = 0 / 0 } } })
  self.noop = recipe(s, 400, { lr = 0.1 }, {}, { ["mlx.noop"] = "true" })
end

function TestExp:tearDown()
  self.store:close()
  os.execute("rm -rf '" .. self.dir .. "'")
end

function TestExp:test_a_row_joins_params_and_the_latest_step_metrics()
  local rows = assert(exp.rows(self.store, {}))
  lu.assertEquals(#rows, 3) -- the no-op invocation is left out
  local a = rows[3]
  lu.assertEquals(a.id, self.a)
  lu.assertEquals(a.params, { lr = "0.1", depth = "3" }) -- depth from the train step
  lu.assertEquals(a.metrics, { loss = 0.5, acc = 0.8 }) -- evaluate started after train
  lu.assertEquals(rows[2].metrics, { loss = 0.2, acc = 0.95 }) -- a CACHED step counts
  lu.assertTrue(rows[1].metrics.loss ~= rows[1].metrics.loss) -- NaN
  lu.assertEquals(#assert(exp.rows(self.store, { all = true })), 4)
end

function TestExp:test_offset_pages_the_rows()
  local all = assert(exp.rows(self.store, { order = "params.lr" }))
  local page = assert(exp.rows(self.store, { order = "params.lr", limit = 2, offset = 1 }))
  lu.assertEquals({ page[1].id, page[2].id }, { all[2].id, all[3].id })
  lu.assertEquals(#assert(exp.rows(self.store, { limit = 2, offset = 3 })), 0)
end

function TestExp:test_filters_and_sorts_read_the_joined_values()
  local function ids(query)
    local out = {}
    for i, row in ipairs(assert(exp.rows(self.store, query))) do out[i] = row.id end
    return out
  end
  lu.assertEquals(ids { filter = "metrics.acc > 0.75" }, { self.b, self.a })
  lu.assertEquals(ids { filter = "params.depth = 3" }, { self.a })
  lu.assertEquals(ids { order = "-metrics.acc" }, { self.b, self.a, self.c })
  -- NaN after the numbers, before the rows without the metric (MLflow's order).
  lu.assertEquals(ids { order = "metrics.loss" }, { self.b, self.a, self.c })
  lu.assertEquals(ids { order = "params.lr desc", limit = 2 }, { self.c, self.b })
  local rows, total = exp.rows(self.store, { order = "-metrics.acc", limit = 1, count = true })
  lu.assertEquals({ #rows, total }, { 1, 3 })
  local ok, err, code = exp.rows(self.store, { filter = "metrics.acc >" })
  lu.assertEquals({ ok, code }, { nil, "invalid" })
  lu.assertStrContains(err, "filter: column 14")
end

function TestExp:test_a_step_run_stands_for_its_recipe_run()
  local step = assert(self.store:runs { filter = ("parent = '%s' and step = 'train'"):format(self.b) })[1]
  local row = assert(exp.row(self.store, step.id))
  lu.assertEquals(row.id, self.b)
  lu.assertEquals(row.metrics.acc, 0.95)
  local ok, _, code = exp.row(self.store, "zzzz")
  lu.assertEquals({ ok, code }, { nil, "notfound" })
end

os.exit(lu.LuaUnit.run("-o", "tap"), true)
