--- mlx.executor.slurm_job: what a Slurm job of mlx runs on its node (the
--- batch script calls `mlx lua -e 'require("mlx.executor.slurm_job").main(DIR)'`).
--- It runs the step's command as mlx runs it locally (mlx.proc: its process
--- group, its rusage) and leaves files in DIR, on the filesystem mlx and the
--- nodes share:
---
---   start.json    { node, started (epoch seconds) }, when the job begins
---   stdout, stderr the step's output lines, as they come
---   status.json   { code, signal, timed_out, wall, user, sys, max_rss,
---                 node, orphaned }, written atomically when it ends
---
--- While the command runs it reads the heartbeat file mlx rewrites every
--- poll; when it has not changed for `heartbeat` seconds mlx is gone (killed
--- with -9, its machine lost), so it stops the command and ends the job.
local core = require "mlx.core"
local json = require "mlx.json"
local proc = require "mlx.proc"

local M = {}

local function hostname()
  local name = os.getenv("SLURMD_NODENAME")
  if name and name ~= "" then return name end
  local f = io.open("/proc/sys/kernel/hostname", "r")
  name = f and f:read("l") or "unknown"
  if f then f:close() end
  return name
end

local function read_all(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  return text
end

--- Runs the job described by DIR/spec.json and exits with the command's
--- exit status (so Slurm's state says FAILED for a failed step). Raises
--- when DIR/spec.json cannot be read.
function M.main(dir)
  local spec = assert(json.load(dir .. "/spec.json"))
  local node = hostname()
  assert(json.save(dir .. "/start.json", { node = node, started = os.time() }, { indent = 0 }))
  local command = {
    cwd = spec.cwd, env = spec.env, timeout = spec.timeout,
    stdout = { log = dir .. "/stdout" }, stderr = { log = dir .. "/stderr" },
  }
  if spec.shell then
    command.shell = spec.shell
  else
    for i, a in ipairs(spec.argv) do command[i] = a end
  end
  local status = { node = node }
  local handle, err = proc.spawn(command)
  if not handle then
    status.code, status.error = 127, err
  else
    local beat, beat_at = read_all(spec.heartbeat), core.clock()
    local result
    while true do
      local r, werr = handle:wait(1)
      if r then
        result = r
        break
      end
      if werr == "interrupted" then error("interrupted", 0) end
      local now_beat = read_all(spec.heartbeat)
      if now_beat ~= beat then
        beat, beat_at = now_beat, core.clock()
      elseif core.clock() - beat_at > spec.heartbeat_seconds then
        -- mlx stopped beating: nobody will collect this step.
        handle:close()
        status.orphaned = true
        status.code = 1
        break
      end
    end
    if result then
      status.code, status.signal, status.timed_out = result.code, result.signal, result.timed_out
      status.wall, status.user, status.sys, status.max_rss = result.wall, result.user, result.sys, result.max_rss
    end
    handle:close()
  end
  assert(json.save(dir .. "/status.json", status, { indent = 0 }))
  os.exit(status.code == 0 and not status.timed_out and 0 or (status.code or 1))
end

return M
