-- mlx.track.filter: the filter and sort language, run against a real
-- database, and its syntax errors with their columns.
local lu = require "luaunit"
local filter = require "mlx.track.filter"
local fs = require "mlx.fs"
local track = require "mlx.track"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local support = require "support"

local dir, store

-- name → {metrics, params, tags, status}
local RUNS = {
  a = { metrics = { acc = 0.95, loss = 0.2 }, params = { lr = "0.1", opt = "adam" }, tags = { team = "Vision" } },
  b = { metrics = { acc = 0.85, loss = 0.4 }, params = { lr = "0.05", opt = "sgd" }, tags = { team = "vision" } },
  c = { metrics = { acc = 0.92 }, params = { lr = "0.010", opt = "adam" }, status = "FAILED" },
  d = { metrics = { loss = 9 }, params = { lr = "high", note = "it's 50% done" }, status = "KILLED" },
}

local function open_store()
  if store then return store end
  dir = support.tempdir()
  store = assert(track.open(dir .. "/runs.db"))
  for _, name in ipairs({ "a", "b", "c", "d" }) do
    local spec = RUNS[name]
    local tags = { name = name }
    for k, v in pairs(spec.tags or {}) do tags[k] = v end
    local run = assert(store:start_run { recipe = name .. ".lua", params = spec.params, tags = tags, git = false })
    assert(run:log_metrics(spec.metrics, 1))
    assert(run:finish(spec.status or "FINISHED"))
  end
  return store
end

local function names(query)
  local runs = assert(open_store():runs(query))
  local out = {}
  for i, run in ipairs(runs) do out[i] = run.tags.name end
  return out
end

local function sorted_names(query)
  local out = names(query)
  table.sort(out)
  return out
end

TestFilter = {}

function TestFilter:test_mlflow_syntax()
  lu.assertEquals(sorted_names { filter = "metrics.acc > 0.9" }, { "a", "c" })
  lu.assertEquals(sorted_names { filter = "metrics.acc > 0.9 and params.opt = 'adam'" }, { "a", "c" })
  lu.assertEquals(sorted_names { filter = "metrics.acc > 0.9 AND params.lr = '0.1'" }, { "a" })
  lu.assertEquals(sorted_names { filter = "attributes.status = 'FAILED'" }, { "c" })
  lu.assertEquals(sorted_names { filter = "status != 'finished'" }, { "c", "d" })
  lu.assertEquals(sorted_names { filter = "tags.team = 'vision'" }, { "b" })
  lu.assertEquals(sorted_names { filter = "tags.team LIKE 'V%'" }, { "a" }) -- LIKE is case-sensitive
  lu.assertEquals(sorted_names { filter = "tags.team ILIKE 'v%'" }, { "a", "b" })
  lu.assertEquals(sorted_names { filter = "params.note LIKE '%50%' and params.note = 'it''s 50% done'" }, { "d" })
  lu.assertEquals(sorted_names { filter = "params.note LIKE 'it_s 50_ done'" }, { "d" })
  lu.assertEquals(sorted_names { filter = "params.note LIKE 'it%[s]%'" }, {}) -- [ is no wildcard
  lu.assertEquals(sorted_names { filter = "params.opt IN ('sgd', 'rmsprop')" }, { "b" })
  lu.assertEquals(sorted_names { filter = "params.opt NOT IN ('sgd')" }, { "a", "c" })
  lu.assertEquals(sorted_names { filter = "tags.team IS NULL" }, { "c", "d" })
  lu.assertEquals(sorted_names { filter = "params.note IS NOT NULL and recipe = 'd.lua'" }, { "d" })
  lu.assertEquals(sorted_names { filter = "metrics.`acc` >= 0.92" }, { "a", "c" })
end

function TestFilter:test_or_not_and_parentheses()
  lu.assertEquals(sorted_names { filter = "status = 'KILLED' or metrics.acc < 0.9" }, { "b", "d" })
  lu.assertEquals(sorted_names { filter = "(status = 'KILLED' or metrics.acc < 0.9) and metrics.loss > 1" }, { "d" })
  lu.assertEquals(sorted_names { filter = "status = 'KILLED' or (metrics.acc < 0.9 and metrics.loss > 1)" }, { "d" })
  lu.assertEquals(sorted_names { filter = "not (status = 'FINISHED')" }, { "c", "d" })
  lu.assertEquals(sorted_names { filter = "metrics.acc > 0.9 and not params.opt = 'sgd' or tags.team = 'vision'" },
    { "a", "b", "c" })
end

function TestFilter:test_params_compare_as_numbers_with_numbers()
  -- As text '0.010' > '0.05'; as numbers it is smaller.
  lu.assertEquals(sorted_names { filter = "params.lr < 0.05" }, { "c" })
  lu.assertEquals(sorted_names { filter = "params.lr = 0.01" }, { "c" })
  lu.assertEquals(sorted_names { filter = "params.lr = '0.01'" }, {})
  lu.assertEquals(sorted_names { filter = "params.lr >= 0.01" }, { "a", "b", "c" }) -- "high" is not a number
  lu.assertEquals(sorted_names { filter = "params.lr in (0.1, 0.05)" }, { "a", "b" })
end

function TestFilter:test_dates_and_durations()
  lu.assertEquals(#names { filter = "start_time > '2000-01-01'" }, 4)
  lu.assertEquals(#names { filter = "start_time < '2000-01-01 12:00'" }, 0)
  lu.assertEquals(#names { filter = "duration >= 0 and duration < 3600" }, 4)
end

function TestFilter:test_sort_and_limit()
  lu.assertEquals(names { order = "-metrics.acc" }, { "a", "c", "b", "d" }) -- no acc: last
  lu.assertEquals(names { order = "metrics.acc asc" }, { "b", "c", "a", "d" })
  lu.assertEquals(names { order = "params.opt desc, metrics.acc" }, { "b", "c", "a", "d" })
  lu.assertEquals(names { order = "-metrics.acc", limit = 2 }, { "a", "c" })
  lu.assertEquals(names { filter = "metrics.acc > 0", order = "metrics.loss desc" }, { "b", "a", "c" })
end

function TestFilter:test_mlflow_attribute_names()
  lu.assertEquals(sorted_names { filter = "run_name = 'a.lua' or `Run Name` like 'b.%'" }, { "a", "b" })
  lu.assertEquals(#names { filter = "created > '2000-01-01' and run.start_time > 0" }, 4)
  lu.assertEquals(#names { filter = "run_id like '0%' or id not like '0%'" }, 4)
  -- mlx's own attributes take IS NULL: no run here is a step of another.
  lu.assertEquals(#names { filter = "parent IS NULL and exit_code IS NULL" }, 4)
end

function TestFilter:test_text_is_not_ordered()
  -- A tag compared with a number used to be compared as text, and 'abc'
  -- matched tags.team > 3; as in MLflow, text takes =, !=, LIKE, IN.
  local cases = {
    { "tags.team > 3", "column 11: '>' does not apply to tags.team, which is text" },
    { "tags.team = 3", "column 13: tags.team is text: compare it with a quoted string ('3'), not 3" },
    { "tags.team >= 'V'", "column 11: '>=' does not apply to tags.team" },
    { "params.opt < 'b'", "column 12: '<' compares params.opt only with a number, not with 'b'" },
    { "recipe < 'b'", "column 8: '<' does not apply to recipe, which is text" },
    { "dirty > false", "column 7: '>' does not apply to dirty, which is true or false: use = or !=" },
    { "metrics.acc IS NULL", "column 13: IS NULL does not apply to metrics.acc" },
    { "end_time IS NOT NULL", "column 10: IS NOT NULL does not apply to end_time" },
    { "start > 0", "column 1: unknown attribute 'start'" },
  }
  for _, case in ipairs(cases) do
    local sql, err = filter.compile(case[1])
    lu.assertNil(sql, case[1])
    lu.assertEquals(err:sub(1, #case[2]), case[2], case[1])
  end
  for _, text in ipairs({ "metrics.acc ", " metrics.acc", "-metrics.acc\t" }) do
    lu.assertNil((filter.order(text)), text)
  end
  lu.assertEquals(names { order = "metrics.acc asc , params.lr" }, { "b", "c", "a", "d" })
end

function TestFilter:test_values_are_bound_never_spliced()
  local sql, params = filter.compile("tags.team = 'x'' OR 1=1 --'")
  lu.assertNotStrContains(sql, "OR 1=1")
  lu.assertEquals(params, { "team", "x' OR 1=1 --" })
  lu.assertEquals(sorted_names { filter = "tags.team = 'x'' OR 1=1 --'" }, {})
end

function TestFilter:test_syntax_errors_point_at_the_column()
  local cases = {
    { "metrics.acc >", "column 14: expected a value after '>'" },
    { "metrics.acc > and", "column 15: expected a value after '>' but found 'and'" },
    { "metrics.acc > 'high'", "column 15: metrics.acc is a number: compare it with a number, not 'high'" },
    { "metrics.acc 0.9", "column 13: expected a comparison (=, !=, <, <=, >, >=, LIKE, IN, IS) after 'metrics.acc' but found '0.9'" },
    { "(metrics.acc > 1 or status = 'FAILED'", "column 38: expected ')' to close the '(' at column 1" },
    { "metrics.acc > 1)", "column 16: unexpected ')' (no '(' to close)" },
    { "metrics.acc > 1 params.lr = 2", "column 17: unexpected 'params.lr' after a complete condition (join conditions with AND or OR)" },
    { "metric.acc > 1 and metrix.acc > 1", "column 20: unknown prefix 'metrix' in 'metrix.acc' (metrics., params., tags. or attributes.)" },
    { "colour = 'red'", "column 1: unknown attribute 'colour'" },
    { "status = 'DONE'", "column 10: unknown status 'DONE' (RUNNING, FINISHED, FAILED, KILLED or CACHED)" },
    { "params.x = 'open", "column 12: unterminated string starting with '" },
    { "tags.x ! 'a'", "column 8: unexpected '!' (did you mean '!='?)" },
    { "metrics.acc > 1x", "column 15: invalid number '1x'" },
    { "metrics. > 1", "column 1: 'metrics.' needs a name after the dot" },
    { "metrics.acc like 'a%'", "column 13: metrics.acc is a number: LIKE compares text" },
    { "params.x in ('a', 1)", "column 19: mix of numbers and strings in IN (...) for params.x" },
    { "tags.x is 'a'", "column 11: expected NULL after IS but found 'a'" },
    { "dirty = 'yes'", "column 9: dirty is true or false, not 'yes'" },
    { "start_time > 'yesterday'", "column 14: start_time compares with milliseconds or a date" },
    { "a = 1 @", "column 7: unexpected character '@'" },
    -- Found by the filter fuzz target: quoted text kept its line breaks.
    { "start_time > '2024-05\r01'", "column 14: start_time compares with milliseconds or a date "
      .. "'YYYY-MM-DD[ HH:MM[:SS]]', not '2024-05\\r01'" },
    { "dirty = 'a\nb\1'", "column 9: dirty is true or false, not 'a\\nb\\1'" },
    { "tags.x ~\t", "column 8: unexpected character '~'" },
  }
  for _, case in ipairs(cases) do
    local sql, err, code = filter.compile(case[1])
    lu.assertNil(sql, case[1])
    lu.assertEquals(code, "invalid")
    lu.assertStrContains(err, case[2], false)
    lu.assertEquals(err:sub(1, #case[2]), case[2], case[1])
  end
  local sql, err = filter.order("metrics.acc desc desc")
  lu.assertNil(sql)
  lu.assertEquals(err, "column 18: unexpected 'desc' after a complete sort key (separate sort keys with ',')")
end

local code = lu.LuaUnit.run("-o", "tap")
if store then
  store:close()
  os.execute("rm -rf '" .. dir .. "'")
end
os.exit(code, true)
