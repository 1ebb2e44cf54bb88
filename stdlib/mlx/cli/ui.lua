-- mlx ui: a local web page of the project's runs, experiments, metrics,
-- models and pipeline graph (mlx.web).
local ui = require "mlx.ui"

local LOOPBACK = { ["127.0.0.1"] = true, localhost = true, ["::1"] = true }

-- A URL for host and port: an IPv6 address goes in brackets.
local function url_of(host, port)
  if host:find(":") then host = "[" .. host .. "]" end
  return ("http://%s:%d/"):format(host, port)
end

return {
  summary = "serve a local web page of runs, experiments, metrics, models and the pipeline graph",
  usage = "mlx ui [--port N] [--host ADDRESS] [--open]",
  description = [[
Serves the project's runs on http://127.0.0.1:PORT/ until Ctrl-C: the
experiments table (params and metrics as columns; filter with the grammar
of 'mlx runs', sort, choose columns, select runs to compare), a run (params,
metrics with their curves, tags, inputs and outputs with hashes and the runs
that produced them, the log tail, timings and peak memory), compare
(curves overlaid, params and metrics side by side with deltas), models
(versions, aliases and their history, lineage) and the pipeline graph of
mlx.lock with each step's state. A running recipe's metrics update live.
The same data is a read-only JSON API under /api/ (see docs/ui.md).
Charts use Chart.js from Debian's libjs-chart.js and the graph Graphviz's
dot, when installed; without them the page shows tables and text.
It binds 127.0.0.1 unless --host says otherwise; a request naming a host
other than localhost, an IP address or the --host given is refused (DNS
rebinding). A port in use exits 2.]],
  options = {
    { "port", arg = "N", type = "integer", default = 8470, help = "the port to listen on (0: any free one; default 8470)" },
    { "host", arg = "ADDRESS", help = "the address to listen on (default 127.0.0.1: this machine only)" },
    { "open", help = "open the page in the desktop's browser (xdg-open)" },
  },
  args = { max = 0 },
  main = function(opts)
    if opts.port < 0 or opts.port > 65535 then
      ui.usage_error("--port must be from 0 to 65535, not %d", opts.port)
    end
    local host = opts.host or "127.0.0.1"
    if not host:match("^[%w.:%-]+$") then
      ui.usage_error("--host '%s' is not an address or host name", host)
    end
    local root = require("mlx.project").require_root()
    local web = require "mlx.web"
    local server, err, code = web.listen { host = host, port = opts.port }
    if not server then
      if code == "io" or code == "invalid" then
        ui.usage_error("%s%s", err, opts.port ~= 0 and " (choose another with --port N, or --port 0)" or "")
      end
      ui.fail(ui.EXIT.FAILED, "%s", err)
    end
    local url = url_of(host, server:port())
    if LOOPBACK[host] then
      ui.note(("serving %s (only this machine can connect; Ctrl-C stops)"):format(url))
    else
      ui.warn(("serving %s on %s: anyone who can reach this address can read the runs"):format(url, host))
    end
    -- stdout carries the URL alone, for scripts that start mlx ui.
    io.stdout:write(url, "\n")
    io.stdout:flush()
    if opts.open then
      local proc = require "mlx.proc"
      -- setsid -f: the browser is the user's, in a session of its own,
      -- not a child that mlx stops when it exits.
      if not os.execute("setsid -f xdg-open " .. proc.quote(url) .. " >/dev/null 2>&1") then
        ui.warn("could not run xdg-open; open " .. url .. " yourself")
      end
    end
    web.serve(server, web.app { root = root, host = host, log = function(line) ui.warn(line) end })
  end,
}
