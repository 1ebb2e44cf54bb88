--- mlx.track.migrate: copies a project's SQLite tracking database (runs,
--- params, metrics, tags, artifacts, the registry and its history) into a
--- PostgreSQL one (`mlx tracking migrate`).
---
--- Idempotent: rows are keyed as in the schema (a run by its id, a metric
--- point by run, key and step …), and a row already in the target is left
--- as it is, so a second migration copies nothing and an interrupted one
--- can be run again. Every table is copied through a temporary staging
--- table (COPY, then INSERT … ON CONFLICT DO NOTHING), all in one
--- transaction; then the counts are checked: every source row must be in
--- the target, else nothing is committed.
local rundb = require "mlx.rundb"

local M = {}

--- The tables in the order they are copied, with their columns and keys.
M.TABLES = {
  { name = "runs", key = { "id" }, columns = { "id", "parent_id", "recipe", "recipe_hash", "step", "step_key",
    "status", "message", "start_time", "end_time", "exit_code", "signal", "git_commit", "git_branch", "git_dirty",
    "host", "user", "pid", "proc_start", "command", "log_path", "cpu_seconds", "wall_seconds", "peak_rss", "pgid",
    "pgid_start" } },
  { name = "params", key = { "run_id", "key" }, columns = { "run_id", "key", "value", "num" } },
  { name = "tags", key = { "run_id", "key" }, columns = { "run_id", "key", "value" } },
  { name = "metrics", key = { "run_id", "key", "step" }, columns = { "run_id", "key", "step", "ts", "value" } },
  { name = "latest_metrics", key = { "run_id", "key" }, columns = { "run_id", "key", "step", "ts", "value" } },
  { name = "artifacts", key = { "run_id", "role", "path" },
    columns = { "run_id", "role", "path", "hash", "size", "nfiles" } },
  { name = "models", key = { "name" }, columns = { "name", "created" } },
  { name = "model_versions", key = { "name", "version" }, columns = { "name", "version", "artifact_hash", "type",
    "size", "files", "mode", "path", "run_id", "created", "description" } },
  { name = "model_version_tags", key = { "name", "version", "key" }, columns = { "name", "version", "key", "value" } },
  { name = "model_aliases", key = { "name", "alias" }, columns = { "name", "alias", "version", "updated" } },
  { name = "model_alias_history", key = { "id" }, columns = { "id", "name", "alias", "action", "version", "previous",
    "reverts", "time", "user", "run_id" } },
}

local function quoted(columns)
  local out = {}
  for i, c in ipairs(columns) do out[i] = '"' .. c .. '"' end
  return table.concat(out, ", ")
end

local function copy_field(v)
  if v == nil then return "\\N" end
  if math.type(v) == "float" then
    if v ~= v then return "\\N" end
    if v == math.huge then return "Infinity" end
    if v == -math.huge then return "-Infinity" end
    return ("%.17g"):format(v)
  end
  return (tostring(v):gsub("[\\\t\n\r]", { ["\\"] = "\\\\", ["\t"] = "\\t", ["\n"] = "\\n", ["\r"] = "\\r" }))
end

-- Reads the source table in pages (by its key, so memory stays bounded)
-- and sends each page to the staging table. Returns the number of rows.
local function stage(src, conn, t)
  local cols, key = quoted(t.columns), quoted(t.key)
  local n, last = 0, nil
  local page = 20000
  while true do
    local where, params = "", {}
    if last then
      -- Keyset paging: rows after the last key seen, in key order.
      local marks = {}
      for i, k in ipairs(t.key) do
        marks[i] = "?"
        params[i] = last[k]
      end
      where = " WHERE (" .. key .. ") > (" .. table.concat(marks, ", ") .. ")"
    end
    params[#params + 1] = page
    local rows, err, code = src:query("SELECT " .. cols .. " FROM " .. t.name .. where .. " ORDER BY " .. key
      .. " LIMIT ?", params)
    if not rows then return nil, err, code end
    if #rows == 0 then break end
    local lines = {}
    for i, row in ipairs(rows) do
      local fields = {}
      for j, c in ipairs(t.columns) do fields[j] = copy_field(row[c]) end
      lines[i] = table.concat(fields, "\t") .. "\n"
    end
    local ok
    ok, err, code = conn:copy("COPY pg_temp.stage_" .. t.name .. " (" .. cols .. ") FROM STDIN", table.concat(lines))
    if not ok then return nil, err, code end
    n = n + #rows
    last = rows[#rows]
    if #rows < page then break end
  end
  return n
end

--- Copies the SQLite database at path into db, an open mlx.track.pg
--- database (its project's schema). Returns {table = {source, copied}…}
--- in M.TABLES order as a list of {name, source, copied}; or nil, message,
--- code — nothing is written then.
function M.run(path, db)
  local src, err, code = rundb.open(path, { read_only = true, reap = false })
  if not src then return nil, err, code end
  local conn = db.conn
  local report = {}
  local ok
  ok, err, code = conn:exec("BEGIN")
  if not ok then
    src:close()
    return nil, err, code
  end
  local function fail(e, c)
    conn:exec("ROLLBACK")
    src:close()
    return nil, e, c
  end
  for _, t in ipairs(M.TABLES) do
    ok, err, code = conn:exec("CREATE TEMP TABLE stage_" .. t.name .. " (LIKE " .. t.name .. ") ON COMMIT DROP")
    if not ok then return fail(err, code) end
    local n
    n, err, code = stage(src, conn, t)
    if not n then return fail(err, code) end
    local copied
    copied, err, code = conn:exec("INSERT INTO " .. t.name .. " (" .. quoted(t.columns) .. ") OVERRIDING SYSTEM VALUE"
      .. " SELECT " .. quoted(t.columns) .. " FROM pg_temp.stage_" .. t.name .. " ON CONFLICT DO NOTHING")
    if not copied then return fail(err, code) end
    -- The check: every source row is in the target now, by its key.
    local on = {}
    for i, k in ipairs(t.key) do on[i] = ('s."%s" = t."%s"'):format(k, k) end
    local rows
    rows, err, code = conn:query("SELECT count(*) AS n FROM pg_temp.stage_" .. t.name .. " s JOIN " .. t.name
      .. " t ON " .. table.concat(on, " AND "))
    if not rows then return fail(err, code) end
    if rows[1].n ~= n then
      return fail(("table %s: %d rows in the source, %d of them in the target after copying"):format(t.name, n,
        rows[1].n), "io")
    end
    report[#report + 1] = { name = t.name, source = n, copied = copied }
  end
  -- New alias changes must number after the copied ones.
  ok, err, code = conn:query("SELECT setval(pg_get_serial_sequence('model_alias_history', 'id'),"
    .. " greatest((SELECT max(id) FROM model_alias_history), 1))")
  if not ok then return fail(err, code) end
  ok, err, code = conn:exec("COMMIT")
  if not ok then return fail(err, code) end
  src:close()
  return report
end

return M
