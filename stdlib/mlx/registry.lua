--- mlx.registry: the model registry (DESIGN §5). A model is a name; each
--- registered version is a file or directory kept in the project's object
--- store, numbered 1, 2, … per name, with the run that produced it, a
--- description and tags; aliases ("staging", "production") name one version
--- each, and every move of an alias is kept in its history.
---
---     local registry = require "mlx.registry"
---     local v = assert(registry.register { name = "iris", path = "work/model.json" })
---     assert(registry.set_alias("iris", "staging", v.version))
---     local prod = registry.get("iris@production")     -- or "iris:3", or "iris" (latest)
---     assert(registry.checkout("iris@production", "deploy/model.json"))
---
--- References: NAME (the latest version), NAME:VERSION, NAME@ALIAS.
--- Failures of the world return nil, message, code: an unknown model,
--- version or alias is "notfound", a malformed reference "invalid". Misuse
--- (a wrong type, a malformed name given to register or set_alias) raises.
--- The tables live in .mlx/runs.db (or $MLX_RUNS_DB); `mlx gc` keeps the
--- object of every version.
local fs = require "mlx.fs"
local modeldb = require "mlx.modeldb"
local project = require "mlx.project"
local track = require "mlx.track"

local M = {}

local Registry = {}
Registry.__index = Registry

local function misuse(fmt, ...)
  error("mlx.registry: " .. fmt:format(...), 0)
end

local function check_name(name, is_alias, what)
  if type(name) ~= "string" then misuse("%s must be a string, not a %s", what, type(name)) end
  local ok, err = modeldb.check_name(name, is_alias)
  if not ok then misuse("%s", err) end
end

--- Returns true if name can name a model (or, with is_alias, an alias),
--- else nil, message, "invalid": letters, digits, '_', '-', '.', starting
--- with a letter or digit, at most 128 bytes; an alias is not only digits.
function M.check_name(name, is_alias)
  return modeldb.check_name(name, is_alias)
end

--- Returns the registry of the project at root (absolute), in its tracking
--- database (track.tracking(root)) or the one at options.db; or nil,
--- message, code.
--- Close it with reg:close().
function M.open(root, options)
  assert(type(root) == "string" and root:sub(1, 1) == "/", "mlx.registry.open: root must be an absolute path")
  local path = options and options.db
  local runs, err, code
  if path then
    runs, err, code = track.open(path)
  else
    local t
    t, err, code = track.tracking(root)
    if not t then return nil, err, code end
    runs, err, code = track.open_tracking(t)
  end
  if not runs then return nil, err, code end
  return setmetatable({ root = root, runs = runs, owns_runs = true }, Registry)
end

--- Returns the registry of the project holding the working directory, on
--- the database mlx.track uses; nil, "not in an mlx project (run 'mlx
--- init')", "notfound" outside one.
function M.default()
  local root = project.find_root()
  if not root then return nil, "not in an mlx project (run 'mlx init')", "notfound" end
  local runs, err, code = track.store()
  if not runs then return nil, err, code end
  return setmetatable({ root = root, runs = runs }, Registry)
end

--- Closes a registry made by M.open (its database). Returns true.
function Registry:close()
  if self.owns_runs and self.runs then self.runs:close() end
  self.runs = nil
  return true
end

-- The registry's writes for the backend of this registry's database: a
-- PostgreSQL database carries its own (mlx.track.pg), else mlx.modeldb.
local function writes(self)
  return self.runs.db.modeldb or modeldb
end

local function query(self, sql, params)
  return self.runs.db:query(sql, params)
end

-- ---- reading -------------------------------------------------------------------

--- Parses a reference: returns name, kind ("latest", "version", "alias"),
--- and the version number or alias; or nil, message, "invalid".
function M.parse_ref(ref)
  if type(ref) ~= "string" then misuse("a model reference must be a string, not a %s", type(ref)) end
  local name, version = ref:match("^([^@:]+):(%d+)$")
  local kind, which = "version", math.tointeger(tonumber(version))
  if not name then
    name, which = ref:match("^([^@:]+)@([^@:]+)$")
    kind = "alias"
  end
  if not name then name, kind, which = ref, "latest", nil end
  local function bad()
    return nil, ("invalid model reference '%s': expected NAME, NAME:VERSION or NAME@ALIAS"):format(ref), "invalid"
  end
  if not modeldb.check_name(name) or (kind == "alias" and not modeldb.check_name(which, true))
    or (kind == "version" and (not which or which < 1)) then
    return bad()
  end
  return name, kind, which
end

local function notfound(fmt, ...)
  return nil, fmt:format(...), "notfound"
end

-- Fills tags and aliases of version records of one model.
local function attach(self, name, records)
  local by_version = {}
  for _, r in ipairs(records) do by_version[r.version] = r end
  local rows, err, code = query(self, "SELECT version, key, value FROM model_version_tags WHERE name = ?", { name })
  if not rows then return nil, err, code end
  for _, row in ipairs(rows) do
    local r = by_version[row.version]
    if r then r.tags[row.key] = row.value end
  end
  rows, err, code = query(self, "SELECT version, alias FROM model_aliases WHERE name = ? ORDER BY alias", { name })
  if not rows then return nil, err, code end
  for _, row in ipairs(rows) do
    local r = by_version[row.version]
    if r then r.aliases[#r.aliases + 1] = row.alias end
  end
  return records
end

local function record(row)
  return {
    name = row.name, version = row.version, ref = row.name .. ":" .. row.version,
    hash = row.artifact_hash, type = row.type, size = row.size, files = row.files, mode = row.mode,
    path = row.path, run = row.run_id, created = row.created, description = row.description,
    tags = {}, aliases = {},
  }
end

local function model_exists(self, name)
  local rows, err, code = query(self, "SELECT 1 AS one FROM models WHERE name = ?", { name })
  if not rows then return nil, err, code end
  return rows[1] ~= nil
end

-- The failure for a model name the registry does not have, with the
-- closest name it has when one is near (a typo: "irs" for "iris").
local function unknown_model(self, name)
  local rows = query(self, "SELECT name FROM models")
  local names = {}
  for _, r in ipairs(rows or {}) do names[#names + 1] = r.name end
  local guess = require("mlx.suggest").closest(name, names)
  return notfound("no model named %s%s", name, guess and ("; did you mean %s?"):format(guess) or "")
end

--- Returns the version record of ref: {name, version, ref ("iris:3"),
--- hash (the object id), type ("file"|"dir"), size, files, mode, path (as
--- registered), run (id or nil), created (ms), description, tags,
--- aliases (sorted)}; nil, message, "notfound" if there is no such model,
--- version or alias; nil, message, "invalid" for a malformed reference.
function Registry:get(ref)
  local name, kind, which = M.parse_ref(ref)
  if not name then return nil, kind, which end
  local sql, params = "SELECT * FROM model_versions WHERE name = ?1 AND version = ?2", { name, which }
  if kind == "latest" then
    sql, params = "SELECT * FROM model_versions WHERE name = ?1 ORDER BY version DESC LIMIT 1", { name }
  elseif kind == "alias" then
    sql = "SELECT v.* FROM model_aliases a JOIN model_versions v ON v.name = a.name AND v.version = a.version"
      .. " WHERE a.name = ?1 AND a.alias = ?2"
  end
  local rows, err, code = query(self, sql, params)
  if not rows then return nil, err, code end
  if not rows[1] then
    local exists
    exists, err, code = model_exists(self, name)
    if exists == nil then return nil, err, code end
    if not exists then return unknown_model(self, name) end
    if kind == "alias" then return notfound("model %s has no alias %s", name, which) end
    return notfound("model %s has no version %s", name, tostring(which))
  end
  local r = record(rows[1])
  local ok
  ok, err, code = attach(self, name, { r })
  if not ok then return nil, err, code end
  return r
end

--- Returns every version of model name, oldest first (records as get); nil,
--- message, "notfound" if there is no such model.
function Registry:versions(name)
  check_name(name, false, "model name")
  local rows, err, code = query(self, "SELECT * FROM model_versions WHERE name = ? ORDER BY version", { name })
  if not rows then return nil, err, code end
  if not rows[1] then
    local exists
    exists, err, code = model_exists(self, name)
    if exists == nil then return nil, err, code end
    if not exists then return unknown_model(self, name) end
  end
  for i, row in ipairs(rows) do rows[i] = record(row) end
  return attach(self, name, rows)
end

--- Returns the models, by name: {{name, created, versions (count), latest,
--- latest_created, aliases = {alias = version}}…}.
function Registry:models()
  local rows, err, code = query(self, "SELECT m.name, m.created, count(v.version) AS versions,"
    .. " max(v.version) AS latest, max(v.created) AS latest_created"
    .. " FROM models m LEFT JOIN model_versions v ON v.name = m.name GROUP BY m.name ORDER BY m.name")
  if not rows then return nil, err, code end
  local by_name = {}
  for _, row in ipairs(rows) do
    row.aliases = {}
    by_name[row.name] = row
  end
  local aliases
  aliases, err, code = query(self, "SELECT name, alias, version FROM model_aliases")
  if not aliases then return nil, err, code end
  for _, a in ipairs(aliases) do
    if by_name[a.name] then by_name[a.name].aliases[a.alias] = a.version end
  end
  return rows
end

--- Returns the changes of the aliases of model name (of alias only, if
--- given), newest first: {{id, alias, action ("set"|"delete"|"rollback"),
--- version (nil: removed), previous (nil: none), time (ms), user, run}…};
--- nil, message, "notfound" if there is no such model.
function Registry:alias_history(name, alias)
  check_name(name, false, "model name")
  if alias ~= nil then check_name(alias, true, "alias") end
  local exists, err, code = model_exists(self, name)
  if exists == nil then return nil, err, code end
  if not exists then return unknown_model(self, name) end
  local rows
  rows, err, code = query(self, "SELECT id, alias, action, version, previous, time, \"user\", run_id AS run"
    .. " FROM model_alias_history WHERE name = ?1 AND (CAST(?2 AS text) IS NULL OR alias = ?2) ORDER BY id DESC", { name, alias })
  return rows, err, code
end

-- ---- registering -----------------------------------------------------------------

-- The run this process is working in, if it is of this database: the
-- innermost open run, else $MLX_RUN_ID (a step mlx started).
local function current_run_id(self)
  local run = track.current()
  if run and self.runs.open_runs[run] then return run.id end
  local env = os.getenv("MLX_RUN_ID")
  if env and env ~= "" and self.runs:resolve(env) then return env end
  return nil
end

local REGISTER_FIELDS = {
  name = "string", path = "string", object = "string", type = "string", run = true,
  description = "string", tags = "table", force = "boolean",
}

local function check_register_fields(fields)
  if type(fields) ~= "table" then misuse("register: expected a table of fields, not a %s", type(fields)) end
  for k, v in pairs(fields) do
    local want = REGISTER_FIELDS[k]
    if not want then misuse("register: unknown field '%s'", tostring(k)) end
    if want ~= true and type(v) ~= want then misuse("register: field '%s' must be a %s, not a %s", k, want, type(v)) end
  end
  check_name(fields.name, false, "register: field 'name'")
  if (fields.path == nil) == (fields.object == nil) then misuse("register: give either 'path' or 'object'") end
  if fields.object and not require("mlx.lock").is_id(fields.object) then
    misuse("register: 'object' must be an object id (64 lowercase hex digits)")
  end
  if fields.type and fields.type ~= "file" and fields.type ~= "dir" then
    misuse("register: 'type' must be \"file\" or \"dir\"")
  end
  local run = fields.run
  if run ~= nil and run ~= false and type(run) ~= "string" and not ((type(run) == "userdata" or type(run) == "table") and run.id) then
    misuse("register: 'run' must be a run id, a run or false")
  end
  local tags = {}
  for k, v in pairs(fields.tags or {}) do
    if type(k) ~= "string" or (type(v) ~= "string" and type(v) ~= "number" and type(v) ~= "boolean") then
      misuse("register: 'tags' must map names to strings, numbers or booleans")
    end
    tags[k] = tostring(v)
  end
  return tags
end

-- Stages path (relative to the working directory, inside the project).
local function put_path(self, st, path)
  local artifacts = require "mlx.artifacts"
  local rel, err, code = artifacts.relpath(self.root, path)
  if not rel then return nil, err, code end
  local s = fs.stat(self.root .. "/" .. rel)
  if not s then return nil, ("cannot register %s: no such file or directory"):format(path), "notfound" end
  if s.type ~= "file" and s.type ~= "directory" then
    return nil, ("cannot register %s: not a regular file or directory"):format(path), "invalid"
  end
  local info
  info, err, code = st:put(rel)
  if not info then return nil, ("cannot register %s: %s"):format(path, err), code end
  local ok
  ok, err, code = st:commit()
  if not ok then return nil, err, code end
  return { hash = info.hash, type = info.type, size = info.size, files = info.files or 1, mode = info.mode, path = rel }
end

-- Describes an object already in the store.
local function describe_object(st, id, kind)
  if not st:has(id) then return nil, ("object %s is not in the store"):format(id), "notfound" end
  if kind ~= "file" then
    local files, err, code = st:manifest(id)
    if files then
      local size = 0
      for _, f in ipairs(files) do size = size + f.size end
      return { hash = id, type = "dir", size = size, files = #files }
    elseif kind == "dir" then
      return nil, err, code
    end
  end
  local s, err, code = fs.stat(st:path(id))
  if not s then return nil, err, code end
  return { hash = id, type = "file", size = s.size, files = 1, mode = "644" }
end

--- Registers a version of a model: fields {name, path | object, run,
--- description, tags, force, type}. path (a file or directory inside the
--- project) is copied into the store; object names one already there
--- (type "file" or "dir", probed if not given). run is the run that
--- produced it (an id or prefix, a run handle, or false for none); by
--- default the newest run that recorded the object as an output, else the
--- run this process works in. If a version of the model already has these
--- bytes it is returned instead, unless force. Returns the version record
--- (see get) and true if it is new, false if it existed; or nil, message,
--- code ("notfound" for a missing path, object or run; "invalid" for a
--- path outside the project, a symlink or a fifo).
function Registry:register(fields)
  local tags = check_register_fields(fields)
  local run_id, err, code
  if type(fields.run) == "userdata" or type(fields.run) == "table" then
    run_id = fields.run.id
  elseif type(fields.run) == "string" then
    run_id, err, code = self.runs:resolve(fields.run)
    if not run_id then return nil, err, code end
  end
  local st
  st, err, code = require("mlx.store").open(self.root)
  if not st then return nil, err, code end
  -- The store stays open (its gc lock held) until the version names the object.
  local info
  if fields.path then
    info, err, code = put_path(self, st, fields.path)
  else
    info, err, code = describe_object(st, fields.object, fields.type)
  end
  if not info then
    st:close()
    return nil, err, code
  end
  if fields.run == nil then
    run_id = require("mlx.registry.lineage").producer(self.runs, info.hash) or current_run_id(self)
  end
  local version, existed
  version, existed, code = writes(self).register(self.runs.db, {
    name = fields.name, hash = info.hash, type = info.type, size = info.size, files = info.files,
    mode = info.mode, path = info.path, run = run_id, description = fields.description,
    tags = tags, force = fields.force,
  })
  st:close()
  if not version then return nil, existed, code end
  local r
  r, err, code = self:get(fields.name .. ":" .. version)
  if not r then return nil, err, code end
  return r, not existed
end

-- ---- aliases ------------------------------------------------------------------------

local function check_version(version)
  if math.type(version) ~= "integer" or version < 1 then
    misuse("a version must be an integer from 1, not %s", tostring(version))
  end
end

local function none_if_zero(v)
  if v == 0 then return nil end
  return v
end

--- Points alias of model name at version, recording the move in the
--- alias's history (with the run this process works in). Returns {name,
--- alias, version, previous (nil if it had none), moved (false if it
--- named version already)}; nil, message, "notfound" for an unknown model
--- or version.
function Registry:set_alias(name, alias, version)
  check_name(name, false, "model name")
  check_name(alias, true, "alias")
  check_version(version)
  local previous, err, code = writes(self).set_alias(self.runs.db, name, alias, version, current_run_id(self))
  if not previous then return nil, err, code end
  return { name = name, alias = alias, version = version, previous = none_if_zero(previous), moved = previous ~= version }
end

--- Removes alias of model name (recorded in its history). Returns {name,
--- alias, previous}; nil, message, "notfound" if there is no such alias.
function Registry:del_alias(name, alias)
  check_name(name, false, "model name")
  check_name(alias, true, "alias")
  local previous, err, code = writes(self).delete_alias(self.runs.db, name, alias, current_run_id(self))
  if not previous then return nil, err, code end
  return { name = name, alias = alias, previous = previous }
end

--- Undoes the latest move of alias of model name that was not undone yet:
--- the alias names the version it named before (or is removed if it did not
--- exist then). Calling it again undoes the move before. Returns {name,
--- alias, version (nil: removed), previous}; nil, message, "notfound" if
--- no move is left to undo.
function Registry:rollback(name, alias)
  check_name(name, false, "model name")
  check_name(alias, true, "alias")
  local version, previous, code = writes(self).rollback(self.runs.db, name, alias, current_run_id(self))
  if not version then return nil, previous, code end
  return { name = name, alias = alias, version = none_if_zero(version), previous = none_if_zero(previous) }
end

-- ---- checkout --------------------------------------------------------------------------

--- Copies the version ref out of the store to dest, verifying every byte on
--- the way: a file model to the file dest (or into dest if it is a
--- directory, under the name it was registered with), a directory model
--- into the directory dest (files already there that the version does not
--- have are left alone). Each file is replaced atomically. Returns the
--- version record with dest (the absolute path written); nil, message,
--- code: "notfound" (ref, or an object missing from the store), "corrupt"
--- (the object was damaged: it is quarantined), "invalid" (dest does not
--- fit the model's type), "io".
function Registry:checkout(ref, dest)
  if type(dest) ~= "string" or dest == "" then misuse("checkout: dest must be a path") end
  local v, err, code = self:get(ref)
  if not v then return nil, err, code end
  dest = project.absolute(dest)
  local s = fs.stat(dest)
  local st
  st, err, code = require("mlx.store").open(self.root)
  if not st then return nil, err, code end
  -- In a fresh clone the registry (shared on PostgreSQL) names a model
  -- whose bytes are on a remote: say which pull brings them.
  if not st:has(v.hash) then
    st:close()
    return nil, ("model %s (%s) is not in the store; %s"):format(v.ref, v.hash:sub(1, 12),
      require("mlx.remote.config").pull_hint(self.root, "it", ref)), "notfound"
  end
  local ok
  if v.type == "file" then
    if s and s.type == "directory" then
      dest = dest .. "/" .. ((v.path or ""):match("([^/]+)$") or v.name)
    end
    local parent, base = dest:match("^(.*)/([^/]+)$")
    if parent == "" then parent = "/" end
    ok, err, code = fs.mkdirs(parent)
    if ok then ok, err, code = st:checkout(parent, { { path = base, hash = v.hash, mode = v.mode } }) end
  else
    if s and s.type ~= "directory" then
      st:close()
      return nil, ("cannot check %s out to %s: it is a directory model and %s is not a directory"):format(v.ref, dest,
        dest), "invalid"
    end
    local files
    files, err, code = st:manifest(v.hash)
    if files then ok, err, code = fs.mkdirs(dest) end
    if ok then ok, err, code = st:checkout(dest, files) end
  end
  st:close()
  if not ok then return nil, err, code end
  v.dest = dest
  return v
end

--- Returns the lineage of version ref: {version, run (its producing run's
--- record, as mlx.track's get), recipe_run (the recipe run it was a step
--- of), inputs (the artifacts the run read, each {path, hash, size,
--- nfiles, producer = {run, inputs = …}} when a run wrote it), metrics,
--- metrics_from}; fails as get. See mlx.registry.lineage.
function Registry:lineage(ref)
  local v, err, code = self:get(ref)
  if not v then return nil, err, code end
  return require("mlx.registry.lineage").of(self.runs, v)
end

--- Returns the metrics of a version record: the latest metrics of the run
--- that produced it, completed by those of the runs that read it (its
--- evaluation), newest first; and a table key → id of the run each came
--- from. {} when no run is known. Fails with nil, message, code.
function Registry:metrics(v)
  if type(v) ~= "table" or not v.hash then misuse("metrics: expected a version record") end
  return require("mlx.registry.lineage").metrics(self.runs, v)
end

-- ---- the project's registry ------------------------------------------------------------

local function on_default(method)
  return function(...)
    local reg, err, code = M.default()
    if not reg then return nil, err, code end
    return reg[method](reg, ...)
  end
end

--- register(fields), get(ref), versions(name), models(), set_alias(name,
--- alias, version), del_alias(name, alias), rollback(name, alias),
--- alias_history(name[, alias]), checkout(ref, dest), lineage(ref),
--- metrics(version): the Registry methods on the project's registry;
--- outside a project they return nil, "not in an mlx project (run 'mlx
--- init')", "notfound".
for _, method in ipairs({ "register", "get", "versions", "models", "set_alias", "del_alias", "rollback",
  "alias_history", "checkout", "lineage", "metrics" }) do
  M[method] = on_default(method)
end

return M
