#!/usr/bin/env bash
# Executors without a cluster: a step without `executor` runs locally; a
# project's own executor (lib/mlx/executor/fake.lua) runs the 3x3 fan-out
# with the outputs, lock and metrics of a local run; the choice's
# precedence; -j counts a local step's cpus; Lua steps stay local, said
# once; bad names and resources exit 2 naming the recipe line; a missing
# or unconfigured Slurm is said in one line.
. "$(dirname "$0")/tap.sh"
: "${MLX_SOURCE_ROOT:?set MLX_SOURCE_ROOT to the source tree}"
here=$MLX_SOURCE_ROOT/tests/e2e/executor

new_project() { # DIR
	mkdir -p "$1/data" && (cd "$1" && "$MLX" init >/dev/null) &&
		seq 1 100 >"$1/data/nums.txt" && cp "$here/fan.lua" "$1/" && cp -r "$here/lib" "$1/"
}
# The latest value of each metric of each step run, one "step key=value" a line.
step_metrics() { # DIR
	(cd "$1" && "$MLX" runs --all --json --limit 0) | python3 -c '
import json, sys
for r in json.load(sys.stdin):
    for k, v in sorted(r.get("metrics", {}).items()):
        if r.get("step"): print(r["step"], "%s=%s" % (k, v))' | sort
}

new_project local
(cd local && "$MLX" recipe fan.lua -j 4 >out.txt 2>err.txt)
is "$?" 0 "the fan-out runs locally"
like "$(cat local/err.txt)" "pipeline 'fan': 11 ran" "all 11 steps ran"
like "$(cat local/out.txt)" '^\[train-1-1\] job none step train-1-1$' \
	"\${SLURM_JOB_ID:-none} and \${MLX_STEP} reach the shell unchanged"

new_project fake
(cd fake && "$MLX" recipe fan.lua --executor fake -j 4 >out.txt 2>err.txt)
is "$?" 0 "the project's own executor runs the same fan-out"
is "$(sort fake/fake-executor.log | tr '\n' ' ')" \
	"prep - select - train-1-1 - train-1-2 - train-1-3 - train-2-1 - train-2-2 - train-2-3 - train-3-1 - train-3-2 - train-3-3 - " \
	"it was given every command step, once"
is "$(cd fake && cat work/*)" "$(cd local && cat work/*)" "its outputs equal the local run's"
cmp -s fake/mlx.lock local/mlx.lock
is "$?" 0 "its mlx.lock equals the local run's"
is "$(step_metrics fake)" "$(step_metrics local)" "its step runs carry the local run's metrics"
like "$(step_metrics local)" "^select best=5053" "(the metrics compared are there)"
like "$(cd fake && "$MLX" runs --all --json --limit 0)" '"fake.executor": "fake"' \
	"the tags its results carry are recorded on the step runs"
(cd fake && "$MLX" recipe fan.lua --executor fake >/dev/null 2>err.txt)
like "$(cat fake/err.txt)" "pipeline 'fan': 11 up to date" "a re-run is a no-op"

# Precedence: command line > step > pipeline > config.
mkdir prec && (cd prec && "$MLX" init >/dev/null) && cp -r "$here/lib" prec/
cat >prec/p.lua <<'LUA'
local p = require("mlx").pipeline "prec"
p:executor { "fake", tag = "from-pipeline" }
p:step "own" { outs = { "own.txt" }, executor = "local", cmd = "echo own > own.txt" }
p:step "inherits" { outs = { "inherits.txt" }, resources = { mem = "2G" }, cmd = "echo x > inherits.txt" }
p:step "lua" { outs = { "lua.txt" }, run = function() io.open("lua.txt", "w"):write("lua\n"):close() end }
return p
LUA
(cd prec && "$MLX" recipe p.lua -j 1 >/dev/null 2>err.txt)
is "$?" 0 "a pipeline with p:executor runs"
is "$(cat prec/fake-executor.log)" "inherits 2G" \
	"the pipeline's executor runs the steps without their own; a step's own wins; resources reach it"
like "$(cat prec/err.txt)" "^mlx: Lua steps \(run = function\) run inside mlx, on this machine: lua$" \
	"Lua steps stay local, said once"
rm prec/fake-executor.log
(cd prec && "$MLX" recipe p.lua -f --executor local >/dev/null 2>&1)
is "$([ -e prec/fake-executor.log ] && echo used || echo unused)" unused "--executor wins over the pipeline"
sed -i '/p:executor/d' prec/p.lua
echo 'return { executor = "fake", fake = { tag = "from-config" } }' >prec/.mlx/config.lua
(cd prec && "$MLX" recipe p.lua -f >/dev/null 2>&1)
is "$(cat prec/fake-executor.log)" "inherits 2G" "without one in the pipeline, the config's executor runs it"
like "$(cd prec && "$MLX" runs --all --json --limit 2)" '"fake.executor": "from-config"' \
	"the config's options reach the executor"

# -j counts a local step's cpus: two 2-cpu steps under -j 2 do not overlap;
# two 1-cpu steps do; a step asking more than -j runs alone.
mkdir cpus && (cd cpus && "$MLX" init >/dev/null)
cat >cpus/p.lua <<'LUA'
local p = require("mlx").pipeline "cpus"
p:params { cpus = 1 }
for _, name in ipairs({ "a", "b" }) do
  p:step(name) { outs = { name .. ".txt" }, params = { "cpus" }, resources = { cpus = p:param("cpus") },
    cmd = "echo start >> order.log; sleep 0.5; echo end >> order.log; echo ${cpus} > " .. name .. ".txt" }
end
return p
LUA
(cd cpus && "$MLX" recipe p.lua -j 2 -p cpus=2 >/dev/null 2>&1)
is "$(tr '\n' ' ' <cpus/order.log)" "start end start end " "two 2-cpu steps under -j 2 run one after the other"
rm cpus/order.log
(cd cpus && "$MLX" recipe p.lua -j 2 -p cpus=1 >/dev/null 2>&1)
is "$(tr '\n' ' ' <cpus/order.log)" "start start end end " "two 1-cpu steps under -j 2 run together"
rm cpus/order.log
(cd cpus && "$MLX" recipe p.lua -j 2 -p cpus=4 >/dev/null 2>&1)
is "$?:$(tr '\n' ' ' <cpus/order.log)" "0:start end start end " "a step asking more than -j runs alone"

# Bad input: exit 2, one line naming the place.
mkdir bad && (cd bad && "$MLX" init >/dev/null)
cat >bad/p.lua <<'LUA'
local p = require("mlx").pipeline "bad"
p:step "a" { outs = { "a.txt" }, resources = { mem = "lots" }, cmd = "true" }
return p
LUA
(cd bad && "$MLX" recipe p.lua >/dev/null 2>err.txt)
is "$?:$(cat bad/err.txt)" \
	"2:mlx: error: p.lua:2: step 'a': resources.mem must be a size such as \"512M\" or \"8G\" (K, M, G, T; no unit: megabytes), not lots" \
	"a bad resources value exits 2 naming the line and field"
sed -i 's/mem = "lots"/cpu = 2/' bad/p.lua
(cd bad && "$MLX" recipe p.lua >/dev/null 2>err.txt)
is "$?:$(cat bad/err.txt)" "2:mlx: error: p.lua:2: step 'a': resources: unknown field 'cpu' (did you mean 'cpus'?)" \
	"an unknown resources field exits 2 with a suggestion"
sed -i 's/resources = { cpu = 2 }/executor = "nosuch"/' bad/p.lua
(cd bad && "$MLX" recipe p.lua >/dev/null 2>err.txt)
is "$?:$(cat bad/err.txt)" \
	"2:mlx: error: step 'a': executor from the step: no executor named 'nosuch' (built in: local, slurm; a project adds one as lib/mlx/executor/nosuch.lua)" \
	"an unknown executor exits 2 naming the step and where it was chosen"
(cd bad && "$MLX" recipe p.lua --executor 'x y' >/dev/null 2>err.txt)
is "$?:$(cat bad/err.txt)" \
	"2:mlx: error: --executor: executor must be a name such as \"local\" or \"slurm\", not x y" \
	"a malformed --executor exits 2"
test -e bad/a.txt
is "$?" 1 "and nothing ran"

# The slurm executor where Slurm is missing or not set up: one line that
# says which, never a PATH hint for an sbatch that is on PATH.
sed -i 's/executor = "nosuch"/executor = "slurm"/' bad/p.lua
mkdir -p nobin
(cd bad && PATH="$TEST_DIR/nobin" "$MLX" recipe p.lua >/dev/null 2>err.txt)
is "$?:$(tail -n 1 bad/err.txt)" \
	"1:mlx: error: step 'a' could not start: executor 'slurm': sbatch is not on PATH: install Slurm's client commands or add them to PATH, see docs/cluster.md" \
	"no sbatch on PATH: the step could not start, and the message says so"
(cd bad && SLURM_CONF="$TEST_DIR/no-slurm.conf" "$MLX" recipe p.lua >/dev/null 2>err.txt)
is "$?:$(tail -n 1 bad/err.txt)" \
	"1:mlx: error: step 'a' could not start: executor 'slurm': SLURM_CONF names $TEST_DIR/no-slurm.conf, which does not exist: point it at the cluster's slurm.conf or unset it, see docs/cluster.md" \
	"a SLURM_CONF that names nothing is said at once (sbatch would retry it for 60 s)"
mkdir -p fakebin
cat >fakebin/sbatch <<'SH'
#!/bin/sh
echo "sbatch: error: resolve_ctls_from_dns_srv: res_nsearch error: Unknown host" >&2
echo "sbatch: fatal: Could not establish a configuration source" >&2
exit 1
SH
chmod +x fakebin/sbatch
(cd bad && PATH="$TEST_DIR/fakebin:$PATH" "$MLX" recipe p.lua >/dev/null 2>err.txt)
is "$?:$(tail -n 1 bad/err.txt)" \
	"1:mlx: error: step 'a' could not start: executor 'slurm': sbatch does not work here (sbatch: fatal: Could not establish a configuration source): Slurm must be configured on this machine (slurm.conf, a reachable slurmctld), see docs/cluster.md" \
	"an sbatch that cannot reach a cluster: one line with its reason"
test -e bad/a.txt
is "$?" 1 "and nothing ran"

# A step whose executor cannot run jobs keeps the outs it had: they are
# removed only when the step is about to run.
sed -i 's/executor = "slurm", cmd = "true"/cmd = "echo ok >a.txt"/' bad/p.lua
(cd bad && "$MLX" recipe p.lua >/dev/null 2>&1)
is "$?:$(cat bad/a.txt)" "0:ok" "the step runs locally"
(cd bad && PATH="$TEST_DIR/fakebin:$PATH" "$MLX" recipe p.lua -f --executor slurm >/dev/null 2>err.txt)
like "$?:$(tail -n 1 bad/err.txt)" "^1:mlx: error: step 'a' could not start: executor 'slurm': sbatch does not work here" \
	"forced onto an executor that cannot run it, it fails"
is "$(cat bad/a.txt)" "ok" "and its out is still there"
(cd bad && "$MLX" status p.lua --check >/dev/null 2>&1)
is "$?" 0 "and up to date"

done_testing
