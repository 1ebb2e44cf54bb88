--- mlx.track: experiment tracking (DESIGN §5). Every recipe and step is a
--- run in the project's .mlx/runs.db (SQLite): params, metrics with steps,
--- tags, artifacts with hashes, git context, status, times and resources.
---
---     local track = require "mlx.track"
---     local run <close> = assert(track.start_run { recipe = "train.lua" })
---     run:log_params { lr = 0.1, epochs = 10 }
---     for epoch = 1, 10 do run:log_metric("loss", train_one(epoch), epoch) end
---     -- leaving the scope finishes it: FINISHED, or FAILED with the error
---
--- A run handle is an mlx.Run (see mlx.rundb): run.id, run.status and the
--- methods log_metric, log_metrics, log_param(s), set_tag(s),
--- log_artifact, flush and finish. Queries return runs as plain tables.
local core = require "mlx.core"
local filter = require "mlx.track.filter"
local fs = require "mlx.fs"
local hash = require "mlx.hash"
local project = require "mlx.project"
local redact = require "mlx.redact"
local rundb = require "mlx.rundb"

local M = {}

--- The statuses of a run.
M.STATUSES = { "RUNNING", "FINISHED", "FAILED", "KILLED", "CACHED" }

--- Returns the path of the runs database used here: $MLX_RUNS_DB if set,
--- else .mlx/runs.db in the project root (the nearest directory upwards
--- from start, default the working directory, holding .mlx/). Outside a
--- project returns nil, "not in an mlx project (run 'mlx init')", "notfound".
function M.database_path(start)
  local env = os.getenv("MLX_RUNS_DB")
  if env and env ~= "" then return env end
  local root = project.find_root(start)
  if not root then return nil, "not in an mlx project (run 'mlx init')", "notfound" end
  return root .. "/.mlx/runs.db"
end

--- Whether target (a tracking URI or a path) names a PostgreSQL database:
--- a postgresql:// or postgres:// URI, or a libpq keyword string
--- ("host=/run/pg dbname=mlx").
function M.is_postgresql(target)
  return type(target) == "string" and (target:match("^postgresql://") ~= nil or target:match("^postgres://") ~= nil
    or target:match("^%s*%a+%s*=") ~= nil)
end

-- A project's config files, read as mlx reads them elsewhere: Lua chunks
-- with access to nothing, returning a table. Returns config, local config
-- (empty tables where missing), or nil, message for a broken one.
local function read_configs(root)
  local out = {}
  for i, file in ipairs({ "config.lua", "config.local.lua" }) do
    local path = root .. "/.mlx/" .. file
    out[i] = {}
    if fs.stat(path) then
      local chunk, err = loadfile(path, "t", {})
      local ok, config = false, err
      if chunk then ok, config = pcall(chunk) end
      if not ok or type(config) ~= "table" then
        return nil, ("%s: %s"):format(path, ok and "must return a table" or tostring(config))
      end
      out[i] = config
    end
  end
  return out[1], out[2]
end

--- The schema of the project with id project in a PostgreSQL database.
function M.project_schema(id)
  return "mlx_" .. (id or "default")
end

--- Returns where the tracking database of the project at start (default
--- the working directory) is: {uri or path, postgresql (boolean), project
--- (the id, or nil), password, shown (as messages show it: no password)}.
--- The first of $MLX_TRACKING_URI, `tracking` in .mlx/config.lua (or
--- config.local.lua, which wins), $MLX_RUNS_DB and .mlx/runs.db. The
--- project id is `project` in .mlx/config.lua; the password of a
--- PostgreSQL database `tracking_password` in .mlx/config.local.lua. Returns
--- nil, message, code outside a project (with no URI set) or for a bad
--- setting ("invalid").
function M.tracking(start)
  local root = project.find_root(start)
  local config, local_config = {}, {}
  if root then
    config, local_config = read_configs(root)
    if not config then return nil, local_config, "invalid" end
  end
  -- A shared database is scoped by project: outside one, only
  -- $MLX_RUNS_DB (a file of its own) is tracked into.
  local target = root and os.getenv("MLX_TRACKING_URI")
  local source = "MLX_TRACKING_URI"
  if not target or target == "" then
    target = local_config.tracking or config.tracking
    source = ("%s/.mlx/%s: tracking"):format(root, local_config.tracking and "config.local.lua" or "config.lua")
  end
  if target ~= nil and (type(target) ~= "string" or target == "") then
    return nil, ("%s/.mlx/config.lua: tracking must be a path or a postgresql:// URI"):format(root), "invalid"
  end
  -- A mistyped scheme ("postgre://", "postgresq://") would otherwise be
  -- an SQLite file of that name, or a libpq database name.
  local scheme = type(target) == "string" and target:match("^(%a[%w+.-]*)://")
  if scheme and scheme ~= "postgresql" and scheme ~= "postgres" and scheme ~= "sqlite" then
    return nil, ("%s: '%s' is neither a postgresql:// URI nor a path to an SQLite file (or sqlite:///path)")
      :format(source, redact.text(target)), "invalid"
  end
  if not target then
    local path, err, code = M.database_path(start)
    if not path then return nil, err, code end
    target = path
  end
  local id = config.project
  if id ~= nil and (type(id) ~= "string" or not id:match("^[a-z0-9_]+$") or #id > 40) then
    return nil, ("%s/.mlx/config.lua: project must be 1 to 40 lowercase letters, digits or _ (mlx init writes"
      .. " one)"):format(root), "invalid"
  end
  local t = { target = target, postgresql = M.is_postgresql(target), project = id,
    shown = redact.text(target), password = local_config.tracking_password }
  if not t.postgresql then t.target = target:gsub("^sqlite://", "") end
  return t
end

-- The context as git itself reports it, or nil when git cannot be run or
-- fails (not installed, too old for porcelain v2, a repository it refuses).
-- One `git status` gives commit, branch and tracked changes in 2-3 ms, where
-- opening the repository with libgit2 costs about 10 ms more: Debian's
-- libgit2 parses the whole CA bundle when it initialises, even to read a
-- local repository. --no-optional-locks keeps it from taking the index lock
-- (to refresh the index) behind the user's own git commands.
local function git_cli_context(dir)
  local okp, proc = pcall(require, "mlx.proc")
  if not okp then return nil end
  local ok, result = pcall(proc.run, { "git", "--no-optional-locks", "status", "--porcelain=v2", "--branch",
    "--untracked-files=no", "-z", cwd = dir, stdout = "capture", stderr = "null" })
  if not ok or not result then return nil end
  local context, headers = { dirty = false }, 0
  -- Headers ("# branch.oid X", "# branch.head Y") come first; any record
  -- after them is a changed tracked path. Only the headers are read: a
  -- renamed path's original name is a record of its own and may look like
  -- anything.
  for record in result.stdout:gmatch("([^%z]*)%z") do
    if record:sub(1, 2) ~= "# " then
      context.dirty = true
      break
    end
    local key, value = record:match("^# branch%.(%a+) (.*)$")
    headers = headers + 1
    if key == "oid" and value:match("^%x+$") then context.commit = value end
    if key == "head" and value ~= "(detached)" then context.branch = value end
  end
  if headers == 0 then return nil end -- not the output this parser knows
  return context
end

-- The context read with libgit2 (mlx.git): the way when git is not there.
local function git_library_context(dir)
  local ok, git = pcall(require, "mlx.git")
  if not ok or type(git) ~= "table" or type(git.open) ~= "function" then return {} end
  local okopen, repo = pcall(git.open, dir)
  if not okopen or not repo then return {} end
  local context = {}
  local okhead, head = pcall(repo.head, repo)
  if okhead and type(head) == "table" then context.commit, context.branch = head.commit, head.branch end
  local okdirty, dirty = pcall(repo.is_dirty, repo)
  if okdirty and type(dirty) == "boolean" then context.dirty = dirty end
  pcall(repo.close, repo)
  return context
end

--- Returns {commit, branch, dirty} of the git work tree holding dir (default
--- "."); the fields are nil outside a work tree, in a repository without
--- commits, or when neither git nor the mlx.git module can tell. Never fails.
function M.git_context(dir)
  -- Outside any repository, do not pay for starting git: look for .git
  -- upwards first, as git itself does (GIT_DIR aside).
  if not os.getenv("GIT_DIR") then
    local at = dir or "."
    if at:sub(1, 1) ~= "/" then at = (fs.cwd() or ".") .. "/" .. at end
    local found = false
    while at and at ~= "" do
      if fs.stat(at .. "/.git") then found = true break end
      at = at:match("^(.*)/[^/]*$")
    end
    if not found then return {} end
  end
  return git_cli_context(dir or ".") or git_library_context(dir or ".")
end

-- ---- runs started in this process -------------------------------------------

-- The runs started through this module, innermost last; weak, so that a
-- forgotten handle is still collected (and recorded FAILED by its __gc).
local started = setmetatable({}, { __mode = "v" })
local nstarted = 0

--- Returns the innermost run started in this process that is still
--- RUNNING (the one mlx.log writes to), or nil.
function M.current()
  for i = nstarted, 1, -1 do
    local run = started[i]
    if run and run.status == "RUNNING" then return run end
    started[i] = nil
    nstarted = i - 1
  end
  return nil
end

--- Finishes the runs started in this process after the run outer (all of
--- them if outer is nil) that are still RUNNING, innermost first, with
--- status and opts as for run:finish. Returns the number finished. The
--- recipe runner calls it when a recipe ends, for runs the recipe left open.
function M.finish_open(status, opts, outer)
  local n = 0
  for i = nstarted, 1, -1 do
    local run = started[i]
    if run and run == outer then break end
    if run and run.status == "RUNNING" then
      run:finish(status, opts)
      n = n + 1
    end
    started[i] = nil
    nstarted = i - 1
  end
  return n
end

-- ---- the methods mlx.Run gets from Lua ---------------------------------------

local function walk(dir, acc)
  for _, name in ipairs(fs.list(dir) or {}) do
    local path = dir .. "/" .. name
    local st = fs.stat(path)
    if st and st.type == "directory" then
      walk(path, acc)
    elseif st and st.type == "file" then
      acc.nfiles, acc.size = acc.nfiles + 1, acc.size + st.size
    end
  end
  return acc
end

--- Returns what mlx records of an artifact at path: {hash, size, nfiles} —
--- a file's SHA-256, size and 1; a directory's total size and number of
--- files (its manifest hash is recorded by the pipeline, which stores it).
--- Returns nil, message, code if path does not exist or cannot be read.
function M.measure_artifact(path)
  local st, err, code = fs.stat(path)
  if not st then return nil, err, code end
  if st.type == "directory" then
    local acc = walk(path, { nfiles = 0, size = 0 })
    return { size = acc.size, nfiles = acc.nfiles }
  end
  local digest, size, hcode = hash.file(path)
  if not digest then return nil, size, hcode end
  return { hash = digest, size = size, nfiles = 1 }
end

-- Every text mlx records of a run — its command line, params, tags and end
-- message — passes through mlx.redact, so a URL with a token in its query
-- string is stored with the token hidden. The backend's methods are
-- wrapped here, where the policy lives, and so is __close, which records
-- the error that ended a run's scope.
local function redact_values(values)
  if type(values) ~= "table" then return values end
  local copy = {}
  for k, v in pairs(values) do copy[k] = redact.text(v) end
  return copy
end

local extended = {}

--- Adds the Lua methods of runs (log_artifact, and the redaction of what
--- they record) to Run, the methods table of a backend's runs (mlx.rundb.Run,
--- mlx.track.pg.Run). Idempotent.
function M.extend_runs(Run)
  if extended[Run] then return end
  extended[Run] = true

  --- run:log_artifact(path[, role]) records a file or directory the run read
  --- (role "in") or wrote ("out", the default), measured by
  --- M.measure_artifact. Returns true; nil, message, code if path does not
  --- exist or cannot be read.
  function Run:log_artifact(path, role)
    assert(type(path) == "string", "log_artifact: path must be a string")
    local facts, err, code = M.measure_artifact(path)
    if not facts then return nil, err, code end
    facts.role, facts.path = role or "out", path
    return self:record_artifact(facts)
  end

  local c_log_param, c_log_params, c_set_tag, c_set_tags, c_finish =
    Run.log_param, Run.log_params, Run.set_tag, Run.set_tags, Run.finish

  function Run:log_param(key, value) return c_log_param(self, key, redact.text(value)) end
  function Run:log_params(values) return c_log_params(self, redact_values(values)) end
  function Run:set_tag(key, value) return c_set_tag(self, key, redact.text(value)) end
  function Run:set_tags(values) return c_set_tags(self, redact_values(values)) end

  function Run:finish(status, opts)
    if type(opts) == "table" and type(opts.message) == "string" then
      local copy = {}
      for k, v in pairs(opts) do copy[k] = v end
      copy.message = redact.text(opts.message)
      opts = copy
    end
    return c_finish(self, status, opts)
  end
end

M.extend_runs(rundb.Run)

-- Replaces __close of the runs' metatable (reached through a run) by one
-- that hides secrets in the error it records; once per metatable.
local close_wrapped = setmetatable({}, { __mode = "k" })
local function wrap_close(run)
  local meta = getmetatable(run)
  if type(meta) ~= "table" or close_wrapped[meta] then return end
  close_wrapped[meta] = true
  local c_close = meta.__close
  meta.__close = function(r, err)
    if err ~= nil then err = redact.text(tostring(err)) end
    return c_close(r, err)
  end
end

-- ---- a database --------------------------------------------------------------

local Store = {}
Store.__index = Store

local default_store -- the project's database, once opened

--- Opens the runs database at path (created if missing; nil: the project's
--- tracking database, M.tracking, which may be PostgreSQL), marking KILLED the
--- runs of this host whose process died. Returns a store with the methods
--- start_run, runs, count, get, resolve, metric_history, metric_summary,
--- set_tag, delete_tag, delete, copy_metrics, step_producer, flush and
--- close; or nil, message, code. options: see mlx.rundb.open.
---
--- When the database cannot be written (a full disk, a read-only mount or
--- file), it is opened read-only, so that queries still answer: dead runs
--- are then left RUNNING (marked on the next writable open), and
--- start_run fails with the error of the writable open. store.read_only is
--- that error then, else nil.
function M.open(path, options)
  if path == nil then
    -- The project's tracking database, wherever M.tracking says it is.
    local t, err, code = M.tracking()
    if not t then return nil, err, code end
    return M.open_tracking(t, options)
  end
  if M.is_postgresql(path) then return M.open_postgresql(path, options) end
  local db, err, code = rundb.open(path, options)
  local write_err, write_code
  if not db then
    write_err, write_code = err, code
    local ro = { read_only = true }
    for k, v in pairs(options or {}) do
      if k ~= "read_only" then ro[k] = v end
    end
    db = rundb.open(path, ro)
    if not db then return nil, err, code end
  end
  return setmetatable({ db = db, path = path, read_only = write_err, read_only_code = write_code,
    open_runs = setmetatable({}, { __mode = "k" }) }, Store)
end

--- Opens the PostgreSQL tracking database at uri (mlx.track.pg) as a
--- store, as M.open does a file. options: those of mlx.track.pg.open, and
--- project (the project id whose schema holds the runs). Returns a store
--- or nil, message, code.
function M.open_postgresql(uri, options)
  options = options or {}
  local pgdb = require "mlx.track.pg"
  M.extend_runs(pgdb.Run)
  local opts = {}
  for k, v in pairs(options) do opts[k] = v end
  opts.schema = opts.schema or M.project_schema(options.project)
  opts.shown = opts.shown or redact.text(uri)
  local db, err, code = pgdb.open(uri, opts)
  if not db then return nil, redact.text(err), code end
  return setmetatable({ db = db, path = opts.shown, postgresql = true,
    open_runs = setmetatable({}, { __mode = "k" }) }, Store)
end

--- Starts a RUNNING run; returns its mlx.Run handle (use it as a <close>
--- variable) or nil, message, code. info fields, all optional: parent (a
--- run or its id; default: the current run, if it is of this database;
--- false for none), recipe, recipe_hash, step, step_key, command,
--- log_path, params, tags (tables), git ({commit, branch, dirty}; false for
--- none; default: M.git_context of the working directory), with_ends (true:
--- the runs ended with run:finish(status, {buffered = true}) are written
--- with this start, so that what it starts finds them ended).
function Store:start_run(info)
  info = info or {}
  assert(type(info) == "table", "start_run: expected a table of run fields")
  if self.read_only then return nil, self.read_only, self.read_only_code end
  local parent = info.parent
  if parent == nil then
    local current = M.current()
    parent = current and self.open_runs[current] and current.id or nil
  end
  if type(parent) == "userdata" or type(parent) == "table" then parent = parent.id end -- a run of either backend
  if parent == false then parent = nil end
  local git = info.git
  if git == nil then git = M.git_context(".") elseif git == false then git = {} end
  local run, err, code = self.db:start_run {
    parent = parent, recipe = info.recipe, recipe_hash = info.recipe_hash, step = info.step,
    step_key = info.step_key, command = redact.text(info.command), log_path = info.log_path,
    git_commit = git.commit, git_branch = git.branch, git_dirty = git.dirty, with_ends = info.with_ends,
  }
  if not run then return nil, err, code end
  wrap_close(run)
  if info.params and next(info.params) ~= nil then run:log_params(info.params) end
  if info.tags and next(info.tags) ~= nil then run:set_tags(info.tags) end
  self.open_runs[run] = true
  nstarted = nstarted + 1
  started[nstarted] = run
  return run
end

--- Writes what is buffered. Returns true or nil, message, code.
function Store:flush()
  return self.db:flush()
end

--- Closes the database, writing what is buffered; a run of it still
--- RUNNING ends FAILED ("its database was closed while it ran"). Returns
--- true or nil, message, code.
function Store:close()
  for run in pairs(self.open_runs) do
    if run.status == "RUNNING" then
      run:finish("FAILED", { message = "its database was closed while it ran" })
    end
  end
  self.open_runs = {}
  if default_store == self then default_store = nil end
  return self.db:close()
end

local function nan_if_nil(v)
  if v == nil then return 0 / 0 end
  return v
end

-- A row of `runs` as the run record queries return.
local function record(row, now_ms)
  local dirty
  if row.git_dirty ~= nil then dirty = row.git_dirty ~= 0 end
  return {
    id = row.id, parent = row.parent_id, recipe = row.recipe, recipe_hash = row.recipe_hash,
    step = row.step, step_key = row.step_key, status = row.status, message = row.message,
    start_time = row.start_time, end_time = row.end_time,
    duration = ((row.end_time or now_ms) - row.start_time) / 1000,
    exit_code = row.exit_code, signal = row.signal,
    git = { commit = row.git_commit, branch = row.git_branch, dirty = dirty },
    host = row.host, user = row.user, pid = row.pid, command = row.command, log_path = row.log_path,
    cpu_seconds = row.cpu_seconds, wall_seconds = row.wall_seconds, peak_rss = row.peak_rss,
    params = {}, metrics = {}, tags = {},
  }
end

-- Where attach reads each field by default: the run's own rows.
local OWN_ROWS = {
  metrics = "SELECT run_id, key, value FROM latest_metrics",
  params = "SELECT run_id, key, value FROM params",
  tags = "SELECT run_id, key, value FROM tags",
}

--- Fills the params, metrics (latest values, NaN for a NULL) and tags of
--- records (each with an id and empty params, metrics and tags tables), a
--- few hundred runs per query; from (optional) maps each of the three
--- fields to the query, up to its WHERE, that yields (run_id, key, value)
--- (mlx.track.exp reads a recipe run's steps' values that way). Returns
--- records, or nil, message, code.
function M.attach(db, records, from)
  from = from or OWN_ROWS
  local by_id = {}
  for _, r in ipairs(records) do by_id[r.id] = r end
  local CHUNK = 500
  for first = 1, #records, CHUNK do
    local ids, marks = {}, {}
    for i = first, math.min(first + CHUNK - 1, #records) do
      ids[#ids + 1] = records[i].id
      marks[#marks + 1] = "?"
    end
    local within = " WHERE run_id IN (" .. table.concat(marks, ",") .. ")"
    for field, select in pairs(from) do
      local rows, err, code = db:query(select .. within, ids)
      if not rows then return nil, err, code end
      for _, row in ipairs(rows) do
        by_id[row.run_id][field][row.key] = field == "metrics" and nan_if_nil(row.value) or row.value
      end
    end
  end
  return records
end
local attach = M.attach

local function filter_error(what, message)
  return nil, what .. ": " .. message, "invalid"
end

--- The SQL condition that leaves out the invocations that executed
--- nothing (tagged mlx.noop by mlx recipe), on runs aliased r.
-- NOT IN rather than a correlated NOT EXISTS: the few noop runs are read
-- once into a hash (PostgreSQL) or an ephemeral index (SQLite), not looked
-- up once per run, which halves counting 100,000 runs on PostgreSQL.
M.NOT_NOOP = "r.id NOT IN (SELECT run_id FROM tags WHERE key = 'mlx.noop')"

--- Returns the runs matching query, as records (see get, without
--- artifacts), newest first unless ordered otherwise; or nil, message,
--- code. query fields, all optional: filter (see mlx.track.filter), order
--- ("-metrics.acc, start_time"), limit (default all), offset (with limit:
--- the matching runs to skip first, for paging), hide_noop (leave out
--- the invocations that executed nothing). A filter or order that does not
--- parse returns nil, "filter: column N: …", "invalid".
function Store:runs(query)
  query = query or {}
  assert(type(query) == "table", "runs: expected a table {filter, order, limit, offset}")
  local where, wparams = filter.compile(query.filter or "")
  if not where then return filter_error("filter", wparams) end
  if query.hide_noop then where = "(" .. where .. ") AND " .. M.NOT_NOOP end
  local order, oparams = "", {}
  if query.order and query.order:find("%S") then
    order, oparams = filter.order(query.order)
    if not order then return filter_error("order", oparams) end
    order = order .. ", "
  end
  local params = {}
  table.move(wparams, 1, #wparams, 1, params)
  table.move(oparams, 1, #oparams, #params + 1, params)
  local sql = "SELECT r.* FROM runs r WHERE " .. where .. " ORDER BY " .. order .. "r.start_time DESC, r.id DESC"
  if query.limit and query.limit > 0 then
    sql = sql .. " LIMIT ?"
    params[#params + 1] = math.tointeger(query.limit) or error("runs: limit must be an integer")
    if query.offset and query.offset > 0 then
      sql = sql .. " OFFSET ?"
      params[#params + 1] = math.tointeger(query.offset) or error("runs: offset must be an integer")
    end
  end
  local rows, err, code = self.db:query(sql, params)
  if not rows then return nil, err, code end
  local now = core.now_ms()
  for i, row in ipairs(rows) do rows[i] = record(row, now) end
  return attach(self.db, rows)
end

--- Returns the number of runs matching filter (all runs if nil), without
--- the invocations that executed nothing when options.hide_noop; nil,
--- "filter: column N: …", "invalid" for a filter that does not parse.
function Store:count(filter_text, options)
  local where, params = filter.compile(filter_text or "")
  if not where then return filter_error("filter", params) end
  if options and options.hide_noop then where = "(" .. where .. ") AND " .. M.NOT_NOOP end
  local rows, err, code = self.db:query("SELECT count(*) AS n FROM runs r WHERE " .. where, params)
  if not rows then return nil, err, code end
  return rows[1].n
end

--- Returns the full id of the one run whose id starts with prefix (any
--- case); nil, message, "notfound" if none does; nil, message naming some
--- candidates, "invalid" if several do or prefix cannot be a run id.
function Store:resolve(prefix)
  if type(prefix) ~= "string" or not prefix:match("^%w+$") then
    return nil, ("invalid run id '%s' (run ids are letters and digits)"):format(tostring(prefix)), "invalid"
  end
  prefix = prefix:lower()
  local rows, err, code = self.db:query("SELECT id FROM runs WHERE id >= ?1 AND id < ?1 || '~' ORDER BY id LIMIT 4",
    { prefix })
  if not rows then return nil, err, code end
  if #rows == 0 then return nil, ("no run with id '%s' in %s"):format(prefix, self.path), "notfound" end
  if #rows > 1 then
    local ids = {}
    for i = 1, math.min(#rows, 3) do ids[i] = rows[i].id end
    return nil, ("run id '%s' is ambiguous: %s%s start with it; give more characters"):format(prefix,
      table.concat(ids, ", "), #rows > 3 and ", …" or ""), "invalid"
  end
  return rows[1].id
end

--- Returns the record of the run id (or a unique prefix of it): the fields
--- of runs{} — id, parent, recipe, recipe_hash, step, step_key, status,
--- message, start_time and end_time (ms), duration (s), exit_code, signal,
--- git {commit, branch, dirty}, host, user, pid, command, log_path,
--- cpu_seconds, wall_seconds, peak_rss, params, metrics (latest values),
--- tags — plus artifacts ({role, path, hash, size, nfiles}…) and children
--- (the ids of its step runs). Fails as resolve.
function Store:get(id)
  local full, err, code = self:resolve(id)
  if not full then return nil, err, code end
  local rows
  rows, err, code = self.db:query("SELECT r.* FROM runs r WHERE r.id = ?", { full })
  if not rows then return nil, err, code end
  if not rows[1] then return nil, ("no run with id '%s'"):format(full), "notfound" end
  local r = record(rows[1], core.now_ms())
  local ok
  ok, err, code = attach(self.db, { r })
  if not ok then return nil, err, code end
  rows, err, code = self.db:query("SELECT role, path, hash, size, nfiles FROM artifacts WHERE run_id = ?"
    .. " ORDER BY role, path", { full })
  if not rows then return nil, err, code end
  r.artifacts = rows
  rows, err, code = self.db:query("SELECT id FROM runs WHERE parent_id = ? ORDER BY start_time, id", { full })
  if not rows then return nil, err, code end
  r.children = {}
  for i, row in ipairs(rows) do r.children[i] = row.id end
  return r
end

--- Returns every point of metric key of run id (or a unique prefix), by
--- step: {{step, ts (ms), value}…}, empty if the run has no such metric
--- (NaN values are NaN). Fails as resolve.
function Store:metric_history(id, key)
  assert(type(key) == "string", "metric_history: key must be a string")
  local full, err, code = self:resolve(id)
  if not full then return nil, err, code end
  local rows
  rows, err, code = self.db:query("SELECT step, ts, value FROM metrics WHERE run_id = ? AND key = ? ORDER BY step",
    { full, key })
  if not rows then return nil, err, code end
  for _, row in ipairs(rows) do row.value = nan_if_nil(row.value) end
  return rows
end

--- Returns a summary of each metric of run id (or a unique prefix), sorted
--- by key: {{key, value (latest), step, ts, count, min, max}…}. Fails as
--- resolve.
function Store:metric_summary(id)
  local full, err, code = self:resolve(id)
  if not full then return nil, err, code end
  local rows
  rows, err, code = self.db:query("SELECT l.key, l.value, l.step, l.ts, s.count, s.min, s.max"
    .. " FROM latest_metrics l JOIN (SELECT key, count(*) AS count, min(value) AS min, max(value) AS max"
    .. "   FROM metrics WHERE run_id = ?1 GROUP BY key) s ON s.key = l.key"
    .. " WHERE l.run_id = ?1 ORDER BY l.key", { full })
  if not rows then return nil, err, code end
  for _, row in ipairs(rows) do row.value = nan_if_nil(row.value) end
  return rows
end

--- Sets tag key of run id (or a unique prefix), which may have ended, to
--- value (a string, number or boolean). Returns true; fails as resolve, or
--- nil, message, "invalid" for a key that is empty or too long.
function Store:set_tag(id, key, value)
  local full, err, code = self:resolve(id)
  if not full then return nil, err, code end
  return self.db:set_tag(full, key, value)
end

--- Removes tag key of run id (or a unique prefix). Returns true; nil,
--- message, "notfound" if the run has no such tag; fails as resolve.
function Store:delete_tag(id, key)
  local full, err, code = self:resolve(id)
  if not full then return nil, err, code end
  return self.db:delete_tag(full, key)
end

--- Deletes the runs ids (a list of ids or unique prefixes) and their step
--- runs, with everything recorded of them, all or nothing. Returns the
--- number of runs deleted; fails as resolve, or with nil, message,
--- "invalid" when one is still running or is the run of a model version
--- (the message names the version), deleting nothing.
function Store:delete(ids)
  assert(type(ids) == "table", "delete: expected a list of run ids")
  local full = {}
  for i, id in ipairs(ids) do
    local err, code
    full[i], err, code = self:resolve(id)
    if not full[i] then return nil, err, code end
  end
  return self.db:delete_runs(full)
end

--- Returns the id of the newest FINISHED run of a step with key step_key
--- (else the newest CACHED one, which carries its producer's metrics),
--- other than the run except and other than mlx verify's runs (a check
--- that ran in a copy: its outs and metrics are not the project's); nil if
--- there is none; nil, message, code if the database cannot be read.
function Store:step_producer(step_key, except)
  local rows, err, code = self.db:query("SELECT id FROM runs WHERE step_key = ?1 AND id != ?2"
    .. " AND status IN ('FINISHED', 'CACHED')"
    -- Correlated, so that only the few runs of this key are looked up (by
    -- the tags' primary key): NOT IN would read every tag at each call.
    .. " AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.run_id = runs.id AND t.key = 'mlx.verify')"
    .. " ORDER BY status = 'FINISHED' DESC, start_time DESC, id DESC LIMIT 1",
    { step_key, except or "" })
  if not rows then return nil, err, code end
  return rows[1] and rows[1].id
end

--- Gives run to (an id) the metric points of run from (an id): see
--- mlx_rundb_copy_metrics. Returns true or nil, message, code.
function Store:copy_metrics(to, from)
  return self.db:copy_metrics(to, from)
end

-- ---- the project's database ----------------------------------------------------

--- Opens the tracking database that t (from M.tracking) names: a file,
--- or PostgreSQL with t's project, password and redacted name. options
--- as M.open's (they win over t's). Returns a store or nil, message,
--- code, as M.open.
function M.open_tracking(t, options)
  if t.postgresql then
    local opts = { project = t.project, password = t.password, shown = t.shown }
    for k, v in pairs(options or {}) do opts[k] = v end
    return M.open_postgresql(t.target, opts)
  end
  return M.open(t.target, options)
end

--- Returns the artifact ids of every registered model version, from the
--- project's tracking database wherever it is (a SQLite file, or a shared
--- PostgreSQL database, whose schema scopes it to the project); {} when
--- there is no SQLite file yet. nil, message, code when the database
--- cannot be read. (gc keeps these objects; push and pull move them.)
function M.model_artifact_ids(start)
  local t, err, code = M.tracking(start)
  if not t then return nil, err, code end
  if not t.postgresql then
    if not fs.stat(t.target) then return {} end
    return require("mlx.store").db_ids(t.target, "model_versions", "artifact_hash")
  end
  local runs
  runs, err, code = M.open_tracking(t, { reap = false })
  if not runs then return nil, err, code end
  local rows
  rows, err, code = runs.db:query("SELECT DISTINCT artifact_hash AS id FROM model_versions ORDER BY 1")
  runs:close()
  if not rows then return nil, err, code end
  local ids = {}
  for i, r in ipairs(rows) do ids[i] = r.id end
  return ids
end

--- Returns the store of this project's database (M.database_path), opened
--- once per process; or nil, message, code (outside a project: "notfound").
function M.store()
  if default_store then return default_store end
  local t, err, code = M.tracking()
  if not t then return nil, err, code end
  local store
  store, err, code = M.open_tracking(t)
  if not store then return nil, err, code end
  default_store = store
  return store
end

local function on_default(method)
  return function(...)
    local store, err, code = M.store()
    if not store then return nil, err, code end
    return store[method](store, ...)
  end
end

--- track.start_run(info), runs(query), count(filter), get(id), resolve(prefix),
--- metric_history(id, key), metric_summary(id): the Store methods on the
--- project's database; outside a project they return nil, "not in an mlx
--- project (run 'mlx init')", "notfound".
M.start_run = on_default("start_run")
M.runs = on_default("runs")
M.count = on_default("count")
M.get = on_default("get")
M.resolve = on_default("resolve")
M.metric_history = on_default("metric_history")
M.metric_summary = on_default("metric_summary")

--- Returns a reader that ingests the events file a child process writes
--- (MLX_EVENTS) into run; see mlx.track.events.
function M.events_reader(run, path, options)
  return require("mlx.track.events").reader(run, path, options)
end

return M
