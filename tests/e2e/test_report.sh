#!/usr/bin/env bash
# Baselines in a real git repository with two commits: `mlx metrics diff`
# against HEAD~1 and against a model alias, and mlx.gate.
. "$(dirname "$0")/tap.sh"
: "${MLX_SOURCE_ROOT:?set MLX_SOURCE_ROOT}"
export GIT_AUTHOR_NAME=Ada GIT_AUTHOR_EMAIL=ada@example.org
export GIT_COMMITTER_NAME=Ada GIT_COMMITTER_EMAIL=ada@example.org


mkdir proj && cd proj || exit 1
git init -q -b main
mlx init
cat >train.py <<'PY'
import json, os, sys
lr = float(sys.argv[1])
acc = round(0.8 + lr, 4)
os.makedirs("work", exist_ok=True)
with open(os.environ["MLX_EVENTS"], "a") as f:
    for step in range(1, 6):
        f.write(json.dumps({"metric": "loss", "value": round(1.0 / (step * (1 + 10 * lr)), 6), "step": step}) + "\n")
json.dump({"accuracy": acc, "f1": round(acc - 0.05, 4)}, open("work/metrics.json", "w"))
json.dump({"weights": [lr]}, open("work/model.json", "w"))
json.dump({"type": "confusion", "labels": ["setosa", "versicolor"], "matrix": [[5, 1], [2, 7]]},
          open("work/confusion.json", "w"))
json.dump({"type": "line", "x": "epoch", "y": ["val_loss"],
           "rows": [{"epoch": e, "val_loss": round(1.0 / (e + lr), 4)} for e in range(1, 5)]},
          open("work/val.json", "w"))
PY
write_recipe() { # LR
	cat >recipe.lua <<LUA
local mlx = require "mlx"
local p = mlx.pipeline "iris"
p:params { lr = $1 }
p:step "train" { deps = { "train.py" }, params = { "lr" }, outs = { "work/model.json" },
  metrics = { "work/metrics.json" }, plots = { "work/confusion.json", "work/val.json" },
  cmd = "python3 train.py \${lr}" }
return p
LUA
}
printf 'work/\n.mlx/\nrep*/\n' >.gitignore

# --- commit 1: lr 0.1, accuracy 0.9, registered as iris@production ----------
write_recipe 0.1
mlx recipe recipe.lua
is "$RC" 0 "the first recipe run succeeds"
like "$(cat mlx.lock)" '"metrics": \[' "mlx.lock says which outs are metrics files"
mlx model register iris work/model.json -a production
is "$RC" 0 "the model is registered as iris@production"
git add -A && git commit -q -m "lr 0.1"

# --- commit 2: lr 0.15, accuracy 0.95 --------------------------------------------
write_recipe 0.15
mlx recipe recipe.lua
is "$RC" 0 "the second recipe run succeeds"
git add -A && git commit -q -m "lr 0.15"
first=$(git rev-parse --short=7 HEAD~1)

mlx metrics diff --baseline HEAD~1
is "$RC" 0 "metrics diff exits 0 although values differ"
is "$OUT" "METRIC    HEAD~1 ($first)  workspace         CHANGE
accuracy               0.9       0.95  +0.05 (+5.6%)
f1                    0.85        0.9  +0.05 (+5.9%)

PARAM  HEAD~1 ($first)  workspace
lr     0.1               0.15" "against HEAD~1: both values, the change and the param that changed"
mlx metrics diff --baseline HEAD~1 --json
is "$(printf '%s' "$OUT" | python3 -c 'import json,sys; d=json.load(sys.stdin); m={r["key"]: r for r in d["metrics"]}; print(m["accuracy"]["baseline"], m["accuracy"]["current"], round(m["accuracy"]["change"], 6), d["params"][0]["key"])')" \
	"0.9 0.95 0.05 lr" "--json has the values and the change"
mlx metrics diff
is "$RC" 0 "against HEAD (the default)"
like "$OUT" "^accuracy +0.95 +0.95 +0$" "nothing changed since HEAD"

mlx metrics diff --baseline iris@production
is "$RC" 0 "against a model alias"
like "$OUT" "^accuracy +0.9 +0.95 +\+0.05 \(\+5.6%\)$" "the alias's run gives the baseline's accuracy"
like "$OUT" "^lr +0.1 +0.15$" "and its params"
like "$OUT" "^loss +0.1 +-$" "a metric only the model's run logged is shown without a current value"

mlx metrics diff --baseline HEAD~1 --fail-on 'accuracy:-0.01' --fail-on 'f1>0.8'
is "$RC" 1 "a broken --fail-on rule exits 1"
is "$ERR" "mlx: error: --fail-on f1>0.8: f1 = 0.9 is above 0.8" "naming the rule and the value"
mlx metrics diff --baseline HEAD~1 --fail-on 'accuracy:+1%'
is "$ERR" "mlx: error: --fail-on accuracy:+1%: accuracy rose from 0.9 to 0.95 (+0.05)" "a relative rule says both numbers"
mlx metrics diff --baseline HEAD~1 --fail-on 'accuracy:-0.01' --fail-on 'accuracy>0.5%'
is "$RC" 2 "a malformed rule is bad input"
is "$ERR" "mlx: error: --fail-on 'accuracy>0.5%': '0.5%' is not a number" "and is named"
mlx metrics diff --baseline nosuchrev
is "$RC" 2 "an unknown revision is bad input"
like "$ERR" "^mlx: error: --baseline nosuchrev: " "named in the error"
mlx metrics diff --baseline iris@staging
is "$RC" 2 "an unknown alias is bad input"
is "$ERR" "mlx: error: --baseline iris@staging: model iris has no alias staging" "named in the error"

# --- mlx.gate: the deploy gate on the working tree ------------------------------
gate() { # FIELDS
	printf 'local mlx = require "mlx"\nlocal r = mlx.gate { %s }\nprint(r.message)\n' "$1" >gate.lua
	mlx recipe gate.lua
}
gate 'metric = "accuracy", min = 0.9, max_drop = 0.01, baseline = "iris@production"'
is "$RC" 0 "the gate passes"
is "$OUT" "the working tree accuracy = 0.95, iris@production (iris:1) has 0.9" "with both numbers"
gate 'metric = "accuracy", min = 0.99'
is "$RC" 1 "below the minimum the gate fails"
is "$ERR" "mlx: error: gate: the working tree accuracy = 0.95, below the minimum 0.99" "saying the value and the minimum"
gate 'metric = "accuracy", value = 0.85, max_drop = 0.01, baseline = "iris@production"'
is "$RC" 1 "a drop beyond max_drop fails"
is "$ERR" "mlx: error: gate: the working tree accuracy = 0.85, worse than iris@production (iris:1)'s 0.9 by more than 0.01" \
	"saying both numbers"
gate 'metric = "f1", max_drop = 0, baseline = "HEAD~1", file = "work/metrics.json"'
is "$OUT" "work/metrics.json f1 = 0.9, HEAD~1 ($first) has 0.85" "a git revision and a metrics file work too"
cat >gated.lua <<'LUA'
local mlx = require "mlx"
local p = mlx.pipeline "gated"
p:step "gate" { deps = { "work/metrics.json" }, run = function()
  mlx.gate { metric = "accuracy", min = 0.97, file = "work/metrics.json" }
end }
return p
LUA
mlx recipe gated.lua
is "$RC" 1 "a gate step fails the recipe"
like "$ERR" "step 'gate' failed: gate: work/metrics.json accuracy = 0.95, below the minimum 0.97" "with the gate's message"

done_testing
