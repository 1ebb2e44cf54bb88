-- mlx.check: every rule on real CSV and JSON Lines files, the C pass's
-- number parsing against Lua's, and the drift statistics against
-- independent computations (exact KS in Python, closed forms).
local lu = require "luaunit"
local check = require "mlx.check"
local drift = require "mlx.check.drift"
local fs = require "mlx.fs"
local proc = require "mlx.proc"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local support = require "support"

local dir = support.tempdir()
local function file(name, text)
  local path = dir .. "/" .. name
  assert(fs.write(path, text))
  return path
end

local function failures(report)
  local list = {}
  for _, f in ipairs(report.failures) do
    list[#list + 1] = (f.column or "-") .. " " .. f.rule .. " " .. f.count
  end
  return list
end

TestCheckRules = {}

function TestCheckRules:test_malformed_rules_raise_naming_the_field()
  local cases = {
    { { columns = { { "a", typ = "int" } } }, "unknown field 'typ' in column a" },
    { { columns = { { "a", type = "integer" } } }, "column a: type must be any, string, int, number or bool, not integer" },
    { { columns = { { "a", type = "string", min = 1 } } }, "column a: min and max need type int or number" },
    { { columns = { { "a", type = "int", min = 5, max = 1 } } }, "column a: min 5 is above max 1" },
    { { columns = { { "a" }, { "a" } } }, "column a is declared twice" },
    { { columns = { { "a", nulls = 2 } } }, "column a: nulls must be true, false or a fraction from 0 to 1" },
    { { colums = {} }, "unknown field 'colums' in the rules" },
    { { columns = { { "a" } }, drift = { reference = "r.csv", columns = { b = { psi = 0.2 } } } },
      "drift column b is not among the declared columns" },
    { { columns = { { "a", type = "int" } }, drift = { reference = "r.csv", columns = { a = { chi2_p = 0.2 } } } },
      "drift column a: chi2_p is for categorical columns; use ks or ks_p" },
    { { columns = { { "a" } }, predicates = { { "p" } } }, "predicates[1] must be { NAME, function(row) … end }" },
    { { columns = { { "a", type = "int", max = "9" } } }, "column a: max must be a number, not 9" },
    { { columns = { { "a" } }, rows = { min = "5" } }, "rows.min must be a number, not 5" },
    { { columns = { { "a" } }, delimiter = ";;" }, "delimiter must be one character" },
    { { columns = { { "a", type = "int" } }, drift = { reference = "r.csv", columns = { a = { ks = "x" } } } },
      "drift column a: ks must be a number >= 0" },
  }
  for _, case in ipairs(cases) do
    local ok, err = pcall(check.rules, case[1])
    lu.assertFalse(ok)
    lu.assertStrContains(err, "mlx.check.rules: " .. case[2])
  end
end

TestCheckCsv = {}

function TestCheckCsv:test_every_column_rule_counts_with_example_rows()
  local path = file("people.csv", table.concat({
    "id,age,species,score,flag",
    "1,30,setosa,0.5,true",
    "2,,virginica,1.5e3,false",
    '2,200,"set,osa",x,maybe',
    "3,-1,setosa,NA,1",
    "4,40,versicolor,2,0",
  }, "\n") .. "\n")
  local report = assert(check.file(path, {
    columns = {
      { "id", type = "int", unique = true, nulls = false },
      { "age", type = "int", min = 0, max = 120, nulls = false },
      { "species", allowed = { "setosa", "versicolor", "virginica" } },
      { "score", type = "number" },
      { "flag", type = "bool" },
    },
  }))
  lu.assertFalse(report.ok)
  lu.assertEquals(report.rows, 5)
  lu.assertEquals(failures(report), {
    "id unique 1", "age nulls 1", "age min 1", "age max 1", "species allowed 1", "score type 1", "flag type 1",
  })
  local by = {}
  for _, f in ipairs(report.failures) do by[f.column .. " " .. f.rule] = f end
  lu.assertEquals(by["id unique"].examples, { { row = 3, value = "2" } })
  lu.assertEquals(by["age nulls"].examples, { { row = 2, value = "" } })
  lu.assertEquals(by["species allowed"].examples, { { row = 3, value = "set,osa" } })
  lu.assertEquals(report.columns.score.nulls, 1, "NA is null by default")
  lu.assertEquals(report.columns.score.max, 1500)
  lu.assertStrContains(check.summary(report), "column 'age': nulls: 1 value null where nulls are not allowed (row 2)")
end

function TestCheckCsv:test_null_fraction_rows_header_and_ragged_rows()
  local path = file("f.csv", "a,b,extra\n1,\n2,,x\n,3,y\n4,5,z\n")
  local report = assert(check.file(path, {
    columns = { { "a", type = "int", nulls = 0.2 }, { "b", type = "int", nulls = 0.5 }, { "c" } },
    strict = true, rows = { min = 5 },
  }))
  lu.assertEquals(failures(report), { "c columns 1", "extra columns 1", "- fields 1", "- rows 4", "a nulls 1" })
  lu.assertEquals(report.columns.b.nulls, 2, "the field a short row lacks is a null")
end

function TestCheckCsv:test_quoted_fields_delimiters_and_custom_nulls()
  local path = file("q.tsv", 'name\tnote\n"a\tb"\t"line one\nline two"\n-\tplain\n')
  local report = assert(check.file(path, { columns = { { "name", nulls = false }, { "note", allowed = { "plain", "line one\nline two" } } },
    na = { "-" } }))
  lu.assertEquals(report.rows, 2)
  lu.assertEquals(failures(report), { "name nulls 1" })
end

function TestCheckCsv:test_predicates_see_typed_values()
  local path = file("p.csv", "lo,hi,name\n1,2,a\n5,3,b\n2,10,c\n9,1,\n")
  local report = assert(check.file(path, {
    columns = { { "lo", type = "number" }, { "hi", type = "number" }, { "name" } },
    predicates = { { "lo below hi", function(r) return r.lo < r.hi end } },
  }))
  lu.assertEquals(failures(report), { "- predicate lo below hi 2" })
  lu.assertEquals(report.failures[1].examples, { { row = 2, value = "lo=5 hi=3 name=b" }, { row = 4, value = "lo=9 hi=1 name=null" } })
  local r, err, code = check.file(path, { columns = { { "lo" } }, predicates = { { "boom", function() error("no") end } } })
  lu.assertNil(r)
  lu.assertStrContains(err, "predicate 'boom' raised at row 1")
  lu.assertEquals(code, "invalid")
end

function TestCheckCsv:test_numbers_parse_as_lua_reads_them()
  -- The C fast path and its strtod fallback agree with tonumber on the
  -- min and max of each batch, to the last bit.
  math.randomseed(7)
  for _ = 1, 20 do
    local lines, values = { "x" }, {}
    for i = 1, 200 do
      local v = (math.random() - 0.5) * 10 ^ math.random(-30, 30)
      local forms = { "%.17g", "%.3f", "%.1e", "%.20f", "%g", "%.0f" }
      local text = forms[math.random(#forms)]:format(v)
      if math.random(6) == 1 then text = tostring(math.random(-10 ^ 12, 10 ^ 12)) end
      lines[#lines + 1], values[i] = text, tonumber(text)
    end
    local report = assert(check.file(file("n.csv", table.concat(lines, "\n") .. "\n"), { columns = { { "x", type = "number" } } }))
    local lo, hi = math.huge, -math.huge
    for _, v in ipairs(values) do lo, hi = math.min(lo, v), math.max(hi, v) end
    lu.assertEquals(report.columns.x.min, lo)
    lu.assertEquals(report.columns.x.max, hi)
    lu.assertEquals(failures(report), {})
  end
  local report = assert(check.file(file("m.csv", "x\n0.1\n0.30000000000000004\n1e400\n0x10\n 1\n1e\n.5\n-.5e1\n"),
    { columns = { { "x", type = "number", max = 0.3 } } }))
  -- 0x10 and 1e are not numbers; 0.30000000000000004, 1e400 (inf), 1
  -- (libcsv trims the spaces around a field) and .5 are above 0.3.
  lu.assertEquals(failures(report), { "x type 2", "x max 4" })
  lu.assertEquals(report.columns.x.min, -5)
end

function TestCheckCsv:test_plain_lines_split_as_libcsv_splits_them()
  -- check.c splits lines without quotes itself and gives the rest to
  -- libcsv; on random files both ways count the same.
  local datacheck = require "mlx.datacheck"
  local alphabet = { "a", "b", "1", " ", "\t", ",", ",", ",", '"', "\r", "\n", "\n", "NA", "x y" }
  math.randomseed(11)
  for round = 1, 60 do
    local parts = { "c1,c2, c3 ,c4\n" }
    for _ = 1, math.random(0, 400) do parts[#parts + 1] = alphabet[math.random(#alphabet)] end
    if round % 3 == 0 then parts[#parts + 1] = "\n" end
    local path = file("r.csv", table.concat(parts))
    local specs = {}
    for i, name in ipairs({ "c1", "c2", "c3", "c4" }) do specs[i] = { name = name, categories = 1000, nulls = false } end
    local fast, ferr = datacheck.run(path, "csv", specs, { na = { "NA" } })
    local slow, serr = datacheck.run(path, "csv", specs, { na = { "NA" }, libcsv_only = true })
    lu.assertEquals(ferr, serr)
    lu.assertEquals(fast, slow, "round " .. round .. ": " .. table.concat(parts):gsub("\n", "\\n"))
  end
end

function TestCheckCsv:test_unreadable_files_fail_with_a_code()
  local r, err, code = check.file(dir .. "/none.csv", { columns = { { "a" } } })
  lu.assertNil(r)
  lu.assertStrContains(err, "none.csv")
  lu.assertEquals(code, "notfound")
  r, err, code = check.file(file("empty.csv", ""), { columns = { { "a" } } })
  lu.assertNil(r)
  lu.assertStrContains(err, "empty file, no header row")
  lu.assertEquals(code, "invalid")
end

TestCheckJsonl = {}

function TestCheckJsonl:test_rules_apply_to_keys()
  local path = file("d.jsonl", table.concat({
    '{"id": 1, "age": 30, "species": "setosa", "ok": true}',
    '{"id": 2, "species": "virginica", "ok": false}',
    "",
    '{"id": 2, "age": 130.5, "species": "x", "ok": null}',
    'not json',
    '{"id": "3", "age": 0.1, "species": ["setosa"], "ok": 1}',
  }, "\n") .. "\n")
  local report = assert(check.file(path, {
    columns = { { "id", type = "int", unique = true }, { "age", type = "number", max = 120, nulls = false },
      { "species", allowed = { "setosa", "virginica" } }, { "ok", type = "bool" } },
  }))
  lu.assertEquals(report.rows, 5, "blank lines are not rows")
  lu.assertEquals(failures(report), { "- json 1", "id unique 1", "age nulls 2", "age max 1", "species allowed 2" })
  lu.assertEquals(report.failures[1].examples, { { row = 4, value = "not json" } })
  lu.assertEquals(report.columns.age.min, 0.1)
end

TestCheckDrift = {}

local function normal_csv(name, n, mean, seed, cats)
  math.randomseed(seed)
  local lines = { "x,c" }
  for _ = 1, n do
    local u1, u2 = math.random(), math.random()
    local z = math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)
    local k = math.random(#cats)
    lines[#lines + 1] = ("%.6f,%s"):format(mean + z, cats:sub(k, k))
  end
  return file(name, table.concat(lines, "\n") .. "\n")
end

function TestCheckDrift:test_ks_matches_an_exact_computation()
  local ref = normal_csv("ref.csv", 3000, 0, 1, "abc")
  local cur = normal_csv("cur.csv", 2000, 0.3, 2, "abcc")
  local rules = { columns = { { "x", type = "number" }, { "c" } },
    drift = { reference = ref, columns = { x = { ks = 0.5 }, c = { psi = 10 } } } }
  local report = assert(check.file(cur, rules))
  local d = report.statistics.x
  local py = [[
import sys
def col(p):
    return sorted(float(l.split(",")[0]) for l in open(p).read().split("\n")[1:] if l)
a, b = col(sys.argv[1]), col(sys.argv[2])
i = j = 0; d = 0.0
while i < len(a) and j < len(b):
    x = min(a[i], b[j])
    while i < len(a) and a[i] == x: i += 1
    while j < len(b) and b[j] == x: j += 1
    d = max(d, abs(i / len(a) - j / len(b)))
print(repr(d))
]]
  local r = assert(proc.run { "python3", "-c", py, ref, cur, stdout = "capture" })
  local exact = tonumber(r.stdout)
  lu.assertTrue(exact > 0.05, "the samples differ")
  lu.assertTrue(math.abs(d.ks - exact) <= 1 / drift.GRID, ("ks %g, exact %g"):format(d.ks, exact))
  lu.assertTrue(d.ks_p < 1e-6)
  lu.assertTrue(d.psi > 0.05)
  lu.assertTrue(report.ok)
  -- The same data against itself: no drift at all.
  local same = assert(check.file(ref, rules))
  lu.assertEquals(same.statistics.x.ks, 0)
  lu.assertAlmostEquals(same.statistics.x.psi, 0, 1e-12)
  lu.assertAlmostEquals(same.statistics.c.chi2, 0, 1e-12)
end

function TestCheckDrift:test_categorical_psi_and_chi_square_closed_forms()
  local ref = file("cr.csv", "c\n" .. ("a\n"):rep(50) .. ("b\n"):rep(30) .. ("c\n"):rep(20))
  local cur = file("cc.csv", "c\n" .. ("a\n"):rep(20) .. ("b\n"):rep(30) .. ("c\n"):rep(50))
  local report = assert(check.file(cur, { columns = { { "c" } },
    drift = { reference = ref, columns = { c = { psi = 0.2, chi2_p = 0.01 } } } }))
  local d = report.statistics.c
  local psi = (0.2 - 0.5) * math.log(0.2 / 0.5) + 0 + (0.5 - 0.2) * math.log(0.5 / 0.2)
  lu.assertAlmostEquals(d.psi, psi, 1e-12)
  local chi2 = (20 - 50) ^ 2 / 50 + 0 + (50 - 20) ^ 2 / 20
  lu.assertAlmostEquals(d.chi2, chi2, 1e-9)
  lu.assertEquals(d.df, 2)
  lu.assertAlmostEquals(d.chi2_p, math.exp(-chi2 / 2), 1e-15) -- Q(1, x/2) = e^(-x/2)
  lu.assertEquals(failures(report), { "c drift psi 1", "c drift chi2_p 1" })
  lu.assertStrContains(check.summary(report), "column 'c': drift psi: psi 0.5498 > 0.2 against")
end

function TestCheckDrift:test_regularized_gamma_against_known_values()
  -- chi-square survival function values (df, x, p) from tables.
  for _, case in ipairs({ { 1, 3.841458820694124, 0.05 }, { 4, 9.487729036781154, 0.05 },
    { 10, 23.20925117668, 0.01 }, { 30, 40.25602374856, 0.1 } }) do
    lu.assertAlmostEquals(drift.gamma_q(case[1] / 2, case[2] / 2), case[3], 1e-9)
  end
end

function TestCheckDrift:test_a_large_reference_is_sampled_in_bounded_memory()
  local lines = { "x" }
  for i = 1, 150000 do lines[#lines + 1] = tostring(i % 1000) end
  local ref = file("big.csv", table.concat(lines, "\n") .. "\n")
  local r = assert(require("mlx.datacheck").run(ref, "csv", { { name = "x", type = "int", sample = drift.SAMPLE } }, {}))
  lu.assertEquals(#r.columns[1].sample, drift.SAMPLE)
  lu.assertEquals(r.columns[1].numbers, 150000)
  local report = assert(check.file(ref, { columns = { { "x", type = "int" } },
    drift = { reference = ref, columns = { x = { ks = 0.02, psi = 0.01 } } } }))
  lu.assertTrue(report.ok, check.summary(report))
end

function TestCheckDrift:test_step_fails_naming_column_rule_and_rows()
  local ref = file("sr.csv", "x\n1\n2\n3\n")
  -- The summary goes to stdout, which is this test's TAP stream.
  local stdout = io.stdout
  io.stdout = assert(io.tmpfile())
  local ok, err = pcall(check.step, file("s.csv", "x\n1\nNA\n"), { columns = { { "x", type = "int", nulls = false } } })
  io.stdout:seek("set")
  local printed = io.stdout:read("a")
  io.stdout = stdout
  lu.assertStrContains(printed, "s.csv: 2 rows: FAILED (1 rule)\n  column 'x': nulls:")
  lu.assertFalse(ok)
  lu.assertStrContains(err, "check of " .. dir .. "/s.csv failed: column 'x': nulls: 1 value null where nulls are not allowed (row 2)")
  lu.assertNotNil(ref)
end

local status = lu.LuaUnit.run("-o", "tap")
fs.remove_tree(dir)
os.exit(status, true)
