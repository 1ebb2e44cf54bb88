#!/usr/bin/env bash
# mlx dag: a recipe's pipeline as a graph, and the validation users meet first.
. "$(dirname "$0")/tap.sh"

mkdir -p data && echo "x" >data/in.csv
cat >recipe.lua <<'LUA'
local mlx = require "mlx"
local p = mlx.pipeline "demo"
p:params { seed = 7, lr = 0.1 }
p:step "split" { deps = { "data/in.csv" }, outs = { "work/split/" }, params = { "seed" }, cmd = "split ${seed}" }
p:step "train" { deps = { "work/split/" }, outs = { "work/model" }, params = { "lr" }, cmd = { "train", "${lr}" } }
p:step "eval" { deps = { "work/model", "work/split/" }, metrics = { "work/m.json" }, run = function(ctx) end }
return p
LUA
mlx dag recipe.lua
is "$RC" 0 "dag exits 0"
is "$OUT" "split  [cmd]
train  [cmd]  <- split
eval  [lua]  <- train, split" "text lists steps in run order with what they wait for"

mkdir -p .mlx sub
cd sub
mlx dag ../recipe.lua
is "$RC" 0 "dag works from a subdirectory of the project (deps are relative to its root)"
cd "$TEST_DIR"
rmdir .mlx sub

mlx dag recipe.lua --dot
like "$OUT" '"split" -> "train";' "--dot prints Graphviz edges"
mlx dag recipe.lua --mermaid
like "$OUT" "^flowchart LR" "--mermaid prints a flowchart"

mlx dag recipe.lua -p lrr=1
is "$RC" 2 "an unknown -p param exits 2"
is "$ERR" "mlx: error: -p lrr: the recipe declares no param 'lrr' (it declares: lr, seed)" "and lists the declared ones"

cat >cycle.lua <<'LUA'
local p = require("mlx").pipeline "loop"
p:step "a" { deps = { "y" }, outs = { "x" }, cmd = "a" }
p:step "b" { deps = { "x" }, outs = { "y" }, cmd = "b" }
LUA
mlx dag cycle.lua
is "$RC" 2 "a cycle exits 2"
is "$ERR" "mlx: error: cycle.lua:2: cycle in pipeline 'loop': a -> b -> a" "and prints the cycle"

cat >missing.lua <<'LUA'
local p = require("mlx").pipeline "m"
p:step "train" { deps = { "data/nope.csv" }, outs = { "model" }, cmd = "t" }
LUA
mlx dag missing.lua
is "$RC" 2 "a missing dep exits 2"
is "$ERR" "mlx: error: missing.lua:2: step 'train': dep 'data/nope.csv' does not exist and no step produces it" "naming step and dep"

cat >typo.lua <<'LUA'
local p = require("mlx").pipeline "t"
p:step "train" {
  deps = { "data/in.csv" },
  out = { "model" },
  cmd = "t",
}
LUA
mlx dag typo.lua
is "$RC" 2 "an unknown field exits 2"
is "$ERR" "mlx: error: typo.lua:2: step 'train': unknown field 'out' (did you mean 'outs'?)" "naming step, field and a fix"

echo 'print("just a script")' >script.lua
mlx dag script.lua
is "$RC" 2 "dag of a script recipe exits 2"
like "$ERR" "declares no pipeline" "and says why"

done_testing
