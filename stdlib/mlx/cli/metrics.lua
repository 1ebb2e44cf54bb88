-- mlx metrics: the metrics of a run, or the history of one; `mlx metrics
-- diff`: the working tree's against a baseline (mlx.metrics).
local cli = require "mlx.cli"
local ui = require "mlx.ui"

local check = ui.check

local function finite_or_null(json, v)
  if v ~= v or v == math.huge or v == -math.huge then return json.null end
  return v
end

local function show_value(view, v)
  if v == nil then return "-" end
  if type(v) == "number" then return view.number(v) end
  return tostring(v)
end

--- Returns the CHANGE column of a metrics diff row: "+0.05 (+5.6%)", "".
local function change_text(view, row)
  if not row.delta then return "" end
  if row.delta == 0 then return "0" end
  local text = (row.delta > 0 and "+" or "") .. view.number(row.delta)
  if row.rel then text = text .. (" (%+.1f%%)"):format(row.rel * 100) end
  return text
end

local diff_command = {
  name = "diff",
  summary = "compare the working tree's metrics and params with a baseline",
  usage = "mlx metrics diff [REV | --baseline REV|MODEL@ALIAS] [--fail-on RULE]... [--all] [--json]",
  description = [[
Compares the metrics of the working tree (the metrics files its steps
declare, as mlx.lock names them) and its params (as mlx.lock records them)
with those of a baseline: a git revision (default HEAD; its mlx.lock is read
from git, and the metrics files it pins from the store) or a registered
model (NAME@ALIAS or NAME:VERSION: the metrics and params of the runs that
made and evaluated it). The baseline may be given as the one argument, as
dvc metrics diff takes it (mlx metrics diff main). Prints each metric with both values and the change,
then the params that differ. Exits 0 whether or not values differ; with
--fail-on, 1 when a rule is broken (each broken rule is said on stderr).
Rules: KEY<N and KEY>N bound the working tree's value; KEY:-N fails when
the value falls by more than N against the baseline, KEY:+N when it rises
by more; N% makes the change relative to the baseline's value.]],
  options = {
    { "baseline", arg = "REV|MODEL@ALIAS", help = "what to compare with (default HEAD)" },
    { "fail-on", arg = "RULE", multiple = true, help = "exit 1 if RULE is broken: acc<0.9, loss>0.5, acc:-0.01, acc:-2% (repeatable)" },
    { "all", help = "show every param, not only those that differ" },
    cli.option("json", { help = "print JSON: {baseline, current, metrics: [{key, baseline, current, change}], params: [...]}" }),
  },
  args = { max = 1, name = "a baseline REV" },
  main = function(opts, args)
    if args[1] and opts.baseline then
      ui.usage_error("give the baseline once: '%s' or --baseline %s", args[1], opts.baseline)
    end
    opts.baseline = opts.baseline or args[1]
    local metrics = require "mlx.metrics"
    local project = require "mlx.project"
    local view = require "mlx.track.view"
    local root = project.require_root()
    local rules = {}
    for i, text in ipairs(opts.fail_on or {}) do
      rules[i] = metrics.parse_rule(text) or ui.usage_error("%s", select(2, metrics.parse_rule(text)))
    end
    local base = check(metrics.side(root, opts.baseline or "HEAD"))
    local cur = check(metrics.workspace(root))
    for _, side in ipairs({ base, cur }) do
      for _, w in ipairs(side.warnings) do ui.warn(w) end
    end
    local rows = metrics.diff(base.metrics, cur.metrics)
    local prows = metrics.params_diff(base.params, cur.params, opts.all)
    if opts.json then
      local json = require "mlx.json"
      local out = { baseline = base.label, current = cur.label, metrics = json.array(), params = json.array() }
      for i, r in ipairs(rows) do
        out.metrics[i] = { key = r.key, baseline = finite_or_null(json, r.base), current = finite_or_null(json, r.cur),
          change = finite_or_null(json, r.delta) }
      end
      for i, r in ipairs(prows) do out.params[i] = { key = r.key, baseline = r.base, current = r.cur } end
      io.stdout:write(json.encode(out, { indent = 2 }), "\n")
    else
      if #rows == 0 then
        ui.note(("no metrics in %s or %s (declare metrics files in steps: metrics = {…})"):format(base.label,
          cur.label))
      else
        local lines = {}
        for i, r in ipairs(rows) do
          lines[i] = { r.key, show_value(view, r.base), show_value(view, r.cur), change_text(view, r) }
        end
        for _, line in ipairs(view.table({ "METRIC", base.label, cur.label, "CHANGE" }, lines,
          { [2] = true, [3] = true, [4] = true })) do
          ui.out(line)
        end
      end
      if #prows > 0 then
        if #rows > 0 then ui.out("") end
        local lines = {}
        for i, r in ipairs(prows) do lines[i] = { r.key, show_value(view, r.base), show_value(view, r.cur) } end
        for _, line in ipairs(view.table({ "PARAM", base.label, cur.label }, lines)) do ui.out(line) end
      end
    end
    local broken = 0
    for _, rule in ipairs(rules) do
      local why = metrics.check_rule(rule, base.metrics, cur.metrics)
      if why then
        ui.error(why)
        broken = broken + 1
      end
    end
    return broken > 0 and ui.EXIT.FAILED or ui.EXIT.OK
  end,
}

return {
  summary = "show a run's metrics, or the history of one metric",
  usage = "mlx metrics ID [KEY] [--json]",
  description = [[
Without KEY: each metric of the run ID (any unique prefix of a run id) with
its latest value and step, number of points, minimum and maximum. With KEY:
every point of that metric, by step, with the time it was logged. An
unknown or malformed ID, or an unknown KEY, exits 2.]],
  options = {
    { "json", help = "print JSON: [{key, value, step, ts, count, min, max}…] or [{step, ts, value}…]" },
  },
  args = { min = 1, max = 2, name = "a run ID" },
  subcommands = { diff_command },
  main = function(opts, args)
    local track = require "mlx.track"
    local store = ui.check_file(track.store())
    local view = require "mlx.track.view"
    local json = opts.json and require "mlx.json"
    local id = check(store:resolve(args[1]))
    local key = args[2]
    if not key then
      local rows = check(store:metric_summary(id))
      if json then
        local out = json.array()
        for i, m in ipairs(rows) do
          out[i] = { key = m.key, value = finite_or_null(json, m.value), step = m.step, ts = m.ts, count = m.count,
            min = m.min, max = m.max }
        end
        io.stdout:write(json.encode(out, { indent = 2 }), "\n")
      elseif #rows == 0 then
        ui.note(("run %s has no metrics"):format(id))
      else
        local lines = {}
        for i, m in ipairs(rows) do
          lines[i] = { m.key, view.number(m.value), tostring(m.step), tostring(m.count), view.number(m.min), view.number(m.max) }
        end
        for _, line in ipairs(view.table({ "KEY", "LATEST", "STEP", "COUNT", "MIN", "MAX" }, lines,
          { [2] = true, [3] = true, [4] = true, [5] = true, [6] = true })) do
          ui.out(line)
        end
      end
      return ui.EXIT.OK
    end
    local points = check(store:metric_history(id, key))
    if #points == 0 then ui.usage_error("run %s has no metric '%s' (see 'mlx metrics %s')", id, key, args[1]) end
    if json then
      local out = json.array()
      for i, p in ipairs(points) do out[i] = { step = p.step, ts = p.ts, value = finite_or_null(json, p.value) } end
      io.stdout:write(json.encode(out, { indent = 2 }), "\n")
    else
      local lines = {}
      for i, p in ipairs(points) do lines[i] = { tostring(p.step), view.time(p.ts), view.number(p.value) } end
      for _, line in ipairs(view.table({ "STEP", "TIME", key }, lines, { [1] = true, [3] = true })) do ui.out(line) end
    end
    return ui.EXIT.OK
  end,
}
