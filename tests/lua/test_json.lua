-- mlx.json: exact round trips, canonical output, clear errors.
local lu = require "luaunit"
local json = require "mlx.json"
local fs = require "mlx.fs"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local support = require "support"

TestJson = {}

function TestJson:test_integers_stay_integers_and_floats_round_trip_exactly()
  local v = json.decode('{"epochs": 12, "big": 9007199254740993, "lr": 0.1, "third": 0.3333333333333333, "one": 1.0}')
  lu.assertEquals(math.type(v.epochs), "integer")
  lu.assertEquals(v.big, 9007199254740993)
  lu.assertEquals(math.type(v.one), "float")
  for _, x in ipairs({ 0.1, 1 / 3, 1e-300, 2 ^ 60 + 0.0, -0.0, 123456.789, 5e-324 }) do
    local back = json.decode(json.encode(x))
    lu.assertEquals(math.type(back), "float")
    lu.assertTrue(back == x, ("%.17g did not round-trip"):format(x))
  end
  lu.assertEquals(json.encode(0.1), "0.1") -- shortest form, not 0.10000000000000001
  lu.assertEquals(json.encode(3.0), "3.0")
end

function TestJson:test_null_empty_array_and_empty_object_are_distinct()
  local v = json.decode('{"a": [], "o": {}, "n": null}')
  lu.assertEquals(v.n, json.null)
  lu.assertEquals(json.encode(v), '{"a":[],"n":null,"o":{}}')
  lu.assertEquals(json.encode(json.array()), "[]")
  lu.assertEquals(json.encode({}), "{}")
  lu.assertEquals(json.encode(json.object({})), "{}")
end

function TestJson:test_keys_are_sorted_and_indentation_is_stable()
  local value = { zeta = 1, alpha = { 3, 2 }, mid = { b = true, a = false } }
  lu.assertEquals(json.encode(value), '{"alpha":[3,2],"mid":{"a":false,"b":true},"zeta":1}')
  lu.assertEquals(json.encode({ b = 1, a = json.array() }, { indent = 2 }), '{\n  "a": [],\n  "b": 1\n}')
end

function TestJson:test_strings_are_escaped_and_utf8_kept()
  local s = 'quote " backslash \\ newline \n tab \t bell \a é ✓'
  lu.assertEquals(json.decode(json.encode(s)), s)
  lu.assertEquals(json.encode("\1"), '"\\u0001"')
  lu.assertErrorMsgContains("not valid UTF-8", json.encode, "\255")
end

function TestJson:test_decode_errors_name_line_and_column()
  local v, err, code = json.decode('{\n  "a": 1,\n  "b": ]\n}')
  lu.assertNil(v)
  lu.assertStrContains(err, "line 3, column 8")
  lu.assertEquals(code, "invalid")
  lu.assertNil((json.decode("")))
end

-- Found by the lock fuzz target: jansson quotes the text near the error,
-- and a line break in it made mlx's one-line message two lines.
function TestJson:test_decode_errors_are_one_line()
  local v, err = json.decode('{"version": 1, "a\\\n": 2}')
  lu.assertNil(v)
  lu.assertNotStrContains(err, "\n")
  lu.assertStrContains(err, "invalid escape near '\"a\\\\n'")
  v, err = json.decode('["\1\r\127')
  lu.assertNil(v)
  lu.assertNotStrContains(err, "\r")
  lu.assertNotStrContains(err, "\1")
end

function TestJson:test_unencodable_values_raise()
  lu.assertErrorMsgContains("cannot encode a function", json.encode, { f = print })
  lu.assertErrorMsgContains("cannot be represented", json.encode, 0 / 0)
  lu.assertErrorMsgContains("keys must be strings", json.encode, { 1, 2, x = 3 })
  local cycle = {}
  cycle.self = cycle
  lu.assertErrorMsgContains("a cycle?", json.encode, cycle)
end

-- encode_fields writes what encode writes of the object {name → value}
-- over a list of names, as step keys need it without building that object.
function TestJson:test_encode_fields_equals_encode_of_the_object()
  local values = { b = "x\"y\n\u{e9}", a = 2 ^ 53, c = false, n = 3, t = { 1, { k = "v" } } }
  local names = { "t", "b", "missing", "a", "c", "b", "n" }
  local object = json.object({})
  for _, name in ipairs(names) do object[name] = values[name] or json.null end
  lu.assertEquals(json.encode_fields(names, values), json.encode(object))
  lu.assertEquals(json.encode_fields(names, values),
    '{"a":9007199254740992.0,"b":"x\\"y\\n\u{e9}","c":null,"missing":null,"n":3,"t":[1,{"k":"v"}]}')
  object = json.object({})
  for _, name in ipairs(names) do object[name] = values[name] end
  lu.assertEquals(json.encode_fields(names, values, true), json.encode(object), "skip_nil")
  lu.assertStrContains(json.encode_fields(names, values, true), '"c":false')
  lu.assertEquals(json.encode_fields({}, values), "{}")
  -- Without a table among the values (the common case, written another
  -- way), and with more names than a step usually has.
  values.t, values.f, values.z = nil, 0.5, json.null
  names = { "z", "b", "a", "c", "n", "f", "missing", "b" }
  for i = 1, 20 do
    names[#names + 1] = "k" .. i
    values["k" .. i] = i % 2 == 0 and i or ("v\t" .. i)
  end
  for _, skip in ipairs({ false, true }) do
    object = json.object({})
    for _, name in ipairs(names) do
      if skip then object[name] = values[name] else object[name] = values[name] or json.null end
    end
    lu.assertEquals(json.encode_fields(names, values, skip), json.encode(object))
  end
  lu.assertEquals(json.encode_fields({ "b", "a" }, { a = true, b = "\1" }), '{"a":true,"b":"\\u0001"}')
  lu.assertErrorMsgContains("name 2 is a number", json.encode_fields, { "a", 1 }, values)
  lu.assertErrorMsgContains("not valid UTF-8", json.encode_fields, { "a" }, { a = "\255" })
  lu.assertErrorMsgContains("cannot encode a function", json.encode_fields, { "a" }, { a = print })
  lu.assertErrorMsgContains("not valid UTF-8", json.encode_fields, { "\255" }, {})
  lu.assertErrorMsgContains("cannot be represented", json.encode_fields, { "a" }, { a = 0 / 0 })
end

function TestJson:test_save_is_atomic_and_load_reports_the_file()
  local dir = support.tempdir()
  local path = dir .. "/metrics.json"
  assert(json.save(path, { acc = 0.97, n = 150 }))
  local f = assert(io.open(path))
  lu.assertEquals(f:read("a"), '{\n  "acc": 0.97,\n  "n": 150\n}\n')
  f:close()
  lu.assertEquals(json.load(path), { acc = 0.97, n = 150 })
  lu.assertEquals(fs.list(dir), { "metrics.json" })
  assert(fs.write(path, '{"acc": }'))
  local v, err = json.load(path)
  lu.assertNil(v)
  lu.assertStrContains(err, path .. ":1:9: invalid JSON")
  local missing, merr, mcode = json.load(dir .. "/none.json")
  lu.assertNil(missing)
  lu.assertStrContains(merr, "none.json")
  lu.assertEquals(mcode, "notfound")
  local ok, serr = json.save("/nonexistent-dir/x.json", {})
  lu.assertNil(ok)
  lu.assertStrContains(serr, "/nonexistent-dir/x.json")
  os.execute("rm -rf '" .. dir .. "'")
end

os.exit(lu.LuaUnit.run("-o", "tap"), true)
