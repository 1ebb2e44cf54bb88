#!/usr/bin/env bash
# The slurm executor on a real single-node cluster
# (tools/slurm-test-cluster.sh; reused when one runs, else started and
# stopped here): the 3x3 fan-out with a select step under --executor slurm
# -j 4 gives a local run's outputs, lock and metrics, records job id, node
# and queue time, and its re-run is a no-op; a failing job, a job over its
# memory and one over its time limit (Slurm's minimum, one minute: it runs
# in the background of the other checks) give their messages; Ctrl-C and
# kill -9 of mlx leave no job in squeue.
. "$(dirname "$0")/tap.sh"
: "${MLX_SOURCE_ROOT:?set MLX_SOURCE_ROOT to the source tree}"
here=$MLX_SOURCE_ROOT/tests/e2e/executor
cluster=$MLX_SOURCE_ROOT/tools/slurm-test-cluster.sh
PATH=$PATH:/usr/sbin

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null || ! command -v sbatch >/dev/null; then
	echo "1..0 # SKIP no slurm (slurm-wlm and munge: tools/install-deps.sh)"
	exit 0
fi
if exports=$("$cluster" status 2>/dev/null); then
	eval "$exports"
else
	exports=$("$cluster" start) || { echo "Bail out! the test cluster did not start"; exit 1; }
	eval "$exports"
	trap '"$cluster" stop; rm -rf "$TEST_DIR" "$TAP_CAPTURE"' EXIT
fi

new_project() { # DIR
	mkdir -p "$1/data" && (cd "$1" && "$MLX" init >/dev/null) &&
		seq 1 100 >"$1/data/nums.txt" && cp "$here/fan.lua" "$1/" &&
		echo 'return { slurm = { poll = 0.5, heartbeat = 5 } }' >"$1/.mlx/config.lua"
}
step_metrics() { # DIR
	(cd "$1" && "$MLX" runs --all --json --limit 0) | python3 -c '
import json, sys
for r in json.load(sys.stdin):
    for k, v in sorted(r.get("metrics", {}).items()):
        if r.get("step"): print(r["step"], "%s=%s" % (k, v))' | sort
}
our_jobs() { # DIR: the jobs of the project in DIR that squeue lists as active
	squeue --noheader --format='%i %Z' | awk -v d="$(cd "$1" && pwd -P)" '$2 == d { print $1 }'
}

# The time limit first, in the background: Slurm ends it after a minute.
new_project slow
cat >slow/p.lua <<'LUA'
local p = require("mlx").pipeline "slow"
p:step "train" { outs = { "model.txt" }, resources = { time = "1" }, cmd = "sleep 300; echo > model.txt" }
return p
LUA
(cd slow && "$MLX" recipe p.lua --executor slurm >out.txt 2>err.txt; echo $? >rc.txt) &
slow_pid=$!

new_project local
(cd local && "$MLX" recipe fan.lua -j 4 >/dev/null 2>&1)
is "$?" 0 "the fan-out runs locally"
new_project cl
(cd cl && "$MLX" recipe fan.lua --executor slurm -j 4 >out.txt 2>err.txt)
is "$?" 0 "the fan-out runs with --executor slurm -j 4"
like "$(cat cl/err.txt)" "pipeline 'fan': 11 ran" "all 11 steps ran"
like "$(grep '^\[train-2-2\]' cl/out.txt)" '^\[train-2-2\] job [0-9_]+ step train-2-2$' \
	"each step ran in a Slurm job (\$SLURM_JOB_ID reached its shell) and its output came back"
is "$(cd cl && cat work/*)" "$(cd local && cat work/*)" "its outputs equal the local run's"
cmp -s cl/mlx.lock local/mlx.lock
is "$?" 0 "its mlx.lock equals the local run's"
is "$(step_metrics cl)" "$(step_metrics local)" "its step runs carry the local run's metrics (events and metrics files)"
runs=$(cd cl && "$MLX" runs --all --json --limit 0)
like "$runs" '"slurm.job_id": "[0-9]+(_[0-9]+)?"' "the job id is recorded on the step runs"
like "$runs" '"slurm.node": "localhost"' "and the node"
like "$runs" '"slurm.queue_s": "[0-9]+"' "and the queue time"
like "$(cat cl/.mlx/logs/*/train-1-1.log)" "^job [0-9_]+ step train-1-1$" "a step's output is in its log, as locally"
is "$(our_jobs cl)" "" "no job of the run is left in squeue"
(cd cl && "$MLX" recipe fan.lua --executor slurm -j 4 >/dev/null 2>err.txt)
like "$(cat cl/err.txt)" "pipeline 'fan': 11 up to date" "a re-run is a no-op"

# A step without executor runs locally, beside one on Slurm.
new_project mixed
cat >mixed/p.lua <<'LUA'
local p = require("mlx").pipeline "mixed"
p:step "remote" { outs = { "remote.txt" }, executor = "slurm", cmd = "echo ${SLURM_JOB_ID:-none} > remote.txt" }
p:step "here" { outs = { "here.txt" }, cmd = "echo ${SLURM_JOB_ID:-none} > here.txt" }
return p
LUA
(cd mixed && "$MLX" recipe p.lua >/dev/null 2>&1)
like "$(cat mixed/remote.txt):$(cat mixed/here.txt)" '^[0-9]+:none$' \
	"a step with executor = \"slurm\" runs in a job, a step without one locally"

# A failing job; a job over its memory (enforced here by Slurm's
# OverMemoryKill, see docs/cluster.md); a missing out.
new_project fail
cat >fail/p.lua <<'LUA'
local p = require("mlx").pipeline "fail"
p:step "bad" { outs = { "bad.txt" }, cmd = "echo trying; exit 3" }
p:step "hog" { outs = { "hog.txt" }, resources = { mem = "50M" },
  cmd = [[python3 -c 'import time; x = bytearray(400 << 20); x[::4096] = b"1" * len(x[::4096]); time.sleep(20)']] }
p:step "lazy" { outs = { "lazy.txt" }, cmd = "true" }
return p
LUA
(cd fail && "$MLX" recipe p.lua bad --executor slurm >/dev/null 2>err.txt)
is "$?" 1 "a failing job exits 1"
like "$(cat fail/err.txt)" "^mlx: error: step 'bad' failed \(exit status 3\); log: \.mlx/logs/.*/bad\.log$" \
	"with the step's exit status and its log"
like "$(cat fail/.mlx/logs/*/bad.log)" "^trying$" "which holds what the job printed"
(cd fail && "$MLX" recipe p.lua hog --executor slurm >/dev/null 2>err.txt)
is "$?" 1 "a job over its memory exits 1"
like "$(cat fail/err.txt)" "^mlx: error: step hog: Slurm job [0-9]+ ran out of memory \(mem=50M\)$" "saying so"
(cd fail && "$MLX" recipe p.lua lazy --executor slurm >/dev/null 2>err.txt)
like "$(cat fail/err.txt)" \
	"^mlx: error: step 'lazy' did not produce its out 'lazy.txt' after its slurm job completed: outs must be on a filesystem mlx and the nodes share$" \
	"a missing out after COMPLETED is a clear error"
# What this cluster cannot give: a partition it lacks is refused by sbatch;
# more CPUs than its node has is queued (no EnforcePartLimits) and would
# pend for ever, so the job is cancelled and the step fails at once.
cat >fail/r.lua <<'LUA'
local p = require("mlx").pipeline "asks"
p:step "gpu" { outs = { "gpu.txt" }, resources = { partition = "gpu" }, cmd = "echo > gpu.txt" }
p:step "wide" { outs = { "wide.txt" }, resources = { cpus = 512 }, cmd = "echo > wide.txt" }
return p
LUA
(cd fail && "$MLX" recipe r.lua gpu --executor slurm >/dev/null 2>err.txt)
is "$?:$(cat fail/err.txt | tail -n 1)" \
	"1:mlx: error: step 'gpu' could not start: sbatch refused the job: invalid partition specified: gpu; Batch job submission failed: Invalid partition name specified" \
	"a partition the cluster lacks: exit 1, sbatch's reason in one line"
start=$SECONDS
(cd fail && "$MLX" recipe r.lua wide --executor slurm >/dev/null 2>err.txt)
is "$?" 1 "a job asking more CPUs than a node has exits 1"
like "$(tail -n 1 fail/err.txt)" "^mlx: error: step wide: Slurm job [0-9_]+ asks for more than a node of its partition has \(PartitionConfig: cpus=512\), so Slurm would never start it; cancelled it: ask for less or another partition \(sinfo shows them\)$" \
	"saying what it asked and what to do"
is "$([ $((SECONDS - start)) -lt 30 ] && echo soon)" soon "without waiting"
is "$(our_jobs fail)" "" "and leaves no job in squeue"
git -C fail status >/dev/null 2>&1
test -e fail/mlx.lock && grep -q '"bad"' fail/mlx.lock
is "$?" 1 "nothing of the failed steps is locked"

# A failure without -k cancels the run's other jobs at once.
cat >fail/q.lua <<'LUA'
local p = require("mlx").pipeline "failfast"
p:step "bad" { outs = { "bad.txt" }, cmd = "sleep 2; exit 3" }
p:step "long" { outs = { "long.txt" }, cmd = "sleep 120; echo > long.txt" }
return p
LUA
start=$SECONDS
(cd fail && "$MLX" recipe q.lua --executor slurm -j 2 >/dev/null 2>err.txt)
is "$?" 1 "a failure among running jobs exits 1"
is "$([ $((SECONDS - start)) -lt 60 ] && echo soon)" soon "without waiting for the others"
is "$(our_jobs fail)" "" "whose jobs were cancelled: none is left in squeue"
like "$(cd fail && "$MLX" runs --all --json --limit 0)" '"message": "cancelled after a failure"' \
	"the cancelled step's run says why"

# Ctrl-C while jobs run or wait: every job is cancelled, exit 130.
new_project int
cat >int/p.lua <<'LUA'
local p = require("mlx").pipeline "int"
for i = 1, 4 do
  p:step("s" .. i) { outs = { "s" .. i .. ".txt" }, cmd = "sleep 120; echo > s" .. i .. ".txt" }
end
return p
LUA
(cd int && exec "$MLX" recipe p.lua --executor slurm -j 4 >/dev/null 2>err.txt) &
pid=$!
for _ in $(seq 300); do [ -n "$(squeue --noheader --states=RUNNING --format='%i %Z' | grep "$(cd int && pwd -P)")" ] && break; sleep 0.1; done
like "$(our_jobs int | wc -l)" "^[1-9]" "the run's jobs are in squeue"
kill -INT "$pid"
wait "$pid"
is "$?" 130 "Ctrl-C exits 130"
is "$(our_jobs int)" "" "and leaves no job in squeue"

# kill -9 of mlx: the jobs notice that mlx stopped beating (heartbeat 5 s).
(cd int && exec "$MLX" recipe p.lua --executor slurm -j 4 >/dev/null 2>&1) &
pid=$!
for _ in $(seq 300); do [ -n "$(squeue --noheader --states=RUNNING --format='%i %Z' | grep "$(cd int && pwd -P)")" ] && break; sleep 0.1; done
kill -9 "$pid"
wait "$pid" 2>/dev/null
for _ in $(seq 300); do [ -z "$(our_jobs int)" ] && break; sleep 0.1; done
is "$(our_jobs int)" "" "after kill -9 of mlx its jobs end within seconds"

wait "$slow_pid"
is "$(cat slow/rc.txt)" 1 "a job over its time limit exits 1"
# (What the step printed as it was stopped, if anything, is in its log.)
like "$(tail -n 1 slow/err.txt)" "^mlx: error: step train: Slurm job [0-9]+ ran over its time limit \(time=1\)(; log: .*)?$" \
	"saying so"
is "$(our_jobs slow)" "" "and leaves no job in squeue"

done_testing
