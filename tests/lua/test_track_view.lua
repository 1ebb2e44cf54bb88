-- mlx.track.view: numbers, times, durations, tables and CSV as people and
-- spreadsheets read them.
local lu = require "luaunit"
local view = require "mlx.track.view"

TestView = {}

function TestView:test_numbers_and_durations()
  lu.assertEquals(view.number(0.973333333), "0.973333")
  lu.assertEquals(view.number(3), "3")
  lu.assertEquals(view.number(3.0), "3")
  lu.assertEquals(view.number(0 / 0), "nan")
  lu.assertEquals(view.number(-math.huge), "-inf")
  lu.assertEquals(view.exact(0.1), "0.1")
  lu.assertEquals(view.exact(1 / 3), "0.3333333333333333")
  lu.assertEquals(view.duration(0.4213), "0.42s")
  lu.assertEquals(view.duration(12.34), "12.3s")
  lu.assertEquals(view.duration(245), "4m05s")
  lu.assertEquals(view.duration(7620), "2h07m")
  lu.assertEquals(view.duration(3 * 86400 + 4 * 3600), "3d04h")
  lu.assertEquals(view.bytes(812), "812 B")
  lu.assertEquals(view.bytes(129394278), "123.4 MiB")
  lu.assertEquals(view.iso_time(1700000000123), "2023-11-14T22:13:20.123Z")
end

function TestView:test_tables_align_without_trailing_blanks()
  local lines = view.table({ "KEY", "VALUE", "NOTE" }, { { "a", "1", "" }, { "long", "100", "x" } }, { [2] = true })
  lu.assertEquals(lines, { "KEY   VALUE  NOTE", "a         1", "long    100  x" })
end

local function run(fields)
  local r = { id = "06h1c5455wwr6k7p", status = "FINISHED", start_time = 1700000000000, duration = 1.5,
    git = {}, params = {}, metrics = {}, tags = {} }
  for k, v in pairs(fields) do r[k] = v end
  return r
end

function TestView:test_main_metrics_prefer_the_wanted_then_the_common()
  local runs = { run { metrics = { a = 1, b = 2, z = 3 } }, run { metrics = { b = 1, z = 2 } }, run { metrics = { y = 1 } } }
  lu.assertEquals(view.main_metrics(runs, {}, 2), { "b", "z" })
  lu.assertEquals(view.main_metrics(runs, { "y" }, 3), { "y", "b", "z" })
end

function TestView:test_csv_quotes_and_has_a_column_per_key()
  local csv = view.runs_csv({
    run { recipe = "a,b.lua", message = 'said "no"\nthen left', metrics = { acc = 0.1 }, params = { lr = "0.1" } },
    run { step = "train", tags = { t = "x" } },
  })
  local lines = {}
  for line in csv:gmatch("(.-)\r\n") do lines[#lines + 1] = line end
  lu.assertStrContains(lines[1], ",message,metrics.acc,params.lr,tags.t")
  lu.assertStrContains(csv, '"a,b.lua"')
  lu.assertStrContains(csv, '"said ""no""\nthen left",0.1,0.1,\r\n')
  lu.assertStrContains(csv, ",train,FINISHED,2023-11-14T22:13:20.000Z,")
end

function TestView:test_diff_shows_deltas_and_marks_changes()
  local a = run { id = "aaaa", params = { lr = "0.1", opt = "adam" }, metrics = { acc = 0.8, loss = 0.5 } }
  local b = run { id = "bbbb", params = { lr = "0.05", opt = "adam" }, metrics = { acc = 0.9, loss = 0.5 } }
  local text = table.concat(view.diff(a, b), "\n")
  lu.assertStrMatches(text, ".*\n  lr +0%.1 +0%.05 +%*\n.*")
  lu.assertStrMatches(text, ".*\n  acc +0%.8 +0%.9 +%+0%.1 +%+12%.5%%\n.*")
  local changed = table.concat(view.diff(a, b, true), "\n")
  lu.assertNotStrContains(changed, "opt")
  lu.assertNotStrContains(changed, "loss")
end

os.exit(lu.LuaUnit.run("-o", "tap"), true)
