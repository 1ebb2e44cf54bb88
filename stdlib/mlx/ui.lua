--- mlx.ui: every message mlx shows a user goes through here, and the exit
--- codes are defined here once (docs/cli.md documents them).
local M = {}

--- Exit codes of the mlx command.
M.EXIT = {
  OK = 0,          -- success
  FAILED = 1,      -- a step, check or recipe failed while running
  USAGE = 2,       -- usage error or bad input (flag, file, recipe that does not compile)
  NOT_VERIFIED = 3, -- mlx verify could not run the recipe in a copy: nothing was checked
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

-- Every message on stderr passes through mlx.redact: a URL with a token in
-- its query string, quoted in any error, is shown with the token hidden.
local function redacted(message)
  return require("mlx.redact").text(tostring(message))
end

--- Prints "mlx: error: MESSAGE" on stderr, with secrets in URLs hidden.
function M.error(message)
  io.stderr:write("mlx: error: ", redacted(message), "\n")
end

--- Prints "mlx: warning: MESSAGE" on stderr, with secrets in URLs hidden.
function M.warn(message)
  io.stderr:write("mlx: warning: ", redacted(message), "\n")
end

--- Prints a progress or status note "mlx: MESSAGE" on stderr, keeping stdout
--- for results that scripts parse; secrets in URLs are hidden.
function M.note(message)
  io.stderr:write("mlx: ", redacted(message), "\n")
end

--- Returns true when stderr is a terminal that gets live, redrawn lines:
--- not in CI, not with NO_COLOR set or TERM=dumb (plain output asked for).
function M.live_terminal()
  if not require("mlx.core").isatty(2) then return false end
  return not os.getenv("CI") and not os.getenv("NO_COLOR") and os.getenv("TERM") ~= "dumb"
end

--- Returns the exit code for a failure code of the mlx.* modules (the
--- third value of `nil, message, code`): bad input ("invalid", "notfound",
--- which includes a corrupt lock file, and the code also_bad_input if
--- given) is USAGE (2), anything else FAILED (1). "interrupted" raises the
--- interruption again. This is the one map from failure codes to exit
--- codes; commands use it through M.check and M.check_file.
---@param code string|nil
---@param also_bad_input string|nil a code that is bad input where it is used
function M.exit_code_for(code, also_bad_input)
  if code == "invalid" or code == "notfound" or (code ~= nil and code == also_bad_input) then
    return M.EXIT.USAGE
  end
  if code == "interrupted" then error("interrupted", 0) end
  return M.EXIT.FAILED
end

--- Returns value unless it is nil; then raises err as a failure with the
--- exit code for code. The form of a command: `local run = ui.check(store:get(id))`.
function M.check(value, err, code)
  if value == nil then M.fail(M.exit_code_for(code), "%s", err) end
  return value
end

--- As M.check, for opening a file the user keeps (the runs database): one
--- that is corrupt ("corrupt") is bad input too, to be fixed by the user.
function M.check_file(value, err, code)
  if value == nil then M.fail(M.exit_code_for(code, "corrupt"), "%s", err) end
  return value
end

--- Returns bytes as a short human-readable size: "512 B", "4.2 kB",
--- "700.0 MB" (powers of 1000, as ls -h --si and df -H).
function M.format_size(bytes)
  if bytes < 1000 then return ("%d B"):format(bytes) end
  local units = { "kB", "MB", "GB", "TB", "PB" }
  local value, unit = bytes / 1000, 1
  while value >= 1000 and unit < #units do
    value, unit = value / 1000, unit + 1
  end
  return ("%.1f %s"):format(value, units[unit])
end

--- Writes a line of results to stdout.
function M.out(line)
  io.stdout:write(line, "\n")
end

return M
