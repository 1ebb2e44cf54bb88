--- mlx.testing: helpers for a project's tests under `mlx test`: a
--- temporary copy of the project, recipes and single steps run in it by the
--- real mlx, and assertions on its outs, metrics and runs.
---
---     local lu = require "luaunit"
---     local testing = require "mlx.testing"
---     TestPipeline = {}
---     function TestPipeline:test_check_passes()
---       local p <close> = testing.project { copy = { "pipeline.lua", "data", "src" } }
---       p:recipe("pipeline.lua", { steps = { "check" } })
---       p:assert_out("work/check.json")
---       lu.assertEquals(p:metrics("check")["check.failed"], 0)
---     end
---
--- Errors: misuse and failed expectations raise (LuaUnit reports them as
--- failures with the message); nothing returns nil, message.
local core = require "mlx.core"
local fs = require "mlx.fs"
local proc = require "mlx.proc"

local M = {}

local Project = {}
Project.__index = Project

local function fail(level, fmt, ...)
  error(fmt:format(...), level + 1)
end

--- Returns the directory tests copy projects from: MLX_TEST_ROOT (set by
--- mlx test to the project root), else the working directory.
function M.root()
  return os.getenv("MLX_TEST_ROOT") or fs.cwd()
end

--- Returns the path of the mlx binary running the tests.
function M.mlx_path()
  return core.exe_dir .. "/mlx"
end

--- Returns a new temporary project (a Project; use it as a <close>
--- variable or call :close()). options, all optional: from (directory to
--- copy from, default M.root()), copy (paths relative to from: files and
--- directories copied in, default none), files ({[path] = content} written
--- after the copy), git (true: git init and commit everything, for recipes
--- that record commits). The project is initialised with mlx init. Raises
--- if a path to copy is missing or a command fails.
function M.project(options)
  options = options or {}
  local from = options.from or M.root()
  local dir = os.tmpname()
  os.remove(dir)
  assert(fs.mkdirs(dir))
  local self = setmetatable({ dir = dir, from = from }, Project)
  for _, rel in ipairs(options.copy or {}) do
    if not fs.stat(from .. "/" .. rel) then
      self:close()
      fail(2, "mlx.testing.project: %s/%s does not exist", from, rel)
    end
    local parent = rel:match("^(.*)/[^/]+$")
    if parent then assert(fs.mkdirs(dir .. "/" .. parent)) end
    local r, _, _, failed = proc.run { "cp", "-R", from .. "/" .. rel, dir .. "/" .. (parent or ""), stderr = "capture" }
    r = r or failed
    if not r or not r.ok then
      self:close()
      fail(2, "mlx.testing.project: cannot copy %s: %s", rel, r and r.stderr or "cp did not run")
    end
  end
  for rel, content in pairs(options.files or {}) do self:write(rel, content) end
  self:mlx({ "init" }, { expect = 0 })
  if options.git then
    for _, cmd in ipairs({ { "git", "init", "-q" }, { "git", "add", "-A" },
      { "git", "-c", "user.name=mlx test", "-c", "user.email=test@localhost", "commit", "-qm", "test project" } }) do
      cmd.cwd, cmd.stdout, cmd.stderr = dir, "capture", "stdout"
      local r, _, _, failed = proc.run(cmd)
      r = r or failed
      if not r or not r.ok then fail(2, "mlx.testing.project: %s failed: %s", cmd[2], r and r.stdout or "") end
    end
  end
  return self
end

--- Returns the absolute path of rel inside the project.
function Project:path(rel)
  return self.dir .. "/" .. rel
end

--- Writes content to rel in the project (making its directories).
function Project:write(rel, content)
  local parent = rel:match("^(.*)/[^/]+$")
  if parent then assert(fs.mkdirs(self:path(parent))) end
  assert(fs.write(self:path(rel), content))
end

--- Returns the bytes of rel; raises naming the file if it cannot be read.
function Project:read(rel)
  local f, err = io.open(self:path(rel), "rb")
  if not f then fail(2, "%s: %s", rel, err) end
  local s = f:read("a")
  f:close()
  return s
end

--- Returns rel decoded as JSON; raises if it is missing or not JSON.
function Project:json(rel)
  local v, err = require("mlx.json").load(self:path(rel))
  if v == nil then fail(2, "%s", err) end
  return v
end

--- Runs `mlx ARGS…` in the project and returns the result {code, stdout,
--- stderr, ok}. options.expect: the exit code it must end with (raises
--- with its stderr otherwise); options.env: extra environment. The project
--- tracks into its own .mlx/runs.db: MLX_TRACKING_URI and MLX_RUNS_DB (a
--- team's shared database, in CI) are not passed on unless options.env
--- sets them.
function Project:mlx(args, options)
  options = options or {}
  local cmd = { M.mlx_path(), table.unpack(args) }
  local env = { MLX_TRACKING_URI = false, MLX_RUNS_DB = false }
  for k, v in pairs(options.env or {}) do env[k] = v end
  cmd.cwd, cmd.stdout, cmd.stderr, cmd.env = self.dir, "capture", "capture", env
  -- A non-zero exit is a result here (the fourth value of proc.run).
  local done, err, _, r = proc.run(cmd)
  r = done or r
  if not r then fail(2, "cannot run mlx: %s", err) end
  local result = { code = r.code, ok = r.ok, stdout = r.stdout, stderr = r.stderr }
  if options.expect and r.code ~= options.expect then
    fail(2, "mlx %s exited with %s, expected %d:\n%s%s", table.concat(args, " "), tostring(r.code or "signal " .. tostring(r.signal)),
      options.expect, r.stdout, r.stderr)
  end
  return result
end

--- Runs `mlx recipe FILE [STEP…] [-p K=V…]` in the project; returns the
--- result as :mlx does. options: steps (names: only those and what they
--- depend on), params ({k = v}), expect (exit code; default 0, false for
--- any), env.
function Project:recipe(file, options)
  options = options or {}
  local args = { "recipe", file }
  for _, s in ipairs(options.steps or {}) do args[#args + 1] = s end
  local keys = {}
  for k in pairs(options.params or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    args[#args + 1] = "-p"
    args[#args + 1] = k .. "=" .. tostring(options.params[k])
  end
  local expect = options.expect
  if expect == nil then expect = 0 end
  return self:mlx(args, { expect = expect or nil, env = options.env })
end

--- Runs one step of the recipe (with what it depends on) as :recipe.
function Project:step(file, name, options)
  options = options or {}
  local o = {}
  for k, v in pairs(options) do o[k] = v end
  o.steps = { name }
  return self:recipe(file, o)
end

--- Raises unless rel exists in the project (a file or directory).
function Project:assert_out(rel)
  if not fs.stat(self:path(rel)) then fail(2, "expected the out %s to exist", rel) end
end

local function store(self)
  local db = self.dir .. "/.mlx/runs.db"
  if not fs.stat(db) then fail(3, "no runs yet (%s does not exist)", db) end
  local track = require "mlx.track"
  local s, err = track.open(db, { read_only = true })
  if not s then fail(3, "%s", err) end
  return s
end

--- Returns the runs of the project (newest first) as mlx.track records,
--- filtered by query ({filter, limit} as mlx.track's Store:runs).
function Project:runs(query)
  local s = store(self)
  local rows, err = s:runs(query or {})
  s:close()
  if not rows then fail(2, "%s", err) end
  return rows
end

--- Returns the latest metrics ({key = value}) of the newest run of step
--- (a step name; nil for the newest recipe run); raises if there is none.
function Project:metrics(step)
  local filter = step and ("step = '%s'"):format(step:gsub("'", "''")) or "step IS NULL"
  local rows = self:runs { filter = filter, limit = 1 }
  if #rows == 0 then fail(2, "no run of %s", step and ("step " .. step) or "a recipe") end
  return rows[1].metrics
end

--- Removes the project's directory; idempotent (also __close and __gc).
function Project:close()
  if self.dir then
    fs.remove_tree(self.dir)
    self.dir = nil
  end
end
Project.__close = Project.close
Project.__gc = Project.close

return M
