#!/usr/bin/env bash
# The experiments table (mlx exp): three trainings with different params,
# their accuracy and loss side by side, sorted, as a table, Markdown, CSV
# and JSON; a baseline; a restored step carrying its producer's metrics; one
# series per metric; no-op invocations hidden; mlx runs tag and rm; usage
# errors that leave no run.
. "$(dirname "$0")/tap.sh"

json() { # PYTHON-EXPRESSION over `d`, the JSON on stdin
	python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"
}
nruns() { # the number of runs in the database, hidden ones included
	"$MLX" runs --all --json | json 'len(d)'
}

mlx init
mkdir src
cat >src/train.py <<'PY'
import json, os, sys
lr, epochs = float(sys.argv[1]), int(sys.argv[2])
def log(**event):
    if "MLX_EVENTS" in os.environ:
        with open(os.environ["MLX_EVENTS"], "a") as f:
            f.write(json.dumps(event) + "\n")
loss = 1.0
for epoch in range(1, epochs + 1):
    loss *= 1 - lr / 2
    log(metric="loss", value=loss, step=epoch)
os.makedirs("work", exist_ok=True)
with open("work/model.txt", "w") as f:
    f.write(repr(lr) + "\n")
with open("work/train.json", "w") as f:
    json.dump({"loss": loss, "epochs": epochs}, f)
PY
cat >pipeline.lua <<'LUA'
local p = require("mlx").pipeline "exp"
p:params { lr = 0.1, epochs = 5 }
p:step "train" {
  deps = { "src/train.py" }, params = { "lr", "epochs" },
  outs = { "work/model.txt" }, metrics = { "work/train.json" },
  cmd = "python3 src/train.py ${lr} ${epochs}",
}
p:step "evaluate" {
  deps = { "work/model.txt" }, outs = { "work/eval.txt" },
  run = function(ctx)
    local lr = tonumber(io.open("work/model.txt"):read("l"))
    ctx.log("accuracy", 1 - (lr - 0.6) ^ 2)
    io.open("work/eval.txt", "w"):write("done\n"):close()
  end,
}
return p
LUA

for lr in 0.1 0.5 0.9; do
	mlx recipe pipeline.lua -p lr=$lr
	is "$RC" 0 "training with lr=$lr"
done

mlx exp --sort -metrics.accuracy
is "$RC" 0 "mlx exp shows the table"
is "$(printf '%s\n' "$OUT" | head -1 | tr -s ' ')" \
	"ID RECIPE STATUS START params.epochs params.lr metrics.accuracy metrics.epochs metrics.loss" \
	"columns: id, recipe, status, start, the params, the metrics"
is "$(printf '%s\n' "$OUT" | awk 'NR > 1 { print $7, $8, $10 }' | tr '\n' ';')" \
	"0.5 0.99 0.237305;0.9 0.91 0.0503284;0.1 0.75 0.773781;" \
	"one row per training, params and accuracy and loss side by side, sorted by accuracy"
mlx exp --sort metrics.loss --columns 'params.lr,metrics.*'
is "$(printf '%s\n' "$OUT" | head -1 | tr -s ' ')" "ID params.lr metrics.accuracy metrics.epochs metrics.loss" \
	"--columns with a glob"
is "$(printf '%s\n' "$OUT" | awk 'NR > 1 { print $2 }' | tr '\n' ' ')" "0.9 0.5 0.1 " "--sort ascending"

mlx exp --json --sort -metrics.accuracy
is "$RC" 0 "--json"
is "$(printf '%s' "$OUT" | json '[(r["params"]["lr"], round(r["metrics"]["accuracy"], 4), round(r["metrics"]["loss"], 4)) for r in d]')" \
	"[('0.5', 0.99, 0.2373), ('0.9', 0.91, 0.0503), ('0.1', 0.75, 0.7738)]" \
	"a JSON array of rows with params and metrics objects, parsed by python3's json"
read -r best mid worst <<<"$(printf '%s' "$OUT" | json '" ".join(r["id"] for r in d)')"
is "$(printf '%s' "$OUT" | json 'd[0]["command"], d[0]["status"]')" \
	"mlx recipe pipeline.lua -p lr=0.5 FINISHED" "the recorded command keeps -p"

# A metric logged through events and present in the metrics file has one
# series: 5 epochs, 5 points, no made-up sixth.
train=$("$MLX" runs --json --filter "parent = '$best' and step = 'train'" | json 'd[0]["id"]')
mlx metrics "$train" loss
is "$(printf '%s\n' "$OUT" | awk 'NR > 1 { print $1 }' | tr '\n' ' ')" "1 2 3 4 5 " \
	"the metrics file's loss adds no point to the events' series"
mlx metrics "$train" epochs
is "$(printf '%s\n' "$OUT" | awk 'NR > 1 { print $1, $NF }')" "0 5" "a metric only in the file is one point"

mlx exp --md --sort -metrics.accuracy --columns params.lr,metrics.accuracy
is "$(printf '%s\n' "$OUT" | head -3 | tr '\n' ';')" \
	"| ID | params.lr | metrics.accuracy |;| --- | --- | ---: |;| $best | 0.5 | 0.99 |;" "--md"
mlx exp --csv --sort -metrics.accuracy --columns params.lr,metrics.loss
is "$(printf '%s' "$OUT" | tr -d '\r' | head -2 | tr '\n' ';')" \
	"id,params.lr,metrics.loss;$best,0.5,0.2373046875;" "--csv with exact numbers"

mlx exp --baseline "$worst" --columns params.lr,metrics.accuracy --sort -metrics.accuracy
is "$(printf '%s\n' "$OUT" | sed -n 2,4p | tr -s ' ' | tr '\n' ';')" \
	"$worst (baseline) 0.1 0.75;$best 0.5 * 0.99 (+0.24 ↑);$mid 0.9 * 0.91 (+0.16 ↑);" \
	"--baseline: its row first, the others with signed deltas and arrows"
mlx exp --baseline "$best" --json
is "$(printf '%s' "$OUT" | json '[(r["baseline"], round(r.get("deltas", {}).get("loss", 0), 4)) for r in d]')" \
	"[(True, 0), (False, -0.187), (False, 0.5365)]" "--json with a baseline: deltas per row"

mlx exp --filter "params.lr >= 0.5 and metrics.accuracy > 0.95"
is "$(printf '%s\n' "$OUT" | awk 'NR > 1 { print $1 }')" "$best" "--filter on the joined params and metrics"
mlx exp --filter 'metrics.accuracy >'
is "$RC $ERR" "2 mlx: error: --filter: column 19: expected a value after '>'" "a bad filter exits 2"
mlx exp --columns nonsense
is "$RC" 2 "an unknown column exits 2"
like "$ERR" "^mlx: error: --columns: unknown column 'nonsense'" "and says which"
mlx exp --limit 2
is "$(printf '%s\n' "$OUT" | wc -l) $ERR" "3 mlx: 2 of 3 experiments shown (--all for all)" "--limit"
mlx exp --limit 0
is "$(printf '%s\n' "$OUT" | wc -l) $ERR" "4 " "--limit 0: all, as in mlx runs"
mlx exp --limit -1
is "$RC $ERR" "2 mlx: error: --limit must be 0 (all) or more, not -1" "a negative --limit exits 2"

# Back to lr=0.5: both steps restored from the run-cache; the row carries
# the metrics of the runs that produced the outs, the Lua step's included.
mlx recipe pipeline.lua -p lr=0.5
like "$ERR" "2 restored from the run-cache" "lr=0.5 again is restored"
mlx exp --json
is "$(printf '%s' "$OUT" | json 'd[0]["params"]["lr"], round(d[0]["metrics"]["accuracy"], 4), round(d[0]["metrics"]["loss"], 4)')" \
	"0.5 0.99 0.2373" "a restored row carries accuracy (a Lua step) and loss"
restored=$(printf '%s' "$OUT" | json 'd[0]["id"]')
"$MLX" runs --json --filter "parent = '$restored'" >steps.json
is "$(json 'sorted((r["step"], r["status"], r["tags"].get("mlx.restored_from") is not None) for r in d)' <steps.json)" \
	"[('evaluate', 'CACHED', True), ('train', 'CACHED', True)]" "its steps are CACHED and name the run they restored"

# An invocation that executes nothing is hidden unless --all.
before=$(nruns)
mlx recipe pipeline.lua -p lr=0.5
like "$ERR" "2 up to date" "a no-op invocation"
is "$(nruns)" "$((before + 1))" "is still recorded"
mlx exp
is "$(printf '%s\n' "$OUT" | awk 'NR > 1' | wc -l)" 4 "mlx exp leaves it out"
mlx exp --all
is "$(printf '%s\n' "$OUT" | awk 'NR > 1' | wc -l)" 5 "--all shows it"
mlx runs --json
is "$(printf '%s' "$OUT" | json 'len(d)')" "$((before))" "mlx runs leaves it out"

# Usage errors leave no run.
before=$(nruns)
mlx recipe pipeline.lua -p lr
is "$RC $ERR" "2 mlx: error: -p lr: expected KEY=VALUE" "a bad -p exits 2"
mlx recipe pipeline.lua -p nope=1
is "$RC" 2 "an undeclared param exits 2"
mlx recipe pipeline.lua nosuchstep
is "$RC $ERR" "2 mlx: error: no step named 'nosuchstep' in pipeline 'exp'; its steps: train, evaluate" \
	"an unknown step exits 2"
mlx recipe pipeline.lua --bogus
is "$RC" 2 "an unknown option exits 2"
printf '{"lr": [1]}' >bad.json
mlx recipe pipeline.lua --params-file bad.json
is "$RC" 2 "a bad params file exits 2"
is "$(nruns)" "$before" "none of them left a run"

# Tags from the command line.
mlx runs tag "$best" stage=best owner=ana
is "$RC" 0 "mlx runs tag"
mlx exp --filter "tags.stage = 'best'"
is "$(printf '%s\n' "$OUT" | awk 'NR > 1 { print $1 }')" "$best" "a tag set after the run filters the table"
mlx runs tag "$best" --delete owner
is "$("$MLX" runs show "$best" --json | json 'd["tags"]')" "{'stage': 'best'}" "--delete removes a tag"
mlx runs tag "$best" --delete owner
is "$RC $ERR" "2 mlx: error: run $best has no tag 'owner'" "removing a missing tag exits 2"
mlx runs tag "$best" novalue
is "$RC $ERR" "2 mlx: error: mlx runs tag: 'novalue' is not KEY=VALUE" "a word without '=' exits 2"

# Deleting runs: the run, its step runs and everything recorded of them;
# never a run that a model version names.
steps=$("$MLX" runs --json --filter "parent = '$restored'" | json '" ".join(r["id"] for r in d)')
mkdir -p ".mlx/logs/$restored" && echo log >".mlx/logs/$restored/train.log"
mlx runs rm "$restored"
is "$RC $ERR" "0 mlx: deleted 3 runs" "mlx runs rm deletes the run and its step runs"
test -e ".mlx/logs/$restored"
is "$?" 1 "and its log directory"
for id in $restored $steps; do
	mlx runs show "$id"
	is "$RC" 2 "run $id is gone"
done
is "$(track_sql "SELECT count(*) FROM metrics WHERE run_id IN ('${steps// /\',\'}')")" 0 \
	"and so are their metrics"
mlx model register iris work/model.txt --run "$train"
is "$RC" 0 "a model version from the best training"
before=$(nruns)
mlx runs rm "$worst" "$best"
is "$RC $ERR" "2 mlx: error: run $train is the run of model version iris:1: not deleted" \
	"a run that a model version names is not deleted, and the message names the version"
is "$(nruns)" "$before" "nor is any other run of the same command"
mlx runs rm nosuchrun
is "$RC" 2 "an unknown run exits 2"

done_testing
