--- mlx.web: the server of `mlx ui` — a local, read-only web page of the
--- project's runs, experiments, metrics, models and pipeline graph, and the
--- JSON API under /api/ that the page and scripts use (mlx.web.api).
---
---     local web = require "mlx.web"
---     local server = assert(web.listen { host = "127.0.0.1", port = 0 })
---     web.serve(server, web.app { root = project_root })
---
--- What a request may do is decided here: only GET and HEAD (the C server
--- answers any other method 405); only the embedded page files, Chart.js
--- from its Debian path and /api/ routes are served, so no path outside
--- them can be named; a Host header that is not this machine or the --host
--- given is refused (a DNS-rebinding page would name its own host); no
--- header grants another origin access (no CORS).
local core = require "mlx.core"

local M = {}

--- Where Debian's libjs-chart.js installs Chart.js; MLX_WEB_CHARTJS
--- overrides it (the tests name a missing file to see the page without it).
M.CHARTJS = "/usr/share/javascript/chart.js/chart.min.js"

local TYPES = {
  html = "text/html; charset=utf-8",
  css = "text/css; charset=utf-8",
  js = "text/javascript; charset=utf-8",
  json = "application/json",
  svg = "image/svg+xml",
  text = "text/plain; charset=utf-8",
}
M.TYPES = TYPES

-- Sent with every response. The page runs only its own scripts (no inline
-- script, so a string that slipped into markup could not run either), is
-- never framed, and nothing is sniffed as another type.
local HEADERS = {
  ["Content-Security-Policy"] = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self';"
    .. " connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  ["X-Content-Type-Options"] = "nosniff",
  ["X-Frame-Options"] = "DENY",
  ["Referrer-Policy"] = "no-referrer",
  ["Cache-Control"] = "no-store",
}

-- The page's files: the names the embedded table holds (web/).
local ASSETS = { ["/"] = "index.html", ["/index.html"] = "index.html", ["/app.js"] = "app.js",
  ["/app.css"] = "app.css" }

--- Returns the host part of a Host header value ("localhost:8080" →
--- "localhost", "[::1]:8080" → "::1"), lowercased; nil if it is malformed.
function M.host_name(header)
  if type(header) ~= "string" then return nil end
  header = header:lower()
  local v6 = header:match("^%[([%x:.]+)%]:?%d*$")
  if v6 then return v6 end
  local name = header:match("^([%w.%-]+):?%d*$")
  return name
end

--- Returns true if a request with Host header value host may be answered by
--- a server bound to bound (the --host given): localhost, an IP address
--- (127.0.0.1, [::1], or the machine's address when bound to 0.0.0.0) and
--- bound itself. A rebinding attack reaches the server under a DNS name of
--- its own, which is refused; a page loaded from an IP address is of the
--- server's own origin.
function M.host_allowed(host, bound)
  local name = M.host_name(host)
  if not name then return false end
  if name == "localhost" or name:find(":") or name:match("^%d+%.%d+%.%d+%.%d+$") then return true end
  bound = bound and bound:lower():gsub("^%[(.*)%]$", "%1")
  return bound ~= nil and name == bound
end

local function with_headers(extra)
  local h = {}
  for k, v in pairs(HEADERS) do h[k] = v end
  for k, v in pairs(extra or {}) do h[k] = v end
  return h
end

local function text_reply(status, message)
  return status, TYPES.text, message .. "\n", with_headers()
end

--- Returns a request handler for the project at options.root (absolute):
--- a function(request) → status, content type, body, headers, as
--- mlx.httpd's server:serve calls it. options: root, host (the --host
--- given, also accepted in Host headers), chartjs (path of Chart.js;
--- default M.CHARTJS or MLX_WEB_CHARTJS), dot (the dot program or false;
--- default "dot" when found on PATH), store (an mlx.track store; default
--- the project's), log (function(line) called with one line per request
--- that failed, for the terminal).
function M.app(options)
  assert(type(options) == "table" and type(options.root) == "string", "mlx.web.app: expected {root = PATH}")
  local httpd = require "mlx.httpd"
  local api = require "mlx.web.api"
  local ctx = api.context(options)
  local chartjs_path = options.chartjs or os.getenv("MLX_WEB_CHARTJS") or M.CHARTJS
  local chartjs -- read once, on the first request for it
  return function(req)
    if not M.host_allowed(req.host, options.host) then
      return text_reply(421, ("host '%s' is not served here: open the page by IP address or as localhost,"
        .. " or name the host with mlx ui --host (the Host header is checked against DNS rebinding)")
        :format(tostring(req.host)))
    end
    local path = req.path
    local asset = ASSETS[path]
    if asset then
      local body = httpd.asset(asset)
      return 200, TYPES[asset:match("%.(%w+)$")], body, with_headers()
    end
    if path == "/vendor/chart.min.js" then
      if chartjs == nil then
        local f = io.open(chartjs_path, "rb")
        chartjs = f and f:read("a") or false
        if f then f:close() end
      end
      if not chartjs then
        return text_reply(404, "Chart.js is not installed (" .. chartjs_path .. "): apt-get install libjs-chart.js")
      end
      return 200, TYPES.js, chartjs, with_headers()
    end
    if path:sub(1, 5) == "/api/" then
      local ok, status, ctype, body = pcall(api.handle, ctx, path, req.query or {})
      if not ok then
        -- Ctrl-C during a request ends mlx ui, as it ends any wait.
        if core.interrupted() then error("interrupted", 0) end
        local line = tostring(status):match("^[^\n]*")
        if options.log then options.log(("%s: %s"):format(path, line)) end
        return text_reply(500, "internal error: " .. line)
      end
      return status, TYPES[ctype] or ctype, body, with_headers()
    end
    return text_reply(404, "not found: only the page's files and /api/ are served")
  end
end

--- Listens on options.host (default "127.0.0.1") and options.port
--- (default 0: any free port). Returns the server (server:port(),
--- server:close()) or nil, message, code (a port in use: "io").
function M.listen(options)
  options = options or {}
  return require("mlx.httpd").listen { host = options.host or "127.0.0.1", port = options.port or 0 }
end

--- Answers requests with handler until mlx is interrupted (SIGINT or
--- SIGTERM), which raises "interrupted" as any wait in mlx does. Returns
--- only by raising.
function M.serve(server, handler)
  while not core.interrupted() do
    assert(server:serve(1, handler))
  end
  error("interrupted", 0)
end

return M
