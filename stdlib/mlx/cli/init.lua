-- mlx init: make the working directory an mlx project.
local fs = require "mlx.fs"
local ui = require "mlx.ui"

local CONFIG = [[
-- mlx project configuration. Commit this file; put credentials and
-- machine-specific settings in .mlx/config.local.lua, which git ignores.
return {
  cache = {
    -- How tracked files appear in the workspace: "copy" (reflink where the
    -- file system can, else a copy), "hardlink" or "symlink" (read-only).
    link = "copy",
  },
  -- Remotes for push and pull are kept in .mlx/remotes.json, which
  -- 'mlx remote add NAME URL' writes; their credentials go in
  -- .mlx/config.local.lua as remotes = { NAME = { password = "..." } }.
}
]]

-- Everything mlx keeps in .mlx/ but config.lua is local state, not for git.
local GITIGNORE = [[
/cache/
/tmp/
/logs/
/state.db*
/runs.db*
/config.local.lua
]]

local function write_if_missing(path, content)
  if fs.stat(path) then return false end
  local ok, err = fs.write(path, content)
  if not ok then ui.fail(ui.EXIT.FAILED, "%s", err) end
  return true
end

return {
  summary = "create .mlx/ here (config.lua and a .gitignore for local state)",
  usage = "mlx init",
  description = [[
Creates .mlx/config.lua (committed: link strategy, defaults) and
.mlx/.gitignore (keeps the cache, databases, logs and config.local.lua out
of git). Running it again changes nothing that exists. A file named .mlx in
the way is an error (exit 2).]],
  args = { max = 0 },
  main = function()
    local root = assert(fs.cwd())
    local st = fs.stat(".mlx")
    if st and st.type ~= "directory" then
      ui.usage_error("%s/.mlx exists and is not a directory; move it away and retry", root)
    end
    local ok, err = fs.mkdirs(".mlx")
    if not ok then ui.fail(ui.EXIT.FAILED, "%s", err) end
    local created = write_if_missing(".mlx/config.lua", CONFIG)
    created = write_if_missing(".mlx/.gitignore", GITIGNORE) or created
    if created then
      ui.out("Initialized mlx project in " .. root .. "/.mlx")
    else
      ui.out("mlx project already initialized in " .. root .. "/.mlx")
    end
    return 0
  end,
}
