-- The quickstart recipe: fingerprint the example data set and summarise it.
-- Run it from the repository root:  build/mlx recipe recipes/quickstart/recipe.lua
local mlx = require "mlx"

local here = arg[0]:match("^(.*)/[^/]*$") or "."
local data = here .. "/data/iris.csv"

local digest, size_or_err = mlx.hash.file(data)
if not digest then error("cannot read the example data: " .. size_or_err) end

local counts, rows = {}, 0
for line in io.lines(data) do
  local species = line:match(",([%a]+)$")
  if species and species ~= "species" then
    counts[species] = (counts[species] or 0) + 1
    rows = rows + 1
  end
end

local names = {}
for name in pairs(counts) do names[#names + 1] = name end
table.sort(names)

print(("data     %s (%d bytes)"):format(data, size_or_err))
print(("sha256   %s"):format(digest))
print(("rows     %d"):format(rows))
for _, name in ipairs(names) do
  print(("  %-11s %d"):format(name, counts[name]))
end
