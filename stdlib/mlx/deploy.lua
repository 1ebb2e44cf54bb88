--- mlx.deploy: deploying models over HTTP — wait for a service to be
--- healthy, smoke-test it, and move registry aliases with a gate and a way
--- back.
---
---     local deploy = require "mlx.deploy"
---     assert(deploy.wait_healthy(url .. "/health", { timeout = 30 }))
---     local report = deploy.smoke(url, { { path = "/predict", json = { features = { { 5.1, 3.5, 1.4, 0.2 } } },
---       expect = { predictions = { "setosa" } } } })
---     if not report.ok then error(table.concat(report.failures, "; ")) end
---     assert(deploy.promote { name = "iris", from = "staging", to = "production",
---       gate = function(candidate, current) return candidate.metrics.accuracy >= 0.9 end })
---
--- Failures of the world return nil, message, code; misuse (a wrong type,
--- an unknown field) raises.
local core = require "mlx.core"
local http = require "mlx.http"
local json = require "mlx.json"

local M = {}

local function misuse(fmt, ...)
  error("mlx.deploy: " .. fmt:format(...), 0)
end

local function check_fields(fn, t, allowed)
  if type(t) ~= "table" then misuse("%s: expected a table, not a %s", fn, type(t)) end
  for k, v in pairs(t) do
    local want = allowed[k]
    if not want then misuse("%s: unknown field '%s'", fn, tostring(k)) end
    if want ~= "any" and type(v) ~= want then misuse("%s: field '%s' must be a %s, not a %s", fn, k, want, type(v)) end
  end
end

-- ---- health -------------------------------------------------------------------

local WAIT_FIELDS = { timeout = "number", interval = "number", expect = "number", check = "function" }

--- Polls url with GET every interval seconds (default 0.5) until it answers
--- status expect (default 200) and, if given, check(response) returns true;
--- connection failures and other answers count as not healthy yet. Returns
--- the healthy response (with waited, the seconds it took); nil, "URL: not
--- healthy after T s: LAST PROBLEM", "timeout" after timeout seconds
--- (default 30). Ctrl-C stops the wait (the error "interrupted").
function M.wait_healthy(url, options)
  if type(url) ~= "string" then misuse("wait_healthy: url must be a string") end
  options = options or {}
  check_fields("wait_healthy", options, WAIT_FIELDS)
  local timeout, interval = options.timeout or 30, options.interval or 0.5
  if timeout < 0 or interval <= 0 then misuse("wait_healthy: timeout must be >= 0 and interval > 0") end
  local expect = options.expect or 200
  local started = core.clock()
  local deadline = started + timeout
  local problem
  repeat
    local left = deadline - core.clock()
    local res, err, code = http.get(url, { timeout = math.max(1, math.min(10, left)),
      connect_timeout = math.max(1, math.min(10, left)) })
    if code == "interrupted" then return nil, err, code end
    if res and res.status == expect then
      local ok, why = true, nil
      if options.check then ok, why = options.check(res) end
      if ok then
        res.waited = core.clock() - started
        return res
      end
      problem = why or "the check did not pass"
    elseif res then
      problem = ("status %d%s"):format(res.status, res.reason ~= "" and (" " .. res.reason) or "")
    else
      problem = err:match("^GET %S+: (.*)$") or err -- the URL is said once, below
    end
    if core.clock() + interval > deadline then break end
    core.sleep(interval) -- Ctrl-C ends it, and raises at once
  until false
  return nil, ("%s: not healthy after %g s: %s"):format(http.redact(url), timeout, problem), "timeout"
end

-- ---- smoke tests ------------------------------------------------------------------

local CASE_FIELDS = {
  name = "string", method = "string", path = "string", query = "table", headers = "table", json = "any",
  body = "string", status = "number", expect = "any", check = "function", timeout = "number",
}

local function show(value)
  if value == nil then return "nothing" end
  local ok, text = pcall(json.encode, value)
  return ok and text or tostring(value)
end

local ARRAY_MT = getmetatable(json.array())

local function is_array(t)
  if getmetatable(t) == ARRAY_MT then return true end
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n > 0 and n == #t
end

-- Appends to out a line for each place where actual does not match
-- expected: objects match when every expected key matches (more keys are
-- fine), arrays when they have the same length and items, other values
-- when equal.
local function match(expected, actual, where, out)
  if type(expected) == "table" then
    if type(actual) ~= "table" then
      out[#out + 1] = ("%s: expected %s, got %s"):format(where, show(expected), show(actual))
    elseif is_array(expected) then
      if #actual ~= #expected then
        out[#out + 1] = ("%s: expected %d items, got %d: %s"):format(where, #expected, #actual, show(actual))
      else
        for i, e in ipairs(expected) do match(e, actual[i], ("%s[%d]"):format(where, i), out) end
      end
    else
      local keys = {}
      for k in pairs(expected) do keys[#keys + 1] = k end
      table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
      for _, k in ipairs(keys) do match(expected[k], actual[k], where .. "." .. tostring(k), out) end
    end
  elseif expected ~= actual then
    out[#out + 1] = ("%s: expected %s, got %s"):format(where, show(expected), show(actual))
  end
end

local function run_case(base, case, index)
  check_fields("smoke: case " .. index, case, CASE_FIELDS)
  local name = case.name or ("%s %s"):format(case.method or "GET", case.path or "/")
  local result = { name = name, failures = {} }
  local res, err = http.request {
    method = case.method or "GET", url = base .. (case.path or "/"), query = case.query, headers = case.headers,
    json = case.json, body = case.body, timeout = case.timeout or 10,
  }
  if not res then
    result.failures[1] = err
    return result
  end
  result.status, result.time = res.status, res.time
  local want = case.status or 200
  if res.status ~= want then
    result.failures[#result.failures + 1] = ("status %d, expected %d: %s"):format(res.status, want,
      (res.body or ""):sub(1, 200):gsub("%s+$", ""))
  end
  local body, why
  if case.expect ~= nil or case.check or (res.headers["content-type"] or ""):find("json", 1, true) then
    body, why = res:json()
    if body == nil and case.expect ~= nil then
      result.failures[#result.failures + 1] = "the answer is not JSON: " .. why
    end
  end
  result.answer = body
  if case.expect ~= nil and body ~= nil then match(case.expect, body, "json", result.failures) end
  if case.check then
    local ok, why = case.check(res, body)
    if not ok then result.failures[#result.failures + 1] = why or "the check did not pass" end
  end
  return result
end

--- Sends each case to the service at base (a URL without a trailing
--- slash) and checks the answer. A case: {name, method ("GET"), path
--- ("/"), query, headers, json | body, status (expected, 200), expect (JSON
--- fields the answer must have: objects partially, arrays and values
--- exactly), check (function(response, decoded_json) returning true, or
--- false and why), timeout (10 s)}. Returns a report, never fails: {ok,
--- total, passed, failed, cases = {{name, ok, status, time, answer (the
--- decoded JSON answer), failures}…}, failures = {"NAME: WHY"…}}; a
--- connection failure fails its case.
function M.smoke(base, cases)
  if type(base) ~= "string" then misuse("smoke: base must be a URL string") end
  if type(cases) ~= "table" or #cases == 0 then misuse("smoke: cases must be a non-empty list") end
  base = base:gsub("/+$", "")
  local report = { ok = true, total = #cases, passed = 0, failed = 0, cases = {}, failures = {} }
  for i, case in ipairs(cases) do
    local result = run_case(base, case, i)
    result.ok = #result.failures == 0
    report.cases[i] = result
    if result.ok then
      report.passed = report.passed + 1
    else
      report.failed, report.ok = report.failed + 1, false
      for _, why in ipairs(result.failures) do report.failures[#report.failures + 1] = result.name .. ": " .. why end
    end
  end
  return report
end

-- ---- the gate --------------------------------------------------------------------------

local GATE_FIELDS = {
  metric = "string", value = "number", candidate = "string", run = "string", min = "number", max_drop = "number",
  direction = "string", base = "number", baseline = "string",
}

--- The quality gate of a deployment, and of mlx.gate: the candidate's value
--- of metric must reach min (with direction "lower": not exceed it) and be
--- worse than the baseline's value base by no more than max_drop (default
--- 0; no comparison without base). Fields: metric, value (nil or NaN: the
--- candidate has none), candidate (its name in messages), run (the run it
--- came from, said when it has no value), min, max_drop, direction
--- ("higher", the default, or "lower": which values are better), base,
--- baseline (its name). Returns true, "iris:4 accuracy = 0.93, iris:3 has
--- 0.92"; or false and why, with both numbers: "iris:4 accuracy = 0.85,
--- worse than iris:3's 0.92 by more than 0.01". Raises on misuse.
function M.gate_check(o)
  check_fields("gate_check", o, GATE_FIELDS)
  if not o.metric then misuse("gate_check: metric is required") end
  local direction = o.direction or "higher"
  if direction ~= "higher" and direction ~= "lower" then
    misuse("gate_check: direction must be \"higher\" or \"lower\", not %q", direction)
  end
  local function better_or_equal(a, b)
    if direction == "higher" then return a >= b end
    return a <= b
  end
  local name, value = o.candidate or "the candidate", o.value
  if value == nil or value ~= value then
    return false, ("%s has no %s metric (%s)"):format(name, o.metric, o.run and ("run " .. o.run) or "no run known")
  end
  local said = ("%s %s = %.6g"):format(name, o.metric, value)
  if o.min and not better_or_equal(value, o.min) then
    return false, ("%s, %s the minimum %g"):format(said, direction == "higher" and "below" or "above", o.min)
  end
  local base, max_drop = o.base, o.max_drop or 0
  if base and base == base then
    local limit = direction == "higher" and base - max_drop or base + max_drop
    if not better_or_equal(value, limit) then
      return false, ("%s, worse than %s's %.6g by more than %g"):format(said, o.baseline or "the baseline", base,
        max_drop)
    end
    said = ("%s, %s has %.6g"):format(said, o.baseline or "the baseline", base)
  end
  return true, said
end

-- ---- aliases --------------------------------------------------------------------------

local function registry_of(o)
  if o.registry then return o.registry end
  return require("mlx.registry").default()
end

local PROMOTE_FIELDS = { name = "string", from = "string", to = "string", gate = "function", registry = "table" }

--- Moves alias `to` of model name to the version alias `from` names, if
--- gate(candidate, current) returns true (no gate: always). candidate and
--- current (nil when `to` names nothing yet) are version records of
--- mlx.registry with metrics added (registry.metrics: the producing run's,
--- completed by its evaluation's). The move is recorded in the alias
--- history. Returns {name, alias, version, previous, moved, candidate,
--- current}; moved is false, and the gate not asked, when `to` already
--- names that version. Fails with nil, "iris:4 did not pass the gate: WHY",
--- "rejected"; or nil, message, "notfound" when `from` names nothing.
function M.promote(o)
  check_fields("promote", o, PROMOTE_FIELDS)
  if not (o.name and o.from and o.to) then misuse("promote: name, from and to are required") end
  local reg, err, code = registry_of(o)
  if not reg then return nil, err, code end
  local candidate
  candidate, err, code = reg:get(o.name .. "@" .. o.from)
  if not candidate then return nil, err, code end
  local current
  current, err, code = reg:get(o.name .. "@" .. o.to)
  if not current and code ~= "notfound" then return nil, err, code end
  if current and current.version == candidate.version then
    return { name = o.name, alias = o.to, version = candidate.version, previous = current.version, moved = false,
      candidate = candidate, current = current }
  end
  if o.gate then
    for _, v in ipairs({ candidate, current or false }) do
      if v then
        v.metrics, err, code = reg:metrics(v)
        if not v.metrics then return nil, err, code end
      end
    end
    local ok, why = o.gate(candidate, current)
    if not ok then
      return nil, ("%s did not pass the gate%s"):format(candidate.ref, why and (": " .. tostring(why)) or ""),
        "rejected"
    end
  end
  local moved
  moved, err, code = reg:set_alias(o.name, o.to, candidate.version)
  if not moved then return nil, err, code end
  moved.candidate, moved.current = candidate, current
  return moved
end

local ROLLBACK_FIELDS = { name = "string", alias = "string", registry = "table" }

--- Moves alias of model name back to the version it named before its
--- latest move (from the alias history; removed if it named none), and
--- records it. Returns {name, alias, version (nil: removed), previous};
--- nil, message, "notfound" when there is no earlier version.
function M.rollback(o)
  check_fields("rollback", o, ROLLBACK_FIELDS)
  if not (o.name and o.alias) then misuse("rollback: name and alias are required") end
  local reg, err, code = registry_of(o)
  if not reg then return nil, err, code end
  return reg:rollback(o.name, o.alias)
end

return M
