--- mlx.pipeline.ready: the scheduler's queue of steps that can be decided,
--- a binary min-heap of their positions in the run order. The engine takes
--- the earliest step first, as a scan of the whole order would, but each
--- completion costs O(log n) instead of a rescan of every step.
local M = {}

local Queue = {}
Queue.__index = Queue

--- Returns an empty queue.
function M.new()
  return setmetatable({ n = 0 }, Queue)
end

--- Adds position i (an integer).
function Queue:push(i)
  local n = self.n + 1
  self.n = n
  while n > 1 do
    local parent = n // 2
    local up = self[parent]
    if up <= i then break end
    self[n] = up
    n = parent
  end
  self[n] = i
end

--- Returns the smallest position without removing it, or nil when empty.
function Queue:peek()
  return self[1]
end

--- Removes and returns the smallest position, or nil when empty.
function Queue:pop()
  local n = self.n
  if n == 0 then return nil end
  local top, last = self[1], self[n]
  self[n] = nil
  n = n - 1
  self.n = n
  if n > 0 then
    local i = 1
    while true do
      local child = 2 * i
      if child > n then break end
      if child < n and self[child + 1] < self[child] then child = child + 1 end
      if self[child] >= last then break end
      self[i] = self[child]
      i = child
    end
    self[i] = last
  end
  return top
end

return M
