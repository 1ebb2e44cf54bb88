-- mlx runs: list, show and compare the runs of this project.
local ui = require "mlx.ui"

local cli = require "mlx.cli"

local LIST_OPTIONS = {
  cli.option("filter"),
  { "sort", short = "s", arg = "KEYS", help = "order by KEYS, e.g. -metrics.acc (default: newest first)" },
  cli.option("limit", { help = "show at most N runs (0: all; default 50)" }),
  { "all", help = "every run: no limit, and the invocations that executed nothing" },
  { "metrics", short = "m", arg = "KEYS", help = "metric columns, comma-separated (default: the 4 most common)" },
  { "json", help = "print the runs as JSON" },
  { "csv", help = "print the runs as CSV, every metric, param and tag a column" },
  -- Until 0.2, -n was --limit and -f --filter here; they mean --dry-run
  -- and --force in every other command.
  cli.retired("n", "use --limit N (-n is --dry-run in every command)"),
  cli.retired("f", "use --filter EXPR (-f is --force in every command)"),
}

-- The project's runs database, or exit 2 outside a project or when it is
-- not one this mlx can read.
local function open_store()
  local track = require "mlx.track"
  return ui.check_file(track.store()), track
end

local check = ui.check

local function print_json(value)
  io.stdout:write(require("mlx.json").encode(value, { indent = 2 }), "\n")
end

local function list(opts)
  if opts.json and opts.csv then ui.usage_error("--json and --csv exclude each other") end
  if opts.limit < 0 then ui.usage_error("--limit must be 0 (all) or more, not %d", opts.limit) end
  local filter = require "mlx.track.filter"
  local ok, err = filter.compile(opts.filter or "")
  if not ok then ui.usage_error("--filter: %s", err) end
  if opts.sort then
    ok, err = filter.order(opts.sort)
    if not ok then ui.usage_error("--sort: %s", err) end
  end
  if opts.all then opts.limit = 0 end
  local store = open_store()
  local runs = check(store:runs { filter = opts.filter, order = opts.sort, limit = opts.limit,
    hide_noop = not opts.all })
  local view = require "mlx.track.view"
  if opts.json then
    local json = require "mlx.json"
    local out = json.array()
    for i, run in ipairs(runs) do out[i] = view.jsonable(run, json) end
    print_json(out)
  elseif opts.csv then
    io.stdout:write(view.runs_csv(runs))
  elseif #runs == 0 then
    ui.note(opts.filter and "no run matches the filter" or "no runs yet")
  else
    local wanted = {}
    if opts.metrics then
      for key in opts.metrics:gmatch("[^,]+") do wanted[#wanted + 1] = key:match("^%s*(.-)%s*$") end
    else
      for _, text in ipairs({ opts.sort or "", opts.filter or "" }) do
        for key in text:gmatch("metrics?%.([%w_.:/%-]*%w)") do wanted[#wanted + 1] = key end
      end
    end
    local keys = view.main_metrics(runs, wanted, opts.metrics and #wanted or math.max(4, #wanted))
    for _, line in ipairs(view.runs_table(runs, keys)) do ui.out(line) end
    if #runs == opts.limit then
      local total = store:count(opts.filter, { hide_noop = not opts.all })
      if total and total > #runs then
        ui.note(("%d of %d runs shown (--limit 0 for all)"):format(#runs, total))
      end
    end
  end
  return ui.EXIT.OK
end

local function show(opts, ids)
  local store = open_store()
  local run = check(store:get(ids[1]))
  run.metric_summary = check(store:metric_summary(run.id))
  local view = require "mlx.track.view"
  if opts.json then
    print_json(view.jsonable(run, require "mlx.json"))
  else
    for _, line in ipairs(view.show(run)) do ui.out(line) end
  end
  return ui.EXIT.OK
end

local function diff(opts, ids)
  local store = open_store()
  local a = check(store:get(ids[1]))
  local b = check(store:get(ids[2]))
  for _, line in ipairs(require("mlx.track.view").diff(a, b, opts.changed)) do ui.out(line) end
  return ui.EXIT.OK
end

-- mlx runs tag RUN KEY=VALUE... [--delete KEY]...: every word is checked
-- before anything is written.
local function tag(opts, words)
  local deletes = opts.delete or {}
  if #words < 2 and #deletes == 0 then
    ui.usage_error("'mlx runs tag' needs a run ID and KEY=VALUE or --delete KEY (see 'mlx help runs tag')")
  end
  local sets = {}
  for i = 2, #words do
    local k, v = words[i]:match("^([^=]+)=(.*)$")
    if not k then ui.usage_error("mlx runs tag: '%s' is not KEY=VALUE", words[i]) end
    sets[#sets + 1] = { k, v }
  end
  local store = open_store()
  local run = check(store:get(words[1]))
  for _, key in ipairs(deletes) do
    if run.tags[key] == nil then ui.usage_error("run %s has no tag '%s'", run.id, key) end
  end
  for _, kv in ipairs(sets) do check(store:set_tag(run.id, kv[1], kv[2])) end
  for _, key in ipairs(deletes) do check(store:delete_tag(run.id, key)) end
  return ui.EXIT.OK
end

-- mlx runs rm RUN...: all or nothing.
local function rm(_, ids)
  local store = open_store()
  local runs = {}
  for i, id in ipairs(ids) do runs[i] = check(store:get(id)) end
  local n = check(store:delete(ids))
  -- Their logs go with them: a recipe run's directory holds its steps' logs.
  local fs = require "mlx.fs"
  local root = require("mlx.project").find_root()
  for _, run in ipairs(runs) do
    if run.parent == nil and root then
      fs.remove_tree(("%s/.mlx/logs/%s"):format(root, run.id))
    elseif run.log_path then
      os.remove(run.log_path)
    end
  end
  ui.note(("deleted %d run%s"):format(n, n == 1 and "" or "s"))
  return ui.EXIT.OK
end

return {
  summary = "list the runs of this project; show, compare, tag or delete them",
  usage = "mlx runs [--filter EXPR] [--sort KEYS] [--limit N] [--all] [--metrics KEYS] [--json|--csv]",
  description = [[
Every 'mlx recipe' and every pipeline step is a run, recorded in
.mlx/runs.db. 'mlx runs' lists them newest first: id, recipe/step, status
(RUNNING, FINISHED, FAILED, KILLED, CACHED), start, duration and the main
metrics (--metrics a,b chooses them; by default those named in --sort and
--filter, then the most common, four in all). --json prints the run records
(params, metrics, tags included); --csv a column per field, metric, param
and tag, times in UTC ISO 8601. An invocation that executed nothing (every
step up to date; tag mlx.noop) is listed only with --all. An ID may be any
unique prefix of a run id. Opening the database marks KILLED the runs whose
mlx process died (kill -9, power loss).

Filter expressions (MLflow's search syntax, plus OR, NOT, parentheses and
numeric comparison of params):
  metrics.acc > 0.9 and params.lr = '0.1'
  (status = 'FAILED' or metrics.loss >= 1e3) and not tags.team like 'vis%'
  params.lr < 0.05 and start_time > '2024-05-01' and dirty = false
Fields: metrics.NAME (latest value), params.NAME (text, or a number when
compared with one), tags.NAME, and the attributes run_id, run_name, status,
user_id, start_time, end_time, parent, recipe, step, message, duration,
exit_code, git_commit, git_branch, git_dirty, host, command, peak_rss, ...
Names with other characters: metrics.`f1 score`. Operators: = != < <= > >=
(< <= > >= on numbers and times only), LIKE and ILIKE ('%' any text, '_' one
character), IN (...), IS [NOT] NULL (params, tags, mlx's own attributes).
Sort keys: fields, comma-separated, each with ASC or DESC or a leading '-'.
A filter or sort that does not parse exits 2 naming the column.]],
  options = LIST_OPTIONS,
  args = { max = 0 },
  main = list,
  subcommands = {
    {
      name = "show",
      summary = "everything about one run",
      usage = "mlx runs show ID [--json]",
      description = [[
Recipe and hash, step, parent, command, times, exit code, error message,
git commit, branch and dirty flag, host, user and pid, CPU time and peak
RSS, params, each metric's latest value, step, count, minimum and maximum,
tags, artifacts with their hashes, and its step runs. ID is any unique
prefix of a run id; an ambiguous or unknown one exits 2.]],
      options = { { "json", help = "print the run as JSON" } },
      args = { min = 1, max = 1, name = "one run ID" },
      main = show,
    },
    {
      name = "diff",
      summary = "two runs side by side, with the metric deltas",
      usage = "mlx runs diff ID ID [--changed]",
      description = [[
Status, recipe, git commit, duration, every param (differences marked *)
and every metric with B - A and its change in percent.]],
      options = { { "changed", short = "c", help = "only the params and metrics that differ" } },
      args = { min = 2, max = 2, name = "two run IDs" },
      main = diff,
    },
    {
      name = "tag",
      summary = "set or remove tags of a run",
      usage = "mlx runs tag ID KEY=VALUE... [--delete KEY]...",
      description = [[
Sets each KEY=VALUE as a tag of the run ID (which may have ended) and
removes each --delete KEY.
Every word is checked before anything is written: a word without '=' or a
tag the run does not have exits 2 and changes nothing.]],
      options = { { "delete", arg = "KEY", multiple = true, help = "remove the tag KEY (repeatable)" } },
      args = { min = 1, name = "a run ID and KEY=VALUE or --delete KEY" },
      main = tag,
    },
    {
      name = "rm",
      summary = "delete runs",
      usage = "mlx runs rm ID...",
      description = [[
Deletes the runs with their step runs, params, metrics, tags, artifacts and
logs (.mlx/logs/ID/), all or nothing, and prints "deleted N runs"; store
objects are left to mlx gc. A run that a model version names as its run (or
whose step run it names) is not deleted: "run ID is the run of model
version iris:2: not deleted", exit 2; nor is a run still RUNNING.]],
      args = { min = 1, name = "one or more run IDs" },
      main = rm,
    },
  },
}
