--- mlx.remote.config: the project's remotes, in .mlx/remotes.json, a file
--- mlx owns and rewrites (committed: a clone knows its remotes), never the
--- user's Lua configuration:
---
---     {"default": "origin", "remotes": {"origin": {"options": {},
---      "url": "/srv/mlx-store"}}, "version": 1}
---
--- Credentials never go there: they come from .mlx/config.local.lua
--- (`remotes = { origin = { password = "…" } }`, ignored by git) or from the
--- environment (MLX_REMOTE_ORIGIN_PASSWORD: the remote's name in capitals,
--- '-' as '_', then the option's name in capitals), which wins.
local fs = require "mlx.fs"
local json = require "mlx.json"

local M = {}

M.FILE = ".mlx/remotes.json"

--- Option names that are credentials: refused in remotes.json.
M.SECRETS = {
  password = true, token = true, secret_access_key = true, session_token = true, access_key_id = true,
  user = true,
}

--- Returns nil if name can name a remote, else a message.
function M.name_problem(name)
  if type(name) ~= "string" or not name:match("^[%a][%w_%-]*$") or #name > 64 then
    return ("'%s' is not a remote name (a letter, then letters, digits, '-' or '_')"):format(tostring(name))
  end
end

local function invalid(root, fmt, ...)
  return nil, ("%s/%s: " .. fmt):format(root, M.FILE, ...), "invalid"
end

--- Reads the remotes of the project at root: {version = 1, default = name
--- or nil, remotes = {name → {url, options = {k → v}}}} (empty when the file
--- does not exist), or nil, message, "invalid" naming the file.
function M.load(root)
  local path = root .. "/" .. M.FILE
  if not fs.stat(path) then return { version = 1, remotes = {} } end
  local doc, err = json.load(path)
  if type(doc) ~= "table" then return invalid(root, "%s; fix or remove it", err or "not a JSON object") end
  if doc.version ~= 1 then return invalid(root, "version must be 1") end
  if type(doc.remotes) ~= "table" then return invalid(root, "'remotes' must be an object") end
  for name, r in pairs(doc.remotes) do
    local problem = M.name_problem(name)
    if problem then return invalid(root, "%s", problem) end
    if type(r) ~= "table" or type(r.url) ~= "string" or r.url == "" then
      return invalid(root, "remote %s needs a url", name)
    end
    r.options = r.options or {}
    if type(r.options) ~= "table" then return invalid(root, "remote %s: 'options' must be an object", name) end
    for k, v in pairs(r.options) do
      if type(k) ~= "string" or type(v) ~= "string" then
        return invalid(root, "remote %s: options must map names to strings", name)
      end
    end
  end
  if doc.default ~= nil and (type(doc.default) ~= "string" or not doc.remotes[doc.default]) then
    return invalid(root, "default names no remote")
  end
  return doc
end

--- Writes doc (as M.load returns it) atomically. Returns true or nil,
--- message, code.
function M.save(root, doc)
  local remotes = {}
  for name, r in pairs(doc.remotes) do
    remotes[name] = { url = r.url, options = json.object(r.options or {}) }
  end
  local text = json.encode({ version = 1, default = doc.default, remotes = json.object(remotes) }, { indent = 2 })
  return fs.write(root .. "/" .. M.FILE, text .. "\n")
end

local function load_local(root)
  local path = root .. "/.mlx/config.local.lua"
  if not fs.stat(path) then return {} end
  local chunk, err = loadfile(path, "t", {})
  if not chunk then return nil, err, "invalid" end
  local ok, value = pcall(chunk)
  if not ok then return nil, path .. ": " .. tostring(value), "invalid" end
  if type(value) ~= "table" then return nil, path .. ": must return a table", "invalid" end
  return value
end

--- Returns a copy of options (of the remote name) with the credentials
--- of .mlx/config.local.lua and then of the environment merged in; or nil,
--- message, "invalid" when config.local.lua does not load.
function M.with_credentials(root, name, options)
  local merged = {}
  for k, v in pairs(options) do merged[k] = v end
  local loc, err, code = load_local(root)
  if not loc then return nil, err, code end
  local creds = type(loc.remotes) == "table" and loc.remotes[name]
  if type(creds) == "table" then
    for k, v in pairs(creds) do
      if type(k) == "string" and (type(v) == "string" or type(v) == "number") then merged[k] = tostring(v) end
    end
  end
  local prefix = "MLX_REMOTE_" .. name:upper():gsub("%-", "_") .. "_"
  for _, k in ipairs({ "user", "password", "token", "access_key_id", "secret_access_key", "session_token" }) do
    local v = os.getenv(prefix .. k:upper())
    if v and v ~= "" then merged[k] = v end
  end
  return merged
end

--- Returns the absolute path of a directory remote's url (a relative
--- one against root, file:// stripped), or nil for a server's URL.
function M.directory(root, url)
  local path = url:match("^file://(/.*)$")
  if not path and url:match("^%a[%w+.-]*://") then return nil end
  path = path or url
  if path:sub(1, 1) ~= "/" then path = root .. "/" .. path end
  return require("mlx.project").absolute(path)
end

--- Returns nil, or why remote name at url cannot be used: a directory
--- remote that is the project root or lies inside it (its workspace,
--- .git/ or .mlx/), where pushing would write the remote's objects/ and
--- index/ into the project. remotes.json arrives with a clone, so this is
--- checked wherever a remote is opened, not only when it is added.
function M.location_problem(root, name, url)
  local dir = M.directory(root, url)
  if dir and (dir == root or dir:sub(1, #root + 1) == root .. "/") then
    return ("remote %s: %s is inside the project; a directory remote must be outside it "
      .. "(e.g. %s-store beside the project): mlx remote add --force %s DIR"):format(name, url, root, name)
  end
end

--- Returns the remote to use: name, or the default; {name, url (a relative
--- directory made absolute against root), options = {k → v} with the
--- credentials merged in}; or nil, message, code ("notfound": no such
--- remote, or none configured, with what to run).
function M.resolve(root, name)
  local doc, err, code = M.load(root)
  if not doc then return nil, err, code end
  if not name then
    name = doc.default
    if not name then
      return nil, "no remote is configured; add one with 'mlx remote add NAME URL'", "notfound"
    end
  end
  local r = doc.remotes[name]
  if not r then
    local names = {}
    for n in pairs(doc.remotes) do names[#names + 1] = n end
    table.sort(names)
    return nil, ("no remote named '%s' (%s)"):format(name,
      #names > 0 and "remotes: " .. table.concat(names, ", ") or "add one with 'mlx remote add NAME URL'"), "notfound"
  end
  local options
  options, err, code = M.with_credentials(root, name, r.options)
  if not options then return nil, err, code end
  local problem = M.location_problem(root, name, r.url)
  if problem then return nil, ("%s/%s: %s"):format(root, M.FILE, problem), "invalid" end
  local url = r.url
  if not url:match("^%a[%w+.-]*://") and url:sub(1, 1) ~= "/" then
    url = require("mlx.project").absolute(root .. "/" .. url)
  end
  return { name = name, url = url, options = options }
end

--- The advice for objects missing from the store: fetch what (default
--- "them") with mlx pull (of target, if given) from the default remote,
--- naming it, or add a remote first.
function M.pull_hint(root, what, target)
  what = what or "them"
  local command = target and "mlx pull " .. target or "mlx pull"
  local doc = root and M.load(root)
  if doc and doc.default then
    return ("fetch %s with '%s' (from remote '%s')"):format(what, command, doc.default)
  end
  return ("add a remote ('mlx remote add NAME URL') and fetch %s with '%s'"):format(what, command)
end

return M
