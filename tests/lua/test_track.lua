-- mlx.track and mlx.rundb: runs, params, metrics, tags, artifacts, the
-- run life cycle and queries, on real SQLite files (or, with
-- MLX_TEST_BACKEND=postgresql, a real PostgreSQL database).
local lu = require "luaunit"
local fs = require "mlx.fs"
local hash = require "mlx.hash"
local core = require "mlx.core"
local rundb = require "mlx.rundb"
local track = require "mlx.track"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local support = require "support"
local tempdir = support.tempdir

local MLX = core.exe_dir .. "/mlx"

TestTrack = {}

function TestTrack:setUp()
  self.dir = tempdir()
  self.target, self.opts = support.store_args(self.dir)
  self.store = assert(track.open(self.target, self.opts))
end

function TestTrack:tearDown()
  self.store:close()
  os.execute("rm -rf '" .. self.dir .. "'")
end

function TestTrack:test_a_run_records_what_it_was_given()
  local run = assert(self.store:start_run {
    recipe = "train.lua", recipe_hash = "ab", command = "mlx recipe train.lua", git = false,
    params = { lr = 0.1, epochs = 10, opt = "adam", third = 1 / 3, big = true }, tags = { team = "vision" },
  })
  lu.assertEquals(#run.id, 16)
  lu.assertEquals(run.status, "RUNNING")
  lu.assertEquals(run:log_metric("loss", 0.5), 0) -- the step used
  lu.assertEquals(run:log_metric("loss", 0.25), 1)
  lu.assertEquals(run:log_metric("acc", 0.9, 10), 10)
  assert(run:log_metrics({ acc = 0.95, f1 = 0.5 }, 11))
  assert(run:log_metric("nan", 0 / 0, 0))
  assert(run:finish("FINISHED", { exit_code = 0, cpu_seconds = 1.5, peak_rss = 1024 }))
  lu.assertEquals(run.status, "FINISHED")

  local r = assert(self.store:get(run.id))
  lu.assertEquals(r.status, "FINISHED")
  lu.assertEquals(r.recipe, "train.lua")
  lu.assertEquals(r.command, "mlx recipe train.lua")
  lu.assertEquals(r.params, { lr = "0.1", epochs = "10", opt = "adam", third = "0.3333333333333333", big = "true" })
  lu.assertEquals(r.tags, { team = "vision" })
  lu.assertEquals(r.metrics.loss, 0.25)
  lu.assertEquals(r.metrics.acc, 0.95)
  lu.assertTrue(r.metrics.nan ~= r.metrics.nan)
  lu.assertEquals(r.exit_code, 0)
  lu.assertEquals(r.cpu_seconds, 1.5)
  lu.assertEquals(r.peak_rss, 1024)
  local stat = assert(io.open("/proc/self/stat"))
  lu.assertEquals(r.pid, stat:read("n")) -- the owner of the run: this process
  stat:close()
  lu.assertTrue(#r.host > 0)
  lu.assertTrue(r.end_time >= r.start_time)
  lu.assertTrue(r.duration >= 0 and r.duration < 60)
  lu.assertNil(r.git.commit)
  lu.assertEquals(r.children, {})

  local history = assert(self.store:metric_history(run.id, "acc"))
  lu.assertEquals(#history, 2)
  lu.assertEquals({ history[1].step, history[1].value, history[2].step, history[2].value }, { 10, 0.9, 11, 0.95 })
  lu.assertEquals(self.store:metric_history(run.id, "none"), {})
  local summary = assert(self.store:metric_summary(run.id))
  lu.assertEquals(summary[1].key, "acc")
  lu.assertEquals({ summary[1].count, summary[1].min, summary[1].max, summary[1].step }, { 2, 0.9, 0.95, 11 })
end

function TestTrack:test_offset_pages_the_runs()
  for i = 1, 5 do
    local run = assert(self.store:start_run { recipe = "r" .. i .. ".lua", git = false })
    assert(run:finish("FINISHED"))
  end
  local all = assert(self.store:runs { order = "recipe" })
  local page = assert(self.store:runs { order = "recipe", limit = 2, offset = 2 })
  lu.assertEquals({ page[1].recipe, page[2].recipe }, { all[3].recipe, all[4].recipe })
  lu.assertEquals(#assert(self.store:runs { limit = 10, offset = 5 }), 0)
end

function TestTrack:test_close_records_how_the_scope_ended()
  local ids = {}
  local function scope(fail_with)
    local run <close> = assert(self.store:start_run { git = false })
    ids[#ids + 1] = run.id
    if fail_with then error(fail_with, 0) end
  end
  scope()
  lu.assertFalse(pcall(scope, "accuracy too low"))
  lu.assertFalse(pcall(scope, "interrupted"))
  local a, b, c = self.store:get(ids[1]), self.store:get(ids[2]), self.store:get(ids[3])
  lu.assertEquals({ a.status, b.status, b.message, c.status, c.message },
    { "FINISHED", "FAILED", "accuracy too low", "KILLED", "interrupted" })
end

function TestTrack:test_a_finished_run_takes_no_more_records()
  local run = assert(self.store:start_run { git = false })
  assert(run:finish())
  lu.assertErrorMsgContains("is FINISHED: it takes no more records", run.log_metric, run, "x", 1)
  lu.assertErrorMsgContains("takes no more records", run.finish, run)
  local other = assert(self.store:start_run { git = false })
  lu.assertErrorMsgContains("invalid option 'DONE'", other.finish, other, "DONE")
  lu.assertErrorMsgContains("number expected", other.log_metric, other, "x", "high")
  lu.assertErrorMsgContains("metric name is empty", other.log_metric, other, "", 1)
  lu.assertErrorMsgContains("must be a string, number or boolean", other.log_param, other, "p", {})
  lu.assertErrorMsgContains("artifact role must be", other.record_artifact, other, { role = "up", path = "x" })
  assert(other:finish("CACHED"))
  lu.assertEquals(self.store:get(other.id).status, "CACHED")
end

function TestTrack:test_artifacts_are_recorded_with_hash_and_size()
  local run = assert(self.store:start_run { git = false })
  local file = self.dir .. "/model.bin"
  assert(fs.write(file, "weights"))
  assert(fs.mkdirs(self.dir .. "/data/sub"))
  assert(fs.write(self.dir .. "/data/a.csv", "1,2\n"))
  assert(fs.write(self.dir .. "/data/sub/b.csv", "3,4,5\n"))
  assert(run:log_artifact(file))
  assert(run:log_artifact(self.dir .. "/data", "in"))
  local missing, err, code = run:log_artifact(self.dir .. "/none")
  lu.assertNil(missing)
  lu.assertStrContains(err, "none")
  lu.assertEquals(code, "notfound")
  assert(run:finish())
  local arts = self.store:get(run.id).artifacts
  lu.assertEquals(#arts, 2)
  lu.assertEquals({ arts[1].role, arts[1].path, arts[1].size, arts[1].nfiles }, { "in", self.dir .. "/data", 10, 2 })
  lu.assertNil(arts[1].hash)
  lu.assertEquals({ arts[2].role, arts[2].hash, arts[2].size, arts[2].nfiles }, { "out", hash.bytes("weights"), 7, 1 })
end

function TestTrack:test_ids_resolve_by_unique_prefix()
  local runs = {}
  for i = 1, 3 do runs[i] = assert(self.store:start_run { git = false }) end
  local id = runs[2].id
  lu.assertEquals(self.store:resolve(id), id)
  lu.assertEquals(self.store:resolve(id:sub(1, 14):upper() .. id:sub(15)), id)
  local common = id:sub(1, 6) -- made within the same second: shared by all three
  local none, err, code = self.store:resolve(common)
  lu.assertNil(none)
  lu.assertStrContains(err, "run id '" .. common .. "' is ambiguous")
  lu.assertEquals(code, "invalid")
  none, err, code = self.store:resolve("zzzzzz")
  lu.assertStrContains(err, "no run with id 'zzzzzz'")
  lu.assertEquals(code, "notfound")
  none, err, code = self.store:resolve("a'b")
  lu.assertStrContains(err, "invalid run id")
  lu.assertEquals(code, "invalid")
  lu.assertNil(self.store:get("zzzzzz"))
end

function TestTrack:test_runs_are_listed_newest_first_with_their_records()
  local parent = assert(self.store:start_run { recipe = "r.lua", git = false })
  local child = assert(self.store:start_run { recipe = "r.lua", step = "train", parent = parent, git = false })
  assert(child:log_metric("acc", 0.5))
  assert(child:finish())
  assert(parent:finish())
  local runs = assert(self.store:runs {})
  lu.assertEquals(#runs, 2)
  lu.assertEquals(runs[1].id, child.id)
  lu.assertEquals(runs[1].parent, parent.id)
  lu.assertEquals(runs[1].metrics, { acc = 0.5 })
  lu.assertEquals(self.store:get(parent.id).children, { child.id })
  lu.assertEquals(#assert(self.store:runs { limit = 1 }), 1)
  lu.assertEquals(self.store:count(), 2)
  lu.assertEquals(self.store:count("step = 'train'"), 1)
  local bad, err, code = self.store:runs { filter = "metrics.acc >" }
  lu.assertNil(bad)
  lu.assertEquals(err, "filter: column 14: expected a value after '>'")
  lu.assertEquals(code, "invalid")
end

function TestTrack:test_the_current_run_is_the_innermost_running_one()
  lu.assertNil(track.current())
  local outer = assert(self.store:start_run { git = false })
  local inner = assert(self.store:start_run { git = false })
  local orphan = assert(self.store:start_run { git = false, parent = false })
  assert(orphan:finish())
  lu.assertEquals(track.current(), inner)
  lu.assertEquals(self.store:get(inner.id).parent, outer.id) -- by default, the current run
  lu.assertNil(self.store:get(orphan.id).parent)
  assert(inner:finish())
  lu.assertEquals(track.current(), outer)
  local left = assert(self.store:start_run { git = false })
  lu.assertEquals(track.finish_open("FAILED", { message = "recipe failed" }, outer), 1)
  lu.assertEquals(left.status, "FAILED")
  lu.assertEquals(track.current(), outer)
  assert(outer:finish())
  lu.assertNil(track.current())
  lu.assertEquals(self.store:get(left.id).message, "recipe failed")
end

function TestTrack:test_a_run_whose_process_died_is_marked_killed()
  local db = self.target
  -- A child mlx starts a run and is killed (kill -9) before finishing it.
  local code = ('local s = assert(require("mlx.track").open(%q, {project = %q})); local r = s:start_run{git=false};'
    .. ' r:log_metric("loss", 1); assert(r:flush()); io.write(r.id); io.stdout:flush();'
    .. ' local pid = io.open("/proc/self/stat"):read("n"); os.execute("kill -9 " .. pid)'):format(db,
      self.opts.project or "")
  local p = assert(io.popen(("'%s' lua -e '%s'"):format(MLX, code)))
  local id = p:read("a")
  p:close()
  lu.assertEquals(#id, 16)
  local other = assert(track.open(db, { reap = false, project = self.opts.project }))
  lu.assertEquals(other:get(id).status, "RUNNING")
  lu.assertEquals(other.db:reap(), 1)
  local r = other:get(id)
  lu.assertEquals(r.status, "KILLED")
  lu.assertStrContains(r.message, "ended without finishing it")
  lu.assertEquals(r.metrics.loss, 1.0)
  other:close()
end

function TestTrack:test_git_context_outside_a_work_tree_is_empty()
  lu.assertEquals(track.git_context(self.dir), {})
end

function TestTrack:test_database_path_is_in_the_nearest_project()
  local saved = fs.cwd()
  assert(fs.mkdirs(self.dir .. "/proj/.mlx"))
  assert(fs.mkdirs(self.dir .. "/proj/sub"))
  lu.assertEquals(track.database_path(self.dir .. "/proj/sub"), self.dir .. "/proj/.mlx/runs.db")
  local none, err, code = track.database_path(self.dir)
  lu.assertNil(none)
  lu.assertEquals(err, "not in an mlx project (run 'mlx init')")
  lu.assertEquals(code, "notfound")
  assert(fs.chdir(saved))
end

function TestTrack:test_a_newer_schema_is_refused()
  -- PostgreSQL's: tests/e2e/test_tracking_pg.sh.
  lu.skipIf(support.backend ~= "sqlite", "an SQLite file's PRAGMA user_version")
  local path = self.dir .. "/runs.db"
  lu.assertEquals(self.store.db:schema_version(), rundb.schema_latest)
  self.store:close()
  os.execute(("sqlite3 '%s' 'PRAGMA user_version = 99'"):format(path))
  local none, err, code = track.open(path)
  lu.assertNil(none)
  lu.assertStrContains(err, "written by a newer mlx (schema 99")
  lu.assertEquals(code, "invalid")
  os.execute(("sqlite3 '%s' 'PRAGMA user_version = %d'"):format(path, rundb.schema_latest))
  self.store = assert(track.open(path))
end

os.exit(lu.LuaUnit.run("-o", "tap"), true)
