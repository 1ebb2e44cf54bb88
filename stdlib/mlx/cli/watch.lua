-- mlx watch: start, stop or look at the project's file-system watcher.
local project = require "mlx.project"
local ui = require "mlx.ui"
local watch = require "mlx.watch"

local function start()
  local root = project.require_root()
  local w, err, code = watch.start(root)
  if not w then
    if code == "busy" then
      ui.out(err)
      return ui.EXIT.OK
    end
    ui.fail(ui.EXIT.FAILED, "%s", err)
  end
  ui.out(("watching %s (pid %d); log: .mlx/logs/watch.log"):format(root, w.pid))
  return ui.EXIT.OK
end

local function stop()
  local root = project.require_root()
  local ok, err, code = watch.stop(root)
  if not ok then
    if code == "notfound" then
      ui.out(("no watcher runs for %s"):format(root))
      return ui.EXIT.OK
    end
    ui.fail(ui.EXIT.FAILED, "%s", err)
  end
  ui.out(("stopped the watcher of %s"):format(root))
  return ui.EXIT.OK
end

local function status()
  local root = project.require_root()
  local st, err, code = watch.status(root)
  if not st then
    if code == "notfound" then
      ui.out(("no watcher runs for %s"):format(root))
      return ui.EXIT.FAILED
    end
    ui.fail(ui.EXIT.FAILED, "%s", err)
  end
  ui.out(("watching %s (pid %d)"):format(st.root, st.pid))
  ui.out(("  %d directories, %d paths changed remembered, token %s"):format(st.watches, st.paths, st.token))
  ui.out(("  %d questions answered, %d of them 'everything'; %d event queue overflows"):format(st.queries,
    st.everything, st.overflows))
  if st.degraded then
    ui.out("  a directory could not be watched: every answer is 'everything' (see .mlx/logs/watch.log;"
      .. " raise fs.inotify.max_user_watches and restart)")
  end
  return ui.EXIT.OK
end

return {
  summary = "start, stop or look at the project's file-system watcher",
  usage = "mlx watch start|stop|status",
  description = [[
A watcher is a daemon per project that watches every directory of the
project (but .git/ and .mlx/) with inotify, so that mlx status and mlx add
DIR stat only the paths that changed since they last looked instead of every
file: on a million files, a one-file change is then checked in well under a
second. Status and add ask it by themselves when one runs; without one they
walk every file, as always. It listens on .mlx/watch.sock, logs to
.mlx/logs/watch.log and stops on 'mlx watch stop' or when .mlx is removed.
If it dies, mlx walks again, exactly. See docs/watch.md.]],
  subcommands = {
    {
      name = "start",
      summary = "start the watcher (exit 0 if one already runs)",
      usage = "mlx watch start",
      args = { max = 0 },
      main = start,
    },
    {
      name = "stop",
      summary = "stop the watcher (exit 0 if none runs)",
      usage = "mlx watch stop",
      args = { max = 0 },
      main = stop,
    },
    {
      name = "status",
      summary = "whether a watcher runs, and what it has seen (exit 1 if none runs)",
      usage = "mlx watch status",
      args = { max = 0 },
      main = status,
    },
  },
}
