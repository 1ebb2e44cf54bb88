--- mlx.executor.slurm: steps as Slurm batch jobs (docs/cluster.md).
---
--- Each job is a generated batch script (working directory the project
--- root, mlx's environment, the step's resources as #SBATCH lines) that
--- runs the step through mlx itself (mlx.executor.slurm_job), which writes
--- the exit status, rusage and output into a directory under
--- .mlx/tmp/slurm/ on the filesystem mlx and the nodes share. A round of
--- steps started together that ask the same resources goes as one job
--- array. Every poll interval one `squeue` call asks about every active
--- job; Slurm's final states become messages (`Slurm job 1234 ran out of
--- memory (mem=8G)`). Cancelling runs one `scancel` for all jobs and waits
--- until squeue no longer lists them.
---
--- Options (p:executor{ "slurm", … } or `slurm = { … }` in .mlx/config.lua):
--- poll (seconds between squeue calls, default 1), heartbeat (seconds
--- without mlx after which a job stops its step, default 60), array (false:
--- never submit job arrays), sbatch (a list of extra sbatch arguments), mlx
--- (the mlx binary the nodes run; default this one).
local core = require "mlx.core"
local fs = require "mlx.fs"
local json = require "mlx.json"
local proc = require "mlx.proc"

local M = {}

local Slurm = {}
Slurm.__index = Slurm

-- Final states: the job will not run again. Anything else (PENDING,
-- RUNNING, CONFIGURING, COMPLETING, SUSPENDED, REQUEUED …) is active.
local FINAL = {
  COMPLETED = true, FAILED = true, CANCELLED = true, TIMEOUT = true, OUT_OF_MEMORY = true,
  NODE_FAIL = true, PREEMPTED = true, BOOT_FAIL = true, DEADLINE = true, SPECIAL_EXIT = true,
  REVOKED = true,
}

-- Seconds to wait for the status file of a job Slurm says COMPLETED.
local STATUS_GRACE = 5

-- Reasons squeue gives for a pending job that the cluster, as it is
-- configured, will never start (a cluster without EnforcePartLimits queues
-- such a job instead of refusing it): the job is cancelled and its step
-- fails, rather than the pipeline waiting in silence.
local NEVER_STARTS = {
  PartitionConfig = "asks for more than a node of its partition has",
  PartitionNodeLimit = "asks for more nodes than its partition allows",
  PartitionTimeLimit = "asks for a longer time limit than its partition allows",
  BadConstraints = "asks for what no node of its partition has",
}

-- The resources a job asked for, as "cpus=2, mem=8G" (the partition's
-- defaults when it asked none).
local function asked(r)
  local parts = {}
  for _, k in ipairs({ "partition", "cpus", "mem", "gpus", "time" }) do
    if r and r[k] ~= nil then parts[#parts + 1] = ("%s=%s"):format(k, tostring(r[k])) end
  end
  return #parts > 0 and table.concat(parts, ", ") or "the partition's defaults"
end

-- Runs a Slurm client command; returns its stdout, or nil, its error text
-- and mlx.proc's failure code ("notfound" when it is not on PATH). After
-- Ctrl-C mlx.proc starts nothing (docs/proc.md), yet the jobs must still
-- be cancelled: then the command goes through io.popen.
local function slurm_command(argv)
  if not core.interrupted() then
    local spec = { stdout = "capture", stderr = "capture", timeout = 60 }
    for i, a in ipairs(argv) do spec[i] = a end
    local result, err, code, failed = proc.run(spec)
    if result then return result.stdout end
    local text = failed and failed.stderr and failed.stderr:gsub("%s+$", "") or ""
    return nil, text ~= "" and text or err, code
  end
  local pipe = io.popen(proc.quote(argv) .. " 2>&1", "r")
  if not pipe then return nil, argv[1] .. " could not start" end
  local out = pipe:read("a")
  local ok = pipe:close()
  if ok then return out end
  return nil, (out:gsub("%s+$", ""))
end

-- Sleeps; after Ctrl-C (when mlx.core.sleep would raise at once) by the
-- shell's sleep, so that waiting for cancelled jobs still waits.
local function pause(seconds)
  if core.interrupted() then
    os.execute("sleep " .. seconds)
  else
    core.sleep(seconds)
  end
end

local function read_all(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  return text
end

--- Returns a Slurm executor; ctx as mlx.executor says. Returns nil and a
--- message when sbatch cannot run here or an option is invalid.
function M.new(ctx)
  local o = ctx.options or {}
  local poll, heartbeat = o.poll or 1, o.heartbeat or 60
  if type(poll) ~= "number" or poll <= 0 then return nil, "option poll must be a positive number of seconds" end
  if type(heartbeat) ~= "number" or heartbeat <= 0 then
    return nil, "option heartbeat must be a positive number of seconds"
  end
  if o.sbatch ~= nil and type(o.sbatch) ~= "table" then return nil, "option sbatch must be a list of arguments" end
  -- sbatch retries a missing configuration file for 60 s before it says
  -- so: a SLURM_CONF that names nothing is told at once.
  local conf = os.getenv("SLURM_CONF")
  if conf and conf ~= "" and not fs.stat(conf) then
    return nil, ("SLURM_CONF names %s, which does not exist: point it at the cluster's slurm.conf or unset it,"
      .. " see docs/cluster.md"):format(conf)
  end
  local version, verr, vcode = slurm_command({ "sbatch", "--version" })
  if not version and vcode == "notfound" then
    return nil, "sbatch is not on PATH: install Slurm's client commands or add them to PATH, see docs/cluster.md"
  elseif not version then
    -- sbatch is there but cannot reach a cluster (no slurm.conf, no
    -- slurmctld): its last line says why, and PATH is not the fix.
    return nil, ("sbatch does not work here (%s): Slurm must be configured on this machine"
      .. " (slurm.conf, a reachable slurmctld), see docs/cluster.md"):format(verr:match("([^\n]*)$"))
  end
  local dir = ("%s/.mlx/tmp/slurm/%d-%s"):format(ctx.root, os.time(),
    require("mlx.hash").bytes(tostring(core.clock()) .. tostring({})):sub(1, 8))
  local ok, err = fs.mkdirs(dir)
  if not ok then return nil, err end
  local self = setmetatable({
    root = ctx.root, dir = dir, poll_every = poll, heartbeat_seconds = heartbeat,
    array = o.array ~= false, extra = o.sbatch or {}, note = ctx.note, cancel_on_failure = true,
    mlx = o.mlx or (core.exe_dir and (core.exe_dir .. "/mlx")) or "mlx",
    count = 0, queue = {}, by_id = {}, submitted = {}, next_squeue = 0, beats = 0, beat_at = -1,
  }, Slurm)
  self.heartbeat = dir .. "/heartbeat"
  self:beat()
  return self
end

-- Rewrites the heartbeat file (at most once a second): jobs whose mlx
-- stops doing so stop their step (mlx.executor.slurm_job).
function Slurm:beat()
  local now = core.clock()
  if now - self.beat_at < 1 then return end
  self.beat_at = now
  self.beats = self.beats + 1
  local f = io.open(self.heartbeat, "w")
  if f then
    f:write(self.beats, "\n")
    f:close()
  end
end

--- Queues job for the next flush; true, or nil and a message when its
--- directory cannot be written.
function Slurm:submit(job)
  self.count = self.count + 1
  job.dir = ("%s/%d"):format(self.dir, self.count)
  local ok, err = fs.mkdirs(job.dir)
  if not ok then return nil, err end
  local env = {}
  for k, v in pairs(job.env or {}) do env[k] = v end
  ok, err = json.save(job.dir .. "/spec.json", {
    shell = job.shell, argv = job.argv and json.array(job.argv) or nil, cwd = job.cwd,
    env = json.object(env), timeout = job.timeout,
    heartbeat = self.heartbeat, heartbeat_seconds = self.heartbeat_seconds,
  }, { indent = 0 })
  if not ok then return nil, err end
  job.queued = true
  job.offsets = { stdout = 0, stderr = 0 }
  self.queue[#self.queue + 1] = job
  return true
end

local function resource_lines(resources)
  local lines = {}
  local r = resources or {}
  if r.cpus then lines[#lines + 1] = "--cpus-per-task=" .. r.cpus end
  if r.mem then lines[#lines + 1] = "--mem=" .. r.mem end
  if r.time then lines[#lines + 1] = "--time=" .. r.time end
  if r.gpus and r.gpus > 0 then lines[#lines + 1] = "--gres=gpu:" .. r.gpus end
  if r.partition then lines[#lines + 1] = "--partition=" .. r.partition end
  return lines
end

-- Writes the batch script of a group of jobs (one job, or a job array
-- whose task i runs the i-th job's directory) and submits it; returns the
-- job id or nil, message.
function Slurm:sbatch(group, name)
  local script = { "#!/bin/sh" }
  local function directive(arg) script[#script + 1] = "#SBATCH " .. arg end
  directive("--job-name=" .. ("mlx:" .. name):gsub("[^%w_.:+%-]", "_"))
  directive("--chdir=" .. self.root)
  for _, line in ipairs(resource_lines(group[1].resources)) do directive(line) end
  local base = group[1].dir
  if #group > 1 then
    base = ("%s/array-%d"):format(self.dir, self.count)
    self.count = self.count + 1
    local ok, err = fs.mkdirs(base)
    if not ok then return nil, err end
    local dirs = {}
    for i, job in ipairs(group) do dirs[i] = job.dir end
    ok, err = fs.write(base .. "/tasks", table.concat(dirs, "\n") .. "\n")
    if not ok then return nil, err end
    directive(("--array=0-%d"):format(#group - 1))
    directive("--output=" .. base .. "/slurm-%a.out")
    script[#script + 1] = ("dir=$(sed -n \"$((SLURM_ARRAY_TASK_ID + 1))p\" %s)"):format(proc.quote(base .. "/tasks"))
  else
    directive("--output=" .. base .. "/slurm.out")
    script[#script + 1] = "dir=" .. proc.quote(base)
  end
  script[#script + 1] = "MLX_SLURM_JOB_DIR=\"$dir\" exec " .. proc.quote(self.mlx)
    .. [[ lua -e 'require("mlx.executor.slurm_job").main(os.getenv("MLX_SLURM_JOB_DIR"))']]
  local path = base .. "/job.sh"
  local ok, err = fs.write(path, table.concat(script, "\n") .. "\n", "755")
  if not ok then return nil, err end
  local argv = { "sbatch", "--parsable" }
  for _, a in ipairs(self.extra) do argv[#argv + 1] = tostring(a) end
  argv[#argv + 1] = path
  local out, serr = slurm_command(argv)
  if not out then
    -- sbatch says it on two lines ("error: invalid partition specified:
    -- gpu", then "error: Batch job submission failed: …"): one line here.
    local lines = {}
    for line in serr:gmatch("[^\n]+") do
      line = line:gsub("^sbatch: error: ", ""):gsub("^sbatch: ", "")
      if line:find("%S") then lines[#lines + 1] = line end
    end
    return nil, "sbatch refused the job: " .. table.concat(lines, "; ")
  end
  local id = out:match("^%s*(%d+)")
  if not id then return nil, "sbatch printed no job id: " .. out end
  return id, base
end

local function signature(job)
  local r = job.resources or {}
  return table.concat({ tostring(r.cpus), tostring(r.mem), tostring(r.time), tostring(r.gpus),
    tostring(r.partition) }, "|")
end

--- Submits the queued jobs: those that ask the same resources as one job
--- array (unless option array = false), the others one by one. Returns
--- true, or nil and the first sbatch error (the jobs not submitted stay
--- queued, for the caller to fail).
function Slurm:flush()
  if #self.queue == 0 then return true end
  local groups, order = {}, {}
  for _, job in ipairs(self.queue) do
    local sig = self.array and signature(job) or tostring(job)
    if not groups[sig] then
      groups[sig] = {}
      order[#order + 1] = sig
    end
    table.insert(groups[sig], job)
  end
  self.queue = {}
  local submitted_at = os.time()
  for _, sig in ipairs(order) do
    local group = groups[sig]
    local name = group[1].name .. (#group > 1 and ("+" .. (#group - 1)) or "")
    local id, base = self:sbatch(group, name)
    if not id then
      -- The jobs not submitted keep job.queued: the caller fails them.
      return nil, base
    end
    groups[sig] = nil
    self.submitted[#self.submitted + 1] = id
    for i, job in ipairs(group) do
      job.queued = false
      job.base_id = id
      job.job_id = #group > 1 and ("%s_%d"):format(id, i - 1) or id
      job.slurm_out = #group > 1 and ("%s/slurm-%d.out"):format(base, i - 1) or (base .. "/slurm.out")
      job.state = "PENDING"
      job.submitted_at = submitted_at
      self.by_id[job.job_id] = job
    end
  end
  return true
end

-- Prints the step's new output lines (whole lines only, until the end).
local function tail(job, final)
  for _, stream in ipairs({ "stdout", "stderr" }) do
    local f = io.open(job.dir .. "/" .. stream, "rb")
    if f then
      f:seek("set", job.offsets[stream])
      local text = f:read("a") or ""
      f:close()
      local consumed = 0
      for line, stop in text:gmatch("([^\n]*)\n()") do
        job[stream](line)
        consumed = stop - 1
      end
      if final and consumed < #text then
        job[stream](text:sub(consumed + 1))
        consumed = #text
      end
      job.offsets[stream] = job.offsets[stream] + consumed
    end
  end
end

-- Expands squeue's "123_[0-3,7%2]" into task indexes.
local function expand_tasks(ranges, into)
  ranges = ranges:gsub("%%%d+$", "")
  for part in ranges:gmatch("[^,]+") do
    local a, b = part:match("^(%d+)%-(%d+)$")
    if a then
      for i = tonumber(a), tonumber(b) do into[#into + 1] = i end
    elseif part:match("^%d+$") then
      into[#into + 1] = tonumber(part)
    end
  end
end

-- The distinct Slurm job ids of jobs, in order (an array's tasks share
-- their array's id).
local function base_ids(jobs)
  local ids, seen = {}, {}
  for _, job in ipairs(jobs) do
    if job.base_id and not seen[job.base_id] then
      seen[job.base_id] = true
      ids[#ids + 1] = job.base_id
    end
  end
  return ids
end

-- One squeue call for every active job: updates job.state and job.reason;
-- a job squeue no longer knows is marked "GONE".
function Slurm:squeue(jobs)
  local ids = base_ids(jobs)
  if #ids == 0 then return end
  local out = slurm_command({ "squeue", "--noheader", "--states=all", "--format=%i|%T|%r",
    "--jobs=" .. table.concat(ids, ",") })
  if not out then return end -- a busy controller: ask again next interval
  local known = {}
  for line in out:gmatch("[^\n]+") do
    local id, st, reason = line:match("^%s*([^|]+)|([^|]*)|(.*)$")
    if id then
      local base, ranges = id:match("^(%d+)_%[(.*)%]$")
      if base then
        local tasks = {}
        expand_tasks(ranges, tasks)
        for _, t in ipairs(tasks) do known[("%s_%d"):format(base, t)] = { st, reason } end
      else
        known[id] = { st, reason }
      end
    end
  end
  for _, job in ipairs(jobs) do
    if job.job_id then
      local k = known[job.job_id]
      if k then
        job.state, job.reason = k[1], k[2]
      else
        job.state = "GONE"
      end
    end
  end
end

-- The result of an ended job: the wrapper's status when it wrote one, and
-- Slurm's state for what it could not (a time limit, memory, a node).
function Slurm:collect(job)
  tail(job, true)
  local status = json.load(job.dir .. "/status.json")
  local start = json.load(job.dir .. "/start.json")
  local tags = { ["slurm.job_id"] = job.job_id }
  if start then
    tags["slurm.node"] = start.node
    tags["slurm.queue_s"] = tostring(math.max(0, (start.started or 0) - job.submitted_at))
  end
  local r = job.resources or {}
  local slurm_log = read_all(job.slurm_out) or ""
  local state = job.state
  local what = "Slurm job " .. job.job_id
  local result = { ok = false, tags = tags, remote = "slurm" }
  if state == "OUT_OF_MEMORY" or slurm_log:find("Exceeded job memory limit", 1, true)
    or slurm_log:find("oom%-kill") then
    result.message = ("%s ran out of memory (mem=%s)"):format(what, r.mem or "the partition's default")
  elseif state == "TIMEOUT" or slurm_log:find("DUE TO TIME LIMIT", 1, true) then
    result.message = ("%s ran over its time limit (time=%s)"):format(what, r.time or "the partition's default")
  elseif status and status.orphaned then
    result.message = ("%s stopped its step: mlx stopped answering for %g s"):format(what, self.heartbeat_seconds)
  elseif status then
    result.ok = status.code == 0 and not status.timed_out
    result.code, result.signal, result.timed_out = status.code, status.signal, status.timed_out
    result.wall, result.user, result.sys, result.max_rss = status.wall, status.user, status.sys, status.max_rss
    if status.error then result.message = ("%s could not start the step: %s"):format(what, status.error) end
  elseif state == "NODE_FAIL" then
    result.message = ("%s failed with its node (NODE_FAIL)"):format(what)
  elseif state == "CANCELLED" then
    result.message = ("%s was cancelled outside mlx (scancel)"):format(what)
  elseif job.never_starts then
    result.message = ("%s %s (%s: %s), so Slurm would never start it; cancelled it: ask for less or another"
      .. " partition (sinfo shows them)"):format(what, NEVER_STARTS[job.never_starts], job.never_starts, asked(r))
  elseif state == "COMPLETED" or state == "GONE" then
    result.message = ("%s ended but left no status in %s: is the project on a filesystem the nodes share?")
      :format(what, job.dir)
  else
    result.message = ("%s ended %s (%s) before its step ran; Slurm's log: %s"):format(what, state,
      job.reason or "", job.slurm_out)
  end
  self.by_id[job.job_id] = nil
  -- A failed job's files stay for a look (its message names them).
  if result.ok then fs.remove_tree(job.dir) else self.kept = true end
  return result
end

--- Waits at most seconds for any of jobs to end: every 0.1 s it looks for
--- the status files the jobs write, and every `poll` seconds it asks
--- squeue once about all of them. Returns a list of { job, result }.
--- Raises "interrupted" on Ctrl-C.
function Slurm:poll(jobs, seconds)
  local deadline = core.clock() + seconds
  while true do
    self:beat()
    local ended = {}
    local now = core.clock()
    local ask = now >= self.next_squeue
    if ask then
      self:squeue(jobs)
      self.next_squeue = now + self.poll_every
    end
    for _, job in ipairs(jobs) do
      if not job.queued and job.state == "PENDING" and NEVER_STARTS[job.reason] and not job.never_starts then
        slurm_command({ "scancel", job.job_id })
        job.never_starts = job.reason
        ended[#ended + 1] = job
      elseif not job.queued then
        local final = FINAL[job.state] or job.state == "GONE"
        if job.state ~= "PENDING" or final then
          tail(job, false)
          -- The wrapper's status means the step is over, whatever squeue
          -- says yet. A final state without one is collected as it is, but
          -- only after a few seconds: a shared filesystem may show the
          -- file later than Slurm shows the state.
          if fs.stat(job.dir .. "/status.json") then
            ended[#ended + 1] = job
          elseif final then
            job.final_at = job.final_at or now
            local silent = job.state == "COMPLETED" or job.state == "GONE"
            if not silent or now - job.final_at >= STATUS_GRACE then ended[#ended + 1] = job end
          end
        end
      end
    end
    if #ended > 0 then
      local results = {}
      for i, job in ipairs(ended) do results[i] = { job = job, result = self:collect(job) } end
      return results
    end
    local left = deadline - core.clock()
    if left <= 0 then return {} end
    pause(math.min(0.1, left))
  end
end

-- Waits until squeue lists none of ids as active (at most 30 s).
function Slurm:wait_gone(ids)
  if #ids == 0 then return true end
  local started = core.clock()
  repeat
    local out = slurm_command({ "squeue", "--noheader", "--format=%i", "--jobs=" .. table.concat(ids, ",") })
    if out and not out:find("%d") then return true end
    if not out and core.clock() - started > 5 then return true end -- squeue no longer knows them
    pause(0.2)
  until core.clock() - started > 30
  return nil, ("Slurm jobs %s are still listed by squeue 30 s after scancel"):format(table.concat(ids, ","))
end

--- Cancels every job of the list with one scancel (whole arrays), and
--- returns once squeue lists none of them. Jobs still queued are dropped.
function Slurm:cancel(jobs)
  local ids = base_ids(jobs)
  for _, job in ipairs(jobs) do
    if job.job_id then self.by_id[job.job_id] = nil end
  end
  self.queue = {}
  if #ids == 0 then return end
  local argv = { "scancel" }
  for _, id in ipairs(ids) do argv[#argv + 1] = id end
  local ok, err = slurm_command(argv)
  if not ok then error("scancel failed: " .. err, 0) end
  local gone, gerr = self:wait_gone(ids)
  if not gone then error(gerr, 0) end
end

--- Waits (at most 30 s) until every job this executor submitted has left
--- squeue's active list: a step that wrote its status is over, and its job
--- ends moments later.
function Slurm:close()
  self:wait_gone(self.submitted)
  if not self.kept then fs.remove_tree(self.dir) end
end

return M
