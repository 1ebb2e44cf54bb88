--- mlx.track.view: runs as text for people (aligned tables) and programs
--- (CSV, JSON-ready tables). Used by `mlx runs` and `mlx metrics`.
local M = {}

--- Returns x as text for a table: integers whole, other numbers with 6
--- significant digits, NaN and infinities as nan, inf, -inf.
function M.number(x)
  if x == nil then return "" end
  if x ~= x then return "nan" end
  if x == math.huge then return "inf" end
  if x == -math.huge then return "-inf" end
  if math.type(x) == "integer" then return tostring(x) end
  if x == math.floor(x) and math.abs(x) < 1e15 then return ("%d"):format(x) end
  return ("%.6g"):format(x)
end

--- Returns x in the shortest form that reads back as the same number.
M.exact = require("mlx.core").number_text

--- Returns milliseconds since the epoch as local "YYYY-MM-DD HH:MM:SS".
function M.time(ms)
  if not ms then return "" end
  return os.date("%Y-%m-%d %H:%M:%S", ms // 1000)
end

--- Returns milliseconds since the epoch as UTC ISO 8601 with milliseconds.
function M.iso_time(ms)
  if not ms then return "" end
  return os.date("!%Y-%m-%dT%H:%M:%S", ms // 1000) .. (".%03dZ"):format(ms % 1000)
end

--- Returns seconds as a short duration: 0.42s, 12.3s, 4m05s, 2h07m, 3d04h.
function M.duration(s)
  if not s then return "" end
  if s < 10 then return ("%.2fs"):format(s) end
  if s < 60 then return ("%.1fs"):format(s) end
  s = math.floor(s)
  if s < 3600 then return ("%dm%02ds"):format(s // 60, s % 60) end
  if s < 86400 then return ("%dh%02dm"):format(s // 3600, s % 3600 // 60) end
  return ("%dd%02dh"):format(s // 86400, s % 86400 // 3600)
end

--- Returns a byte count as 812 B, 4.5 KiB, 123.4 MiB, 2.0 GiB.
function M.bytes(n)
  if not n then return "" end
  local units, i = { "B", "KiB", "MiB", "GiB", "TiB" }, 1
  while n >= 1024 and i < #units do n, i = n / 1024, i + 1 end
  return i == 1 and ("%d B"):format(n) or ("%.1f %s"):format(n, units[i])
end

--- Returns "recipe", "recipe:step" or "step" for a run record, followed by
--- " [verify]" for a run of mlx verify (tag mlx.verify): it ran in a copy
--- of the workspace, and its FAILED means "did not reproduce", not that
--- the pipeline failed.
function M.what(run)
  local name = run.recipe or ""
  if run.step then name = (run.recipe and (run.recipe .. ":") or "") .. run.step end
  if run.tags and run.tags["mlx.verify"] then name = name .. " [verify]" end
  return name
end

--- Returns rows (arrays of strings) as aligned lines under header; columns
--- whose index is in right are aligned right.
function M.table(header, rows, right)
  right = right or {}
  local widths = {}
  for _, row in ipairs({ header, table.unpack(rows) }) do
    for i, cell in ipairs(row) do widths[i] = math.max(widths[i] or 0, utf8.len(cell) or #cell) end
  end
  local lines = {}
  for _, row in ipairs({ header, table.unpack(rows) }) do
    local cells = {}
    for i, cell in ipairs(row) do
      local pad = (" "):rep(widths[i] - (utf8.len(cell) or #cell))
      cells[i] = right[i] and (pad .. cell) or (i < #row and (cell .. pad) or cell)
    end
    lines[#lines + 1] = (table.concat(cells, "  "):gsub("%s+$", ""))
  end
  return lines
end

--- Chooses the metric columns of a runs table: those named in `wanted`
--- first, then the most common among runs (ties by name), up to max.
function M.main_metrics(runs, wanted, max)
  local chosen, seen, count = {}, {}, {}
  for _, key in ipairs(wanted or {}) do
    if not seen[key] then chosen[#chosen + 1], seen[key] = key, true end
  end
  for _, run in ipairs(runs) do
    for key in pairs(run.metrics) do count[key] = (count[key] or 0) + 1 end
  end
  local rest = {}
  for key in pairs(count) do if not seen[key] then rest[#rest + 1] = key end end
  table.sort(rest, function(a, b)
    if count[a] ~= count[b] then return count[a] > count[b] end
    return a < b
  end)
  for _, key in ipairs(rest) do
    if #chosen >= max then break end
    chosen[#chosen + 1] = key
  end
  return chosen
end

--- Returns the lines of the runs table: id, recipe/step, status, start,
--- duration, then one column per metric key.
function M.runs_table(runs, metric_keys)
  local header = { "ID", "RECIPE/STEP", "STATUS", "START", "DURATION" }
  local right = { [5] = true }
  for i, key in ipairs(metric_keys) do
    header[#header + 1] = key
    right[5 + i] = true
  end
  local rows = {}
  for _, run in ipairs(runs) do
    local row = { run.id, M.what(run), run.status, M.time(run.start_time), M.duration(run.duration) }
    for _, key in ipairs(metric_keys) do row[#row + 1] = M.number(run.metrics[key]) end
    rows[#rows + 1] = row
  end
  return M.table(header, rows, right)
end

--- Returns s (nil as "") as one CSV field (RFC 4180): quoted when it holds
--- a comma, a quote or a line break.
function M.csv_field(s)
  s = tostring(s or "")
  if s:find('[,"\r\n]') then return '"' .. s:gsub('"', '""') .. '"' end
  return s
end

local csv_field = M.csv_field

--- Returns the keys of the table field (params, metrics, tags) of every
--- run in runs, each once, sorted.
function M.sorted_keys(runs, field)
  local seen, keys = {}, {}
  for _, run in ipairs(runs) do
    for key in pairs(run[field]) do
      if not seen[key] then seen[key], keys[#keys + 1] = true, key end
    end
  end
  table.sort(keys)
  return keys
end
local sorted_keys = M.sorted_keys

--- Returns the runs as CSV (RFC 4180, CRLF line ends): the run's fields,
--- then metrics.KEY, params.KEY and tags.KEY columns for every key seen.
--- Times are UTC ISO 8601.
function M.runs_csv(runs)
  local fixed = { "id", "parent", "recipe", "step", "status", "start_time", "end_time", "duration", "exit_code",
    "git_commit", "git_branch", "git_dirty", "host", "user", "command", "message" }
  local groups = { metrics = sorted_keys(runs, "metrics"), params = sorted_keys(runs, "params"),
    tags = sorted_keys(runs, "tags") }
  local header = {}
  for _, name in ipairs(fixed) do header[#header + 1] = name end
  for _, group in ipairs({ "metrics", "params", "tags" }) do
    for _, key in ipairs(groups[group]) do header[#header + 1] = csv_field(group .. "." .. key) end
  end
  local lines = { table.concat(header, ",") }
  for _, run in ipairs(runs) do
    local values = {
      run.id, run.parent, run.recipe, run.step, run.status, M.iso_time(run.start_time), M.iso_time(run.end_time),
      ("%.3f"):format(run.duration), run.exit_code, run.git.commit, run.git.branch,
      run.git.dirty == nil and "" or tostring(run.git.dirty), run.host, run.user, run.command, run.message,
    }
    local cells = {}
    for i = 1, #fixed do cells[i] = csv_field(values[i]) end
    for _, key in ipairs(groups.metrics) do
      local v = run.metrics[key]
      cells[#cells + 1] = v ~= nil and M.exact(v) or ""
    end
    for _, group in ipairs({ "params", "tags" }) do
      for _, key in ipairs(groups[group]) do cells[#cells + 1] = csv_field(run[group][key]) end
    end
    lines[#lines + 1] = table.concat(cells, ",")
  end
  return table.concat(lines, "\r\n") .. "\r\n"
end

--- Returns a copy of a run record that mlx.json can encode: NaN and
--- infinite metric values become json.null; empty lists stay arrays.
function M.jsonable(run, json)
  local copy = {}
  for k, v in pairs(run) do copy[k] = v end
  local metrics = json.object()
  for k, v in pairs(run.metrics) do
    metrics[k] = (v ~= v or v == math.huge or v == -math.huge) and json.null or v
  end
  copy.metrics = metrics
  copy.params, copy.tags = json.object(run.params), json.object(run.tags)
  copy.git = json.object(run.git)
  if run.artifacts then copy.artifacts = json.array(run.artifacts) end
  if run.children then copy.children = json.array(run.children) end
  if run.metric_summary then
    local summary = json.array()
    for i, m in ipairs(run.metric_summary) do
      local row = {}
      for k, v in pairs(m) do
        row[k] = (type(v) == "number" and (v ~= v or v == math.huge or v == -math.huge)) and json.null or v
      end
      summary[i] = row
    end
    copy.metric_summary = summary
  end
  return copy
end

local function key_value_lines(lines, title, t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  if #keys == 0 then return end
  table.sort(keys)
  local rows = {}
  for i, k in ipairs(keys) do rows[i] = { "  " .. k, tostring(t[k]) } end
  lines[#lines + 1] = ""
  lines[#lines + 1] = title
  for _, line in ipairs(M.table({ "", "" }, rows)) do
    if line:find("%S") then lines[#lines + 1] = line end
  end
end

--- Returns the lines of `mlx runs show`: everything about one run record
--- (from track.get, with metric_summary from track.metric_summary).
function M.show(run)
  local lines = { ("run %s  %s"):format(run.id, run.status) }
  local facts = {}
  local function fact(name, value)
    if value ~= nil and value ~= "" then facts[#facts + 1] = { "  " .. name, tostring(value) } end
  end
  fact("recipe", run.recipe and (run.recipe .. (run.recipe_hash and ("  (sha256 " .. run.recipe_hash:sub(1, 12) .. ")") or "")))
  fact("step", run.step)
  fact("parent", run.parent)
  fact("command", run.command)
  fact("started", M.time(run.start_time))
  fact("ended", run.end_time and M.time(run.end_time))
  fact("duration", M.duration(run.duration) .. (run.status == "RUNNING" and " so far" or ""))
  fact("exit code", run.exit_code)
  fact("signal", run.signal)
  fact("message", run.message)
  if run.git.commit then
    fact("git", run.git.commit .. (run.git.branch and (" on " .. run.git.branch) or " (detached)")
      .. (run.git.dirty and ", with uncommitted changes" or run.git.dirty == false and ", clean" or ""))
  end
  fact("host", run.host and (run.host .. (run.user and (", user " .. run.user) or "")
    .. (run.pid and (", pid " .. run.pid) or "")))
  local resources = {}
  if run.cpu_seconds then resources[#resources + 1] = "cpu " .. M.duration(run.cpu_seconds) end
  if run.wall_seconds then resources[#resources + 1] = "wall " .. M.duration(run.wall_seconds) end
  if run.peak_rss then resources[#resources + 1] = "peak RSS " .. M.bytes(run.peak_rss) end
  fact("resources", table.concat(resources, ", "))
  fact("step key", run.step_key)
  fact("log", run.log_path)
  for _, line in ipairs(M.table({ "", "" }, facts)) do
    if line:find("%S") then lines[#lines + 1] = line end
  end

  key_value_lines(lines, "params", run.params)
  if run.metric_summary and #run.metric_summary > 0 then
    local rows = {}
    for i, m in ipairs(run.metric_summary) do
      rows[i] = { "  " .. m.key, M.number(m.value), tostring(m.step), tostring(m.count), M.number(m.min), M.number(m.max) }
    end
    lines[#lines + 1] = ""
    for _, line in ipairs(M.table({ "metrics", "latest", "step", "count", "min", "max" }, rows,
      { [2] = true, [3] = true, [4] = true, [5] = true, [6] = true })) do
      lines[#lines + 1] = line
    end
  end
  key_value_lines(lines, "tags", run.tags)
  if run.artifacts and #run.artifacts > 0 then
    local rows = {}
    for i, a in ipairs(run.artifacts) do
      local size = a.size and M.bytes(a.size) or ""
      if a.nfiles and a.nfiles ~= 1 then size = size .. (" in %d files"):format(a.nfiles) end
      rows[i] = { "  " .. a.role, a.path, a.hash and a.hash:sub(1, 12) or "", size }
    end
    lines[#lines + 1] = ""
    for _, line in ipairs(M.table({ "artifacts", "path", "sha256", "size" }, rows)) do lines[#lines + 1] = line end
  end
  if run.children and #run.children > 0 then
    lines[#lines + 1] = ""
    lines[#lines + 1] = "step runs"
    for _, id in ipairs(run.children) do lines[#lines + 1] = "  " .. id end
  end
  return lines
end

--- Returns the keys of tables a and b, each once, sorted.
function M.union_keys(a, b)
  local seen, keys = {}, {}
  for _, t in ipairs({ a, b }) do
    for k in pairs(t) do
      if not seen[k] then seen[k], keys[#keys + 1] = true, k end
    end
  end
  table.sort(keys)
  return keys
end
local union_keys = M.union_keys

--- Returns the lines of `mlx runs diff`: the runs' params and metrics side
--- by side; a '*' marks a param that differs, and metrics get B − A and
--- its ratio to A. With only_changed, equal entries are left out.
function M.diff(a, b, only_changed)
  local lines = {}
  local facts = {
    { "", "A " .. a.id, "B " .. b.id, "" },
    { "recipe/step", M.what(a), M.what(b), M.what(a) ~= M.what(b) and "*" or "" },
    { "status", a.status, b.status, a.status ~= b.status and "*" or "" },
    { "duration", M.duration(a.duration), M.duration(b.duration), "" },
  }
  if a.git.commit or b.git.commit then
    table.insert(facts, 4, { "git", a.git.commit and a.git.commit:sub(1, 12) or "-",
      b.git.commit and b.git.commit:sub(1, 12) or "-", a.git.commit ~= b.git.commit and "*" or "" })
  end
  local rows = {}
  for i = 2, #facts do rows[#rows + 1] = facts[i] end
  for _, line in ipairs(M.table(facts[1], rows)) do lines[#lines + 1] = line end

  local prows = {}
  for _, k in ipairs(union_keys(a.params, b.params)) do
    local va, vb = a.params[k], b.params[k]
    if va ~= vb or not only_changed then
      prows[#prows + 1] = { "  " .. k, va or "-", vb or "-", va ~= vb and "*" or "" }
    end
  end
  if #prows > 0 then
    lines[#lines + 1] = ""
    for _, line in ipairs(M.table({ "params", "A", "B", "" }, prows)) do lines[#lines + 1] = line end
  end

  local mrows = {}
  for _, k in ipairs(union_keys(a.metrics, b.metrics)) do
    local va, vb = a.metrics[k], b.metrics[k]
    local delta, ratio = "", ""
    if va and vb then
      local d = vb - va
      delta = d == 0 and "0" or ((d > 0 and "+" or "") .. M.number(d))
      if va ~= 0 and d == d then ratio = ("%+.1f%%"):format(d / math.abs(va) * 100) end
    end
    local same = va == vb or (va ~= va and vb ~= vb)
    if not (only_changed and same) then
      mrows[#mrows + 1] = { "  " .. k, va and M.number(va) or "-", vb and M.number(vb) or "-", delta, ratio }
    end
  end
  if #mrows > 0 then
    lines[#lines + 1] = ""
    for _, line in ipairs(M.table({ "metrics", "A", "B", "B-A", "" }, mrows,
      { [2] = true, [3] = true, [4] = true, [5] = true })) do
      lines[#lines + 1] = line
    end
  end
  return lines
end

return M
