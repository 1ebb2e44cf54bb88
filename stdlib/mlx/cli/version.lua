-- mlx version: the version of mlx and, with -v, of the libraries it uses.
local core = require "mlx.core"

return {
  summary = "print the version of mlx (with -v: of Lua, SQLite, curl, libgit2, OpenSSL)",
  usage = "mlx version [-v]   (also: mlx --version [-v])",
  options = {
    { "verbose", short = "v", help = "also print the versions of the libraries" },
  },
  args = { max = 0 },
  main = function(opts)
    local versions = core.versions()
    print("mlx " .. versions.mlx)
    if opts.verbose or require("mlx.cli").globals.verbose then
      print("Lua " .. versions.lua:gsub("^Lua ", ""))
      local data = require("mlx.data").versions()
      print("SQLite " .. data.sqlite)
      print("libcurl " .. require("mlx.http").version())
      print("libgit2 " .. require("mlx.git").version())
      print("jansson " .. data.jansson)
      print(data.openssl)
    end
    return 0
  end,
}
