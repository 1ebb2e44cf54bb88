-- A small executor a project adds in lib/mlx/executor/fake.lua (shown in
-- docs/extending.md): it runs each job as a process of this machine
-- through mlx.proc, and writes one line per job it is given to
-- fake-executor.log, as a real one would call its cluster's API.
local proc = require "mlx.proc"

local Fake = {}
Fake.__index = Fake

local function new(ctx)
  return setmetatable({ log = assert(io.open(ctx.root .. "/fake-executor.log", "a")),
    tag = ctx.options.tag or "fake" }, Fake)
end

function Fake:submit(job)
  self.log:write(job.name, " ", job.resources.mem or "-", "\n")
  self.log:flush()
  local spec = { cwd = job.cwd, env = job.env, stdout = job.stdout, stderr = job.stderr, shell = job.shell }
  if not job.shell then table.move(job.argv, 1, #job.argv, 1, spec) end
  local handle, err = proc.spawn(spec)
  if not handle then return nil, err end
  job.handle = handle
  return true
end

function Fake:poll(jobs, seconds)
  local handles = {}
  for i, job in ipairs(jobs) do handles[i] = job.handle end
  local handle, result, i = proc.wait_any(handles, seconds)
  if result == "interrupted" then error("interrupted", 0) end
  if not handle then return {} end
  handle:close()
  result.tags = { ["fake.executor"] = self.tag }
  return { { job = jobs[i], result = result } }
end

function Fake:cancel(jobs)
  for _, job in ipairs(jobs) do job.handle:close() end
end

function Fake:close()
  self.log:close()
end

return { new = new }
