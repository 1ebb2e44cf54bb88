-- mlx remote: the project's remotes (.mlx/remotes.json).
local cli = require "mlx.cli"
local config = require "mlx.remote.config"
local project = require "mlx.project"
local ui = require "mlx.ui"

local function load(root)
  return ui.check(config.load(root))
end

local function save(root, doc, dry_run)
  if dry_run then return end
  local ok, err, code = config.save(root, doc)
  if not ok then ui.fail(ui.exit_code_for(code), "%s", err) end
end

local function need_name(name)
  local problem = config.name_problem(name)
  if problem then ui.usage_error("%s", problem) end
end

local function add(opts, args)
  local root = project.require_root()
  local name, url = args[1], args[2]
  need_name(name)
  -- An empty URL would be saved, and then make remotes.json unreadable
  -- for every remote command (as "" relative to the root, it is the root).
  if url == nil or url:match("^%s*$") then
    ui.usage_error("remote %s: the URL is empty; give a directory, an http(s):// or an s3:// URL", name)
  end
  -- "s3:/bucket" or "https:host/x" would be taken for a directory of that
  -- name inside the project: a URL of a known scheme missing a slash.
  local scheme, rest = url:match("^(%a%w*):/?([^/].*)$")
  if scheme and ({ s3 = true, http = true, https = true, file = true })[scheme:lower()] then
    ui.usage_error("remote %s: '%s' is not a URL: did you mean %s://%s%s?", name, url, scheme,
      scheme:lower() == "file" and "/" or "", rest)
  end
  local options = {}
  for _, kv in ipairs(opts.option or {}) do
    local k, v = kv:match("^([%w_]+)=(.*)$")
    if not k then ui.usage_error("--option needs KEY=VALUE, not '%s'", kv) end
    -- An empty value would be saved and then read as no option at all
    -- (endpoint= would send an S3 remote to AWS).
    if v == "" then ui.usage_error("--option %s= has no value; give one, or leave the option out", k) end
    if config.SECRETS[k] then
      ui.usage_error("--option %s: credentials do not go in %s (committed); put them in .mlx/config.local.lua "
        .. "(remotes = { %s = { %s = \"…\" } }) or in MLX_REMOTE_%s_%s", k, config.FILE, name, k,
        name:upper():gsub("%-", "_"), k:upper())
    end
    options[k] = v
  end
  local doc = load(root)
  if doc.remotes[name] and not opts.force then
    ui.usage_error("remote '%s' exists (%s); --force replaces it", name, doc.remotes[name].url)
  end
  local problem = config.location_problem(root, name, url)
  if problem then ui.usage_error("%s", problem) end
  doc.remotes[name] = { url = url, options = options }
  -- Checked now: an unknown scheme or option is refused before it is saved.
  local saved = doc.default
  doc.default = doc.default or name
  local abs = url
  if not url:match("^%a[%w+.-]*://") and url:sub(1, 1) ~= "/" then abs = project.absolute(root .. "/" .. url) end
  -- With the credentials a command would use (.mlx/config.local.lua, the
  -- environment): an S3 remote does not open without them.
  local creds, err, code = config.with_credentials(root, name, options)
  local r
  if creds then r, err, code = require("mlx.transfer").open { name = name, url = abs, options = creds } end
  if not r then ui.fail(ui.exit_code_for(code), "%s", err) end
  -- One listing of index/ finds now, not at the first push, what no retry
  -- fixes: a file where the directory or collection should be, a bucket
  -- that does not exist, credentials the server refuses, https:// to a
  -- plain HTTP port. A server that does not answer may be down while it
  -- is added: a note, and the remote is added (without retries, and
  -- within 5 s unless timeout_ms says otherwise).
  local server = r:backend() ~= "dir"
  if server and not creds.timeout_ms then
    r:close()
    creds.timeout_ms = "5000"
    r, err, code = require("mlx.transfer").open { name = name, url = abs, options = creds, retries = 0 }
    if not r then ui.fail(ui.exit_code_for(code), "%s", err) end
  end
  local ok
  ok, err, code = r:list("index/")
  r:close()
  if not ok and server and code == "io" then
    ui.note(("%s; added it without checking it"):format(err))
  elseif not ok then
    ui.fail(ui.exit_code_for(code), "%s", err)
  end
  save(root, doc, opts.dry_run)
  ui.out(("%s remote %s %s%s"):format(opts.dry_run and "would add" or "added", name, url,
    doc.default == name and saved ~= name and " (default)" or ""))
  return ui.EXIT.OK
end

local function list(opts)
  local root = project.require_root()
  local doc = load(root)
  local names = {}
  for name in pairs(doc.remotes) do names[#names + 1] = name end
  table.sort(names)
  if opts.json then
    io.stdout:write(require("mlx.json").encode(doc, { indent = 2 }), "\n")
    return ui.EXIT.OK
  end
  for _, name in ipairs(names) do
    local r = doc.remotes[name]
    local options = {}
    for k, v in pairs(r.options) do options[#options + 1] = k .. "=" .. v end
    table.sort(options)
    ui.out(("%s%-12s %s%s"):format(doc.default == name and "* " or "  ", name, r.url,
      #options > 0 and "  " .. table.concat(options, " ") or ""))
  end
  if #names == 0 then ui.note("no remotes; add one with 'mlx remote add NAME URL'") end
  return ui.EXIT.OK
end

local function remove(opts, args)
  local root = project.require_root()
  local doc = load(root)
  local name = args[1]
  if not doc.remotes[name] then ui.usage_error("no remote named '%s'", name) end
  doc.remotes[name] = nil
  if doc.default == name then doc.default = nil end
  save(root, doc, opts.dry_run)
  ui.out(("%s remote %s"):format(opts.dry_run and "would remove" or "removed", name))
  if doc.default == nil and next(doc.remotes) then
    ui.note("no default remote now; choose one with 'mlx remote default NAME'")
  end
  return ui.EXIT.OK
end

local function default(opts, args)
  local root = project.require_root()
  local doc = load(root)
  if not args[1] then
    if not doc.default then ui.fail(ui.EXIT.USAGE, "no default remote; add one with 'mlx remote add NAME URL'") end
    ui.out(doc.default)
    return ui.EXIT.OK
  end
  if not doc.remotes[args[1]] then ui.usage_error("no remote named '%s'", args[1]) end
  doc.default = args[1]
  save(root, doc, opts.dry_run)
  ui.out(("%s %s"):format(opts.dry_run and "would make the default:" or "default remote:", args[1]))
  return ui.EXIT.OK
end

return {
  summary = "add, list, remove and choose the remotes that push and pull use",
  description = [[
Remotes are kept in .mlx/remotes.json, a file mlx owns and rewrites; commit
it, so that a clone knows them. A remote is a directory (/srv/mlx-store,
file:///srv/mlx-store, or a path relative to the project root), a WebDAV
server (https://host/path/) or an S3 bucket (s3://bucket/prefix). The first
remote added is the default until 'mlx remote default NAME'. Credentials
never go in remotes.json: put them in .mlx/config.local.lua (ignored by
git) as remotes = { NAME = { password = "…" } }, or in the environment as
MLX_REMOTE_<NAME>_<OPTION> (e.g. MLX_REMOTE_ORIGIN_PASSWORD).]],
  subcommands = {
    {
      name = "add",
      summary = "add a remote",
      usage = "mlx remote add NAME URL [--option KEY=VALUE]... [--force] [--dry-run]",
      description = [[
Adds remote NAME at URL with backend options (S3: endpoint, region,
path_style; WebDAV: ca_file, insecure; any: timeout_ms). An unknown scheme
or option, a credential given as an option, a directory inside the
project, or an existing NAME (without --force) exits 2 and changes
nothing. The remote is opened with the
credentials a push would use and its index/ listed once: what a retry
cannot fix (a file where the directory or collection should be, a bucket
that does not exist, refused credentials, https:// to plain HTTP, a server
that is not WebDAV or S3) exits 2 and changes nothing; a server that does
not answer within 5 s is noted, and the remote added.]],
      options = {
        { "option", arg = "KEY=VALUE", multiple = true, help = "a backend option (repeatable)" },
        cli.option("force", { help = "replace a remote of that name" }),
        cli.option("dry-run", { help = "check, and change nothing" }),
      },
      args = { min = 2, max = 2, name = "NAME and URL" },
      main = add,
    },
    {
      name = "list",
      summary = "the remotes, the default marked with *",
      usage = "mlx remote list [--json]",
      options = { cli.option("json") },
      args = { max = 0 },
      main = list,
    },
    {
      name = "remove",
      summary = "forget a remote (its data stays where it is)",
      usage = "mlx remote remove NAME [--dry-run]",
      options = { cli.option("dry-run", { help = "change nothing" }) },
      args = { min = 1, max = 1, name = "NAME" },
      main = remove,
    },
    {
      name = "default",
      summary = "print the default remote, or make NAME the default",
      usage = "mlx remote default [NAME] [--dry-run]",
      options = { cli.option("dry-run", { help = "change nothing" }) },
      args = { max = 1 },
      main = default,
    },
  },
}
