-- mlx.hash through the real binding in mlx_data.so.
local lu = require "luaunit"
local mlx = require "mlx"

TestHash = {}

function TestHash:test_bytes_matches_known_digest()
  lu.assertEquals(mlx.hash.bytes("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
  lu.assertEquals(mlx.hash.bytes(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
end

function TestHash:test_file_returns_digest_and_size()
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(("x"):rep(3000000))
  f:close()
  local hex, size = mlx.hash.file(path)
  os.remove(path)
  lu.assertEquals(hex, mlx.hash.bytes(("x"):rep(3000000)))
  lu.assertEquals(size, 3000000)
end

function TestHash:test_missing_file_fails_with_message_and_code()
  local hex, err, code = mlx.hash.file("/nonexistent/model.bin")
  lu.assertNil(hex)
  lu.assertStrContains(err, "/nonexistent/model.bin")
  lu.assertEquals(code, "notfound")
end

function TestHash:test_misuse_raises()
  lu.assertErrorMsgContains("bad argument #1", mlx.hash.file, {})
end

function TestHash:test_dir_manifest_lists_files_sorted_with_sizes_and_modes()
  local dir = os.tmpname()
  os.remove(dir)
  local fs = require "mlx.fs"
  assert(fs.mkdirs(dir .. "/b"))
  assert(fs.write(dir .. "/b/x", "xx"))
  assert(fs.write(dir .. "/a.txt", "a", tonumber("755", 8)))
  local id, size, files, manifest = mlx.hash.dir(dir, { jobs = 2 })
  lu.assertEquals(size, 3)
  lu.assertEquals(files, 2)
  lu.assertEquals(manifest, mlx.hash.bytes("a") .. " 1 755 a.txt\n" .. mlx.hash.bytes("xx") .. " 2 644 b/x\n")
  lu.assertEquals(id, mlx.hash.bytes(manifest))
  os.execute("ln -s a.txt '" .. dir .. "/link'")
  local none, err, code = mlx.hash.dir(dir)
  lu.assertNil(none)
  lu.assertStrContains(err, "link: is a symbolic link")
  lu.assertEquals(code, "invalid")
  os.execute("rm -rf '" .. dir .. "'")
end

os.exit(lu.LuaUnit.run("-o", "tap"), true)
