-- mlx model: the model registry from the command line.
local cli = require "mlx.cli"
local ui = require "mlx.ui"

local check = ui.check

local function short(hash)
  return hash and hash:sub(1, 12) or ""
end

local function view()
  return require "mlx.track.view"
end

local function print_json(value)
  io.stdout:write(require("mlx.json").encode(value, { indent = 2 }), "\n")
end

local function registry()
  return ui.check_file(require("mlx.registry").default())
end

local function need_name(name, is_alias)
  local ok, err = require("mlx.registry").check_name(name, is_alias)
  if not ok then ui.usage_error("%s", err) end
  return name
end

-- ---- register ---------------------------------------------------------------

local function register(opts, args)
  if (#args == 2) == (opts.object ~= nil) then
    ui.usage_error("'mlx model register' needs NAME and PATH, or NAME and --object ID (see 'mlx help model register')")
  end
  if opts.run and opts.no_run then ui.usage_error("--run and --no-run exclude each other") end
  local name = need_name(args[1])
  local tags = {}
  for _, t in ipairs(opts.tag) do
    local k, v = t:match("^([^=]+)=(.*)$")
    if not k then ui.usage_error("--tag needs KEY=VALUE, not '%s'", t) end
    tags[k] = v
  end
  for _, a in ipairs(opts.alias) do need_name(a, true) end
  if opts.object and not require("mlx.lock").is_id(opts.object) then
    ui.usage_error("--object needs an object id (64 lowercase hex digits), not '%s'", opts.object)
  end
  local reg = registry()
  local run = opts.run
  if opts.no_run then run = false end
  local v, new, code = reg:register { name = name, path = args[2], object = opts.object, run = run,
    description = opts.description, tags = tags, force = opts.force }
  check(v, new, code)
  local from = v.run and (", run " .. v.run) or ""
  if new then
    ui.out(("registered %s (%s, %s%s)"):format(v.ref, short(v.hash), ui.format_size(v.size), from))
  else
    ui.out(("unchanged  %s already holds these bytes (%s); --force registers them again"):format(v.ref,
      short(v.hash)))
  end
  for _, alias in ipairs(opts.alias) do
    local moved = check(reg:set_alias(name, alias, v.version))
    ui.out(("alias      %s: %s"):format(alias, moved.previous and moved.moved
      and ("%s:%d -> %s"):format(name, moved.previous, v.ref) or v.ref))
  end
  return ui.EXIT.OK
end

-- ---- ls -----------------------------------------------------------------------

local function alias_list(aliases)
  local names = {}
  for alias in pairs(aliases) do names[#names + 1] = alias end
  table.sort(names)
  for i, alias in ipairs(names) do names[i] = alias .. "=" .. aliases[alias] end
  return table.concat(names, " ")
end

local function ls(opts, args)
  local reg = registry()
  if args[1] then
    local versions = check(reg:versions(need_name(args[1])))
    if opts.json then
      local json = require "mlx.json"
      for _, v in ipairs(versions) do
        v.tags, v.aliases = json.object(v.tags), json.array(v.aliases)
      end
      print_json(json.array(versions))
      return ui.EXIT.OK
    end
    local rows = {}
    for i = #versions, 1, -1 do
      local v = versions[i]
      rows[#rows + 1] = { tostring(v.version), table.concat(v.aliases, ","), short(v.hash), v.type,
        ui.format_size(v.size), v.run or "", view().time(v.created), v.description or "" }
    end
    for _, line in ipairs(view().table({ "VERSION", "ALIASES", "HASH", "TYPE", "SIZE", "RUN", "CREATED",
      "DESCRIPTION" }, rows, { [1] = true, [5] = true })) do
      ui.out(line)
    end
    return ui.EXIT.OK
  end
  local models = check(reg:models())
  if opts.json then
    local json = require "mlx.json"
    for _, m in ipairs(models) do m.aliases = json.object(m.aliases) end
    print_json(json.array(models))
  elseif #models == 0 then
    ui.note("no models registered yet (mlx model register NAME PATH)")
  else
    local rows = {}
    for _, m in ipairs(models) do
      rows[#rows + 1] = { m.name, tostring(m.latest or ""), tostring(m.versions), alias_list(m.aliases),
        view().time(m.latest_created) }
    end
    for _, line in ipairs(view().table({ "MODEL", "LATEST", "VERSIONS", "ALIASES", "UPDATED" }, rows,
      { [2] = true, [3] = true })) do
      ui.out(line)
    end
  end
  return ui.EXIT.OK
end

-- ---- show ---------------------------------------------------------------------

local function sorted_pairs_text(t, format)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  for i, k in ipairs(keys) do keys[i] = k .. "=" .. (format and format(t[k], k) or tostring(t[k])) end
  return table.concat(keys, " ")
end

local function run_line(run)
  local what = view().what(run)
  return ("%s  %s  %s"):format(run.id, what ~= "" and what or "(no recipe)", run.status)
end

local function git_line(run)
  local git = run and run.git or {}
  if not git.commit then return nil end
  local extra = {}
  if git.branch then extra[#extra + 1] = git.branch end
  if git.dirty then extra[#extra + 1] = "dirty" end
  return git.commit .. (#extra > 0 and (" (" .. table.concat(extra, ", ") .. ")") or "")
end

local function input_lines(inputs, indent, out)
  for _, input in ipairs(inputs) do
    local facts = {}
    if input.size then facts[#facts + 1] = ui.format_size(input.size) end
    if input.nfiles and input.nfiles > 1 then facts[#facts + 1] = ("%d files"):format(input.nfiles) end
    local from = input.producer and ("  <- %s"):format(run_line(input.producer.run)) or ""
    out[#out + 1] = ("%s%s  %s%s%s"):format(indent, input.path, input.hash or "(no hash)",
      #facts > 0 and ("  (" .. table.concat(facts, ", ") .. ")") or "", from)
    if input.producer then input_lines(input.producer.inputs, indent .. "  ", out) end
  end
  return out
end

local function show_text(l)
  local v = l.version
  local lines = {}
  local function field(name, value)
    if value and value ~= "" then lines[#lines + 1] = ("%-12s %s"):format(name, value) end
  end
  field("model", v.ref)
  field("aliases", table.concat(v.aliases, ", "))
  field("object", ("%s (%s, %s%s)"):format(v.hash, v.type, ui.format_size(v.size),
    v.type == "dir" and (", %d files"):format(v.files or 0) or ""))
  field("path", v.path)
  field("created", view().time(v.created))
  field("description", v.description)
  field("tags", sorted_pairs_text(v.tags))
  local run, top = l.run, l.recipe_run or l.run
  if run then
    field("run", run_line(run))
    if l.recipe_run then field("recipe run", run_line(l.recipe_run)) end
    field("recipe", top.recipe and (top.recipe .. (top.recipe_hash and ("  " .. short(top.recipe_hash)) or "")))
    field("git", git_line(run) or git_line(top))
    field("command", top.command)
    local params = {}
    for k, value in pairs(top.params) do params[k] = value end
    for k, value in pairs(run.params) do params[k] = value end
    field("params", sorted_pairs_text(params))
  elseif v.run then
    field("run", v.run .. "  (no longer in the runs database)")
  else
    field("run", "unknown (registered without a run)")
  end
  field("metrics", sorted_pairs_text(l.metrics, function(value, k)
    local from = l.metrics_from[k]
    return view().number(value) .. ((from and from ~= v.run) and ("@" .. from:sub(1, 8)) or "")
  end))
  if #l.inputs > 0 then
    lines[#lines + 1] = "inputs"
    input_lines(l.inputs, "  ", lines)
  end
  return lines
end

local function jsonable_inputs(inputs, json)
  local out = json.array()
  for i, input in ipairs(inputs) do
    local copy = { path = input.path, hash = input.hash, size = input.size, nfiles = input.nfiles }
    if input.producer then
      local r = input.producer.run
      copy.producer = { run = r.id, recipe = r.recipe, step = r.step, status = r.status,
        inputs = jsonable_inputs(input.producer.inputs, json) }
    end
    out[i] = copy
  end
  return out
end

local function show(opts, args)
  local l = check(registry():lineage(args[1]))
  if not opts.json then
    for _, line in ipairs(show_text(l)) do ui.out(line) end
    return ui.EXIT.OK
  end
  local json = require "mlx.json"
  local v = l.version
  v.tags, v.aliases = json.object(v.tags), json.array(v.aliases)
  local metrics = json.object()
  for k, value in pairs(l.metrics) do
    metrics[k] = (value ~= value or value == math.huge or value == -math.huge) and json.null or value
  end
  print_json({
    version = v, metrics = metrics, metrics_from = json.object(l.metrics_from),
    run = l.run and view().jsonable(l.run, json) or json.null,
    recipe_run = l.recipe_run and view().jsonable(l.recipe_run, json) or json.null,
    inputs = jsonable_inputs(l.inputs, json),
  })
  return ui.EXIT.OK
end

-- ---- alias ----------------------------------------------------------------------

local function history(reg, name, alias)
  local rows = {}
  for _, h in ipairs(check(reg:alias_history(name, alias))) do
    local from = h.previous and (name .. ":" .. h.previous) or "-"
    local to = h.version and (name .. ":" .. h.version) or "-"
    rows[#rows + 1] = { view().time(h.time), h.alias, h.action, from .. " -> " .. to, h.user or "", h.run or "" }
  end
  if #rows == 0 then
    ui.note(("no alias of %s has moved yet"):format(name))
    return ui.EXIT.OK
  end
  for _, line in ipairs(view().table({ "TIME", "ALIAS", "ACTION", "CHANGE", "USER", "RUN" }, rows)) do
    ui.out(line)
  end
  return ui.EXIT.OK
end

local function alias(opts, args)
  local modes = (opts.delete and 1 or 0) + (opts.rollback and 1 or 0) + (opts.history and 1 or 0)
  if modes > 1 then ui.usage_error("--delete, --rollback and --history exclude each other") end
  local name = args[1] and need_name(args[1])
  local alias_name = args[2] and need_name(args[2], true)
  if opts.history then
    if not name or #args > 2 then ui.usage_error("usage: mlx model alias NAME [ALIAS] --history") end
    return history(registry(), name, alias_name)
  end
  if modes == 1 and #args ~= 2 then
    ui.usage_error("usage: mlx model alias NAME ALIAS %s", opts.delete and "--delete" or "--rollback")
  end
  if modes == 0 and #args ~= 3 then
    ui.usage_error("usage: mlx model alias NAME ALIAS VERSION (a number, or another alias of NAME)")
  end
  local reg = registry()
  if opts.delete then
    local r = check(reg:del_alias(name, alias_name))
    ui.out(("%s: removed (it named %s:%d)"):format(alias_name, name, r.previous))
  elseif opts.rollback then
    local r = check(reg:rollback(name, alias_name))
    ui.out(("%s: %s -> %s (rolled back)"):format(alias_name, r.previous and (name .. ":" .. r.previous) or "-",
      r.version and (name .. ":" .. r.version) or "removed"))
  else
    local version = math.tointeger(tonumber(args[3]))
    if not version then
      need_name(args[3], true)
      version = check(reg:get(name .. "@" .. args[3])).version
    end
    if version < 1 then ui.usage_error("versions are numbered from 1, not %d", version) end
    local r = check(reg:set_alias(name, alias_name, version))
    if r.moved then
      ui.out(("%s: %s -> %s:%d"):format(alias_name, r.previous and (name .. ":" .. r.previous) or "-", name, version))
    else
      ui.out(("%s: already %s:%d"):format(alias_name, name, version))
    end
  end
  return ui.EXIT.OK
end

-- ---- get --------------------------------------------------------------------------

local function get(_, args)
  cli.check_output("DEST", args[2], { directory = true })
  local v = check(registry():checkout(args[1], args[2]))
  ui.out(("checked out %s (%s, %s) to %s"):format(v.ref, short(v.hash), ui.format_size(v.size), args[2]))
  return ui.EXIT.OK
end

return {
  summary = "register model versions, name them with aliases, show their lineage",
  description = [[
The model registry keeps versions of models in the project's store and
records them in .mlx/runs.db. A REF is NAME (the latest version),
NAME:VERSION or NAME@ALIAS. mlx gc keeps the object of every registered
version. A bad name, an unknown model, version or alias, or an unknown run
exits 2.]],
  subcommands = {
    {
      name = "register",
      summary = "store a file or directory as the next version of a model",
      usage = "mlx model register NAME PATH | NAME --object ID [--run ID | --no-run] [-d TEXT] [-t KEY=VALUE]... "
        .. "[-a ALIAS]... [-f]",
      description = [[
Stores PATH (a file or directory in the project; or --object ID, an object
already in the store) as the next version of model NAME and prints
"registered iris:3 (HASH, SIZE, run ID)". Bytes a version of NAME already
holds give that version ("unchanged  iris:2 already holds these bytes")
unless --force. The run that produced it is the newest run that recorded
PATH's hash as an output, unless --run ID or --no-run. A missing path or a
path outside the project exits 2.]],
      options = {
        { "object", arg = "ID", help = "register an object already in the store instead of a PATH" },
        { "run", arg = "ID", help = "the run that produced it (default: the run that wrote it)" },
        { "no-run", help = "record no run" },
        { "description", short = "d", arg = "TEXT", help = "a description of the version" },
        { "tag", short = "t", arg = "KEY=VALUE", multiple = true, help = "a tag (repeatable)" },
        { "alias", short = "a", arg = "ALIAS", multiple = true, help = "point ALIAS at the version (repeatable)" },
        cli.option("force", { help = "a new version even if one has these bytes" }),
      },
      args = { min = 1, max = 2, name = "NAME and PATH, or NAME and --object ID" },
      main = register,
    },
    {
      name = "ls",
      summary = "the models, or the versions of one, newest first",
      usage = "mlx model ls [NAME] [--json]",
      description = [[
Without NAME: each model with its latest version, number of versions,
aliases and last registration. With NAME: its versions newest first, with
aliases, hash, type, size, run, creation time and description.]],
      options = { cli.option("json") },
      args = { max = 1 },
      main = ls,
    },
    {
      name = "show",
      summary = "a version and its lineage",
      usage = "mlx model show REF [--json]",
      description = [[
The version REF (NAME, NAME:VERSION or NAME@ALIAS) and its lineage: the run
that produced it, its recipe run, recipe and hash, git commit, command,
params, the metrics of that run and of the runs that evaluated it, and its
input data with hashes, upstream through the runs that produced them.]],
      options = { cli.option("json") },
      args = { min = 1, max = 1, name = "one REF: NAME, NAME:VERSION or NAME@ALIAS" },
      main = show,
    },
    {
      name = "alias",
      summary = "point an alias at a version, remove it, undo its latest move, or list its moves",
      usage = "mlx model alias NAME ALIAS VERSION|OTHER_ALIAS | NAME ALIAS --delete|--rollback "
        .. "| NAME [ALIAS] --history",
      description = [[
Points ALIAS at a version (or at what OTHER_ALIAS names); --delete removes
it; --rollback undoes its latest move (again: the move before); --history
lists the moves newest first with time, user and run. Every move is
recorded.]],
      options = {
        { "delete", help = "remove the alias" },
        { "rollback", help = "undo the alias's latest move" },
        { "history", help = "list the alias's moves, newest first" },
        -- Until 0.2, -d was --delete here, while it is --description of
        -- mlx model register.
        cli.retired("d", "use --delete (-d is --description of 'mlx model register')"),
      },
      args = { min = 1, max = 3, name = "NAME and ALIAS" },
      main = alias,
    },
    {
      name = "get",
      summary = "copy a version out of the store, verified",
      usage = "mlx model get REF DEST",
      description = [[
Copies the version REF out of the store to DEST (a file, into a directory,
or a directory tree), verifying every byte; each file is replaced
atomically. A corrupt object is quarantined and the command exits 1, DEST
unchanged. A DEST below a file (or a symbolic link to nothing) is bad
input (exit 2), found before anything is copied.]],
      args = { min = 2, max = 2, name = "REF and DEST" },
      main = get,
    },
  },
}
