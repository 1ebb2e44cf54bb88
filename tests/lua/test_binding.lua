-- The helper layer of the bindings (lua/binding.c), through the bindings that
-- use it: one wording for a bad table field, whichever module reads it, and
-- one number format for the text mlx writes.
local lu = require "luaunit"
local fs = require "mlx.fs"
local json = require "mlx.json"
local rundb = require "mlx.rundb"
local modeldb = require "mlx.modeldb"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local support = require "support"

-- The message of the error f(...) raises, without the position of the Lua
-- caller that a call from a Lua function adds.
local function raised(f, ...)
  local ok, err = pcall(f, ...)
  lu.assertFalse(ok, "expected an error")
  return (err:gsub("^[^:]+:%d+: ", ""))
end

TestFields = {}

function TestFields:setUp()
  self.dir = support.tempdir()
  self.db = assert(rundb.open(self.dir .. "/runs.db"))
end

function TestFields:tearDown()
  self.db:close()
  os.execute("rm -rf '" .. self.dir .. "'")
end

function TestFields:test_one_wording_in_every_binding()
  local cases = {
    { "fs.lock", fs.lock, { self.dir .. "/l", { wait = "no" } },
      "bad argument #2 to 'mlx.fs.lock' (field 'wait' must be true or false, not 'no')" },
    { "rundb.open", rundb.open, { self.dir .. "/r.db", { busy_timeout_ms = "1s" } },
      "bad argument #2 to 'mlx.rundb.open' (field 'busy_timeout_ms' must be an integer, not '1s')" },
    { "rundb.open", rundb.open, { self.dir .. "/r.db", { batch_rows = 1.5 } },
      "bad argument #2 to 'mlx.rundb.open' (field 'batch_rows' must be an integer, not 1.5)" },
    { "start_run", function(t) return self.db:start_run(t) end, { { recipe = {} } },
      "bad argument #1 to 'start_run' (field 'recipe' must be a string, not a table)" },
    { "start_run", function(t) return self.db:start_run(t) end, { { git_dirty = "no" } },
      "bad argument #1 to 'start_run' (field 'git_dirty' must be true or false, not 'no')" },
    { "modeldb.register", modeldb.register, { self.db, { name = "m", size = "big" } },
      "bad argument #2 to 'mlx.modeldb.register' (field 'size' must be an integer, not 'big')" },
    { "modeldb.register", modeldb.register, { self.db, { name = "m", tags = { team = 1 } } },
      "bad argument #2 to 'mlx.modeldb.register' (field 'tags.team' must be a string, not 1)" },
    { "json.encode", json.encode, { {}, { indent = 40 } },
      "bad argument #2 to 'mlx.json.encode' (field 'indent' must be true, false or an integer from 0 to 16, not 40)" },
    { "json.encode", json.encode, { {}, { sort_keys = 0 } },
      "bad argument #2 to 'mlx.json.encode' (field 'sort_keys' must be true or false, not 0)" },
  }
  for _, c in ipairs(cases) do
    lu.assertEquals(raised(c[2], table.unpack(c[3])), c[4], c[1])
  end
end

function TestFields:test_a_long_string_is_cut_in_the_message()
  local err = raised(rundb.open, self.dir .. "/r.db", { busy_timeout_ms = ("x"):rep(100) })
  lu.assertStrContains(err, "not '" .. ("x"):rep(40) .. "...')")
end

function TestFields:test_absent_fields_and_options_take_their_defaults()
  local db = assert(rundb.open(self.dir .. "/other.db", nil))
  db:close()
  local lock = assert(fs.lock(self.dir .. "/l", {}))
  lock:close()
  lu.assertEquals(json.encode({ b = 1, a = 2 }, {}), '{"a":2,"b":1}')
  lu.assertStrContains(raised(fs.lock, self.dir .. "/l", "shared"), "table expected, got string")
end

function TestFields:test_run_records_take_the_same_readers()
  local run = assert(self.db:start_run { recipe = "r.lua" })
  lu.assertEquals(raised(function() return run:finish("FAILED", { exit_code = "1" }) end),
    "bad argument #2 to 'finish' (field 'exit_code' must be an integer, not '1')")
  lu.assertEquals(raised(function() return run:record_artifact { role = "out", path = "x", size = 0 / 0 } end),
    "bad argument #1 to 'record_artifact' (field 'size' must be an integer, not " .. tostring(0 / 0) .. ")")
  assert(run:finish("FINISHED", { message = "done" }))
end

TestNumbers = {}

-- Params are stored as text and JSON floats are written out: both in the
-- shortest form that reads back as the same double.
function TestNumbers:test_shortest_round_trip_text()
  local dir = support.tempdir()
  local db = assert(rundb.open(dir .. "/runs.db"))
  local run = assert(db:start_run { recipe = "r.lua" })
  local values = { 0.1, 1 / 3, 1e-300, 5e-324, 2 ^ 60 + 0.0, -0.0, 123456.789, 1e21, 7, 1e100 }
  local texts = { "0.1", "0.3333333333333333", "1e-300", "5e-324", "1.152921504606847e+18", "-0", "123456.789",
    "1e+21", "7", "1e+100" }
  for i, x in ipairs(values) do assert(run:log_param("p" .. i, x)) end
  assert(run:finish())
  db:flush()
  local rows = assert(db:query("SELECT key, value FROM params ORDER BY key"))
  local got = {}
  for _, row in ipairs(rows) do got[row.key] = row.value end
  for i, x in ipairs(values) do
    lu.assertEquals(got["p" .. i], texts[i], "param p" .. i)
    if math.type(x) == "float" then
      lu.assertEquals(tonumber(texts[i]), x)
      local encoded = json.encode(x)
      lu.assertEquals(json.decode(encoded), x)
      lu.assertEquals(encoded:gsub("%.0$", ""), texts[i])
    end
  end
  db:close()
  os.execute("rm -rf '" .. dir .. "'")
end

os.exit(lu.LuaUnit.run("-o", "tap"), true)
