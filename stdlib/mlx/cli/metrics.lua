-- mlx metrics: the metrics of a run, or the history of one.
local ui = require "mlx.ui"

local check = ui.check

local function finite_or_null(json, v)
  if v ~= v or v == math.huge or v == -math.huge then return json.null end
  return v
end

return {
  summary = "show a run's metrics, or the history of one metric",
  usage = "mlx metrics ID [KEY] [--json]",
  description = [[
Without KEY: each metric of the run ID (any unique prefix of a run id) with
its latest value and step, number of points, minimum and maximum. With KEY:
every point of that metric, by step, with the time it was logged. An
unknown or malformed ID, or an unknown KEY, exits 2.]],
  options = {
    { "json", help = "print JSON: [{key, value, step, ts, count, min, max}…] or [{step, ts, value}…]" },
  },
  args = { min = 1, max = 2, name = "a run ID" },
  main = function(opts, args)
    local track = require "mlx.track"
    local store = ui.check_file(track.store())
    local view = require "mlx.track.view"
    local json = opts.json and require "mlx.json"
    local id = check(store:resolve(args[1]))
    local key = args[2]
    if not key then
      local rows = check(store:metric_summary(id))
      if json then
        local out = json.array()
        for i, m in ipairs(rows) do
          out[i] = { key = m.key, value = finite_or_null(json, m.value), step = m.step, ts = m.ts, count = m.count,
            min = m.min, max = m.max }
        end
        io.stdout:write(json.encode(out, { indent = 2 }), "\n")
      elseif #rows == 0 then
        ui.note(("run %s has no metrics"):format(id))
      else
        local lines = {}
        for i, m in ipairs(rows) do
          lines[i] = { m.key, view.number(m.value), tostring(m.step), tostring(m.count), view.number(m.min), view.number(m.max) }
        end
        for _, line in ipairs(view.table({ "KEY", "LATEST", "STEP", "COUNT", "MIN", "MAX" }, lines,
          { [2] = true, [3] = true, [4] = true, [5] = true, [6] = true })) do
          ui.out(line)
        end
      end
      return ui.EXIT.OK
    end
    local points = check(store:metric_history(id, key))
    if #points == 0 then ui.usage_error("run %s has no metric '%s' (see 'mlx metrics %s')", id, key, args[1]) end
    if json then
      local out = json.array()
      for i, p in ipairs(points) do out[i] = { step = p.step, ts = p.ts, value = finite_or_null(json, p.value) } end
      io.stdout:write(json.encode(out, { indent = 2 }), "\n")
    else
      local lines = {}
      for i, p in ipairs(points) do lines[i] = { tostring(p.step), view.time(p.ts), view.number(p.value) } end
      for _, line in ipairs(view.table({ "STEP", "TIME", key }, lines, { [1] = true, [3] = true })) do ui.out(line) end
    end
    return ui.EXIT.OK
  end,
}
