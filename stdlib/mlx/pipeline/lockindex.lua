--- mlx.pipeline.lockindex: what a no-op needs of mlx.lock's "steps"
--- section, without reading mlx.lock. Deciding that a step is up to date
--- needs only its key and its outs' hashes, but reading the lock turns
--- every entry (about 560 bytes of JSON a step) into Lua tables and
--- validates them: most of a 100,000-step no-op. The index,
--- .mlx/cache/lock-steps, holds one line per step, "PIPELINE\tSTEP\tKEY"
--- then "\tOUT\tHASH" per out (sorted by path, so that a step's line is
--- one string to compare), under a header naming the SHA-256 of the
--- lock bytes it was made from. It is used only while mlx.lock still has
--- exactly those bytes (bytes that passed lock.read's validation when the
--- index was made), and rewritten whenever the engine writes the lock or
--- has to read it. A step whose key or outs differ asks for more (its deps,
--- params, command, to say why it runs): the lock is then read, once.
local fs = require "mlx.fs"
local lock = require "mlx.lock"
local ui = require "mlx.ui"

local M = {}

-- Version 2 sorts each step's outs (version 1 kept the lock's order): an
-- index of version 1 does not match and is made again.
local HEADER = "mlx lock-steps 2 "

--- Returns the path of the index of the project at root.
function M.path(root)
  return root .. "/.mlx/cache/lock-steps"
end

--- Writes the index of steps (the lock's "steps" section: pipeline → step
--- → entry) for the lock bytes whose SHA-256 is digest. Returns true, or
--- nil and why (the index is a cache: the caller warns and goes on).
--- A name or path holding a tab or a newline makes no index (none is needed
--- to be correct, only to be fast).
function M.write(root, steps, digest)
  local lines, n = { HEADER .. digest .. "\n" }, 1
  for pname, section in pairs(steps or {}) do
    for sname, entry in pairs(section) do
      local parts = { pname, sname, entry.key }
      local paths = {}
      for path in pairs(entry.outs or {}) do paths[#paths + 1] = path end
      table.sort(paths)
      for _, path in ipairs(paths) do
        parts[#parts + 1] = path
        parts[#parts + 1] = entry.outs[path].hash
      end
      local line = table.concat(parts, "\t")
      if line:find("\n", 1, true) or #parts ~= select(2, line:gsub("\t", "")) + 1 then
        os.remove(M.path(root))
        return true
      end
      n = n + 1
      lines[n] = line .. "\n"
    end
  end
  return fs.write(M.path(root), table.concat(lines))
end

-- The entry of one step as evaluate reads it, from its index line (rest:
-- the key, then "\tOUT\tHASH" per out). Anything else (deps, params, fn,
-- cmd) comes through the metatable mt from the lock, read at the first
-- such question; names maps the entry to its step.
local function entry_of(rest, name, mt, names)
  local outs = {}
  local pos, len = 66, #rest
  while pos < len do
    local tab = rest:find("\t", pos, true)
    outs[rest:sub(pos, tab - 1)] = { hash = rest:sub(tab + 1, tab + 64) }
    pos = tab + 66
  end
  local entry = setmetatable({ key = rest:sub(1, 64), outs = outs }, mt)
  names[entry] = name
  return entry
end

--- Returns the lock entries {step name → entry} of pipeline p at root, as
--- engine.locked_steps does: from the index when it matches mlx.lock (each
--- entry made at its first lookup; pairs then gives the names alone), else
--- from the lock (and the index is rewritten). Raises a usage failure for a
--- corrupt lock (exit 2). With st, the project's open store (mlx.store),
--- the lock's digest comes through its stat cache, which reads and hashes
--- mlx.lock only when it changed since it was last hashed (0.5 ms of a
--- 1,000-step no-op, 30 ms at 100,000 steps).
function M.steps(root, p, st)
  local digest
  if st then
    local info = st:hash(lock.NAME)
    digest = info and info.type == "file" and info.hash
  else
    digest = require("mlx.hash").file(lock.path(root))
  end
  if not digest then return require("mlx.pipeline.engine").locked_steps(root, p) end
  -- The lines of the pipeline's steps, kept in C (mlx.lockindex): a Lua
  -- string or two per step cost more than the rest of the index.
  local lines = require("mlx.lockindex").read(M.path(root), HEADER .. digest, p.name)
  if not lines then
    local current, got, code = lock.read_digest(root)
    if not current then ui.fail(ui.exit_code_for(code), "%s", got) end
    if got then
      local ok, err = M.write(root, current.steps, got)
      if not ok then ui.warn("cannot write " .. M.path(root) .. ": " .. err) end
    end
    return (current.steps or {})[p.name] or {}
  end
  local full
  local names = setmetatable({}, { __mode = "k" })
  local entry_mt = { __index = function(entry, field)
    if not full then
      local current, err, code = lock.read(root)
      if not current then ui.fail(ui.exit_code_for(code), "%s", err) end
      full = (current.steps or {})[p.name] or {}
    end
    local e = full[names[entry]]
    return e and e[field]
  end }
  return setmetatable({}, {
    -- Not kept: the engine asks once per step, and 100,000 kept entries
    -- would cost what the index saves.
    __index = function(_, name)
      local rest = lines[name]
      if not rest then return nil end
      return entry_of(rest, name, entry_mt, names)
    end,
    -- The names alone, without their entries: the engine walks them to
    -- find steps no longer declared.
    __pairs = function() return require("mlx.lockindex").names(lines) end,
    lines = lines,
  })
end

--- Returns the index's lines of the entries steps (as M.steps returns
--- them), read-only and indexed as a table {step name → "KEY\tOUT\tHASH…",
--- outs sorted by path} (an mlx.lockindex userdata), which
--- state.up_to_date compares with what a step has now; nil when steps
--- came from mlx.lock itself, not from the index.
function M.lines(steps)
  local mt = getmetatable(steps)
  return mt and mt.lines
end

return M
