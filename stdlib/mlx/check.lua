--- mlx.check: declarative validation of CSV and JSON Lines data, and drift
--- against a reference dataset. The rules are declared here; the files are
--- read once each, streaming, by C (mlx.datacheck: libcsv, jansson), which
--- counts per column; this module judges the counts, computes drift
--- (mlx.check.drift), writes the summary and logs metrics.
---
---     local check = require "mlx.check"
---     local rules = check.rules {
---       columns = {
---         { "id", type = "int", unique = true, nulls = false },
---         { "age", type = "int", min = 0, max = 120, nulls = 0.01 },
---         { "species", allowed = { "setosa", "versicolor", "virginica" } },
---       },
---       rows = { min = 100 },
---       predicates = { { "petal within sepal", function(r) return r.petal <= r.sepal end } },
---       drift = { reference = "data/reference.csv",
---                 columns = { age = { psi = 0.2, ks = 0.1 }, species = { psi = 0.2 } } },
---     }
---     check.step("data/train.csv", rules)   -- in a pipeline step: fails it
---
--- Memory: O(columns) for every rule except unique (8-16 bytes per distinct
--- value), drift (a sample of up to 100,000 numbers per numeric column of
--- the reference, up to 10,000 distinct values per categorical column) and
--- row predicates (one row at a time). Errors: a rule table that is wrong
--- raises, naming the field; a file that cannot be read returns nil,
--- message, code.
local drift = require "mlx.check.drift"

local M = {}

local TYPES = { any = true, string = true, int = true, number = true, bool = true }
local COLUMN_FIELDS = { [1] = true, type = true, nulls = true, min = true, max = true, allowed = true,
  unique = true }
local RULE_FIELDS = { columns = true, strict = true, rows = true, na = true, delimiter = true,
  predicates = true, drift = true, format = true, name = true }
local DRIFT_FIELDS = { psi = true, ks = true, ks_p = true, chi2_p = true }
--- The values read as null unless rules.na says otherwise (as pandas'
--- read_csv reads the commonest of them).
M.NA = { "", "NA", "N/A", "NaN", "nan", "null", "NULL", "None" }
M.CATEGORIES = 10000

local Rules = {}
Rules.__index = Rules

local function bad(fmt, ...)
  error("mlx.check.rules: " .. fmt:format(...), 3)
end

local function check_fields(t, known, where)
  for k in pairs(t) do
    if not known[k] then bad("unknown field '%s' in %s", tostring(k), where) end
  end
end

--- Returns validated rules (see the module comment for the fields).
--- Raises "mlx.check.rules: …" naming the field for anything malformed:
--- unknown fields, types, min above max, a drift column not declared.
function M.rules(spec)
  if type(spec) ~= "table" then bad("expected a table of rules, not %s", type(spec)) end
  if getmetatable(spec) == Rules then return spec end
  check_fields(spec, RULE_FIELDS, "the rules")
  local self = setmetatable({ columns = {}, by_name = {}, strict = spec.strict == true, rows = spec.rows or {},
    na = spec.na or M.NA, delimiter = spec.delimiter, predicates = {}, format = spec.format,
    name = spec.name or "check" }, Rules)
  if self.format and self.format ~= "csv" and self.format ~= "jsonl" then bad("format must be 'csv' or 'jsonl'") end
  if type(self.name) ~= "string" or not self.name:match("^[%w_.%-]+$") then bad("name must be a word (letters, digits, _ . -)") end
  for i, c in ipairs(spec.columns or {}) do
    if type(c) ~= "table" or type(c[1]) ~= "string" then bad("columns[%d] must be { NAME, … }", i) end
    check_fields(c, COLUMN_FIELDS, "column " .. c[1])
    local name = c[1]
    if self.by_name[name] then bad("column %s is declared twice", name) end
    local t = c.type or "any"
    if not TYPES[t] then bad("column %s: type must be any, string, int, number or bool, not %s", name, tostring(t)) end
    for _, k in ipairs({ "min", "max" }) do
      if c[k] ~= nil and type(c[k]) ~= "number" then bad("column %s: %s must be a number, not %s", name, k, tostring(c[k])) end
    end
    if c.unique ~= nil and type(c.unique) ~= "boolean" then bad("column %s: unique must be true or false", name) end
    if (c.min or c.max) and t ~= "int" and t ~= "number" then bad("column %s: min and max need type int or number", name) end
    if c.min and c.max and c.min > c.max then bad("column %s: min %s is above max %s", name, c.min, c.max) end
    local nulls = c.nulls
    if nulls == nil then nulls = true end
    if type(nulls) == "number" and (nulls < 0 or nulls > 1) then bad("column %s: nulls must be true, false or a fraction from 0 to 1", name) end
    if type(nulls) ~= "boolean" and type(nulls) ~= "number" then bad("column %s: nulls must be true, false or a fraction from 0 to 1", name) end
    if c.allowed ~= nil and type(c.allowed) ~= "table" then bad("column %s: allowed must be a list of values", name) end
    local allowed
    if c.allowed then
      allowed = {}
      for j, v in ipairs(c.allowed) do
        if type(v) ~= "string" and type(v) ~= "number" then bad("column %s: allowed[%d] must be a string or number", name, j) end
        allowed[j] = tostring(v)
      end
    end
    local col = { name = name, type = t, nulls = nulls, min = c.min, max = c.max, allowed = allowed, unique = c.unique == true }
    self.columns[#self.columns + 1] = col
    self.by_name[name] = col
  end
  if type(self.rows) ~= "table" then bad("rows must be a table {min, max}") end
  for k, v in pairs(self.rows) do
    if k ~= "min" and k ~= "max" then bad("unknown field '%s' in rows (min, max)", tostring(k)) end
    if type(v) ~= "number" then bad("rows.%s must be a number, not %s", k, tostring(v)) end
  end
  if type(self.na) ~= "table" then bad("na must be a list of strings") end
  for i, v in ipairs(self.na) do
    if type(v) ~= "string" then bad("na[%d] must be a string", i) end
  end
  if self.delimiter ~= nil and (type(self.delimiter) ~= "string" or #self.delimiter ~= 1) then
    bad("delimiter must be one character")
  end
  for i, p in ipairs(spec.predicates or {}) do
    if type(p) ~= "table" or type(p[1]) ~= "string" or type(p[2]) ~= "function" then
      bad("predicates[%d] must be { NAME, function(row) … end }", i)
    end
    self.predicates[i] = { name = p[1], fn = p[2] }
  end
  if #self.predicates > 0 and #self.columns == 0 then bad("predicates read the declared columns; declare some") end
  if spec.drift then
    local d = spec.drift
    if type(d) ~= "table" or type(d.reference) ~= "string" then bad("drift needs reference = PATH") end
    check_fields(d, { reference = true, columns = true }, "drift")
    self.drift = { reference = d.reference, columns = {} }
    for name, limits in pairs(d.columns or {}) do
      local col = self.by_name[name]
      if not col then bad("drift column %s is not among the declared columns", tostring(name)) end
      if type(limits) ~= "table" then bad("drift column %s: expected a table of thresholds", name) end
      check_fields(limits, DRIFT_FIELDS, "drift column " .. name)
      for stat, v in pairs(limits) do
        if type(v) ~= "number" or v < 0 then bad("drift column %s: %s must be a number >= 0", name, stat) end
      end
      local numeric = col.type == "int" or col.type == "number"
      if numeric and limits.chi2_p then bad("drift column %s: chi2_p is for categorical columns; use ks or ks_p", name) end
      if not numeric and (limits.ks or limits.ks_p) then bad("drift column %s: ks is for int and number columns; use psi or chi2_p", name) end
      col.drift = limits
      self.drift.columns[#self.drift.columns + 1] = col
    end
    table.sort(self.drift.columns, function(a, b) return a.name < b.name end)
  end
  return self
end

local function format_of(path, rules)
  if rules.format then return rules.format end
  if path:match("%.jsonl$") or path:match("%.ndjson$") then return "jsonl" end
  return "csv"
end

local function delimiter_of(path, rules)
  return rules.delimiter or (path:match("%.tsv$") and "\t") or ","
end

-- The reference pass: a sample of each numeric drift column, the counts
-- of each categorical one.
local function read_reference(rules)
  local specs = {}
  for _, col in ipairs(rules.drift.columns) do
    local numeric = col.type == "int" or col.type == "number"
    specs[#specs + 1] = { name = col.name, type = col.type, sample = numeric and drift.SAMPLE or nil,
      categories = not numeric and M.CATEGORIES or nil }
  end
  local path = rules.drift.reference
  local r, err, code = require("mlx.datacheck").run(path, format_of(path, rules), specs,
    { delimiter = delimiter_of(path, rules), na = rules.na })
  if not r then return nil, "reference " .. err, code end
  local ref = {}
  for i, col in ipairs(rules.drift.columns) do
    local c = r.columns[i]
    if not c.present then return nil, ("reference %s has no column %s"):format(path, col.name), "invalid" end
    ref[col.name] = c
    if c.sample then c.grid, c.psi_edges = drift.edges(c.sample) end
  end
  return ref
end

local function typed(col, v)
  if v == nil then return nil end
  if col.type == "int" or col.type == "number" then return tonumber(v) or v end
  if col.type == "bool" then
    if v == "true" or v == "True" or v == "TRUE" or v == "1" then return true end
    if v == "false" or v == "False" or v == "FALSE" or v == "0" then return false end
  end
  return v
end

local function row_text(rules, values)
  local parts = {}
  for _, col in ipairs(rules.columns) do
    local v = values[col.name]
    parts[#parts + 1] = col.name .. "=" .. (v == nil and "null" or tostring(v))
  end
  local s = table.concat(parts, " ")
  return #s > 60 and s:sub(1, 57) .. "..." or s
end

local RULE_WORDS = {
  null = "null where nulls are not allowed", type = "not of type %s", min = "below min %s", max = "above max %s",
  allowed = "not an allowed value", unique = "a duplicate of an earlier row",
}

--- Checks the file at path against rules (a table for M.rules or its
--- result). Returns a report: {path, format, ok, rows, failures = {{column,
--- rule, count, examples = {{row, value}}, text}}, drift = {{column,
--- statistic, value, threshold, ok, …}}, columns = {name → counts}};
--- or nil, message, code when a file cannot be read or parsed
--- ("notfound", "io", "invalid") or a predicate raised ("invalid").
function M.file(path, rules)
  rules = M.rules(rules)
  local format = format_of(path, rules)
  local ref
  if rules.drift and #rules.drift.columns > 0 then
    local err, code
    ref, err, code = read_reference(rules)
    if not ref then return nil, err, code end
  end
  local specs = {}
  for i, col in ipairs(rules.columns) do
    local spec = { name = col.name, type = col.type, nulls = col.nulls ~= false, min = col.min, max = col.max,
      allowed = col.allowed, unique = col.unique }
    local r = ref and ref[col.name]
    if r and r.grid then spec.edges = r.grid end
    if r and not r.grid then spec.categories = M.CATEGORIES end
    specs[i] = spec
  end
  local predicate_counts = {}
  for i, p in ipairs(rules.predicates) do predicate_counts[i] = { count = 0, examples = {} } end
  local options = { delimiter = delimiter_of(path, rules), na = rules.na }
  if #rules.predicates > 0 then
    local values = {}
    options.on_row = function(row, raw)
      for _, col in ipairs(rules.columns) do values[col.name] = typed(col, raw[col.name]) end
      for i, p in ipairs(rules.predicates) do
        local ok, result = pcall(p.fn, values)
        if not ok then return false, ("predicate '%s' raised at row %d: %s"):format(p.name, row, tostring(result)) end
        if not result then
          local k = predicate_counts[i]
          k.count = k.count + 1
          if #k.examples < 3 then k.examples[#k.examples + 1] = { row = row, value = row_text(rules, values) } end
        end
      end
      return true
    end
  end
  local r, err, code = require("mlx.datacheck").run(path, format, specs, options)
  if not r then return nil, err, code end

  local report = { path = path, format = format, rows = r.rows, failures = {}, drift = {}, statistics = {}, columns = {} }
  local function fail(column, rule, count, examples, text)
    report.failures[#report.failures + 1] = { column = column, rule = rule, count = count,
      examples = examples or {}, text = text }
  end
  local header = {}
  for _, h in ipairs(r.header or {}) do header[h] = true end
  if r.header then
    for _, col in ipairs(rules.columns) do
      if not header[col.name] then fail(col.name, "columns", 1, {}, "missing from the header") end
    end
    if rules.strict then
      for _, h in ipairs(r.header) do
        if not rules.by_name[h] then fail(h, "columns", 1, {}, "not declared (strict = true)") end
      end
    end
  end
  if r.ragged.count > 0 then fail(nil, "fields", r.ragged.count, r.ragged.examples, "rows with another number of fields than the header") end
  if r.malformed.count > 0 then fail(nil, "json", r.malformed.count, r.malformed.examples, "lines that are not a JSON object") end
  if rules.rows.min and r.rows < rules.rows.min then fail(nil, "rows", r.rows, {}, ("%d rows, fewer than min %d"):format(r.rows, rules.rows.min)) end
  if rules.rows.max and r.rows > rules.rows.max then fail(nil, "rows", r.rows, {}, ("%d rows, more than max %d"):format(r.rows, rules.rows.max)) end
  for i, col in ipairs(rules.columns) do
    local c = r.columns[i]
    report.columns[col.name] = c
    if c.present or not r.header then
      for _, rule in ipairs({ "null", "type", "min", "max", "allowed", "unique" }) do
        local k = c.rules[rule]
        if k then
          local words = RULE_WORDS[rule]:format(rule == "type" and col.type or rule == "min" and col.min or col.max)
          fail(col.name, rule == "null" and "nulls" or rule, k.count, k.examples, ("%d %s %s"):format(k.count,
            k.count == 1 and "value" or "values", words))
        end
      end
      if type(col.nulls) == "number" and r.rows > 0 and c.nulls / r.rows > col.nulls then
        fail(col.name, "nulls", c.nulls, {}, ("%d nulls, %.4g of the rows, above the %.4g allowed"):format(c.nulls,
          c.nulls / r.rows, col.nulls))
      end
    end
  end
  for i, p in ipairs(rules.predicates) do
    local k = predicate_counts[i]
    if k.count > 0 then fail(nil, "predicate " .. p.name, k.count, k.examples, ("%d rows where '%s' is false"):format(k.count, p.name)) end
  end
  for _, col in ipairs(ref and rules.drift.columns or {}) do
    local c, rc = report.columns[col.name], ref[col.name]
    if not c.present and r.header then goto next_column end
    local d = rc.grid and drift.numeric(rc.sample, rc.numbers, rc.grid, rc.psi_edges, c.bins)
      or drift.categorical(rc.categories, c.categories, rc.categories_other, c.categories_other)
    for _, stat in ipairs({ "psi", "ks", "ks_p", "chi2_p" }) do
      local threshold = col.drift[stat]
      if threshold then
        -- p-values fail below their threshold, distances above theirs.
        local is_p = stat:match("_p$") ~= nil
        local ok = (is_p and d[stat] >= threshold) or (not is_p and d[stat] <= threshold)
        report.drift[#report.drift + 1] = { column = col.name, statistic = stat, value = d[stat],
          threshold = threshold, ok = ok, details = d }
        if not ok then
          fail(col.name, "drift " .. stat, 1, {}, ("%s %.4g %s %.4g against %s"):format(stat, d[stat],
            is_p and "<" or ">", threshold, rules.drift.reference))
        end
      end
    end
    report.statistics[col.name] = d
    ::next_column::
  end
  report.ok = #report.failures == 0
  return report
end

local function examples_text(f)
  local parts = {}
  for _, e in ipairs(f.examples) do
    parts[#parts + 1] = e.value ~= "" and ("row %d: %q"):format(e.row, e.value) or ("row %d"):format(e.row)
  end
  return #parts > 0 and " (" .. table.concat(parts, ", ") .. ")" or ""
end

--- Returns one line per failure: "column 'age': nulls: 3 values null where
--- nulls are not allowed (row 4, row 9)" and the like.
function M.failure_lines(report)
  local lines = {}
  for _, f in ipairs(report.failures) do
    local where = f.column and ("column '%s': "):format(f.column) or ""
    lines[#lines + 1] = ("%s%s: %s%s"):format(where, f.rule, f.text, examples_text(f))
  end
  return lines
end

--- Returns the readable summary of a report, a few lines of text.
function M.summary(report)
  local lines = { ("check %s: %d rows: %s"):format(report.path, report.rows,
    report.ok and "ok" or ("FAILED (%d rule%s)"):format(#report.failures, #report.failures == 1 and "" or "s")) }
  for _, l in ipairs(M.failure_lines(report)) do lines[#lines + 1] = "  " .. l end
  for _, d in ipairs(report.drift) do
    lines[#lines + 1] = ("  drift %s: %s %.4g (threshold %.4g) %s"):format(d.column, d.statistic, d.value,
      d.threshold, d.ok and "ok" or "DRIFTED")
  end
  return table.concat(lines, "\n")
end

--- Logs the report as metrics on the current run through mlx.log (any
--- tracking backend): NAME.rows, NAME.failures, NAME.COLUMN.RULE (the
--- count of each failing rule), drift.COLUMN.STAT for each statistic
--- computed; NAME is rules.name (default "check"). Returns true when the
--- metrics went to a run or events file, false when there was none.
function M.log(report, name)
  name = name or "check"
  local log = require "mlx.log"
  local values = { [name .. ".rows"] = report.rows, [name .. ".failures"] = #report.failures }
  for _, f in ipairs(report.failures) do
    local key = ("%s.%s.%s"):format(name, f.column or "rows", f.rule:gsub("%s+", "."))
    values[key] = (values[key] or 0) + f.count
  end
  for _, col in ipairs(report.drift) do
    for _, stat in ipairs({ "psi", "ks", "ks_p", "chi2_p" }) do
      local v = col.details[stat]
      if v then values[("drift.%s.%s"):format(col.column, stat)] = v end
    end
  end
  return log.metrics(values)
end

--- For a pipeline step: checks path, prints the summary, logs the metrics
--- and, when options.report is a path, writes the report there as JSON.
--- Returns the report when every rule holds; raises otherwise, with a
--- message naming the file, and each failing column, rule, count and a few
--- example rows. A file that cannot be read raises too.
function M.step(path, rules, options)
  options = options or {}
  rules = M.rules(rules)
  local report, err = M.file(path, rules)
  if not report then error(err, 2) end
  io.stdout:write(M.summary(report), "\n")
  M.log(report, rules.name)
  if options.report then
    local json = require "mlx.json"
    local out = { path = report.path, rows = report.rows, ok = report.ok, failures = json.array({}),
      drift = json.array({}) }
    for _, f in ipairs(report.failures) do
      out.failures[#out.failures + 1] = { column = f.column, rule = f.rule, count = f.count, text = f.text,
        examples = json.array(f.examples) }
    end
    for _, d in ipairs(report.drift) do
      out.drift[#out.drift + 1] = { column = d.column, statistic = d.statistic, value = d.value,
        threshold = d.threshold, ok = d.ok }
    end
    local parent = options.report:match("^(.*)/[^/]+$")
    if parent then require("mlx.fs").mkdirs(parent) end
    assert(require("mlx.fs").write(options.report, json.encode(out)))
  end
  if not report.ok then
    error(("check of %s failed: %s"):format(path, table.concat(M.failure_lines(report), "; ")), 2)
  end
  return report
end

return M
