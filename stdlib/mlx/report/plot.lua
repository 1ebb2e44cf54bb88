--- mlx.report.plot: the plots of `mlx report`, drawn by gnuplot (Debian
--- gnuplot-nox) as SVG. Each plot is a gnuplot script and data files in a
--- temporary directory, run through mlx.proc; nothing of the data passes
--- through a shell or gnuplot's own parser as code.
---
--- Plot files that steps declare (`plots = { "work/confusion.json" }`) are
--- JSON (docs/reports.md):
---   {"type": "line"|"scatter"|"bar", "title": "…", "x": "epoch",
---    "y": ["loss", "val_loss"], "rows": [{"epoch": 1, "loss": 0.9, …}, …]}
---   {"type": "confusion", "labels": ["setosa", …], "matrix": [[5, 0], …]}
--- or a plain array of row objects (a line over "step", else the row index).
local fs = require "mlx.fs"
local proc = require "mlx.proc"

local M = {}

--- The gnuplot program run (a name looked up in PATH).
M.PROGRAM = "gnuplot"

-- A gnuplot string literal: single quotes, where only '' is special.
local function quoted(s)
  return "'" .. tostring(s):gsub("[%c]", " "):gsub("'", "''") .. "'"
end

-- A number as a data file field; "?" (declared missing) for nil and NaN.
local function field(x)
  if type(x) ~= "number" or x ~= x or x == math.huge or x == -math.huge then return "?" end
  return ("%.17g"):format(x)
end

-- A label as a data file field: double-quoted, without quotes inside.
local function label(s)
  return '"' .. tostring(s):gsub('["%c]', " ") .. '"'
end

local HEADER = [[
set terminal svg size 720,%d dynamic font "sans,11" background rgb "white"
set termoption noenhanced
set datafile missing "?"
set grid
set key outside right top
]]

-- Writes the data files of spec into dir and returns the script that draws
-- it into svg; nil, message, code if a file cannot be written.
local function script_of(dir, name, svg, spec)
  local names = {}
  for i, text in ipairs(spec.files or {}) do
    names[i] = ("%s/%s-%d.dat"):format(dir, name, i)
    local ok, err, code = fs.write(names[i], text)
    if not ok then return nil, err, code end
  end
  local body = spec.body:gsub("{{(%d+)}}", function(i) return quoted(names[tonumber(i)]) end)
  local script = { "reset\n", HEADER:format(spec.height or 420), "set output ", quoted(svg), "\n" }
  if spec.title then script[#script + 1] = "set title " .. quoted(spec.title) .. "\n" end
  if spec.xlabel then script[#script + 1] = "set xlabel " .. quoted(spec.xlabel) .. "\n" end
  if spec.ylabel then script[#script + 1] = "set ylabel " .. quoted(spec.ylabel) .. "\n" end
  script[#script + 1] = body .. "\nunset output\n"
  return table.concat(script)
end

-- Runs gnuplot on script (written to path); true, or nil, message, code
-- with the last line gnuplot said.
local function run(path, script)
  local ok, err, code = fs.write(path, script)
  if not ok then return nil, err, code end
  local said
  ok, err, code, said = proc.run { M.PROGRAM, path, stdout = "capture", stderr = "capture", timeout = 120 }
  if ok then return true end
  local detail = said and said.stderr and said.stderr:match("([^\n]*%S)%s*$")
  return nil, ("%s%s"):format(err, detail and (": " .. detail) or ""), code
end

--- Draws plots, a list of {svg = the path to write, spec = {title, xlabel,
--- ylabel, body = the plot commands with data file names as {{1}}, {{2}}…,
--- files = {text of each data file}}}, using dir (an existing temporary
--- directory) for scripts and data. All are drawn by one gnuplot process
--- (each start costs ~0.1 s); if it fails, each plot is drawn alone to find
--- which one did. Returns {[i] = true or "gnuplot: why"}; nil and a
--- message saying how to install gnuplot when it cannot be run.
function M.draw_all(dir, plots)
  local scripts, results = {}, {}
  for i, p in ipairs(plots) do
    local text, err = script_of(dir, tostring(i), p.svg, p.spec)
    scripts[i] = text
    if not text then results[i] = "cannot write its data: " .. err end
  end
  local all = {}
  for i = 1, #plots do all[#all + 1] = scripts[i] end
  local ok, err, code = run(dir .. "/all.gp", table.concat(all))
  if not ok and (code == "notfound" or code == "invalid") then
    return nil, ("%s (install gnuplot-nox); the report has no plots"):format(err)
  end
  for i = 1, #plots do
    if scripts[i] then
      if ok then
        results[i] = true
      else
        local alone, why = run(("%s/%d.gp"):format(dir, i), scripts[i])
        results[i] = alone or ("gnuplot: " .. why)
      end
    end
  end
  return results
end

-- The largest magnitude of a row's two values (0 for none).
local function magnitude(r)
  local m = 0
  for _, v in ipairs({ r.base, r.cur }) do
    if type(v) == "number" and v == v and math.abs(v) ~= math.huge then m = math.max(m, math.abs(v)) end
  end
  return m
end

-- Splits rows into groups of like magnitude (within a factor of 20), in
-- the order of their magnitudes, each group keeping the rows' order: on
-- one axis a count of 45 flattens an accuracy of 0.9 to nothing.
local function by_magnitude(rows)
  local sizes = {}
  for _, r in ipairs(rows) do
    local m = magnitude(r)
    if m > 0 then sizes[#sizes + 1] = m end
  end
  table.sort(sizes)
  local floors = {} -- the smallest magnitude of each group
  for _, m in ipairs(sizes) do
    if #floors == 0 or m > floors[#floors] * 20 then floors[#floors + 1] = m end
  end
  if #floors <= 1 then return { rows } end
  local groups = {}
  for i = 1, #floors do groups[i] = {} end
  for _, r in ipairs(rows) do
    local m, g = magnitude(r), 1 -- rows of zeros join the smallest
    for i, floor in ipairs(floors) do
      if m >= floor then g = i end
    end
    table.insert(groups[g], r)
  end
  return groups
end

--- The bar chart of the compared metrics: rows {key, base, cur} (numbers
--- or nil) and the two sides' labels. Metrics of magnitudes more than 20
--- times apart get panels of their own, one above the other, each with its
--- own axis. Returns a spec for M.draw_all.
function M.comparison(rows, base_label, cur_label)
  local groups = by_magnitude(rows)
  local files, plots = {}, {}
  for g, group in ipairs(groups) do
    local lines, negative = {}, false
    for i, r in ipairs(group) do
      lines[i] = ("%s %s %s\n"):format(label(r.key), field(r.base), field(r.cur))
      for _, v in ipairs({ r.base or 0, r.cur or 0 }) do
        if type(v) == "number" and v < 0 then negative = true end
      end
    end
    files[g] = table.concat(lines)
    plots[#plots + 1] = negative and "set autoscale y" or "set yrange [0:*]"
    plots[#plots + 1] = ("plot {{%d}} using 2:xtic(1) title %s linecolor rgb '#9e9e9e', '' using 3 title %s"
      .. " linecolor rgb '#1f77b4'"):format(g, quoted(base_label), quoted(cur_label))
  end
  local title = "metrics: " .. cur_label .. " against " .. base_label
  local body = {
    "set style data histogram",
    "set style histogram clustered gap 1",
    "set style fill solid 0.85 border -1",
    "set xtics rotate by -30 nomirror",
  }
  if #groups > 1 then
    body[#body + 1] = ("set multiplot layout %d,1 title %s"):format(#groups, quoted(title))
    title = nil
  end
  for _, line in ipairs(plots) do body[#body + 1] = line end
  if #groups > 1 then body[#body + 1] = "unset multiplot" end
  return { title = title, files = files, body = table.concat(body, "\n"), height = 120 + 300 * #groups }
end

--- The curve of one metric over steps for each compared side: series
--- {{label, points = {{step, value}…}}…}. Returns a spec for M.draw_all.
function M.curve(key, series)
  local files, plots = {}, {}
  for i, s in ipairs(series) do
    local lines = {}
    for j, p in ipairs(s.points) do lines[j] = ("%s %s\n"):format(field(p.step), field(p.value)) end
    files[i] = table.concat(lines)
    plots[i] = ("{{%d}} using 1:2 with linespoints title %s"):format(i, quoted(s.label))
  end
  return { title = key, xlabel = "step", ylabel = key, files = files, body = "plot " .. table.concat(plots, ", ") }
end

local function is_array(t)
  return type(t) == "table" and (#t > 0 or next(t) == nil)
end

-- The rows, x and y columns of a line, scatter or bar plot document.
local function table_of(doc)
  local rows, x, y = doc, nil, nil
  if not is_array(doc) then rows, x, y = doc.rows, doc.x, doc.y end
  if not is_array(rows) or #rows == 0 then return nil, "\"rows\" must be a non-empty array of objects" end
  for i, r in ipairs(rows) do
    if type(r) ~= "table" or is_array(r) and #r > 0 then return nil, ("row %d is not an object"):format(i) end
  end
  if type(y) == "string" then y = { y } end
  if y ~= nil and (not is_array(y) or #y == 0) then return nil, "\"y\" must be a column name or a list of them" end
  if x == nil and rows[1].step ~= nil then x = "step" end
  if y == nil then
    y = {}
    for k, v in pairs(rows[1]) do
      if k ~= x and type(v) == "number" then y[#y + 1] = k end
    end
    table.sort(y)
    if #y == 0 then return nil, "the rows have no numeric column to plot" end
  end
  return rows, x, y
end

--- Reads a plot document doc (decoded JSON) declared at path; returns a
--- spec for M.draw_all, with baseline (the same file at the baseline, decoded,
--- or nil) drawn dashed for line and scatter plots; nil and why for a
--- document of no known form.
function M.from_file(path, doc, baseline, base_label)
  if type(doc) ~= "table" then return nil, "expected a JSON object or array" end
  local kind = not is_array(doc) and doc.type or (doc.matrix and "confusion") or "line"
  local title = not is_array(doc) and type(doc.title) == "string" and doc.title or path
  if kind == "confusion" then
    local m, labels = doc.matrix, doc.labels
    if not is_array(m) or #m == 0 then return nil, "\"matrix\" must be a non-empty array of rows" end
    local n = #m
    local lines = {}
    for i, row in ipairs(m) do
      if not is_array(row) or #row ~= n then return nil, ("matrix row %d must have %d numbers"):format(i, n) end
      local fields = {}
      for j, v in ipairs(row) do
        if type(v) ~= "number" then return nil, ("matrix row %d, column %d is not a number"):format(i, j) end
        fields[j] = field(v)
      end
      lines[i] = table.concat(fields, " ") .. "\n"
    end
    if labels ~= nil and (not is_array(labels) or #labels ~= n) then
      return nil, ("\"labels\" must be a list of %d names"):format(n)
    end
    local tics = {}
    for i = 1, n do tics[i] = ("%s %d"):format(quoted(labels and labels[i] or tostring(i - 1)), i - 1) end
    tics = "(" .. table.concat(tics, ", ") .. ")"
    return {
      title = title, xlabel = "predicted", ylabel = "actual", files = { table.concat(lines) },
      body = table.concat({
        "unset grid", "unset key", "set size ratio -1",
        "set xtics " .. tics, "set ytics " .. tics,
        ("set xrange [-0.5:%g]"):format(n - 0.5), ("set yrange [%g:-0.5]"):format(n - 0.5),
        "set palette defined (0 '#ffffff', 1 '#1f77b4')",
        "plot {{1}} matrix with image pixels, '' matrix using 1:2:(sprintf('%g', $3)) with labels",
      }, "\n"),
    }
  end
  if kind ~= "line" and kind ~= "scatter" and kind ~= "bar" then
    return nil, ("unknown plot type '%s' (line, scatter, bar or confusion)"):format(tostring(kind))
  end
  local rows, x, y = table_of(doc)
  if not rows then return nil, x end
  local sides = { { rows = rows, suffix = "" } }
  if baseline and kind ~= "bar" then
    local brows = table_of(baseline)
    if brows then table.insert(sides, 1, { rows = brows, suffix = " (" .. base_label .. ")", dashed = true }) end
  end
  local files, plots, negative = {}, {}, false
  for s, side in ipairs(sides) do
    local lines = {}
    for i, r in ipairs(side.rows) do
      local fields = { kind == "bar" and label(r[x] ~= nil and tostring(r[x]) or i) or field(x and r[x] or i) }
      for _, col in ipairs(y) do
        fields[#fields + 1] = field(r[col])
        if type(r[col]) == "number" and r[col] < 0 then negative = true end
      end
      lines[i] = table.concat(fields, " ") .. "\n"
    end
    files[s] = table.concat(lines)
    for j, col in ipairs(y) do
      local using = kind == "bar" and ("%d:xtic(1)"):format(j + 1) or ("1:%d"):format(j + 1)
      local style = kind == "line" and "linespoints" or kind == "scatter" and "points pointtype 7" or "histogram"
      plots[#plots + 1] = ("{{%d}} using %s with %s%s title %s"):format(s, using, style,
        side.dashed and " dashtype 2" or "", quoted(col .. side.suffix))
    end
  end
  local body = "plot " .. table.concat(plots, ", ")
  if kind == "bar" then
    -- Bars start at zero, or their lengths mislead.
    body = "set style data histogram\nset style histogram clustered gap 1\nset style fill solid 0.85 border -1\n"
      .. "set xtics rotate by -30 nomirror\n" .. (negative and "" or "set yrange [0:*]\n") .. body
  else
    -- A margin, so that points on the range's edge are not cut in half.
    body = "set offsets graph 0.03, graph 0.03, graph 0.05, graph 0.05\n" .. body
  end
  return { title = title, xlabel = x, files = files, body = body }
end

return M
