--- mlx.remote.verify: what a remote really holds, without trusting its
--- index: one listing of objects/ with the size of each key, compared with
--- the sizes the objects have in the local store (or in mlx.lock).
local fs = require "mlx.fs"

local M = {}

--- Returns the items ({hash, size}) that the remote r (an mlx.transfer
--- handle) lacks or holds at another size than expected: the size of the
--- object in the store of the project at root, else item.size (0: unknown,
--- so only its presence is checked). Each returned item carries `why`
--- ("missing" or "size"). Returns nil, message, code when the listing
--- fails.
function M.absent(root, r, items)
  local keys, err, code = require("mlx.remote.index").list(r, "objects/")
  if not keys then return nil, err, code end
  local st = require("mlx.store").open(root)
  local out = {}
  for _, item in ipairs(items) do
    local id = item.hash
    local have = keys["objects/" .. id:sub(1, 2) .. "/" .. id:sub(3)]
    local want = item.size or 0
    if st and st:has(id) then
      local s = fs.stat(st:path(id))
      if s then want = s.size end
    end
    if not have then
      out[#out + 1] = { hash = id, size = item.size, why = "missing" }
    elseif want > 0 and have ~= want then
      out[#out + 1] = { hash = id, size = item.size, why = "size" }
    end
  end
  if st then st:close() end
  return out
end

return M
