--- mlx.native: the C modules kept out of the mlx binary and loaded on first
--- use, so that a command pays only for the libraries it uses (DESIGN §2):
---   mlx_data.so  SQLite, jansson, libcsv: mlx.data, mlx.hash, … (OpenSSL is
---                loaded by core/hash.c only where SHA-NI is missing)
---   mlx_http.so  libcurl: mlx.curl (under mlx.http, stdlib/mlx/http.lua)
---   mlx_git.so   libgit2: mlx.git
---   mlx_remote.so  mlx.transfer (under mlx.remote): the transfer engine and
---                the directory backend, no library beyond libc
---   mlx_remote_http.so  libcurl, libxml2, OpenSSL: mlx.transfer_http, the
---                WebDAV and S3 backends, loaded by mlx.transfer for their
---                URLs only
---   mlx_pg.so    libpq: mlx.pg (the PostgreSQL tracking backend, mlx.track.pg)
---   mlx_web.so   libmicrohttpd: mlx.httpd (under mlx.web, for mlx ui)
local core = require "mlx.core"

local M = {}

--- The module name → the shared object that holds its luaopen function.
M.modules = {
  ["mlx.data"] = "mlx_data",
  ["mlx.hash"] = "mlx_data",
  ["mlx.json"] = "mlx_data",
  ["mlx.lockindex"] = "mlx_data",
  ["mlx.rundb"] = "mlx_data",
  ["mlx.curl"] = "mlx_http",
  ["mlx.store"] = "mlx_data",
  ["mlx.git"] = "mlx_git",
  ["mlx.modeldb"] = "mlx_data",
  ["mlx.transfer"] = "mlx_remote",
  ["mlx.transfer_http"] = "mlx_remote_http",
  ["mlx.datacheck"] = "mlx_data",
  ["mlx.pg"] = "mlx_pg",
  ["mlx.httpd"] = "mlx_web",
}

local function find_library(library)
  local tried = {}
  for _, dir in ipairs({ core.exe_dir, core.module_dir }) do
    local path = dir .. "/" .. library .. ".so"
    local f = io.open(path, "rb")
    if f then
      f:close()
      return path
    end
    tried[#tried + 1] = path
  end
  error(("cannot find %s.so (looked for %s); reinstall mlx"):format(library,
    table.concat(tried, ", ")), 3)
end

--- Returns the C module modname (e.g. "mlx.hash") from its shared object,
--- found beside the mlx binary (the build tree) or in the install directory.
--- Raises if the object is missing or does not load: mlx is then broken.
function M.open(modname)
  local library = assert(M.modules[modname], "not a native module: " .. tostring(modname))
  local path = find_library(library)
  local open, err = package.loadlib(path, "luaopen_" .. modname:gsub("%.", "_"))
  if not open then error("cannot load " .. path .. ": " .. tostring(err), 2) end
  return open(modname)
end

--- Registers every native module in package.preload; called by the host.
function M.install()
  for modname in pairs(M.modules) do
    package.preload[modname] = function() return M.open(modname) end
  end
end

return M
