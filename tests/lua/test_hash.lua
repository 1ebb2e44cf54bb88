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

os.exit(lu.LuaUnit.run("-o", "tap"), true)
