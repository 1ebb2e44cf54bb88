--- mlx.script: loading and running a user's Lua file (a recipe or a script)
--- the way the CLI reports it: a file that does not compile is bad input
--- (exit 2, "file:line: message"); an error while running propagates to the
--- CLI, which reports it as "file:line: message" with exit 1.
local core = require "mlx.core"
local fs = require "mlx.fs"
local ui = require "mlx.ui"

local M = {}

-- A recipe in a project is compiled once per version of its text: its
-- chunk is kept as bytecode in .mlx/cache/recipes/, one file per chunk
-- name (the path as given), named by its SHA-256. Compiling a recipe of
-- 1,000 steps written out one by one (116 KB) takes 1.6 ms here, loading
-- its bytecode 0.1 ms. The file holds this header, the SHA-256 of the
-- source and of the bytecode, then the bytecode; anything else (another
-- source, a cut or damaged file, another mlx or Lua) is compiled again:
-- Lua's loader does not check the bytecode it is given.
local CHUNK_HEADER = ("mlx recipe chunk 1 %s %s\n"):format(core.version, core.versions().lua)

-- The text of each recipe load_kept loaded, by chunk name ("@" and the
-- path as given): a Lua step's key reads its function's lines from it,
-- after mlx has moved to the project root, where a path given relative to
-- the directory mlx started in names another file or none.
local loaded_sources = {}

-- The text as loadfile reads it: without a UTF-8 byte order mark, and a
-- first line starting with '#' (a shebang) emptied, keeping its line
-- break so that line numbers stay.
local function source_text(src)
  if src:sub(1, 3) == "\239\187\191" then src = src:sub(4) end
  if src:sub(1, 1) == "#" then src = src:gsub("^[^\n]*", "", 1) end
  return src
end

-- The compiled chunk of the recipe at path in the project at root, from
-- the cache or compiled and kept there, and the SHA-256 of the file; nil
-- when the file cannot be read here or is bytecode itself (loadfile then
-- says what it is). Raises a usage failure when it does not compile.
local function load_kept(path, root)
  local f = io.open(path, "rb")
  local src = f and f:read("a")
  if f then f:close() end
  if not src then return nil end
  local hash = require "mlx.hash"
  local name = "@" .. path
  local digest = hash.bytes(src)
  local text = source_text(src)
  if text:byte(1) == 27 then return nil end
  loaded_sources[name] = src
  local dir = root .. "/.mlx/cache/recipes"
  local file = dir .. "/" .. hash.bytes(name)
  local header = CHUNK_HEADER .. digest .. "\n"
  local kept = io.open(file, "rb")
  local data = kept and kept:read("a")
  if kept then kept:close() end
  if data and data:sub(1, #header) == header then
    local code = data:sub(#header + 66)
    if data:sub(#header + 65, #header + 65) == "\n" and hash.bytes(code) == data:sub(#header + 1, #header + 64) then
      local chunk = load(code, name, "b")
      if chunk then return chunk, digest end
    end
  end
  local chunk, err = load(text, name, "t")
  if not chunk then ui.usage_error("%s", err) end
  -- Only an accelerator: a cache that cannot be written is left as it is.
  local code = string.dump(chunk)
  if fs.mkdirs(dir) then fs.write(file, header .. hash.bytes(code) .. "\n" .. code) end
  return chunk, digest
end

--- Returns the compiled chunk of the Lua file at path ("-" reads stdin)
--- and, when it read the file itself, the SHA-256 of its bytes. A recipe
--- (what = "recipe") in a project is compiled once per version of its
--- text, kept as bytecode under .mlx/cache/recipes/. Raises a usage
--- failure (exit 2) if it is missing, unreadable or does not compile; the
--- message then names the file and line.
---@param path string
---@param what string|nil what the file is, for messages ("recipe")
function M.load(path, what)
  what = what or "script"
  if path ~= "-" then
    local st = fs.stat(path)
    if not st then ui.usage_error("%s not found: %s", what, path) end
    if st.type == "directory" then ui.usage_error("%s %s is a directory, not a Lua file", what, path) end
    local root = what == "recipe" and require("mlx.project").find_root()
    if root then
      local chunk, digest = load_kept(path, root)
      if chunk then return chunk, digest end
    end
  end
  local chunk, err = loadfile(path ~= "-" and path or nil)
  if not chunk then ui.usage_error("%s", err) end
  return chunk
end

--- Returns the bytes of the recipe file that M.load loaded under chunk
--- name (debug.getinfo's source: "@" and the path as given), or nil for a
--- chunk it did not load from a file in a project.
function M.source(name)
  return loaded_sources[name]
end

--- Sets the global `arg` as Lua's interpreter does (arg[0] = path, arg[1..] =
--- args) and calls chunk with args. Returns what the chunk returns; errors
--- propagate.
function M.run(chunk, path, args)
  local script_arg = { [0] = path }
  for i, a in ipairs(args) do script_arg[i] = a end
  _G.arg = script_arg
  return chunk(table.unpack(args))
end

return M
