#!/usr/bin/env bash
# Plan = run: for each edit of a fan-out pipeline, the steps that
# `mlx recipe -n` and `mlx status` announce as run, restore and up to date
# are exactly those the next real run executes, restores and skips.
. "$(dirname "$0")/tap.sh"

mlx init
mkdir -p data
echo "input v1" >data/input.txt
# DROP names a train step the recipe leaves out; CHANGE one whose command
# changes (and writes something else).
cat >fanout.lua <<'LUA'
local p = require("mlx").pipeline "fanout"
p:params { scale = 1 }
p:step "prepare" { deps = { "data/input.txt" }, outs = { "work/prepared.txt" },
  cmd = "cp data/input.txt work/prepared.txt" }
local grid = {}
for a = 1, 3 do
  for b = 1, 3 do
    local name = ("t%d%d"):format(a, b)
    if os.getenv("DROP") ~= name then
      local out = ("grid/%d_%d/metrics.json"):format(a, b)
      local extra = os.getenv("CHANGE") == name and " changed" or ""
      p:step(name) { deps = { "work/prepared.txt" }, outs = { out }, params = { "scale" },
        cmd = ("mkdir -p grid/%d_%d; echo '{\"score\": %d, \"scale\": ${scale}}%s' > %s; cat work/prepared.txt >> %s")
          :format(a, b, a * b, extra, out, out) }
      grid[#grid + 1] = out
    end
  end
end
p:step "select" { deps = grid, outs = { "best.txt" }, cmd = "cat grid/*/metrics.json | sort | tail -1 > best.txt" }
return p
LUA

# The plan of -n: "run: a b …|restore: …|blocked: …" (each list sorted).
plan() {
	mlx recipe fanout.lua -n "$@"
	printf 'run: %s|restore: %s|blocked: %s' \
		"$(printf '%s\n' "$OUT" | sed -n 's/^would run \([^:]*\):.*/\1/p' | sort | tr '\n' ' ')" \
		"$(printf '%s\n' "$OUT" | sed -n 's/^would restore \([^:]*\):.*/\1/p' | sort | tr '\n' ' ')" \
		"$(printf '%s\n' "$OUT" | sed -n 's/^blocked: \([^:]*\):.*/\1/p' | sort | tr '\n' ' ')"
}
# The same from mlx status.
status_plan() {
	mlx status fanout.lua "$@"
	local stale
	stale=$(printf '%s\n' "$OUT" | sed -n 's/^stale: *\([^:]*\):.*/\1 &/p')
	printf 'run: %s|restore: %s|blocked: %s' \
		"$(printf '%s\n' "$stale" | grep -v '(restore from the run-cache)$' | grep -v '(blocked)$' | cut -d' ' -f1 | grep . | sort | tr '\n' ' ')" \
		"$(printf '%s\n' "$stale" | grep '(restore from the run-cache)$' | cut -d' ' -f1 | sort | tr '\n' ' ')" \
		"$(printf '%s\n' "$stale" | grep '(blocked)$' | cut -d' ' -f1 | sort | tr '\n' ' ')"
}
# What a real run did, in the same form (a failed step counts as blocked).
real() {
	mlx recipe fanout.lua "$@"
	printf 'run: %s|restore: %s|blocked: %s' \
		"$(printf '%s\n' "$ERR" | sed -n 's/^mlx: ran \([^ ]*\).*$/\1/p' | sort | tr '\n' ' ')" \
		"$(printf '%s\n' "$ERR" | sed -n 's/^mlx: restored \(.*\) from the run-cache$/\1/p' | sort | tr '\n' ' ')" \
		"$(printf '%s\n' "$ERR" | sed -n "s/^mlx: error: step '\([^']*\)'.*/\1/p" | sort | tr '\n' ' ')"
}

check() { # DESCRIPTION EXPECTED [ARGS…] — -n, status and the run agree, and equal EXPECTED
	local what=$1 expected=$2
	shift 2
	local planned said done
	planned=$(plan "$@")
	said=$(status_plan "$@")
	done=$(real "$@")
	is "$planned" "$expected" "$what: -n announces it"
	is "$said" "$expected" "$what: status announces the same"
	is "$done" "$expected" "$what: the run does exactly that"
}

ALL="prepare select t11 t12 t13 t21 t22 t23 t31 t32 t33 "
TRAIN="t11 t12 t13 t21 t22 t23 t31 t32 t33 "
check "first run" "run: $ALL|restore: |blocked: "
check "no change" "run: |restore: |blocked: "
check "a param changed" "run: select $TRAIN|restore: |blocked: " -p scale=2
check "the param reverted" "run: |restore: select $TRAIN|blocked: "
echo "input v2" >data/input.txt
check "a dep edited" "run: $ALL|restore: |blocked: "
echo "input v1" >data/input.txt
check "the dep reverted" "run: |restore: $ALL|blocked: "
rm grid/2_2/metrics.json
check "an out deleted" "run: |restore: t22 |blocked: "
export CHANGE=t31
check "a command changed" "run: select t31 |restore: |blocked: "
unset CHANGE
check "the command reverted" "run: |restore: select t31 |blocked: "
export DROP=t33
check "a step removed" "run: select |restore: |blocked: "
grep -c '"t[0-9][0-9]"' mlx.lock >count.txt
is "$(cat count.txt)" 8 "the lock holds exactly the declared steps"
unset DROP
rm data/input.txt
mlx recipe fanout.lua -n
is "$RC" 2 "a missing dep that no step produces: -n refuses the pipeline (exit 2)"
like "$ERR" "step 'prepare': dep 'data/input.txt' does not exist and no step produces it" "naming the step and dep"
mlx status fanout.lua
is "$RC" 2 "status refuses it the same way"
mlx recipe fanout.lua
is "$RC" 2 "and so does the run, before running anything"
echo "input v1" >data/input.txt

# A missing pipeline out: plain status reports it, checkout restores it.
cp best.txt best.before
rm best.txt
mlx status --check
is "$RC" 1 "status --check fails when a pipeline out is missing"
like "$OUT" "^missing: +best.txt \(out of step fanout/select\)" "naming the out and its step"
mlx checkout
is "$RC" 0 "mlx checkout restores pipeline outs"
like "$OUT" "restored +best.txt" "saying so"
cmp -s best.txt best.before
is "$?" 0 "byte for byte"
mlx status --check
is "$RC" 0 "after which status is clean"

# A plan stops at a step that cannot be decided (its tool's version command
# fails) as a run stops at a failure: the up-to-date steps after it in the
# run order are skipped, those before it up to date; with -k every other
# step is decided.
mkdir -p tooled && cd tooled || exit 1
mlx init
echo a >a.txt
cat >r.lua <<'LUA'
local p = require("mlx").pipeline "tooled"
p:step "a" { deps = { "a.txt" }, outs = { "a.out" }, cmd = "cp a.txt a.out" }
p:step "b" { deps = { "a.txt" }, outs = { "b.out" }, tools = { t = os.getenv("TOOL") or "echo 1" },
  cmd = "cp a.txt b.out" }
p:step "c" { deps = { "a.txt" }, outs = { "c.out" }, cmd = "cp a.txt c.out" }
p:step "d" { deps = { "c.out" }, outs = { "d.out" }, cmd = "cp c.out d.out" }
return p
LUA
mlx recipe r.lua -q
is "$RC" 0 "a pipeline with a tool runs"
TOOL="exit 3" mlx recipe r.lua -n
is "$RC" 1 "its plan fails when the tool's version command fails"
like "$ERR" "pipeline 'tooled': 1 up to date, 1 failed, 2 skipped" "the steps after it are skipped"
TOOL="exit 3" mlx recipe r.lua -n -k
like "$ERR" "pipeline 'tooled': 3 up to date, 1 failed" "with -k the others are up to date"
cd .. || exit 1

done_testing
