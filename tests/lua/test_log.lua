-- mlx.log: records go to the current run, else to MLX_EVENTS, else nowhere.
local lu = require "luaunit"
local core = require "mlx.core"
local fs = require "mlx.fs"
local log = require "mlx.log"
local track = require "mlx.track"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local support = require "support"

local MLX = core.exe_dir .. "/mlx"

TestLog = {}

function TestLog:setUp()
  self.dir = support.tempdir()
  self.store = assert(track.open(self.dir .. "/runs.db"))
end

function TestLog:tearDown()
  self.store:close()
  os.execute("rm -rf '" .. self.dir .. "'")
end

function TestLog:test_without_a_run_or_events_file_records_go_nowhere()
  lu.assertNil(os.getenv("MLX_EVENTS"))
  lu.assertNil(track.current())
  lu.assertFalse(log.metric("loss", 1))
  lu.assertFalse(log.param("lr", 0.1))
end

function TestLog:test_records_go_to_the_current_run()
  local run <close> = assert(self.store:start_run { git = false })
  assert(fs.write(self.dir .. "/out.txt", "x"))
  lu.assertTrue(log.metric("loss", 0.5))
  lu.assertTrue(log.metric("loss", 0.25))
  lu.assertTrue(log.metrics({ acc = 0.9 }, 4))
  lu.assertTrue(log.param("lr", 0.1))
  lu.assertTrue(log.params { opt = "adam" })
  lu.assertTrue(log.tag("stage", "train"))
  lu.assertTrue(log.artifact(self.dir .. "/out.txt"))
  local r = assert(self.store:get(run.id))
  lu.assertEquals(r.metrics, { loss = 0.25, acc = 0.9 })
  lu.assertEquals(r.params, { lr = "0.1", opt = "adam" })
  lu.assertEquals(r.tags, { stage = "train" })
  lu.assertEquals(#r.artifacts, 1)
  lu.assertEquals(#assert(self.store:metric_history(run.id, "loss")), 2)
end

function TestLog:test_a_child_process_logs_through_its_events_file()
  local run <close> = assert(self.store:start_run { git = false })
  local events = self.dir .. "/events.jsonl"
  local code = [[local log = require("mlx.log")
    assert(log.metric("loss", 0.5, 1)); assert(log.metric("loss", 0/0, 2)); assert(log.metric("big", math.huge))
    assert(log.metrics({acc = 0.75}, 3)); assert(log.param("lr", 0.1)); assert(log.params({opt = "sgd"}))
    assert(log.tag("who", "child")); assert(log.artifact("events.jsonl", "in"))]]
  lu.assertTrue(os.execute(("cd '%s' && MLX_EVENTS='%s' '%s' lua -e '%s'"):format(self.dir, events, MLX, code)))
  local reader = track.events_reader(run, events, { dir = self.dir, on_malformed = function(_, text, why) error(why .. ": " .. text) end })
  lu.assertEquals(reader:finish(), 8)
  local r = assert(self.store:get(run.id))
  lu.assertEquals({ r.metrics.acc, r.metrics.big, r.params.lr, r.params.opt, r.tags.who }, { 0.75, math.huge, "0.1", "sgd", "child" })
  lu.assertTrue(r.metrics.loss ~= r.metrics.loss) -- NaN, at step 2
  lu.assertEquals(r.artifacts[1].role, "in")
end

function TestLog:test_misuse_raises()
  lu.assertErrorMsgContains("mlx.log.metric: value must be a number", log.metric, "loss", "low")
  lu.assertErrorMsgContains("mlx.log.metric: name must be a string", log.metric, 1, 2)
  lu.assertErrorMsgContains("step must be an integer", log.metric, "loss", 1, 0.5)
  lu.assertErrorMsgContains("role must be", log.artifact, "x", "both")
end

os.exit(lu.LuaUnit.run("-o", "tap"), true)
