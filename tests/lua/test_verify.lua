-- mlx.verify: the comparison of outs (JSON metrics field by field,
-- directories file by file).
local lu = require "luaunit"
local diff = require "mlx.verify.diff"

TestVerifyDiff = {}

function TestVerifyDiff:test_json_fields_name_each_differing_field()
  local fields, within = diff.json_fields(
    '{"accuracy": 0.9, "loss": 0.25, "per_class": {"a": 1, "b": 2}, "matrix": [[1, 2], [3, 4]], "name": "x"}',
    '{"accuracy": 0.9, "loss": 0.26, "per_class": {"a": 1, "b": 3}, "matrix": [[1, 2], [3, 5]], "extra": true}')
  local texts = {}
  for i, f in ipairs(fields) do texts[i] = f.text end
  lu.assertEquals(texts, {
    "extra: (absent) -> true",
    "loss: 0.25 -> 0.26 (+0.01)",
    "matrix.2.2: 4 -> 5 (+1)",
    'name: "x" -> (absent)',
    "per_class.b: 2 -> 3 (+1)",
  })
  lu.assertEquals(within, 0)
end

function TestVerifyDiff:test_tolerance_is_an_absolute_difference_of_numbers()
  local fields, within = diff.json_fields('{"loss": 0.25, "acc": 0.9, "n": 3}', '{"loss": 0.2504, "acc": 0.8, "n": 3}', 0.001)
  lu.assertEquals(#fields, 1)
  lu.assertEquals(fields[1].field, "acc")
  lu.assertEquals(within, 1)
  fields = diff.json_fields('{"tag": "a"}', '{"tag": "b"}', 1)
  lu.assertEquals(#fields, 1, "strings never agree by tolerance")
end

function TestVerifyDiff:test_not_json_says_which_side()
  local fields, err = diff.json_fields("{", "{}")
  lu.assertNil(fields)
  lu.assertStrContains(err, "the locked version is not JSON")
  fields, err = diff.json_fields("{}", "nope")
  lu.assertNil(fields)
  lu.assertStrContains(err, "the new version is not JSON")
end

function TestVerifyDiff:test_manifests_list_changed_added_removed()
  local d = diff.manifests(
    { { path = "a", hash = "1", mode = "644" }, { path = "b", hash = "2", mode = "644" }, { path = "c", hash = "3", mode = "644" } },
    { { path = "a", hash = "1", mode = "755" }, { path = "c", hash = "3", mode = "644" }, { path = "d", hash = "4", mode = "644" } })
  lu.assertEquals(d, { changed = { "a" }, added = { "d" }, removed = { "b" } })
end

os.exit(lu.LuaUnit.run("-o", "tap"), true)
