-- mlx.pipeline: the DSL, its validation, the graph and step keys.
local lu = require "luaunit"
local pipeline = require "mlx.pipeline"
local graph = require "mlx.pipeline.graph"
local key = require "mlx.pipeline.key"
local paths = require "mlx.pipeline.paths"
local params = require "mlx.params"

local function failure_of(fn, ...)
  local ok, err = pcall(fn, ...)
  lu.assertFalse(ok, "expected a failure")
  lu.assertEquals(type(err), "table", tostring(err))
  lu.assertEquals(err.code, 2)
  return err.message
end

local function exists_none() return false end
local function exists_all() return true end

local function names(steps)
  local out = {}
  for i, s in ipairs(steps) do out[i] = s.name end
  return out
end

TestPipelineDsl = {}

function TestPipelineDsl:test_steps_keep_their_fields_and_metrics_are_outs()
  local p = pipeline "t"
  p:params { lr = 0.1, seed = 7 }
  local s = p:step "train" { deps = { "./data//x.csv" }, outs = { "work/model/" }, metrics = { "work/m.json" },
    params = { "lr" }, env = { "CUDA_VISIBLE_DEVICES" }, cmd = "train --lr ${lr}", timeout = 5 }
  lu.assertEquals(s.deps, { "data/x.csv" })
  lu.assertEquals(s.outs, { "work/model/", "work/m.json" })
  lu.assertEquals(s.metrics, { "work/m.json" })
  lu.assertTrue(s.cache)
  lu.assertFalse(s.persist)
  lu.assertEquals(p.by_name.train, s)
end

function TestPipelineDsl:test_declaration_errors_name_step_field_and_line()
  local p = pipeline "t"
  p:params { lr = 0.1 }
  local msg = failure_of(function() p:step "a" { dep = { "x" }, cmd = "true" } end)
  lu.assertStrMatches(msg, ".*test_pipeline.lua:%d+: step 'a': unknown field 'dep' %(did you mean 'deps'%?%)")
  lu.assertStrContains(failure_of(function() p:step "b" { cmd = "x", run = print } end), "exactly one of 'cmd'")
  lu.assertStrContains(failure_of(function() p:step "c" { outs = "x", cmd = "x" } end),
    "field 'outs' must be a list of strings, not string")
  lu.assertStrContains(failure_of(function() p:step "d" { outs = { "/etc/x" }, cmd = "x" } end), "is absolute")
  lu.assertStrContains(failure_of(function() p:step "e" { outs = { "../x" }, cmd = "x" } end), "outside the project")
  lu.assertStrContains(failure_of(function() p:step "f" { cmd = "x ${lr}" } end),
    "cmd uses ${lr}, which is not in the step's params")
  lu.assertStrContains(failure_of(function() p:step "g" { params = { "nope" }, cmd = "x" } end),
    "param 'nope' is not declared")
  p:step "h" { cmd = "true" }
  lu.assertStrContains(failure_of(function() p:step "h" { cmd = "true" } end), "declared twice")
end

function TestPipelineDsl:test_path_errors_name_the_list_and_the_first_bad_path()
  local p = pipeline "t"
  local function line_of(fields)
    return failure_of(function() p:step "s" (fields) end):gsub("^.-test_pipeline%.lua:%d+: ", "")
  end
  lu.assertEquals(line_of { deps = { "ok", "/abs" }, cmd = "x" },
    "step 's': dep '/abs': is absolute; declare paths relative to the project root")
  -- Outs may not be written inside .mlx/ or over mlx.lock; deps may be read there.
  lu.assertEquals(line_of { deps = { ".mlx/config.lua" }, outs = { "a/../.mlx/x" }, cmd = "x" },
    "step 's': out .mlx/x: path inside .mlx/")
  lu.assertEquals(line_of { metrics = { "m/../mlx.lock" }, cmd = "x" },
    "step 's': metric mlx.lock: the lock file itself cannot be written from data")
  -- deps before outs before metrics, whatever the table's order.
  lu.assertEquals(line_of { plots = { "/p" }, outs = { "../o" }, deps = { "./" }, cmd = "x" },
    "step 's': dep './': names the project root itself")
  -- A type error comes before any path error.
  lu.assertEquals(line_of { deps = { "/abs" }, outs = { 1 }, cmd = "x" },
    "step 's': field 'outs' must be a list of strings, not table")
  local step = p:step "t" { deps = { "./in//x" }, outs = { "out/./" }, metrics = { "m.json" }, cmd = "x" }
  lu.assertEquals(step.deps, { "in/x" })
  lu.assertEquals(step.outs, { "out/", "m.json" })
  lu.assertEquals(step.metrics, { "m.json" })
end

function TestPipelineDsl:test_steps_are_views_of_the_step_set()
  local p = pipeline "t"
  p:params { lr = 0.1 }
  local function fn() end
  -- The common case (declared in C) and the others (checked in Lua) read alike.
  local a = p:step "a" { deps = { "./in" }, outs = { "out/1" }, run = fn }
  local b = p:step "b" { deps = { "out/1" }, outs = { "out/2" }, cmd = "echo b", desc = "second" }
  local c = p:step "c" { deps = { "out/2" }, outs = { "out/3/" }, params = { "lr" }, cmd = "x ${lr}", persist = true }
  lu.assertEquals({ a.name, a.index, a.run, a.cmd }, { "a", 1, fn, nil })
  lu.assertEquals({ b.name, b.index, b.cmd, b.run, b.desc }, { "b", 2, "echo b", nil, "second" })
  lu.assertStrMatches(a.where, ".*test_pipeline%.lua:%d+: ")
  lu.assertNotEquals(a.where, b.where)
  lu.assertEquals(a.deps, { "in" })
  lu.assertEquals(c.outs, { "out/3/" })
  lu.assertEquals(c.params, { "lr" })
  -- Undeclared fields read as their defaults; unknown ones as nil.
  lu.assertEquals({ a.metrics, a.plots, a.params, a.env, a.tools }, { {}, {}, {}, {}, {} })
  lu.assertEquals({ a.persist, a.always, a.cache, c.persist }, { false, false, true, true })
  lu.assertNil(a.timeout)
  lu.assertNil(a.nonsense)
  lu.assertFalse(pcall(function() a.env[1] = "X" end))
  -- Equal lists are one table: a chain's dep is the out of the step before.
  lu.assertTrue(rawequal(b.deps, a.outs))
  lu.assertTrue(rawequal(c.deps, b.outs))
  -- The pipeline's list and map, and a field set on a step, as for a table.
  lu.assertEquals({ p.steps[1], p.steps[2], p.steps[3], #p.steps }, { a, b, c, 3 })
  lu.assertTrue(rawequal(p.by_name.b, b))
  b.note = "kept"
  b.desc = "changed"
  a.deps = { "other" }
  lu.assertEquals({ b.note, b.desc, a.deps, a.outs }, { "kept", "changed", { "other" }, { "out/1" } })
  -- The prefetch's list of paths, made in C: each step's deps then outs,
  -- in order, a field set on a step and a step that is a table included;
  -- a list of the set is given once (d comes twice, and e's deps are d's
  -- outs), the fields of a step with a table of its own (a, b) or of a
  -- table each time.
  local t = { deps = { "t/in" }, outs = { "t/out", "t/log" } }
  local d = p:step "d" { deps = { "out/1", "in" }, outs = { "out/4" }, run = fn }
  local e = p:step "e" { deps = { "out/4" }, outs = { "out/5" }, run = fn }
  lu.assertEquals(require("mlx.stepgraph").paths_of({ c, d, a, t, b, d, t, e }),
    { "out/2", "out/3/", "out/1", "in", "out/4", "other", "out/1", "t/in", "t/out", "t/log", "out/1", "out/2",
      "t/in", "t/out", "t/log", "out/5" })
  lu.assertEquals(require("mlx.stepgraph").paths_of({}), {})
  lu.assertEquals(tostring(c), "step 'c'")
  lu.assertEquals(type(c), "userdata")
end

-- A step's where is the recipe line that declared it: the same for the
-- steps of a loop, and each file's own for lines of the same number in
-- two recipes, however the declaring line is remembered between steps.
function TestPipelineDsl:test_where_is_each_steps_own_line()
  local p = pipeline "w"
  local function fn() end
  local recipe = [[
local p, fn = ...
for i = 1, 3 do p:step("loop" .. i) { deps = { "in" }, outs = { "out/" .. i }, run = fn } end
p:step "next" { deps = { "in" }, outs = { "out/next" }, run = fn }
for i = 1, 2 do p:step("again" .. i) { deps = { "in" }, outs = { "out/again" .. i }, run = fn } end
]]
  assert(load(recipe, "@one.lua"))(p, fn)
  assert(load("local p, fn = ...\n" .. recipe:match("\n(for i = 1, 3[^\n]*)"):gsub("loop", "other"), "@two.lua"))(p,
    fn)
  local where = {}
  for _, step in ipairs(p.steps) do where[#where + 1] = step.where end
  lu.assertEquals(where, { "one.lua:2: ", "one.lua:2: ", "one.lua:2: ", "one.lua:3: ", "one.lua:4: ",
    "one.lua:4: ", "two.lua:2: ", "two.lua:2: ", "two.lua:2: " })
end

function TestPipelineDsl:test_overrides_are_typed_by_their_default()
  params.reset({ lr = "0.05", epochs = "3", fast = "yes", name = "x y" })
  local p = pipeline "t"
  p:params { lr = 0.1, epochs = 10, fast = false, name = "a" }
  lu.assertEquals(p:param("lr"), 0.05)
  lu.assertEquals(math.type(p:param("epochs")), "integer")
  lu.assertEquals(p:param("epochs"), 3)
  lu.assertTrue(p:param("fast"))
  lu.assertEquals(p:param("name"), "x y")
  params.check()
  params.reset({ epochs = "3.5" })
  lu.assertStrContains(failure_of(function() pipeline("u"):params { epochs = 10 } end), "must be an integer")
  params.reset({ unknown = "1" })
  pipeline("v"):params { a = 1 }
  lu.assertStrContains(failure_of(params.check), "the recipe declares no param 'unknown' (it declares: a)")
  params.reset()
end

function TestPipelineDsl:test_scripts_declare_params_too()
  params.reset({ url = "http://127.0.0.1:9", retries = "5" })
  local values = params.declare { url = "http://localhost", retries = 3, model = "iris" }
  lu.assertEquals(values, { url = "http://127.0.0.1:9", retries = 5, model = "iris" })
  params.check()
  params.reset()
end

TestPipelineGraph = {}

function TestPipelineGraph:test_edges_follow_files_and_directories()
  local p = pipeline "g"
  p:step "eval" { deps = { "work/model.bin", "work/split/test.csv" }, outs = { "work/m.json" }, cmd = "e" }
  p:step "split" { deps = { "data/iris.csv" }, outs = { "work/split/" }, cmd = "s" }
  p:step "train" { deps = { "work/split/" }, outs = { "work/model.bin" }, cmd = "t" }
  p:step "report" { deps = { "work/" }, outs = { "report.md" }, cmd = "r" }
  local g = graph.build(p, exists_all)
  lu.assertEquals(names(g.order), { "split", "train", "eval", "report" })
  lu.assertEquals(names(g.upstream[p.by_name.eval]), { "train", "split" })
  lu.assertEquals(#g.upstream[p.by_name.report], 3) -- a directory dep waits for every out inside it
  local selected = graph.select(g, p, { "train" })
  lu.assertTrue(selected[p.by_name.split] and selected[p.by_name.train])
  lu.assertNil(selected[p.by_name.eval])
  lu.assertStrContains(failure_of(graph.select, g, p, { "trian" }), "no step named 'trian'")
end

-- The graph reads a step set's rows, but a list set on a step after it was
-- declared is the one its edges follow.
function TestPipelineGraph:test_edges_follow_a_list_set_after_declaring()
  local p = pipeline "g"
  p:step "a" { deps = { "in" }, outs = { "x" }, run = function() end }
  local b = p:step "b" { deps = { "in" }, outs = { "y" }, run = function() end }
  p:step "c" { deps = { "x" }, outs = { "z" }, run = function() end }
  b.deps = { "x" }
  local g = graph.build(p, exists_all)
  lu.assertEquals(names(g.upstream[b]), { "a" })
  lu.assertEquals(names(g.downstream[p.by_name.a]), { "b", "c" })
  lu.assertEquals(names(g.upstream[p.by_name.c]), { "a" })
end

function TestPipelineGraph:test_invalid_graphs_are_refused_with_the_steps_named()
  local p = pipeline "g"
  p:step "a" { deps = { "y" }, outs = { "x" }, cmd = "a" }
  p:step "b" { deps = { "x" }, outs = { "y" }, cmd = "b" }
  lu.assertStrContains(failure_of(graph.build, p, exists_none), "cycle in pipeline 'g': a -> b -> a")

  p = pipeline "g"
  p:step "a" { deps = { "data/missing.csv" }, outs = { "x" }, cmd = "a" }
  lu.assertStrContains(failure_of(graph.build, p, exists_none),
    "step 'a': dep 'data/missing.csv' does not exist and no step produces it")

  p = pipeline "g"
  p:step "a" { outs = { "work/" }, cmd = "a" }
  p:step "b" { outs = { "work/x" }, cmd = "b" }
  lu.assertStrContains(failure_of(graph.build, p, exists_none), "steps 'a' and 'b' both produce 'work/x'")

  p = pipeline "g"
  p:step "a" { deps = { "x" }, outs = { "x" }, cmd = "a" }
  lu.assertStrContains(failure_of(graph.build, p, exists_all), "step 'a' depends on its own out 'x'")
end

function TestPipelineGraph:test_the_first_problem_in_declaration_order_is_reported()
  -- A missing dep declared before a self-link is the error; after it, not.
  local p = pipeline "g"
  p:step "a" { deps = { "gone" }, outs = { "x" }, cmd = "a" }
  p:step "b" { deps = { "o/f" }, outs = { "o/" }, cmd = "b" }
  p:step "c" { deps = { "later" }, outs = { "z" }, cmd = "c" }
  local asked = {}
  local function exists(path)
    asked[#asked + 1] = path
    return path ~= "gone" and path ~= "later"
  end
  lu.assertStrContains(failure_of(graph.build, p, exists), "step 'a': dep 'gone' does not exist")
  lu.assertEquals(asked, { "gone" })
  p.steps[1].deps[1] = "here"
  lu.assertStrContains(failure_of(graph.build, p, exists), "step 'b' depends on its own out 'o/f'")
  -- An out inside another step's directory out names both and the directory.
  p = pipeline "g"
  p:step "a" { outs = { "w/" }, cmd = "a" }
  p:step "b" { outs = { "w/sub/x" }, cmd = "b" }
  lu.assertStrContains(failure_of(graph.build, p, exists_all),
    "steps 'a' and 'b' both produce 'w/sub/x' ('w/sub/x' is inside 'w/')")
  -- Many steps reading one input ask about it once.
  p = pipeline "g"
  for i = 1, 50 do p:step("s" .. i) { deps = { "in" }, outs = { "out/" .. i }, cmd = "x" } end
  asked = {}
  local g = graph.build(p, exists)
  lu.assertEquals(asked, { "in" })
  lu.assertEquals(#g.order, 50)
  lu.assertEquals(#g.upstream[p.steps[7]], 0)
  lu.assertEquals(#g.downstream[p.steps[7]], 0)
  -- The links are views over the graph: a table that is not one of its
  -- steps has none, and they cannot be written.
  lu.assertNil(g.upstream[{ index = 7 }])
  lu.assertNil(g.downstream["s7"])
  lu.assertFalse(pcall(function() g.upstream[p.steps[7]] = {} end))
  -- Steps numbered otherwise than by the DSL get their lists all the same.
  local chain = { { outs = { "a" }, deps = {} }, { outs = { "b" }, deps = { "a" }, index = 9 } }
  local built = require("mlx.stepgraph").build(chain, {})
  lu.assertEquals(built.upstream[chain[2]], { chain[1] })
  lu.assertEquals(built.downstream[chain[1]], { chain[2] })
end

function TestPipelineGraph:test_a_thousand_steps_build_fast()
  local p = pipeline "wide"
  for i = 1, 1000 do
    p:step("s" .. i) { deps = { i > 1 and ("out/" .. (i - 1)) or "in" }, outs = { "out/" .. i }, cmd = "x" }
  end
  local t0 = os.clock()
  local g = graph.build(p, exists_all)
  lu.assertEquals(#g.order, 1000)
  lu.assertTrue(os.clock() - t0 < 0.5, "graph of 1,000 steps took " .. (os.clock() - t0) .. " s")
end

TestPipelineKey = {}

local function inputs(over)
  local base = { values = { lr = 0.1, seed = 7 }, dep_hashes = { ["data/x"] = "aa" }, env = {}, tools = {} }
  for k, v in pairs(over or {}) do base[k] = v end
  return base
end

function TestPipelineKey:test_key_covers_what_design_lists_and_nothing_else()
  local p = pipeline "k"
  p:params { lr = 0.1, seed = 7 }
  local s = p:step "train" { deps = { "data/x" }, outs = { "m" }, params = { "lr" }, env = { "HOME_X" }, cmd = "t ${lr}" }
  local k1 = key.compute(s, inputs())
  lu.assertEquals(#k1, 64)
  lu.assertEquals(key.compute(s, inputs()), k1, "the key is deterministic")
  lu.assertEquals(key.compute(s, inputs({ values = { lr = 0.1, seed = 8 } })), k1, "an undeclared param does not count")
  lu.assertNotEquals(key.compute(s, inputs({ values = { lr = 0.2, seed = 7 } })), k1, "a declared param counts")
  lu.assertNotEquals(key.compute(s, inputs({ dep_hashes = { ["data/x"] = "bb" } })), k1, "a dep's hash counts")
  lu.assertNotEquals(key.compute(s, inputs({ env = { HOME_X = "1" } })), k1, "a declared env var counts")
end

function TestPipelineKey:test_command_substitution_quotes_for_the_shell()
  local s = { cmd = "run --name ${name} --lr ${lr}", params = { "name", "lr" } }
  lu.assertEquals(key.resolve_command(s, { name = "a b'c", lr = 0.1 }), "run --name 'a b'\\''c' --lr 0.1")
  lu.assertEquals(key.resolve_command({ cmd = { "run", "${name}" }, params = { "name" } }, { name = "a b" }),
    { "run", "a b" })
end

-- ${NAME} that is not one of the step's params is the shell's: it reaches
-- /bin/sh as written, whatever param values exist.
function TestPipelineKey:test_shell_variables_that_are_not_params_reach_the_shell()
  local s = { cmd = "echo ${HOME} $SLURM_JOB_ID ${lr}", params = { "lr" } }
  lu.assertEquals(key.resolve_command(s, { lr = 0.1, HOME = "x" }), "echo ${HOME} $SLURM_JOB_ID 0.1")
  local p = pipeline "shellvars"
  p:params { lr = 0.1 }
  p:step "ok" { cmd = "echo ${HOME} ${SLURM_JOB_ID}" }
  local ok, err = pcall(p.step(p, "bad"), { cmd = "echo ${lr}" })
  lu.assertFalse(ok)
  lu.assertStrContains(tostring(err.message or err), "cmd uses ${lr}, which is not in the step's params")
end

function TestPipelineKey:test_lua_step_key_follows_its_source()
  local p = pipeline "k"
  local s1 = p:step "a" { run = function(ctx) return 1 end }
  local s2 = p:step "b" { run = function(ctx) return 2 end }
  lu.assertStrContains(key.function_source(s1.run), "return 1")
  lu.assertNotEquals(key.compute(s1, inputs()), key.compute(s2, inputs()))
end

-- The key as DESIGN §4 defines it, computed the plain way: the SHA-256 of
-- json.encode of the whole record. key.compute writes the same text without
-- building the record; every lock written before must keep its keys.
local function reference_key(step, inputs)
  local json = require "mlx.json"
  local record = { v = 1, outs = json.array({}) }
  if step.run then
    record.fn = key.function_source(step.run)
  else
    local cmd = key.resolve_command(step, inputs.values)
    record.cmd = type(cmd) == "table" and json.array(cmd) or cmd
  end
  record.params = json.object({})
  for _, name in ipairs(step.params) do record.params[name] = inputs.values[name] end
  record.deps = json.object({})
  for _, dep in ipairs(step.deps) do record.deps[dep] = inputs.dep_hashes[dep] or json.null end
  record.env = json.object({})
  for _, name in ipairs(step.env) do record.env[name] = inputs.env[name] or json.null end
  record.tools = json.object({})
  for name in pairs(step.tools) do record.tools[name] = inputs.tools[name] or json.null end
  local outs = {}
  for i, out in ipairs(step.outs) do outs[i] = out end
  table.sort(outs)
  for i, out in ipairs(outs) do record.outs[i] = out end
  return require("mlx.hash").bytes(json.encode(record))
end

function TestPipelineKey:test_key_equals_the_canonical_json_of_the_record()
  local p = pipeline "same"
  p:params { lr = 0.1, seed = 7, name = "a \"b\"\n\u{e9}", on = false, big = 2 ^ 53, n = 3 }
  local run = function(ctx) return "\t\"quoted\"" end
  local steps = {
    p:step "none" { cmd = "true" },
    p:step "one" { deps = { "data/x" }, outs = { "out/1" }, run = run },
    p:step "many" { deps = { "z/b", "a/c", "data/x", "a/c", "missing" }, outs = { "o/z", "o/a/", "o/m" },
      params = { "seed", "lr", "name", "on", "big", "n" }, env = { "HOME_X", "A_B", "UNSET_X" },
      tools = { py = "python3 -V", cc = "cc --version" }, cmd = "t ${lr} ${name}" },
    p:step "argv" { deps = { "dir/" }, outs = { "é/ü" }, params = { "name" }, env = { "HOME_X" },
      tools = { only = "x" }, cmd = { "run", "${name}", "--x=1" } },
    p:step "lua" { deps = { "a", "b" }, outs = { "c" }, params = { "lr" }, run = run },
    p:step "unset" { deps = { "missing" }, env = { "UNSET_X" }, tools = { gone = "x" }, params = { "on" }, cmd = "true" },
  }
  local inputs = {
    values = p.values,
    dep_hashes = { ["data/x"] = ("a"):rep(64), ["z/b"] = ("b"):rep(64), ["a/c"] = ("c"):rep(64),
      ["dir/"] = ("d"):rep(64), a = ("e"):rep(64) },
    env = { HOME_X = "/home/\"x\"", A_B = "" },
    tools = { py = "Python 3.11.2", only = "v1\nv2" },
  }
  for _, step in ipairs(steps) do
    lu.assertEquals(key.compute(step, inputs), reference_key(step, inputs), step.name)
    -- The pieces the no-op hashes in C join into the same text.
    local pieces = table.pack(key.pieces(step, inputs.values, inputs.dep_hashes, inputs.env, inputs.tools))
    lu.assertEquals(pieces.n, pieces[1] + 1, step.name)
    local text = table.concat(pieces, "", 2, pieces.n)
    lu.assertEquals(require("mlx.hash").bytes(text), reference_key(step, inputs), step.name)
  end
end

-- key.cannot_raise says so only of a Lua step of the step set without env,
-- params or tools, whose function's piece is made and whose paths json
-- writes as they are; a dry run then makes none of its pieces.
function TestPipelineKey:test_only_plain_steps_cannot_raise()
  local p = pipeline "plain"
  p:params { lr = 0.1 }
  local run = function(ctx) return 1 end
  local plain = p:step "plain" { deps = { "data/x" }, outs = { "out/1" }, run = run }
  local other = {
    p:step "cmd" { deps = { "data/x" }, outs = { "out/2" }, cmd = "true" },
    p:step "quote" { deps = { 'data/"x"' }, outs = { "out/3" }, run = run },
    p:step "backslash" { deps = { "data/x" }, outs = { "out\\4" }, run = run },
    p:step "utf8" { deps = { "data/x" }, outs = { "out/\u{e9}" }, run = run },
    p:step "control" { deps = { "data/\t" }, outs = { "out/5" }, run = run },
    p:step "params" { deps = { "data/x" }, outs = { "out/6" }, params = { "lr" }, run = run },
    p:step "tools" { deps = { "data/x" }, outs = { "out/7" }, tools = { t = "true" }, run = run },
    p:step "env" { deps = { "data/x" }, outs = { "out/8" }, env = { "HOME_X" }, run = run },
    p:step "desc" { deps = { "data/x" }, outs = { "out/9" }, desc = "a step of its own", run = run },
    { name = "table", deps = { "data/x" }, outs = { "out/10" }, params = {}, env = {}, tools = {}, run = run },
  }
  lu.assertFalse(key.cannot_raise(plain), "before its function's piece is made")
  key.pieces(plain, p.values, {}, {}, {})
  lu.assertTrue(key.cannot_raise(plain))
  for _, step in ipairs(other) do lu.assertFalse(key.cannot_raise(step), step.name) end
end

-- stepgraph.plain_run gives a plain step's function, name, deps and outs in
-- one call (the no-op's pass reads nothing else of it), and key.plain_pieces
-- the very pieces key.fixed_pieces makes of it; a step that is not plain,
-- or no longer (a field set on it after declaring), gives nothing.
function TestPipelineKey:test_plain_run_reads_a_plain_step_in_one_call()
  local plain_run = require("mlx.stepgraph").plain_run
  local p = pipeline "plain"
  local run = function(ctx) return 2 end
  local step = p:step "plain" { deps = { "data/x", "data/y" }, outs = { "out/1" }, run = run }
  local fn, name, deps, outs = plain_run(step)
  lu.assertIs(fn, run)
  lu.assertEquals(name, "plain")
  lu.assertIs(deps, step.deps)
  lu.assertIs(outs, step.outs)
  lu.assertEquals(deps, { "data/x", "data/y" })
  lu.assertEquals(outs, { "out/1" })
  lu.assertEquals({ key.plain_pieces(fn) }, { key.fixed_pieces(step, p.values, {}, {}) })
  lu.assertNil(plain_run(p:step "cmd" { deps = { "data/x" }, outs = { "out/2" }, cmd = "true" }))
  local late = p:step "late" { deps = { "data/x" }, outs = { "out/3" }, run = run }
  late.always = true
  lu.assertNil(plain_run(late), "a field set after declaring")
  lu.assertNil(plain_run({ name = "table", deps = {}, outs = {}, run = run }))
end

TestPaths = {}

function TestPaths:test_normal_form()
  lu.assertEquals(paths.normalize("./a//b/./c/"), "a/b/c/")
  lu.assertEquals(paths.normalize("a/../b"), "b")
  lu.assertNil(paths.normalize("a/../../b"))
  local cases = {
    { "a/b/", "a/b/" }, { "...", "..." }, { ".x/y.", ".x/y." }, { "a/.", "a" }, { "a/./", "a/" },
    { "a/b/../../c/..//d", "d" }, { "x//", "x/" },
    { "", nil, "empty path" }, { "/etc/passwd", nil, "is absolute; declare paths relative to the project root" },
    { "..", nil, "is outside the project" }, { "a/../..", nil, "is outside the project" },
    { ".", nil, "names the project root itself" }, { "a/../", nil, "names the project root itself" },
  }
  for _, case in ipairs(cases) do
    local normal, why = paths.normalize(case[1])
    lu.assertEquals(normal, case[2], case[1])
    lu.assertEquals(why, case[3], case[1])
  end
  lu.assertTrue(paths.within("work/x/y", "work/"))
  lu.assertFalse(paths.within("workshop", "work/"))
  lu.assertTrue(paths.overlap("work/", "work/a"))
  lu.assertFalse(paths.overlap("work/a", "work/ab"))
end

TestRunCache = {}

-- An entry may arrive with a pull or be crafted: one that names a path the
-- step does not declare (../outside/rc.txt) is not used at all, as the
-- run-cache fuzz target also checks.
function TestRunCache:test_an_entry_naming_an_undeclared_out_is_not_used()
  local fs = require "mlx.fs"
  local json = require "mlx.json"
  local runcache = require "mlx.pipeline.runcache"
  local store = require "mlx.store"
  package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
  local root = require("support").tempdir()
  assert(fs.mkdirs(root .. "/.mlx/tmp"))
  assert(fs.write(root .. "/a.txt", "a\n"))
  local st = assert(store.open(root))
  local info = assert(st:put("a.txt"))
  assert(st:commit())
  local record = { type = "file", hash = info.hash, size = 2, mode = "644" }
  local k = ("cd"):rep(32)
  local step = { name = "train", outs = { "model.bin" } }
  assert(runcache.write(root, k, { ["model.bin"] = record }))
  lu.assertEquals(runcache.lookup(root, st, k, step), { ["model.bin"] = record })
  assert(runcache.write(root, k, { ["model.bin"] = record, ["../outside/rc.txt"] = record }))
  lu.assertNil(runcache.lookup(root, st, k, step))
  st:close()
  os.execute("rm -rf '" .. root .. "'")
end

-- A project with one stored file, a.txt; returns root, the open store and
-- the file's record.
local function stored_project()
  local fs = require "mlx.fs"
  package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
  local root = require("support").tempdir()
  assert(fs.mkdirs(root .. "/.mlx/tmp"))
  assert(fs.write(root .. "/a.txt", "a\n"))
  local st = assert(require("mlx.store").open(root))
  local info = assert(st:put("a.txt"))
  assert(st:commit())
  return root, st, { type = "file", hash = info.hash, size = 2, mode = "644" }
end

local function segments(root)
  local out = {}
  for _, name in ipairs(require("mlx.fs").list(root .. "/.mlx/cache/runs") or {}) do
    if name:match("%.jsonl$") then out[#out + 1] = name end
  end
  table.sort(out)
  return out
end

-- A checkpoint's entries go into one file, not a file each; another
-- process (here: after forget) finds every one of them.
function TestRunCache:test_entries_written_together_are_one_segment()
  local runcache = require "mlx.pipeline.runcache"
  local root, st, record = stored_project()
  local step = { name = "s", outs = { "o" } }
  local entries = {}
  for i = 1, 50 do entries[i] = { key = ("%064x"):format(i), outs = { o = record } } end
  assert(runcache.write_many(root, entries))
  lu.assertEquals(#segments(root), 1)
  runcache.forget(root)
  for i = 1, 50 do lu.assertEquals(runcache.lookup(root, st, ("%064x"):format(i), step), { o = record }) end
  lu.assertNil(runcache.lookup(root, st, ("%064x"):format(51), step))
  st:close()
  os.execute("rm -rf '" .. root .. "'")
end

-- A segment cut short (mlx killed while writing it) no longer hashes to
-- its name: none of its entries is used, and the steps simply run.
function TestRunCache:test_a_damaged_segment_is_skipped()
  local runcache = require "mlx.pipeline.runcache"
  local root, st, record = stored_project()
  local step = { name = "s", outs = { "o" } }
  assert(runcache.write_many(root, { { key = ("ab"):rep(32), outs = { o = record } },
    { key = ("cd"):rep(32), outs = { o = record } } }))
  local path = root .. "/.mlx/cache/runs/" .. segments(root)[1]
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  f = assert(io.open(path, "wb"))
  f:write(text:sub(1, #text - 20))
  f:close()
  runcache.forget(root)
  lu.assertNil(runcache.lookup(root, st, ("ab"):rep(32), step))
  lu.assertNil(runcache.lookup(root, st, ("cd"):rep(32), step))
  st:close()
  os.execute("rm -rf '" .. root .. "'")
end

-- Entries of older mlx versions, one file each, are still read; a
-- segment's entry for the same key is newer and wins.
function TestRunCache:test_one_file_entries_are_read_and_segments_win()
  local fs = require "mlx.fs"
  local json = require "mlx.json"
  local runcache = require "mlx.pipeline.runcache"
  local root, st, record = stored_project()
  local step = { name = "s", outs = { "o" } }
  local old, both = ("ab"):rep(32), ("ac"):rep(32)
  for _, k in ipairs({ old, both }) do
    assert(fs.mkdirs(root .. "/.mlx/cache/runs/ab"))
    assert(fs.write(("%s/.mlx/cache/runs/ab/%s.json"):format(root, k),
      json.encode({ version = 1, key = k, outs = { o = record } })))
  end
  local record2 = { type = "file", hash = record.hash, size = 2, mode = "755" }
  assert(runcache.write(root, both, { o = record2 }))
  runcache.forget(root)
  lu.assertEquals(runcache.lookup(root, st, old, step), { o = record })
  lu.assertEquals(runcache.lookup(root, st, both, step), { o = record2 })
  local seen = {}
  assert(runcache.each(root, function(k, entry) seen[k] = entry.outs.o.mode end))
  lu.assertEquals(seen, { [old] = "644", [both] = "755" })
  st:close()
  os.execute("rm -rf '" .. root .. "'")
end

-- Past a few segments, the next write of a process that read them holds
-- all of their entries, and prune (after the store's commit) removes them:
-- reading the run-cache stays a few files however many checkpoints wrote it.
function TestRunCache:test_many_segments_are_merged_into_one()
  local runcache = require "mlx.pipeline.runcache"
  local root, st, record = stored_project()
  local step = { name = "s", outs = { "o" } }
  for i = 1, 20 do
    assert(runcache.write(root, ("%064x"):format(i), { o = record }))
    require("mlx.core").sleep(0.002) -- names sort by the millisecond
  end
  lu.assertEquals(#segments(root), 20)
  runcache.forget(root)
  lu.assertEquals(runcache.lookup(root, st, ("%064x"):format(1), step), { o = record })
  assert(runcache.write(root, ("%064x"):format(21), { o = record }))
  lu.assertEquals(#segments(root), 21, "nothing is removed before the commit")
  runcache.prune(root)
  lu.assertEquals(#segments(root), 1)
  runcache.forget(root)
  for i = 1, 21 do lu.assertEquals(runcache.lookup(root, st, ("%064x"):format(i), step), { o = record }) end
  st:close()
  os.execute("rm -rf '" .. root .. "'")
end

TestUpToDate = {}

-- The no-op's shortcut says "up to date" only when the step's key and its
-- outs' hashes make exactly its index line (outs sorted by path); anything
-- else is left to evaluate, which says why the step runs.
function TestUpToDate:test_only_an_exact_index_line_is_up_to_date()
  local fs = require "mlx.fs"
  local state = require "mlx.pipeline.state"
  local root, st = stored_project()
  assert(fs.write(root .. "/b.txt", "b\n"))
  assert(fs.write(root .. "/c.txt", "c\n"))
  local p = pipeline "u"
  local s = p:step "s" { deps = { "a.txt" }, outs = { "c.txt", "b.txt" }, cmd = "true" }
  local always = p:step "always" { deps = { "a.txt" }, outs = { "b.txt" }, cmd = "true", always = true }
  local missing = p:step "missing" { deps = { "gone.txt" }, outs = { "b.txt" }, cmd = "true" }
  local one = p:step "one" { deps = { "a.txt", "c.txt" }, outs = { "b.txt" }, cmd = "cat a.txt c.txt" }
  local ctx = { store = st, values = p.values, tool_cache = {}, hashes = {} }
  local function key_of(step) return assert(state.evaluate(ctx, step, nil)).key end
  local ev = assert(state.evaluate(ctx, s, nil))
  local b, c = ev.outs["b.txt"].hash, ev.outs["c.txt"].hash
  -- One index, as lockindex.lua writes it, holding each case as a step.
  local index = root .. "/lock-steps"
  local lines = {
    "mlx lock-steps 2 x",
    table.concat({ "u", "s", ev.key, "b.txt", b, "c.txt", c }, "\t"),
    table.concat({ "u", "always", key_of(always), "b.txt", b }, "\t"),
    table.concat({ "u", "missing", key_of(missing), "b.txt", b }, "\t"),
    table.concat({ "u", "one", key_of(one), "b.txt", b }, "\t"),
  }
  assert(fs.write(index, table.concat(lines, "\n") .. "\n"))
  local idx = assert(require("mlx.lockindex").read(index, "mlx lock-steps 2 x", "u"))
  lu.assertTrue(state.up_to_date(ctx, s, idx))
  lu.assertTrue(state.up_to_date(ctx, one, idx), "two deps")
  lu.assertFalse(state.up_to_date(ctx, always, idx), "a step that always runs")
  lu.assertFalse(state.up_to_date(ctx, missing, idx), "a missing dep")
  lu.assertFalse(state.up_to_date(ctx, p:step "new" { outs = { "b.txt" }, cmd = "true" }, idx), "no line")
  -- The same steps against lines that differ from what they have now.
  local function differs(line, why)
    assert(fs.write(index, "mlx lock-steps 2 x\n" .. line .. "\n"))
    local other = assert(require("mlx.lockindex").read(index, "mlx lock-steps 2 x", "u"))
    lu.assertFalse(state.up_to_date(ctx, s, other), why)
  end
  differs(table.concat({ "u", "s", ev.key, "c.txt", c, "b.txt", b }, "\t"), "outs out of order")
  differs(table.concat({ "u", "s", ("0"):rep(64), "b.txt", b, "c.txt", c }, "\t"), "another key")
  differs(table.concat({ "u", "s", ev.key, "b.txt", c, "c.txt", c }, "\t"), "an out changed")
  differs(table.concat({ "u", "s", ev.key, "b.txt", b }, "\t"), "an out the lock lacks")
  differs(table.concat({ "u", "s", ev.key, "b.txt", b, "c.txt", c, "d.txt", c }, "\t"), "an out more")
  differs(table.concat({ "u", "s", ev.key, "b.txt", b, "c.txt", c .. "0" }, "\t"), "a longer hash")
  st:close()
  os.execute("rm -rf '" .. root .. "'")
end

-- The whole pipeline's pass (state.unsure_steps) hashes each step's key
-- text in C from the prefetched hashes: it must find up to date exactly
-- the steps whose key key.compute makes and whose outs match, for every
-- kind of step (a command with a quoted param, an argv list, a Lua
-- function, env, tools, several outs, none), and leave unsure what it
-- cannot say (a directory, a missing dep, a path JSON escapes, a step
-- that always runs or is forced, a forgotten out) or what differs.
function TestUpToDate:test_unsure_steps_are_those_not_up_to_date()
  local fs = require "mlx.fs"
  local state = require "mlx.pipeline.state"
  local root, st = stored_project()
  for _, name in ipairs({ "b.txt", "c.txt", "\195\169.txt", "d/x" }) do
    assert(fs.mkdirs(root .. "/d"))
    assert(fs.write(root .. "/" .. name, name .. "\n"))
  end
  local p = pipeline "u"
  p:params { n = "x y", m = 3 }
  local steps = {
    p:step "cmd" { deps = { "c.txt", "a.txt" }, outs = { "c.txt", "b.txt" }, params = { "n", "m" },
      cmd = "echo ${n} ${m} $HOME" },
    p:step "argv" { deps = { "a.txt" }, outs = { "b.txt" }, params = { "n" }, cmd = { "echo", "${n}" } },
    p:step "fn" { deps = { "a.txt" }, outs = { "b.txt" }, run = function() end },
    p:step "env" { deps = { "a.txt" }, outs = { "b.txt" }, env = { "HOME", "MLX_TEST_NOT_SET" }, cmd = "true" },
    p:step "tools" { deps = { "a.txt" }, outs = { "b.txt" }, tools = { t = "echo 1.2" }, cmd = "true" },
    p:step "none" { deps = { "a.txt" }, cmd = "true" },
    p:step "dir" { deps = { "d/" }, outs = { "b.txt" }, cmd = "true" },
    p:step "missing" { deps = { "gone.txt" }, outs = { "b.txt" }, cmd = "true" },
    p:step "escaped" { deps = { "a.txt" }, outs = { "\195\169.txt" }, cmd = "true" },
    p:step "always" { deps = { "a.txt" }, outs = { "b.txt" }, cmd = "true", always = true },
    p:step "forced" { deps = { "a.txt" }, outs = { "b.txt" }, cmd = "true" },
    p:step "other" { deps = { "a.txt" }, outs = { "b.txt" }, cmd = "false" },
    p:step "unlined" { deps = { "a.txt" }, outs = { "b.txt" }, cmd = "true" },
    p:step "late" { deps = { "a.txt" }, outs = { "b.txt" }, run = function() end },
  }
  -- A plain Lua step made to always run after it was declared.
  steps[#steps].always = true
  local ctx = { store = st, values = p.values, tool_cache = {}, hashes = {} }
  local lines = { "mlx lock-steps 2 x" }
  for _, step in ipairs(steps) do
    local ev = assert(state.evaluate(ctx, step, nil))
    local k = step.name == "other" and ("0"):rep(64) or ev.key
    local parts, outs = { "u", step.name, k }, {}
    for path in pairs(ev.outs) do outs[#outs + 1] = path end
    table.sort(outs)
    for _, path in ipairs(outs) do
      parts[#parts + 1] = path
      parts[#parts + 1] = ev.outs[path].hash
    end
    if step.name ~= "unlined" then lines[#lines + 1] = table.concat(parts, "\t") end
  end
  assert(fs.write(root .. "/lock-steps", table.concat(lines, "\n") .. "\n"))
  local idx = assert(require("mlx.lockindex").read(root .. "/lock-steps", "mlx lock-steps 2 x", "u"))
  local function unsure_names(c)
    local names = {}
    for _, step in ipairs(assert(state.unsure_steps(c, steps, idx, { forced = true }))) do
      names[#names + 1] = step.name
    end
    return table.concat(names, " ")
  end
  local fresh = { store = st, values = p.values, tool_cache = {}, hashes = {} }
  state.prefetch(fresh, steps)
  lu.assertEquals(unsure_names(fresh), "dir missing escaped always forced other unlined late")
  -- A missing path is known as missing, with the store's own message.
  lu.assertEquals({ fresh.prefetched:get("gone.txt") }, { false, (select(2, st:hash("gone.txt"))) })
  lu.assertEquals({ fresh.prefetched:get("d/") }, { false })
  lu.assertEquals(fresh.prefetched:get("a.txt"), st:hash("a.txt"))
  -- find: the same, with true for the message.
  lu.assertEquals({ fresh.prefetched:find("gone.txt") }, { false, true })
  lu.assertEquals({ fresh.prefetched:find("d/") }, { false })
  lu.assertEquals(fresh.prefetched:find("a.txt"), st:hash("a.txt"))
  -- What the pass says up to date, the step's own check says too.
  for _, name in ipairs({ "cmd", "argv", "fn", "env", "tools", "none", "dir" }) do
    lu.assertTrue(state.up_to_date(ctx, p.by_name[name], idx), name)
  end
  state.forget(fresh, "c.txt")
  lu.assertEquals(unsure_names(fresh), "cmd dir missing escaped always forced other unlined late", "a forgotten out")
  lu.assertNil(state.unsure_steps({ store = st, values = p.values, tool_cache = {}, hashes = {} }, steps, idx),
    "nothing prefetched")
  st:close()
  os.execute("rm -rf '" .. root .. "'")
end

-- The reasons of a never-run step are one read-only list for all of them
-- (a fresh plan keeps one per step), "it always runs" added for a step
-- that always runs.
function TestUpToDate:test_never_run_reasons_are_shared_and_read_only()
  local state = require "mlx.pipeline.state"
  local p = pipeline "n"
  local run = function() end
  local a = p:step "a" { deps = { "in" }, outs = { "out/a" }, run = run }
  local b = p:step "b" { deps = { "in" }, outs = { "out/b" }, cmd = "true" }
  local c = p:step "c" { deps = { "in" }, outs = { "out/c" }, cmd = "true", always = true }
  lu.assertEquals(state.never_run_reasons(a), { "never run" })
  lu.assertTrue(rawequal(state.never_run_reasons(a), state.never_run_reasons(b)))
  lu.assertEquals(state.never_run_reasons(c), { "never run", "it always runs (always = true)" })
  lu.assertFalse(pcall(table.insert, state.never_run_reasons(a), "more"))
  lu.assertEquals(state.never_run_reasons(b), { "never run" })
end

-- A dry run's step downstream of one that runs is only checked: it fails
-- as its evaluation would, with the same message, and raises as it would.
function TestUpToDate:test_check_fails_as_evaluate_does()
  local state = require "mlx.pipeline.state"
  local root, st = stored_project()
  local p = pipeline "c"
  local fine = p:step "fine" { deps = { "a.txt", "gone.txt" }, outs = { "b.txt" }, cmd = "true" }
  local tool = p:step "tool" { deps = { "a.txt" }, outs = { "c.txt" }, tools = { t = "exit 3" }, cmd = "true" }
  local utf = p:step "utf" { deps = { "a.txt" }, outs = { "d\255.txt" }, cmd = "true" }
  local ctx = { store = st, values = p.values, tool_cache = {}, hashes = {} }
  lu.assertTrue(state.check(ctx, fine))
  local ok, err = state.check(ctx, tool)
  lu.assertNil(ok)
  lu.assertEquals(err, select(2, state.evaluate(ctx, tool, nil)))
  lu.assertStrContains(err, "step 'tool': tool 't'")
  local raised = select(2, pcall(state.check, ctx, utf))
  lu.assertEquals(raised, select(2, pcall(state.evaluate, ctx, utf, nil)))
  lu.assertStrContains(tostring(raised), "UTF-8")
  -- Lua steps sharing a function whose piece of the key text is made
  -- already: a path or a param value that is not UTF-8 still raises.
  local function fn() end
  p:params { s = "\255" }
  local first = p:step "first" { deps = { "a.txt" }, outs = { "e.txt" }, run = fn }
  local path = p:step "path" { deps = { "a.txt" }, outs = { "f\255.txt" }, run = fn }
  local param = p:step "param" { deps = { "a.txt" }, outs = { "g.txt" }, params = { "s" }, run = fn }
  lu.assertTrue(state.check(ctx, first))
  for _, step in ipairs({ path, param }) do
    raised = select(2, pcall(state.check, ctx, step))
    lu.assertEquals(raised, select(2, pcall(state.evaluate, ctx, step, nil)), step.name)
    lu.assertStrContains(tostring(raised), "UTF-8", false, step.name)
  end
  st:close()
  os.execute("rm -rf '" .. root .. "'")
end

-- A missing path is looked for once until a step writes it: its absence
-- is remembered with the store's message, and forgotten with the path.
function TestUpToDate:test_a_missing_path_is_remembered_until_forgotten()
  local fs = require "mlx.fs"
  local state = require "mlx.pipeline.state"
  local root, st = stored_project()
  local asked = 0
  local counting = { hash = function(_, path) asked = asked + 1; return st:hash(path) end }
  local ctx = { store = counting, values = {}, tool_cache = {}, hashes = {} }
  local info, err, code = state.hash(ctx, "out/b.txt")
  lu.assertNil(info)
  lu.assertEquals(code, "notfound")
  lu.assertEquals({ state.hash(ctx, "out/b.txt") }, { nil, err, "notfound" })
  lu.assertEquals(asked, 1)
  assert(fs.mkdirs(root .. "/out"))
  assert(fs.write(root .. "/out/b.txt", "b\n"))
  state.forget(ctx, "out/b.txt")
  lu.assertEquals(state.hash(ctx, "out/b.txt").hash, require("mlx.hash").bytes("b\n"))
  lu.assertEquals(asked, 2)
  st:close()
  os.execute("rm -rf '" .. root .. "'")
end

-- A dry run says of a step that never ran why it runs as evaluate would,
-- without its key: never run, and why it always runs.
function TestUpToDate:test_a_fresh_plan_says_never_run()
  local engine = require "mlx.pipeline.engine"
  local root, st = stored_project()
  st:close()
  local p = pipeline "f"
  local a = p:step "a" { deps = { "a.txt" }, outs = { "b.txt" }, cmd = "cp a.txt b.txt" }
  local b = p:step "b" { deps = { "a.txt" }, outs = { "c.txt" }, cmd = "cp a.txt c.txt", always = true }
  local c = p:step "c" { deps = { "b.txt" }, outs = { "d.txt" }, cmd = "cp b.txt d.txt" }
  local result = engine.run(p, { root = root, dry_run = true, quiet = true, jobs = 1 })
  lu.assertEquals(result.planned[a], "run")
  lu.assertEquals(result.reasons[a], { "never run" })
  lu.assertEquals(result.reasons[b], { "never run", "it always runs (always = true)" })
  lu.assertEquals(result.reasons[c], { "upstream step 'a' runs" })
  lu.assertEquals(result.counts["would run"], 3)
  os.execute("rm -rf '" .. root .. "'")
end

os.exit(lu.LuaUnit.run("-o", "tap"), true)
