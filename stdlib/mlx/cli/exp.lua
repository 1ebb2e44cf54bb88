-- mlx exp: the experiments table — one row per recipe run, its params and
-- the final metrics of its steps side by side (mlx.track.exp).
local cli = require "mlx.cli"
local ui = require "mlx.ui"
local view = require "mlx.track.view"

-- The columns every row has, by the names --columns takes.
local FIXED = {
  { name = "id", header = "ID", get = function(row) return row.id end },
  { name = "recipe", header = "RECIPE", get = function(row) return row.recipe or "" end },
  { name = "status", header = "STATUS", get = function(row) return row.status end },
  { name = "start", header = "START", get = function(row) return view.time(row.start_time) end,
    csv = function(row) return view.iso_time(row.start_time) end },
  { name = "duration", header = "DURATION", right = true, get = function(row) return view.duration(row.duration) end,
    csv = function(row) return ("%.3f"):format(row.duration) end },
  { name = "commit", header = "COMMIT", get = function(row) return row.git.commit and row.git.commit:sub(1, 12) or "" end,
    csv = function(row) return row.git.commit or "" end },
  { name = "branch", header = "BRANCH", get = function(row) return row.git.branch or "" end },
}
local DEFAULT_FIXED = { "id", "recipe", "status", "start" }

-- A column of a params, metrics or tags entry.
local function keyed_column(group, key)
  local name = group .. "." .. key
  return {
    name = name, header = name, group = group, key = key, right = group == "metrics",
    value = function(row) return row[group][key] end,
  }
end

local sorted_keys = view.sorted_keys

-- A glob (* any text, ? one character) as an anchored Lua pattern.
local function glob_pattern(glob)
  return "^" .. glob:gsub("[%^%$%(%)%%%.%[%]%+%-]", "%%%0"):gsub("%*", ".*"):gsub("%?", ".") .. "$"
end

-- The columns to show: id, then those --columns names (in its order, each
-- glob's matches sorted), or by default the fixed ones, every param and
-- every metric. Raises a usage failure for a name that cannot be a column.
local function choose_columns(spec, rows)
  local available = {}
  for _, c in ipairs(FIXED) do available[#available + 1] = c end
  for _, group in ipairs({ "params", "metrics", "tags" }) do
    for _, key in ipairs(sorted_keys(rows, group)) do available[#available + 1] = keyed_column(group, key) end
  end
  local by_name = {}
  for _, c in ipairs(available) do by_name[c.name] = c end
  local chosen, taken = { by_name.id }, { id = true }
  local function take(c)
    if not taken[c.name] then chosen[#chosen + 1], taken[c.name] = c, true end
  end
  if not spec then
    for _, name in ipairs(DEFAULT_FIXED) do take(by_name[name]) end
    for _, c in ipairs(available) do
      if c.group == "params" or c.group == "metrics" then take(c) end
    end
    return chosen
  end
  for word in spec:gmatch("[^,]+") do
    word = word:match("^%s*(.-)%s*$")
    if word:find("[*?]") then
      local pattern = glob_pattern(word)
      for _, c in ipairs(available) do
        if c.name:match(pattern) then take(c) end
      end
    elseif by_name[word] then
      take(by_name[word])
    else
      local group, key = word:match("^(%a+)%.(.+)$")
      if group == "param" or group == "metric" or group == "tag" then group = group .. "s" end
      if not (group == "params" or group == "metrics" or group == "tags") then
        ui.usage_error("--columns: unknown column '%s' (id, recipe, status, start, duration, commit, branch,"
          .. " params.NAME, metrics.NAME, tags.NAME; globs with * and ?)", word)
      end
      take(by_name[group .. "." .. key] or keyed_column(group, key))
    end
  end
  return chosen
end

local function same(a, b)
  return a == b or (a ~= a and b ~= b)
end

-- B − A of two metric values, or nil when either is missing.
local function delta(value, base)
  if type(value) ~= "number" or type(base) ~= "number" then return nil end
  return value - base
end

-- A delta with its sign and an arrow: "+0.02 ↑", "-1.5 ↓", "=".
local function delta_text(d)
  if d == 0 then return "=" end
  if d ~= d then return "nan" end
  return (d > 0 and "+" or "") .. view.number(d) .. (d > 0 and " ↑" or " ↓")
end

-- The text of one cell for people (table and Markdown).
local function cell(c, row, base)
  if c.get then return c.get(row) end
  local v = c.value(row)
  if c.group == "metrics" then
    local text = v ~= nil and view.number(v) or ""
    if base and base ~= row and v ~= nil then
      local d = delta(v, base.metrics[c.key])
      if d then text = text .. " (" .. delta_text(d) .. ")" end
    end
    return text
  end
  local text = v ~= nil and tostring(v) or ""
  -- A param or tag that differs from the baseline's is marked.
  if base and base ~= row and not same(v, base[c.group][c.key]) then text = text .. " *" end
  return text
end

local function render_table(columns, rows, base)
  local header, right, lines = {}, {}, {}
  for i, c in ipairs(columns) do
    header[i], right[i] = c.header, c.right
  end
  for i, row in ipairs(rows) do
    local cells = {}
    for j, c in ipairs(columns) do cells[j] = cell(c, row, base) end
    if base then cells[1] = cells[1] .. (row == base and " (baseline)" or "") end
    lines[i] = cells
  end
  return view.table(header, lines, right)
end

local function md_escape(s)
  return (s:gsub("|", "\\|"))
end

local function render_md(columns, rows, base)
  local header, rule = {}, {}
  for i, c in ipairs(columns) do
    header[i] = md_escape(c.header)
    rule[i] = c.right and "---:" or "---"
  end
  local lines = { "| " .. table.concat(header, " | ") .. " |", "| " .. table.concat(rule, " | ") .. " |" }
  for _, row in ipairs(rows) do
    local cells = {}
    for j, c in ipairs(columns) do cells[j] = md_escape(cell(c, row, base)) end
    if base and row == base then cells[1] = cells[1] .. " (baseline)" end
    lines[#lines + 1] = "| " .. table.concat(cells, " | ") .. " |"
  end
  return lines
end

local csv_field = view.csv_field

-- CSV: exact numbers, UTC times; with a baseline, a "delta(metrics.K)"
-- column after each metric and a "baseline" column.
local function render_csv(columns, rows, base)
  local header = {}
  for _, c in ipairs(columns) do
    header[#header + 1] = csv_field(c.name)
    if base and c.group == "metrics" then header[#header + 1] = csv_field("delta(" .. c.name .. ")") end
  end
  if base then header[#header + 1] = "baseline" end
  local lines = { table.concat(header, ",") }
  for _, row in ipairs(rows) do
    local cells = {}
    for _, c in ipairs(columns) do
      local text
      if c.csv then
        text = c.csv(row)
      elseif c.get then
        text = c.get(row)
      else
        local v = c.value(row)
        text = (c.group == "metrics" and v ~= nil) and view.exact(v) or v
      end
      cells[#cells + 1] = csv_field(text)
      if base and c.group == "metrics" then
        local d = delta(row.metrics[c.key], base.metrics[c.key])
        cells[#cells + 1] = (d and row ~= base) and view.exact(d) or ""
      end
    end
    if base then cells[#cells + 1] = row == base and "true" or "false" end
    lines[#lines + 1] = table.concat(cells, ",")
  end
  return table.concat(lines, "\r\n") .. "\r\n"
end

-- JSON: every row whole (--columns does not apply): id, recipe, status,
-- times, command, git, params, metrics and tags; with a baseline,
-- "baseline": true on its row and "deltas" (metric → B − A) on the others.
local function render_json(rows, base)
  local json = require "mlx.json"
  local function number_or_null(v)
    return (v ~= v or v == math.huge or v == -math.huge) and json.null or v
  end
  local out = json.array()
  for i, row in ipairs(rows) do
    local o = {}
    for k, v in pairs(row) do o[k] = v end
    local metrics = json.object()
    for k, v in pairs(row.metrics) do metrics[k] = number_or_null(v) end
    o.metrics, o.params, o.tags, o.git = metrics, json.object(row.params), json.object(row.tags), json.object(row.git)
    if base then
      o.baseline = row == base
      if row ~= base then
        local deltas = json.object()
        for k, v in pairs(row.metrics) do
          local d = delta(v, base.metrics[k])
          if d then deltas[k] = number_or_null(d) end
        end
        o.deltas = deltas
      end
    end
    out[i] = o
  end
  return json.encode(out, { indent = 2 }) .. "\n"
end

local function main(opts)
  local formats = 0
  for _, f in ipairs({ "json", "csv", "md" }) do
    if opts[f] then formats = formats + 1 end
  end
  if formats > 1 then ui.usage_error("--json, --csv and --md exclude each other") end
  if opts.limit < 0 then ui.usage_error("--limit must be 0 (all) or more, not %d", opts.limit) end
  local filter = require "mlx.track.filter"
  local ok, err = filter.compile(opts.filter or "")
  if not ok then ui.usage_error("--filter: %s", err) end
  if opts.sort then
    ok, err = filter.order(opts.sort)
    if not ok then ui.usage_error("--sort: %s", err) end
  end
  local store = ui.check_file(require("mlx.track").store())
  local exp = require "mlx.track.exp"
  local check = ui.check
  local limit = (not opts.all and opts.limit > 0) and opts.limit or nil
  local rows, total, code = exp.rows(store, { filter = opts.filter, order = opts.sort, limit = limit, all = opts.all,
    count = limit ~= nil })
  check(rows, total, code)
  local base
  if opts.baseline then
    base = check(exp.row(store, opts.baseline))
    for i, row in ipairs(rows) do
      if row.id == base.id then table.remove(rows, i) break end
    end
    table.insert(rows, 1, base)
  end
  if opts.json then
    io.stdout:write(render_json(rows, base))
    return ui.EXIT.OK
  end
  local columns = choose_columns(opts.columns, rows)
  if opts.csv then
    io.stdout:write(render_csv(columns, rows, base))
    return ui.EXIT.OK
  end
  if #rows == 0 then
    ui.note(opts.filter and "no experiment matches the filter" or "no experiments yet (each 'mlx recipe' is one)")
    return ui.EXIT.OK
  end
  local lines = opts.md and render_md(columns, rows, base) or render_table(columns, rows, base)
  for _, line in ipairs(lines) do ui.out(line) end
  if total and total > limit then ui.note(("%d of %d experiments shown (--all for all)"):format(limit, total)) end
  return ui.EXIT.OK
end

return {
  summary = "the experiments table: each recipe run's params and metrics side by side",
  usage = "mlx exp [--filter EXPR] [--sort KEYS] [--columns NAMES] [--baseline ID] [--limit N] [--all]"
    .. " [--md|--csv|--json]",
  description = [[
One row per recipe run, newest first: its params (-p, --params-file and the
recipe's defaults) and the final metrics of its steps joined. A step
restored from the run-cache carries the metrics of the run that produced
its outs; when two steps log one metric, the step that ran last wins.
Invocations that executed nothing (every step up to date) and the runs
of mlx verify are left out unless --all. Output: an aligned table, a Markdown table (--md), CSV with
exact numbers and UTC times (--csv; with a baseline, a delta(metrics.NAME)
column after each metric), or a JSON array of rows (--json). A bad filter,
sort or column name exits 2. See docs/tracking.md.

--filter and --sort take the grammar of 'mlx runs' (see 'mlx help runs'),
over the joined params and metrics and the recipe run's attributes and tags:
  mlx exp --filter "params.lr < 0.1 and metrics.accuracy > 0.9" --sort -metrics.accuracy
--columns names columns, comma-separated, with globs * and ?: id, recipe,
status, start, duration, commit, branch, params.NAME, metrics.NAME,
tags.NAME (e.g. --columns 'params.*,metrics.acc*'); the id always comes
first (default: id, recipe, status, start, every param, every metric).
--baseline ID puts that run's row first (a step run stands for its recipe
run) and every other metric with its difference (+0.02 ↑, -0.1 ↓, =);
params that differ are marked '*'.
--json prints every row whole: id, recipe, status, start_time, end_time,
duration, command, git, params, metrics and tags (and with --baseline,
"baseline" and "deltas").]],
  options = {
    cli.option("filter", { help = "only rows matching EXPR (the grammar of 'mlx runs')" }),
    { "sort", arg = "KEYS", help = "order by KEYS, e.g. -metrics.accuracy (default: newest first)" },
    { "columns", arg = "NAMES", help = "columns to show, comma-separated, globs allowed" },
    { "baseline", arg = "ID", help = "compare every row with this run's" },
    cli.option("limit", { help = "show at most N rows (0: all; default 50)" }),
    { "all", help = "every row: no limit, the invocations that executed nothing and mlx verify's runs" },
    { "md", help = "print a Markdown table" },
    { "csv", help = "print CSV" },
    cli.option("json", { help = "print a JSON array of rows" }),
    -- -c was --columns here for a while; it is --changed of mlx runs diff.
    cli.retired("c", "use --columns NAMES (-c is --changed of 'mlx runs diff')"),
  },
  args = { max = 0 },
  main = main,
}
