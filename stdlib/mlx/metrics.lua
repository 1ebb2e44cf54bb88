--- mlx.metrics: the metrics and params of the working tree against a
--- baseline — a git revision (its mlx.lock, read through libgit2, and the
--- metrics files it pins, read from the store) or a registered model
--- (the run that produced it). Used by `mlx metrics diff`, `mlx report`
--- and mlx.gate.
---
---     local metrics = require "mlx.metrics"
---     local base = assert(metrics.side(root, "HEAD~1"))
---     local cur = assert(metrics.workspace(root))
---     for _, row in ipairs(metrics.diff(base.metrics, cur.metrics)) do print(row.key, row.delta) end
---
--- A side is a table {label, kind ("workspace"|"rev"|"model"), commit,
--- params = {name → value}, metrics = {name → number}, data = {path →
--- hash} (tracked artifacts, step deps and outs), steps = {step name →
--- run record or false}, plots = {path…}, warnings = {message…}}.
--- Failures of the world return nil, message, code; misuse raises.
local fs = require "mlx.fs"
local json = require "mlx.json"
local lock = require "mlx.lock"

local M = {}

--- Flattens a metrics JSON value into out, {"a.b" = number}: the numbers
--- (and booleans, as 1 and 0) reachable through object keys. Arrays (a
--- confusion matrix, a curve) stay in the file: they are not scalar
--- metrics. Returns out.
function M.flatten(value, prefix, out)
  if type(value) == "number" then
    out[prefix] = value
  elseif type(value) == "boolean" then
    out[prefix] = value and 1 or 0
  elseif type(value) == "table" and #value == 0 then
    for k, v in pairs(value) do
      M.flatten(v, prefix == "" and tostring(k) or (prefix .. "." .. tostring(k)), out)
    end
  end
  return out
end

--- Returns true if text names a registered model (NAME@ALIAS or
--- NAME:VERSION) rather than a git revision.
function M.is_model_ref(text)
  return text:match("^[%w][%w_.%-]*@[%w][%w_.%-]*$") ~= nil or text:match("^[%w][%w_.%-]*:%d+$") ~= nil
end

-- Calls fn(pipeline, step name, entry) for each step entry of a lock
-- document, in a stable order.
local function each_step(doc, fn)
  local pipelines = {}
  for name in pairs(doc.steps or {}) do pipelines[#pipelines + 1] = name end
  table.sort(pipelines)
  for _, pname in ipairs(pipelines) do
    local names = {}
    for name in pairs(doc.steps[pname]) do names[#names + 1] = name end
    table.sort(names)
    for _, name in ipairs(names) do fn(pname, name, doc.steps[pname][name]) end
  end
end

-- The paths of a lock entry's list field (metrics or plots) that are outs
-- of the entry and obey the path rule; a lock is data from a clone, and
-- mlx reads these files. The others are said in side.warnings.
local function declared_outs(side, name, entry, field)
  local list = {}
  if type(entry[field]) ~= "table" then return list end
  for _, p in ipairs(entry[field]) do
    local why = type(p) ~= "string" and "not a path" or lock.path_problem(p)
      or not (type(entry.outs) == "table" and entry.outs[p]) and "not one of its outs"
    if why then
      side.warnings[#side.warnings + 1] = ("mlx.lock of %s: step %s: %s %s: %s"):format(side.label, name,
        field, tostring(p), why)
    else
      list[#list + 1] = p
    end
  end
  return list
end

-- Fills side from a lock document; read(path, record) returns the bytes
-- of a metrics file or nil and why.
local function from_lock(side, doc, read, runs)
  for path, r in pairs(doc.artifacts or {}) do side.data[path] = r.hash end
  each_step(doc, function(_, name, entry)
    local function map(t) return type(t) == "table" and t or {} end
    for dep, hash in pairs(map(entry.deps)) do
      if type(hash) == "string" then side.data[dep] = hash end
    end
    for out, r in pairs(map(entry.outs)) do
      if type(r) == "table" then side.data[(out:gsub("/$", ""))] = r.hash end
    end
    for k, v in pairs(map(entry.params)) do side.params[k] = v end
    for _, path in ipairs(declared_outs(side, name, entry, "metrics")) do
      local r = entry.outs[path]
      local text, why = read(path, r)
      local value
      if text then value, why = json.decode(text) end
      if value == nil then
        side.warnings[#side.warnings + 1] = ("metrics file %s of %s: %s"):format(path, side.label, why)
      else
        M.flatten(value, "", side.metrics)
      end
    end
    for _, path in ipairs(declared_outs(side, name, entry, "plots")) do side.plots[#side.plots + 1] = path end
    side.steps[name] = false
    if runs and type(entry.key) == "string" then
      local id = runs:step_producer(entry.key)
      local run = id and runs:get(id)
      if run then side.steps[name] = run end
    end
  end)
  table.sort(side.plots)
  return side
end

-- mlx.lock validates the sections whose owners are loaded: the pipeline
-- engine owns "steps" (and requires this module, so not at load time).
local function load_validators()
  require "mlx.pipeline.engine"
end

local function new_side(label, kind)
  return { label = label, kind = kind, params = {}, metrics = {}, data = {}, steps = {}, plots = {}, warnings = {} }
end

local function open_runs(options)
  if options and options.runs ~= nil then return options.runs or nil end
  local ok, track = pcall(require, "mlx.track")
  if not ok then return nil end
  return track.store() or nil
end

--- Returns the side of the working tree of the project at root: its
--- mlx.lock's params, its steps' metrics files as they are now. Fails with
--- nil, message, "invalid" for a corrupt lock. options.runs: an mlx.track
--- store to find each step's run in (default the project's; false: none).
function M.workspace(root, options)
  load_validators()
  local doc, err, code = lock.read(root)
  if not doc then return nil, err, code end
  local side = new_side("workspace", "workspace")
  return from_lock(side, doc, function(path)
    local f, why = io.open(root .. "/" .. path, "rb")
    if not f and not fs.stat(root .. "/" .. path) then
      -- A fresh clone before its pull: say what brings the file.
      return nil, "not in the workspace; 'mlx pull' (or 'mlx recipe') puts it there"
    end
    if not f then return nil, why and why:gsub("^[^:]*: ", "") or "cannot be read" end
    local text = f:read("a")
    f:close()
    return text
  end, open_runs(options))
end

-- The project's directory relative to the root of its git work tree ("" at
-- the root), so that rev:path names the project's mlx.lock.
local function prefix_in(repo, root)
  local top = fs.realpath(repo:root()) or repo:root()
  local here = fs.realpath(root) or root
  if here == top then return "" end
  if here:sub(1, #top + 1) == top .. "/" then return here:sub(#top + 2) .. "/" end
  return ""
end

-- Brings the object of pinned file r into the store of the project at
-- root from its default remote. Returns true; or nil and why (nil when
-- the project has no remote).
local function fetch_object(root, r)
  local remote = require "mlx.remote"
  local h = remote.open(root)
  if not h then return nil end
  local res, err = h.r:fetch(root, { { hash = r.hash, size = r.size or 0 } }, {})
  h.r:close()
  if not res then return nil, ("remote '%s' could not give it: %s"):format(h.name, err) end
  if #res.corrupt > 0 then return nil, ("its copy on remote '%s' is corrupt"):format(h.name) end
  if #res.missing > 0 then return nil, ("remote '%s' does not have it"):format(h.name) end
  return true
end

--- Returns the side of git revision rev of the project at root: the
--- mlx.lock committed there (read through libgit2), its params, and the
--- values of the metrics files it pins, read from the store or else
--- fetched from the default remote (a file whose object is in neither is
--- left out, with a warning). Fails with nil, "REV: …", "notfound" for an unknown revision or
--- one without an mlx.lock; "invalid" for a lock that does not parse.
function M.revision(root, rev, options)
  load_validators()
  local ok, git = pcall(require, "mlx.git")
  if not ok then return nil, "git is not available: " .. tostring(git), "io" end
  local repo, err, code = git.open(root)
  if not repo then return nil, ("--baseline %s: %s"):format(rev, err), code end
  local log
  log, err, code = repo:log { rev = rev, limit = 1 }
  if not log or not log[1] then
    repo:close()
    if rev == "HEAD" then
      -- The default baseline of a repository with no commit yet: say what
      -- to do rather than that git knows no HEAD.
      return nil, "--baseline HEAD: nothing is committed yet to compare with; commit mlx.lock "
        .. "(git add mlx.lock && git commit), or name a baseline: --baseline REV or MODEL@ALIAS", "notfound"
    end
    return nil, ("--baseline %s: %s"):format(rev, err or "no such revision"), code or "notfound"
  end
  local path = prefix_in(repo, root) .. lock.NAME
  local text
  text, err, code = repo:show(rev, path)
  repo:close()
  if not text then
    return nil, ("--baseline %s: no %s in that revision (%s)"):format(rev, path, err), code or "notfound"
  end
  local doc
  doc, err = json.decode(text)
  if type(doc) ~= "table" then
    return nil, ("--baseline %s: %s: %s"):format(rev, path, err or "not a JSON object"), "invalid"
  end
  for section, check in pairs(lock.sections) do
    local why = doc[section] ~= nil and check(doc[section])
    if why then return nil, ("--baseline %s: %s: %s"):format(rev, path, why), "invalid" end
  end
  local side = new_side(("%s (%s)"):format(rev, log[1].short), "rev")
  side.commit = log[1].commit
  local st, remote_tried
  return from_lock(side, doc, function(_, r)
    if type(r) ~= "table" or r.type ~= "file" then return nil, "not pinned as a file" end
    if not st then
      local why
      st, why = require("mlx.store").open(root)
      if not st then return nil, why end
    end
    local bytes, why, c = st:read(r.hash)
    if not bytes and c == "notfound" then
      -- A revision's files need not be pinned now: fetch the object by its
      -- id from the default remote, verified as every fetch is.
      local fetched, ferr = fetch_object(root, r)
      if fetched then return st:read(r.hash) end
      if ferr then
        return nil, ("object %s is not in the store, and %s"):format(r.hash:sub(1, 12), ferr)
      end
      return nil, ("object %s is not in the store ('mlx pull' fetches it)"):format(r.hash:sub(1, 12))
    end
    return bytes, why
  end, open_runs(options))
end

--- Returns the side of a registered model (NAME@ALIAS or NAME:VERSION):
--- the metrics of the version (its producing run's, completed by its
--- evaluation's: mlx.registry's metrics), the params of its run and of the
--- recipe run it was a step of, its recipe run's steps and the artifacts
--- they read and wrote. Fails as mlx.registry's get.
function M.model(ref, options)
  local registry = require "mlx.registry"
  local reg, err, code = (options and options.registry) or registry.default()
  if not reg then return nil, err, code end
  local v
  v, err, code = reg:get(ref)
  if not v then return nil, ("--baseline %s: %s"):format(ref, err), code end
  local side = new_side(("%s (%s)"):format(ref, v.ref), "model")
  side.version = v
  side.metrics, err, code = reg:metrics(v)
  if not side.metrics then return nil, err, code end
  local runs = open_runs(options)
  local run = runs and v.run and runs:get(v.run)
  if run then
    local recipe_run = run.parent and runs:get(run.parent)
    local steps = recipe_run and recipe_run.children or { run.id }
    if recipe_run then
      for k, value in pairs(recipe_run.params) do side.params[k] = value end
    end
    for _, id in ipairs(steps) do
      local step_run = id == run.id and run or runs:get(id)
      if step_run then
        side.steps[step_run.step or step_run.id] = step_run
        for k, value in pairs(step_run.params) do side.params[k] = value end
        for _, a in ipairs(step_run.artifacts or {}) do
          if a.hash then side.data[a.path] = a.hash end
        end
      end
    end
  else
    side.warnings[#side.warnings + 1] = ("%s: the run that produced it is not in this runs database"):format(v.ref)
  end
  return side
end

--- Returns the side a --baseline value names: a model reference
--- (M.is_model_ref) or a git revision. Fails as M.model or M.revision.
function M.side(root, baseline, options)
  if M.is_model_ref(baseline) then return M.model(baseline, options) end
  return M.revision(root, baseline, options)
end

--- Returns the keys of tables a and b, each once, sorted.
local union = require("mlx.track.view").union_keys
M.union = union

--- Returns the rows comparing the metric values base and cur ({name →
--- number}), sorted by name: {key, base, cur, delta (cur − base, nil
--- unless both are numbers), rel (delta / |base|, nil when base is 0)}.
function M.diff(base, cur)
  local rows = {}
  for _, k in ipairs(union(base, cur)) do
    local b, c = base[k], cur[k]
    local row = { key = k, base = b, cur = c }
    if type(b) == "number" and type(c) == "number" then
      row.delta = c - b
      if b ~= 0 and row.delta == row.delta then row.rel = row.delta / math.abs(b) end
    end
    rows[#rows + 1] = row
  end
  return rows
end

local number_text = require("mlx.core").number_text

--- Returns a param value as text, as runs record it: numbers in their
--- shortest exact form, so 0.1 from mlx.lock equals "0.1" from a run.
function M.param_text(v)
  if v == nil then return nil end
  if type(v) == "number" then return number_text(v) end
  return tostring(v)
end

--- Returns the rows of the params that differ between base and cur
--- ({name → value}), sorted by name: {key, base, cur} (as text; nil:
--- absent). With all, every param.
function M.params_diff(base, cur, all)
  local rows = {}
  for _, k in ipairs(union(base, cur)) do
    local b, c = M.param_text(base[k]), M.param_text(cur[k])
    if all or b ~= c then rows[#rows + 1] = { key = k, base = b, cur = c } end
  end
  return rows
end

--- Returns the paths whose hash differs between the data of base and cur
--- ({path → hash}), sorted: {path, change ("added"|"removed"|"modified"),
--- base, cur}.
function M.data_diff(base, cur)
  local rows = {}
  for _, p in ipairs(union(base, cur)) do
    local b, c = base[p], cur[p]
    if b ~= c then
      rows[#rows + 1] = { path = p, base = b, cur = c, change = not b and "added" or not c and "removed" or "modified" }
    end
  end
  return rows
end

--- Parses a --fail-on rule: "KEY<NUMBER" or "KEY>NUMBER" (a bound on the
--- current value), "KEY:-NUMBER" (fails when the value falls by more than
--- NUMBER against the baseline), "KEY:+NUMBER" (rises by more), a trailing
--- "%" making the change relative to the baseline's value. Returns {key,
--- op ("<"|">"|"drop"|"rise"), limit, relative, text}; nil and why.
function M.parse_rule(text)
  local key, op, number = text:match("^%s*([^<>:%s]+)%s*([<>])%s*(%S+)%s*$")
  local rule
  if key then
    rule = { key = key, op = op, limit = tonumber(number), text = text }
  else
    local sign
    key, sign, number = text:match("^%s*([^<>:%s]+)%s*:%s*([+-])(%S+)%s*$")
    if not key then
      return nil, ("--fail-on '%s': expected KEY<N, KEY>N, KEY:-N or KEY:+N (N may end with %%)"):format(text)
    end
    local relative = number:sub(-1) == "%"
    if relative then number = number:sub(1, -2) end
    rule = { key = key, op = sign == "-" and "drop" or "rise", limit = tonumber(number), relative = relative,
      text = text }
    if rule.limit and relative then rule.limit = rule.limit / 100 end
  end
  if not rule.limit or rule.limit ~= rule.limit then
    return nil, ("--fail-on '%s': '%s' is not a number"):format(text, number)
  end
  if (rule.op == "drop" or rule.op == "rise") and rule.limit < 0 then
    return nil, ("--fail-on '%s': the change must not be negative"):format(text)
  end
  return rule
end

-- A number in a message: 6 significant digits, as the gate says them.
local function show(x)
  if math.type(x) == "integer" then return tostring(x) end
  return ("%.6g"):format(x)
end

--- Checks rule (from M.parse_rule) against the metric values base and cur.
--- Returns nil when it holds, else a message with both numbers. A metric
--- the working tree lacks breaks any rule (the message suggests a close
--- name when neither side has it); one the baseline lacks breaks only a
--- rule on the change.
function M.check_rule(rule, base, cur)
  local c, b = cur[rule.key], base[rule.key]
  local head = ("--fail-on %s: "):format(rule.text)
  if type(c) ~= "number" or c ~= c then
    -- Absent from both sides, the key is most likely mistyped in the rule.
    local guess = cur[rule.key] == nil and base[rule.key] == nil and require("mlx.suggest").closest(rule.key, cur)
    return head .. ("%s has no value in the working tree%s"):format(rule.key,
      guess and (" (did you mean '" .. guess .. "'?)") or "")
  end
  if rule.op == "<" then
    if c < rule.limit then return head .. ("%s = %s is below %s"):format(rule.key, show(c), show(rule.limit)) end
    return nil
  elseif rule.op == ">" then
    if c > rule.limit then return head .. ("%s = %s is above %s"):format(rule.key, show(c), show(rule.limit)) end
    return nil
  end
  if type(b) ~= "number" or b ~= b then return head .. ("%s has no value in the baseline"):format(rule.key) end
  local change = c - b
  if rule.relative then
    if b == 0 then return head .. ("%s is 0 in the baseline: no relative change"):format(rule.key) end
    change = change / math.abs(b)
  end
  local over = rule.op == "drop" and -change > rule.limit or rule.op == "rise" and change > rule.limit
  if over then
    return head .. ("%s %s from %s to %s (%s%s)"):format(rule.key, rule.op == "drop" and "fell" or "rose",
      show(b), show(c), c - b >= 0 and "+" or "", show(c - b))
  end
  return nil
end

return M
