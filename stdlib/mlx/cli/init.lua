-- mlx init: make the working directory an mlx project.
local fs = require "mlx.fs"
local ui = require "mlx.ui"

local CONFIG = [[
-- mlx project configuration. Commit this file; put credentials and
-- machine-specific settings in .mlx/config.local.lua, which git ignores.
return {
  -- This project's id: its runs and models in a shared tracking database
  -- (tracking = "postgresql://..."). Every clone shares it; keep it.
  project = "%s",
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
/watch*
]]

-- A new project id: 16 characters of lowercase base32 from 80 random bits.
local function new_project_id()
  local f = assert(io.open("/dev/urandom", "rb"))
  local bytes = f:read(10)
  f:close()
  local alphabet, bits, nbits, out = "0123456789abcdefghjkmnpqrstvwxyz", 0, 0, {}
  for i = 1, #bytes do
    bits, nbits = (bits << 8) | bytes:byte(i), nbits + 8
    while nbits >= 5 do
      nbits = nbits - 5
      local d = ((bits >> nbits) & 31) + 1
      out[#out + 1] = alphabet:sub(d, d)
    end
  end
  return table.concat(out)
end

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
Creates .mlx/config.lua (committed: the project id, link strategy,
defaults) and .mlx/.gitignore (keeps the cache, databases, logs and
config.local.lua out of git). The project id scopes the project's runs and
models in a shared tracking database. Running it again changes nothing that
exists. A file named .mlx in the way is an error (exit 2).]],
  args = { max = 0 },
  main = function()
    local root = assert(fs.cwd())
    local st = fs.stat(".mlx")
    if st and st.type ~= "directory" then
      ui.usage_error("%s/.mlx exists and is not a directory; move it away and retry", root)
    end
    local ok, err = fs.mkdirs(".mlx")
    if not ok then ui.fail(ui.EXIT.FAILED, "%s", err) end
    local created = write_if_missing(".mlx/config.lua", CONFIG:format(new_project_id()))
    created = write_if_missing(".mlx/.gitignore", GITIGNORE) or created
    if created then
      ui.out("Initialized mlx project in " .. root .. "/.mlx")
    else
      ui.out("mlx project already initialized in " .. root .. "/.mlx")
    end
    return 0
  end,
}
