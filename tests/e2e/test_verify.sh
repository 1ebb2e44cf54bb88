#!/usr/bin/env bash
# mlx verify: re-executes steps in copies of the workspace under varied
# conditions and compares their outs with mlx.lock. It passes on the
# quickstart and on a fan-out; it names the step and the file when a step
# writes a timestamp, a random number, the time zone or the umask; JSON
# metrics are compared field by field, with --tolerance; a diverged step is
# marked in mlx.lock until a verify passes again; the copies go away, also
# on Ctrl-C; the workspace, the store and the earlier runs are untouched.
. "$(dirname "$0")/tap.sh"
: "${MLX_SOURCE_ROOT:?set MLX_SOURCE_ROOT}"
umask 022
export TZ=UTC LANG=C.UTF-8
unset LC_ALL

lock_unmarked() {
	"$MLX" lua -e 'local json = require "mlx.json"
	  local doc = json.load("mlx.lock")
	  for _, steps in pairs(doc.steps or {}) do
	    for _, entry in pairs(steps) do entry.deterministic = nil end
	  end
	  print(json.encode(doc))'
}

no_copies_left() { # DESCRIPTION — no verify-* directory under .mlx/tmp
	local left
	left=$(find .mlx/tmp -maxdepth 1 -name 'verify-*' 2>/dev/null)
	is "$left" "" "$1"
}

# What verify must not change: every workspace file outside .mlx, and the
# store's objects and run-cache entries; and mlx.lock but for the marking.
snapshot() {
	find . -path ./.mlx -prune -o -path ./mlx.lock -prune -o -type f -print | LC_ALL=C sort | xargs sha256sum
	find .mlx/cache -type f | LC_ALL=C sort | xargs sha256sum
}

# ---- the quickstart, as a fresh clone has it --------------------------------
mkdir -p recipes/quickstart
(cd "$MLX_SOURCE_ROOT/recipes/quickstart" && cp -r .mlx .gitignore data lib pipeline.lua quickstart.lua serve.py \
	"$TEST_DIR/recipes/quickstart/")
rm -rf recipes/quickstart/.mlx/cache recipes/quickstart/.mlx/*.db* recipes/quickstart/.mlx/logs recipes/quickstart/.mlx/tmp
cd recipes/quickstart || exit 1
mlx recipe pipeline.lua
is "$RC" 0 "the quickstart pipeline runs"
mlx runs --filter "status = 'FINISHED'"
runs_before=$(printf '%s\n' "$OUT" | wc -l)
snapshot >../../qs.before
cp mlx.lock ../../qs.lock
mlx verify
is "$RC" 0 "mlx verify passes on the quickstart (pipeline.lua by default)"
like "$OUT" "^reproduced: train$" "train is reproduced"
like "$OUT" "^reproduced: evaluate$" "evaluate is reproduced"
like "$ERR" "copy 2 of 2: \.mlx/tmp/verify-[0-9]+-1/bb/deeper/quickstart-copy \(TZ=XMT-14, LANG=fr_CH\.UTF-8, umask 077" \
	"the second copy is at another path, with another time zone, locale and umask"
verified=$(printf '%s\n' "$OUT" | grep -c '^reproduced: ')
like "$ERR" "verify: $verified steps reproduced in 2 copies" "every step, in two copies"
like "$verified" "^[45]$" "every step but those with cache = false (register acts on the world)"
snapshot >../../qs.after
cmp -s ../../qs.before ../../qs.after
is "$?" 0 "the workspace and the store are unchanged"
cmp -s mlx.lock ../../qs.lock
is "$?" 0 "mlx.lock is unchanged"
no_copies_left "the copies are removed"
mlx runs --filter "status = 'FINISHED' and tags.mlx.verify = 'passed'"
like "$OUT" "pipeline\.lua:train" "the verification is recorded: a run per step tagged mlx.verify = passed"
mlx runs --filter "status = 'FINISHED'"
is "$(printf '%s\n' "$OUT" | wc -l)" "$((runs_before + 1 + verified))" "the earlier runs are all still there (plus the verify run and its step runs)"
mlx exp --json
is "$(printf '%s' "$OUT" | python3 -c 'import json, sys; print(sum(1 for r in json.load(sys.stdin) if "mlx.verify" in r["tags"]))')" 0 \
	"the verify run is no experiment: mlx exp leaves it out"
mlx exp --all --json
is "$(printf '%s' "$OUT" | python3 -c 'import json, sys; print(sum(1 for r in json.load(sys.stdin) if "mlx.verify" in r["tags"]))')" 1 \
	"… and --all shows it"

# The params as locked, not the recipe's defaults.
mlx recipe pipeline.lua -p lr=1.0
is "$RC" 0 "a run with another learning rate"
mlx verify pipeline.lua train evaluate
is "$RC" 0 "verify re-executes the chosen steps with the locked lr, not the default"
is "$(printf '%s\n' "$OUT" | grep -c '^reproduced')" 2 "only the chosen steps are verified"
mlx runs --limit 3 --filter "tags.mlx.verify = 'passed'" --json
like "$OUT" '"lr": "?1' "the verify run records the locked params"

mlx verify pipeline.lua trian
is "$RC" 2 "an unknown step is a usage error"
is "$ERR" "mlx: error: no step named 'trian' in pipeline 'iris'; did you mean 'train'?" "with a suggestion"
mlx verify --tolerance=-1
is "$RC" 2 "a negative tolerance is a usage error"
cp lib/iris.lua ../../iris.lua.saved
echo "-- an edit" >>lib/iris.lua
mlx verify
is "$RC" 2 "a recipe whose inputs changed since the lock is bad input for verify"
like "$ERR" "^mlx: error: step 'split' is not what mlx.lock pins \(dep 'lib/iris.lua' changed|^mlx: error: cannot verify" \
	"naming the step or input, and what to do"
cp ../../iris.lua.saved lib/iris.lua
cd "$TEST_DIR" || exit 1

# ---- a fan-out of command steps ---------------------------------------------
mkdir fan && cd fan || exit 1
mlx init
mkdir data && seq 1 20 >data/in.txt
cat >pipeline.lua <<'LUA'
local p = require("mlx").pipeline "fan"
p:params { scale = 3 }
p:step "prepare" { deps = { "data/in.txt" }, outs = { "work/prepared.txt" },
  cmd = "mkdir -p work && sort -n data/in.txt > work/prepared.txt" }
for _, k in ipairs({ "a", "b", "c" }) do
  p:step("branch/" .. k) {
    deps = { "work/prepared.txt" }, outs = { "work/" .. k .. "/" }, metrics = { "work/" .. k .. ".json" },
    params = { "scale" },
    cmd = ([[mkdir -p work/K && awk -v s=${scale} '{ print $1 * s }' work/prepared.txt > work/K/scaled.txt
      && ls work/K > work/K/listing.txt && printf '{"sum": %d, "name": "K"}\n' "$(awk '{ t += $1 } END { print t }' work/K/scaled.txt)" > work/K.json]])
      :gsub("K", k):gsub("\n%s*", " "),
  }
end
p:step "select" { deps = { "work/a.json", "work/b.json", "work/c.json" }, outs = { "work/best.txt" },
  cmd = "cat work/a.json work/b.json work/c.json > work/best.txt" }
return p
LUA
mlx recipe pipeline.lua -p scale=5
is "$RC" 0 "the fan-out runs"
mlx verify
is "$RC" 0 "mlx verify passes on the fan-out"
is "$(printf '%s\n' "$OUT" | grep -c '^reproduced: ')" 5 "all five steps are reproduced"
mlx verify branch/b
is "$RC" 0 "one branch alone"
is "$OUT" "reproduced: branch/b" "is verified alone"
cd "$TEST_DIR" || exit 1

# ---- steps that do not reproduce --------------------------------------------
mkdir noisy && cd noisy || exit 1
mlx init
mkdir data && echo "a,b" >data/in.csv
cat >noisy.lua <<'LUA'
local p = require("mlx").pipeline "noisy"
p:step "base" { deps = { "data/in.csv" }, outs = { "out/base.csv" }, cmd = "mkdir -p out && cp data/in.csv out/base.csv" }
p:step "stamp" { deps = { "out/base.csv" }, outs = { "out/plain.csv", "out/stamp.txt" },
  cmd = "cp out/base.csv out/plain.csv && date +%s%N > out/stamp.txt" }
p:step "after" { deps = { "out/stamp.txt" }, outs = { "out/after.txt" }, cmd = "wc -c < out/stamp.txt > out/after.txt" }
p:step "dice" { deps = { "out/base.csv" }, outs = { "out/dice.txt" },
  cmd = "od -An -N8 -tu8 /dev/urandom > out/dice.txt" }
return p
LUA
mlx recipe noisy.lua
is "$RC" 0 "the noisy pipeline runs"
snapshot >../noisy.before
lock_unmarked >../noisy.lock.before
mlx verify noisy.lua
is "$RC" 1 "a step writing a timestamp fails verify with exit 1"
is "$(printf '%s\n' "$ERR" | tail -n 1)" "mlx: error: step 'stamp' did not reproduce: out/stamp.txt differs" \
	"the error names the first step that diverged and the differing file"
like "$OUT" "^DIVERGED: +stamp$" "the report says stamp diverged"
like "$OUT" "^  out/stamp\.txt differs \(copy 1\):$" "and which out"
printf '%s\n' "$OUT" | grep -q "out/plain.csv differs"
is "$?" 1 "not the out that reproduced"
like "$OUT" "^unchecked: +after: its input 'out/stamp\.txt' differed from mlx.lock" "a step downstream is unchecked, not blamed"
like "$OUT" "^DIVERGED: +dice$" "a step writing a random number diverges too"
like "$OUT" "^reproduced: base$" "and the deterministic step reproduces"
snapshot >../noisy.after
cmp -s ../noisy.before ../noisy.after
is "$?" 0 "the workspace and the store are unchanged"
lock_unmarked >../noisy.lock.after
cmp -s ../noisy.lock.before ../noisy.lock.after
is "$?" 0 "mlx.lock is unchanged but for the marking"
no_copies_left "the copies are removed after a failure"
mlx lua -e 'local s = require("mlx.json").load("mlx.lock").steps.noisy
  print(s.stamp.deterministic, s.dice.deterministic, s.base.deterministic, s.after.deterministic)'
is "$OUT" "false	false	nil	nil" "mlx.lock marks the diverged steps \"deterministic\": false, and only them"
mlx runs --filter "tags.mlx.verify = 'failed'"
like "$OUT" "noisy\.lua:stamp \[verify\] +FAILED" "the step's verify run is tagged mlx.verify = failed, and mlx runs says it is verify's"
like "$OUT" "noisy\.lua \[verify\] +FAILED" "and so is the verification's"
# What the report said stays with the step runs, for mlx runs and the ui.
mlx runs --limit 0 --filter "tags.mlx.verify != 'passed' and step IS NOT NULL" --json
messages=$(printf '%s' "$OUT" | python3 -c 'import json, sys
for r in json.load(sys.stdin): print(r["step"] + ": " + (r.get("message") or ""))' | sort)
like "$messages" "^stamp: not reproduced: out/stamp\.txt differs in copy 1 \([0-9a-f]{12}… -> [0-9a-f]{12}…\), out/stamp\.txt differs in copy 2 " \
	"a diverged step's run says which out differs in which copy"
like "$messages" "^after: unchecked: its input 'out/stamp\.txt' differed from mlx.lock, as made upstream$" \
	"an unchecked step's run says why"

mlx recipe noisy.lua --force-step stamp
is "$RC" 0 "the step runs again"
mlx lua -e 'print(require("mlx.json").load("mlx.lock").steps.noisy.stamp.deterministic)'
is "$OUT" "false" "the marking survives a later run of the step"
mlx status noisy.lua
is "$RC" 0 "and the lock stays valid"

# Made deterministic, the step is marked until a verify passes.
sed -i 's/date +%s%N/echo fixed/' noisy.lua
mlx recipe noisy.lua
is "$RC" 0 "the step, made deterministic, runs"
mlx lua -e 'print(require("mlx.json").load("mlx.lock").steps.noisy.stamp.deterministic)'
is "$OUT" "false" "still marked: it has not been verified"
mlx verify noisy.lua stamp after
is "$RC" 0 "verify now passes for it"
mlx lua -e 'local s = require("mlx.json").load("mlx.lock").steps.noisy
  print(s.stamp.deterministic, s.dice.deterministic)'
is "$OUT" "nil	false" "the marking is gone, the other step's kept"

# A step reading a file it does not declare fails in the copy.
echo "note" >notes.txt
cat >undeclared.lua <<'LUA'
local p = require("mlx").pipeline "undeclared"
p:step "reader" { deps = { "data/in.csv" }, outs = { "out/read.txt" }, cmd = "cat notes.txt > out/read.txt" }
return p
LUA
mlx recipe undeclared.lua
is "$RC" 0 "a step with an undeclared input runs in the workspace"
mlx verify undeclared.lua
is "$RC" 1 "but not in the copy"
like "$OUT" "^  failed in copy 1$" "verify says where it failed"
like "$OUT" "^    \| .*cat: notes\.txt: No such file or directory" "and shows the end of the copy's output"
is "$(printf '%s\n' "$ERR" | tail -n 1)" "mlx: error: step 'reader' failed in copy 1" "the error names the step"
mlx runs --limit 1 --filter "step = 'reader' and tags.mlx.verify = 'failed'" --json
like "$OUT" '"message": "not reproduced: failed in copy 1: cat: notes.txt: No such file or directory"' \
	"its run keeps the step's last line of output"
no_copies_left "the copies are removed"

# A recipe that fails in a copy before any step ran: nothing was checked,
# which is no divergence (exit 3, no step runs, mlx.lock not marked).
echo '{"n": 3}' >settings.json
cat >loads.lua <<'LUA'
local p = require("mlx").pipeline "loads"
local f = assert(io.open("settings.json"))
local n = f:read("a"):match("%d+")
f:close()
p:step "count" { deps = { "data/in.csv" }, outs = { "out/n.txt" }, cmd = "mkdir -p out && echo " .. n .. " > out/n.txt" }
return p
LUA
mlx recipe loads.lua
is "$RC" 0 "a recipe reading an untracked file as it loads runs in the workspace"
cp mlx.lock ../loads.lock
mlx verify loads.lua
is "$RC" 3 "in the copy it cannot load: verify exits 3, not 1"
is "$(printf '%s\n' "$ERR" | tail -n 1)" \
	"mlx: error: cannot verify: loads.lua failed in copy 1 before any step ran: loads.lua:2: settings.json: No such file or directory (a copy holds only the recipe, its params files, lib/, .mlx/config.lua and the steps' locked inputs: read other files in a step that declares them; --keep keeps the copies to look at)" \
	"one line naming the recipe, its error and what to do"
printf '%s\n' "$OUT" | grep -q DIVERGED
is "$?" 1 "no step is reported DIVERGED"
cmp -s mlx.lock ../loads.lock
is "$?" 0 "mlx.lock is unchanged: no step is marked non-deterministic"
no_copies_left "the copies are removed"
mlx runs --all --limit 0 --filter "tags.mlx.verify = 'error'"
like "$OUT" "loads\.lua \[verify\] +FAILED" "the attempt is a run tagged mlx.verify = error"
mlx runs --all --limit 0 --filter "tags.mlx.verify = 'failed' or tags.mlx.verify = 'passed'"
printf '%s\n' "$OUT" | grep -q "loads\.lua"
is "$?" 1 "not tagged failed or passed"
is "$(track_sql "SELECT count(*) FROM runs WHERE parent_id IN (SELECT run_id FROM tags WHERE key = 'mlx.verify' AND value = 'error')")" 0 \
	"with no step run"
mlx exp --json
printf '%s' "$OUT" | grep -q '"mlx.verify"'
is "$?" 1 "and no experiment"
cat >french.lua <<'LUA'
local p = require("mlx").pipeline "french"
if os.getenv("LANGUAGE") == "fr" then error("no French here") end
p:step "copy" { deps = { "data/in.csv" }, outs = { "out/copy.csv" }, cmd = "mkdir -p out && cp data/in.csv out/copy.csv" }
return p
LUA
mlx recipe french.lua
cp mlx.lock ../loads.lock
mlx verify french.lua
is "$RC" 3 "a recipe that fails to load only under the second copy's conditions"
like "$(printf '%s\n' "$ERR" | tail -n 1)" "^mlx: error: cannot verify: french\.lua failed in copy 2 before any step ran: french\.lua:2: no French here " \
	"is named with the copy and its error"
cmp -s mlx.lock ../loads.lock
is "$?" 0 "mlx.lock is still unchanged"
cd "$TEST_DIR" || exit 1

# ---- each condition is varied -----------------------------------------------
mkdir cond && cd cond || exit 1
mlx init
mkdir data && echo 0 >data/epoch
cat >cond.lua <<'LUA'
local p = require("mlx").pipeline "cond"
p:step "hour" { deps = { "data/epoch" }, outs = { "out/hour.txt" },
  cmd = "mkdir -p out && date -d @$(cat data/epoch) +%H > out/hour.txt" }
p:step "mask" { deps = { "data/epoch" }, outs = { "out/umask.txt" }, cmd = "mkdir -p out && umask > out/umask.txt" }
p:step "where" { deps = { "data/epoch" }, outs = { "out/where.txt" }, cmd = "mkdir -p out && pwd > out/where.txt" }
return p
LUA
cat >zone.lua <<'LUA'
local p = require("mlx").pipeline "zone"
p:step "zone" { deps = { "data/epoch" }, outs = { "out/zone.txt" }, env = { "TZ" },
  cmd = "mkdir -p out && date -d @0 +%H > out/zone.txt" }
return p
LUA
mlx recipe cond.lua
is "$RC" 0 "the condition probes run"
mlx verify cond.lua
is "$RC" 1 "verify fails"
like "$OUT" "^  out/hour\.txt differs \(copy 2\):$" "the time zone differs in the second copy"
like "$OUT" "^  out/umask\.txt differs \(copy 2\):$" "so does the umask"
like "$OUT" "^  out/where\.txt differs \(copy 1\):$" "and the directory, in both copies"
mlx recipe zone.lua
mlx verify zone.lua
is "$RC" 0 "a pipeline with a step that declares TZ in env keeps mlx's TZ"
like "$ERR" "copy 2 of 2: .*\(LANG=fr_CH" "and says so"
cd "$TEST_DIR" || exit 1

# ---- JSON metrics: a field-level diff, and --tolerance ----------------------
mkdir metrics && cd metrics || exit 1
mlx init
mkdir data && echo 1 >data/x
cat >fit.lua <<'LUA'
local p = require("mlx").pipeline "fit"
p:step "fit" { deps = { "data/x" }, metrics = { "out/metrics.json" },
  cmd = [[mkdir -p out && printf '{"accuracy": 0.9, "loss": 0.25%06d, "n": 3}\n' "$(( $(od -An -N4 -tu4 /dev/urandom) % 1000000 ))" > out/metrics.json]] }
p:step "report" { deps = { "out/metrics.json" }, outs = { "out/report.txt" }, cmd = "cp out/metrics.json out/report.txt" }
return p
LUA
mlx recipe fit.lua
is "$RC" 0 "a step with a noisy metric runs"
mlx verify fit.lua fit
is "$RC" 1 "a metric that differs fails verify"
like "$OUT" "^    loss: 0\.25[0-9]+ -> 0\.25[0-9]+ \([+-]" "the diff names the field, the locked and the new value"
printf '%s\n' "$OUT" | grep -q "accuracy"
is "$?" 1 "and not the fields that agree"
mlx verify fit.lua fit --tolerance 0.01
is "$RC" 0 "within --tolerance it passes"
like "$OUT" "^reproduced: fit \(2 metric fields within --tolerance\)$" "saying the fields agreed only within the tolerance"
mlx lua -e 'print(require("mlx.json").load("mlx.lock").steps.fit.fit.deterministic)'
is "$OUT" "false" "mlx.lock still marks it: its bytes differ"
mlx verify fit.lua --tolerance 0.01
is "$RC" 1 "a step reading that metrics file cannot be checked"
is "$(printf '%s\n' "$ERR" | tail -n 1)" \
	"mlx: error: step 'report' could not be checked: its input 'out/metrics.json' differed from mlx.lock (within --tolerance)" \
	"and verify says why"
mlx verify fit.lua fit --tolerance 0.0000000001
is "$RC" 1 "a tolerance below the noise still fails"
cd "$TEST_DIR" || exit 1

# ---- Ctrl-C: the copies and the steps go away --------------------------------
mkdir slow && cd slow || exit 1
mlx init
mkdir data && echo 1 >data/x
cat >slow.lua <<LUA
local p = require("mlx").pipeline "slow"
p:step "sleeper" { deps = { "data/x" }, outs = { "out/done" },
  cmd = "mkdir -p out && if [ -e $TEST_DIR/slow.flag ]; then echo \$\$ > $TEST_DIR/sleeper.pid; sleep 60; fi; echo done > out/done" }
return p
LUA
mlx recipe slow.lua
is "$RC" 0 "a quick run first"
cp mlx.lock ../slow.lock
touch ../slow.flag
"$MLX" verify slow.lua >../slow.out 2>../slow.err &
pid=$!
for _ in $(seq 1 200); do [ -s ../sleeper.pid ] && break; sleep 0.05; done
kill -INT $pid
wait $pid
is "$?" 130 "Ctrl-C during verify exits 130"
sleep 0.2
kill -0 "$(cat ../sleeper.pid)" 2>/dev/null
is "$?" 1 "the re-executed step's process is gone"
no_copies_left "the copies are removed on Ctrl-C"
cmp -s mlx.lock ../slow.lock
is "$?" 0 "mlx.lock is unchanged"
mlx runs --filter "tags.mlx.verify = 'failed' or status = 'KILLED'"
like "$OUT" "slow\.lua \[verify\] +KILLED" "the verification's run is KILLED"

done_testing
