--- mlx.project: where the project is and what it puts on package.path.
local fs = require "mlx.fs"

local M = {}

local function parent(dir)
  if dir == "/" then return nil end
  local p = dir:match("^(.*)/[^/]*$")
  if p == "" then return "/" end
  return p
end

--- Returns the absolute path of the project root: the nearest directory,
--- from start (default: the working directory) upwards, that holds .mlx/.
--- Returns nil if there is none.
function M.find_root(start)
  local dir = start or assert(fs.cwd())
  while dir do
    local st = fs.stat(dir .. "/.mlx")
    if st and st.type == "directory" then return dir end
    dir = parent(dir)
  end
  return nil
end

--- Returns the project root for a command that needs one; outside a
--- project raises a usage failure (exit 2) saying how to make one.
function M.require_root()
  local root = M.find_root()
  if not root then
    require("mlx.ui").usage_error("not in an mlx project (run 'mlx init')")
  end
  return root
end

--- Returns the project root, or the working directory outside a project.
function M.root()
  return M.find_root() or assert(fs.cwd())
end

--- Returns path made absolute (against the working directory) with ".",
--- ".." and repeated "/" resolved lexically: "/a/./b//c/../d" is "/a/b/d".
--- Symlinks are not followed.
function M.absolute(path)
  if path:sub(1, 1) ~= "/" then path = assert(fs.cwd()) .. "/" .. path end
  local parts = {}
  for part in path:gmatch("[^/]+") do
    if part == ".." then
      parts[#parts] = nil
    elseif part ~= "." then
      parts[#parts + 1] = part
    end
  end
  return "/" .. table.concat(parts, "/")
end

--- Returns path relative to the directory root when it lies inside it, else
--- its absolute form (see M.absolute).
function M.relative(path, root)
  local abs = M.absolute(path)
  if abs:sub(1, #root + 1) == root .. "/" then return abs:sub(#root + 2) end
  return abs
end

-- The top of the git work tree holding dir (the nearest directory, dir
-- included, with a .git entry), or nil.
local function work_tree(dir)
  while dir do
    if fs.stat(dir .. "/.git") then return dir end
    dir = parent(dir)
  end
  return nil
end

--- Returns the recipe at path as runs record it, which must not depend on
--- where the project is: relative to root when it lies inside it
--- ("pipeline.lua"); relative to root with ".." when it lies outside it in
--- the git work tree that holds root (a repository's shared recipes,
--- "../deploy.lua"), so that every clone records the same; else its
--- absolute path (a file of this machine, not of the project, which the
--- recipe's hash identifies). Symlinked directories are resolved first.
function M.recorded_recipe(path, root)
  local abs = M.absolute(path)
  local dir, name = abs:match("^(.*)/([^/]+)$")
  local real_dir = fs.realpath(dir == "" and "/" or dir)
  if real_dir then abs = (real_dir == "/" and "" or real_dir) .. "/" .. name end
  if abs:sub(1, #root + 1) == root .. "/" then return abs:sub(#root + 2) end
  local top = work_tree(root)
  if not top or abs:sub(1, #top + 1) ~= top .. "/" then return abs end
  -- Up from root to the deepest directory it shares with the recipe.
  local from, to = {}, {}
  for part in root:sub(#top + 2):gmatch("[^/]+") do from[#from + 1] = part end
  for part in abs:sub(#top + 2):gmatch("[^/]+") do to[#to + 1] = part end
  local common = 0
  while common < #from and common < #to - 1 and from[common + 1] == to[common + 1] do common = common + 1 end
  return ("../"):rep(#from - common) .. table.concat(to, "/", common + 1)
end

--- Returns the directories whose Lua modules a user adds to mlx, in search
--- order: the project's lib/, then each directory of MLX_PATH (colon-separated).
function M.module_dirs(root)
  local dirs = { (root or M.root()) .. "/lib" }
  for dir in (os.getenv("MLX_PATH") or ""):gmatch("[^:]+") do
    dirs[#dirs + 1] = dir
  end
  return dirs
end

--- Puts the user's module directories in front of package.path, so that
--- `require "mine"` finds lib/mine.lua and `mlx foo` finds lib/mlx/cli/foo.lua.
function M.setup_package_path(root)
  local entries = {}
  for _, dir in ipairs(M.module_dirs(root)) do
    entries[#entries + 1] = dir .. "/?.lua;" .. dir .. "/?/init.lua"
  end
  if #entries > 0 then
    package.path = table.concat(entries, ";") .. ";" .. package.path
  end
end

return M
