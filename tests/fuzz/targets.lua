--- The Lua fuzz targets of tests/fuzz/fuzz.c. This chunk returns
--- function(target, dir) -> function(input): the setup of one target, made
--- once in the temporary directory dir, returning the function each input is
--- given to. That function returns when the code under test did what its
--- documentation says, for bad input too ("nil, message, 'invalid'"), and
--- raises otherwise; any error escaping it, including a Lua error inside the
--- code under test ("attempt to index a nil value"), is a finding.
local fs = require "mlx.fs"
local json = require "mlx.json"

-- Raises a finding unless ok.
local function check(ok, fmt, ...)
  if not ok then error(fmt:format(...), 2) end
end

local function shown(s)
  s = tostring(s)
  if #s > 300 then s = s:sub(1, 300) .. "…" end
  return ("%q"):format(s)
end

local function one_line(msg)
  return type(msg) == "string" and msg ~= "" and not msg:find("[\r\n]")
end

-- JSON values equal, arrays and objects told apart.
local function same(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) == "number" then return math.type(a) == math.type(b) and a == b end
  if type(a) ~= "table" then return a == b end
  if getmetatable(a) ~= getmetatable(b) then return false end
  for k, v in pairs(a) do
    if not same(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

-- Messages of Lua itself, which mean a bug wherever they show up, unless
-- they are the input quoted back (libFuzzer learns these strings from the
-- comparisons below and puts them in inputs).
local LUA_ERRORS = { "attempt to ", "bad argument #", "stack overflow", "table index is " }

local function lua_bug(msg, input)
  if type(msg) ~= "string" then return false end
  for _, text in ipairs(LUA_ERRORS) do
    if msg:find(text, 1, true) and not input:find(text, 1, true) then return true end
  end
  return false
end

local targets = {}

--- mlx.lock: lock.read, as every command reads the lock (with the pipeline's
--- "steps" validator, as `mlx recipe` has it). What reads is written back
--- with lock.write and must read back the same.
function targets.lock(dir)
  local lock = require "mlx.lock"
  require "mlx.pipeline.engine"
  local root = dir .. "/lock"
  assert(fs.mkdirs(root))
  local file = lock.path(root)
  return function(input)
    assert(fs.write(file, input))
    local doc, err, code = lock.read(root)
    if doc == nil then
      check(code == "invalid", "lock.read: code %s for %s", shown(code), shown(err))
      check(one_line(err), "lock.read: the message is not one line: %s", shown(err))
      check(err:find(file, 1, true) == 1, "lock.read: the message does not name the file: %s", shown(err))
      check(not lua_bug(err, input), "lock.read: %s", err)
      return
    end
    check(type(doc) == "table" and math.type(doc.version) == "integer", "lock.read returned %s", shown(doc))
    local copy = json.decode(json.encode(doc))
    copy.version = lock.VERSION -- lock.write writes its own version
    assert(lock.write(root, doc))
    local again, aerr = lock.read(root)
    check(again ~= nil, "a lock written back does not read: %s", shown(aerr))
    check(same(copy, again), "a lock written back reads differently: %s", shown(json.encode(again)))
  end
end

--- The run-cache: runcache.lookup of an entry for a step with two outs,
--- in a store holding a file and a directory; what it returns is restored.
function targets.runcache(dir)
  local lock = require "mlx.lock"
  local runcache = require "mlx.pipeline.runcache"
  local store = require "mlx.store"
  local root = dir .. "/runcache"
  assert(fs.mkdirs(root .. "/.mlx/tmp") and fs.mkdirs(root .. "/stored/dir"))
  assert(fs.write(root .. "/stored/a.txt", "a\n"))
  assert(fs.write(root .. "/stored/dir/x", "a\n"))
  local st = assert(store.open(root))
  assert(st:put("stored/a.txt") and st:put("stored/dir") and st:commit())
  local k = ("ab"):rep(32)
  local entry = ("%s/.mlx/cache/runs/ab/%s.json"):format(root, k)
  assert(fs.mkdirs(entry:match("^(.*)/")))
  local step = { name = "train", outs = { "model.bin", "work/split/" } }
  local declared = {}
  for _, out in ipairs(step.outs) do declared[out] = true end
  return function(input)
    assert(fs.write(entry, input))
    local outs = runcache.lookup(root, st, k, step)
    if outs == nil then return end
    check(type(outs) == "table", "runcache.lookup returned %s", shown(outs))
    for path, r in pairs(outs) do
      check(declared[path], "runcache.lookup returned an out the step does not declare: %s", shown(path))
      local why = lock.entry_problem(r)
      check(why == nil, "runcache.lookup returned a bad record for %s: %s", path, shown(why))
      check(st:has(r.hash), "runcache.lookup returned %s, which the store does not have", r.hash)
    end
    for out in pairs(declared) do check(outs[out], "runcache.lookup left out %s", out) end
    local ok, err, code = runcache.restore(root, st, outs, "copy")
    check(ok or (one_line(err) and type(code) == "string" and not lua_bug(err, input)),
      "runcache.restore: %s (%s)", shown(err), shown(code))
  end
end

--- Events: each line of the input ingested by a reader into a run of a real
--- runs database. Artifact events are measured in dir/events, where a file
--- and a directory exist; a path leaving it (absolute or with "..") is
--- reported missing instead of measured, as measuring / would take hours.
function targets.events(dir)
  local track = require "mlx.track"
  local events = require "mlx.track.events"
  local root = dir .. "/events"
  assert(fs.mkdirs(root .. "/d"))
  assert(fs.write(root .. "/f", "f\n") and fs.write(root .. "/d/g", "g\n"))
  local measure = track.measure_artifact
  track.measure_artifact = function(path)
    if path:sub(1, #root + 1) ~= root .. "/" or path:find("/%.%.$") or path:find("/%.%./") then
      return nil, path .. ": not found in the fuzz directory", "notfound"
    end
    return measure(path)
  end
  local db = assert(track.open(root .. "/runs.db"))
  local run = assert(db:start_run { git = false })
  return function(input)
    local reported = {}
    local reader = events.reader(run, root .. "/events.jsonl", {
      dir = root,
      on_malformed = function(line, text, why) reported[#reported + 1] = { line, text, why } end,
    })
    local n = 0
    for line in (input .. "\n"):gmatch("([^\n]*)\n") do n = n + reader:ingest(line) end
    check(n == reader.events, "ingest counted %d events, the reader %d", n, reader.events)
    for _, r in ipairs(reported) do
      check(type(r[3]) == "string" and not lua_bug(r[3], r[2]), "line %d %s: %s", r[1], shown(r[2]), shown(r[3]))
    end
    local ok, err = run:flush()
    check(ok, "run:flush after ingesting: %s", shown(err))
  end
end

--- The runs filter: filter.compile and filter.order, then the query they
--- make, on a runs database with runs that have params, metrics and tags.
--- Bad input is nil, "column N: …", "invalid"; what compiles must run.
function targets.filter(dir)
  local filter = require "mlx.track.filter"
  local track = require "mlx.track"
  local db = assert(track.open(dir .. "/runs.db"))
  for i = 1, 3 do
    local run = assert(db:start_run { git = false, params = { lr = i / 10, opt = "adam" .. i },
      tags = { team = "vision" } })
    assert(run:log_metric("acc", i / 4, 1))
    assert(run:finish(i == 2 and "FAILED" or "FINISHED"))
  end
  local function compiled(what, sql, params, code)
    if sql == nil then
      check(code == "invalid", "filter.%s: code %s for %s", what, shown(code), shown(params))
      check(one_line(params) and params:find("^column %d+: "), "filter.%s: message %s", what, shown(params))
      return false
    end
    check(type(sql) == "string" and type(params) == "table", "filter.%s returned %s", what, shown(sql))
    return true
  end
  return function(input)
    if compiled("compile", filter.compile(input)) then
      local rows, err, code = db:runs { filter = input }
      check(rows ~= nil, "the query of filter %s fails: %s (%s)", shown(input), shown(err), shown(code))
    end
    if input:find("%S") and compiled("order", filter.order(input)) then
      local rows, err, code = db:runs { order = input }
      check(rows ~= nil, "the query of order %s fails: %s (%s)", shown(input), shown(err), shown(code))
    end
  end
end

return function(target, dir)
  local setup = targets[target]
  if not setup then error("no Lua fuzz target " .. tostring(target)) end
  return setup(dir)
end
