--- mlx.verify.diff: what differs between an out as mlx.lock pins it and
--- as a re-execution produced it — the files of a directory, the fields of
--- a JSON metrics file — so that `mlx verify` names the cause, not just a
--- hash.
local json = require "mlx.json"

local M = {}

-- Flattens a JSON value into {"a.b" = leaf}: every number, string, boolean
-- and null reachable through object keys and array indices (1-based), so a
-- confusion matrix is compared cell by cell.
local function flatten(value, prefix, out)
  if type(value) == "table" then
    local is_array = getmetatable(value) == getmetatable(json.array()) or (#value > 0)
    if is_array then
      for i, v in ipairs(value) do flatten(v, prefix == "" and tostring(i) or (prefix .. "." .. i), out) end
    else
      for k, v in pairs(value) do
        flatten(v, prefix == "" and tostring(k) or (prefix .. "." .. tostring(k)), out)
      end
    end
    if next(value) == nil then out[prefix] = "{}" end
  elseif value == json.null then
    out[prefix] = "null"
  else
    out[prefix] = value
  end
  return out
end

local function show(v)
  if v == nil then return "(absent)" end
  if math.type(v) == "float" then return ("%.10g"):format(v) end
  if type(v) == "string" then return ("%q"):format(v) end
  return tostring(v)
end

--- Compares two JSON documents given as text, field by field. Numbers
--- whose difference is at most tolerance (absolute; default 0) agree.
--- Returns a list of {field, was, now, text} sorted by field (empty when
--- everything agrees) and the number of fields that differ only within the
--- tolerance; or nil and why either text is not JSON.
function M.json_fields(was_text, now_text, tolerance)
  tolerance = tolerance or 0
  local was, err = json.decode(was_text)
  if was == nil then return nil, "the locked version is not JSON: " .. tostring(err) end
  local now
  now, err = json.decode(now_text)
  if now == nil then return nil, "the new version is not JSON: " .. tostring(err) end
  local a, b = flatten(was, "", {}), flatten(now, "", {})
  local fields, seen = {}, {}
  for k in pairs(a) do fields[#fields + 1] = k; seen[k] = true end
  for k in pairs(b) do if not seen[k] then fields[#fields + 1] = k end end
  table.sort(fields)
  local diffs, within = {}, 0
  for _, field in ipairs(fields) do
    local x, y = a[field], b[field]
    if x ~= y then
      if type(x) == "number" and type(y) == "number" and math.abs(x - y) <= tolerance then
        within = within + 1
      else
        local text = ("%s: %s -> %s"):format(field == "" and "(the value)" or field, show(x), show(y))
        if type(x) == "number" and type(y) == "number" then
          text = text .. (" (%+.3g)"):format(y - x)
        end
        diffs[#diffs + 1] = { field = field, was = x, now = y, text = text }
      end
    end
  end
  return diffs, within
end

--- Compares two directory manifests (lists of {path, hash, mode} as
--- st:manifest returns). Returns {added = {paths}, removed = {paths},
--- changed = {paths}}, each sorted.
function M.manifests(was, now)
  local by_path = {}
  for _, f in ipairs(was) do by_path[f.path] = f end
  local result = { added = {}, removed = {}, changed = {} }
  local present = {}
  for _, f in ipairs(now) do
    present[f.path] = true
    local old = by_path[f.path]
    if not old then
      result.added[#result.added + 1] = f.path
    elseif old.hash ~= f.hash or old.mode ~= f.mode then
      result.changed[#result.changed + 1] = f.path
    end
  end
  for _, f in ipairs(was) do
    if not present[f.path] then result.removed[#result.removed + 1] = f.path end
  end
  for _, list in pairs(result) do table.sort(list) end
  return result
end

return M
