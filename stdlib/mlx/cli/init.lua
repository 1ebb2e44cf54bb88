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

-- The lines of .gitattributes that make git merge mlx.lock with mlx's
-- driver, and .gitignore files (where mlx keeps a block of lines, which two
-- branches that pinned different paths both extend) by keeping the lines of
-- both sides (git's built-in union driver) instead of leaving a conflict.
local ATTRIBUTES = { { pattern = "mlx.lock", line = "mlx.lock merge=mlx-lock" },
  { pattern = ".gitignore", line = ".gitignore merge=union" } }

-- Makes git merge mlx.lock with 'mlx lock merge' in the repository whose
-- work tree holds root: the attribute in root's .gitattributes (committed,
-- so every clone has it) and the driver in the repository's config (which
-- a clone does not copy: 'mlx init' in each clone). Returns true, or nil
-- and why not; not in a git repository: false.
local function install_merge_driver(root)
  local proc = require "mlx.proc"
  local inside = proc.run({ "git", "rev-parse", "--is-inside-work-tree", cwd = root,
    stdout = "capture", stderr = "null" })
  if not inside or inside.stdout ~= "true\n" then return false end
  local path = root .. "/.gitattributes"
  local st = fs.stat(path) -- a symbolic link is "link": never written through
  if st and st.type ~= "file" then
    return nil, ("%s is not a regular file; add the lines '%s' and '%s' yourself")
      :format(path, ATTRIBUTES[1].line, ATTRIBUTES[2].line)
  end
  local text = ""
  if st then
    local f, err = io.open(path, "rb")
    if not f then return nil, err end
    text = f:read("a")
    f:close()
  end
  local added = {}
  for _, a in ipairs(ATTRIBUTES) do
    -- A line the user wrote for the same pattern is theirs to keep.
    local escaped = a.pattern:gsub("%p", "%%%0")
    if not ("\n" .. text):find("\n" .. escaped .. "[ \t]") then added[#added + 1] = a.line end
  end
  if #added > 0 then
    if text ~= "" and text:sub(-1) ~= "\n" then text = text .. "\n" end
    local ok, err = fs.write(path, text .. table.concat(added, "\n") .. "\n")
    if not ok then return nil, err end
  end
  -- If this mlx cannot be run when git merges (moved, rebuilt elsewhere),
  -- git's own text merge runs instead: conflict markers, which every mlx
  -- command names, rather than our side taken silently.
  local mlx = proc.quote(require("mlx.core").exe_dir .. "/mlx")
  local driver = mlx .. " lock merge %O %A %B || { rc=$?; [ $rc -lt 126 ] && exit $rc; git merge-file %A %O %B; }"
  for _, kv in ipairs({ { "merge.mlx-lock.name", "mlx.lock, entry by entry (mlx lock merge)" },
    { "merge.mlx-lock.driver", driver } }) do
    local ok, err = proc.run({ "git", "config", kv[1], kv[2], cwd = root, stdout = "null", stderr = "capture" })
    if not ok then return nil, err end
  end
  return true
end

return {
  summary = "create .mlx/ here (config.lua and a .gitignore for local state)",
  usage = "mlx init",
  description = [[
Creates .mlx/config.lua (committed: the project id, link strategy,
defaults) and .mlx/.gitignore (keeps the cache, databases, logs and
config.local.lua out of git). The project id scopes the project's runs and
models in a shared tracking database. In a git repository it also makes git
merge mlx.lock entry by entry with mlx lock merge, and .gitignore files by
keeping the lines of both sides: the lines 'mlx.lock merge=mlx-lock' and
'.gitignore merge=union' in .gitattributes (commit it) and the driver in
the repository's config, which a clone does not copy, so run mlx init once
in each clone too. Running it again changes nothing that exists. A file
named .mlx in the way is an error (exit 2).]],
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
    local installed, why = install_merge_driver(root)
    if installed then
      ui.out("git merges mlx.lock with 'mlx lock merge' (.gitattributes: commit it)")
    elseif installed == nil then
      ui.warn("git will merge mlx.lock as text: " .. why)
    end
    return 0
  end,
}
