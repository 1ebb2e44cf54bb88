--- mlx.executor.local: steps as processes of this machine, started by
--- mlx.proc (their process groups are stopped with mlx, see docs/proc.md).
--- A step takes as many -j slots as it asks cpus (resources.cpus), so a
--- 2-cpu step takes two; one asking more than -j runs alone. Other
--- resources (mem, time, gpus, partition) mean nothing here and are ignored.
local proc = require "mlx.proc"

local M = {}

local Local = {}
Local.__index = Local

--- Returns a local executor; ctx as mlx.executor says. Never fails.
function M.new(ctx)
  return setmetatable({ jobs = ctx.jobs or 1 }, Local)
end

--- Returns the -j slots job takes: its cpus, at most -j.
function Local:slots(job)
  local cpus = job.resources and job.resources.cpus or 1
  return math.min(cpus, self.jobs)
end

--- Starts job's command now; true (job.pid set to its process group), or
--- nil and why it could not start.
function Local:submit(job)
  local spec = {
    cwd = job.cwd, env = job.env, timeout = job.timeout,
    stdout = job.stdout, stderr = job.stderr,
  }
  if job.shell then
    spec.shell = job.shell
  else
    for i, a in ipairs(job.argv) do spec[i] = a end
  end
  local handle, err = proc.spawn(spec)
  if not handle then return nil, err end
  job.handle = handle
  job.pid = handle:pid()
  return true
end

--- Returns true while job's process group runs and is not reaped (its id
--- is still the step's), else false.
function Local:alive(job)
  return job.handle ~= nil and not job.handle:finished()
end

--- Waits at most seconds for one of jobs to end; returns a list of at most
--- one { job, result } (result: mlx.proc's result table). Raises
--- "interrupted" on Ctrl-C.
function Local:poll(jobs, seconds)
  local handles = {}
  for i, job in ipairs(jobs) do handles[i] = job.handle end
  if #handles == 0 then return {} end
  local handle, result, position = proc.wait_any(handles, seconds)
  if handle then
    handle:close()
    return { { job = jobs[position], result = result } }
  end
  if result == "interrupted" then error("interrupted", 0) end
  return {}
end

--- Stops every job of the list (their process groups together, one grace
--- period) and returns once they are gone.
function Local:cancel(jobs)
  for _, job in ipairs(jobs) do
    if job.handle then job.handle:kill() end
  end
  for _, job in ipairs(jobs) do
    if job.handle then job.handle:close() end
  end
end

return M
