--- mlx.verify.scratch: the copies of a workspace in which `mlx verify`
--- re-executes steps, and the conditions varied between them.
---
--- A copy is a small mlx project below the real one's .mlx/tmp/ (on the
--- same file system as the store, so files are reflinked where the file
--- system can): the recipe, its params files, lib/ and .mlx/config.lua
--- from the workspace, mlx.lock without the entries of the steps to
--- verify, and every input those steps need as mlx.lock pins it — from the
--- store (each object verified as it is copied), else from the workspace
--- when its file still has the pinned hash. Nothing of the real project is written.
local fs = require "mlx.fs"
local json = require "mlx.json"
local lock = require "mlx.lock"
local proc = require "mlx.proc"
local state = require "mlx.pipeline.state"

local M = {}

--- The conditions of each re-execution, after reprotest's: a different
--- directory (path and depth), time zone, locale, umask, number of jobs,
--- and order in which the copy's files are created (which is the order a
--- directory lists them in on file systems that list in creation order,
--- such as tmpfs; ext4 and xfs list by a hash of the name, which cannot be
--- varied without a FUSE layer such as disorderfs). docs/verify.md.
M.VARIANTS = {
  { dir = "a", suffix = "", tz = "UTC0", lang = "C.UTF-8", language = "en", umask = "022", jobs = 1,
    reverse = false },
  { dir = "bb/deeper", suffix = "-copy", tz = "XMT-14", lang = "fr_CH.UTF-8", language = "fr", umask = "077",
    reverse = true },
}

--- The variables M.VARIANTS sets; a step that declares one in `env` keeps
--- mlx's value (it is part of its key).
M.VARIED_ENV = { "TZ", "LANG", "LC_ALL", "LANGUAGE" }

local function base_name(path)
  return path:match("([^/]+)/*$") or "project"
end

--- Returns a one-line description of variant v for messages.
function M.describe(v, declared_env)
  local parts = {}
  if not declared_env.TZ then parts[#parts + 1] = "TZ=" .. v.tz end
  if not declared_env.LANG and not declared_env.LC_ALL then parts[#parts + 1] = "LANG=" .. v.lang end
  parts[#parts + 1] = "umask " .. v.umask
  parts[#parts + 1] = v.jobs and ("-j " .. v.jobs) or "-j default"
  parts[#parts + 1] = v.reverse and "files created in reverse order" or "files created in order"
  return table.concat(parts, ", ")
end

--- Returns the directory holding this process's copies: a new directory
--- <root>/.mlx/tmp/verify-<pid>-<n>/ (verify-kept-<pid>-<n>/ with keep,
--- which are left for the user). Copies left by a verify that was killed
--- (its process gone) are removed first.
function M.new_base(root, keep)
  local tmp = root .. "/.mlx/tmp"
  local ok, err, code = fs.mkdirs(tmp)
  if not ok then return nil, err, code end
  for _, name in ipairs(fs.list(tmp) or {}) do
    local pid = name:match("^verify%-(%d+)%-")
    if pid and not fs.stat("/proc/" .. pid) then fs.remove_tree(tmp .. "/" .. name) end
  end
  local self_pid = fs.realpath("/proc/self"):match("(%d+)$")
  for n = 1, 1000 do
    local base = ("%s/verify-%s%s-%d"):format(tmp, keep and "kept-" or "", self_pid, n)
    if not fs.stat(base) then
      ok, err, code = fs.mkdirs(base)
      if not ok then return nil, err, code end
      return base
    end
  end
  return nil, "cannot make a directory under " .. tmp, "io"
end

--- Returns the absolute path of the copy of variant v under base.
function M.copy_path(base, root, v)
  return ("%s/%s/%s%s"):format(base, v.dir, base_name(root), v.suffix)
end

-- Copies src to dst (a file or directory, dst's parent created) like
-- cp -R, reflinking where the file system can, keeping the mode bits.
local function copy(src, dst)
  local parent = dst:match("^(.*)/")
  local ok, err, code = fs.mkdirs(parent)
  if not ok then return nil, err, code end
  local st = fs.stat(src)
  local argv = { "cp", "-R", "--reflink=auto", "--no-dereference", "--preserve=mode" }
  if st and st.type == "directory" then
    ok, err, code = fs.mkdirs(dst)
    if not ok then return nil, err, code end
    src, dst = src .. "/.", dst
  end
  argv[#argv + 1] = src
  argv[#argv + 1] = dst
  argv.stderr = "capture"
  local result, failed
  result, err, code, failed = proc.run(argv)
  if result then return true end
  if failed then
    return nil, ("cannot copy %s: %s"):format(src, (failed.stderr:gsub("%s+$", ""))), "io"
  end
  return nil, err, code
end

--- Builds a copy at dir. spec = { root, store (the real store, open),
--- recipe (the recipe's path relative to root, or nil when it lies outside
--- the project), params_files (those the pipeline reads, relative to
--- root), lock_doc (mlx.lock as it is to be in the copy), items =
--- {{path, source = {kind = "store", entries} | {kind = "workspace"}}} },
--- reverse (create the items in reverse order). Returns true or nil,
--- message, code.
function M.build(dir, spec, reverse)
  local ok, err, code = fs.mkdirs(dir .. "/.mlx")
  if not ok then return nil, err, code end
  ok, err, code = json.save(dir .. "/" .. lock.NAME, spec.lock_doc)
  if not ok then return nil, err, code end
  local project_files = { ".mlx/config.lua", "lib" }
  if spec.recipe then project_files[#project_files + 1] = spec.recipe end
  -- The recipe reads its params files as it loads, in the copy too.
  for _, rel in ipairs(spec.params_files or {}) do project_files[#project_files + 1] = rel end
  for _, rel in ipairs(project_files) do
    if fs.stat(spec.root .. "/" .. rel) then
      ok, err, code = copy(spec.root .. "/" .. rel, dir .. "/" .. rel)
      if not ok then return nil, err, code end
    end
  end
  local first, last, stride = 1, #spec.items, 1
  if reverse then first, last, stride = #spec.items, 1, -1 end
  for i = first, last, stride do
    local item = spec.items[i]
    local bare = state.store_path(item.path)
    if item.source.kind == "store" then
      local entries = item.source.entries
      if reverse then
        local reversed = {}
        for j = #entries, 1, -1 do reversed[#reversed + 1] = entries[j] end
        entries = reversed
      end
      ok, err, code = spec.store:checkout(dir, entries, "copy")
    else
      ok, err, code = copy(spec.root .. "/" .. bare, dir .. "/" .. bare)
    end
    if not ok then return nil, ("%s: %s"):format(item.path, err), code end
  end
  return true
end

--- Runs `mlx recipe` in the copy at dir under variant v: the recipe with
--- the locked params (params_file), forcing the steps named in steps.
--- declared_env: {NAME = true} of variables some step declares (not
--- varied). The child's output goes to log. Returns the proc result table
--- (ok, code, …) however the recipe ended, or nil, message, code when it
--- could not be run (or "interrupted").
function M.execute(dir, v, spec, log)
  local mlx = require("mlx.core").exe_dir .. "/mlx"
  local argv = { "/bin/sh", "-c", "umask " .. v.umask .. ' && exec "$@"', "sh",
    mlx, "-C", dir, "recipe", spec.recipe_arg, "--params-file", spec.params_file }
  if v.jobs then
    argv[#argv + 1] = "-j"
    argv[#argv + 1] = tostring(v.jobs)
  end
  for _, name in ipairs(spec.steps) do
    argv[#argv + 1] = "--force-step"
    argv[#argv + 1] = name
  end
  for _, name in ipairs(spec.steps) do argv[#argv + 1] = name end
  -- The copy's runs go to its own database, never to the real one: not
  -- to a shared PostgreSQL database named by the environment or by the
  -- copied .mlx/config.lua either (MLX_TRACKING_URI wins over both).
  local env = { MLX_RUNS_DB = false, MLX_TRACKING_URI = dir .. "/.mlx/runs.db" }
  local values = { TZ = v.tz, LANG = v.lang, LC_ALL = v.lang, LANGUAGE = v.language }
  for _, name in ipairs(M.VARIED_ENV) do
    if not spec.declared_env[name] then env[name] = values[name] end
  end
  argv.env = env
  argv.cwd = dir
  argv.stdout = { log = log }
  argv.stderr = "stdout"
  local result, err, code, failed = proc.run(argv)
  if result or failed then return result or failed end
  return nil, err, code
end

--- Returns true when a step started in the copy at dir (its runs
--- database, which only the copy's `mlx recipe` writes, holds a step run),
--- false when the recipe ended before any did: it failed to load there,
--- or was refused before running a step. Then nothing was checked, and the
--- failure is the recipe's, not a step's.
function M.ran_a_step(dir)
  local path = dir .. "/.mlx/runs.db"
  if not fs.stat(path) then return false end
  local st = require("mlx.track").open(path)
  if not st then return false end
  local runs = st:runs {}
  st:close()
  for _, r in ipairs(runs or {}) do
    if r.step then return true end
  end
  return false
end

--- Returns the last n lines of the file at path (for a failure message).
function M.tail(path, n)
  local f = io.open(path, "rb")
  if not f then return {} end
  local lines = {}
  for line in f:lines() do
    lines[#lines + 1] = line
    if #lines > n then table.remove(lines, 1) end
  end
  f:close()
  return lines
end

return M
