--- mlx.report: the report of the working tree against a baseline, as
--- Markdown (for a pull request) and HTML (for CI artifacts), with SVG
--- plots drawn by gnuplot (mlx.report.plot): params that changed, metrics
--- with deltas and arrows, step timings, the data that changed, metric
--- curves over steps, the plots steps declare and a chart of the compared
--- metrics. `mlx report` is its command.
---
---     local report = require "mlx.report"
---     local r = assert(report.build(root, { baseline = "HEAD~1" }))
---     assert(report.write(r, "report.md"))
---
--- A report is a table {base, cur (mlx.metrics sides), metrics, params,
--- data, steps (rows), curves, plots (specs to draw), warnings}; drawing
--- and writing fill its `figures` {name, title, file}. Failures of the
--- world return nil, message, code.
local core = require "mlx.core"
local fs = require "mlx.fs"
local json = require "mlx.json"
local metrics = require "mlx.metrics"
local view = require "mlx.track.view"

local M = {}

M.MARKER = require("mlx.report.post").MARKER

-- The points of each metric with more than one point in the step runs of
-- side: {key → {{step, value}…}}.
local function curves_of(runs, side)
  local out = {}
  if not runs then return out end
  local names = {}
  for name, run in pairs(side.steps) do if run then names[#names + 1] = name end end
  table.sort(names)
  for _, name in ipairs(names) do
    local run = side.steps[name]
    for _, m in ipairs(runs:metric_summary(run.id) or {}) do
      if m.count > 1 and not out[m.key] then out[m.key] = runs:metric_history(run.id, m.key) end
    end
  end
  return out
end

-- Reads the plot file path of side: the workspace's file, or the object
-- its hash names in the store.
local function read_plot(root, side, path)
  if side.kind == "workspace" then return json.load(root .. "/" .. path) end
  local hash = side.data[path]
  if not hash then return nil, "not in " .. side.label end
  local st, err = require("mlx.store").open(root)
  if not st then return nil, err end
  local bytes
  bytes, err = st:read(hash)
  st:close()
  if not bytes then return nil, err end
  return json.decode(bytes)
end

local function step_rows(base, cur)
  local rows = {}
  for _, name in ipairs(metrics.union(base.steps, cur.steps)) do
    local c, b = cur.steps[name], base.steps[name]
    rows[#rows + 1] = { step = name, status = c and c.status or (c == false and "no run" or "-"),
      cur = c and (c.wall_seconds or c.duration), base = b and (b.wall_seconds or b.duration) }
  end
  return rows
end

--- Returns the report of the working tree of the project at root against
--- options.baseline (a git revision, default HEAD, or NAME@ALIAS); or
--- nil, message, code as mlx.metrics's sides fail.
function M.build(root, options)
  options = options or {}
  local baseline = options.baseline or "HEAD"
  local base, err, code = metrics.side(root, baseline)
  if not base then return nil, err, code end
  local cur
  cur, err, code = metrics.workspace(root)
  if not cur then return nil, err, code end
  local ok, track = pcall(require, "mlx.track")
  local runs = ok and track.store() or nil
  local r = {
    root = root, base = base, cur = cur, warnings = {},
    metrics = metrics.diff(base.metrics, cur.metrics),
    params = metrics.params_diff(base.params, cur.params),
    data = metrics.data_diff(base.data, cur.data),
    steps = step_rows(base, cur),
    plots = {},
  }
  for _, side in ipairs({ base, cur }) do
    for _, w in ipairs(side.warnings) do r.warnings[#r.warnings + 1] = w end
  end
  -- Metric curves: each metric logged at more than one step, both sides.
  local bc, cc = curves_of(runs, base), curves_of(runs, cur)
  local chart_rows = {}
  for _, row in ipairs(r.metrics) do
    if type(row.base) == "number" or type(row.cur) == "number" then chart_rows[#chart_rows + 1] = row end
  end
  local plot = require "mlx.report.plot"
  -- The chart of the compared metrics is always drawn, unless there is none.
  if #chart_rows > 0 then
    r.plots[1] = { name = "metrics", title = "metrics, " .. base.label .. " and " .. cur.label,
      spec = plot.comparison(chart_rows, base.label, cur.label) }
  end
  for _, key in ipairs(metrics.union(bc, cc)) do
    local series = {}
    if bc[key] then series[#series + 1] = { label = base.label, points = bc[key] } end
    if cc[key] then series[#series + 1] = { label = cur.label, points = cc[key] } end
    r.plots[#r.plots + 1] = { name = "curve-" .. key, title = key .. " over steps", spec = plot.curve(key, series) }
  end
  for _, path in ipairs(cur.plots) do
    local doc, why = read_plot(root, cur, path)
    local spec
    if doc ~= nil then
      local bdoc = read_plot(root, base, path)
      spec, why = plot.from_file(path, doc, bdoc, base.label)
    end
    if spec then
      r.plots[#r.plots + 1] = { name = "plot-" .. path:gsub("%.[^./]*$", ""):gsub("[^%w_.-]", "_"), title = path,
        spec = spec }
    else
      r.warnings[#r.warnings + 1] = ("plot %s: %s (see docs/reports.md for the formats)"):format(path, why)
    end
  end
  return r
end

--- Returns the directory and the name without extension of a report path.
function M.split_path(path)
  local dir = path:match("^(.*)/[^/]*$") or "."
  return dir, ((path:match("([^/]*)$")):gsub("%.[^.]*$", ""))
end

--- Draws the report's plots with gnuplot as SVG, each to be named
--- STEM-NAME.svg beside the report (M.write), through a temporary
--- directory under the project's .mlx/tmp/. Fills r.figures {name, title,
--- file (its name), svg (the text)}. Returns true; nil and why when gnuplot
--- cannot be run (the report then has no plots); a plot gnuplot fails on is
--- left out with a warning.
function M.draw(r, stem)
  local plot = require "mlx.report.plot"
  r.figures = {}
  local tmp = ("%s/.mlx/tmp/report-%d-%d"):format(r.root, core.now_ms(), math.random(1, 1 << 30))
  local made, err = fs.mkdirs(tmp)
  if not made then return nil, err end
  local jobs = {}
  for i, p in ipairs(r.plots) do jobs[i] = { svg = ("%s/%d.svg"):format(tmp, i), spec = p.spec } end
  local results, why = plot.draw_all(tmp, jobs)
  for i in ipairs(results or {}) do
    local svg = results[i] == true and io.open(jobs[i].svg, "rb")
    if svg then
      local text = svg:read("a")
      svg:close()
      r.figures[#r.figures + 1] = { name = r.plots[i].name, title = r.plots[i].title,
        file = ("%s-%s.svg"):format(stem, r.plots[i].name), svg = text }
    else
      r.warnings[#r.warnings + 1] = ("plot %s: %s"):format(r.plots[i].title,
        results[i] == true and "gnuplot wrote nothing" or results[i])
    end
  end
  fs.remove_tree(tmp)
  if not results then return nil, why end
  return true
end

--- Returns the function links(file) → URL that a posted report links its
--- plots with: base_url/FILE when base_url is given; in GitLab CI, the
--- job's artifact browser ($CI_JOB_URL/artifacts/file/PATH, PATH being
--- where the report was written under $CI_PROJECT_DIR); in GitHub Actions,
--- the workflow run's page, where the artifacts are listed. nil elsewhere
--- (the plots are then named, not linked). getenv defaults to os.getenv.
function M.asset_links(base_url, out_path, getenv)
  getenv = getenv or os.getenv
  if base_url then
    base_url = base_url:gsub("/+$", "")
    return function(file) return base_url .. "/" .. file end
  end
  local dir = M.split_path(out_path)
  if getenv("CI_JOB_URL") and getenv("CI_PROJECT_DIR") then
    local abs = dir:sub(1, 1) == "/" and dir or ((fs.cwd() or ".") .. "/" .. dir)
    abs = abs:gsub("/%./", "/"):gsub("/%.$", "")
    local top = getenv("CI_PROJECT_DIR"):gsub("/+$", "")
    local rel = abs == top and "" or abs:sub(1, #top + 1) == top .. "/" and (abs:sub(#top + 2) .. "/") or ""
    local job = getenv("CI_JOB_URL"):gsub("/+$", "")
    return function(file) return ("%s/artifacts/file/%s%s"):format(job, rel, file) end
  end
  if getenv("GITHUB_RUN_ID") and getenv("GITHUB_REPOSITORY") then
    local run = ("%s/%s/actions/runs/%s"):format((getenv("GITHUB_SERVER_URL") or "https://github.com"):gsub("/+$", ""),
      getenv("GITHUB_REPOSITORY"), getenv("GITHUB_RUN_ID"))
    return function() return run end
  end
  return nil
end

-- ---- rendering -------------------------------------------------------------------------------

local function value_text(v)
  if v == nil then return "-" end
  if type(v) == "number" then return view.number(v) end
  return tostring(v)
end

local function change_text(row)
  if not row.delta then return row.base == nil and "new" or row.cur == nil and "gone" or "" end
  if row.delta == 0 then return "= 0" end
  local text = (row.delta > 0 and "▲ +" or "▼ ") .. view.number(row.delta)
  if row.rel then text = text .. (" (%+.1f%%)"):format(row.rel * 100) end
  return text
end

-- The report as blocks: {kind = "title"|"heading"|"text"|"table"|"figure"|"list", …}.
local function blocks(r)
  local b = {}
  local function add(block) b[#b + 1] = block end
  add({ kind = "title", text = ("mlx report: %s against %s"):format(r.cur.label, r.base.label) })
  add({ kind = "heading", text = "Metrics" })
  if #r.metrics == 0 then
    add({ kind = "text", text = "No metrics on either side (steps declare metrics files: metrics = {…})." })
  else
    local rows = {}
    for i, m in ipairs(r.metrics) do rows[i] = { m.key, value_text(m.base), value_text(m.cur), change_text(m) } end
    add({ kind = "table", header = { "metric", r.base.label, r.cur.label, "change" }, rows = rows,
      right = { false, true, true, true } })
  end
  add({ kind = "heading", text = "Params" })
  if #r.params == 0 then
    add({ kind = "text", text = "No param changed." })
  else
    local rows = {}
    for i, p in ipairs(r.params) do rows[i] = { p.key, value_text(p.base), value_text(p.cur) } end
    add({ kind = "table", header = { "param", r.base.label, r.cur.label }, rows = rows })
  end
  if #r.steps > 0 then
    add({ kind = "heading", text = "Step timings" })
    local rows = {}
    for i, s in ipairs(r.steps) do
      rows[i] = { s.step, s.status, s.cur and view.duration(s.cur) or "-", s.base and view.duration(s.base) or "-" }
    end
    add({ kind = "table", header = { "step", "status", r.cur.label, r.base.label }, rows = rows,
      right = { false, false, true, true } })
  end
  add({ kind = "heading", text = "Data that changed" })
  if #r.data == 0 then
    add({ kind = "text", text = "No tracked data, dep or out changed." })
  else
    local rows = {}
    for i, d in ipairs(r.data) do
      rows[i] = { d.path, d.change, d.base and d.base:sub(1, 12) or "-", d.cur and d.cur:sub(1, 12) or "-" }
    end
    add({ kind = "table", header = { "path", "change", r.base.label, r.cur.label }, rows = rows, code = true })
  end
  if r.figures and #r.figures > 0 then
    add({ kind = "heading", text = "Plots" })
    for _, f in ipairs(r.figures) do add({ kind = "figure", figure = f }) end
  end
  if #r.warnings > 0 then
    add({ kind = "heading", text = "Warnings" })
    add({ kind = "list", items = r.warnings })
  end
  return b
end

local function md_cell(s)
  return (tostring(s):gsub("|", "\\|"):gsub("[\r\n]+", " "))
end

--- Returns the report as Markdown (GitHub and GitLab flavoured), starting
--- with the hidden marker. links(file) → URL or nil: with it, figures are
--- links to that URL (a pull request comment cannot show SVG files from
--- CI); without, images of the files beside the report.
function M.markdown(r, links)
  local out = { M.MARKER }
  for _, block in ipairs(blocks(r)) do
    if block.kind == "title" then
      out[#out + 1] = "## " .. md_cell(block.text)
    elseif block.kind == "heading" then
      out[#out + 1] = "\n### " .. block.text
    elseif block.kind == "text" then
      out[#out + 1] = block.text
    elseif block.kind == "list" then
      for _, item in ipairs(block.items) do out[#out + 1] = "- " .. md_cell(item) end
    elseif block.kind == "table" then
      local head, rule = {}, {}
      for i, h in ipairs(block.header) do
        head[i] = md_cell(h)
        rule[i] = block.right and block.right[i] and "--:" or "---"
      end
      out[#out + 1] = "| " .. table.concat(head, " | ") .. " |"
      out[#out + 1] = "|" .. table.concat(rule, "|") .. "|"
      for _, row in ipairs(block.rows) do
        local cells = {}
        for i, c in ipairs(row) do
          cells[i] = (block.code and i == 1) and ("`" .. md_cell(c):gsub("`", "'") .. "`") or md_cell(c)
        end
        out[#out + 1] = "| " .. table.concat(cells, " | ") .. " |"
      end
    elseif block.kind == "figure" then
      local f = block.figure
      local url = links and links(f.file)
      if links then
        out[#out + 1] = url and ("- [%s](%s)"):format(md_cell(f.title), url) or ("- %s: `%s`"):format(md_cell(f.title), f.file)
      else
        out[#out + 1] = ("![%s](%s)"):format(md_cell(f.title), f.file)
      end
    end
  end
  return table.concat(out, "\n") .. "\n"
end

local function esc(s)
  return (tostring(s):gsub("[&<>\"]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;" }))
end

local STYLE = [[
body { font-family: sans-serif; max-width: 60em; margin: 2em auto; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1em 0; }
figure svg { max-width: 100%; height: auto; }
]]

--- Returns the report as one HTML document, the SVG plots inline (a CI
--- artifact that opens on its own).
function M.html(r)
  -- Well-formed XML too (every element closed), so XML tools read it.
  local out = { "<!DOCTYPE html>", '<html xmlns="http://www.w3.org/1999/xhtml" lang="en"><head><meta charset="utf-8"/>' }
  local body, figures = {}, 0
  for _, block in ipairs(blocks(r)) do
    if block.kind == "title" then
      out[#out + 1] = "<title>" .. esc(block.text) .. "</title><style>" .. STYLE .. "</style></head><body>"
      body[#body + 1] = "<h1>" .. esc(block.text) .. "</h1>"
    elseif block.kind == "heading" then
      body[#body + 1] = "<h2>" .. esc(block.text) .. "</h2>"
    elseif block.kind == "text" then
      body[#body + 1] = "<p>" .. esc(block.text) .. "</p>"
    elseif block.kind == "list" then
      body[#body + 1] = "<ul>"
      for _, item in ipairs(block.items) do body[#body + 1] = "<li>" .. esc(item) .. "</li>" end
      body[#body + 1] = "</ul>"
    elseif block.kind == "table" then
      local row = { "<table><thead><tr>" }
      for _, h in ipairs(block.header) do row[#row + 1] = "<th>" .. esc(h) .. "</th>" end
      body[#body + 1] = table.concat(row) .. "</tr></thead><tbody>"
      for _, cells in ipairs(block.rows) do
        local line = { "<tr>" }
        for i, c in ipairs(cells) do
          local text = (block.code and i == 1) and ("<code>" .. esc(c) .. "</code>") or esc(c)
          line[#line + 1] = (block.right and block.right[i] and '<td class="num">' or "<td>") .. text .. "</td>"
        end
        body[#body + 1] = table.concat(line) .. "</tr>"
      end
      body[#body + 1] = "</tbody></table>"
    elseif block.kind == "figure" then
      -- The SVG element itself, without its XML declaration and doctype,
      -- its ids made unique in the page (gnuplot names them alike in
      -- every file, and references resolve across the whole document).
      figures = figures + 1
      local prefix = ("f%d-"):format(figures)
      local svg = block.figure.svg:gsub("^.-(<svg[%s>])", "%1")
        :gsub("(%sid=)(['\"])", "%1%2" .. prefix):gsub("(href=)(['\"])#", "%1%2#" .. prefix)
        :gsub("url%(#", "url(#" .. prefix)
      body[#body + 1] = "<figure>" .. svg .. "<figcaption>" .. esc(block.figure.title) .. "</figcaption></figure>"
    end
  end
  out[#out + 1] = table.concat(body, "\n")
  out[#out + 1] = "</body></html>"
  return table.concat(out, "\n") .. "\n"
end

--- Writes the report as Markdown to path, the HTML beside it (the same
--- name ending in .html) and each figure as an SVG file beside them, each
--- atomically. Returns {markdown = path, html, svgs = {path…}}; nil,
--- message, code if a file cannot be written.
function M.write(r, path)
  local dir = M.split_path(path)
  local html = path:gsub("%.[^./]*$", "") .. ".html"
  if html == path then html = path .. ".html" end
  local written = { markdown = path, html = html, svgs = {} }
  local made, err, code = fs.mkdirs(dir)
  if not made then return nil, err, code end
  for _, f in ipairs(r.figures or {}) do
    local svg = dir .. "/" .. f.file
    local ok
    ok, err, code = fs.write(svg, f.svg)
    if not ok then return nil, err, code end
    written.svgs[#written.svgs + 1] = svg
  end
  local ok
  ok, err, code = fs.write(html, M.html(r))
  if not ok then return nil, err, code end
  ok, err, code = fs.write(path, M.markdown(r))
  if not ok then return nil, err, code end
  return written
end

return M
