#!/usr/bin/env bash
# mlx recipe running pipelines: what runs, what is restored, what fails, and
# that a failure or an interruption leaves the lock and the store as they were.
. "$(dirname "$0")/tap.sh"

mlx init
mkdir -p data
seq 1 100 >data/in.csv
# Every command appends its name to ran.log (not an out), so the tests can
# tell what really executed.
cat >recipe.lua <<'LUA'
local p = require("mlx").pipeline "demo"
p:params { seed = 7, lr = 0.1, fail = "no" }
p:step "split" { deps = { "data/in.csv" }, outs = { "work/split/" }, params = { "seed" },
  cmd = "echo split >> ran.log; mkdir -p work/split; head -n ${seed} data/in.csv > work/split/a" }
p:step "train" { deps = { "work/split/a" }, outs = { "work/model" }, params = { "lr", "fail" },
  cmd = "echo train >> ran.log; echo lr=${lr} > work/model; test ${fail} = no || { echo bad lr >&2; exit 3; }" }
p:step "eval" { deps = { "work/model", "work/split/" }, metrics = { "work/metrics.json" },
  run = function(ctx)
    local f = assert(io.open("ran.log", "a")); f:write("eval\n"); f:close()
    local m = assert(io.open("work/metrics.json", "w")); m:write('{"acc": 0.9}'); m:close()
    ctx.log("loss", 0.25, 1)
  end }
p:step "report" { deps = { "data/in.csv" }, outs = { "work/report.txt" },
  cmd = "echo report >> ran.log; wc -l < data/in.csv > work/report.txt" }
return p
LUA
ran() { if [ -f ran.log ]; then sort ran.log | tr '\n' ' '; rm -f ran.log; fi; }

mlx recipe recipe.lua
is "$RC" 0 "a first run exits 0"
is "$(ran)" "eval report split train " "every step runs the first time"
like "$ERR" "pipeline 'demo': 4 ran" "the summary says so"
[ -f mlx.lock ] && grep -q '"train"' mlx.lock
is "$?" 0 "mlx.lock records the steps"

mlx recipe recipe.lua
is "$(ran)" "" "a second run runs nothing"
like "$ERR" "4 up to date" "and says everything is up to date"

mlx recipe recipe.lua -p lr=0.05
is "$(ran)" "eval train " "changing a param re-runs the steps that declare it and those downstream, only"
is "$(cat work/model)" "lr=0.05" "with the new value"

mlx status recipe.lua --check
is "$RC" 1 "status --check exits 1 when a step is stale"
is "$OUT" "stale:    train: param 'lr' changed from 0.05 to 0.1; command changed (restore from the run-cache)
stale:    eval: dep 'work/model' changed (restore from the run-cache)" "status says which param changed from what to what, and that the run-cache restores both"

mlx recipe recipe.lua
is "$(ran)" "" "reverting the param runs nothing"
like "$ERR" "2 restored from the run-cache" "it restores the outputs from the run-cache"
is "$(cat work/model)" "lr=0.1" "with the old content"

mlx status recipe.lua --check
is "$RC" 0 "status --check exits 0 when everything is up to date"

mlx recipe recipe.lua -n -p seed=5
is "$RC" 0 "a dry run exits 0"
like "$OUT" "would run split: param 'seed' changed from 7 to 5" "a dry run says what would run and why"
is "$(ran)" "" "and runs nothing"

rm -rf work/model
mlx recipe recipe.lua train
is "$(ran)" "" "a deleted out is restored, not re-run"
is "$(cat work/model)" "lr=0.1" "with its content"

expected=$(cat work/report.txt)
echo "local edit" >work/report.txt
mlx recipe recipe.lua report
is "$(ran)" "" "a modified out is put back from the run-cache, not re-run"
is "$(cat work/report.txt)" "$expected" "as the step made it"

mlx recipe recipe.lua -f report
is "$(ran)" "report " "--force runs a step that is up to date"

mlx runs --limit 20
like "$OUT" "recipe.lua:eval +FINISHED" "each step is a run of its own"
like "$OUT" "CACHED" "restored steps are recorded as CACHED"

# mlx verify records a run per step it checked, with the step's key but no
# metrics: a step restored afterwards takes its metrics, and its
# mlx.restored_from, from the run that made the outputs, not from those.
mlx verify recipe.lua eval
is "$RC" 0 "mlx verify of eval passes"
mlx recipe recipe.lua -p lr=0.2
mlx recipe recipe.lua
like "$ERR" "2 restored from the run-cache" "a step restored after mlx verify"
restored=$(track_sql "SELECT id FROM runs WHERE step = 'eval' AND status = 'CACHED' ORDER BY start_time DESC, id DESC LIMIT 1")
from=$(track_sql "SELECT value FROM tags WHERE run_id = '$restored' AND key = 'mlx.restored_from'")
is "$(track_sql "SELECT count(*) FROM tags WHERE run_id = '$from' AND key = 'mlx.verify'")" 0 \
	"is restored from the run that made its outputs, not from mlx verify's record"
is "$(track_sql "SELECT key FROM metrics WHERE run_id = '$restored' ORDER BY key" | tr '\n' ' ')" "acc loss " \
	"and carries that run's logged metrics (loss) beside its metrics file's (acc)"
ran >/dev/null

# A failing step: exit 1, downstream skipped, lock and store unchanged.
cp mlx.lock lock.before
objects_before=$(find .mlx/cache/objects -type f | wc -l)
mlx recipe recipe.lua -p lr=0.3 -p fail=yes
is "$RC" 1 "a failing step exits 1"
like "$ERR" "mlx: error: step 'train' failed \(exit status 3\); log: \.mlx/logs/[0-9a-z]+/train\.log" "naming the step, its status and its log"
like "$OUT$ERR" "\[train\] bad lr" "the step's output is shown with its name"
is "$(ran)" "train " "the steps downstream of it are skipped"
cmp -s mlx.lock lock.before
is "$?" 0 "mlx.lock is unchanged"
is "$(find .mlx/cache/objects -type f | wc -l)" "$objects_before" "the store is unchanged"
log=$(printf '%s\n' "$ERR" | sed -n 's/.*log: \(.*\)$/\1/p')
like "$(cat "$log")" "bad lr" "the log named in the error holds the step's output"

# Independent steps run at once with -j 2.
cat >parallel.lua <<'LUA'
local p = require("mlx").pipeline "par"
p:step "a" { deps = { "data/in.csv" }, outs = { "par/a" }, cmd = "mkdir -p par; touch par/a.started; while [ ! -e par/b.started ]; do sleep 0.05; done; touch par/a" }
p:step "b" { deps = { "data/in.csv" }, outs = { "par/b" }, cmd = "mkdir -p par; touch par/b.started; while [ ! -e par/a.started ]; do sleep 0.05; done; touch par/b" }
LUA
timeout 20 "$MLX" recipe parallel.lua -j 2 >/dev/null 2>&1
is "$?" 0 "-j 2 runs two steps at the same time (each waits for the other to start)"

# Ctrl-C during a step: the run is KILLED, nothing is left running, exit 130.
cat >slow.lua <<'LUA'
local p = require("mlx").pipeline "slow"
p:step "sleeper" { deps = { "data/in.csv" }, outs = { "slow/out" }, cmd = "mkdir -p slow; echo $$ > slow.pid; sleep 60; touch slow/out" }
LUA
cp mlx.lock lock.before
"$MLX" recipe slow.lua 2>slow.err &
pid=$!
for _ in $(seq 1 100); do [ -s slow.pid ] && break; sleep 0.05; done
kill -INT $pid
wait $pid
is "$?" 130 "Ctrl-C during a step exits 130"
sleep 0.2
kill -0 "$(cat slow.pid)" 2>/dev/null
is "$?" 1 "the step's process is gone"
cmp -s mlx.lock lock.before
is "$?" 0 "mlx.lock is unchanged"
mlx runs --limit 2
like "$OUT" "slow.lua:sleeper +KILLED" "the step's run is KILLED"
mlx recipe recipe.lua
is "$RC" 0 "the next run works"

# Pipelines that cannot run: exit 2 with the steps named.
cat >cycle.lua <<'LUA'
local p = require("mlx").pipeline "loop"
p:step "a" { deps = { "y" }, outs = { "x" }, cmd = "a" }
p:step "b" { deps = { "x" }, outs = { "y" }, cmd = "b" }
LUA
mlx recipe cycle.lua
is "$RC" 2 "a cycle exits 2"
like "$ERR" "cycle in pipeline 'loop': a -> b -> a" "naming the steps"
cat >missing.lua <<'LUA'
local p = require("mlx").pipeline "m"
p:step "train" { deps = { "data/nope.csv" }, outs = { "model" }, cmd = "t" }
LUA
mlx recipe missing.lua
is "$RC" 2 "a missing dep exits 2"
like "$ERR" "step 'train': dep 'data/nope.csv' does not exist and no step produces it" "naming step and dep"
mlx recipe recipe.lua nosuch
is "$RC" 2 "an unknown target step exits 2"
mlx recipe recipe.lua -p nosuch=1
is "$RC" 2 "an unknown param exits 2"

# A Lua step's run records its wall time and its CPU time, each as what it
# is: it sleeps 0.3 s (wall, no CPU), then computes for 0.2 s of CPU.
cat >lua_time.lua <<'LUA'
local p = require("mlx").pipeline "t"
p:step "busy" { outs = { "busy.txt" }, run = function()
  require("mlx.core").sleep(0.3)
  local t = os.clock()
  while os.clock() - t < 0.2 do end
  io.open("busy.txt", "w"):write("done\n"):close()
end }
return p
LUA
mlx recipe lua_time.lua
is "$RC" 0 "a Lua step that sleeps and computes runs"
"$MLX" runs --json --limit 1 --filter "step = 'busy'" >busy.json
is "$(python3 -c 'import json; r = json.load(open("busy.json"))[0]
print(r["wall_seconds"] >= 0.3, 0.15 <= r["cpu_seconds"] < r["wall_seconds"])')" "True True" \
	"its run records the sleep in its wall time and the computing as CPU time"

# Params kept in a JSON file, as DVC's params.yaml: p:params "params.json"
# reads it from the project root; its values are the defaults, -p wins;
# mlx verify's copies have it too.
mkdir -p pf/sub && cd pf || exit 1
"$MLX" init >/dev/null
echo '{"lr": 0.1, "epochs": 3}' >params.json
cat >train.lua <<'LUA'
local p = require("mlx").pipeline "pf"
p:params "params.json"
p:step "train" { outs = { "model.txt" }, params = { "lr", "epochs" }, cmd = "echo ${lr} ${epochs} >model.txt" }
return p
LUA
mlx recipe train.lua
is "$RC $(cat model.txt)" "0 0.1 3" "a pipeline takes its params from a JSON params file"
echo '{"lr": 0.5, "epochs": 3}' >params.json
(cd sub && "$MLX" status ../train.lua >../st.out 2>&1)
is "$(grep stale st.out)" "stale:    train: param 'lr' changed from 0.1 to 0.5; command changed" \
	"a changed params file makes its steps stale, read from the root in a subdirectory too"
mlx recipe train.lua -p epochs=4
is "$RC $(cat model.txt)" "0 0.5 4" "-p overrides a value of the params file"
mlx recipe train.lua
mlx verify train.lua
is "$RC" 0 "mlx verify re-runs the steps with the params file in its copies"
printf 'local p = require("mlx").pipeline "x"\np:params "nope.json"\nreturn p\n' >missing.lua
mlx recipe missing.lua
is "$RC $ERR" "2 mlx: error: missing.lua:2: params file: cannot open $PWD/nope.json: No such file or directory" \
	"a missing params file is bad input, named with the recipe line"
printf 'local p = require("mlx").pipeline "x"\np:params "../params.json"\nreturn p\n' >outside.lua
mlx recipe outside.lua
is "$RC $ERR" "2 mlx: error: outside.lua:2: params file '../params.json' is outside the project" \
	"a params file outside the project is refused"
cd .. || exit 1

# A Lua step's key does not depend on where mlx was started: the recipe
# given as ../lua_step.lua from a subdirectory is the same recipe.
mkdir -p ls/sub && cd ls || exit 1
"$MLX" init >/dev/null
cat >lua_step.lua <<'LUA'
local p = require("mlx").pipeline "ls"
p:step "a" { outs = { "a.txt" }, run = function() io.open("a.txt", "w"):write("a\n"):close() end }
return p
LUA
mlx recipe lua_step.lua
(cd sub && "$MLX" status ../lua_step.lua >../st.out 2>&1; "$MLX" recipe ../lua_step.lua >../run.out 2>&1)
is "$(cat st.out)" "mlx: 1 tracked artifact up to date
mlx: pipeline 'ls': 1 step up to date" "a Lua step is up to date when its recipe is named from a subdirectory"
like "$(cat run.out)" "^mlx: pipeline 'ls': 1 up to date " "… and running it from there executes nothing"
cd .. || exit 1

done_testing
