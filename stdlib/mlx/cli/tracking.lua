-- mlx tracking: the tracking database — moving a project's runs and
-- registry from SQLite to a shared PostgreSQL database.
local ui = require "mlx.ui"

local function migrate(opts, args)
  local track = require "mlx.track"
  local uri = args[1]
  if not track.is_postgresql(uri) then
    ui.usage_error("mlx tracking migrate: %s is not a PostgreSQL URI (postgresql://…)", require("mlx.redact").text(uri))
  end
  local root = require("mlx.project").require_root()
  local t = ui.check_file(track.tracking(root))
  local from = opts.from or track.database_path(root)
  if not require("mlx.fs").stat(from) then ui.usage_error("no SQLite tracking database at %s", from) end
  local shown = require("mlx.redact").text(uri)
  local store = ui.check_file(track.open_postgresql(uri, { project = t.project, password = t.password,
    shown = shown, reap = false }))
  local report, err, code = require("mlx.track.migrate").run(from, store.db)
  store:close()
  ui.check(report, err, code)
  local copied, total = 0, 0
  for _, r in ipairs(report) do
    ui.out(("%-20s %8d rows, %8d copied, %8d there already"):format(r.name, r.source, r.copied, r.source - r.copied))
    copied, total = copied + r.copied, total + r.source
  end
  ui.out(("migrated %s to %s (project %s): %d rows copied, %d there already; every row checked")
    :format(from, shown, t.project or "default", copied, total - copied))
  return ui.EXIT.OK
end

return {
  summary = "the tracking database: migrate a project's runs to PostgreSQL",
  usage = "mlx tracking migrate URI [--from PATH]",
  description = [[
The tracking database holds runs, metrics and the model registry: SQLite in
.mlx/runs.db by default, or a shared PostgreSQL database named by
`tracking = "postgresql://…"` in .mlx/config.lua or MLX_TRACKING_URI
(docs/tracking.md).]],
  subcommands = {
    {
      name = "migrate",
      summary = "copy this project's SQLite runs and registry into PostgreSQL",
      usage = "mlx tracking migrate URI [--from PATH]",
      description = [[
Copies every run, param, metric, tag, artifact, model version, alias and
alias change of the project's SQLite database (.mlx/runs.db, or PATH) into
the PostgreSQL database at URI, under this project's id, in one
transaction. Rows already there are left alone, so running it again copies
nothing; afterwards every source row is checked to be in the target
(else nothing is committed, exit 1). Prints the rows per table. Then set
tracking = "URI" in .mlx/config.lua (the password goes in
.mlx/config.local.lua as tracking_password, or PGPASSWORD, or ~/.pgpass).]],
      options = { { "from", arg = "PATH", help = "the SQLite database to copy (default: .mlx/runs.db)" } },
      args = { min = 1, max = 1, name = "a PostgreSQL URI" },
      main = migrate,
    },
  },
}
