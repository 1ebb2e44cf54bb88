-- mlx.track.events: ingesting the events file of real child processes
-- (Python and sh) while they run; malformed lines reported and skipped.
local lu = require "luaunit"
local fs = require "mlx.fs"
local track = require "mlx.track"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local support = require "support"

local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

TestEvents = {}

function TestEvents:setUp()
  self.dir = support.tempdir()
  self.store = assert(track.open(self.dir .. "/runs.db"))
  self.run = assert(self.store:start_run { git = false })
  self.events = self.dir .. "/events.jsonl"
  self.reported = {}
  self.reader = track.events_reader(self.run, self.events, {
    dir = self.dir,
    on_malformed = function(line, text, why) self.reported[#self.reported + 1] = { line, text, why } end,
  })
end

function TestEvents:tearDown()
  self.store:close()
  os.execute("rm -rf '" .. self.dir .. "'")
end

-- Another connection, as `mlx runs` in another process would read.
function TestEvents:seen()
  local other = assert(track.open(self.dir .. "/runs.db", { reap = false }))
  local run = assert(other:get(self.run.id))
  other:close()
  return run
end

function TestEvents:child(program, interpreter)
  local script = self.dir .. "/child"
  assert(fs.write(script, program))
  return assert(io.popen(("cd %s && MLX_RUN_ID=%s MLX_EVENTS=%s %s %s"):format(shell_quote(self.dir),
    self.run.id, shell_quote(self.events), interpreter, shell_quote(script))))
end

function TestEvents:test_events_are_ingested_while_the_child_runs()
  -- The child logs a point, says so, then waits for the go-ahead: it is
  -- still running while the reader polls.
  local child = self:child([[
import json, os, sys, time
for step in range(3):
    with open(os.environ["MLX_EVENTS"], "a") as f:
        f.write(json.dumps({"metric": "loss", "value": 1.0 / (step + 1), "step": step}) + "\n")
    print(step, flush=True)
    while not os.path.exists("go%d" % step):
        time.sleep(0.005)
]], "python3 -u")
  for step = 0, 2 do
    lu.assertEquals(child:read("l"), tostring(step))
    lu.assertEquals(self.reader:poll(), 1)
    lu.assertEquals(self:seen().metrics.loss, 1.0 / (step + 1))
    assert(fs.write(self.dir .. "/go" .. step, ""))
  end
  lu.assertTrue(child:close())
  lu.assertEquals(self.reader:finish(), 3)
  lu.assertEquals(#assert(self.store:metric_history(self.run.id, "loss")), 3)
end

function TestEvents:test_malformed_lines_are_reported_and_skipped()
  local child = self:child([[
e="$MLX_EVENTS"
echo '{"metric": "acc", "value": 0.5, "step": 1}' >>"$e"
echo '{"metric": "acc", "value": 0.6, "step": 2' >>"$e"
echo 'loss=0.3' >>"$e"
echo '' >>"$e"
echo '{"metric": "acc", "value": "high"}' >>"$e"
echo '{"metric": "acc", "value": 0.7, "step": 2.5}' >>"$e"
echo '{"weather": "fine"}' >>"$e"
echo '[1, 2]' >>"$e"
echo '{"metric": "acc", "value": 0.8, "step": 3}' >>"$e"
]], "sh")
  lu.assertTrue(child:close())
  local events, malformed = self.reader:finish()
  lu.assertEquals(events, 2)
  lu.assertEquals(#malformed, 6)
  local lines = {}
  for i, m in ipairs(self.reported) do lines[i] = m[1] end
  lu.assertEquals(lines, { 2, 3, 5, 6, 7, 8 }) -- line 4 is empty: not an event, not an error
  lu.assertEquals(self.reported[2][2], "loss=0.3")
  lu.assertStrContains(self.reported[1][3], "invalid JSON at column")
  lu.assertEquals(self.reported[3][3], '"value" must be a number')
  lu.assertEquals(self.reported[4][3], '"step" must be an integer')
  lu.assertStrContains(self.reported[5][3], 'no "metric", "metrics"')
  lu.assertEquals(self.reported[6][3], "not a JSON object")
  local points = assert(self.store:metric_history(self.run.id, "acc"))
  lu.assertEquals({ #points, points[1].value, points[2].value }, { 2, 0.5, 0.8 })
end

function TestEvents:test_every_kind_of_event_from_python()
  assert(fs.write(self.dir .. "/model.bin", "weights"))
  local child = self:child([[
import json, os
with open(os.environ["MLX_EVENTS"], "a") as f:
    for e in [{"param": "lr", "value": 0.1}, {"params": {"opt": "adam", "epochs": 3, "tiny": True}},
              {"tag": "stage", "value": "train"}, {"tags": {"owner": "ml"}},
              {"metrics": {"p": 0.5, "r": 0.25}, "step": 7},
              {"metric": "loss", "value": float("nan"), "step": 0},
              {"metric": "loss", "value": float("inf"), "step": 1, "timestamp": 1700000000000},
              {"artifact": "model.bin"}, {"artifact": "model.bin", "role": "in"}]:
        f.write(json.dumps(e) + "\n")
]], "python3")
  lu.assertTrue(child:close())
  lu.assertEquals(self.reader:finish(), 9)
  lu.assertEquals(self.reported, {})
  local run = self:seen()
  lu.assertEquals(run.params, { lr = "0.1", opt = "adam", epochs = "3", tiny = "true" })
  lu.assertEquals(run.tags, { stage = "train", owner = "ml" })
  lu.assertEquals({ run.metrics.p, run.metrics.r, run.metrics.loss }, { 0.5, 0.25, math.huge })
  local loss = assert(self.store:metric_history(self.run.id, "loss"))
  lu.assertTrue(loss[1].value ~= loss[1].value) -- NaN
  lu.assertEquals(loss[2].ts, 1700000000000)
  lu.assertEquals(#run.artifacts, 2)
  lu.assertEquals(run.artifacts[2].size, 7)
end

function TestEvents:test_a_partial_line_waits_for_its_newline()
  lu.assertEquals(self.reader:poll(), 0) -- no file yet
  local f = assert(io.open(self.events, "a"))
  f:setvbuf("no")
  f:write('{"metric": "a", "value": 1}\n{"metric": "a", ')
  lu.assertEquals(self.reader:poll(), 1)
  f:write('"value": 2}\n{"metric": "b", "value": 3}')
  lu.assertEquals(self.reader:poll(), 1)
  f:close()
  lu.assertEquals(self.reader:finish(), 3) -- the last line needs no newline
  local run = self:seen()
  lu.assertEquals(run.metrics, { a = 2, b = 3 })
  lu.assertEquals(self.reported, {})
end

os.exit(lu.LuaUnit.run("-o", "tap"), true)
