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

--- The tracking backend under test: "postgresql" when MLX_TEST_BACKEND
--- says so (tests/helper/with_pg.sh sets it, with MLX_TRACKING_URI), else
--- "sqlite".
M.backend = os.getenv("MLX_TEST_BACKEND") == "postgresql" and "postgresql" or "sqlite"

local projects = 0

--- Makes root an mlx project of its own: .mlx/config.lua with a project id
--- no other test shares, so that on a shared PostgreSQL database each test
--- starts empty. Returns the id.
function M.new_project(root)
  projects = projects + 1
  local id = ("t%d_%d_%d"):format(require("mlx.core").now_ms(), projects, math.random(1, 1e9))
  assert(fs.mkdirs(root .. "/.mlx"))
  assert(fs.write(root .. "/.mlx/config.lua", ('return { project = "%s" }\n'):format(id)))
  return id
end

--- Returns where a fresh tracking database of the backend under test is,
--- and the options that open it with mlx.track.open: a file in dir, or on
--- PostgreSQL MLX_TRACKING_URI with a project (schema) of its own.
function M.store_args(dir)
  if M.backend == "postgresql" then
    projects = projects + 1
    local id = ("t%d_%d_%d"):format(require("mlx.core").now_ms(), projects, math.random(1, 1e9))
    return os.getenv("MLX_TRACKING_URI"), { project = id }
  end
  return dir .. "/runs.db", {}
end

--- Returns the bytes of the file at path; raises if it cannot be read.
function M.read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

return M
