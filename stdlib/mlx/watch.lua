--- mlx.watch: the project's file-system watcher (docs/watch.md).
--- A daemon per project watches every directory but .git/ and .mlx/ with
--- inotify and tells `mlx status` and `mlx add DIR` which paths may have
--- changed since they last looked, so they stat those, not every file.
--- Status and add consult it by themselves (core/statcache_check.c): this
--- module starts, stops and asks it.
local core = require "mlx.core"
local native = require "mlx.watchd"

local M = {}

local function mlxdir(root)
  return root .. "/.mlx"
end

-- 1 while process pid exists and is not a zombie (a container's init may
-- be slow to reap the daemon, which nobody else waits for).
local function alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat", "r")
  if not f then return false end
  local line = f:read("l") or ""
  f:close()
  local state = line:match("^%d+ %b() (%a)")
  return state ~= nil and state ~= "Z"
end

local function check_root(root)
  if type(root) ~= "string" or root:sub(1, 1) ~= "/" then
    error("mlx.watch: root must be an absolute path", 3)
  end
end

--- The running watcher of the project at root (absolute).
---@return table|nil status { pid, root, token, watches, paths, queries, everything, overflows, degraded }
---@return string|nil message, code "notfound" when no watcher answers
function M.status(root)
  check_root(root)
  local text, err, code = native.request(mlxdir(root), "status")
  if not text then return nil, err, code end
  local st = {}
  for key, value in text:gmatch("(%w+) ([^\n]*)\n") do
    st[key] = tonumber(value) or value
  end
  st.degraded = st.degraded == 1
  return st
end

-- The watcher's files (watch.sock, watch.pid, watch/) are local state:
-- an .mlx/.gitignore written before mlx had a watcher learns them.
local function ignore_files(root)
  local path = mlxdir(root) .. "/.gitignore"
  local f = io.open(path, "r")
  if not f then return end
  local text = f:read("a") or ""
  f:close()
  for line in text:gmatch("[^\n]+") do
    if line == "/watch*" then return end
  end
  f = io.open(path, "a")
  if f then
    f:write((text == "" or text:sub(-1) == "\n") and "" or "\n", "/watch*\n")
    f:close()
  end
end

--- Starts the watcher of the project at root (absolute): it watches every
--- directory, then answers on .mlx/watch.sock; its log is .mlx/logs/watch.log.
---@return table|nil watcher { pid }
---@return string|nil message, code "busy" when one already runs, "io" when it cannot start
function M.start(root)
  check_root(root)
  ignore_files(root)
  local pid, err, code = native.start(root)
  if not pid then
    if code == "busy" then
      local st = M.status(root)
      err = st and ("a watcher already runs for %s (pid %d)"):format(root, st.pid) or err
    end
    return nil, err, code
  end
  return { pid = pid }
end

--- Stops the watcher of the project at root (absolute) and waits (up to
--- 10 s) until it is gone.
---@return boolean|nil true
---@return string|nil message, code "notfound" when none runs
function M.stop(root)
  check_root(root)
  local st = M.status(root)
  local text, err, code = native.request(mlxdir(root), "stop")
  if not text then return nil, err, code end
  for _ = 1, 200 do
    if not (st and st.pid and alive(st.pid)) then break end
    core.sleep(0.05)
  end
  return true
end

--- What changed in the project at root since token (nil: since ever).
---@return table|nil answer { token, everything = true } or { token, paths = { path, … } }
---@return string|nil message, code "notfound" when no watcher answers
function M.changed(root, token)
  check_root(root)
  if token ~= nil and type(token) ~= "string" then error("mlx.watch.changed: token must be a string", 2) end
  return native.changed(mlxdir(root), root, token)
end

return M
