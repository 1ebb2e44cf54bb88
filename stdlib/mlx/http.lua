--- mlx.http: HTTP for recipes — health checks, JSON APIs, uploads and
--- downloads of models — over libcurl (the C module mlx.curl).
---
---     local http = require "mlx.http"
---     local res = assert(http.get("http://localhost:8080/health", { retries = 10, expect = 200 }))
---     local out = assert(http.post(url, { json = { model = "v3" }, expect = { 200, 201 } })):json()
---
--- Two kinds of failure, as everywhere in mlx: a *transport* failure (no
--- response: DNS, refused, TLS, timeout, …) returns `nil, message, code`; an
--- HTTP error is a response with its status, unless the request says which
--- statuses it `expect`s, in which case any other returns
--- `nil, message, "http", response`. docs/http.md lists the codes.
---
--- Every request of a process goes through one libcurl handle, so requests
--- to the same host reuse one kept-alive connection.
local core = require "mlx.core"

local M = {}

-- mlx.curl, loaded at the first request: requiring mlx.http costs no
-- libcurl, so the CLI can set the defaults of a run that may never use it.
local curl_module
local function curl()
  curl_module = curl_module or require "mlx.curl"
  return curl_module
end

--- libcurl's version string.
function M.version()
  return curl().version()
end

--- The transport failures worth another attempt: the service may be
--- starting, restarting or briefly overloaded. TLS and URL errors are not.
M.RETRY_CODES = { dns = true, refused = true, connect = true, timeout = true, connection = true }

local DEFAULTS = {
  connect_timeout = 10,
  timeout = 0,
  retries = 0,
  backoff = 0.5,
  backoff_max = 60,
  max_redirects = 10,
  verbose = false,
}

local FIELDS = {
  method = "string", url = "string", headers = "table", query = "table",
  body = "string", body_file = "string", json = "any", out_file = "string",
  sha256 = "string", timeout = "number", connect_timeout = "number",
  retries = "number", backoff = "number", backoff_max = "number",
  expect = "any", follow = "boolean", max_redirects = "number",
  insecure = "boolean", ca_file = "string", on_retry = "function", verbose = "boolean",
}

local client -- created on first use; kept for the life of the Lua state

local function get_client()
  if not client then
    local c, err = curl().client()
    if not c then error("mlx.http: " .. err, 0) end
    client = c
  end
  return client
end

--- Returns url (or any text) with its secrets hidden — user name and
--- password, and the values of secret query parameters ("?token=***"): the
--- form used in every message, so credentials in a URL are never shown.
--- The names are mlx.redact's (a documented list, plus the project's).
M.redact = require("mlx.redact").text

-- Misuse found while preparing a request is raised as a table and re-raised
-- by request() at the caller's line.
local function misuse(fmt, ...)
  error({ misuse = fmt:format(...) })
end

local function escape(s)
  return (s:gsub("[^%w%-._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

local function query_value(key, v)
  local t = type(v)
  if t == "string" then return v end
  if t == "number" then return core.number_text(v) end
  if t == "boolean" then return tostring(v) end
  misuse("query value for '%s' must be a string, number or boolean, not a %s", key, t)
end

-- The percent-encoded query string of t ({k = v}, or {k = {v1, v2}} for a
-- repeated key), keys sorted so that the same table gives the same URL.
local function encode_query(t)
  local keys = {}
  for k in pairs(t) do
    if type(k) ~= "string" then misuse("query keys must be strings") end
    keys[#keys + 1] = k
  end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    local v = t[k]
    local values = type(v) == "table" and v or { v }
    for _, item in ipairs(values) do
      parts[#parts + 1] = escape(k) .. "=" .. escape(query_value(k, item))
    end
  end
  return table.concat(parts, "&")
end

local function header_lines(headers)
  local lines, present, names = {}, {}, {}
  for name in pairs(headers or {}) do
    if type(name) ~= "string" or not name:match("^[!#$%%&'*+.^_`|~%w-]+$") then
      misuse("bad header name %q", tostring(name))
    end
    names[#names + 1] = name
  end
  table.sort(names)
  for _, name in ipairs(names) do
    local value = headers[name]
    if type(value) == "number" then value = tostring(value) end
    -- The value is never shown: it may be a token.
    if type(value) ~= "string" or value:find("[\r\n%z]") then
      misuse("header '%s' must be a string without line breaks", name)
    end
    present[name:lower()] = true
    -- "Name;" is libcurl's way to send a header with an empty value.
    lines[#lines + 1] = value == "" and (name .. ";") or (name .. ": " .. value)
  end
  return lines, present
end

local function check_fields(opts)
  for k, v in pairs(opts) do
    local want = FIELDS[k]
    if not want then misuse("unknown request field '%s'", tostring(k)) end
    if want ~= "any" and type(v) ~= want then
      misuse("request field '%s' must be a %s, not a %s", k, want, type(v))
    end
  end
  if not opts.url then misuse("request needs a url") end
  local bodies = (opts.body and 1 or 0) + (opts.body_file and 1 or 0) + (opts.json ~= nil and 1 or 0)
  if bodies > 1 then misuse("give at most one of body, body_file and json") end
  if opts.sha256 and not (#opts.sha256 == 64 and opts.sha256:match("^%x+$")) then
    misuse("sha256 must be 64 hex digits")
  end
  local function status_code(v) return math.type(v) == "integer" or (math.type(v) == "float" and math.tointeger(v)) end
  local expect = opts.expect
  if expect ~= nil and not status_code(expect) then
    local ok = type(expect) == "table" and #expect > 0
    for _, s in ipairs(type(expect) == "table" and expect or {}) do ok = ok and status_code(s) end
    if not ok then misuse("expect must be a status code or a list of them") end
  end
  for _, k in ipairs({ "timeout", "connect_timeout", "retries", "backoff", "backoff_max", "max_redirects" }) do
    if opts[k] and not (opts[k] >= 0) then misuse("request field '%s' must be >= 0", k) end
  end
end

local function expected(expect, status)
  if expect == nil then return true end
  if type(expect) ~= "table" then return status == expect end
  for _, s in ipairs(expect) do
    if s == status then return true end
  end
  return false
end

local function retry_after(res)
  local value = res.headers["retry-after"]
  if not value then return nil end
  local seconds = tonumber(value:match("^%s*(%d+)%s*$"))
  if seconds then return seconds end
  local date = curl().parse_date(value)
  return date and math.max(0, date - os.time()) or nil
end

local function retryable_status(status)
  return status == 429 or (status >= 500 and status <= 599)
end

--- The delay before retry number n (1-based): exponential from backoff,
--- capped at backoff_max, with jitter (a random half to all of it) so that
--- many clients do not retry in step; a Retry-After wins, within the cap.
local function delay_before(n, o, res)
  local after = res and retry_after(res)
  if after then return math.min(after, o.backoff_max) end
  local delay = math.min(o.backoff * 2 ^ (n - 1), o.backoff_max)
  return delay * (0.5 + 0.5 * math.random())
end

local Response = {}
Response.__index = Response

--- response:json() -> the body decoded as JSON | nil, message, "invalid"
function Response:json()
  if self.body == nil then
    return nil, ("%s: the body was written to %s, not kept"):format(M.redact(self.url), self.path), "invalid"
  end
  local value, err = require("mlx.json").decode(self.body)
  if value == nil and err then
    return nil, ("%s: response is not JSON: %s"):format(M.redact(self.url), err), "invalid"
  end
  return value
end

local function prepare(opts)
  check_fields(opts)
  local o = {}
  for k, v in pairs(DEFAULTS) do o[k] = v end
  for k, v in pairs(opts) do o[k] = v end
  o.method = o.method and o.method:upper() or "GET"
  if not o.method:match("^[A-Z]+$") then misuse("bad method %q", o.method) end
  local url = o.url
  if o.query and next(o.query) then
    local q = encode_query(o.query)
    url = url:find("?", 1, true) and (url .. "&" .. q) or (url .. "?" .. q)
  end
  local lines, present = header_lines(o.headers)
  local body = o.body
  if o.json ~= nil then
    local ok, text = pcall(require("mlx.json").encode, o.json)
    if not ok then misuse("json: %s", tostring(text)) end
    body = text
    if not present["content-type"] then lines[#lines + 1] = "Content-Type: application/json" end
  elseif o.body_file and not present["content-type"] then
    lines[#lines + 1] = "Content-Type: application/octet-stream"
  end
  o.name = o.method .. " " .. M.redact(url)
  o.request = {
    method = o.method, url = url, headers = lines, body = body, body_file = o.body_file,
    out_file = o.out_file, sha256 = o.out_file and o.sha256 or nil,
    user_agent = "mlx/" .. core.version, ca_file = o.ca_file, insecure = o.insecure,
    timeout = o.timeout, connect_timeout = o.connect_timeout,
    max_redirects = o.follow == false and 0 or math.floor(o.max_redirects),
  }
  return o
end

-- Checks a 2xx body kept in memory against sha256, as the C side does for
-- out_file.
local function check_body_digest(o, res)
  if not o.sha256 or o.out_file or res.status < 200 or res.status > 299 then return true end
  local got = require("mlx.hash").bytes(res.body)
  if got == o.sha256:lower() then return true end
  return nil, ("response body does not match its sha256: expected %s, got %s"):format(o.sha256:lower(), got)
end

local function send(opts)
  local ok, o = pcall(prepare, opts)
  if not ok then
    if type(o) == "table" and o.misuse then error("mlx.http: " .. o.misuse, 3) end
    error(o, 0)
  end
  local http = get_client()
  local attempts = math.floor(o.retries) + 1
  local res, err, code, extra
  local attempt = 0
  repeat
    attempt = attempt + 1
    res, err, code, extra = http:perform(o.request)
    local retry
    if res then
      res.attempts = attempt
      -- A status the caller expects is an answer, even a 503.
      retry = retryable_status(res.status) and not (o.expect ~= nil and expected(o.expect, res.status))
    else
      retry = M.RETRY_CODES[code]
    end
    if not retry or attempt == attempts then break end
    local delay = delay_before(attempt, o, res)
    if o.on_retry then
      o.on_retry { attempt = attempt, delay = delay, status = res and res.status,
        error = not res and M.redact(err) or nil, code = code }
    end
    if o.verbose then
      local why = res and ("%d %s"):format(res.status, res.reason) or M.redact(err)
      require("mlx.ui").note(("%s: %s; retry %d of %d in %.1f s"):format(o.name, why, attempt, attempts - 1, delay))
    end
    core.sleep(delay) -- Ctrl-C ends it, and raises at once
  until false
  local tries = attempt > 1 and (" (%d attempts)"):format(attempt) or ""
  if not res then
    if extra then -- the download arrived but is not what was asked for
      setmetatable(extra, Response)
      extra.path, extra.attempts = o.out_file, attempt
    end
    -- libcurl's own detail may quote the URL: the whole line is redacted.
    return nil, M.redact(("%s: %s%s"):format(o.name, err, tries)), code, extra
  end
  setmetatable(res, Response)
  res.path = o.out_file
  if not expected(o.expect, res.status) then
    local want = type(o.expect) == "table" and table.concat(o.expect, " or ") or tostring(o.expect)
    return nil, ("%s: expected status %s, got %d%s%s"):format(o.name, want, res.status,
      res.reason ~= "" and (" " .. res.reason) or "", tries), "http", res
  end
  local digest_ok, digest_err = check_body_digest(o, res)
  if not digest_ok then return nil, ("%s: %s"):format(o.name, digest_err), "corrupt", res end
  return res
end

--- Sets the defaults of every later request of this process, for the
--- fields that have one: connect_timeout, timeout, retries, backoff,
--- backoff_max, max_redirects and verbose (the mlx CLI sets verbose under
--- -v). A request's own fields still win. Raises on any other field or a
--- wrong type.
function M.set_defaults(fields)
  if type(fields) ~= "table" then error("mlx.http.set_defaults: expected a table of request fields", 2) end
  for k, v in pairs(fields) do
    if DEFAULTS[k] == nil then
      error(("mlx.http.set_defaults: '%s' has no default (one of: connect_timeout, timeout, retries, " ..
        "backoff, backoff_max, max_redirects, verbose)"):format(tostring(k)), 2)
    end
    if type(v) ~= FIELDS[k] then
      error(("mlx.http.set_defaults: field '%s' must be a %s, not a %s"):format(k, FIELDS[k], type(v)), 2)
    end
    if type(v) == "number" and not (v >= 0) then
      error(("mlx.http.set_defaults: field '%s' must be >= 0"):format(k), 2)
    end
  end
  for k, v in pairs(fields) do DEFAULTS[k] = v end
end

--- Sends a request and returns a response `{status, reason, headers, body,
--- url, time, size, attempts, path, sha256}` with a `json()` method; with
--- out_file the body is not kept: `path` and `sha256` say where it went.
--- Returns `nil, message, code` if no response arrived (code: "dns",
--- "refused", "connect", "tls", "timeout", "connection", "redirects",
--- "invalid", "notfound", "io", "corrupt", "interrupted"), or
--- `nil, message, "http", response` when the status is not one of `expect`.
--- Raises on misuse (an unknown field, a wrong type). Fields: docs/http.md.
function M.request(opts)
  if type(opts) ~= "table" then error("mlx.http.request: expected a table of request fields", 2) end
  local res, err, code, extra = send(opts)
  return res, err, code, extra
end

local function helper(method)
  return function(url, opts)
    if type(url) ~= "string" then error(("mlx.http.%s: url must be a string"):format(method:lower()), 2) end
    local o = {}
    for k, v in pairs(opts or {}) do
      if k == "url" or k == "method" then
        error(("mlx.http.%s: '%s' is given by the call, not in the options"):format(method:lower(), k), 2)
      end
      o[k] = v
    end
    o.url, o.method = url, method
    local res, err, code, extra = send(o)
    return res, err, code, extra
  end
end

--- get(url[, opts]) -> as request{method = "GET", url = url, …opts}.
M.get = helper("GET")
--- post(url[, opts]) -> as request{method = "POST", url = url, …opts}.
M.post = helper("POST")
--- put(url[, opts]) -> as request{method = "PUT", url = url, …opts}.
M.put = helper("PUT")
--- delete(url[, opts]) -> as request{method = "DELETE", url = url, …opts}.
M.delete = helper("DELETE")

return M
