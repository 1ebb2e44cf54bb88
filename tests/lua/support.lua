-- support: what the LuaUnit files share. A test file loads it with
--   package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
--   local support = require "support"
local fs = require "mlx.fs"

local M = {}

--- Returns the path of a new empty directory under TMPDIR (or /tmp).
function M.tempdir()
  local path = os.tmpname()
  os.remove(path)
  assert(fs.mkdirs(path))
  return path
end

--- Returns the bytes of the file at path; raises if it cannot be read.
function M.read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

return M
