--- mlx.track.filter: the run filter language of `mlx runs --filter` and
--- track.runs{filter = …}, compiled to an SQL condition with bound values.
---
---     metrics.acc > 0.9 and params.lr = '0.1'
---     (status = 'FAILED' or metrics.loss >= 1e3) and not tags.team like 'vis%'
---     params.lr < 0.05 and start_time > '2024-05-01' and dirty = false
---
--- It is MLflow's search syntax (metrics., params., tags., attributes.,
--- = != <> < <= > >=, LIKE, ILIKE, IN, IS [NOT] NULL, AND) plus OR, NOT,
--- parentheses, and numeric comparison of params (a number on the right
--- compares the param as a number). Values are never spliced into the SQL:
--- every one is a bound parameter. Errors name the column (1-based) of the
--- offending token.
local M = {}

--- The run attributes: name → { sql expression over `runs r`, type }.
--- Types: "text", "number", "boolean", "time" (milliseconds, also compared
--- with dates such as '2024-05-01 13:00').
M.ATTRIBUTES = {
  id = { "r.id", "text" },
  parent = { "r.parent_id", "text" },
  status = { "r.status", "text" },
  recipe = { "r.recipe", "text" },
  recipe_hash = { "r.recipe_hash", "text" },
  step = { "r.step", "text" },
  step_key = { "r.step_key", "text" },
  message = { "r.message", "text" },
  start_time = { "r.start_time", "time" },
  end_time = { "r.end_time", "time" },
  duration = { "((coalesce(r.end_time, ?) - r.start_time) / 1000.0)", "number", now = true },
  exit_code = { "r.exit_code", "number" },
  signal = { "r.signal", "number" },
  git_commit = { "r.git_commit", "text" },
  git_branch = { "r.git_branch", "text" },
  git_dirty = { "r.git_dirty", "boolean" },
  host = { "r.host", "text" },
  user = { "r.user", "text" },
  pid = { "r.pid", "number" },
  command = { "r.command", "text" },
  log_path = { "r.log_path", "text" },
  cpu_seconds = { "r.cpu_seconds", "number" },
  wall_seconds = { "r.wall_seconds", "number" },
  peak_rss = { "r.peak_rss", "number" },
}

-- Other names for attributes (MLflow's among them).
local ALIASES = {
  run_id = "id", parent_id = "parent", commit = "git_commit", branch = "git_branch",
  dirty = "git_dirty", user_id = "user", start = "start_time", ["end"] = "end_time",
}

local ENTITIES = {
  metrics = "metric", metric = "metric", params = "param", param = "param",
  tags = "tag", tag = "tag", attributes = "attribute", attribute = "attribute", attr = "attribute",
}

local STATUSES = { RUNNING = true, FINISHED = true, FAILED = true, KILLED = true, CACHED = true }

local KEYWORDS = {
  ["and"] = true, ["or"] = true, ["not"] = true, like = true, ilike = true, ["in"] = true,
  is = true, null = true, ["true"] = true, ["false"] = true, asc = true, desc = true,
}

-- ---- tokens -----------------------------------------------------------------

local function syntax_error(col, fmt, ...)
  error({ filter_error = ("column %d: " .. fmt):format(col, ...) }, 0)
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
    if not k then syntax_error(i, "unterminated string starting with %s", quote) end
    parts[#parts + 1] = s:sub(j, k - 1)
    if s:sub(k + 1, k + 1) == quote then -- a doubled quote is one quote
      parts[#parts + 1] = quote
      j = k + 2
    else
      return table.concat(parts), k + 1
    end
  end
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
    elseif c == "-" and s:sub(i + 1, i + 1):match("[%a_]") then
      push({ type = "minus" }, "-", i)
      i = i + 1
    elseif c:match("[%a_]") then
      local text = s:match("^[%a_][%w_.:/%-]*", i)
      local j = i + #text
      local tok = { type = "name" }
      local q = s:sub(j, j)
      if text:sub(-1) == "." and (q == "`" or q == '"') then
        -- entity."quoted key" or entity.`quoted key`
        local key, k = read_quoted(s, j, q)
        tok.quoted_key = key
        text = text .. s:sub(j, k - 1)
        j = k
      end
      if KEYWORDS[text:lower()] then tok.type, tok.word = "keyword", text:lower() end
      push(tok, text, i)
      i = j
    elseif c == "`" then
      local value, j = read_quoted(s, i, c)
      push({ type = "name", quoted_key = value, bare = true }, s:sub(i, j - 1), i)
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
  local entity, key
  if tok.bare then
    entity, key = "attribute", tok.quoted_key
  else
    local head, rest = tok.text:match("^([^.]+)%.(.*)$")
    if tok.quoted_key then rest = tok.quoted_key end
    if head and ENTITIES[head:lower()] then
      entity, key = ENTITIES[head:lower()], rest
      if key == "" then syntax_error(tok.col, "'%s.' needs a name after the dot", head) end
    elseif head then
      syntax_error(tok.col, "unknown prefix '%s' in '%s' (metrics., params., tags. or attributes.)",
        head, tok.text)
    else
      entity, key = "attribute", tok.text
    end
  end
  if entity == "metric" then
    return { sql = "(SELECT value FROM latest_metrics WHERE run_id = r.id AND key = " .. self:param(key) .. ")",
      type = "number", entity = "metric", shown = tok.text }
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
    syntax_error(tok.col, "unknown attribute '%s' (one of: %s)", key, table.concat(names, ", "))
  end
  if attr.now then self:param(require("mlx.rundb").now_ms()) end
  return { sql = attr[1], type = attr[2], entity = "attribute", name = name, shown = tok.text }
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

local function number_text(x)
  if math.type(x) == "integer" then return tostring(x) end
  for precision = 1, 17 do
    local s = ("%." .. precision .. "g"):format(x)
    if tonumber(s) == x then return s end
  end
end

-- Reads a value token and converts it for field f: returns the bound value
-- (or nil for SQL NULL, never here) and possibly a refined field.
function Parser:value(f, after)
  local tok = self:next()
  if tok.type ~= "string" and tok.type ~= "number"
    and not (tok.type == "keyword" and (tok.word == "true" or tok.word == "false")) then
    syntax_error(tok.col, "expected a value after %s%s", after, found(tok))
  end
  local v = tok.value
  if tok.type == "keyword" then
    if f.type ~= "boolean" then
      syntax_error(tok.col, "%s is not true or false; compare it with a %s", f.shown,
        f.type == "text" and "string" or "number")
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
    v = number_text(v) -- tags and text attributes hold text
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
-- SQLite's LIKE is not.
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
      syntax_error(tok.col, "%s is a number: %s compares text", f.shown, tok.text:upper())
    end
    if f.entity == "param" then fsql = self:param_field(f, false) end
    local ptok = self:next()
    if ptok.type ~= "string" then
      syntax_error(ptok.col, "expected a string pattern after %s%s", tok.text:upper(), found(ptok))
    end
    local sql = tok.word == "like" and (fsql .. " GLOB " .. self:param(like_to_glob(ptok.value)))
      or (fsql .. " LIKE " .. self:param(ptok.value))
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
    if f.entity == "param" then fsql = self:param_field(f, false) end
    return fsql .. (is_not and " IS NOT NULL" or " IS NULL")
  elseif tok.type == "op" then
    self:next()
    if f.entity == "param" then
      -- Peek at the value to pick the column; params are bound in order.
      local vtok = self:peek()
      fsql = self:param_field(f, vtok.type == "number")
    end
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
    local p = setmetatable({ toks = tokenize(text), pos = 1, params = {} }, Parser)
    local sql = rule(p)
    local rest = p:peek()
    if rest.type ~= "eof" then
      local hint = rest.type == ")" and "unexpected ')' (no '(' to close)"
        or rule == Parser.disjunction
          and ("unexpected '%s' after a complete condition (join conditions with AND or OR)"):format(rest.text)
        or ("unexpected '%s' after a complete sort key (separate sort keys with ',')"):format(rest.text)
      syntax_error(rest.col, "%s", hint)
    end
    return { sql = sql, params = p.params }
  end)
  if ok then return result.sql, result.params end
  if type(result) == "table" and result.filter_error then return nil, result.filter_error, "invalid" end
  error(result, 0)
end

--- Compiles a filter expression to an SQL condition on `runs r`.
--- Returns sql, params (the values bound to its ?s, in order); or nil,
--- "column N: what is wrong", "invalid" for an expression that does not
--- parse or compares a field with the wrong kind of value.
---@param text string
function M.compile(text)
  if not text:find("%S") then return "1", {} end
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
    parts[#parts + 1] = f.sql .. (desc and " DESC" or " ASC") .. " NULLS LAST"
  until not (self:peek().type == "," and self:next())
  return table.concat(parts, ", ")
end

--- Compiles a sort specification — comma-separated fields, each followed
--- by ASC or DESC or preceded by '-' for descending: "-metrics.acc",
--- "params.lr asc, duration desc" — to an SQL ORDER BY list. Returns sql,
--- params; or nil, "column N: …", "invalid".
function M.order(text)
  return parse(text, Parser.sort_keys)
end

return M
