--- mlx.pipeline.output: what a user sees while a pipeline runs. Step output
--- lines are printed as they come with the step's name as a prefix (stdout
--- lines on stdout, stderr lines on stderr); what mlx says about steps goes
--- to stderr; on a terminal, one live line shows the running steps and
--- their elapsed time.
local core = require "mlx.core"
local ui = require "mlx.ui"

local M = {}

local Output = {}
Output.__index = Output

--- Returns an output for one pipeline run; quiet = true prints only
--- failures.
function M.new(quiet)
  return setmetatable({ quiet = quiet, live = core.isatty(2), shown = false }, Output)
end

--- Clears the live line if it is shown.
function Output:clear()
  if self.shown then
    io.stderr:write("\r\27[K")
    self.shown = false
  end
end

function Output:note(message)
  if self.quiet then return end
  self:clear()
  ui.note(message)
end

--- Returns a function(line) printing a step's output line with its prefix.
function Output:line_printer(step, stream)
  local prefix = "[" .. step.name .. "] "
  local file = stream == "stderr" and io.stderr or io.stdout
  return function(line)
    self:clear()
    file:write(prefix, line, "\n")
    file:flush()
  end
end

function Output:started(step)
  self:note("running " .. step.name)
end

function Output:finished(step, seconds)
  if seconds and seconds >= 1 then self:note(("%s finished in %.1f s"):format(step.name, seconds)) end
end

function Output:restored(step)
  self:note("restored " .. step.name .. " from the run-cache")
end

function Output:failed(step, message)
  self:clear()
  ui.error(message)
end

function Output:explain(step, reasons)
  self:note(("%s runs: %s"):format(step.name, table.concat(reasons, "; ")))
end

local PLANNED = { run = "would run", restore = "would restore", blocked = "blocked:" }

--- Prints a dry run's decision for a step: "would run train: param 'lr'
--- changed …", "would restore train: …" (from the run-cache), "blocked:
--- select: dep 'x' does not exist".
function Output:planned(step, action, reasons)
  if self.quiet then return end
  self:clear()
  ui.out(("%s %s: %s"):format(PLANNED[action], step.name, table.concat(reasons, "; ")))
end

--- Redraws the live line (terminals only) with the running jobs.
function Output:progress(running)
  if not self.live or self.quiet or #running == 0 then return end
  local parts = {}
  for _, job in ipairs(running) do
    parts[#parts + 1] = ("%s %.0fs"):format(job.step.name, core.clock() - job.started)
  end
  local text = "  running: " .. table.concat(parts, ", ")
  if #text > 120 then text = text:sub(1, 117) .. "..." end
  io.stderr:write("\r\27[K", text)
  io.stderr:flush()
  self.shown = true
end

--- Returns the summary line of a finished run.
function M.summary(name, result, seconds)
  local c = result.counts
  local parts = {}
  local function add(n, what) if n and n > 0 then parts[#parts + 1] = ("%d %s"):format(n, what) end end
  add(c.ran, "ran")
  add(c.restored, "restored from the run-cache")
  add(c.uptodate, "up to date")
  add(c["would run"], "would run")
  add(c["would restore"], "would be restored from the run-cache")
  add(c.blocked, "blocked")
  add(c.failed, "failed")
  add(c.skipped, "skipped")
  add(c.killed, "killed")
  if #parts == 0 then parts[1] = "nothing to do" end
  return ("pipeline '%s': %s (%.1f s)"):format(name, table.concat(parts, ", "), seconds)
end

return M
