-- mlx.fs through the real binding.
local lu = require "luaunit"
local fs = require "mlx.fs"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local support = require "support"
local tempdir = support.tempdir

TestFs = {}

function TestFs:test_write_is_atomic_and_list_sorted()
  local dir = tempdir()
  assert(fs.write(dir .. "/b.txt", "two"))
  assert(fs.write(dir .. "/a.txt", "one"))
  assert(fs.write(dir .. "/a.txt", "uno"))
  lu.assertEquals(fs.list(dir), { "a.txt", "b.txt" })
  local f = assert(io.open(dir .. "/a.txt"))
  lu.assertEquals(f:read("a"), "uno")
  f:close()
  os.execute("rm -rf '" .. dir .. "'")
end

function TestFs:test_stat_describes_types()
  local dir = tempdir()
  assert(fs.write(dir .. "/f", "12345", tonumber("600", 8)))
  local st = fs.stat(dir .. "/f")
  lu.assertEquals(st.type, "file")
  lu.assertEquals(st.size, 5)
  lu.assertEquals(st.mode, tonumber("600", 8))
  lu.assertTrue(st.mtime_ns > 0)
  lu.assertEquals(fs.stat(dir).type, "directory")
  local none, err, code = fs.stat(dir .. "/missing")
  lu.assertNil(none)
  lu.assertStrContains(err, "missing")
  lu.assertEquals(code, "notfound")
  os.execute("rm -rf '" .. dir .. "'")
end

function TestFs:test_failures_return_nil_message_code()
  local ok, err, code = fs.write("/nonexistent-dir/x", "data")
  lu.assertNil(ok)
  lu.assertStrContains(err, "/nonexistent-dir/x")
  lu.assertEquals(code, "notfound")
  local list, lerr = fs.list("/nonexistent-dir")
  lu.assertNil(list)
  lu.assertStrContains(lerr, "cannot list /nonexistent-dir")
end

function TestFs:test_remove_tree_is_rm_rf()
  local dir = tempdir()
  assert(fs.mkdirs(dir .. "/work/split/deep"))
  assert(fs.write(dir .. "/work/split/deep/x", "1"))
  lu.assertTrue(fs.remove_tree(dir .. "/work"))
  lu.assertNil(fs.stat(dir .. "/work"))
  lu.assertTrue(fs.remove_tree(dir .. "/work"))
  os.execute("rm -rf '" .. dir .. "'")
end

function TestFs:test_core_clock_is_monotonic_and_cpus_positive()
  local core = require "mlx.core"
  local a = core.clock()
  local b = core.clock()
  lu.assertTrue(b >= a)
  lu.assertTrue(core.cpus() >= 1)
  lu.assertEquals(type(core.isatty(1)), "boolean")
end

os.exit(lu.LuaUnit.run("-o", "tap"), true)
