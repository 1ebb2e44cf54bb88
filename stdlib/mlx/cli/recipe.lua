-- mlx recipe: run a recipe file. In a project each invocation is a run.
local fs = require "mlx.fs"
local project = require "mlx.project"
local script = require "mlx.script"
local ui = require "mlx.ui"

-- A word as a POSIX shell would need it quoted.
local function shell_quote(word)
  if word ~= "" and word:match("^[%w%-_./=:,+@%%]+$") then return word end
  return "'" .. word:gsub("'", "'\\''") .. "'"
end

-- path relative to root when inside it, with . and .. resolved.
local function project_relative(path, root)
  if path:sub(1, 1) ~= "/" then path = assert(fs.cwd()) .. "/" .. path end
  local parts = {}
  for part in path:gmatch("[^/]+") do
    if part == ".." then
      parts[#parts] = nil
    elseif part ~= "." then
      parts[#parts + 1] = part
    end
  end
  local normal = "/" .. table.concat(parts, "/")
  if normal:sub(1, #root + 1) == root .. "/" then return normal:sub(#root + 2) end
  return normal
end

-- The run of this invocation; nil outside a project (the recipe then runs
-- untracked, creating nothing).
local function start_run(path, args)
  local root = project.find_root()
  if not root and not os.getenv("MLX_RUNS_DB") then return nil end
  root = root or assert(fs.cwd())
  local track = require "mlx.track"
  local store, err, code = track.store()
  if store then
    local words = { "mlx", "recipe", shell_quote(path) }
    for _, a in ipairs(args) do words[#words + 1] = shell_quote(a) end
    local from_stdin = path == "-"
    local digest = not from_stdin and require("mlx.hash").file(path) or nil
    store, err, code = store:start_run {
      recipe = from_stdin and "(stdin)" or project_relative(path, root), recipe_hash = digest,
      command = table.concat(words, " "),
      git = track.git_context(root),
    }
  end
  if not store then
    ui.fail((code == "corrupt" or code == "invalid") and ui.EXIT.USAGE or ui.EXIT.FAILED,
      "cannot record the run: %s", err)
  end
  return store, track
end

-- How an error (or nil) ends the recipe's run: status, message, exit code.
local function outcome(err)
  if err == nil then return "FINISHED", nil, ui.EXIT.OK end
  if err == "interrupted" then return "KILLED", "interrupted", ui.EXIT.INTERRUPTED end
  if ui.is_failure(err) then return "FAILED", err.message, err.code end
  return "FAILED", tostring(err), ui.EXIT.FAILED
end

local function finish(run, track, before, status, message, exit_code)
  if run.status ~= "RUNNING" then return end
  track.finish_open(status, { message = message }, run)
  local usage = require("mlx.rundb").resources()
  local ok, err = run:finish(status, {
    message = message, exit_code = exit_code,
    cpu_seconds = usage.cpu_seconds - before.cpu_seconds, peak_rss = usage.peak_rss,
  })
  if not ok then ui.warn("cannot record the end of run " .. run.id .. ": " .. err) end
end

return {
  summary = "run a recipe (a Lua file using the mlx modules)",
  usage = "mlx recipe FILE [ARGS...]",
  description = [[
Runs FILE with the mlx modules available (local mlx = require "mlx") and the
global arg set: arg[0] is FILE, arg[1]... are ARGS. Put "--" before ARGS
that start with "-". Exit codes: 0 when the recipe finishes, 1 when it raises
an error (printed as file:line: message), 2 when it does not compile.

In an mlx project each invocation is a run in .mlx/runs.db (see 'mlx runs'):
its command, the recipe's path and hash, git commit, branch and dirty flag,
status (FINISHED, FAILED with the error, KILLED when interrupted), duration
and resources. mlx.log.metric(name, value, step) logs to it.]],
  args = { min = 1, name = "a recipe FILE" },
  main = function(_, args)
    local path = table.remove(args, 1)
    local chunk = script.load(path, "recipe")
    local run, track = start_run(path, args)
    if not run then
      script.run(chunk, path, args)
      return ui.EXIT.OK
    end
    local before = require("mlx.rundb").resources()
    -- os.exit ends the process without unwinding: record the run first.
    local exit = os.exit
    os.exit = function(code, close)
      local n = code == nil and 0 or code == true and 0 or code == false and 1 or math.tointeger(code) or 1
      finish(run, track, before, n == 0 and "FINISHED" or "FAILED",
        n ~= 0 and ("the recipe called os.exit(" .. tostring(code) .. ")") or nil, n)
      return exit(code, close)
    end
    -- Closed however the recipe ends, after the CLI's error handler has
    -- taken the traceback.
    local ending <close> = setmetatable({}, { __close = function(_, err)
      os.exit = exit
      finish(run, track, before, outcome(err))
    end })
    script.run(chunk, path, args)
    return ui.EXIT.OK
  end,
}
