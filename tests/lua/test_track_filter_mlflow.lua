-- mlx.track.filter against MLflow's meaning of its search and order_by
-- syntax: the filter and sort cases that MLflow checks in its own tests
-- (tests/utils/test_search_utils.py of mlflow/mlflow), restated here as
-- runs in real databases and the runs each filter selects, the order each
-- sort gives, or the error. Out of scope: datasets, pagination, registered
-- models. Where mlx deliberately says more than MLflow (OR, parentheses,
-- numeric params), the case is marked `extension` and checks what mlx does.
local lu = require "luaunit"
local track = require "mlx.track"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local support = require "support"

local dir = support.tempdir()
local stores = {}

-- Fixtures: name → runs in creation order, each { label, status, start,
-- finish (end time), user, metrics, params, tags }. Runs made later get
-- greater ids, which break ties of start time (newest first).
local FIXTURES = {
  -- The three runs MLflow filters and sorts: r1 and r2 start together, and
  -- r2 comes first among them, as in MLflow's natural order.
  three = {
    { "r0", status = "FAILED", start = 0, finish = 1, user = "user-id",
      metrics = { key1 = 121, ["Mean Square Error"] = 3 }, params = { my_param = "A" } },
    { "r1", status = "FINISHED", start = 1, finish = 1, user = "user-id2",
      metrics = { key1 = 123, ["Mean Square Error"] = 1 }, params = { my_param = "A" }, tags = { tag1 = "C" } },
    { "r2", status = "FAILED", start = 1, finish = 1, user = "user-id",
      metrics = { key1 = 125, ["Mean Square Error"] = 2 }, params = { my_param = "B" }, tags = { tag1 = "D" } },
  },
  -- Start and end times 0, 1, 2 (milliseconds).
  times = {
    { "t0", start = 0, finish = 0 }, { "t1", start = 1, finish = 1 }, { "t2", start = 2, finish = 2 },
  },
  -- For the parsed expressions: each names fields some runs have.
  parsed = {
    { "p1", status = "RUNNING", start = 2000,
      metrics = { acc = 0.95, ["legit name"] = 0.3, XYZ = 3, ["X-Y-Z"] = 3, ["X//Y#$$@&Z"] = 3, rmse = 0.5,
        ["accuracy.2.0"] = 6, ["spacey name"] = 6, a = 0.2 },
      params = { m = "torch", ["cat dog"] = "pets", model = "LinearRegression", model_class = "LR",
        ["p.a.r.a.m"] = "b", b = "val" },
      tags = { version = "commit-hash", source_name = "a notebook", ["t.a.g"] = "a" } },
    { "p2", status = "FINISHED", start = 1000,
      metrics = { acc = 100, ["legit name"] = 0.1, XYZ = 4, ["X-Y-Z"] = 2, rmse = 2, ["accuracy.2.0"] = 5,
        ["spacey name"] = 5, a = 0.05, A = 0.5 },
      params = { m = "tf", ["cat dog"] = "cats", model = "LR", model_class = "LR", ["p.a.r.a.m"] = "a",
        lr = "0.1", b = "val", acc = "5.0" },
      tags = { version = "v2", ["t.a.g"] = "b", a = "x" } },
    { "p3", status = "FINISHED", start = 1000, metrics = { A = 0.05 }, params = { m = "LR", lr = "0.2", B = "LR" } },
    { "p4", status = "FINISHED", start = 1000, params = { m = "L'Hosp" } },
  },
  -- One tag on one run, one param on the other.
  nulls = {
    { "with_tag", tags = { env = "prod" } }, { "with_param", params = { lr = "0.01" } },
  },
  -- A metric x of NaN, the infinities, numbers, and a run without it.
  nan = {
    { "nan", metrics = { x = 0 / 0 } }, { "inf", metrics = { x = math.huge } },
    { "-inf", metrics = { x = -math.huge } }, { "-1000", metrics = { x = -1000 } },
    { "0", metrics = { x = 0 } }, { "1000", metrics = { x = 1000 } }, { "None", metrics = { y = 1 } },
  },
}

-- An SQL literal of a string, an integer or nil.
local function literal(v)
  if v == nil then return "NULL" end
  if math.type(v) == "integer" then return tostring(v) end
  return "'" .. v:gsub("'", "''") .. "'"
end

-- The store of a fixture, made on first use, and its labels by run id.
local function fixture(name)
  if stores[name] then return table.unpack(stores[name]) end
  local path = dir .. "/" .. name .. ".db"
  local store = assert(track.open(path))
  local labels, updates = {}, {}
  for _, spec in ipairs(FIXTURES[name]) do
    local run = assert(store:start_run { recipe = "r.lua", params = spec.params, tags = spec.tags, git = false })
    if spec.metrics then assert(run:log_metrics(spec.metrics, 1)) end
    assert(run:finish(spec.status == "FAILED" and "FAILED" or "FINISHED"))
    labels[run.id] = spec[1]
    updates[#updates + 1] = ("UPDATE runs SET status = %s, start_time = coalesce(%s, start_time),"
      .. " end_time = coalesce(%s, end_time), user = coalesce(%s, user) WHERE id = %s;"):format(
      literal(spec.status or "FINISHED"), literal(spec.start), literal(spec.finish), literal(spec.user),
      literal(run.id))
  end
  assert(store:flush())
  -- Times, users and RUNNING as MLflow's runs have them: the API stamps
  -- the present, and a query may not write, so the sqlite3 shell does.
  local script = assert(io.open(dir .. "/" .. name .. ".sql", "w"))
  script:write(table.concat(updates, "\n"), "\n")
  script:close()
  assert(os.execute(("sqlite3 '%s' < '%s/%s.sql'"):format(path, dir, name)))
  stores[name] = { store, labels }
  return store, labels
end

-- The labels of the runs a query selects, in order; or nil, message.
local function select(name, query)
  local store, labels = fixture(name)
  local runs, err = store:runs(query)
  if not runs then return nil, err end
  local out = {}
  for i, run in ipairs(runs) do out[i] = labels[run.id] end
  return out
end

local function sorted(list)
  table.sort(list)
  return list
end

-- Checks one case: { fixture, filter or order, runs = {…} (any order for a
-- filter, this order for a sort) or error = "the start of the message" }.
local function check(case)
  local query = case.order and { order = case.order } or { filter = case.filter }
  local text = case.order or case.filter
  local got, err = select(case[1], query)
  if case.error then
    lu.assertNil(got, text)
    lu.assertStrContains(err, case.error, false, text)
  else
    lu.assertNotNil(got, ("%s: %s"):format(text, err))
    lu.assertEquals(case.order and got or sorted(got), case.order and case.runs or sorted(case.runs), text)
  end
end

-- Checks every case and fails once, naming all the cases that disagree.
local function check_all(cases)
  local failures = {}
  for _, case in ipairs(cases) do
    local ok, err = pcall(check, case)
    if not ok then failures[#failures + 1] = type(err) == "table" and err.msg or tostring(err) end
  end
  if #failures > 0 then
    lu.fail(("%d of %d cases disagree:\n%s"):format(#failures, #cases, table.concat(failures, "\n")))
  end
end

TestMlflowFilter = {}

-- Expressions MLflow parses; each selects what MLflow's search would.
function TestMlflowFilter:test_parsed_expressions()
  check_all {
    { "parsed", filter = "metric.acc >= 0.94", runs = { "p1", "p2" } },
    { "parsed", filter = "metric.acc>=100", runs = { "p2" } },
    { "parsed", filter = "params.m!='tf'", runs = { "p1", "p3", "p4" } },
    { "parsed", filter = 'params."m"!="tf"', runs = { "p1", "p3", "p4" } },
    { "parsed", filter = 'metric."legit name" >= 0.243', runs = { "p1" } },
    { "parsed", filter = "metrics.XYZ = 3", runs = { "p1" } },
    { "parsed", filter = 'params."cat dog" = "pets"', runs = { "p1" } },
    { "parsed", filter = 'metrics."X-Y-Z" = 3', runs = { "p1" } },
    { "parsed", filter = 'metrics."X//Y#$$@&Z" = 3', runs = { "p1" } },
    { "parsed", filter = "params.model = 'LinearRegression'", runs = { "p1" } },
    { "parsed", filter = "metrics.rmse < 1 and params.model_class = 'LR'", runs = { "p1" } },
    { "parsed", filter = "", runs = { "p1", "p2", "p3", "p4" } },
    { "parsed", filter = "`metric`.a >= 0.1", runs = { "p1" } },
    -- MLflow parses this, and its search then refuses '>=' on a param
    -- ("Invalid comparator"), as it does in the comparator cases below.
    { "parsed", filter = "`params`.model >= 'LR'",
      error = "column 16: '>=' compares `params`.model only with a number" },
    { "parsed", filter = "tags.version = 'commit-hash'", runs = { "p1" } },
    { "parsed", filter = "`tags`.source_name = 'a notebook'", runs = { "p1" } },
    { "parsed", filter = 'metrics."accuracy.2.0" > 5', runs = { "p1" } },
    { "parsed", filter = "metrics.`spacey name` > 5", runs = { "p1" } },
    { "parsed", filter = 'params."p.a.r.a.m" != "a"', runs = { "p1" } },
    { "parsed", filter = 'tags."t.a.g" = "a"', runs = { "p1" } },
    -- mlx runs have no artifact URI (their artifacts are listed, with
    -- hashes, by 'mlx runs show'): the name is refused, not matched to nothing.
    { "parsed", filter = "attribute.artifact_uri = '1/23/4'", error = "column 1: unknown attribute 'artifact_uri'" },
    { "parsed", filter = "attribute.start_time >= 1234", runs = { "p1" } },
    { "parsed", filter = "run.status = 'RUNNING'", runs = { "p1" } },
    { "parsed", filter = "tags.version IS NULL", runs = { "p3", "p4" } },
    { "parsed", filter = "tags.version IS NOT NULL", runs = { "p1", "p2" } },
    { "parsed", filter = "params.lr IS NULL", runs = { "p1", "p4" } },
    { "parsed", filter = "params.lr IS NOT NULL", runs = { "p2", "p3" } },
    { "parsed", filter = "tags.a IS NULL AND params.b = 'val'", runs = { "p1" } },
  }
end

function TestMlflowFilter:test_quotes_are_trimmed()
  check_all {
    { "parsed", filter = "params.m = 'LR'", runs = { "p3" } },
    { "parsed", filter = 'params.m = "LR"', runs = { "p3" } },
    { "parsed", filter = "params.m = \"L'Hosp\"", runs = { "p4" } },
  }
end

function TestMlflowFilter:test_errors()
  check_all {
    { "parsed", filter = "metric.acc >= 0.94; metrics.rmse < 1", error = "column 19: unexpected character ';'" },
    { "parsed", filter = "m.acc >= 0.94", error = "column 1: unknown prefix 'm'" },
    { "parsed", filter = "acc >= 0.94", error = "column 1: unknown attribute 'acc'" },
    { "parsed", filter = "p.model >= 'LR'", error = "column 1: unknown prefix 'p'" },
    { "parsed", filter = "attri.x != 1", error = "column 1: unknown prefix 'attri'" },
    { "parsed", filter = "a.x != 1", error = "column 1: unknown prefix 'a'" },
    { "parsed", filter = "model >= 'LR'", error = "column 1: unknown attribute 'model'" },
    { "parsed", filter = "metrics.A > 0.1 OR params.B = 'LR'", runs = { "p2", "p3" }, extension = true },
    { "parsed", filter = "metrics.A > 0.1 NAND params.B = 'LR'", error = "column 17: unexpected 'NAND'" },
    { "parsed", filter = "metrics.A > 0.01 AND (params.B = 'LR')", runs = { "p3" }, extension = true },
    { "parsed", filter = "`metrics.A > 0.1", error = "column 1: unterminated quoted name starting with `" },
    { "parsed", filter = "param`.A > 0.1", error = "column 6: unterminated quoted name" },
    { "parsed", filter = "`dummy.A > 0.1", error = "column 1: unterminated quoted name" },
    { "parsed", filter = "dummy`.A > 0.1", error = "column 6: unterminated quoted name" },
    { "parsed", filter = "attribute.start != 1", error = "column 1: unknown attribute 'start'" },
    { "parsed", filter = "attribute.experiment_id != 1", error = "column 1: unknown attribute 'experiment_id'" },
    { "parsed", filter = "attribute.lifecycle_stage = 'ACTIVE'",
      error = "column 1: unknown attribute 'lifecycle_stage'" },
    { "parsed", filter = "attribute.name != 1", error = "column 1: unknown attribute 'name'" },
    { "parsed", filter = "attribute.time != 1", error = "column 1: unknown attribute 'time'" },
    { "parsed", filter = "attribute._status != 'RUNNING'", error = "column 1: unknown attribute '_status'" },
    { "parsed", filter = "attribute.status = true", error = "column 20: attribute.status is not true or false" },
    { "parsed", filter = "metrics.acc IS NULL", error = "column 13: IS NULL does not apply to metrics.acc" },
    { "parsed", filter = "attribute.status IS NULL", error = "column 18: IS NULL does not apply to attribute.status" },
  }
end

function TestMlflowFilter:test_values_of_the_wrong_kind()
  check_all {
    { "parsed", filter = "metric.model = 'LR'",
      error = "column 16: metric.model is a number: compare it with a number" },
    { "parsed", filter = "metric.model = '5'", error = "column 16: metric.model is a number" },
    -- A number compares a param as a number ('5.0' = 5); MLflow wants a string.
    { "parsed", filter = "params.acc = 5", runs = { "p2" }, extension = true },
    { "parsed", filter = "tags.acc = 5", error = "column 12: tags.acc is text: compare it with a quoted string ('5')" },
    { "parsed", filter = "metrics.acc != metrics.acc",
      error = "column 16: expected a value after '!=' but found 'metrics.acc'" },
    { "parsed", filter = "1.0 > metrics.acc", error = "column 1: expected a name" },
    { "parsed", filter = "attribute.status = 1",
      error = "column 20: attribute.status is text: compare it with a quoted string" },
  }
end

function TestMlflowFilter:test_bad_quotes()
  check_all {
    { "parsed", filter = "params.acc = LR",
      error = "column 14: expected a value after '=' but found 'LR' (quote strings: 'LR')" },
    { "parsed", filter = "tags.acc = LR", error = "column 12: expected a value after '=' but found 'LR'" },
    { "parsed", filter = "params.acc = `LR`", error = "column 14: expected a value after '=' but found '`LR`'" },
    { "parsed", filter = "params.'acc = LR", error = "column 8: unterminated string starting with '" },
    { "parsed", filter = "params.acc = 'LR", error = "column 14: unterminated string" },
    { "parsed", filter = "params.acc = LR'", error = "column 16: unterminated string" },
    { "parsed", filter = "params.acc = \"LR'", error = "column 14: unterminated string" },
    { "parsed", filter = "tags.acc = \"LR'", error = "column 12: unterminated string" },
    { "parsed", filter = "tags.acc = = 'LR'", error = "column 12: expected a value after '=' but found '='" },
    { "parsed", filter = "attribute.status IS 'RUNNING'", error = "column 21: expected NULL after IS" },
  }
end

function TestMlflowFilter:test_invalid_clauses()
  check_all {
    { "parsed", filter = "params.acc LR !=", error = "column 12: expected a comparison" },
    { "parsed", filter = "params.acc LR", error = "column 12: expected a comparison" },
    { "parsed", filter = "metric.acc !=", error = "column 14: expected a value after '!='" },
    { "parsed", filter = "acc != 1.0", error = "column 1: unknown attribute 'acc'" },
    { "parsed", filter = "foo is null", error = "column 1: unknown attribute 'foo'" },
    { "parsed", filter = "1=1", error = "column 1: expected a name" },
    { "parsed", filter = "1==2", error = "column 1: expected a name" },
  }
end

-- The comparators MLflow refuses on each kind of field.
function TestMlflowFilter:test_bad_comparators()
  local cases = {}
  local function add(field, ops, value, message)
    for _, op in ipairs(ops) do
      cases[#cases + 1] = { "three", filter = ("%s %s %s"):format(field, op, value), error = message:gsub("OP", op) }
    end
  end
  add("metrics.abc", { "~", "~=" }, "1.0", "unexpected character '~'")
  add("params.abc", { ">", "<", ">=", "<=" }, "'my-param-value'", "'OP' compares params.abc only with a number")
  add("params.abc", { "~" }, "'my-param-value'", "unexpected character '~'")
  add("tags.abc", { ">", "<", ">=", "<=" }, "'my-tag-value'", "'OP' does not apply to tags.abc, which is text")
  add("tags.abc", { "~" }, "'my-tag-value'", "unexpected character '~'")
  add("attributes.status", { ">", "<", ">=", "<=" }, "'my-tag-value'",
    "'OP' does not apply to attributes.status, which is text")
  add("attributes.status", { "~" }, "'my-tag-value'", "unexpected character '~'")
  add("attributes.start_time", { "LIKE", "ILIKE" }, "1234", "attributes.start_time is a time: OP compares text")
  lu.assertEquals(#cases, 19)
  check_all(cases)
end

function TestMlflowFilter:test_filtering()
  check_all {
    { "three", filter = "", runs = { "r0", "r1", "r2" } },
    { "three", filter = "attributes.status = 'FAILED'", runs = { "r0", "r2" } },
    { "three", filter = "metrics.key1 = 123", runs = { "r1" } },
    { "three", filter = "metrics.key1 != 123", runs = { "r0", "r2" } },
    { "three", filter = "metrics.key1 >= 123", runs = { "r1", "r2" } },
    { "three", filter = "params.my_param = 'A'", runs = { "r0", "r1" } },
    { "three", filter = "tags.tag1 = 'D'", runs = { "r2" } },
    { "three", filter = "tags.tag1 != 'D'", runs = { "r1" } },
    { "three", filter = "params.my_param = 'A' AND attributes.status = 'FAILED'", runs = { "r0" } },
    { "three", filter = "attribute.user_id = 'user-id2'", runs = { "r1" } },
    { "times", filter = "attribute.start_time >= 0", runs = { "t0", "t1", "t2" } },
    { "times", filter = "attribute.start_time > 1", runs = { "t2" } },
    { "times", filter = "attribute.start_time = 2", runs = { "t2" } },
    { "times", filter = "attribute.end_time >= 0", runs = { "t0", "t1", "t2" } },
    { "times", filter = "attribute.end_time > 1", runs = { "t2" } },
    { "times", filter = "attribute.end_time = 2", runs = { "t2" } },
    { "nulls", filter = "tags.env IS NOT NULL", runs = { "with_tag" } },
    { "nulls", filter = "tags.env IS NULL", runs = { "with_param" } },
    { "nulls", filter = "params.lr IS NOT NULL", runs = { "with_param" } },
    { "nulls", filter = "params.lr IS NULL", runs = { "with_tag" } },
  }
  lu.assertEquals(select("three", {}), { "r2", "r1", "r0" }) -- no filter at all
end

TestMlflowSort = {}

function TestMlflowSort:test_sorting()
  check_all {
    { "three", order = "tags.noSuchTag", runs = { "r2", "r1", "r0" } },
    { "three", order = "attributes.status", runs = { "r2", "r0", "r1" } },
    { "three", order = "attributes.start_time", runs = { "r0", "r2", "r1" } },
    { "three", order = "metrics.key1 asc", runs = { "r0", "r1", "r2" } },
    { "three", order = 'metrics."key1"  desc', runs = { "r2", "r1", "r0" } },
    { "three", order = "params.my_param", runs = { "r1", "r0", "r2" } },
    -- MLflow takes a list of keys; mlx one text with commas between them.
    { "three", order = "params.my_param aSc, attributes.status  ASC", runs = { "r0", "r1", "r2" } },
    { "three", order = "params.my_param, attributes.status DESC", runs = { "r1", "r0", "r2" } },
    { "three", order = "params.my_param DESC, attributes.status   DESC", runs = { "r2", "r1", "r0" } },
    { "three", order = "params.`my_param` DESC, attributes.status DESC", runs = { "r2", "r1", "r0" } },
    { "three", order = "tags.tag1", runs = { "r1", "r2", "r0" } },
    { "three", order = "tags.tag1    DESC", runs = { "r2", "r1", "r0" } },
    { "three", order = "metrics.`Mean Square Error`", runs = { "r1", "r2", "r0" } },
    { "three", order = "metrics.`Mean Square Error` ASC", runs = { "r1", "r2", "r0" } },
    { "three", order = "metrics.`Mean Square Error` DESC", runs = { "r0", "r2", "r1" } },
  }
  lu.assertEquals(select("three", { order = "" }), { "r2", "r1", "r0" })
end

function TestMlflowSort:test_nan_after_numbers_and_before_missing()
  check_all {
    { "nan", order = "metrics.x asc", runs = { "-inf", "-1000", "0", "1000", "inf", "nan", "None" } },
    { "nan", order = "metrics.x desc", runs = { "inf", "1000", "0", "-1000", "-inf", "nan", "None" } },
  }
end

function TestMlflowSort:test_errors()
  check_all {
    { "three", order = "m.acc", error = "column 1: unknown prefix 'm'" },
    { "three", order = "acc", error = "column 1: unknown attribute 'acc'" },
    { "three", order = "attri.x", error = "column 1: unknown prefix 'attri'" },
    { "three", order = "`metrics.A", error = "column 1: unterminated quoted name" },
    { "three", order = "`metrics.A`",
      error = "column 1: unknown attribute 'metrics.A' (quote the name alone: metrics.`A`)" },
    { "three", order = "attribute.start", error = "column 1: unknown attribute 'start'" },
    { "three", order = "attribute.experiment_id", error = "column 1: unknown attribute 'experiment_id'" },
    { "three", order = "metrics.A != 1", error = "column 11: unexpected '!=' after a complete sort key" },
    { "three", order = "params.my_param ", error = "column 16: space after the last sort key" },
    { "three", order = "attribute.run_id ACS", error = "column 18: unexpected 'ACS' after a complete sort key" },
    { "three", order = "attribute.run_id decs", error = "column 18: unexpected 'decs' after a complete sort key" },
  }
end

local code = lu.LuaUnit.run("-o", "tap")
for _, s in pairs(stores) do s[1]:close() end
os.execute("rm -rf '" .. dir .. "'")
os.exit(code, true)
