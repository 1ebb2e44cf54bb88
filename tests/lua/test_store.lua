-- mlx.store through the real binding: hashing through the stat cache, one
-- path or many, and put/commit/checkout round trips.
local lu = require "luaunit"
local fs = require "mlx.fs"
local hash = require "mlx.hash"
local store = require "mlx.store"

local function project()
  local dir = os.tmpname()
  os.remove(dir)
  assert(fs.mkdirs(dir .. "/.mlx"))
  assert(fs.mkdirs(dir .. "/data/sub"))
  assert(fs.write(dir .. "/data/a.csv", "a,b\n1,2\n"))
  assert(fs.write(dir .. "/data/sub/b.bin", ("x"):rep(100000)))
  return dir
end

TestStore = {}

function TestStore:setUp() self.root = project() end
function TestStore:tearDown() os.execute("rm -rf '" .. self.root .. "'") end

function TestStore:test_hash_files_agrees_with_hash_and_skips_missing_and_dirs()
  local st <close> = assert(store.open(self.root))
  local many = assert(st:hash_files { "data/a.csv", "data/sub/b.bin", "data/missing", "data/sub" })
  lu.assertEquals(many["data/a.csv"], assert(st:hash("data/a.csv")))
  lu.assertEquals(many["data/a.csv"].hash, hash.bytes("a,b\n1,2\n"))
  lu.assertEquals(many["data/sub/b.bin"].size, 100000)
  lu.assertFalse(many["data/missing"])
  lu.assertFalse(many["data/sub"])
  -- Unchanged files come from the stat cache the second time, same answer.
  lu.assertEquals(assert(st:hash_files { "data/a.csv" })["data/a.csv"].hash, many["data/a.csv"].hash)
end

function TestStore:test_hash_files_refuses_a_symlink_naming_it()
  os.execute(("ln -s a.csv '%s/data/link.csv'"):format(self.root))
  local st <close> = assert(store.open(self.root))
  local none, err = st:hash_files { "data/a.csv", "data/link.csv" }
  lu.assertNil(none)
  lu.assertStrContains(err, "data/link.csv")
  lu.assertStrContains(err, "symbolic link")
  lu.assertErrorMsgContains("relative to the project root", st.hash_files, st, { "/etc/passwd" })
end

function TestStore:test_put_commit_checkout_round_trip()
  local st <close> = assert(store.open(self.root))
  local info = assert(st:put("data"))
  lu.assertEquals(info.type, "dir")
  lu.assertEquals(info.files, 2)
  assert(st:commit())
  lu.assertTrue(st:has(info.hash))
  local files = assert(st:manifest(info.hash))
  local entries = {}
  for i, f in ipairs(files) do entries[i] = { path = "copy/" .. f.path, hash = f.hash, mode = f.mode } end
  assert(st:checkout("", entries))
  local f = assert(io.open(self.root .. "/copy/sub/b.bin", "rb"))
  lu.assertEquals(#f:read("a"), 100000)
  f:close()
end

function TestStore:test_missing_lists_only_what_the_store_lacks()
  assert(fs.write(self.root .. "/data/sub/c.csv", "a,b\n1,2\n")) -- the same bytes as a.csv
  local st <close> = assert(store.open(self.root))
  local info = assert(st:put("data"))
  assert(st:commit())
  local seen = {}
  local files, n = assert(st:missing(info.hash, seen))
  lu.assertEquals(files, {})
  lu.assertEquals(n, 2) -- two distinct objects, three files
  lu.assertTrue(seen[hash.bytes("a,b\n1,2\n")])
  -- An object gone from the store: its files are listed; a known id is
  -- not counted again.
  local big = hash.bytes(("x"):rep(100000))
  assert(st:remove(big))
  files, n = assert(st:missing(info.hash, seen))
  lu.assertEquals(n, 0)
  lu.assertEquals(#files, 1)
  lu.assertEquals(files[1].path, "sub/b.bin")
  lu.assertEquals(files[1].hash, big)
  lu.assertEquals(files[1].size, 100000)
end

os.exit(lu.LuaUnit.run("-o", "tap"), true)
