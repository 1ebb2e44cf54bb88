--- mlx.pipeline.pinned: a step must not run on tracked data that is not
--- what mlx.lock pins when the store has never had the pinned version. That
--- is a lock that came from elsewhere - a git pull, checkout or merge - while
--- the workspace still holds this clone's older data: running on it would
--- pin results of the old data beside the new data's hash in one lock, and
--- a commit would publish that mix. A local edit of tracked data is not
--- this: the version mlx.lock pins was stored by this clone's `mlx add`.
local lock = require "mlx.lock"

local M = {}

-- The tracked artifact (path, record) that dep is or lies in, or nil.
local function artifact_of(artifacts, dep)
  local p = dep:gsub("/$", "")
  while p do
    if artifacts[p] then return p, artifacts[p] end
    p = p:match("^(.*)/[^/]*$")
  end
end

--- Checks the deps of steps (the steps about to be decided) against the
--- artifacts section of the lock of the project at root, with st the open
--- store. Returns nil when every dep is fine, else one line naming the
--- first tracked path whose pinned version the store lacks while the
--- workspace holds something else, and what to run. Fails as lock.read.
function M.problem(root, st, steps)
  local current, err, code = lock.read(root)
  if not current then return nil, err, code end
  local artifacts = current.artifacts
  if type(artifacts) ~= "table" or next(artifacts) == nil then return nil end
  local seen = {}
  for _, step in ipairs(steps) do
    for _, dep in ipairs(step.deps) do
      local path, record = artifact_of(artifacts, dep)
      if path and not seen[path] then
        seen[path] = true
        if not st:has(record.hash) then
          local now = st:hash(path, { manifest = false })
          if not now or now.hash ~= record.hash then
            return ("%s is not what mlx.lock pins, and the store has never had the pinned version (a git pull,"
              .. " checkout or merge brought a new mlx.lock): run 'mlx pull' first, or 'mlx add %s' to pin"
              .. " the workspace's; step %s needs it"):format(path, path, step.name)
          end
        end
      end
    end
  end
  return nil
end

return M
