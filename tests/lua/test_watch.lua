-- mlx.watch through the real binding and a real watcher daemon.
local lu = require "luaunit"
local fs = require "mlx.fs"
local watch = require "mlx.watch"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local support = require "support"

TestWatch = {}

function TestWatch:setUp()
  self.root = support.tempdir()
  assert(fs.mkdirs(self.root .. "/.mlx"))
  assert(fs.mkdirs(self.root .. "/data"))
end

function TestWatch:tearDown()
  watch.stop(self.root)
  os.execute("rm -rf '" .. self.root .. "'")
end

function TestWatch:test_start_changed_status_stop()
  local root = self.root
  local none, err, code = watch.status(root)
  lu.assertNil(none)
  lu.assertEquals(code, "notfound")
  lu.assertStrContains(err, "watch.sock")
  local w = assert(watch.start(root))
  lu.assertTrue(w.pid > 0)
  local again
  again, err, code = watch.start(root)
  lu.assertNil(again)
  lu.assertEquals(code, "busy")
  lu.assertEquals(err, ("a watcher already runs for %s (pid %d)"):format(root, w.pid))

  local first = assert(watch.changed(root))
  lu.assertTrue(first.everything)
  local f = assert(io.open(root .. "/data/x", "w")) -- in place: one path
  f:write("x")
  f:close()
  local next = assert(watch.changed(root, first.token))
  lu.assertNil(next.everything)
  lu.assertEquals(next.paths, { "data/x" })
  lu.assertNotEquals(next.token, first.token)
  local quiet = assert(watch.changed(root, next.token))
  lu.assertEquals(quiet.paths, {})

  local st = assert(watch.status(root))
  lu.assertEquals(st.pid, w.pid)
  lu.assertEquals(st.root, root)
  lu.assertEquals(st.watches, 2)
  lu.assertEquals(st.queries, 3)
  lu.assertEquals(st.everything, 1)
  lu.assertFalse(st.degraded)
  lu.assertNil(fs.stat(root .. "/.mlx/.gitignore")) -- only an existing one learns the line

  assert(watch.stop(root))
  none, err, code = watch.stop(root)
  lu.assertNil(none)
  lu.assertEquals(code, "notfound")
end

function TestWatch:test_misuse_raises()
  lu.assertErrorMsgContains("root must be an absolute path", watch.status, "relative")
  lu.assertErrorMsgContains("token must be a string", watch.changed, self.root, 42)
end

os.exit(lu.LuaUnit.run("-o", "tap"), true)
