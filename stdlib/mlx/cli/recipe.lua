-- mlx recipe: run a recipe file. In a project each invocation is a run.
local cli = require "mlx.cli"
local fs = require "mlx.fs"
local load = require "mlx.pipeline.load"
local project = require "mlx.project"
local script = require "mlx.script"
local ui = require "mlx.ui"

-- The run of this invocation; nil outside a project (the recipe then runs
-- untracked, creating nothing).
local function start_run(path, args, opts, digest)
  local root = project.find_root()
  if not root and not os.getenv("MLX_RUNS_DB") then return nil end
  root = root or assert(fs.cwd())
  local track = require "mlx.track"
  local store, err, code = track.store()
  if store then
    local shell_word = require("mlx.pipeline.key").shell_word
    local from_stdin = path == "-"
    -- The recipe as recorded, which does not depend on where the project
    -- is (project.recorded_recipe); the command names it so too, to be
    -- run again from the project root.
    local recorded = from_stdin and "(stdin)" or project.recorded_recipe(path, root)
    -- The words that change what runs, so the command can be run again.
    local words = { "mlx", "recipe", from_stdin and "-" or shell_word(recorded) }
    for _, a in ipairs(args) do words[#words + 1] = shell_word(a) end
    for _, kv in ipairs(opts.param or {}) do words[#words + 1] = "-p " .. shell_word(kv) end
    if opts.params_file then words[#words + 1] = "--params-file " .. shell_word(opts.params_file) end
    if opts.force then words[#words + 1] = "-f" end
    for _, name in ipairs(opts.force_step or {}) do words[#words + 1] = "--force-step " .. shell_word(name) end
    digest = digest or not from_stdin and require("mlx.hash").file(path) or nil
    local git = track.git_context(root)
    store, err, code = store:start_run {
      recipe = recorded, recipe_hash = digest,
      command = table.concat(words, " "),
      git = git,
    }
    track.recipe_git = git
  end
  if not store then
    ui.fail(ui.exit_code_for(code, "corrupt"), "cannot record the run: %s", err)
  end
  return store, track
end

-- Runs the recipe and, when it declares a pipeline, the pipeline: the
-- stale steps (or the named ones and what they depend on), recorded as step
-- runs of run (the recipe's run) when there is one.
local function execute(chunk, path, args, opts, overrides, run, track)
  local p = load.run_chunk(chunk, path, args, overrides)
  if not p then return ui.EXIT.OK end
  local root = project.require_root()
  local recipe_path = path == "-" and "(stdin)" or project.recorded_recipe(path, root)
  local ok, err = fs.chdir(root)
  if not ok then ui.fail(ui.EXIT.FAILED, "%s", err) end
  if run then run:log_params(p.values) end
  local force_steps = {}
  for _, name in ipairs(opts.force_step) do force_steps[name] = true end
  local engine = require "mlx.pipeline.engine"
  local output = require "mlx.pipeline.output"
  local link, lerr = require("mlx.artifacts").link_strategy(root)
  if not link then ui.usage_error("%s", lerr) end
  local clock = require("mlx.core").clock
  local started = clock()
  local result = engine.run(p, {
    root = root, targets = args, jobs = opts.jobs, force = opts.force, force_steps = force_steps,
    dry_run = opts.dry_run, keep_going = opts.keep_going, explain = opts.explain, quiet = opts.quiet,
    track = run and track or nil, git = run and track.recipe_git or false, recipe_path = recipe_path,
    link = link, debug = require("mlx.cli").globals.debug, executor = opts.executor,
  })
  if not opts.quiet then ui.note(output.summary(p.name, result, clock() - started)) end
  -- An invocation that executed nothing is kept, but hidden from the
  -- default listings (mlx runs, mlx exp; --all shows it).
  local executed = false
  for _, outcome in pairs(result.results) do
    if outcome ~= "uptodate" then executed = true end
  end
  if run and not executed then run:set_tag("mlx.noop", "true") end
  if #result.failed > 0 then
    local first = result.failed[1]
    local log = first.log and ("; log: " .. first.log:sub(#root + 2)) or ""
    ui.fail(ui.EXIT.FAILED, "%s%s", first.message, log)
  end
  return ui.EXIT.OK
end

-- How an error (or nil) ends the recipe's run: status, message, exit code.
local function outcome(err)
  if err == nil then return "FINISHED", nil, ui.EXIT.OK end
  if err == "interrupted" then return "KILLED", "interrupted", ui.EXIT.INTERRUPTED end
  if ui.is_failure(err) then return "FAILED", err.message, err.code end
  return "FAILED", tostring(err), ui.EXIT.FAILED
end

local function finish(run, track, before, status, message, exit_code)
  if run.status ~= "RUNNING" then return end
  track.finish_open(status, { message = message }, run)
  local usage = require("mlx.rundb").resources()
  local ok, err = run:finish(status, {
    message = message, exit_code = exit_code,
    cpu_seconds = usage.cpu_seconds - before.cpu_seconds, peak_rss = usage.peak_rss,
  })
  if not ok then ui.warn("cannot record the end of run " .. run.id .. ": " .. err) end
  -- A usage error (an unknown step, a bad param) before any step ran is
  -- no run, as a recipe that does not compile is none.
  if ok and exit_code == ui.EXIT.USAGE then
    local store = track.store()
    local record = store and store:get(run.id)
    if record and #record.children == 0 then
      local deleted, derr = store:delete { run.id }
      if not deleted then ui.warn("cannot delete run " .. run.id .. ": " .. derr) end
    end
  end
end

return {
  summary = "run a recipe: a Lua script, or a pipeline of steps run when stale",
  usage = "mlx recipe FILE [STEP...] [-j N] [-p KEY=VALUE]... [--params-file FILE] [-f] [--force-step STEP]... "
    .. "[-n] [-k] [-q] [--explain] [--executor NAME]",
  description = [[
Runs FILE with the mlx modules available (local mlx = require "mlx") and the
global arg set: arg[0] is FILE, arg[1]... are ARGS (also passed as ...).
Put "--" before ARGS that start with "-". A KEY=VALUE word among ARGS whose
KEY the recipe declares as a param (mlx.params) sets it, over -p; other
words are only arguments. Exit codes: 0 when the recipe
finishes, 1 when it raises an error (printed as file:line: message) or a
step fails, 2 when FILE is missing, does not compile or declares an invalid
pipeline (unknown field, cycle, missing producer).

In an mlx project each invocation is a run in .mlx/runs.db (see 'mlx runs'):
its command, the recipe's path (relative to the project root, also for a
recipe outside it in the same git repository: ../deploy.lua; see
docs/tracking.md) and hash, git commit, branch and dirty flag,
status (FINISHED, FAILED with the error, KILLED when interrupted), duration
and resources. mlx.log.metric(name, value, step) logs to it. The recorded
command keeps -p, --params-file, -f and --force-step, and names the recipe
by that path, to be run again from the project root. An invocation that
ends with a usage error before any step ran (a bad -p, an unknown step or
option, a bad params file) leaves no run; one that executed nothing (every
step up to date) is tagged mlx.noop and listed by mlx runs and mlx exp only
with --all.

A recipe that declares a pipeline (mlx.pipeline) then has its pipeline run:
each step is up to date (its key matches mlx.lock and its outs are
unchanged), restored from the run-cache, or run — in dependency order, up to
-j commands at once. STEP names select steps (with what they depend on);
an unknown STEP or --force-step name exits 2 with a suggestion (for a
KEY=VALUE word in place of a STEP: use -p KEY=VALUE). -p and
--params-file override params. A failed step exits 1 and leaves mlx.lock
and the store as they were for it; Ctrl-C stops running steps and exits
130. A dep that is tracked data other than mlx.lock pins, whose pinned
version the store never had (a git pull without mlx pull), stops the run
before any step executes (exit 2; -n warns).

--executor NAME runs every command step on that executor ("local", "slurm",
or one the project adds in lib/mlx/executor/NAME.lua), over the steps',
the pipeline's and .mlx/config.lua's choice; Lua steps always run inside
mlx (see docs/cluster.md).]],
  options = {
    cli.option("jobs", { help = "run up to N commands at once (default: one per CPU)" }),
    cli.option("param", { help = "override a pipeline param, converted to the type of its default (repeatable)" }),
    cli.option("params-file"),
    cli.option("force", { help = "run every selected step, even when up to date" }),
    { "force-step", arg = "STEP", multiple = true, help = "run STEP even when up to date (repeatable)" },
    cli.option("dry-run", { help = "print the plan (would run, would restore, blocked: with why); run and record nothing" }),
    { "keep-going", short = "k", help = "after a failure, go on with the steps that do not depend on it" },
    { "explain", help = "say why each step runs" },
    { "quiet", short = "q", help = "print only errors (and the steps' own output)" },
    { "executor", arg = "NAME", help = "run the command steps on executor NAME (local, slurm, or the project's)" },
  },
  args = { min = 1, name = "a recipe FILE" },
  main = function(opts, args)
    local path = table.remove(args, 1)
    local chunk, digest = script.load(path, "recipe")
    if opts.jobs and opts.jobs < 1 then ui.usage_error("-j needs a positive number, not %d", opts.jobs) end
    if opts.executor then
      local problem = require("mlx.executor").name_problem(opts.executor)
      if problem then ui.usage_error("--executor: %s", problem) end
    end
    -- Bad -p words or params file: refused before the run is recorded.
    local overrides = load.overrides(opts)
    local run, track
    if not opts.dry_run then run, track = start_run(path, args, opts, digest) end
    if not run then
      return execute(chunk, path, args, opts, overrides)
    end
    local before = require("mlx.rundb").resources()
    -- os.exit ends the process without unwinding: record the run first.
    local exit = os.exit
    os.exit = function(code, close)
      local n = code == nil and 0 or code == true and 0 or code == false and 1 or math.tointeger(code) or 1
      finish(run, track, before, n == 0 and "FINISHED" or "FAILED",
        n ~= 0 and ("the recipe called os.exit(" .. tostring(code) .. ")") or nil, n)
      return exit(code, close)
    end
    -- Closed however the recipe ends, after the CLI's error handler has
    -- taken the traceback.
    local ending <close> = setmetatable({}, { __close = function(_, err)
      os.exit = exit
      finish(run, track, before, outcome(err))
    end })
    return execute(chunk, path, args, opts, overrides, run, track)
  end,
}
