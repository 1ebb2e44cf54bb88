--- mlx.pipeline.paths: the paths a step declares, in one normal form:
--- relative to the project root, no "." or empty components, "/" as the
--- separator, and a trailing "/" for a directory.
local stepgraph = require "mlx.stepgraph"

local M = {}

--- Returns the normal form of a declared path, or nil and why it is refused:
--- absolute, escaping the project with "..", empty, or naming the project
--- root. The rule is in C (mlx.stepgraph), where the DSL applies it to whole
--- lists of paths at once.
function M.normalize(path)
  if type(path) ~= "string" then return nil, "empty path" end
  return stepgraph.normalize(path)
end

--- Returns true if path a is b or lies inside directory b (b ends with "/").
function M.within(a, b)
  if a == b then return true end
  return b:sub(-1) == "/" and a:sub(1, #b) == b
end

--- Returns true if a and b name the same file or one contains the other.
function M.overlap(a, b)
  local ad = a:sub(-1) == "/" and a or a .. "/"
  local bd = b:sub(-1) == "/" and b or b .. "/"
  return ad:sub(1, #bd) == bd or bd:sub(1, #ad) == ad
end

return M
