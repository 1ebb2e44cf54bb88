--- mlx.suggest: "did you mean …?" for names a user mistyped (commands,
--- step fields).
local M = {}

--- Returns the edit distance (insertions, deletions, substitutions) between
--- strings a and b.
function M.distance(a, b)
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      local cost = a:sub(i, i) == b:sub(j, j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

--- Returns the candidate closest to name within an edit distance of 2 (the
--- first in byte order among equals), or nil. candidates is a list of
--- strings, or a table whose keys are the candidates.
function M.closest(name, candidates)
  local list = {}
  if #candidates > 0 then
    for _, c in ipairs(candidates) do list[#list + 1] = c end
  else
    for c in pairs(candidates) do list[#list + 1] = c end
  end
  table.sort(list)
  local best, best_distance = nil, 3
  for _, candidate in ipairs(list) do
    local d = M.distance(name, candidate)
    if d < best_distance then best, best_distance = candidate, d end
  end
  return best
end

return M
