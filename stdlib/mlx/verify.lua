--- mlx.verify: proves, rather than assumes, that what mlx.lock pins
--- reproduces. The chosen steps of a recipe's pipeline are re-executed
--- from their locked inputs, with the params the lock records, in copies of
--- the workspace at other paths under varied conditions
--- (mlx.verify.plan chooses them and their inputs, mlx.verify.scratch makes
--- the copies), and every out they produce is compared with the
--- lock. A step whose outs differ while its inputs were the locked ones is
--- marked `"deterministic": false` in its mlx.lock entry (until a verify
--- passes again); so is a step whose outs agreed only within --tolerance.
--- The outcome is recorded as a run. docs/verify.md.
---
---     local result = require("mlx").verify.run { root = root, recipe = "pipeline.lua" }
---     if not result.passed then print(result.first.step) end
local diff = require "mlx.verify.diff"
local fs = require "mlx.fs"
local graph = require "mlx.pipeline.graph"
local json = require "mlx.json"
local load = require "mlx.pipeline.load"
local lock = require "mlx.lock"
local plan = require "mlx.verify.plan"
local scratch = require "mlx.verify.scratch"
local store = require "mlx.store"
local ui = require "mlx.ui"

local M = {}

local function read_lock(root)
  local doc, err, code = lock.read(root)
  if not doc then ui.fail(ui.exit_code_for(code), "%s", err) end
  return doc
end

-- Compares one out of step between the lock (r) and copy i; returns nil
-- when they agree, else {path, copy, text = {lines}}.
local function compare_out(ctx, step, out, r, got, i)
  if got and got.hash == r.hash and (r.type == "dir" or got.mode == r.mode) then return nil end
  local result = { path = out, copy = i, text = {} }
  if not got then
    result.text[1] = "not produced"
    return result
  end
  if got.type ~= r.type then
    result.text[1] = ("was a %s, is a %s"):format(r.type, got.type)
  elseif r.type == "dir" then
    local was = ctx.store:has(r.hash) and ctx.store:manifest(r.hash)
    local copy_store = ctx.copy_stores[i]
    local now = copy_store and copy_store:has(got.hash) and copy_store:manifest(got.hash)
    if was and now then
      local d = diff.manifests(was, now)
      for _, kind in ipairs({ "changed", "added", "removed" }) do
        for _, path in ipairs(d[kind]) do result.text[#result.text + 1] = ("%s %s%s"):format(kind, out, path) end
      end
    end
  elseif got.hash == r.hash then
    result.text[1] = ("mode %s, locked %s"):format(got.mode, r.mode)
  else
    local is_metrics = false
    for _, m in ipairs(step.metrics) do if m == out then is_metrics = true end end
    if is_metrics then
      local was_text = ctx.store:read(r.hash)
      if not was_text then
        local now = ctx.store:hash(out)
        if now and now.hash == r.hash then
          local f = io.open(ctx.root .. "/" .. out, "rb")
          if f then was_text = f:read("a") f:close() end
        end
      end
      local f = io.open(ctx.copies[i] .. "/" .. out, "rb")
      local now_text = f and f:read("a")
      if f then f:close() end
      if was_text and now_text then
        local fields, within = diff.json_fields(was_text, now_text, ctx.tolerance)
        if fields and #fields == 0 then
          -- Every field agrees (within --tolerance): reproduced, though
          -- the bytes differ.
          return nil, within
        end
        for _, d in ipairs(fields or {}) do result.text[#result.text + 1] = d.text end
      end
    end
  end
  if #result.text == 0 then
    result.text[1] = ("%s… -> %s…"):format(r.hash:sub(1, 12), got.hash:sub(1, 12))
  end
  return result
end

-- Judges each chosen step from the copies' locks, copy by copy:
-- "reproduced"; "diverged" (its inputs were the locked ones and an out
-- differs, or it failed); "unchecked" (an input differed, or it did not
-- run, because an upstream step diverged). A step's status is the worst
-- of its copies'.
local function judge(ctx, p, g, locked, chosen, copy_locks)
  local steps, by_step = {}, {}
  local rank = { reproduced = 0, unchecked = 1, diverged = 2 }
  for _, step in ipairs(g.order) do
    if chosen[step] then
      local s = { step = step.name, status = "reproduced", outs = {}, within = 0 }
      steps[#steps + 1] = s
      by_step[step] = s
    end
  end
  for i, copy_lock in ipairs(copy_locks) do
    local entries = (copy_lock.steps or {})[p.name] or {}
    local verdict = {}
    for _, step in ipairs(g.order) do
      local s = by_step[step]
      if s then
        local entry, got = locked[step.name], entries[step.name]
        local v = "reproduced"
        if not got then
          v = "diverged"
          for _, up in ipairs(g.upstream[step]) do
            if verdict[up] and verdict[up] ~= "reproduced" then v = "unchecked" end
          end
          if v == "diverged" then s.failed = s.failed or i end
        else
          for _, dep in ipairs(step.deps) do
            if (got.deps or {})[dep] ~= entry.deps[dep] then
              v = "unchecked"
              s.changed_input = s.changed_input or dep
            end
          end
          if v == "reproduced" then
            for _, out in ipairs(step.outs) do
              local d, within = compare_out(ctx, step, out, entry.outs[out], (got.outs or {})[out], i)
              if d then
                v = "diverged"
                s.outs[#s.outs + 1] = d
              elseif within then
                s.within = s.within + within
                s.bytes_differ = true
              end
            end
          end
        end
        verdict[step] = v
        if rank[v] > rank[s.status] then s.status = v end
      end
    end
  end
  return steps
end

-- What mlx.lock is to say of step s: false when its outs were not
-- bit-identical (it diverged, or agreed only within --tolerance: the
-- marking is about bytes, which is what a shared run-cache hands out), nil
-- (no marking) when they were, and "keep" when it could not be checked.
local function marking(s)
  if s.status == "diverged" or (s.status == "reproduced" and s.bytes_differ) then return false end
  if s.status == "reproduced" then return nil end
  return "keep"
end

-- Marks in mlx.lock each step whose outs were not bit-identical
-- "deterministic": false, and clears the mark of each that reproduced
-- exactly, when its entry still has the key that was verified (a run
-- meanwhile may have replaced it).
local function mark_lock(root, p, locked, steps)
  local change = false
  for _, s in ipairs(steps) do
    local m = marking(s)
    if m ~= "keep" and m ~= locked[s.step].deterministic then change = true end
  end
  if not change then return true end
  return lock.update(root, "steps", function(section)
    local entries = section[p.name] or {}
    for _, s in ipairs(steps) do
      local entry, m = entries[s.step], marking(s)
      if entry and entry.key == locked[s.step].key and m ~= "keep" then entry.deterministic = m end
    end
  end)
end

-- Starts the run recording the verification (nil when untracked, or with
-- a warning when it cannot be recorded: the verdict stands without it).
-- Tagged mlx.verify from the start, so that however it ends it is never
-- taken for an experiment; "incomplete" until it ends with a verdict.
local function start_run(opts, p)
  if not opts.track then return nil end
  local run, err = opts.track.start_run {
    parent = false, recipe = opts.recipe_path, command = opts.command, params = p.values, git = opts.git,
    tags = { ["mlx.verify"] = "incomplete" },
  }
  if not run then ui.warn("cannot record the verification as a run: " .. tostring(err)) end
  return run
end

-- What the run of step s is to say of it, as the report does (the ui and
-- mlx runs show it where the report is gone): nil when it reproduced.
local function step_message(s, tails)
  if s.status == "unchecked" then
    return s.changed_input and ("unchecked: its input '%s' differed from mlx.lock, as made upstream"):format(
      s.changed_input) or "unchecked: a step upstream did not complete"
  end
  if s.status ~= "diverged" then return nil end
  local parts = {}
  for _, d in ipairs(s.outs) do
    local text = table.concat(d.text, "; ", 1, math.min(#d.text, 3)) .. (#d.text > 3 and "; …" or "")
    parts[#parts + 1] = ("%s differs in copy %d (%s)"):format(d.path, d.copy, text)
  end
  if #parts == 0 and s.failed then
    -- The step's own last line of output says why, better than mlx's
    -- error line, whose log is gone with the copy.
    local tail, why = tails[s.failed] or {}, nil
    local prefix = "[" .. s.step .. "] "
    for i = #tail, 1, -1 do
      if tail[i]:sub(1, #prefix) == prefix then why = tail[i]:sub(#prefix + 1) break end
    end
    why = why or (tail[#tail] or ""):gsub("^mlx: error: ", "")
    return ("not reproduced: failed in copy %d%s"):format(s.failed, why ~= "" and (": " .. why) or "")
  end
  return "not reproduced: " .. table.concat(parts, ", ")
end

-- Ends the verification's run: tagged mlx.verify = passed | failed, with
-- a run per step tagged passed, failed or unchecked, saying why when not
-- passed (tails: the end of the output of each copy whose recipe failed).
local function finish_run(opts, run, locked, steps, passed, message, tails)
  local word = { reproduced = "passed", diverged = "failed", unchecked = "unchecked" }
  for _, s in ipairs(steps) do
    local step_run = opts.track.start_run {
      parent = run, recipe = opts.recipe_path, step = s.step, step_key = locked[s.step].key,
      command = opts.command, tags = { ["mlx.verify"] = word[s.status] }, git = opts.git,
    }
    if step_run then
      local why = step_message(s, tails)
      step_run:finish(s.status == "diverged" and "FAILED" or "FINISHED", why and { message = why } or nil)
    end
  end
  run:set_tag("mlx.verify", passed and "passed" or "failed")
  run:finish(passed and "FINISHED" or "FAILED", message and { message = message } or nil)
end

-- Ends the verification when the recipe failed in copy i before any step
-- ran: the run is tagged mlx.verify = error (no step runs, mlx.lock not
-- marked) and the failure, exit NOT_VERIFIED, names the recipe and its
-- error in the copy (the last line of the copy's output).
local function could_not_verify(run, i, recipe, last_line)
  local why = (last_line or ""):gsub("^mlx: error: ", "")
  if why == "" then why = "it ended without a message" end
  local message = ("cannot verify: %s failed in copy %d before any step ran: %s (a copy holds only the recipe, "
    .. "its params files, lib/, .mlx/config.lua and the steps' locked inputs: read other files in a step "
    .. "that declares them; --keep keeps the copies to look at)"):format(recipe, i, why)
  if run then
    run:set_tag("mlx.verify", "error")
    run:finish("FAILED", { message = message })
  end
  ui.fail(ui.EXIT.NOT_VERIFIED, "%s", message)
end

--- Verifies the steps of the pipeline of a recipe. opts: { root (absolute
--- project root, the working directory), recipe (path as given), steps =
--- {names} (default: every step but those with cache = false), tolerance
--- (absolute, for numbers in metrics files; default 0), keep (leave the
--- copies), track (mlx.track, to record the outcome), recipe_path (as
--- recorded), command, git, on_copy = function(i, n, dir, description) }.
--- Returns { passed, steps = {{step, status = "reproduced"|"diverged"|
--- "unchecked", outs = {{path, copy, text = {lines}}}, failed = copy index
--- or nil, changed_input, within (fields agreeing only within tolerance),
--- bytes_differ (a metrics file reproduced field by field, not byte by
--- byte)}}, first (the first diverged step or nil),
--- left_out = {names}, copies = {dirs} and logs = {paths} (removed unless
--- keep), tails = {copy → last lines of the output of a copy whose recipe
--- failed}, run (the id of the run recording it, when tracked) }.
--- Raises a usage failure (exit 2) for an unknown step, a recipe without a
--- pipeline, a lock that does not pin what the recipe declares, or an input
--- that is neither in the store nor in the workspace; a failure with exit
--- NOT_VERIFIED (3) when the recipe failed in a copy before any step ran
--- (nothing was checked, nothing is marked); "interrupted" after stopping
--- the re-execution and removing the copies.
function M.run(opts)
  local root = opts.root
  local doc = read_lock(root)
  local p = load.recipe(opts.recipe, {}, {})
  if not p then ui.usage_error("%s declares no pipeline; mlx verify checks the steps of a pipeline", opts.recipe) end
  local locked = (doc.steps or {})[p.name]
  if not locked or next(locked) == nil then
    ui.usage_error("mlx.lock pins no step of pipeline '%s': run 'mlx recipe %s' first", p.name, opts.recipe)
  end
  -- Every path is there as the lock pins it, or the item planning says
  -- which is missing: the graph need not look at the workspace.
  local everywhere = function() return true end
  local g = graph.build(p, everywhere)
  local names = {}
  local first_choice = plan.choose(p, opts.steps or {})
  for _, step in ipairs(g.order) do if first_choice[step] then names[#names + 1] = step.name end end
  -- The recipe again, with the params as locked.
  p = load.recipe(opts.recipe, {}, plan.locked_values(p, locked, graph.select(g, p, names)))
  g = graph.build(p, everywhere)
  local chosen, left_out = plan.choose(p, opts.steps or {})
  local selected = graph.select(g, p, names)
  local declared_env = {}
  for step in pairs(selected) do for _, name in ipairs(step.env) do declared_env[name] = true end end

  local st, err, code = store.open(root)
  if not st then ui.fail(ui.exit_code_for(code), "%s", err) end
  local ctx = { root = root, store = st, tolerance = opts.tolerance or 0, copies = {}, copy_stores = {} }
  local base
  local guard <close> = setmetatable({}, { __close = function()
    for _, s in pairs(ctx.copy_stores) do s:close() end
    st:close()
    if base and not opts.keep then fs.remove_tree(base) end
  end })
  plan.check_keys(root, st, p, g, locked, selected, opts.recipe)
  local items = plan.items(root, st, doc, locked, g, selected, chosen)

  -- The copy's lock: the real one without the entries of the steps to
  -- verify, so each of them runs and what it wrote is all that is there.
  local copy_steps = {}
  for name, entry in pairs(locked) do
    if not chosen[p.by_name[name] or false] then copy_steps[name] = entry end
  end
  local lock_doc = { version = lock.VERSION, steps = { [p.name] = json.object(copy_steps) } }
  if doc.artifacts then lock_doc.artifacts = doc.artifacts end

  -- Closed by an error or an interruption, the run ends FAILED or KILLED.
  local run <close> = start_run(opts, p)
  base, err, code = scratch.new_base(root, opts.keep)
  if not base then ui.fail(ui.exit_code_for(code), "%s", err) end
  local params_file = base .. "/params.json"
  local ok
  ok, err, code = json.save(params_file, json.object(plan.locked_values(p, locked, selected)))
  if not ok then ui.fail(ui.exit_code_for(code), "%s", err) end
  local recipe_rel = require("mlx.project").relative(opts.recipe, root)
  local inside = recipe_rel:sub(1, 1) ~= "/"
  local spec = {
    root = root, store = st, recipe = inside and recipe_rel or nil, recipe_arg = recipe_rel,
    params_files = p.params_files,
    lock_doc = lock_doc, items = items, params_file = params_file, steps = names, declared_env = declared_env,
  }
  local copy_locks, logs, tails = {}, {}, {}
  for i, v in ipairs(scratch.VARIANTS) do
    local dir = scratch.copy_path(base, root, v)
    ctx.copies[i] = dir
    if opts.on_copy then opts.on_copy(i, #scratch.VARIANTS, dir, scratch.describe(v, declared_env)) end
    ok, err, code = scratch.build(dir, spec, v.reverse)
    if not ok then ui.fail(ui.exit_code_for(code), "cannot make the copy %s: %s", dir, err) end
    logs[i] = base .. "/copy-" .. i .. ".log"
    local result
    result, err, code = scratch.execute(dir, v, spec, logs[i])
    if not result then
      if code == "interrupted" then error("interrupted", 0) end
      ui.fail(ui.EXIT.FAILED, "cannot run the recipe in %s: %s", dir, err)
    end
    if result.code == 130 then error("interrupted", 0) end
    if not result.ok and not scratch.ran_a_step(dir) then
      -- Not a divergence: the recipe failed in the copy before any step
      -- ran (a file it reads as it loads is not in the copy, a Lua error
      -- under the copy's conditions), so nothing was checked.
      could_not_verify(run, i, recipe_rel, scratch.tail(logs[i], 1)[1])
    end
    -- The end of the copy's output explains a step that failed there; the
    -- log itself goes with the copy.
    if not result.ok then tails[i] = scratch.tail(logs[i], 20) end
    copy_locks[i] = lock.read(dir) or { version = lock.VERSION }
    ctx.copy_stores[i] = store.open(dir)
  end

  local steps = judge(ctx, p, g, locked, chosen, copy_locks)
  local first
  for _, s in ipairs(steps) do
    if s.status == "diverged" then first = s break end
  end
  local passed = true
  for _, s in ipairs(steps) do if s.status ~= "reproduced" then passed = false end end
  local message
  if first then
    local outs = {}
    for _, d in ipairs(first.outs) do outs[#outs + 1] = d.path end
    local seen, unique = {}, {}
    for _, o in ipairs(outs) do if not seen[o] then seen[o] = true unique[#unique + 1] = o end end
    message = #unique > 0 and ("step '%s' did not reproduce: %s differs"):format(first.step, table.concat(unique, ", "))
      or ("step '%s' failed in copy %d"):format(first.step, first.failed)
  elseif not passed then
    -- Nothing diverged, yet a step saw other inputs: an upstream metrics
    -- file that agreed only within --tolerance.
    for _, s in ipairs(steps) do
      if s.status == "unchecked" then
        message = ("step '%s' could not be checked: its input '%s' differed from mlx.lock (within --tolerance)")
          :format(s.step, s.changed_input or "?")
        break
      end
    end
  end
  local marked, merr = mark_lock(root, p, locked, steps)
  if not marked then ui.warn("cannot mark mlx.lock: " .. tostring(merr)) end
  if run then finish_run(opts, run, locked, steps, passed, message, tails) end
  return { passed = passed, steps = steps, first = first, message = message, left_out = left_out,
    copies = ctx.copies, logs = logs, tails = tails, base = base, run = run and run.id }
end

return M
