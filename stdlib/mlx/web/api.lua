--- mlx.web.api: the JSON API of `mlx ui`, read-only, over the Lua tracking
--- API (mlx.track, mlx.track.exp, mlx.registry) — never the database
--- itself, so it answers the same on every tracking backend.
---
---   GET /api/project                  what the project holds; the empty page
---   GET /api/runs?filter=&sort=&limit=&offset=&all=1
---                                      runs as `mlx runs --json`, paged
---   GET /api/runs/ID                   a run: record, metric summary, log tail,
---                                      inputs and outputs with their producers
---   GET /api/runs/ID/metrics/KEY?points=N
---                                      a metric's history, downsampled to N
---   GET /api/history?key=KEY&runs=ID,ID…&points=N
---                                      that history of several runs at once
---   GET /api/exp?filter=&sort=&limit=&offset=&all=1
---                                      the experiments table, as `mlx exp`
---   GET /api/count/runs?filter=&all=1, /api/count/exp?…
---                                      how many match (count=0 above skips it)
---   GET /api/models                    models, versions, aliases, alias history
---   GET /api/graph                     each pipeline of mlx.lock with step states
---   GET /api/graph.svg?pipeline=NAME   the same drawn by Graphviz
---
--- A bad filter or sort answers 400 with the message `mlx runs` prints;
--- an unknown run 404. Values NaN and ±inf are null.
local json = require "mlx.json"
local view = require "mlx.track.view"

local M = {}

-- Page sizes: what one request may ask for.
local DEFAULT_LIMIT, MAX_LIMIT = 50, 1000
-- Points of a metric history sent by default and at most: a chart 2,000
-- pixels wide shows no more.
local DEFAULT_POINTS, MAX_POINTS = 1000, 20000
-- Bytes of a step's log sent with its run.
local LOG_TAIL = 16384

--- Returns the context the handlers share: options of mlx.web.app with the
--- store opened lazily.
function M.context(options)
  return { root = options.root, host = options.host, store = options.store, dot = options.dot,
    chartjs = options.chartjs }
end

local function reply(status, value)
  return status, "json", json.encode(value)
end

local function failure(status, message)
  return reply(status, { error = message })
end

-- The store of the project's tracking database (a file or PostgreSQL, as
-- mlx.track.tracking says), or nil and the reply to give (no database
-- file yet is not an error: the project simply has no runs).
local function store_of(ctx)
  if ctx.store then return ctx.store end
  local track = require "mlx.track"
  local t, err = track.tracking(ctx.root)
  if not t then return nil, err end
  if not t.postgresql then
    local f = io.open(t.target, "rb")
    if not f then return nil end
    f:close()
  end
  local store, oerr = track.open_tracking(t)
  if not store then error(oerr, 0) end
  ctx.store = store
  return store
end

local function finite(v)
  if type(v) == "number" and (v ~= v or v == math.huge or v == -math.huge) then return json.null end
  return v
end

-- Text that json.encode accepts: invalid UTF-8 bytes become U+FFFD.
local function valid_utf8(s)
  if utf8.len(s) then return s end
  local out, i = {}, 1
  while i <= #s do
    local ok, bad = utf8.len(s, i)
    if ok then
      out[#out + 1] = s:sub(i)
      break
    end
    out[#out + 1] = s:sub(i, bad - 1) .. "\u{FFFD}"
    i = bad + 1
  end
  return table.concat(out)
end

local function integer_arg(query, name, default, min, max)
  local text = query[name]
  if text == nil or text == "" then return default end
  local n = math.tointeger(tonumber(text))
  if not n or n < min or n > max then
    error({ status = 400, message = ("%s must be an integer from %d to %d, not '%s'"):format(name, min, max, text) })
  end
  return n
end

local function flag_arg(query, name)
  local v = query[name]
  return v == "1" or v == "true"
end

-- Raises a 400 for a filter or sort that does not parse, in the words of
-- mlx runs.
local function check_query(query)
  local filter = require "mlx.track.filter"
  local ok, err = filter.compile(query.filter or "")
  if not ok then error({ status = 400, message = "filter: " .. err }) end
  if query.sort and query.sort:find("%S") then
    ok, err = filter.order(query.sort)
    if not ok then error({ status = 400, message = "sort: " .. err }) end
  end
end

-- The keys of the params, metrics and tags of rows, sorted, each with the
-- number of rows that have it (the page offers them as columns).
local function columns_of(rows)
  local out = {}
  for _, field in ipairs({ "params", "metrics", "tags" }) do
    local count = {}
    for _, r in ipairs(rows) do
      for k in pairs(r[field]) do count[k] = (count[k] or 0) + 1 end
    end
    local keys = json.array()
    for k, n in pairs(count) do keys[#keys + 1] = { key = k, count = n } end
    table.sort(keys, function(a, b) return a.key < b.key end)
    out[field] = keys
  end
  return out
end

-- /api/runs and /api/exp: one page of rows.
local function list(ctx, query, exp)
  local store = store_of(ctx)
  local total_err
  local limit = integer_arg(query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
  local offset = integer_arg(query, "offset", 0, 0, 100000000)
  if not store then
    return reply(200, { total = 0, offset = offset, limit = limit, runs = json.array(),
      columns = columns_of({}) })
  end
  check_query(query)
  local all = flag_arg(query, "all")
  -- Counting every match costs more than the page at 100,000 runs: the
  -- page asks for it separately (/api/count/…) with count=0 here.
  local counted = query.count ~= "0"
  local rows, total, code
  if exp then
    rows, total, code = require("mlx.track.exp").rows(store, { filter = query.filter, order = query.sort,
      limit = limit, offset = offset, all = all, count = counted })
    if rows and not counted then total = json.null end
  else
    rows, total, code = store:runs { filter = query.filter, order = query.sort, limit = limit, offset = offset,
      hide_noop = not all }
    if rows then
      if counted then
        total, total_err, code = store:count(query.filter, { hide_noop = not all })
        if not total then rows, total = nil, total_err end
      else
        total = json.null
      end
    end
  end
  if not rows then
    if code == "invalid" then error({ status = 400, message = total }) end
    error(total, 0)
  end
  local out = json.array()
  for i, r in ipairs(rows) do out[i] = view.jsonable(r, json) end
  return reply(200, { total = total, offset = offset, limit = limit, runs = out, columns = columns_of(rows) })
end

-- /api/count/runs and /api/count/exp: {total} of the runs or rows matching
-- filter (all=1: with the invocations that executed nothing).
local function count(ctx, query, exp)
  local store = store_of(ctx)
  if not store then return reply(200, { total = 0 }) end
  check_query(query)
  local all = flag_arg(query, "all")
  local total, err, code
  if exp then
    total, err, code = require("mlx.track.exp").count(store, { filter = query.filter, all = all })
  else
    total, err, code = store:count(query.filter, { hide_noop = not all })
  end
  if not total then
    if code == "invalid" then error({ status = 400, message = err }) end
    error(err, 0)
  end
  return reply(200, { total = total })
end

-- The last LOG_TAIL bytes of the log of run, if it lies in the project's
-- .mlx/logs (a path recorded elsewhere is not read).
local function log_tail(ctx, run)
  local path = run.log_path
  if type(path) ~= "string" then return nil end
  local logs = ctx.root .. "/.mlx/logs/"
  if path:sub(1, #logs) ~= logs or path:find("/%.%.?/") or path:find("/%.%.?$") then return nil end
  local f = io.open(path, "rb")
  if not f then return nil end
  local size = f:seek("end")
  f:seek("set", math.max(0, size - LOG_TAIL))
  local text = f:read("a") or ""
  f:close()
  return { text = valid_utf8(text), size = size, truncated = size > LOG_TAIL }
end

local function get_run(ctx, id)
  local store = store_of(ctx)
  if not store then error({ status = 404, message = "no runs yet" }) end
  local run, err, code = store:get(id)
  if not run then error({ status = (code == "notfound" or code == "invalid") and 404 or 500, message = err }) end
  return store, run
end

local function run_detail(ctx, id)
  local store, run = get_run(ctx, id)
  run.metric_summary = assert(store:metric_summary(run.id))
  local lineage = require "mlx.registry.lineage"
  for _, a in ipairs(run.artifacts) do
    -- Inputs link to the run that wrote them; outputs to the runs that
    -- read them next are left to the producer's page.
    if a.role == "in" and a.hash then a.producer = lineage.producer(store, a.hash) end
  end
  local out = view.jsonable(run, json)
  out.log = log_tail(ctx, run)
  -- The curves of the run: its own metrics', and for a recipe run its
  -- steps' too, the step that started last winning as in mlx exp.
  local curves = {}
  for _, m in ipairs(run.metric_summary) do curves[m.key] = { key = m.key, run = run.id, count = m.count } end
  local steps = json.array()
  for _, child in ipairs(run.children) do
    local c = store:get(child)
    if c then
      steps[#steps + 1] = { id = c.id, step = c.step, status = c.status, duration = c.duration }
      for _, m in ipairs(assert(store:metric_summary(c.id))) do
        curves[m.key] = { key = m.key, run = c.id, count = m.count }
      end
    end
  end
  out.steps = steps
  local list = json.array()
  for _, c in pairs(curves) do list[#list + 1] = c end
  table.sort(list, function(a, b) return a.key < b.key end)
  out.curves = list
  -- A recipe run is shown with its steps' params and final metrics, as
  -- its row of the experiments table.
  if not run.parent then
    local row = require("mlx.track.exp").row(store, run.id)
    if row then out.joined = { params = json.object(row.params), metrics = view.jsonable(row, json).metrics } end
  end
  return reply(200, out)
end

--- Returns at most n points of history (sorted by step), keeping the first
--- and last and, of each of n/2 buckets of equal width in steps… in
--- position, the minimum and the maximum: a curve keeps its peaks and
--- troughs. Each point is {step, value, ts}.
function M.downsample(history, n)
  local total = #history
  if total <= n then return history end
  local out = { history[1] }
  local buckets = math.max(1, (n - 2) // 2)
  local width = (total - 2) / buckets
  for b = 0, buckets - 1 do
    local first = 2 + math.floor(b * width)
    local last = math.min(total - 1, 1 + math.floor((b + 1) * width))
    local lo, hi
    for i = first, last do
      local v = history[i].value
      if v == v then
        if not lo or v < history[lo].value then lo = i end
        if not hi or v > history[hi].value then hi = i end
      end
    end
    if lo and hi then
      if lo == hi then
        out[#out + 1] = history[lo]
      elseif lo < hi then
        out[#out + 1] = history[lo]
        out[#out + 1] = history[hi]
      else
        out[#out + 1] = history[hi]
        out[#out + 1] = history[lo]
      end
    end
  end
  out[#out + 1] = history[total]
  return out
end

local function metric(ctx, id, key, query)
  local store, run = get_run(ctx, id)
  local n = integer_arg(query, "points", DEFAULT_POINTS, 10, MAX_POINTS)
  local history = assert(store:metric_history(run.id, key))
  local shown = M.downsample(history, n)
  local steps, values, times = json.array(), json.array(), json.array()
  for i, p in ipairs(shown) do
    steps[i], values[i], times[i] = p.step, finite(p.value), p.ts
  end
  return reply(200, { run = run.id, key = key, status = run.status, total = #history, downsampled = #shown < #history,
    steps = steps, values = values, times = times })
end

-- Runs one request may ask the history of (compare sends one per metric).
local MAX_SERIES = 200

-- /api/history?key=K&runs=ID,ID…: the history of metric K of each run, as
-- /api/runs/ID/metrics/K gives it, in one request.
local function histories(ctx, query)
  local store = store_of(ctx)
  if not store then error({ status = 404, message = "no runs yet" }) end
  local key = query.key
  if not key or key == "" then error({ status = 400, message = "key: the metric is missing" }) end
  local n = integer_arg(query, "points", DEFAULT_POINTS, 10, MAX_POINTS)
  local series = json.array()
  for id in (query.runs or ""):gmatch("[^,]+") do
    if #series == MAX_SERIES then
      error({ status = 400, message = ("runs: at most %d runs in one request"):format(MAX_SERIES) })
    end
    local _, run = get_run(ctx, id)
    local history = assert(store:metric_history(run.id, key))
    local shown = M.downsample(history, n)
    local steps, values = json.array(), json.array()
    for i, p in ipairs(shown) do steps[i], values[i] = p.step, finite(p.value) end
    series[#series + 1] = { run = run.id, total = #history, steps = steps, values = values }
  end
  return reply(200, { key = key, series = series })
end

local function models(ctx)
  local store = store_of(ctx)
  if not store then return reply(200, json.array()) end
  if not ctx.registry then
    local err
    ctx.registry, err = require("mlx.registry").open(ctx.root)
    if not ctx.registry then error(err, 0) end
  end
  local reg = ctx.registry
  local list = assert(reg:models())
  local out = json.array()
  for _, m in ipairs(list) do
    local versions = json.array()
    for _, v in ipairs(assert(reg:versions(m.name))) do
      local producer = v.run and store:get(v.run)
      local inputs = json.array()
      if producer then
        for _, a in ipairs(producer.artifacts) do
          if a.role == "in" then
            inputs[#inputs + 1] = { path = a.path, hash = a.hash, producer = a.hash and
              require("mlx.registry.lineage").producer(store, a.hash) }
          end
        end
      end
      local metrics = reg:metrics(v) or {}
      local shown = json.object()
      for k, val in pairs(metrics) do shown[k] = finite(val) end
      versions[#versions + 1] = { version = v.version, ref = v.ref, hash = v.hash, type = v.type, size = v.size,
        path = v.path, run = v.run, recipe_run = producer and producer.parent, created = v.created,
        description = v.description, aliases = json.array(v.aliases or {}), tags = json.object(v.tags or {}),
        metrics = shown, inputs = inputs }
    end
    local history = json.array()
    for _, h in ipairs(assert(reg:alias_history(m.name))) do history[#history + 1] = h end
    out[#out + 1] = { name = m.name, created = m.created, latest = m.latest, aliases = json.object(m.aliases),
      versions = versions, history = history }
  end
  return reply(200, out)
end

local function project(ctx)
  local store = store_of(ctx)
  local graph = require "mlx.web.graph"
  local runs = store and assert(store:count(nil, { hide_noop = true })) or 0
  local lock_ok, pipelines = pcall(graph.pipelines, ctx.root)
  local chartjs = ctx.chartjs or os.getenv("MLX_WEB_CHARTJS") or require("mlx.web").CHARTJS
  local f = io.open(chartjs, "rb")
  if f then f:close() end
  return reply(200, { root = ctx.root, name = ctx.root:match("([^/]+)/*$") or ctx.root, runs = runs,
    pipelines = lock_ok and #pipelines or 0, chartjs = f ~= nil, dot = graph.dot_program(ctx) ~= nil,
    version = require("mlx").version })
end

-- The route of path, with its captures; nil if none.
local function route(ctx, path, query)
  if path == "/api/project" then return project(ctx) end
  if path == "/api/runs" then return list(ctx, query, false) end
  if path == "/api/exp" then return list(ctx, query, true) end
  if path == "/api/count/runs" then return count(ctx, query, false) end
  if path == "/api/count/exp" then return count(ctx, query, true) end
  if path == "/api/models" then return models(ctx) end
  if path == "/api/history" then return histories(ctx, query) end
  if path == "/api/graph" then return require("mlx.web.graph").json(ctx, store_of(ctx)) end
  if path == "/api/graph.svg" then return require("mlx.web.graph").svg(ctx, store_of(ctx), query.pipeline) end
  local id, key = path:match("^/api/runs/(%w+)/metrics/(.+)$")
  if id then return metric(ctx, id, key, query) end
  id = path:match("^/api/runs/(%w+)$")
  if id then return run_detail(ctx, id) end
  return nil
end

--- Answers the API request for path with the (decoded) query table:
--- returns status, a type name of mlx.web.TYPES ("json", "svg"), body.
--- Raises on failures of the world (the database), which mlx.web answers
--- with 500.
function M.handle(ctx, path, query)
  local ok, status, ctype, body = pcall(route, ctx, path, query)
  if not ok then
    if type(status) == "table" and status.status then return failure(status.status, status.message) end
    error(status, 0)
  end
  if not status then return failure(404, "no such API route: " .. path) end
  return status, ctype, body
end

return M
