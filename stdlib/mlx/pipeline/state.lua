--- mlx.pipeline.state: is a step up to date, and if not, why. Computes a
--- step's inputs (dep hashes through the store's stat cache, env values,
--- tool versions), its key, and compares them with its entry in mlx.lock.
--- Used by the engine (what to run) and by `mlx status RECIPE` (why).
local json = require "mlx.json"
local key = require "mlx.pipeline.key"
local proc = require "mlx.proc"

local stepgraph = require "mlx.stepgraph"
local paths_of, plain_run = stepgraph.paths_of, stepgraph.plain_run

local M = {}

--- Returns a path as the store takes it: no trailing "/".
function M.store_path(path)
  return (path:gsub("/$", ""))
end

--- Returns the lock record of a store hash result: {type, hash, size, mode
--- (files) or files (directories)}, as the artifacts section records them.
M.record = require("mlx.artifacts").entry_of
local manifest_line = require("mlx.artifacts").manifest_line

-- The manifest lines of a directory record r: {relative path → line}.
local function manifest_lines(ctx, r, prefix, into)
  if r.type == "file" then
    into[prefix] = manifest_line(r, prefix)
    return true
  end
  local files, err, code = ctx.store:manifest(r.hash)
  if not files then return nil, err, code end
  for _, f in ipairs(files) do
    local path = prefix == "" and f.path or (prefix .. "/" .. f.path)
    into[path] = manifest_line(f, path)
  end
  return true
end

-- The hash of directory dir as it will be once the overlaid outs inside it
-- are restored: its current manifest with their records put in place.
local function overlaid_dir(ctx, dir)
  local bare = M.store_path(dir)
  local lines = {}
  local current, err, code = ctx.store:hash(bare)
  if current then
    if current.type ~= "dir" then return current end
    local ok
    ok, err, code = manifest_lines(ctx, current, "", lines)
    if not ok then return nil, err, code end
  elseif code ~= "notfound" then
    return nil, err, code
  end
  for out, r in pairs(ctx.overlays) do
    local path = M.store_path(out)
    if path:sub(1, #bare + 1) == bare .. "/" then
      local rel = path:sub(#bare + 2)
      for p in pairs(lines) do
        if p == rel or p:sub(1, #rel + 1) == rel .. "/" then lines[p] = nil end
      end
      local ok
      ok, err, code = manifest_lines(ctx, r, rel, lines)
      if not ok then return nil, err, code end
    end
  end
  local paths = {}
  for p in pairs(lines) do paths[#paths + 1] = p end
  if #paths == 0 then return nil, ("%s does not exist"):format(bare), "notfound" end
  table.sort(paths)
  local text, size = {}, 0
  for i, p in ipairs(paths) do
    text[i] = lines[p]
    size = size + tonumber(lines[p]:match("^%x+ (%d+)"))
  end
  text = table.concat(text)
  return { type = "dir", hash = require("mlx.hash").bytes(text), size = size, files = #paths, manifest = text }
end

-- M.hash, except that a path the prefetch found missing, in a dry run,
-- answers nil, nil, "notfound": the message is made only for a caller that
-- shows it (M.check needs none, and a fresh 100,000-step plan asks about
-- 100,000 missing outs).
local function lookup(ctx, path)
  local memo = ctx.hashes
  local info = memo[path]
  if info then
    if type(info) == "string" then return nil, info, "notfound" end
    return info
  end
  local prefetched = ctx.prefetched
  if prefetched then
    local absent
    info, absent = prefetched:find(path)
    if info then
      memo[path] = info
      return info
    end
    -- In a dry run nothing writes: a path missing at the prefetch still
    -- is, said without asking the store or remembering the message.
    if absent and ctx.absent_final then return nil, nil, "notfound" end
  end
  local err, code
  if ctx.overlays and path:sub(-1) == "/" and next(ctx.overlays) then
    info, err, code = overlaid_dir(ctx, path)
  else
    info, err, code = ctx.store:hash(M.store_path(path))
  end
  if not info then
    -- A missing path is remembered as the message that says so, until a
    -- step writes it (M.forget): the dep of a fresh chain's step, the out
    -- of the step before, is then looked for once, not twice.
    if code == "notfound" then memo[path] = err end
    return nil, err, code
  end
  memo[path] = info
  return info
end

--- Returns the store's hash of path (a declared dep or out) as st:hash does,
--- remembered for the rest of the run in ctx.hashes (as is a path's
--- absence): a 1,000-step pipeline whose steps share an input hashes it
--- once. The engine calls M.forget when a step rewrites a path. In a dry
--- run, paths overlaid by M.overlay answer with their records, and
--- directories holding them as they will be.
function M.hash(ctx, path)
  local info, err, code = lookup(ctx, path)
  if info or err then return info, err, code end
  return nil, select(2, ctx.prefetched:get(path)), code
end

--- In a dry run, makes path (an out of a step planned "restore") hash as
--- record r says for the rest of the plan, without writing anything.
function M.overlay(ctx, path, r)
  ctx.overlays = ctx.overlays or {}
  ctx.overlays[path] = r
  M.forget(ctx, path)
  ctx.hashes[path] = r
end

--- Hashes the files among the declared paths of steps (their deps and outs
--- that are not directories) in one call to the store, and keeps the
--- answers in C as ctx.prefetched (an mlx.FileHashes), which M.hash asks
--- before the store and M.unsure_steps compares in place: checking 1,000
--- single outs one call at a time costs several times more, and a Lua
--- table per path was a fifth of a 100,000-step no-op's heap. It also
--- knows which paths are missing now, which M.hash trusts in a dry run.
function M.prefetch(ctx, steps)
  -- Every declared path, repeats and directories included: the store
  -- keeps the first of each file path (no Lua set of 100,000 paths). The
  -- list is made in C from the step set's lists (stepgraph.paths_of),
  -- without reading two fields of every step through its __index.
  local list = paths_of(steps)
  if #list < 2 then return end
  -- On failure M.hash meets the problem and reports it.
  ctx.prefetched = ctx.store:file_hashes(list)
end

--- Forgets the remembered hashes of path and of the directories holding it.
function M.forget(ctx, path)
  local memo = ctx.hashes
  memo[path] = nil
  local bare = M.store_path(path)
  local prefetched = ctx.prefetched
  if prefetched then
    prefetched:forget(path)
    prefetched:forget(bare)
  end
  memo[bare .. "/"] = nil
  local i = bare:find("/", 1, true)
  while i do
    memo[bare:sub(1, i)] = nil
    i = bare:find("/", i + 1, true)
  end
end

--- Returns {path → hash} of the step's deps, or nil and a message naming
--- the step and dep. A dep that does not exist hashes to nil (the step is
--- then stale; the engine refuses to run it before it exists).
function M.dep_hashes(ctx, step)
  local hashes = {}
  for _, dep in ipairs(step.deps) do
    local info, err, code = M.hash(ctx, dep)
    if info then
      hashes[dep] = info.hash
    elseif code ~= "notfound" then
      return nil, ("step '%s': dep '%s': %s"):format(step.name, dep, err)
    end
  end
  return hashes
end

-- Shared by the steps that declare no tools or env (read, never written).
local NO_VALUES = setmetatable({}, { __newindex = function() error("NO_VALUES is read-only", 2) end })

-- The values of the environment variables step declares ({name → value
-- or nil}), NO_VALUES when it declares none.
local function env_values(step)
  if #step.env == 0 then return NO_VALUES end
  local env = {}
  for _, name in ipairs(step.env) do env[name] = os.getenv(name) end
  return env
end

-- Version commands run once per invocation, whichever steps share them.
local function tool_versions(ctx, step)
  if next(step.tools) == nil then return NO_VALUES end
  local versions = {}
  for name, command in pairs(step.tools) do
    local text = ctx.tool_cache[command]
    if text == nil then
      local result, err = proc.run { shell = command, stdout = "capture", stderr = "stdout" }
      if not result then
        return nil, ("step '%s': tool '%s': version command %q failed: %s"):format(step.name, name, command, err)
      end
      text = (result.stdout:gsub("%s+$", ""))
      ctx.tool_cache[command] = text
    end
    versions[name] = text
  end
  return versions
end

-- The reasons of a step that has no lock entry (M.evaluate, and the dry
-- run's shortcut through M.never_run_reasons).
local NEVER_RUN, ALWAYS_RUNS = "never run", "it always runs (always = true)"

-- Those lists, one of each for every step of a plan (a fresh plan keeps
-- one per step in its result): read, never changed.
local function read_only(list)
  return setmetatable(list, { __newindex = function() error("a never-run step's reasons are read-only", 2) end })
end
local NEVER_RAN, NEVER_RAN_ALWAYS = read_only({ NEVER_RUN }), read_only({ NEVER_RUN, ALWAYS_RUNS })

--- Returns the reasons M.evaluate gives step when it has no lock entry
--- and all its deps exist: it never ran, and it always runs if it says so.
--- The list is shared by all such steps and read-only.
function M.never_run_reasons(step)
  return step.always and NEVER_RAN_ALWAYS or NEVER_RAN
end

local function show(v)
  if type(v) == "string" then return ("%q"):format(v) end
  return tostring(v)
end

local function command_text(cmd)
  if type(cmd) == "table" then return json.encode(json.array(cmd)) end
  return cmd
end

--- Returns what the lock records for a step that succeeded with key and
--- record (from key.compute) and out records {path → record}.
function M.lock_entry(step, k, record, dep_hashes, outs)
  local entry = { key = k, params = json.object({}), deps = json.object({}), outs = json.object({}) }
  if record.fn then entry.fn = require("mlx.hash").bytes(record.fn) else entry.cmd = record.cmd end
  for name, value in pairs(record.params) do entry.params[name] = value end
  for _, dep in ipairs(step.deps) do entry.deps[dep] = dep_hashes[dep] or json.null end
  for path, r in pairs(outs) do entry.outs[path] = r end
  -- Which outs are metrics and plots files, so that a baseline read from
  -- this lock at another revision knows them (mlx.metrics, mlx report).
  if #step.metrics > 0 then entry.metrics = json.array(table.move(step.metrics, 1, #step.metrics, 1, {})) end
  if #step.plots > 0 then entry.plots = json.array(table.move(step.plots, 1, #step.plots, 1, {})) end
  -- Outs the store never keeps: push, fetch, pull, status --remote, gc and
  -- fsck read this to leave them alone, without loading the recipe.
  if not step.cache then entry.cache = false end
  return entry
end

local index_has, index_same_key
-- Shared by the calls of M.up_to_date: the dep hashes of one step at a
-- time, emptied after each (one table less per step of a no-op).
local scratch_deps = {}

-- The step's up-to-date check once its key's inputs are known: its key
-- (hashed in C from the key text's pieces, never a Lua string) and its
-- outs' current hashes make exactly its index line.
local function same_line(ctx, step, lines, dep_hashes, env, tools)
  local outs = step.outs
  local out, out_hash -- the one out of most steps, with no table for it
  local parts = NO_VALUES
  if #outs == 1 then
    out = outs[1]
    local info = M.hash(ctx, out)
    if not info then return false end
    out_hash = info.hash
  elseif #outs > 1 then
    outs = table.move(outs, 1, #outs, 1, {})
    table.sort(outs)
    parts = {}
    for _, path in ipairs(outs) do
      local info = M.hash(ctx, path)
      if not info then return false end
      parts[#parts + 1] = path
      parts[#parts + 1] = info.hash
    end
  end
  -- key.pieces returns the count and 14 pieces: named here, as a call
  -- before other arguments gives only its first value.
  local n, p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11, p12, p13, p14 = key.pieces(step, ctx.values, dep_hashes, env,
    tools)
  if out then
    return index_same_key(lines, step.name, n, p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11, p12, p13, p14, out,
      out_hash)
  end
  return index_same_key(lines, step.name, n, p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11, p12, p13, p14,
    table.unpack(parts))
end

--- Returns true when step is up to date by its line in lines, the lock's
--- index (lockindex.lines: step name → "KEY\tOUT\tHASH…", outs sorted by
--- path): its key and its outs' current hashes make exactly that line. A
--- no-op decides most steps here, without the tables M.evaluate builds.
--- Returns false whenever this cannot say so — the index has no line for
--- it, something differs, a dep or out is missing or cannot be hashed, the
--- step always runs — and M.evaluate then says what (and reports any
--- error). Raises as key.compute does.
function M.up_to_date(ctx, step, lines)
  if step.always then return false end
  if not index_has then
    local native = require "mlx.lockindex"
    index_has, index_same_key = native.has, native.same_key
  end
  local name = step.name
  if not index_has(lines, name) then return false end
  local deps = step.deps
  local dep_hashes = scratch_deps
  for i = 1, #deps do
    local info = M.hash(ctx, deps[i])
    if not info then
      for j = 1, i - 1 do dep_hashes[deps[j]] = nil end
      return false
    end
    dep_hashes[deps[i]] = info.hash
  end
  local tools = tool_versions(ctx, step)
  local same = false
  if tools then
    local env = env_values(step)
    -- Should this raise, the entries left behind are harmless: each step
    -- sets its own deps' entries before they are read.
    same = same_line(ctx, step, lines, dep_hashes, env, tools)
  end
  for i = 1, #deps do dep_hashes[deps[i]] = nil end
  return same
end

--- Returns the steps of the list steps (in its order) that the lock's
--- index, lines (lockindex.lines), does not show up to date as things are
--- now: those whose key and outs' hashes, from the prefetched hashes in C
--- (lockindex.same_step), are not exactly their index line, those that
--- always run or are named in forced ({step name → true}), and those it
--- cannot check (a dep or out missing or a directory, a tool whose version
--- command fails): M.up_to_date and M.evaluate then say what. Returns nil
--- when there are no prefetched hashes (every step is then unsure). One
--- pass that makes no table per step: the no-op of a large pipeline decides
--- almost every step here. A plain Lua step (stepgraph.plain_run: no env,
--- params, tools or always) is read in that one call, not field by field.
--- Raises as key.compute does.
function M.unsure_steps(ctx, steps, lines, forced)
  local prefetched = ctx.prefetched
  if not prefetched then return nil end
  local same_step = require("mlx.lockindex").same_step
  local fixed_pieces, plain_pieces, values = key.fixed_pieces, key.plain_pieces, ctx.values
  local unsure, n = {}, 0
  for i = 1, #steps do
    local step = steps[i]
    local same = false
    local run, name, deps, outs = plain_run(step)
    if run then
      if not (forced and forced[name]) then
        same = same_step(lines, prefetched, name, deps, outs, plain_pieces(run))
      end
    elseif not step.always and not (forced and forced[step.name]) then
      local tools = tool_versions(ctx, step)
      if tools then
        local env = env_values(step)
        same = same_step(lines, prefetched, step.name, step.deps, step.outs, fixed_pieces(step, values, env, tools))
      end
    end
    if not same then
      n = n + 1
      unsure[n] = step
    end
  end
  return unsure
end

--- Returns true and the first of step's deps that does not exist (nil when
--- all do) when its deps, tools and outs can be looked at, or nil and the
--- message M.evaluate gives when one cannot (a dep or out that cannot be
--- hashed, a tool whose version command fails); raises where M.evaluate
--- raises (a path or value that is not UTF-8). It builds neither the key
--- nor the tables of an evaluation: a dry run needs no more of a step
--- downstream of one that runs, whose key cannot be known before that step
--- has run, or of one that never ran and that the run-cache cannot restore.
local function clear_scratch(deps)
  for i = 1, #deps do scratch_deps[deps[i]] = nil end
end

function M.check(ctx, step)
  -- A plain Lua step's lists come with its function, in one call.
  local run, _, deps, outs = plain_run(step)
  if not run then deps, outs = step.deps, step.outs end
  local dep_hashes = scratch_deps
  local missing
  for i = 1, #deps do
    local info, err, code = lookup(ctx, deps[i])
    if info then
      dep_hashes[deps[i]] = info.hash
    elseif code == "notfound" then
      missing = missing or deps[i]
    else
      clear_scratch(deps)
      return nil, ("step '%s': dep '%s': %s"):format(step.name, deps[i], err)
    end
  end
  -- A step whose key text cannot raise declares no tools to run either.
  if not (run and key.cannot_raise(step, run)) then
    local tools, err = tool_versions(ctx, step)
    if not tools then
      clear_scratch(deps)
      return nil, err
    end
    -- Made for what it raises (as key.compute would), then dropped. Should
    -- it raise, the entries left behind are harmless, as in M.up_to_date.
    key.pieces(step, ctx.values, dep_hashes, env_values(step), tools)
  end
  clear_scratch(deps)
  for _, out in ipairs(outs) do
    local info, herr, code = lookup(ctx, out)
    if not info and code ~= "notfound" then
      return nil, ("step '%s': out '%s': %s"):format(step.name, out, herr)
    end
  end
  return true, missing
end

--- Evaluates step: returns ev = { key, record, dep_hashes, outs = {path →
--- current record or nil}, reasons = {…} (empty when up to date),
--- missing_deps = {…} } or nil and a message. locked is the step's entry in
--- mlx.lock (or nil); ctx = {store, values, tool_cache, hashes = {}}.
function M.evaluate(ctx, step, locked)
  local dep_hashes, err = M.dep_hashes(ctx, step)
  if not dep_hashes then return nil, err end
  local tools
  tools, err = tool_versions(ctx, step)
  if not tools then return nil, err end
  local env = env_values(step)
  local k, record = key.compute(step, { values = ctx.values, dep_hashes = dep_hashes, env = env, tools = tools })
  local ev = { key = k, record = record, dep_hashes = dep_hashes, outs = {}, reasons = {}, missing_deps = {} }
  local reasons = ev.reasons
  for _, dep in ipairs(step.deps) do
    if not dep_hashes[dep] then table.insert(ev.missing_deps, dep) end
  end
  if not locked then
    reasons[#reasons + 1] = NEVER_RUN
  elseif locked.key ~= k then
    local before = #reasons
    for _, dep in ipairs(step.deps) do
      local was = locked.deps and locked.deps[dep]
      if was == nil then
        reasons[#reasons + 1] = ("dep '%s' is new"):format(dep)
      elseif was ~= (dep_hashes[dep] or json.null) then
        reasons[#reasons + 1] = dep_hashes[dep] and ("dep '%s' changed"):format(dep)
          or ("dep '%s' is missing"):format(dep)
      end
    end
    for name, value in pairs(record.params) do
      local was = locked.params and locked.params[name]
      if was == nil then
        reasons[#reasons + 1] = ("param '%s' is new (%s)"):format(name, show(value))
      elseif was ~= value then
        reasons[#reasons + 1] = ("param '%s' changed from %s to %s"):format(name, show(was), show(value))
      end
    end
    if record.fn then
      if locked.fn ~= require("mlx.hash").bytes(record.fn) then reasons[#reasons + 1] = "its Lua function changed" end
    elseif command_text(locked.cmd) ~= command_text(record.cmd) then
      reasons[#reasons + 1] = "command changed"
    end
    if #reasons == before then reasons[#reasons + 1] = "its env, tools or declared outs changed" end
  end
  for _, out in ipairs(step.outs) do
    local info, herr, code = M.hash(ctx, out)
    if info then
      ev.outs[out] = M.record(info)
      local was = locked and locked.outs and locked.outs[out]
      if locked and locked.key == k and (not was or was.hash ~= info.hash) then
        reasons[#reasons + 1] = ("out '%s' was modified"):format(out)
      end
    elseif code == "notfound" then
      if locked and locked.key == k then reasons[#reasons + 1] = ("out '%s' is missing"):format(out) end
    else
      return nil, ("step '%s': out '%s': %s"):format(step.name, out, herr)
    end
  end
  if step.always then reasons[#reasons + 1] = ALWAYS_RUNS end
  return ev
end

return M
