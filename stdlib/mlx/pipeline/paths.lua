--- mlx.pipeline.paths: the paths a step declares, in one normal form:
--- relative to the project root, no "." or empty components, "/" as the
--- separator, and a trailing "/" for a directory.
local M = {}

--- Returns the normal form of a declared path, or nil and why it is refused:
--- absolute, escaping the project with "..", or empty.
function M.normalize(path)
  if type(path) ~= "string" or path == "" then return nil, "empty path" end
  if path:sub(1, 1) == "/" then
    return nil, "is absolute; declare paths relative to the project root"
  end
  -- Most paths are already normal: no "//", no "." or ".." component.
  if not path:find("//", 1, true) and not ("/" .. path):find("/%.%.?/") and not path:find("/%.%.?$")
    and path ~= "." and path ~= ".." then
    return path
  end
  local is_dir = path:sub(-1) == "/"
  local parts = {}
  for part in path:gmatch("[^/]+") do
    if part == ".." then
      if #parts == 0 then return nil, "is outside the project" end
      parts[#parts] = nil
    elseif part ~= "." then
      parts[#parts + 1] = part
    end
  end
  if #parts == 0 then return nil, "names the project root itself" end
  return table.concat(parts, "/") .. (is_dir and "/" or "")
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
