-- mlx status: what in the workspace differs from mlx.lock.
--
-- The report is made of sections, each a function(root, opts, args,
-- pipeline) returning the number of things it found out of date (after
-- printing them); pipeline is RECIPE's, loaded before any section runs.
-- Tracked artifacts are the first; the pipeline adds one for the steps of
-- a recipe (`mlx status RECIPE`) by appending to `sections`.
local artifacts = require "mlx.artifacts"
local cli = require "mlx.cli"
local project = require "mlx.project"
local ui = require "mlx.ui"

local function show_list(label, paths, base, limit)
  for i, p in ipairs(paths) do
    if limit and i > limit then
      ui.out(("        … and %d more"):format(#paths - limit))
      return
    end
    ui.out(("        %s %s/%s"):format(label, base, p))
  end
end

local function artifacts_section(root, opts)
  local bar <close> = require("mlx.progress").new("hashing")
  local results, err, code = artifacts.status(root, { jobs = opts.jobs, diff = true, progress = bar.report })
  bar:done()
  if not results then ui.fail(ui.exit_code_for(code), "%s", err) end
  local stale = 0
  for _, r in ipairs(results) do
    local shown = r.path .. (r.entry.type == "dir" and "/" or "")
    if r.state ~= "ok" then
      stale = stale + 1
      local detail = ""
      if r.diff then
        detail = (" (%d added, %d modified, %d deleted)"):format(#r.diff.added, #r.diff.modified,
          #r.diff.deleted)
      elseif r.reason then
        detail = " (" .. r.reason .. ")"
      end
      if r.step then detail = detail .. (" (out of step %s)"):format(r.step) end
      ui.out(("%-9s %s%s"):format(r.state .. ":", shown, detail))
      if r.diff then
        local limit = not opts.verbose and 10 or nil
        show_list("added:   ", r.diff.added, r.path, limit)
        show_list("modified:", r.diff.modified, r.path, limit)
        show_list("deleted: ", r.diff.deleted, r.path, limit)
      end
    end
    if not r.cached and not r.step then
      ui.warn(("%s: its objects are not in the store; %s"):format(shown,
        require("mlx.remote.config").pull_hint(root)))
    end
  end
  for _, p in ipairs(results.unpinned) do
    stale = stale + 1
    ui.out(("%-9s %s (an earlier mlx.lock pinned it, this one does not; 'mlx checkout' removes it)")
      :format("unpinned:", p))
  end
  if stale == 0 and #results > 0 then
    ui.note(("%d tracked artifact%s up to date"):format(#results, #results == 1 and "" or "s"))
  end
  return stale
end

-- The steps of a recipe: the pipeline engine is loaded only when a RECIPE
-- is given, so a plain status does not pay for reading it.
local function pipeline_section(root, opts, args, pipeline)
  if not args[1] then return 0 end
  return require("mlx.pipeline.status").section(root, opts, args, pipeline)
end

-- With --remote (or -r NAME): which pinned objects are not in the store,
-- and which are not on the remote (by its index: one listing; with
-- --verify, by a listing of its objects and their sizes).
local WHY = {
  bad = "marked bad (a fetch found it corrupt or absent)",
  missing = "absent",
  size = "of the wrong size",
}

local function remote_section(root, opts)
  if not opts.remote then return 0 end
  -- --remote alone is the default remote; --remote=NAME and -r NAME name one.
  local name = type(opts.remote) == "string" and opts.remote or nil
  local result, err, code = require("mlx.remote").status(root, { remote = name, verify = opts.verify })
  if not result then ui.fail(ui.exit_code_for(code), "%s", require("mlx.remote.report").advice(err, code)) end
  if result.warning then ui.warn(result.warning) end
  ui.note(("remote '%s' (%s), %s"):format(result.remote, result.url,
    opts.verify and "by a listing of its objects" or "by its index"))
  local function group(list)
    local by, order, why = {}, {}, {}
    for _, o in ipairs(list) do
      local p = o.path or o.hash
      if not by[p] then
        by[p] = 0
        order[#order + 1] = p
      end
      by[p] = by[p] + 1
      why[p] = why[p] or o.why
    end
    table.sort(order)
    return order, by, why
  end
  local order, by, why = group(result.remote_missing)
  for _, p in ipairs(order) do
    local n = ("%d object%s"):format(by[p], by[p] == 1 and "" or "s")
    if why[p] then
      ui.out(("%-9s %s (%s %s on remote '%s'; mlx push%s sends %s again)"):format("unpushed:", p, n, WHY[why[p]],
        result.remote, why[p] == "bad" and "" or " --verify", by[p] == 1 and "it" or "them"))
    else
      ui.out(("%-9s %s (%s not on remote '%s'; mlx push)"):format("unpushed:", p, n, result.remote))
    end
  end
  for _, u in ipairs(result.unavailable or {}) do
    ui.note(("%s: in no store and on no remote; its step %s makes it again"):format(u.path, u.step))
  end
  local lorder, lby = group(result.local_missing)
  for _, p in ipairs(lorder) do
    ui.out(("%-9s %s (%d object%s not in the store; mlx pull -r %s)"):format("unfetched:", p, lby[p],
      lby[p] == 1 and "" or "s", result.remote))
  end
  if #order == 0 and #lorder == 0 then
    ui.note(("all %d pinned objects are in the store and on remote '%s'"):format(result.objects, result.remote))
  end
  return #order + #lorder
end

local M = {
  summary = "show tracked data that is modified or missing, and stale pipeline steps",
  usage = "mlx status [RECIPE] [--check] [--remote[=NAME] | -r NAME] [--verify] [-v] [-j N] [-p KEY=VALUE]... "
    .. "[--params-file FILE]",
  description = [[
Compares every path pinned in mlx.lock with the workspace and prints those
that are modified or missing ("modified: data/images/ (1 added, 2 modified,
0 deleted)", then up to 10 of the files; -v lists them all), and the paths
an earlier mlx.lock of this clone pinned that this one does not and that
are still in the workspace ("unpinned: extra.bin", left by git checkout of
another commit; mlx checkout removes them). Files whose
size, mtime, ctime and inode are unchanged are not read (stat cache). With
a RECIPE, also prints each step of its pipeline that would run and why
("stale:    train: param 'lr' changed from 0.1 to 0.05"); a RECIPE that
does not load (or a bad -p) exits 2 before anything is printed. With --check the
exit code is 1 when anything is out of date, for CI. With --remote, also
says which pinned objects are not on the default remote (by its index) and
which are not in the store; --remote=NAME or -r NAME does so for the
remote NAME. With
--verify, the remote's index is not trusted: its objects are listed with
their sizes, and those absent or of the wrong size are unpushed (mlx push
--verify sends them again).]],
  options = {
    { "check", help = "exit 1 if anything is modified, missing or unpinned" },
    cli.option("remote", { optional = true,
      help = "also say what is missing on a remote (the default, or NAME) and in the store" }),
    { "verify", help = "with --remote or -r: list the remote's objects instead of trusting its index" },
    { "verbose", short = "v", help = "list every changed file" },
    cli.option("jobs", { help = "hash with N threads (default: one per CPU)" }),
    cli.option("param", { help = "a param value the recipe would run with (repeatable)" }),
    cli.option("params-file"),
  },
  args = { max = 1 },
  sections = { artifacts_section, pipeline_section, remote_section },
}

function M.main(opts, args)
  if opts.verify and not opts.remote then
    ui.usage_error("--verify checks a remote: add --remote (the default remote) or -r NAME")
  end
  local root = project.require_root()
  -- A RECIPE that does not load (a syntax error, an unknown field, a bad
  -- -p) is bad input, said in one line before any section prints.
  local pipeline = args[1] and require("mlx.pipeline.status").load(args[1], opts)
  local stale = 0
  for _, section in ipairs(M.sections) do
    stale = stale + section(root, opts, args, pipeline)
  end
  if opts.check and stale > 0 then return ui.EXIT.FAILED end
  return ui.EXIT.OK
end

return M
