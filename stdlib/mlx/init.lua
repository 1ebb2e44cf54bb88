--- mlx: the entry point of recipes and user modules.
---
---     local mlx = require "mlx"
---     print(mlx.hash.file("data/iris.csv"))
---
--- Each field is a module loaded on first use: mlx.hash is require "mlx.hash".
local core = require "mlx.core"

local M = { version = core.version }

local function module_exists(name)
  if package.preload[name] or package.loaded[name] then return true end
  return package.searchpath(name, package.path) ~= nil
end

return setmetatable(M, {
  __index = function(t, key)
    if type(key) ~= "string" then return nil end
    local name = "mlx." .. key
    if not module_exists(name) then return nil end
    local module = require(name)
    rawset(t, key, module)
    return module
  end,
})
