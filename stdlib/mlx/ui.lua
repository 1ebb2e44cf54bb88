--- mlx.ui: every message mlx shows a user goes through here, and the exit
--- codes are defined here once (docs/cli.md documents them).
local M = {}

--- Exit codes of the mlx command.
M.EXIT = {
  OK = 0,          -- success
  FAILED = 1,      -- a step, check or recipe failed while running
  USAGE = 2,       -- usage error or bad input (flag, file, recipe that does not compile)
  INTERRUPTED = 130, -- SIGINT or SIGTERM
}

local Failure = {}
Failure.__index = Failure
Failure.__tostring = function(f) return f.message end

--- Raises a failure that the CLI reports as one line and turns into exit
--- code `code`. Never returns.
---@param code integer one of M.EXIT
---@param fmt string format string for string.format
function M.fail(code, fmt, ...)
  local message = select("#", ...) > 0 and fmt:format(...) or fmt
  error(setmetatable({ code = code, message = message }, Failure), 0)
end

--- Raises a usage failure (exit 2). Never returns.
function M.usage_error(fmt, ...)
  M.fail(M.EXIT.USAGE, fmt, ...)
end

--- Returns true if err was raised by M.fail.
function M.is_failure(err)
  return getmetatable(err) == Failure
end

--- Prints "mlx: error: MESSAGE" on stderr.
function M.error(message)
  io.stderr:write("mlx: error: ", tostring(message), "\n")
end

--- Prints "mlx: warning: MESSAGE" on stderr.
function M.warn(message)
  io.stderr:write("mlx: warning: ", tostring(message), "\n")
end

--- Prints a progress or status note "mlx: MESSAGE" on stderr, keeping stdout
--- for results that scripts parse.
function M.note(message)
  io.stderr:write("mlx: ", tostring(message), "\n")
end

--- Writes a line of results to stdout.
function M.out(line)
  io.stdout:write(line, "\n")
end

return M
