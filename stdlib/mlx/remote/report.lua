--- mlx.remote.report: what mlx push, fetch and pull print, in one place,
--- and their exit code: 1 when an object could not be moved (not at the
--- source, or corrupt there), else 0.
local ui = require "mlx.ui"

local M = {}

local function plural(n, word)
  if n == 1 then return "1 " .. word end
  return ("%d %s"):format(n, word:gsub("y$", "ie") .. "s")
end

local function named(o)
  return o.path and ("%s (%s)"):format(o.path, o.hash:sub(1, 12)) or o.hash
end

--- Returns the message err (of code) with what to do when it is a remote
--- that did not answer, after the retries.
function M.advice(err, code)
  if code == "io" and tostring(err):match("^remote ") then
    return err .. "; check that the server is up and the URL ('mlx remote list'), then run it again"
  end
  return err
end

--- Runs fn (mlx.remote.push or fetch or pull) over root and opts with a
--- progress line, prints the result (verb: "push"|"fetch"|"pull") and
--- returns the exit code.
function M.run(verb, fn, root, opts)
  if opts.jobs and opts.jobs < 1 then
    ui.usage_error("option '-j' needs at least 1 transfer at once, not %d", opts.jobs)
  end
  local bar <close> = require("mlx.progress").new(verb == "push" and "pushing" or "fetching")
  opts.progress = bar.report
  local result, err, code = fn(root, opts)
  bar:done()
  if not result then ui.fail(ui.exit_code_for(code), "%s", M.advice(err, code)) end
  if result.warning then ui.warn(result.warning) end
  local where = (verb == "push" and "to" or "from") .. (" remote '%s'"):format(result.remote)
  if opts.dry_run then
    local runs = result.todo_runs and result.todo_runs > 0
      and (" and %s%s"):format(plural(result.todo_runs, "run-cache entry"),
        verb == "push" and "" or " (and the objects they name)") or ""
    ui.out(("would %s %s%s %s"):format(verb == "pull" and "fetch" or verb, plural(result.todo, "object"), runs,
      where))
    return ui.EXIT.OK
  end
  local done = verb == "push" and "pushed" or "fetched"
  if result.sent == 0 and result.runs == 0 and #result.missing == 0 and #result.corrupt == 0 then
    local what = result.objects == 1 and "the 1 object" or ("all %d objects"):format(result.objects)
    if verb == "push" and opts.run_cache and result.runs_present then
      what = what .. (result.runs_present == 1 and " and the 1 run-cache entry"
        or (" and all %d run-cache entries"):format(result.runs_present))
    end
    ui.out(verb == "push" and ("remote '%s' already has %s"):format(result.remote, what)
      or ("the store already has %s"):format(what))
  else
    local runs = result.runs > 0 and (", %s"):format(plural(result.runs, "run-cache entry")) or ""
    ui.out(("%s %s (%s)%s %s; %d already there"):format(done, plural(result.sent, "object"),
      ui.format_size(result.bytes), runs, where, result.present))
  end
  if (result.repaired or 0) > 0 then
    ui.out(("sent again %s that a fetch had found corrupt or absent on remote '%s'"):format(
      plural(result.repaired, "object"), result.remote))
  end
  for _, u in ipairs(result.unavailable or {}) do
    ui.out(verb == "push"
      and ("not pushed: %s (its step %s keeps no copy in the store; it makes it again)"):format(u.path, u.step)
      or ("not fetched: %s is on no remote (its step %s makes it again)"):format(u.path, u.step))
  end
  for _, step in ipairs(result.nondeterministic or {}) do
    ui.out(("not pushed: the run-cache entry of step %s (mlx verify found it non-deterministic)"):format(step))
  end
  for _, r in ipairs(result.refused or {}) do
    ui.warn(("run-cache entry %s on remote '%s' refused: %s"):format(r.key:sub(1, 12), result.remote, r.why))
  end
  local failed = false
  for _, o in ipairs(result.missing) do
    failed = true
    if verb == "push" then
      ui.error(("%s is not in the local store; nothing to push for it (run its recipe or mlx add it)"):format(named(o)))
    else
      ui.error(("%s is not on remote '%s'; push it from a clone that has it"):format(named(o), result.remote))
    end
  end
  for _, o in ipairs(result.corrupt) do
    failed = true
    if verb == "push" then
      ui.error(("%s is corrupt in the local store; not pushed (mlx fsck moves it aside)"):format(named(o)))
    else
      ui.error(("object %s on remote '%s' is corrupt; not used (%s)"):format(named(o), result.remote,
        (result.marked or 0) > 0 and "marked bad there: 'mlx push' from a clone that has it sends it again"
          or "'mlx push --verify' from a clone that has it sends it again"))
    end
  end
  -- A model named as a target is not a workspace path: say where its
  -- bytes are now, and how to get them out.
  if verb ~= "push" then
    local bad = {}
    for _, o in ipairs(result.missing) do bad[o.hash] = true end
    for _, o in ipairs(result.corrupt) do bad[o.hash] = true end
    for _, r in ipairs(result.targeted or {}) do
      if r.model and not bad[r.hash] then
        ui.out(("model %s%s is in the store (%s); 'mlx model get %s DEST' writes it out"):format(r.model,
          r.target ~= r.model and (" (%s)"):format(r.target) or "", r.hash:sub(1, 12), r.target))
      end
    end
  end
  for _, c in ipairs(result.changes or {}) do
    if c.action == "left" then
      ui.warn(require("mlx.stalepins").left_message(c))
    elseif c.action ~= "unchanged" and c.action ~= "unavailable" then
      ui.out(("%-9s %s"):format(c.action, c.path))
    end
  end
  return failed and ui.EXIT.FAILED or ui.EXIT.OK
end

return M
