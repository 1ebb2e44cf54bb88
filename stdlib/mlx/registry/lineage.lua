--- mlx.registry.lineage: where a model version came from and how it
--- measured, from the runs database. Runs record the artifacts they read
--- ("in") and wrote ("out") with their hashes, so the run that produced an
--- object is the one that wrote its hash, and the runs that evaluated it
--- are those that read it. The functions take an mlx.track store.
local M = {}

-- How far upstream inputs are followed (data → split → train is 2).
local MAX_DEPTH = 8

local GOOD = "('FINISHED', 'RUNNING', 'CACHED')"

--- Returns the id of the newest run that recorded the object hash as an
--- output and did not fail (one restored from cache only if no other did),
--- or nil.
function M.producer(runs, hash)
  local rows = runs.db:query("SELECT a.run_id FROM artifacts a JOIN runs r ON r.id = a.run_id"
    .. " WHERE a.hash = ?1 AND a.role = 'out' AND r.status IN " .. GOOD
    .. " ORDER BY r.status = 'CACHED', r.start_time DESC, r.id DESC LIMIT 1", { hash })
  return rows and rows[1] and rows[1].run_id
end

-- The inputs of run id, each with the run that produced it and its
-- inputs, upstream; an object is followed once.
local function inputs_of(runs, id, depth, seen)
  local rows, err, code = runs.db:query("SELECT path, hash, size, nfiles FROM artifacts"
    .. " WHERE run_id = ? AND role = 'in' ORDER BY path", { id })
  if not rows then return nil, err, code end
  for _, input in ipairs(rows) do
    if input.hash and depth < MAX_DEPTH and not seen[input.hash] then
      seen[input.hash] = true
      local from = M.producer(runs, input.hash)
      if from and from ~= id then
        local run = runs:get(from)
        if run then
          local upstream
          upstream, err, code = inputs_of(runs, from, depth + 1, seen)
          if not upstream then return nil, err, code end
          input.producer = { run = run, inputs = upstream }
        end
      end
    end
  end
  return rows
end

local function nan_if_nil(v)
  if v == nil then return 0 / 0 end
  return v
end

--- Returns the metrics of version record v and where each came from: the
--- latest metrics of v.run, completed (for keys it lacks) by those of the
--- finished runs that read v's object, newest first. Returns metrics
--- ({key = value}), from ({key = run id}); or nil, message, code.
function M.metrics(runs, v)
  local ids = {}
  if v.run then ids[1] = v.run end
  local rows, err, code = runs.db:query("SELECT a.run_id, max(r.start_time) AS start FROM artifacts a"
    .. " JOIN runs r ON r.id = a.run_id WHERE a.hash = ? AND a.role = 'in'"
    .. " AND r.status IN ('FINISHED', 'CACHED') GROUP BY a.run_id ORDER BY start DESC, a.run_id DESC", { v.hash })
  if not rows then return nil, err, code end
  for _, row in ipairs(rows) do
    if row.run_id ~= v.run then ids[#ids + 1] = row.run_id end
  end
  local metrics, from = {}, {}
  for _, id in ipairs(ids) do
    rows, err, code = runs.db:query("SELECT key, value FROM latest_metrics WHERE run_id = ?", { id })
    if not rows then return nil, err, code end
    for _, row in ipairs(rows) do
      if from[row.key] == nil then
        metrics[row.key], from[row.key] = nan_if_nil(row.value), id
      end
    end
  end
  return metrics, from
end

--- Returns the lineage of version record v: {version = v, run (the record
--- of the run that produced it, as mlx.track's get; nil if unknown or no
--- longer in the database), recipe_run (the recipe run that run was a step
--- of), inputs (what the run read: {path, hash, size, nfiles, producer =
--- {run, inputs}}, upstream as far as runs recorded it), metrics,
--- metrics_from (see M.metrics)}; or nil, message, code.
function M.of(runs, v)
  local out = { version = v, inputs = {} }
  local err, code
  if v.run then
    local run
    run, err, code = runs:get(v.run)
    if not run and code ~= "notfound" then return nil, err, code end
    if run then
      out.run = run
      if run.parent then out.recipe_run = runs:get(run.parent) end
      out.inputs, err, code = inputs_of(runs, run.id, 1, { [v.hash] = true })
      if not out.inputs then return nil, err, code end
    end
  end
  local metrics, from, mcode = M.metrics(runs, v)
  if not metrics then return nil, from, mcode end
  out.metrics, out.metrics_from = metrics, from
  return out
end

return M
