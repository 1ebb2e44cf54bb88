--- mlx.pipeline.engine: runs a pipeline as DESIGN §4 says. For each step,
--- in topological order and up to `jobs` commands at once: up to date when
--- its key equals the key in mlx.lock and its outs still hash to the locked
--- values; else restored from the run-cache; else executed. After a success
--- its outs are hashed and stored, and a run-cache entry and the lock are
--- written once the objects are durable (one batch sync per checkpoint).
--- A failed or interrupted step changes neither the lock nor the store.
local core = require "mlx.core"
local executor = require "mlx.executor"
local fs = require "mlx.fs"
local graph = require "mlx.pipeline.graph"
local json = require "mlx.json"
local key = require "mlx.pipeline.key"
local lock = require "mlx.lock"
local lockindex = require "mlx.pipeline.lockindex"
local output = require "mlx.pipeline.output"
local proc = require "mlx.proc"
local ready = require "mlx.pipeline.ready"
local runcache = require "mlx.pipeline.runcache"
local state = require "mlx.pipeline.state"
local store = require "mlx.store"
local ui = require "mlx.ui"
local plain_run = require("mlx.stepgraph").plain_run

local M = {}

-- Completed steps are made durable and written to the lock at most this
-- often, so a long pipeline killed with -9 loses little and a wide one does
-- not pay a device flush per step.
local CHECKPOINT_SECONDS = 1.0
-- What executor.choose reads of a step that declares no executor.
local NO_EXECUTOR = {}
-- A running step's events file is read at most this often (and once more
-- when the step ends): looked for at every turn of the loop, a file most
-- short steps never make cost a failed open and an error message each time.
local EVENTS_POLL_SECONDS = 0.1
-- A command's process group is recorded in its run once it has run this
-- long: reading its identity (/proc) at the spawn cost a twentieth of mlx's
-- own time in a run of 1,000 short steps, and could wait for the child's
-- exec; a step that ends sooner leaves no group to kill. The row is written
-- with the next batch anyway (within about a second).
local GROUP_SECONDS = 0.05
-- A checkpoint rewrites the whole lock, so its cost grows with the
-- pipeline: the next one waits at least this many times as long as the
-- last took, which keeps checkpoints under a tenth of a long run and the
-- cost per finished step the same for 1,000 steps and 100,000.
local CHECKPOINT_SHARE = 10

-- The name of an entry in messages, made only for one: a checkpoint
-- validates every entry twice.
local function step_where(pname, sname) return ("step %s/%s"):format(pname, sname) end

--- Validates the "steps" section of mlx.lock: pipeline → step → entry.
lock.sections.steps = function(section)
  if type(section) ~= "table" then return "steps must be an object" end
  for pname, steps in pairs(section) do
    if type(steps) ~= "table" then return ("steps.%s must be an object"):format(pname) end
    for sname, entry in pairs(steps) do
      if type(entry) ~= "table" then return step_where(pname, sname) .. " must be an object" end
      if type(entry.key) ~= "string" or #entry.key ~= 64 or entry.key:find("%X") then
        return step_where(pname, sname) .. ": key must be 64 hex digits"
      end
      if entry.deterministic ~= nil and type(entry.deterministic) ~= "boolean" then
        return step_where(pname, sname) .. ": deterministic must be true or false"
      end
      if entry.cache ~= nil and type(entry.cache) ~= "boolean" then
        return step_where(pname, sname) .. ": cache must be true or false"
      end
      for path, r in pairs(type(entry.outs) == "table" and entry.outs or {}) do
        local problem = lock.path_problem(type(path) == "string" and state.store_path(path) or path)
        if problem then return ("%s: out %s"):format(step_where(pname, sname), problem) end
        problem = lock.entry_problem(r)
        if problem then return ("%s: out %q: %s"):format(step_where(pname, sname), path, problem) end
      end
    end
  end
end

--- Returns the recorded lock entries {step name → entry} of pipeline p at
--- root, or raises a usage failure for a corrupt lock (exit 2).
function M.locked_steps(root, p)
  local current, err, code = lock.read(root)
  if not current then ui.fail(ui.exit_code_for(code), "%s", err) end
  return (current.steps or {})[p.name] or {}
end

local flatten = require("mlx.metrics").flatten

local Engine = {}
Engine.__index = Engine

local function new_engine(p, opts)
  local root = opts.root
  local self = setmetatable({
    p = p, opts = opts, root = root, values = p.values,
    jobs = math.max(1, opts.jobs or core.cpus()),
    results = {},      -- step → "uptodate"|"restored"|"ran"|"failed"|"skipped"|"killed", and in a
                       -- dry run "would run"|"would restore"|"blocked"
    planned = {},      -- step → the action decided: "uptodate"|"restore"|"run"|"blocked"
    reasons = {},      -- step → list of reasons it ran
    times = {},        -- step → seconds
    pending = {},      -- completed steps not yet checkpointed: {step, key, entry, outs}
    running = {},      -- list of jobs (mlx.executor) with {step, run, events, ev, started, log, executor, slots}
    executors = {},    -- name → the open executor (mlx.executor), opened at its first job
    used_slots = 0,    -- -j slots the running jobs take (a local step: its cpus)
    failed = {},
    last_checkpoint = core.clock(),
    out = output.new(opts.quiet),
    tool_cache = {},
    placements = {},   -- step → {executor name, resources}, decided once
  }, Engine)
  self.link = opts.link or "copy"
  -- The recipe's run, taken before any step run starts (those become current).
  local recipe_run = opts.track and opts.track.current()
  self.recipe_run_id = recipe_run and recipe_run.id
  return self
end

function Engine:open()
  local st, err, code = store.open(self.root)
  if not st then ui.fail(ui.exit_code_for(code), "%s", err) end
  self.store = st
  -- absent_final: in a dry run nothing writes, so what the prefetch found
  -- missing stays missing (state.hash).
  self.ctx = { store = st, values = self.values, tool_cache = self.tool_cache, hashes = {},
    absent_final = self.opts.dry_run }
  -- Directories mlx writes into, made once.
  for _, dir in ipairs({ "/.mlx/tmp", "/.mlx/logs" }) do
    local ok, err, code = fs.mkdirs(self.root .. dir)
    if not ok then ui.fail(ui.exit_code_for(code), "%s", err) end
  end
  self.made_dirs = {}
  self.checked_parents = {}
  self.locked = lockindex.steps(self.root, self.p, st)
  self.locked_lines = lockindex.lines(self.locked)
  -- A project that has no run-cache yet (a fresh one) spares every stale
  -- step a lookup that cannot find anything: 100,000 failed opens in the
  -- plan of a new 100,000-step pipeline.
  self.runcache_exists = fs.stat(self.root .. "/.mlx/cache/runs") ~= nil
  local config, cerr = executor.config(self.root)
  if not config then ui.usage_error("%s", cerr) end
  self.exec_config = config
end

--- Returns the name of the executor that runs step (mlx.executor.choose;
--- a Lua step always runs here, in mlx) and the resources it asks (a
--- table the caller must not change). Decided once per step: the
--- scheduler asks for every free slot, and merging the layers of resources
--- each time cost a tenth of mlx's own time in a run of 1,000 short steps.
function Engine:placement(step)
  local placed = self.placements[step]
  if not placed then
    local name = step.run and "local" or executor.choose(step, self.p, self.exec_config, self.opts.executor)
    local resources
    if step.resources == nil then
      -- Most steps ask nothing of their own: they share the merge of the
      -- pipeline's and the config's, made once.
      self.shared_resources = self.shared_resources or executor.resources({}, self.p, self.exec_config)
      resources = self.shared_resources
    else
      resources = executor.resources(step, self.p, self.exec_config)
    end
    placed = { name, resources }
    self.placements[step] = placed
  end
  return placed[1], placed[2]
end

--- Checks, before anything runs, that the executor of every selected
--- command step exists (exit 2 naming the step and who chose it), and says
--- once which Lua steps stay local although another executor was asked.
function Engine:check_executors(steps)
  local staying, dry_run = {}, self.opts.dry_run
  -- A plain Lua step (stepgraph.plain_run) has no executor of its own:
  -- its choice is that of a step declaring none, made once.
  local plain_choice
  for _, step in ipairs(steps) do
    -- A dry run says nothing of where Lua steps run: they are not asked.
    local plain = not dry_run and plain_run(step)
    if plain then
      plain_choice = plain_choice or executor.choose(NO_EXECUTOR, self.p, self.exec_config, self.opts.executor)
      if plain_choice ~= "local" then staying[#staying + 1] = step.name end
    end
    local run = not plain and step.run
    if not plain and not (run and dry_run) then
      local name, chosen_by = executor.choose(step, self.p, self.exec_config, self.opts.executor)
      if run then
        if name ~= "local" then staying[#staying + 1] = step.name end
      elseif name ~= "local" then
        local module, err = executor.module(name)
        if not module then ui.usage_error("step '%s': executor from %s: %s", step.name, chosen_by, err) end
      end
    end
  end
  if #staying > 0 and not self.opts.dry_run then
    self.out:note(("Lua steps (run = function) run inside mlx, on this machine: %s"):format(table.concat(staying, ", ")))
  end
end

--- Returns the open executor named name, opening it at its first use, or
--- nil and why it cannot run jobs (e.g. sbatch is missing).
function Engine:executor(name)
  local ex = self.executors[name]
  if ex then return ex end
  local options = {}
  for k, v in pairs(self.exec_config.options[name] or {}) do options[k] = v end
  local spec = self.p.executor_spec
  if spec and spec.name == name then
    for k, v in pairs(spec.options) do options[k] = v end
  end
  local err
  ex, err = executor.open(name, { root = self.root, jobs = self.jobs, options = options,
    note = function(message) self.out:note(message) end })
  if not ex then return nil, err end
  self.executors[name] = ex
  self.executor_order = self.executor_order or {}
  table.insert(self.executor_order, name)
  return ex
end

--- Returns the -j slots step would take: 1 when its executor is not open
--- yet (or not local), else what the executor says (a local step: its cpus).
function Engine:slots_of(step)
  if step.cmd == nil then return 1 end
  local name, resources = self:placement(step)
  local ex = self.executors[name]
  if not ex and name == "local" then ex = self:executor("local") end
  if ex and ex.slots then return ex:slots({ resources = resources }) end
  return 1
end

-- Starts the tracking run of a step; nil outside a project's tracking.
function Engine:start_run(step, ev, status_hint)
  if not self.opts.track then return nil end
  local params = {}
  for _, name in ipairs(step.params) do params[name] = self.values[name] end
  local command = ev.record.cmd
  if type(command) == "table" then command = proc.quote(command) end
  -- A step that depends on others finds their runs ended: the ends
  -- buffered so far are written with its start (roots, such as the steps
  -- of a wide fan, leave them to their batch).
  -- The recipe's run is the parent, named: the default (the innermost run
  -- still running) is another step's under -j 2 or more.
  local run, err = self.opts.track.start_run {
    parent = self.recipe_run_id, recipe = self.opts.recipe_path, step = step.name, step_key = ev.key,
    log_path = step.cmd and self:log_path(step) or nil,
    command = command or ("(lua) " .. step.where:sub(1, -3)), params = params,
    git = self.opts.git or false, with_ends = #self.graph.upstream[step] > 0,
  }
  if not run then ui.warn(("cannot record the run of step '%s': %s"):format(step.name, err)) end
  if run and status_hint then run:set_tag("mlx.outcome", status_hint) end
  return run
end

local function record_artifacts(run, step, ev, outs)
  if not run then return end
  for _, dep in ipairs(step.deps) do
    if ev.dep_hashes[dep] then
      run:record_artifact { role = "in", path = dep, hash = ev.dep_hashes[dep] }
    end
  end
  for path, r in pairs(outs) do
    run:record_artifact { role = "out", path = path, hash = r.hash, size = r.size, nfiles = r.files or 1 }
  end
end

-- Queues a step's success for the next checkpoint.
function Engine:completed(step, ev, outs, write_cache)
  local entry = state.lock_entry(step, ev.key, ev.record, ev.dep_hashes, outs)
  table.insert(self.pending, { step = step, key = ev.key, entry = entry, outs = outs,
    write_cache = write_cache })
end

--- Makes the outputs of the steps completed since the last checkpoint
--- durable and records them: run-cache entries, then one batch sync of the
--- store (which also covers the entries), then the lock. An entry that
--- becomes visible before its objects is harmless: a lookup uses an entry
--- only when every object it names is in the store. The last checkpoint of
--- a run (final) also writes the lock's index (Engine:write_index).
function Engine:checkpoint(final)
  if self.opts.dry_run then return end
  local began = core.clock()
  local undeclared = self:has_undeclared() -- entries of steps the recipe no longer declares
  if #self.pending == 0 and not undeclared then
    if final then self:write_index() end
    return
  end
  local entries = {}
  for _, done in ipairs(self.pending) do
    if done.write_cache then
      entries[#entries + 1] = { key = done.key, outs = done.outs }
      self.runcache_exists = true
    end
  end
  local ok, err, code = runcache.write_many(self.root, entries)
  if not ok then ui.warn(("cannot write the run-cache (%d entries): %s"):format(#entries, err)) end
  ok, err, code = self.store:commit()
  if not ok then ui.fail(ui.exit_code_for(code), "cannot store the outputs: %s", err) end
  runcache.prune(self.root)
  -- The ends of the steps' runs, buffered, are written before the lock
  -- records the steps: a run the lock relies on never reads as RUNNING.
  local runs = self.opts.track and self.opts.track.store()
  if runs then
    local flushed, ferr = runs:flush()
    if not flushed then ui.warn("cannot record the ends of the steps' runs: " .. tostring(ferr)) end
  end
  local pending = self.pending
  local written, digest
  -- The lock this process wrote at its last checkpoint is changed in
  -- memory while the file still holds its bytes (mlx.lock's update).
  self.last_lock = self.last_lock or {}
  written, digest, code = lock.update(self.root, "steps", function(section)
    local steps = section[self.p.name] or {}
    section[self.p.name] = steps
    for _, done in ipairs(pending) do
      -- A step mlx verify saw diverge stays marked through later runs,
      -- until a verify of it passes (mlx.verify).
      local before = steps[done.step.name]
      if before and before.deterministic == false then done.entry.deterministic = false end
      steps[done.step.name] = done.entry
    end
    -- The pipeline's section holds exactly its declared steps.
    for name in pairs(steps) do
      if not self.p.by_name[name] then steps[name] = nil end
    end
  end, self.last_lock)
  if not written then ui.fail(ui.exit_code_for(code), "cannot update mlx.lock: %s", digest) end
  self.last_lock.lock, self.last_lock.digest = written, digest
  self.unindexed = { steps = written.steps, digest = digest }
  if final then self:write_index() end
  -- Stored outs stay out of git, as tracked data does (mlx.gitignore).
  local ignored = {}
  for _, done in ipairs(pending) do
    if done.step.cache then
      for path in pairs(done.outs) do ignored[#ignored + 1] = (path:gsub("/$", "")) end
    end
  end
  local skipped
  ok, skipped = require("mlx.gitignore").ensure(self.root, ignored)
  if not ok then ui.warn("cannot update a .gitignore: " .. skipped) end
  for _, warning in ipairs(ok and skipped or {}) do ui.warn(warning) end
  -- What the lock now holds for the pipeline: its pending entries in, its
  -- undeclared steps out.
  self.locked = written.steps[self.p.name]
  self.locked_lines = nil
  self.pending = {}
  self.last_checkpoint = core.clock()
  self.checkpoint_every = math.max(CHECKPOINT_SECONDS, CHECKPOINT_SHARE * (self.last_checkpoint - began))
end

-- Writes the lock's index (mlx.pipeline.lockindex) of the lock the last
-- checkpoint wrote, once a run, at its end or interruption: the engine
-- reads its lines only before its first checkpoint, and an index naming an
-- older lock is never used (a run killed before its end leaves the next
-- one to read the lock in full and write the index). Written at every
-- checkpoint, it cost each of them 4-8 ms of CPU and an fsync at 1,000 steps.
-- The paths the lock this run last wrote pins, remembered once at the end
-- (mlx.stalepins): at every checkpoint it cost a fifth of the CPU time of
-- a first run of 5,000 steps.
function Engine:remember_pins()
  local written = self.last_lock and self.last_lock.lock
  if written then require("mlx.stalepins").remember(self.root, written) end
end

function Engine:write_index()
  local last = self.unindexed
  if not last then return end
  self.unindexed = nil
  local ok, err = lockindex.write(self.root, last.steps, last.digest)
  if not ok then ui.warn("cannot write " .. lockindex.path(self.root) .. ": " .. err) end
end

-- Hashes (and, unless cache = false, stores) a finished step's outs.
function Engine:collect_outs(step)
  local outs = {}
  for _, out in ipairs(step.outs) do
    local path = state.store_path(out)
    local info, err
    state.forget(self.ctx, out)
    if step.cache then info, err = self.store:put(path) else info, err = self.store:hash(path) end
    if info then self.ctx.hashes[out] = info end
    if not info then
      if not fs.stat(self.root .. "/" .. path) then
        return nil, ("step '%s' did not produce its out '%s'"):format(step.name, out)
      end
      return nil, ("step '%s': out '%s': %s"):format(step.name, out, err)
    end
    outs[out] = state.record(info)
  end
  return outs
end

-- A metrics file often restates what the step logged through events or
-- ctx.log. A metric has one series: a value from the file goes to the
-- metric's latest step (replacing that point, if it differs), and starts
-- the series at step 0 only when the run has no point of it yet.
function Engine:log_metrics_files(step, run)
  local latest
  for _, path in ipairs(step.metrics) do
    local value, err = json.load(self.root .. "/" .. path)
    if value == nil then
      return nil, ("step '%s': metrics file '%s': %s"):format(step.name, path, err)
    end
    if run then
      if not latest then
        latest = {}
        for _, m in ipairs(self.opts.track.metric_summary(run.id) or {}) do latest[m.key] = m end
      end
      for name, number in pairs(flatten(value, "", {})) do
        local last = latest[name]
        if not last then
          run:log_metric(name, number, 0)
          latest[name] = { value = number, step = 0 }
        elseif last.value ~= number then
          run:log_metric(name, number, last.step)
          last.value = number
        end
      end
    end
  end
  return true
end

-- A step restored from the run-cache did not run: its run carries the
-- metrics of the newest run that executed the same key (tag
-- mlx.restored_from), so that tables of results are not blank for it.
function Engine:carry_metrics(run, ev)
  local st = self.opts.track.store()
  local from = st and st:step_producer(ev.key, run.id)
  if from then
    run:set_tag("mlx.restored_from", from)
    local ok, err = st:copy_metrics(run.id, from)
    if not ok then ui.warn(("cannot copy the metrics of run %s: %s"):format(from, err)) end
  end
end

-- Refuses (exit 2) a step that would write through a symlinked directory:
-- mlx deletes, writes and restores its outs, and the step itself writes
-- them, so no parent of an out may lead outside the project. Each parent
-- directory is checked once per run.
function Engine:check_out_parents(step)
  for _, out in ipairs(step.outs) do
    local bare = state.store_path(out)
    local parent = bare:match("^(.*)/") or ""
    if parent ~= "" and not self.checked_parents[parent] then
      local ok, err = fs.check_parents(self.root, bare)
      if not ok then
        ui.usage_error("step '%s': out %s: %s", step.name, out, err)
      end
      self.checked_parents[parent] = true
    end
  end
end

-- Removes the declared outs (unless persist) and makes their parents, below
-- the root without following a symlink.
function Engine:prepare_outs(step)
  for _, out in ipairs(step.outs) do
    local bare = state.store_path(out)
    if not step.persist then
      local ok, err = fs.remove_below(self.root, bare)
      if not ok then return nil, err end
    end
    state.forget(self.ctx, out)
    local parent = bare:match("^(.*)/")
    if parent and not self.made_dirs[parent] then
      local ok, err = fs.mkdirs_below(self.root, parent)
      if not ok then return nil, err end
      self.made_dirs[parent] = true
    end
  end
  return true
end

function Engine:finish_success(step, ev, run, result)
  local outs, err = self:collect_outs(step)
  if not outs and result and result.remote then
    -- mlx hashes what the job wrote, where mlx sees it.
    err = ("%s after its %s job completed: outs must be on a filesystem mlx and the nodes share")
      :format(err, result.remote)
  end
  if outs then
    local ok
    ok, err = self:log_metrics_files(step, run)
    if not ok then outs = nil end
  end
  if not outs then
    return self:finish_failure(step, run, err, result)
  end
  record_artifacts(run, step, ev, outs)
  self:completed(step, ev, outs, step.cache)
  if run then
    -- Written with the next batch (at the latest before the checkpoint
    -- that records the step in the lock): a transaction per step was a
    -- fifth of mlx's own time in a run of 1,000 short steps.
    local ended = { buffered = true }
    if result then
      ended.exit_code, ended.cpu_seconds = result.code, (result.user or 0) + (result.sys or 0)
      ended.wall_seconds, ended.peak_rss = result.wall, result.max_rss
    end
    run:finish("FINISHED", ended)
  end
  self.results[step] = "ran"
end

function Engine:finish_failure(step, run, message, result)
  self.results[step] = "failed"
  local log = run and self:log_path(step)
  self.failed[#self.failed + 1] = { step = step, message = message, log = log and fs.stat(log) and log }
  if run then
    run:finish("FAILED", { message = message, exit_code = result and result.code, signal = result and result.signal,
      wall_seconds = result and result.wall, peak_rss = result and result.max_rss })
  end
  -- The first failure ends the run's report (with its log); later ones,
  -- under --keep-going or in parallel, are reported as they happen.
  if #self.failed > 1 then self.out:failed(step, message) end
end

--- Returns where a step's output is logged: .mlx/logs/<recipe run id>/<step>.log
--- ("/" in a step name becomes "_"), so the path is known before the step's
--- own run exists and every invocation keeps its logs together.
function Engine:log_path(step)
  local dir = ("%s/.mlx/logs/%s"):format(self.root, self.recipe_run_id or "untracked")
  if not self.made_dirs[dir] then
    fs.mkdirs(dir)
    self.made_dirs[dir] = true
  end
  return ("%s/%s.log"):format(dir, (step.name:gsub("/", "_")))
end

-- Runs a Lua step in this process.
function Engine:run_lua(step, ev, run)
  local ctx = {
    name = step.name, root = self.root, deps = step.deps, outs = step.outs, params = {}, run = run,
    log = function(name, value, at) if run then run:log_metric(name, value, at) end end,
  }
  for _, name in ipairs(step.params) do ctx.params[name] = self.values[name] end
  -- os.clock is the process's CPU time: the step's CPU, not its wall time.
  local t0, cpu0 = core.clock(), os.clock()
  local ok, err = xpcall(step.run, function(e)
    if e == "interrupted" then return e end
    return self.opts.debug and debug.traceback(tostring(e), 2) or tostring(e)
  end, ctx)
  if err == "interrupted" then error("interrupted", 0) end
  local result = { wall = core.clock() - t0, user = os.clock() - cpu0 }
  if ok then
    self:finish_success(step, ev, run, result)
  else
    self:finish_failure(step, run, ("step '%s' failed: %s"):format(step.name, err), nil)
  end
end

-- Ingests the rest of a finished step's events file, then removes the file:
-- its lines are in the database now. A file that could not be ingested (the
-- database failed) is kept; mlx gc removes it once no mlx uses the project.
local function finish_events(events)
  local n, malformed = events:finish()
  if n and events.opened then os.remove(events.path) end
  return malformed
end

-- Starts a command step on its executor; returns the running job.
function Engine:spawn(step, ev, run)
  local command = ev.record.cmd
  local env = { MLX_STEP = step.name, MLX_PROJECT = self.root }
  local events
  if run then
    local dir = self.root .. "/.mlx/tmp"
    env.MLX_RUN_ID = run.id
    env.MLX_EVENTS = ("%s/events-%s.jsonl"):format(dir, run.id)
    events = self.opts.track.events_reader(run, env.MLX_EVENTS, { dir = self.root })
  end
  -- The log is opened at the first line, so a silent step creates no file.
  local log = { path = run and self:log_path(step) }
  local function log_line(line)
    if not log.path then return end
    if not log.file then
      log.file = io.open(log.path, "ab")
      if not log.file then log.path = nil return end
      log.file:setvbuf("line")
    end
    log.file:write(line, "\n")
  end
  local out, errout = self.out:line_printer(step, "stdout"), self.out:line_printer(step, "stderr")
  local name, resources = self:placement(step)
  local job = {
    name = step.name, cwd = self.root, env = env, timeout = step.timeout, resources = resources,
    run_id = run and run.id,
    stdout = function(line) out(line) log_line(line) end,
    stderr = function(line) errout(line) log_line(line) end,
    step = step, run = run, events = events, ev = ev, started = core.clock(), log = log,
  }
  if type(command) == "string" then job.shell = command else job.argv = command end
  local ex, err = self:executor(name)
  local ok = ex ~= nil
  if ok then ok, err = ex:submit(job) end
  if not ok then
    if log.file then log.file:close() end
    if events then finish_events(events) end
    self:finish_failure(step, run, ("step '%s' could not start: %s"):format(step.name, err), nil)
    return nil
  end
  job.executor = ex
  job.slots = ex.slots and ex:slots(job) or 1
  self.used_slots = self.used_slots + job.slots
  -- Its process group is recorded once it has run a while (record_groups).
  job.group_pending = run ~= nil and job.pid ~= nil and ex.alive ~= nil
  self.running[#self.running + 1] = job
  return job
end

-- Records how a job ended (its slot already freed by the caller).
function Engine:reap(job, result)
  if job.log.file then job.log.file:close() end
  if job.run and result.tags and next(result.tags) then
    local ok, err = job.run:set_tags(result.tags)
    if not ok then ui.warn(("cannot tag the run of step '%s': %s"):format(job.step.name, err)) end
  end
  if job.events then
    local malformed = finish_events(job.events)
    for _, bad in ipairs(malformed or {}) do
      ui.warn(("step '%s': events line %d skipped (%s): %s"):format(job.step.name, bad.line, bad.why, bad.text))
    end
  end
  local step = job.step
  self.times[step] = result.wall
  if result.ok then
    self:finish_success(step, job.ev, job.run, result)
    if self.results[step] == "ran" then self.out:finished(step, result.wall) end
  elseif result.message then
    self:finish_failure(step, job.run, ("step %s: %s"):format(step.name, result.message), result)
  else
    local why = result.timed_out and ("timed out after %g s"):format(step.timeout)
      or result.signal and ("killed by signal %d"):format(result.signal)
      or ("exit status %d"):format(result.code)
    self:finish_failure(step, job.run, ("step '%s' failed (%s)"):format(step.name, why), result)
  end
end

-- Records the process group of each command that has run for
-- GROUP_SECONDS, so that should mlx and its keeper both die, whoever next
-- finds its run dead kills the group (docs/proc.md, "The keeper"). A job
-- its executor has already reaped (a wait reaps every child that ended,
-- and hands them back one at a time) is skipped: its group id may be
-- another's by now. Returns the seconds until the next one is due, or nil.
function Engine:record_groups(now)
  local due
  for _, job in ipairs(self.running) do
    if job.group_pending then
      local wait = job.started + GROUP_SECONDS - now
      if wait > 0 then
        if not due or wait < due then due = wait end
      elseif not job.executor:alive(job) then
        job.group_pending = nil
      else
        job.group_pending = nil
        local ok, err = job.run:set_group(job.pid)
        if not ok then ui.warn(("cannot record the process group of step '%s': %s"):format(job.step.name, err)) end
      end
    end
  end
  return due
end

--- Waits at most seconds for running jobs to end, asking each executor in
--- turn about its own jobs (the time split between them), and reaps the
--- ended ones. Raises "interrupted" on Ctrl-C.
function Engine:poll_jobs(seconds)
  local due = self:record_groups(core.clock())
  if due and due < seconds then seconds = due end
  local by_executor, names = {}, {}
  for _, job in ipairs(self.running) do
    local list = by_executor[job.executor]
    if not list then
      list = {}
      by_executor[job.executor] = list
      names[#names + 1] = job.executor
    end
    list[#list + 1] = job
  end
  local ended = {}
  for i, ex in ipairs(names) do
    -- The last executor asked waits; the others only look, unless one
    -- executor has all the jobs.
    local wait = (i == #names) and seconds or math.min(seconds, 0.05)
    for _, done in ipairs(ex:poll(by_executor[ex], #ended > 0 and 0 or wait)) do ended[#ended + 1] = done end
  end
  local now = core.clock()
  for _, job in ipairs(self.running) do
    if job.events and now - (job.events_polled or job.started) >= EVENTS_POLL_SECONDS then
      job.events_polled = now
      job.events:poll()
    end
  end
  -- A command that exited 0 frees its slot before its outs are stored and
  -- its run ends: under -j 2 or more the ready steps start first, so this
  -- bookkeeping overlaps their commands instead of leaving the slot idle
  -- (with 1,000 short steps it was most of the gap between one step's exit
  -- and the next one's start). Its downstream steps still wait for it. A
  -- failed command is recorded first, so nothing new starts after it
  -- without --keep-going; -j 1 stays strictly one step after the other.
  local early
  for _, done in ipairs(ended) do
    for i, job in ipairs(self.running) do
      if job == done.job then
        table.remove(self.running, i)
        break
      end
    end
    self.used_slots = self.used_slots - done.job.slots
    if self.jobs > 1 and done.result.ok and self.queue then
      early = early or {}
      early[#early + 1] = done
    else
      self:reap(done.job, done.result)
      self:settle(done.job.step)
    end
  end
  if early then
    local ok, err = xpcall(self.start_ready, function(e)
      if e == "interrupted" or ui.is_failure(e) or not self.opts.debug then return e end
      return debug.traceback(tostring(e), 2)
    end, self)
    -- Whatever stopped the start, the ended steps are recorded.
    for _, done in ipairs(early) do
      self:reap(done.job, done.result)
      self:settle(done.job.step)
    end
    if not ok then error(err, 0) end
  end
end

--- Closes every open executor (once the pipeline ends, however).
function Engine:close_executors()
  for _, name in ipairs(self.executor_order or {}) do
    local ex = self.executors[name]
    if ex.close then pcall(ex.close, ex) end
  end
end

-- The decision of a step found up to date by its index line (shared: read,
-- never written).
local UP_TO_DATE = { action = "uptodate", reasons = {} }

-- The decision of a step that dep, missing, blocks (ev: its evaluation, if
-- it was made).
local function blocked_by(dep, ev)
  return { action = "blocked", ev = ev, reasons = { ("dep '%s' does not exist"):format(dep) } }
end

--- Decides what a step needs, the one planner behind `mlx recipe`, its
--- dry run (-n), --explain and `mlx status RECIPE`: returns a decision
--- {action = "uptodate"|"restore"|"run"|"blocked", reasons, ev, outs (the
--- run-cache's records, for "restore")}, or nil and a message. In a dry
--- run, the outs of steps planned "restore" are seen by later steps as the
--- run-cache records them (state.overlay), so the plan of a pipeline equals
--- what a real run does; a step downstream of one that runs is "run", as
--- what that step will write cannot be known before. ups: the step's
--- upstream steps, when the caller has them at hand.
function Engine:decide(step, ups)
  -- Steps that the whole pipeline's pass found up to date, with nothing
  -- upstream that may change them (Engine:up_to_date_first).
  local unsure = self.unsure
  if unsure and not unsure[step] then return UP_TO_DATE end
  local forced = self.opts.force or (self.opts.force_steps and self.opts.force_steps[step.name])
  local upstream_runs
  if self.opts.dry_run then
    -- What an upstream step that runs will write is unknown before it
    -- runs: this step's inputs, and so its key, are too.
    for _, up in ipairs(ups or self.graph.upstream[step]) do
      if self.planned[up] == "run" then
        upstream_runs = up
        break
      end
    end
  end
  -- Most steps of a no-op are up to date: said from the lock's index
  -- without building their evaluation.
  local lines = self.locked_lines
  if lines and not forced and not upstream_runs and state.up_to_date(self.ctx, step, lines) then
    return UP_TO_DATE
  end
  if upstream_runs then
    -- Only what evaluate would report or raise: the plan shows no key.
    local ok, err = state.check(self.ctx, step)
    if not ok then return nil, err end
    return { action = "run", reasons = { ("upstream step '%s' runs"):format(upstream_runs.name) } }
  end
  local locked = self.locked[step.name]
  -- A project without a run-cache (a fresh one) asks the step nothing.
  local restorable = self.runcache_exists and not forced and step.cache and not step.always
  if self.opts.dry_run and not locked and not restorable then
    -- A step that never ran, and that the run-cache cannot restore, runs
    -- unless a dep is missing: said without its key, as evaluate says it.
    local ok, missing = state.check(self.ctx, step)
    if not ok then return nil, missing end
    if missing then return blocked_by(missing) end
    return { action = "run", reasons = state.never_run_reasons(step) }
  end
  local ev, err = state.evaluate(self.ctx, step, locked)
  if not ev then return nil, err end
  local reasons = ev.reasons
  if #reasons == 0 and forced then reasons = { "forced" } end
  if #reasons == 0 then return { action = "uptodate", reasons = reasons, ev = ev } end
  if #ev.missing_deps > 0 then return blocked_by(ev.missing_deps[1], ev) end
  -- The run-cache: the same inputs ran before, restore instead of running.
  if restorable then
    local outs, refused = runcache.lookup(self.root, self.store, ev.key, step)
    if refused then ui.warn(refused) end
    if outs then return { action = "restore", reasons = reasons, ev = ev, outs = outs } end
  end
  return { action = "run", reasons = reasons, ev = ev }
end

--- Decides, before the scheduler starts, the steps of steps (the run order;
--- selected: the set of them when targets were named, else nil) that are
--- up to date, in one pass over them (state.unsure_steps) rather than one
--- trip through the scheduler each: a step is up to date when its key and
--- outs match its line in the lock's index now and no step upstream of it
--- is unsure (one that runs or is restored may change its deps). Returns
--- the steps the scheduler must still decide, in order. In a dry run, or
--- when every step is up to date, those are the unsure steps and their
--- downstream steps alone, the others settled here ("uptodate"); in a run
--- that executes steps it is every step (which of them start before a
--- failure stops the run decides which are "skipped"), the others only
--- decided at once when their turn comes (Engine:decide). Without the
--- lock's index or the prefetched hashes, or with --force, every step goes
--- through the scheduler, as it did.
function Engine:up_to_date_first(steps, selected)
  local lines = self.locked_lines
  if not lines or self.opts.force or #steps == 0 then return steps end
  local ok, unsure = pcall(state.unsure_steps, self.ctx, steps, lines, self.opts.force_steps)
  -- Ctrl-C stops the run; anything else that raised is raised again by the
  -- step's own decision, in its turn.
  if not ok and unsure == "interrupted" then error(unsure, 0) end
  if not ok or not unsure then return steps end
  -- The unsure steps and, through the graph, everything downstream of them.
  local affected, n = {}, #unsure
  for i = 1, n do affected[unsure[i]] = true end
  local downstream, i = self.graph.downstream, 1
  while i <= n do
    for _, down in ipairs(downstream[unsure[i]]) do
      if not affected[down] and (not selected or selected[down]) then
        affected[down] = true
        n = n + 1
        unsure[n] = down
      end
    end
    i = i + 1
  end
  self.unsure = affected
  -- Every declared step has its line: the index holds no other step when
  -- it holds as many (Engine:has_undeclared).
  if n == 0 and not selected then self.lined_steps = #steps end
  if n > 0 and not self.opts.dry_run then return steps end
  local left, results, planned = {}, self.results, self.planned
  for _, step in ipairs(steps) do
    if affected[step] then
      left[#left + 1] = step
    else
      results[step], planned[step] = "uptodate", "uptodate"
    end
  end
  self.presettled = #steps - #left
  return left
end

--- Returns true when the lock holds entries of steps the pipeline no
--- longer declares (a checkpoint then removes them). Said without walking
--- the 100,000 names of a no-op's index when every declared step has its
--- line there and the index holds no more lines than that.
function Engine:has_undeclared()
  local lines = self.locked_lines
  if lines and self.lined_steps and #lines == self.lined_steps then return false end
  for name in pairs(self.locked) do
    if not self.p.by_name[name] then return true end
  end
  return false
end

--- After a dry run whose scheduler saw only some of steps (up_to_date_first):
--- a failure without --keep-going stops deciding, and in a dry run steps are
--- decided one at a time in run order, so the steps after the first that
--- failed are "skipped" as the scheduler leaves them, although settled
--- "uptodate" before it started.
function Engine:skip_after_failure(steps)
  local first = self.failed[1]
  if not first or self.opts.keep_going then return end
  local after = false
  for _, step in ipairs(steps) do
    if after and not self.unsure[step] then
      self.results[step], self.planned[step] = "skipped", nil
    end
    after = after or step == first.step
  end
end

-- Carries out a decision for real: skip, restore, fail or start the step
-- (ups: its upstream steps, when the caller has them at hand).
function Engine:dispatch(step, ups)
  local d, err = self:decide(step, ups)
  if not d then return self:finish_failure(step, nil, err, nil) end
  self.planned[step] = d.action
  if d.action == "uptodate" then
    self.results[step] = "uptodate"
    return
  end
  self.reasons[step] = d.reasons
  if self.opts.dry_run then return self:plan_only(step, d) end
  if d.action == "blocked" then
    return self:finish_failure(step, nil, ("step '%s': %s"):format(step.name, d.reasons[1]), nil)
  end
  if self.opts.explain then self.out:explain(step, d.reasons) end
  self:check_out_parents(step)
  local ev = d.ev
  if d.action == "restore" then
    local outs = d.outs
    for out in pairs(outs) do state.forget(self.ctx, out) end
    local ok, rerr = runcache.restore(self.root, self.store, outs, self.link)
    if ok then
      local run = self:start_run(step, ev)
      if run then self:carry_metrics(run, ev) end
      record_artifacts(run, step, ev, outs)
      self:log_metrics_files(step, run)
      if run then run:finish("CACHED", { buffered = true }) end
      self:completed(step, ev, outs, false)
      self.results[step] = "restored"
      self.out:restored(step)
      return
    end
    ui.warn(("step '%s': cannot restore from the run-cache (%s); running it"):format(step.name, rerr))
    self.planned[step] = "run"
  end
  -- An executor that cannot run jobs (no Slurm here) must fail the step
  -- before its outs are removed, not after.
  if step.cmd ~= nil then
    local ex, xerr = self:executor((self:placement(step)))
    if not ex then return self:finish_failure(step, nil, ("step '%s' could not start: %s"):format(step.name, xerr)) end
  end
  local ok, perr = self:prepare_outs(step)
  if not ok then return self:finish_failure(step, nil, perr, nil) end
  local run = self:start_run(step, ev)
  if step.run then
    local began = core.clock()
    self:run_lua(step, ev, run)
    if self.results[step] == "ran" then self.out:finished(step, core.clock() - began) end
  else
    self:spawn(step, ev, run)
  end
end

-- A dry run's decision: said, and seen by later steps, nothing changed.
function Engine:plan_only(step, d)
  if d.action == "restore" then
    self.results[step] = "would restore"
    for out, r in pairs(d.outs) do state.overlay(self.ctx, out, r) end
  elseif d.action == "blocked" then
    self.results[step] = "blocked"
  else
    self.results[step] = "would run"
  end
  self.out:planned(step, d.action, d.reasons)
end

-- Stops the running jobs for which which(job) is true (all, without it),
-- their runs ending with status and message.
function Engine:kill_running(status, message, which)
  local by_executor, kept, stopped = {}, {}, {}
  for _, job in ipairs(self.running) do
    if which == nil or which(job) then
      by_executor[job.executor] = by_executor[job.executor] or {}
      table.insert(by_executor[job.executor], job)
      stopped[#stopped + 1] = job
    else
      kept[#kept + 1] = job
    end
  end
  for ex, jobs in pairs(by_executor) do
    local ok, err = pcall(ex.cancel, ex, jobs)
    if not ok then ui.warn(("cannot cancel the running jobs: %s"):format(tostring(err))) end
  end
  for _, job in ipairs(stopped) do
    if job.log.file then job.log.file:close() end
    if job.events then pcall(finish_events, job.events) end
    if job.run then pcall(job.run.finish, job.run, status, { message = message or "interrupted" }) end
    self.results[job.step] = "killed"
    self.used_slots = self.used_slots - job.slots
  end
  self.running = kept
  -- Their downstream steps are blocked in turn (settle needs the queue of
  -- the loop, which an interruption before it started has not made).
  if self.queue then
    for _, job in ipairs(stopped) do self:settle(job.step) end
  end
end

-- True when step can start now: its slots fit in -j beside the running
-- jobs, or nothing runs (a step asking more than -j then runs alone).
function Engine:has_slot(step)
  if self.used_slots == 0 then return true end
  if self.used_slots >= self.jobs then return false end
  return self.used_slots + self:slots_of(step) <= self.jobs
end

-- An executor could not submit the jobs it had queued: each fails.
function Engine:fail_queued(ex, err)
  local kept = {}
  for _, job in ipairs(self.running) do
    if job.executor == ex and job.queued then
      self.used_slots = self.used_slots - job.slots
      if job.log.file then job.log.file:close() end
      if job.events then finish_events(job.events) end
      self:finish_failure(job.step, job.run, ("step '%s' could not start: %s"):format(job.step.name, err), nil)
      self:settle(job.step)
    else
      kept[#kept + 1] = job
    end
  end
  self.running = kept
end

-- A step is settled once it has an outcome (not nil, not "running").
local BAD = { failed = true, skipped = true, killed = true, blocked = true }

-- Records that step has its outcome: its downstream steps wait for one
-- step less, and become decidable (queued) when none is left or when this
-- step failed, was skipped or blocked (they are then blocked in turn).
function Engine:settle(step)
  self.settled = self.settled + 1
  local bad = BAD[self.results[step]]
  if bad then self.bad_settled = self.bad_settled + 1 end
  local pos, waiting, queue = self.position, self.waiting, self.queue
  for _, down in ipairs(self.graph.downstream[step]) do
    local i = pos[down]
    local left = i and waiting[i] -- -1 once queued
    if left and left > 0 then
      left = left - 1
      if bad or left == 0 then
        queue:push(i)
        left = -1
      end
      waiting[i] = left
    end
  end
end

-- The last of step's upstream steps (in declaration order) that failed,
-- was skipped, killed or blocked, or nil.
function Engine:blocked_by(step)
  local blocked
  for _, up in ipairs(self.graph.upstream[step]) do
    if self.position[up] and BAD[self.results[up]] then blocked = up end
  end
  return blocked
end

-- Starts what can start, in order, while there are free slots.
function Engine:start_ready()
  local queue, order = self.queue, self.position_order
  while queue:peek() and self:has_slot(order[queue:peek()]) do
    local step = order[queue:pop()]
    local blocked = self.bad_settled > 0 and self:blocked_by(step)
    if blocked then
      self.results[step] = "skipped"
      if self.opts.dry_run then
        self.results[step] = "blocked"
        self.planned[step] = "blocked"
        self.reasons[step] = { ("upstream step '%s' is blocked"):format(blocked.name) }
        self.out:planned(step, "blocked", self.reasons[step])
      end
      self:settle(step)
    elseif #self.failed == 0 or self.opts.keep_going then
      self.results[step] = "running" -- until dispatch or reap decides
      self:dispatch(step)
      if self.results[step] ~= "running" then self:settle(step) end
    end
  end
end

-- The scheduler: a queue of decidable steps (every upstream step settled,
-- or one of them bad), taken earliest in the run order first while there
-- are free slots, so each completion costs the same however large the
-- graph (no rescan of all steps).
function Engine:loop(steps)
  local order, position, waiting = steps, {}, {}
  for i, step in ipairs(order) do position[step] = i end
  -- bad_settled counts the settled steps that failed, were skipped, killed
  -- or blocked: while there are none, no step can be blocked by one.
  self.position, self.waiting, self.settled, self.bad_settled = position, waiting, self.presettled or 0, 0
  self.position_order = order
  local queue = ready.new()
  self.queue = queue
  for i, step in ipairs(order) do
    local n = 0
    for _, up in ipairs(self.graph.upstream[step]) do
      if position[up] then n = n + 1 end
    end
    waiting[i] = n
    if n == 0 then
      queue:push(i)
      waiting[i] = -1
    end
  end
  local settled = function() return self.settled end
  while true do
    self:start_ready()
    for _, name in ipairs(self.executor_order or {}) do
      local ex = self.executors[name]
      if ex.flush then
        local ok, err = ex:flush()
        if not ok then self:fail_queued(ex, err) end
      end
    end
    if #self.running == 0 then break end
    self:poll_jobs(0.2)
    -- After a failure without -k, jobs of executors that queue them (a
    -- cluster's) are cancelled: waiting in a queue for hours to finish a
    -- run that has failed helps nobody. Local steps finish, as they always did.
    if #self.failed > 0 and not self.opts.keep_going then
      self:kill_running("KILLED", "cancelled after a failure", function(job) return job.executor.cancel_on_failure end)
    end
    self.out:progress(self.running, settled)
    if core.clock() - self.last_checkpoint >= (self.checkpoint_every or CHECKPOINT_SECONDS) then self:checkpoint() end
  end
  -- Steps never reached (after a failure without --keep-going) are skipped.
  for _, step in ipairs(order) do
    if self.results[step] == nil then self.results[step] = "skipped" end
  end
end

--- The scheduler of a dry run: steps decided one by one in run order (a
--- list of steps; selected: the set of the pipeline's steps taking part,
--- nil for all). A dry run decides each step at once, so Engine:loop's
--- queue would hand them out in this order anyway (a step is queued only by
--- the settling of an earlier one); walking the order spares a 100,000-step
--- plan the queue, the counts and the positions. As there, a step is
--- decided once every upstream step taking part has an outcome, or blocked
--- as soon as one of them failed or was blocked; after a failure without
--- --keep-going nothing else is decided, and what was not is "skipped".
function Engine:plan_in_order(steps, selected)
  local results, upstream, keep_going = self.results, self.graph.upstream, self.opts.keep_going
  for _, step in ipairs(steps) do
    local ups = upstream[step]
    local waiting, blocked = false, nil
    for _, up in ipairs(ups) do
      local outcome = results[up]
      if BAD[outcome] then
        blocked = up
      elseif outcome == nil and (not selected or selected[up]) then
        waiting = true
      end
    end
    if blocked then
      results[step], self.planned[step] = "blocked", "blocked"
      self.reasons[step] = { ("upstream step '%s' is blocked"):format(blocked.name) }
      self.out:planned(step, "blocked", self.reasons[step])
    elseif not waiting and (#self.failed == 0 or keep_going) then
      results[step] = "running" -- until dispatch decides
      self:dispatch(step, ups)
    end
  end
  for _, step in ipairs(steps) do
    if results[step] == nil then results[step] = "skipped" end
  end
end

--- Runs pipeline p. opts: { root (absolute project root), targets = {step
--- names} (default all), jobs, force, force_steps = {name → true}, dry_run,
--- keep_going, explain, track (mlx.track, to record step runs), git
--- (context for step runs), recipe_path, link, quiet, debug, executor
--- (--executor: the name of the executor of every command step) }.
--- Returns a summary {counts = {ran, restored, uptodate, failed, skipped,
--- ["would run"]}, failed = {{step, message, log}}, results = {step →
--- outcome}}. Raises "interrupted" after stopping running steps (their runs
--- KILLED) and checkpointing what had completed; raises usage failures for
--- an invalid pipeline, unknown targets or --force-step names (with a
--- suggestion) or a corrupt lock.
function M.run(p, opts)
  local forced = {}
  for name in pairs(opts.force_steps or {}) do forced[#forced + 1] = name end
  table.sort(forced)
  for _, name in ipairs(forced) do graph.step_named(p, name, "--force-step") end
  local self = new_engine(p, opts)
  self.graph = graph.build(p, graph.in_workspace(self.root))
  -- The steps to decide, in run order; selected is nil when they are all
  -- of them (no set of 100,000 steps to build and look up).
  local selected
  if opts.targets and #opts.targets > 0 then selected = graph.select(self.graph, p, opts.targets) end
  self:open()
  local steps = self.graph.order
  if selected then
    steps = {}
    for _, step in ipairs(self.graph.order) do
      if selected[step] then steps[#steps + 1] = step end
    end
  end
  state.prefetch(self.ctx, steps)
  self.out.total = #steps
  self:check_executors(steps)
  local loop_steps = self:up_to_date_first(steps, selected)
  if #loop_steps > 0 then
    -- Only a run with steps to decide reads the artifacts: a no-op does not.
    local problem, perr, pcode = require("mlx.pipeline.pinned").problem(self.root, self.store, loop_steps)
    if perr then
      self.store:close()
      ui.fail(ui.exit_code_for(pcode), "%s", perr)
    end
    if problem and opts.dry_run then
      ui.warn(problem)
    elseif problem then
      self.store:close()
      ui.usage_error("%s", problem)
    end
  end
  local ok, err = xpcall(opts.dry_run and self.plan_in_order or self.loop, function(e)
    if e == "interrupted" or ui.is_failure(e) then return e end
    return opts.debug and debug.traceback(tostring(e), 2) or e
  end, self, loop_steps, selected)
  if not ok then
    self:kill_running("KILLED")
    self:close_executors()
    self.out:clear()
    pcall(self.checkpoint, self, true)
    self:remember_pins()
    self.store:close()
    error(err, 0)
  end
  self:close_executors()
  if loop_steps ~= steps then self:skip_after_failure(steps) end
  self:checkpoint(true)
  self:remember_pins()
  self.store:close()
  self.out:clear()
  local counts = {}
  for _, outcome in pairs(self.results) do counts[outcome] = (counts[outcome] or 0) + 1 end
  return { counts = counts, failed = self.failed, results = self.results, times = self.times, reasons = self.reasons,
    planned = self.planned, order = steps }
end

return M
