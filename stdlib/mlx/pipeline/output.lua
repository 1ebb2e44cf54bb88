--- mlx.pipeline.output: what a user sees while a pipeline runs, as ninja
--- shows it. Step output lines are printed as they come with the step's
--- name as a prefix (stdout lines on stdout, stderr lines on stderr); what
--- mlx says about steps goes to stderr. On a terminal, one live line shows
--- the progress and the running steps, `[37/1000] 2 running: train,
--- featurize  00:12`, redrawn in place; failures are printed in full above
--- it. Elsewhere (not a terminal, CI set, NO_COLOR set or TERM=dumb) each
--- step that ran or was restored gets one plain line when it ends, and
--- up-to-date steps none. Quiet prints only failures.
local core = require "mlx.core"
local ui = require "mlx.ui"

local M = {}

local Output = {}
Output.__index = Output

--- Returns an output for one pipeline run of total steps; quiet = true
--- prints only failures.
function M.new(quiet, total)
  return setmetatable({ quiet = quiet, live = ui.live_terminal(), shown = false, total = total or 0, done = 0,
    began = core.clock(), drawn_at = -1 }, Output)
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

--- A step that ran to success, in seconds.
function Output:finished(step, seconds)
  if self.live then return end
  if seconds and seconds >= 0.1 then
    self:note(("ran %s in %.1f s"):format(step.name, seconds))
  else
    self:note("ran " .. step.name)
  end
end

function Output:restored(step)
  if self.live then return end
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
  -- One reason is the common case (a fresh plan's every step): joined
  -- without a format and a concat of its own.
  local why = #reasons == 1 and reasons[1] or table.concat(reasons, "; ")
  ui.out(PLANNED[action] .. " " .. step.name .. ": " .. why)
end

--- Redraws the live line (terminals only, at most ten times a second)
--- with the progress and the running jobs; count() returns how many steps
--- are decided (asked only when the line is redrawn).
function Output:progress(running, count)
  if not self.live or self.quiet then return end
  local now = core.clock()
  if now - self.drawn_at < 0.1 and self.shown then return end
  self.drawn_at = now
  self.done = count()
  local names = {}
  for i, job in ipairs(running) do
    if i > 3 then names[#names + 1] = "…" break end
    names[#names + 1] = job.step.name
  end
  local elapsed = math.floor(now - self.began)
  local text = ("[%d/%d] %d running: %s  %02d:%02d"):format(self.done, self.total, #running,
    table.concat(names, ", "), elapsed // 60, elapsed % 60)
  local width = tonumber(os.getenv("COLUMNS") or "") or 100
  if #text > width - 1 then text = text:sub(1, width - 4) .. "..." end
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
