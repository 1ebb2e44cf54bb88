--- mlx.track.filter: the run filter language of `mlx runs --filter` and
--- track.runs{filter = …}, compiled to an SQL condition with bound values.
---
---     metrics.acc > 0.9 and params.lr = '0.1'
---     (status = 'FAILED' or metrics.loss >= 1e3) and not tags.team like 'vis%'
---     params.lr < 0.05 and start_time > '2024-05-01' and dirty = false
---
--- It is MLflow's search syntax, with MLflow's meaning: the prefixes
--- metrics., params., tags., attributes. (and MLflow's synonyms, quoted in
--- backticks too), = != < <= > >= on metrics and numeric attributes, = !=
--- LIKE ILIKE on params, tags and text attributes, IS [NOT] NULL on params
--- and tags, AND. mlx adds OR, NOT, parentheses, IN on every field, the
--- numeric comparison of params (a number on the right compares the param
--- as a number), dates for times, and attributes MLflow does not have
--- (which take IS NULL too). Values are never spliced into the SQL: every
--- one is a bound parameter. Errors name the column (1-based) of the
--- offending token.
local M = {}

--- The run attributes: name → { sql expression over `runs r`, type }.
--- Types: "text", "number", "boolean", "time" (milliseconds, also compared
--- with dates such as '2024-05-01 13:00'). mlflow: an attribute MLflow has,
--- which therefore takes no IS NULL, as in MLflow.
M.ATTRIBUTES = {
  id = { "r.id", "text", mlflow = true },
  -- The name `mlx runs` shows: the recipe, or recipe:step for a step.
  run_name = { "(CASE WHEN r.step IS NULL THEN r.recipe ELSE coalesce(r.recipe || ':', '') || r.step END)", "text",
    mlflow = true },
  parent = { "r.parent_id", "text" },
  status = { "r.status", "text", mlflow = true },
  recipe = { "r.recipe", "text" },
  recipe_hash = { "r.recipe_hash", "text" },
  step = { "r.step", "text" },
  step_key = { "r.step_key", "text" },
  message = { "r.message", "text" },
  start_time = { "r.start_time", "time", mlflow = true },
  end_time = { "r.end_time", "time", mlflow = true },
  duration = { "((coalesce(r.end_time, ?) - r.start_time) / 1000.0)", "number", now = true },
  exit_code = { "r.exit_code", "number" },
  signal = { "r.signal", "number" },
  git_commit = { "r.git_commit", "text" },
  git_branch = { "r.git_branch", "text" },
  git_dirty = { "r.git_dirty", "boolean" },
  host = { "r.host", "text" },
  user = { "r.user", "text", mlflow = true },
  pid = { "r.pid", "number" },
  command = { "r.command", "text" },
  log_path = { "r.log_path", "text" },
  cpu_seconds = { "r.cpu_seconds", "number" },
  wall_seconds = { "r.wall_seconds", "number" },
  peak_rss = { "r.peak_rss", "number" },
}

-- Other names for attributes: MLflow's (run_id, user_id, created, run name)
-- and short ones.
local ALIASES = {
  run_id = "id", user_id = "user", created = "start_time", ["run name"] = "run_name",
  parent_id = "parent", commit = "git_commit", branch = "git_branch", dirty = "git_dirty",
}

-- The entity prefixes MLflow accepts.
local ENTITIES = {
  metrics = "metric", metric = "metric",
  params = "param", param = "param", parameters = "param", parameter = "param",
  tags = "tag", tag = "tag",
  attributes = "attribute", attribute = "attribute", attr = "attribute", run = "attribute",
}

-- The comparators that order: on numbers and times only. MLflow rejects
-- them on params, tags and text attributes rather than compare text.
local ORDERING = { ["<"] = true, ["<="] = true, [">"] = true, [">="] = true }

local STATUSES = { RUNNING = true, FINISHED = true, FAILED = true, KILLED = true, CACHED = true }

local KEYWORDS = {
  ["and"] = true, ["or"] = true, ["not"] = true, like = true, ilike = true, ["in"] = true,
  is = true, null = true, ["true"] = true, ["false"] = true, asc = true, desc = true,
}

-- ---- tokens -----------------------------------------------------------------

-- The message quotes the text it could not read: a control character in it
-- is written as an escape ("\r", "\1"), so the message stays one line.
local CONTROL = { ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

local function syntax_error(col, fmt, ...)
  local msg = ("column %d: " .. fmt):format(col, ...)
  msg = msg:gsub("%c", function(c) return CONTROL[c] or ("\\%d"):format(c:byte()) end)
  error({ filter_error = msg }, 0)
end

-- " but found 'x'", or nothing at the end of the text.
local function found(tok)
  if tok.type == "eof" then return "" end
  if tok.type == "string" then return " but found " .. tok.text end
  return " but found '" .. tok.text .. "'"
end

local function read_quoted(s, i, quote)
  local parts, j = {}, i + 1
  while true do
    local k = s:find(quote, j, true)
    if not k then
      syntax_error(i, "unterminated %s starting with %s", quote == "`" and "quoted name" or "string", quote)
    end
    parts[#parts + 1] = s:sub(j, k - 1)
    if s:sub(k + 1, k + 1) == quote then -- a doubled quote is one quote
      parts[#parts + 1] = quote
      j = k + 2
    else
      return table.concat(parts), k + 1
    end
  end
end

-- Reads a name at i: a word or a `quoted name`, then possibly a dot and
-- a key (a word, `quoted` or "quoted"), as MLflow's `metric`.acc and
-- metrics."f1 score". Returns { type = "name", prefix = text before the
-- dot or nil, key = the rest, quoted = whether the key was quoted }, and
-- the index after it.
local function read_name(s, i)
  local first, j, quoted
  if s:sub(i, i) == "`" then
    first, j = read_quoted(s, i, "`")
    quoted = true
  else
    first = s:match("^[%a_][%w_:/%-]*", i)
    j = i + #first
  end
  if s:sub(j, j) ~= "." then return { type = "name", key = first, quoted = quoted }, j end
  local q, key = s:sub(j + 1, j + 1), nil
  if q == "`" or q == '"' then
    key, j = read_quoted(s, j + 1, q)
    quoted = true
  else
    key = s:match("^[%w_.:/%-]*", j + 1) -- a bare key may hold dots: metrics.acc.2
    j, quoted = j + 1 + #key, false
  end
  return { type = "name", prefix = first, key = key, quoted = quoted }, j
end

local function tokenize(s)
  local toks, i, n = {}, 1, #s
  local function push(tok, text, col)
    tok.text, tok.col = text, col
    toks[#toks + 1] = tok
  end
  while i <= n do
    local c = s:sub(i, i)
    if c:match("%s") then
      i = i + 1
    elseif c == "(" or c == ")" or c == "," then
      push({ type = c }, c, i)
      i = i + 1
    elseif c:match("[=!<>]") then
      local two = s:sub(i, i + 1)
      if two == "!=" or two == "<>" or two == "<=" or two == ">=" or two == "==" then
        push({ type = "op", op = (two == "==" and "=") or (two == "<>" and "!=") or two }, two, i)
        i = i + 2
      elseif c == "!" then
        syntax_error(i, "unexpected '!' (did you mean '!='?)")
      else
        push({ type = "op", op = c }, c, i)
        i = i + 1
      end
    elseif c == "'" or c == '"' then
      local value, j = read_quoted(s, i, c)
      push({ type = "string", value = value }, s:sub(i, j - 1), i)
      i = j
    elseif c:match("[%d.]") or (c:match("[-+]") and s:sub(i + 1, i + 1):match("[%d.]")) then
      local text = s:match("^[-+]?%d*%.?%d*[eE][-+]?%d+", i) or s:match("^[-+]?%d*%.?%d*", i)
      local after = i + #text
      local value = tonumber(text)
      if not value or s:sub(after, after):match("[%w_]") then
        syntax_error(i, "invalid number '%s'", s:match("^[-+]?[%w_.]*", i))
      end
      push({ type = "number", value = value }, text, i)
      i = after
    elseif c == "-" and s:sub(i + 1, i + 1):match("[%a_`]") then
      push({ type = "minus" }, "-", i)
      i = i + 1
    elseif c:match("[%a_]") or c == "`" then
      local tok, j = read_name(s, i)
      if not tok.prefix and not tok.quoted and KEYWORDS[tok.key:lower()] then
        tok.type, tok.word = "keyword", tok.key:lower()
      end
      push(tok, s:sub(i, j - 1), i)
      i = j
    else
      syntax_error(i, "unexpected character '%s'", c)
    end
  end
  push({ type = "eof" }, "", n + 1)
  return toks
end

-- ---- the parser --------------------------------------------------------------

local Parser = {}
Parser.__index = Parser

function Parser:peek() return self.toks[self.pos] end

function Parser:next()
  local tok = self.toks[self.pos]
  if tok.type ~= "eof" then self.pos = self.pos + 1 end
  return tok
end

function Parser:is_word(word)
  local tok = self:peek()
  return tok.type == "keyword" and tok.word == word
end

function Parser:accept_word(word)
  if self:is_word(word) then return self:next() end
end

function Parser:param(value)
  self.params[#self.params + 1] = value
  return "?"
end

-- A field: { sql = …, type = …, shown = "metrics.acc", entity = … }.
function Parser:field()
  local tok = self:next()
  if tok.type ~= "name" then
    syntax_error(tok.col, "expected a name (metrics.NAME, params.NAME, tags.NAME or an attribute)%s",
      found(tok))
  end
  local entity, key = "attribute", tok.key
  if tok.prefix then
    entity = ENTITIES[tok.prefix:lower()]
    if not entity then
      syntax_error(tok.col, "unknown prefix '%s' in '%s' (metrics., params., tags. or attributes.)",
        tok.prefix, tok.text)
    end
    if key == "" then syntax_error(tok.col, "'%s.' needs a name after the dot", tok.prefix) end
  end
  if entity == "metric" or entity == "param" then
    local seen = self.reads[entity .. "s"]
    if not seen[key] then seen[key], seen[#seen + 1] = true, key end
  end
  if entity == "metric" then
    return { sql = "(SELECT value FROM latest_metrics WHERE run_id = r.id AND key = " .. self:param(key) .. ")",
      type = "number", entity = "metric", key = key, shown = tok.text }
  elseif entity == "param" then
    -- Text or number: which column is decided by the value compared with.
    return { key = key, entity = "param", shown = tok.text }
  elseif entity == "tag" then
    return { sql = "(SELECT value FROM tags WHERE run_id = r.id AND key = " .. self:param(key) .. ")",
      type = "text", entity = "tag", shown = tok.text }
  end
  local name = ALIASES[key:lower()] or key:lower()
  local attr = M.ATTRIBUTES[name]
  if not attr then
    local names = {}
    for n in pairs(M.ATTRIBUTES) do names[#names + 1] = n end
    table.sort(names)
    -- `metrics.acc` quotes a prefix with its key: say where the quotes go.
    local hint = tok.quoted and key:find(".", 1, true) and (" (quote the name alone: %s.`%s`)"):format(
      key:match("^[^.]*"), key:match("^[^.]*%.(.*)$")) or ""
    syntax_error(tok.col, "unknown attribute '%s'%s (one of: %s)", key, hint, table.concat(names, ", "))
  end
  if attr.now then self:param(require("mlx.core").now_ms()) end
  return { sql = attr[1], type = attr[2], entity = "attribute", name = name, mlflow = attr.mlflow,
    shown = tok.text }
end

-- Milliseconds since the epoch of a local date 'YYYY-MM-DD[ HH:MM[:SS]]'.
local function date_ms(s)
  local y, mo, d, rest = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)(.*)$")
  if not y then return nil end
  local h, mi, sec = 0, 0, 0
  if rest ~= "" then
    h, mi, sec = rest:match("^[ T](%d%d):(%d%d):?(%d?%d?)$")
    if not h then return nil end
  end
  local t = os.time({ year = tonumber(y), month = tonumber(mo), day = tonumber(d),
    hour = tonumber(h), min = tonumber(mi), sec = tonumber(sec) or 0 })
  return t and t * 1000
end

-- Reads a value token and converts it for field f: returns the bound value
-- (or nil for SQL NULL, never here) and possibly a refined field.
function Parser:value(f, after)
  local tok = self:next()
  if tok.type ~= "string" and tok.type ~= "number"
    and not (tok.type == "keyword" and (tok.word == "true" or tok.word == "false")) then
    -- An unquoted word where a value belongs is mostly a string without quotes.
    local hint = tok.type == "name" and not tok.prefix and not tok.quoted
      and (" (quote strings: '%s')"):format(tok.key) or ""
    syntax_error(tok.col, "expected a value after %s%s%s", after, found(tok), hint)
  end
  local v = tok.value
  if tok.type == "keyword" then
    if f.type ~= "boolean" then
      syntax_error(tok.col, "%s is not true or false; compare it with a %s", f.shown,
        (f.entity == "param" and "string or a number") or (f.type == "text" and "string") or "number")
    end
    return tok.word == "true" and 1 or 0
  end
  if f.entity == "param" then
    return v, tok
  elseif f.type == "number" then
    if tok.type ~= "number" then
      syntax_error(tok.col, "%s is a number: compare it with a number, not %s", f.shown, tok.text)
    end
  elseif f.type == "boolean" then
    if tok.type == "number" and (v == 0 or v == 1) then return math.tointeger(v) end
    syntax_error(tok.col, "%s is true or false, not %s", f.shown, tok.text)
  elseif f.type == "time" then
    if tok.type == "string" then
      v = date_ms(v)
      if not v then
        syntax_error(tok.col, "%s compares with milliseconds or a date 'YYYY-MM-DD[ HH:MM[:SS]]', not %s",
          f.shown, tok.text)
      end
    end
  elseif tok.type == "number" then
    -- As MLflow: tags and text attributes compare with strings only, and a
    -- number is refused rather than compared as text.
    syntax_error(tok.col, "%s is text: compare it with a quoted string ('%s'), not %s", f.shown, tok.text,
      tok.text)
  end
  if f.name == "status" then
    v = v:upper()
    if not STATUSES[v] then
      syntax_error(tok.col, "unknown status %s (RUNNING, FINISHED, FAILED, KILLED or CACHED)", tok.text)
    end
  end
  return v, tok
end

-- The SQL of a param compared with a value: as a number when the value is one.
function Parser:param_field(f, as_number)
  return "(SELECT " .. (as_number and "num" or "value") ..
    " FROM params WHERE run_id = r.id AND key = " .. self:param(f.key) .. ")"
end

-- A LIKE pattern as a GLOB pattern: LIKE is case-sensitive in MLflow, and
-- SQLite's LIKE is not. Written as the function glob(pattern, text), which
-- SQLite has and the PostgreSQL backend defines (mlx.track.pg), so that
-- both agree.
local function like_to_glob(pattern)
  return (pattern:gsub("[%%_%[%]*?]", {
    ["%"] = "*", ["_"] = "?", ["["] = "[[]", ["]"] = "[]]", ["*"] = "[*]", ["?"] = "[?]",
  }))
end

function Parser:comparison()
  local start = self:peek()
  local f = self:field()
  local fsql = f.sql
  local negate = self:accept_word("not")
  local tok = self:peek()
  if tok.type == "keyword" and (tok.word == "like" or tok.word == "ilike") then
    self:next()
    if f.type == "number" or f.type == "time" or f.type == "boolean" then
      syntax_error(tok.col, "%s is %s: %s compares text", f.shown,
        f.type == "time" and "a time" or f.type == "boolean" and "true or false" or "a number", tok.text:upper())
    end
    if f.entity == "param" then fsql = self:param_field(f, false) end
    local ptok = self:next()
    if ptok.type ~= "string" then
      syntax_error(ptok.col, "expected a string pattern after %s%s", tok.text:upper(), found(ptok))
    end
    -- ILIKE: lower() of both sides, as SQLite's LIKE ignores case and
    -- PostgreSQL's does not.
    local sql
    if tok.word == "like" then
      -- The pattern comes first in glob(), so its value goes before those
      -- of the field's own "?" (a param's key): values bind in order.
      local _, nfield = fsql:gsub("%?", "")
      table.insert(self.params, #self.params - nfield + 1, like_to_glob(ptok.value))
      sql = "glob(?, " .. fsql .. ")"
    else
      sql = "lower(" .. fsql .. ") LIKE lower(" .. self:param(ptok.value) .. ")"
    end
    return negate and ("NOT (" .. sql .. ")") or sql
  elseif tok.type == "keyword" and tok.word == "in" then
    self:next()
    local open = self:next()
    if open.type ~= "(" then
      syntax_error(open.col, "expected '(' after IN%s", found(open))
    end
    local values, as_number = {}, nil
    repeat
      local v, vtok = self:value(f, #values == 0 and "'('" or "','")
      if f.entity == "param" then
        local num = vtok.type == "number"
        if as_number ~= nil and num ~= as_number then
          syntax_error(vtok.col, "mix of numbers and strings in IN (...) for %s", f.shown)
        end
        as_number = num
      end
      values[#values + 1] = v
      local sep = self:next()
      if sep.type ~= "," and sep.type ~= ")" then
        syntax_error(sep.col, "expected ',' or ')' in the IN list%s", found(sep))
      end
    until sep.type == ")"
    if f.entity == "param" then fsql = self:param_field(f, as_number) end
    local marks = {}
    for i, v in ipairs(values) do marks[i] = self:param(v) end
    return fsql .. (negate and " NOT IN (" or " IN (") .. table.concat(marks, ", ") .. ")"
  elseif negate then
    syntax_error(tok.col, "expected LIKE, ILIKE or IN after NOT%s", found(tok))
  elseif tok.type == "keyword" and tok.word == "is" then
    self:next()
    local is_not = self:accept_word("not")
    local null = self:next()
    if not (null.type == "keyword" and null.word == "null") then
      syntax_error(null.col, "expected NULL after IS%s%s", is_not and " NOT" or "", found(null))
    end
    if f.entity == "metric" or f.mlflow then
      syntax_error(tok.col, "IS%s NULL does not apply to %s, as in MLflow (it tests params, tags and "
        .. "the attributes MLflow does not have)", is_not and " NOT" or "", f.shown)
    end
    if f.entity == "param" then fsql = self:param_field(f, false) end
    return fsql .. (is_not and " IS NOT NULL" or " IS NULL")
  elseif tok.type == "op" then
    self:next()
    -- Peek at the value to pick the column of a param; params are bound in order.
    local vtok = self:peek()
    if ORDERING[tok.op] then
      if f.entity == "param" and vtok.type == "string" then
        syntax_error(tok.col, "'%s' compares %s only with a number, not with %s (as in MLflow, text is not ordered)",
          tok.op, f.shown, vtok.text)
      elseif f.type == "text" then
        syntax_error(tok.col, "'%s' does not apply to %s, which is text: use =, !=, LIKE, ILIKE or IN (as in MLflow)",
          tok.op, f.shown)
      elseif f.type == "boolean" then
        syntax_error(tok.col, "'%s' does not apply to %s, which is true or false: use = or !=", tok.op, f.shown)
      end
    end
    if f.entity == "param" then fsql = self:param_field(f, vtok.type == "number") end
    local v = self:value(f, "'" .. tok.op .. "'")
    return fsql .. " " .. tok.op .. " " .. self:param(v)
  end
  syntax_error(tok.col, "expected a comparison (=, !=, <, <=, >, >=, LIKE, IN, IS) after '%s'%s",
    start.text, found(tok))
end

function Parser:primary()
  local tok = self:peek()
  if tok.type == "(" then
    self:next()
    local inner = self:disjunction()
    local close = self:next()
    if close.type ~= ")" then
      syntax_error(close.col, "expected ')' to close the '(' at column %d%s", tok.col, found(close))
    end
    return "(" .. inner .. ")"
  end
  return self:comparison()
end

function Parser:negation()
  if self:accept_word("not") then return "NOT (" .. self:negation() .. ")" end
  return self:primary()
end

function Parser:conjunction()
  local sql = self:negation()
  while self:accept_word("and") do sql = sql .. " AND " .. self:negation() end
  return sql
end

function Parser:disjunction()
  local sql = self:conjunction()
  while self:accept_word("or") do sql = "(" .. sql .. ") OR (" .. self:conjunction() .. ")" end
  return sql
end

local function parse(text, rule)
  local ok, result = pcall(function()
    local p = setmetatable({ toks = tokenize(text), pos = 1, params = {}, reads = { metrics = {}, params = {} } },
      Parser)
    local sql = rule(p)
    local rest = p:peek()
    if rest.type ~= "eof" then
      local hint = rest.type == ")" and "unexpected ')' (no '(' to close)"
        or rule == Parser.disjunction
          and ("unexpected '%s' after a complete condition (join conditions with AND or OR)"):format(rest.text)
        or ("unexpected '%s' after a complete sort key (separate sort keys with ',')"):format(rest.text)
      syntax_error(rest.col, "%s", hint)
    end
    return { sql = sql, params = p.params, reads = p.reads }
  end)
  if ok then return result.sql, result.params, result.reads end
  if type(result) == "table" and result.filter_error then return nil, result.filter_error, "invalid" end
  error(result, 0)
end

--- Compiles a filter expression to an SQL condition on `runs r`.
--- Returns sql, params (the values bound to its ?s, in order) and the keys
--- it reads, {metrics = {key…}, params = {key…}}; or nil,
--- "column N: what is wrong", "invalid" for an expression that does not
--- parse or compares a field with the wrong kind of value.
---@param text string
function M.compile(text)
  if not text:find("%S") then return "1 = 1", {}, { metrics = {}, params = {} } end
  return parse(text, Parser.disjunction)
end

function Parser:sort_keys()
  local parts = {}
  repeat
    local desc = self:peek().type == "minus"
    if desc then self:next() end
    local f = self:field()
    if f.entity == "param" then f.sql = self:param_field(f, false) end
    if self:accept_word("desc") then desc = true else self:accept_word("asc") end
    -- Runs without the field come last either way.
    local sql = f.sql .. (desc and " DESC" or " ASC") .. " NULLS LAST"
    if f.entity == "metric" then
      -- As MLflow: NaN after every number, before the runs without the
      -- metric, in both directions. NaN is stored as NULL: a NULL value is
      -- NaN (1), no row is no metric (2).
      sql = sql .. ", coalesce((SELECT CASE WHEN value IS NULL THEN 1 ELSE 0 END FROM latest_metrics"
        .. " WHERE run_id = r.id AND key = "
        .. self:param(f.key) .. "), 2)"
    end
    parts[#parts + 1] = sql
  until not (self:peek().type == "," and self:next())
  return table.concat(parts, ", ")
end

--- Compiles a sort specification — comma-separated fields, each followed
--- by ASC or DESC or preceded by '-' for descending: "-metrics.acc",
--- "params.lr asc, duration desc" — to an SQL ORDER BY list. Returns sql,
--- params and the keys it reads (as compile); or nil, "column N: …",
--- "invalid" — also for a space before
--- the first key or after the last, which MLflow rejects ("params.lr ").
function M.order(text)
  if text:match("^%s") then return nil, "column 1: space before the first sort key", "invalid" end
  local trailing = text:match("()%s+$")
  if trailing then return nil, ("column %d: space after the last sort key"):format(trailing), "invalid" end
  return parse(text, Parser.sort_keys)
end

return M
