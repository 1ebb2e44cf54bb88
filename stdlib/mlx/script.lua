--- mlx.script: loading and running a user's Lua file (a recipe or a script)
--- the way the CLI reports it: a file that does not compile is bad input
--- (exit 2, "file:line: message"); an error while running propagates to the
--- CLI, which reports it as "file:line: message" with exit 1.
local fs = require "mlx.fs"
local ui = require "mlx.ui"

local M = {}

--- Returns the compiled chunk of the Lua file at path ("-" reads stdin).
--- Raises a usage failure (exit 2) if it is missing, unreadable or does not
--- compile; the message then names the file and line.
---@param path string
---@param what string|nil what the file is, for messages ("recipe")
function M.load(path, what)
  what = what or "script"
  if path ~= "-" then
    local st = fs.stat(path)
    if not st then ui.usage_error("%s not found: %s", what, path) end
    if st.type == "directory" then ui.usage_error("%s %s is a directory, not a Lua file", what, path) end
  end
  local chunk, err = loadfile(path ~= "-" and path or nil)
  if not chunk then ui.usage_error("%s", err) end
  return chunk
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
