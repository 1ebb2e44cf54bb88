-- mlx.registry: model versions in a real store and runs database, in
-- temporary projects: registering files, directories and objects, refs,
-- aliases and their history, verified checkout, lineage, and gc.
local lu = require "luaunit"
local fs = require "mlx.fs"
local hash = require "mlx.hash"
local registry = require "mlx.registry"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local support = require "support"
local tempdir, read_file = support.tempdir, support.read_file

TestRegistry = {}

function TestRegistry:setUp()
  self.root = tempdir()
  assert(fs.mkdirs(self.root .. "/.mlx"))
  assert(fs.mkdirs(self.root .. "/work"))
  support.new_project(self.root)
  self.reg = assert(registry.open(self.root))
  assert((self.reg.runs.postgresql or false) == (support.backend == "postgresql"), "the backend under test is not in use")
end

function TestRegistry:tearDown()
  self.reg:close()
  os.execute("chmod -R u+w '" .. self.root .. "' && rm -rf '" .. self.root .. "'")
end

function TestRegistry:write(rel, content)
  assert(fs.mkdirs((self.root .. "/" .. rel):match("^(.*)/")))
  assert(fs.write(self.root .. "/" .. rel, content))
  return self.root .. "/" .. rel
end

function TestRegistry:test_a_file_becomes_numbered_versions_and_the_same_bytes_one()
  local path = self:write("work/model.json", '{"w": [1, 2]}')
  local v, new = assert(self.reg:register { name = "iris", path = path, description = "first", tags = { lr = 0.1 } })
  lu.assertTrue(new)
  lu.assertEquals({ v.name, v.version, v.ref, v.type, v.size, v.mode, v.path, v.description },
    { "iris", 1, "iris:1", "file", 13, "644", "work/model.json", "first" })
  lu.assertEquals(v.hash, (hash.file(path)))
  lu.assertEquals(v.tags, { lr = "0.1" })
  lu.assertEquals(v.aliases, {})
  lu.assertTrue(v.created > 1.6e12)

  local again, new_again = assert(self.reg:register { name = "iris", path = path })
  lu.assertEquals({ again.version, new_again, again.description }, { 1, false, "first" })
  local forced = assert(self.reg:register { name = "iris", path = path, force = true })
  lu.assertEquals(forced.version, 2)
  self:write("work/model.json", '{"w": [3, 4]}')
  lu.assertEquals(assert(self.reg:register { name = "iris", path = path }).version, 3)
  lu.assertEquals(assert(self.reg:register { name = "wine", path = path }).version, 1)

  -- The object is in the store, whatever happens to the workspace file.
  local st <close> = assert(require("mlx.store").open(self.root))
  assert(st:verify(v.hash))
  lu.assertEquals(#assert(self.reg:versions("iris")), 3)
end

function TestRegistry:test_a_directory_is_stored_as_its_manifest_and_checked_out_whole()
  self:write("work/model/weights.bin", "0123456789")
  self:write("work/model/config/meta.json", "{}")
  local v = assert(self.reg:register { name = "bert", path = self.root .. "/work/model" })
  local id, size, nfiles = hash.dir(self.root .. "/work/model")
  lu.assertEquals({ v.type, v.hash, v.size, v.files, v.mode }, { "dir", id, size, nfiles, nil })
  lu.assertEquals({ size, nfiles }, { 12, 2 })

  local out = tempdir()
  local got = assert(self.reg:checkout("bert", out .. "/copy"))
  lu.assertEquals(got.dest, out .. "/copy")
  lu.assertEquals(read_file(out .. "/copy/weights.bin"), "0123456789")
  lu.assertEquals(read_file(out .. "/copy/config/meta.json"), "{}")
  assert(fs.write(out .. "/file", "x"))
  local none, err, code = self.reg:checkout("bert", out .. "/file")
  lu.assertNil(none)
  lu.assertEquals(code, "invalid")
  lu.assertStrContains(err, "is not a directory")
  os.execute("rm -rf '" .. out .. "'")
end

function TestRegistry:test_an_object_already_in_the_store_can_be_registered()
  self:write("work/a.bin", "aaa")
  self:write("work/d/x", "xx")
  local st = assert(require("mlx.store").open(self.root))
  local file = assert(st:put("work/a.bin"))
  local dir = assert(st:put("work/d"))
  assert(st:commit())
  st:close()
  local f = assert(self.reg:register { name = "m", object = file.hash })
  lu.assertEquals({ f.type, f.size, f.hash, f.path }, { "file", 3, file.hash, nil })
  local d = assert(self.reg:register { name = "m", object = dir.hash })
  lu.assertEquals({ d.type, d.size, d.files, d.version }, { "dir", 2, 1, 2 })
  local as_file = assert(self.reg:register { name = "raw", object = dir.hash, type = "file" })
  lu.assertEquals(as_file.type, "file")
  local none, err, code = self.reg:register { name = "m", object = ("0"):rep(64) }
  lu.assertNil(none)
  lu.assertEquals(code, "notfound")
  lu.assertStrContains(err, "is not in the store")
end

function TestRegistry:test_paths_that_cannot_be_registered_fail_and_register_nothing()
  local none, err, code = self.reg:register { name = "iris", path = self.root .. "/work/none.json" }
  lu.assertEquals({ none, code }, { nil, "notfound" })
  lu.assertStrContains(err, "no such file")
  none, err, code = self.reg:register { name = "iris", path = "/etc/hostname" }
  lu.assertEquals({ none, code }, { nil, "invalid" })
  lu.assertStrContains(err, "outside the project")
  self:write("work/real", "r")
  assert(os.execute("ln -s real '" .. self.root .. "/work/link'"))
  none, err, code = self.reg:register { name = "iris", path = self.root .. "/work/link" }
  lu.assertEquals({ none, code }, { nil, "invalid" })
  none, err, code = self.reg:get("iris")
  lu.assertEquals({ none, err, code }, { nil, "no model named iris", "notfound" })
end

function TestRegistry:test_misuse_raises()
  local path = self:write("work/m", "m")
  lu.assertErrorMsgContains("either 'path' or 'object'", self.reg.register, self.reg, { name = "a" })
  lu.assertErrorMsgContains("either 'path' or 'object'", self.reg.register, self.reg,
    { name = "a", path = path, object = ("0"):rep(64) })
  lu.assertErrorMsgContains("unknown field 'descr'", self.reg.register, self.reg, { name = "a", path = path, descr = "" })
  lu.assertErrorMsgContains("invalid model name 'a b'", self.reg.register, self.reg, { name = "a b", path = path })
  lu.assertErrorMsgContains("64 lowercase hex", self.reg.register, self.reg, { name = "a", object = "abc" })
  lu.assertErrorMsgContains("'tags' must map names", self.reg.register, self.reg,
    { name = "a", path = path, tags = { {} } })
  lu.assertErrorMsgContains("a version must be an integer", self.reg.set_alias, self.reg, "a", "prod", "1")
  lu.assertErrorMsgContains("invalid alias '7'", self.reg.set_alias, self.reg, "a", "7", 1)
  lu.assertErrorMsgContains("must be a string", self.reg.get, self.reg, 3)
end

function TestRegistry:test_references_name_the_latest_a_number_or_an_alias()
  local path = self:write("work/m", "1")
  assert(self.reg:register { name = "iris", path = path })
  self:write("work/m", "2")
  assert(self.reg:register { name = "iris", path = path })
  assert(self.reg:set_alias("iris", "production", 1))
  lu.assertEquals(assert(self.reg:get("iris")).version, 2)
  lu.assertEquals(assert(self.reg:get("iris:1")).version, 1)
  local prod = assert(self.reg:get("iris@production"))
  lu.assertEquals({ prod.version, prod.aliases }, { 1, { "production" } })
  local cases = {
    { "iris:3", "model iris has no version 3", "notfound" },
    { "iris@staging", "model iris has no alias staging", "notfound" },
    { "wine@production", "no model named wine", "notfound" },
    { "irs@production", "no model named irs; did you mean iris?", "notfound" },
    { "iris@", "invalid model reference 'iris@': expected NAME, NAME:VERSION or NAME@ALIAS", "invalid" },
    { "iris:0", nil, "invalid" }, { "iris:x", nil, "invalid" }, { "@prod", nil, "invalid" },
    { "iris@3", nil, "invalid" }, { "", nil, "invalid" },
  }
  for _, c in ipairs(cases) do
    local none, err, code = self.reg:get(c[1])
    lu.assertNil(none, c[1])
    if c[2] then lu.assertEquals(err, c[2]) end
    lu.assertEquals(code, c[3], c[1])
  end
  local models = assert(self.reg:models())
  lu.assertEquals({ #models, models[1].name, models[1].versions, models[1].latest, models[1].aliases },
    { 1, "iris", 2, 2, { production = 1 } })
end

function TestRegistry:test_aliases_move_and_roll_back_through_their_history()
  local path = self:write("work/m", "1")
  for i = 1, 3 do
    self:write("work/m", tostring(i))
    assert(self.reg:register { name = "iris", path = path })
  end
  local r = assert(self.reg:set_alias("iris", "production", 1))
  lu.assertEquals({ r.version, r.previous, r.moved }, { 1, nil, true })
  r = assert(self.reg:set_alias("iris", "production", 3))
  lu.assertEquals({ r.version, r.previous, r.moved }, { 3, 1, true })
  r = assert(self.reg:set_alias("iris", "production", 3))
  lu.assertEquals({ r.previous, r.moved }, { 3, false })
  local none, err, code = self.reg:set_alias("iris", "production", 4)
  lu.assertEquals({ none, err, code }, { nil, "model iris has no version 4", "notfound" })

  r = assert(self.reg:rollback("iris", "production"))
  lu.assertEquals({ r.version, r.previous }, { 1, 3 })
  lu.assertEquals(assert(self.reg:get("iris@production")).version, 1)
  r = assert(self.reg:rollback("iris", "production"))
  lu.assertEquals({ r.version, r.previous }, { nil, 1 })
  none, err, code = self.reg:get("iris@production")
  lu.assertEquals(code, "notfound")
  none, err, code = self.reg:rollback("iris", "production")
  lu.assertEquals(code, "notfound")
  lu.assertStrContains(err, "no earlier version")

  assert(self.reg:set_alias("iris", "staging", 2))
  lu.assertEquals(assert(self.reg:del_alias("iris", "staging")).previous, 2)
  none, err, code = self.reg:del_alias("iris", "staging")
  lu.assertEquals({ none, err, code }, { nil, "model iris has no alias staging", "notfound" })

  local history = assert(self.reg:alias_history("iris", "production"))
  local seen = {}
  for i, h in ipairs(history) do seen[i] = ("%s %s>%s"):format(h.action, h.previous or "-", h.version or "-") end
  lu.assertEquals(seen, { "rollback 1>-", "rollback 3>1", "set 1>3", "set ->1" })
  lu.assertEquals(#assert(self.reg:alias_history("iris")), 6)
  none, err, code = self.reg:alias_history("wine")
  lu.assertEquals(code, "notfound")
end

function TestRegistry:test_the_run_of_a_version_is_given_found_or_the_current_one()
  local runs = self.reg.runs
  local path = self:write("work/model.json", "weights")
  local digest = hash.bytes("weights")
  local train = assert(runs:start_run { step = "train", git = false })
  assert(train:record_artifact { role = "out", path = "work/model.json", hash = digest, size = 7, nfiles = 1 })
  assert(train:finish())
  local outer = assert(runs:start_run { recipe = "register.lua", git = false })
  -- The run that wrote those bytes, not the one registering them.
  lu.assertEquals(assert(self.reg:register { name = "iris", path = path }).run, train.id)
  self:write("work/model.json", "other")
  lu.assertEquals(assert(self.reg:register { name = "iris", path = path }).run, outer.id)
  self:write("work/model.json", "third")
  lu.assertNil(assert(self.reg:register { name = "iris", path = path, run = false }).run)
  self:write("work/model.json", "fourth")
  lu.assertEquals(assert(self.reg:register { name = "iris", path = path, run = train.id:upper() }).run, train.id)
  local none, err, code = self.reg:register { name = "iris", path = path, run = "zzzzzzzz" }
  lu.assertEquals({ none, code }, { nil, "notfound" })
  lu.assertStrContains(err, "no run with id")
  -- Alias moves name the run that made them.
  assert(self.reg:set_alias("iris", "staging", 1))
  lu.assertEquals(assert(self.reg:alias_history("iris"))[1].run, outer.id)
  assert(outer:finish())
end

function TestRegistry:test_checkout_is_verified_and_a_corrupt_object_is_quarantined()
  local path = self:write("work/model.json", "good weights")
  local v = assert(self.reg:register { name = "iris", path = path })
  local out = tempdir()
  -- Outside the project, into new directories; into a directory by its registered name.
  lu.assertEquals(assert(self.reg:checkout("iris:1", out .. "/a/b/m.json")).dest, out .. "/a/b/m.json")
  lu.assertEquals(read_file(out .. "/a/b/m.json"), "good weights")
  lu.assertEquals(assert(self.reg:checkout("iris", out)).dest, out .. "/model.json")
  local none, err, code = self.reg:checkout("iris@production", out .. "/x")
  lu.assertEquals(code, "notfound")

  local st = assert(require("mlx.store").open(self.root))
  local object = st:path(v.hash)
  st:close()
  os.execute("chmod u+w '" .. object .. "'")
  assert(fs.write(object, "bad weights!"))
  assert(fs.write(out .. "/model.json", "mine"))
  none, err, code = self.reg:checkout("iris", out .. "/model.json")
  lu.assertEquals({ none, code }, { nil, "corrupt" })
  lu.assertStrContains(err, "quarantine")
  lu.assertEquals(read_file(out .. "/model.json"), "mine")
  lu.assertNil(fs.stat(object))
  os.execute("rm -rf '" .. out .. "'")
end

function TestRegistry:test_lineage_follows_runs_upstream_and_gathers_metrics()
  local runs = self.reg.runs
  local data, split, model = hash.bytes("data"), hash.bytes("split"), hash.bytes("model")
  local pipeline = assert(runs:start_run { recipe = "pipeline.lua", params = { seed = 7 },
    git = { commit = "0123456789abcdef0123456789abcdef01234567", branch = "main", dirty = false } })
  local function step(name, ins, outs, metrics, params)
    local run = assert(runs:start_run { recipe = "pipeline.lua", step = name, params = params, git = false })
    for path, h in pairs(ins) do assert(run:record_artifact { role = "in", path = path, hash = h, size = 4 }) end
    for path, h in pairs(outs) do assert(run:record_artifact { role = "out", path = path, hash = h, size = 5 }) end
    if metrics then assert(run:log_metrics(metrics)) end
    assert(run:finish())
    return run
  end
  local s = step("split", { ["data/iris.csv"] = data }, { ["work/split"] = split })
  local t = step("train", { ["work/split"] = split }, { ["work/model.json"] = model }, { loss = 0.25 }, { lr = 0.1 })
  local e = step("evaluate", { ["work/model.json"] = model }, {}, { accuracy = 0.96, loss = 0.4 })
  assert(pipeline:finish())
  local path = self:write("work/model.json", "model")

  local v = assert(self.reg:register { name = "iris", path = path })
  lu.assertEquals(v.run, t.id)
  local l = assert(self.reg:lineage("iris"))
  lu.assertEquals(l.version.ref, "iris:1")
  lu.assertEquals({ l.run.id, l.run.step, l.run.params.lr }, { t.id, "train", "0.1" })
  lu.assertEquals({ l.recipe_run.id, l.recipe_run.git.commit, l.recipe_run.params.seed },
    { pipeline.id, "0123456789abcdef0123456789abcdef01234567", "7" })
  lu.assertEquals(#l.inputs, 1)
  lu.assertEquals({ l.inputs[1].path, l.inputs[1].hash, l.inputs[1].producer.run.id }, { "work/split", split, s.id })
  local upstream = l.inputs[1].producer.inputs
  lu.assertEquals({ #upstream, upstream[1].path, upstream[1].hash, upstream[1].producer },
    { 1, "data/iris.csv", data, nil })
  -- The producer's own metrics first, the evaluation's for the rest.
  lu.assertEquals(l.metrics, { loss = 0.25, accuracy = 0.96 })
  lu.assertEquals(l.metrics_from, { loss = t.id, accuracy = e.id })
  lu.assertEquals(assert(self.reg:metrics(v)), { loss = 0.25, accuracy = 0.96 })
end

function TestRegistry:test_gc_keeps_every_registered_version()
  local path = self:write("work/model.json", "v1")
  local v1 = assert(self.reg:register { name = "iris", path = path })
  self:write("work/stray.bin", "stray")
  local st = assert(require("mlx.store").open(self.root))
  local stray = assert(st:put("work/stray.bin"))
  assert(st:commit())
  st:close()
  os.remove(path)
  local result = assert(require("mlx.gc").gc(self.root))
  lu.assertEquals(#result.removed, 1)
  lu.assertEquals(result.removed[1].id, stray.hash)
  local out = tempdir()
  assert(self.reg:checkout(v1.ref, out .. "/m.json"))
  lu.assertEquals(read_file(out .. "/m.json"), "v1")
  os.execute("rm -rf '" .. out .. "'")
end

function TestRegistry:test_outside_a_project_the_default_registry_says_so()
  local dir = tempdir()
  local cwd = assert(fs.cwd())
  assert(fs.chdir(dir))
  local none, err, code = registry.get("iris")
  assert(fs.chdir(cwd))
  os.execute("rm -rf '" .. dir .. "'")
  lu.assertEquals({ none, err, code }, { nil, "not in an mlx project (run 'mlx init')", "notfound" })
end

os.exit(lu.LuaUnit.run("-o", "tap"), true)
