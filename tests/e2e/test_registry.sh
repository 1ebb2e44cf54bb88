#!/usr/bin/env bash
# The model registry from the command line: mlx model register, ls, show
# (lineage), alias (move, delete, rollback, history) and get, and gc
# keeping registered versions.
. "$(dirname "$0")/tap.sh"

mlx model ls
is "$RC $ERR" "2 mlx: error: not in an mlx project (run 'mlx init')" "outside a project mlx model says how to make one"

mlx init
git init -q -b main .
git add -A
git -c user.name=t -c user.email=t@example.com commit -qm first
mkdir -p data work
printf 'x,y\n1,2\n3,4\n' >data/train.csv

# A recipe that trains (writes a model) and records what it read and wrote.
cat >train.lua <<'LUA'
local mlx = require "mlx"
local lr = arg[1] or "0.1"
mlx.log.params { lr = lr, epochs = 20 }
mlx.log.artifact("data/train.csv", "in")
local f = assert(io.open("work/model.json", "w"))
f:write('{"lr": ' .. lr .. '}\n')
f:close()
mlx.log.metric("loss", 0.25)
mlx.log.artifact("work/model.json", "out")
LUA
mlx recipe train.lua 0.1
run1=$(track_sql "SELECT id FROM runs WHERE recipe = 'train.lua' ORDER BY start_time DESC LIMIT 1")
model_hash=$(sha256sum work/model.json | cut -d' ' -f1)

# --- register ---------------------------------------------------------------
mlx model register iris work/model.json -d "first model" -t team=vision -a staging
is "$RC" 0 "register exits 0"
is "$OUT" "registered iris:1 (${model_hash:0:12}, 12 B, run $run1)
alias      staging: iris:1" "and says which version, object, size and run, and the alias"
mlx model register iris work/model.json
is "$OUT" "unchanged  iris:1 already holds these bytes (${model_hash:0:12}); --force registers them again" \
	"the same bytes again are the same version"
mlx model register iris work/model.json --force --no-run
is "$OUT" "registered iris:2 (${model_hash:0:12}, 12 B)" "--force makes a new version, --no-run records no run"
mlx recipe train.lua 0.05
run2=$(track_sql "SELECT id FROM runs WHERE recipe = 'train.lua' ORDER BY start_time DESC LIMIT 1")
model_hash2=$(sha256sum work/model.json | cut -c1-12)
mlx model register iris work/model.json -a staging
is "$OUT" "registered iris:3 (${model_hash2}, 13 B, run $run2)
alias      staging: iris:1 -> iris:3" "a new model from a new run is the next version"
mkdir -p work/bert/vocab && printf 'w' >work/bert/weights.bin && printf 'a\nb\n' >work/bert/vocab/words.txt
mlx model register bert work/bert
like "$OUT" "^registered bert:1 \([0-9a-f]{12}, 5 B\)$" "a directory is registered whole"

mlx model register wine --object "$model_hash" -d "same bytes, other model"
is "$RC $OUT" "0 registered wine:1 (${model_hash:0:12}, 12 B, run $run1)" \
	"an object already in the store is registered by its id, with the run that wrote it"
mlx model register wine --object "$(printf '%064d' 0)"
is "$RC $ERR" "2 mlx: error: object $(printf '%064d' 0) is not in the store" "an unknown object is bad input"
mlx model register wine --object abc
is "$RC" 2 "so is a malformed id"

mlx model register iris work/none.json
is "$RC $ERR" "2 mlx: error: cannot register work/none.json: no such file or directory" "a missing path is bad input"
mlx model register iris /etc/hostname
is "$RC" 2 "a path outside the project is refused"
like "$ERR" "outside the project" "and says so"
mlx model register 'iris v2' work/model.json
is "$RC" 2 "a bad model name is bad input"
like "$ERR" "invalid model name 'iris v2'" "and is named"
mlx model register iris work/model.json --run zzzzzzzz
is "$RC" 2 "an unknown run is bad input"
is "$(track_sql 'SELECT count(*) FROM model_versions')" 5 "and none of that registered anything"

# --- ls ------------------------------------------------------------------------
mlx model ls
like "$OUT" "^MODEL +LATEST +VERSIONS +ALIASES +UPDATED" "ls has a header"
like "$OUT" $'^iris +3 +3 +staging=3 ' "and a line per model: latest version, count, aliases"
is "$(printf '%s\n' "$OUT" | awk 'NR > 1 {printf "%s ", $1}')" "bert iris wine " "in name order"
mlx model ls iris
like "$(printf '%s\n' "$OUT" | sed -n 2p)" "^ +3 +staging +${model_hash2} +file +13 B +$run2 " "ls NAME lists the versions, newest first"
like "$(printf '%s\n' "$OUT" | sed -n 4p)" "^ +1 .* first model$" "with their descriptions"
mlx model ls iris --json
is "$(printf '%s' "$OUT" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d), d[0]["tags"], d[2]["aliases"], d[0]["hash"] == "'"$model_hash"'")')" \
	"3 {'team': 'vision'} ['staging'] True" "--json prints the records"
mlx model ls pear
is "$RC $ERR" "2 mlx: error: no model named pear" "an unknown model is bad input"
mlx model show iirs@staging
is "$RC $ERR" "2 mlx: error: no model named iirs; did you mean iris?" "a mistyped model gets the closest name"

# --- show: the lineage ---------------------------------------------------------------
mlx model show iris@staging
like "$OUT" "^model +iris:3$" "show names the version"
like "$OUT" $'^run +'"$run2"'  train.lua  FINISHED' "the run that produced it"
like "$OUT" $'^recipe +train.lua  [0-9a-f]{12}' "its recipe"
like "$OUT" $'^git +'"$(git rev-parse HEAD)"' \(main\)$' "the git commit"
like "$OUT" $'^params +epochs=20 lr=0.05' "the params"
like "$OUT" $'^metrics +loss=0.25' "the metrics"
like "$OUT" $'^  data/train.csv  '"$(sha256sum data/train.csv | cut -d' ' -f1)"'  \(12 B\)' "and the input data with its hash"
mlx model show iris:2
like "$OUT" $'^run +unknown \(registered without a run\)' "a version without a run says so"
mlx model show iris:1 --json
is "$(printf '%s' "$OUT" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["version"]["ref"], d["run"]["id"] == "'"$run1"'", d["run"]["params"]["lr"], d["inputs"][0]["path"])')" \
	"iris:1 True 0.1 data/train.csv" "show --json has the lineage"
mlx model show iris@
is "$RC $ERR" "2 mlx: error: invalid model reference 'iris@': expected NAME, NAME:VERSION or NAME@ALIAS" \
	"a malformed reference is bad input"
mlx model show iris:9
is "$RC $ERR" "2 mlx: error: model iris has no version 9" "so is an unknown version"

# --- alias --------------------------------------------------------------------------
mlx model alias iris production 1
is "$OUT" "production: - -> iris:1" "alias points an alias at a version"
mlx model alias iris production staging
is "$OUT" "production: iris:1 -> iris:3" "or at what another alias names"
mlx model alias iris production 3
is "$OUT" "production: already iris:3" "moving it where it is changes nothing"
mlx model alias iris production --rollback
is "$OUT" "production: iris:3 -> iris:1 (rolled back)" "rollback moves it back"
mlx model alias iris production --rollback
is "$OUT" "production: iris:1 -> removed (rolled back)" "to before it existed"
mlx model alias iris production --rollback
is "$RC $ERR" "2 mlx: error: alias production of model iris has no earlier version to go back to" \
	"and then there is nothing left to undo"
mlx model alias iris canary 2
mlx model alias iris canary --delete
is "$OUT" "canary: removed (it named iris:2)" "--delete removes an alias"
mlx model alias iris canary --delete
is "$RC" 2 "removing a missing alias is bad input"
mlx model alias iris production 7
is "$RC $ERR" "2 mlx: error: model iris has no version 7" "so is an unknown version"
mlx model alias iris 7 1
is "$RC" 2 "an alias of digits is refused"
mlx model alias iris --history
is "$(printf '%s\n' "$OUT" | awk 'NR > 1 {print $3, $4, $5, $6, $7}' | tr '\n' '|')" \
	"canary delete iris:2 -> -|canary set - -> iris:2|production rollback iris:1 -> -|production rollback iris:3 -> iris:1|production set iris:1 -> iris:3|production set - -> iris:1|staging set iris:1 -> iris:3|staging set - -> iris:1|" \
	"--history lists every move, newest first"
mlx model alias iris production --history
is "$(printf '%s\n' "$OUT" | wc -l)" 5 "of one alias too"

# --- get -------------------------------------------------------------------------------
mlx model get iris@staging out/deep/model.json
is "$RC $OUT" "0 checked out iris:3 (${model_hash2}, 13 B) to out/deep/model.json" "get checks a version out"
cmp -s out/deep/model.json work/model.json
is "$?" 0 "byte for byte"
mkdir -p "$TEST_DIR/elsewhere"
mlx model get iris:1 "$TEST_DIR/elsewhere"
is "$(cat "$TEST_DIR/elsewhere/model.json")" '{"lr": 0.1}' "into a directory outside the project, under its name"
mlx model get bert out/bert
is "$(cat out/bert/vocab/words.txt)" $'a\nb' "a directory version is checked out whole"
mlx model get iris@nope out/x
is "$RC $ERR" "2 mlx: error: model iris has no alias nope" "get of an unknown alias is bad input"
mlx model get iris:1 out/deep/model.json/x/m.json
is "$RC $ERR" "2 mlx: error: DEST out/deep/model.json/x/m.json: out/deep/model.json is a file, not a directory; choose a path whose parent directories are directories" \
	"a DEST below a file is bad input, naming the file in the way"

# A damaged object is not copied out: quarantined, exit 1, destination kept.
object=".mlx/cache/objects/${model_hash:0:2}/${model_hash:2}"
chmod u+w "$object" && printf 'tampered' >"$object"
printf 'mine' >out/mine.json
mlx model get iris:1 out/mine.json
is "$RC" 1 "a corrupt object fails get"
like "$ERR" "is corrupt \(moved to .mlx/cache/quarantine/\)" "and is quarantined"
is "$(cat out/mine.json)" "mine" "the destination is left as it was"

# --- gc keeps registered versions ---------------------------------------------------------
rm -rf work/bert
mlx gc
is "$RC" 0 "gc runs"
mlx model get bert out/bert-again
is "$RC $(cat out/bert-again/weights.bin)" "0 w" "and keeps the objects of registered versions"

# --- lineage through a real pipeline ---------------------------------------------------------
printf 'x,y\n5,6\n' >data/raw.csv
cat >pipe.lua <<'LUA'
local mlx = require "mlx"
local p = mlx.pipeline "pipe"
p:params { lr = 0.1 }
p:step "split" { deps = { "data/raw.csv" }, outs = { "work/split/" },
  cmd = "mkdir -p work/split && cp data/raw.csv work/split/train.csv" }
p:step "train" { deps = { "work/split/" }, outs = { "work/net.json" }, params = { "lr" },
  cmd = "printf '{\"lr\": %s}\\n' ${lr} >work/net.json" }
p:step "evaluate" { deps = { "work/net.json" }, metrics = { "work/eval.json" },
  cmd = "printf '{\"accuracy\": 0.9}\\n' >work/eval.json" }
p:step "register" { deps = { "work/net.json", "work/eval.json" }, always = true, run = function()
  local registry = require "mlx.registry"
  local v = assert(registry.register { name = "net", path = "work/net.json" })
  assert(registry.set_alias("net", "staging", v.version))
end }
return p
LUA
mlx recipe pipe.lua
is "$RC" 0 "a pipeline that registers its model runs"
step_run() { track_sql "SELECT id FROM runs WHERE step = '$1' ORDER BY start_time DESC, id DESC LIMIT 1"; }
mlx model show net@staging
like "$OUT" "^run +$(step_run train)  pipe.lua:train  FINISHED$" "the version's run is the step that trained it"
like "$OUT" "^recipe run +[0-9a-z]{16}  pipe.lua  FINISHED$" "within the recipe's run"
like "$OUT" "^params +lr=0.1$" "with the params"
like "$OUT" "^metrics +accuracy=0.9@$(step_run evaluate | cut -c1-8)$" "and the metrics of the step that evaluated it"
like "$OUT" "^  work/split/  [0-9a-f]{64}  <- $(step_run split)  pipe.lua:split  FINISHED$" \
	"its input, with the step that made it"
like "$OUT" "^    data/raw.csv  $(sha256sum data/raw.csv | cut -d' ' -f1)$" "and that step's input data"
mlx recipe pipe.lua -p lr=0.05
mlx model ls net
like "$(printf '%s\n' "$OUT" | sed -n 2p)" "^ +2 +staging " "another learning rate makes another version"
mlx recipe pipe.lua
mlx model ls net
is "$(printf '%s\n' "$OUT" | awk 'NR > 1 {print $1, ($2 == "staging")}' | tr '\n' '|')" "2 0|1 1|" \
	"and going back restores the model and stages its version again"

mlx help model
like "$OUT" "mlx model register NAME PATH" "mlx help model tells the subcommands"
mlx model frob
is "$RC $ERR" "2 mlx: error: unknown 'mlx model' subcommand 'frob' (register, ls, show, alias or get; see 'mlx help model')" \
	"an unknown subcommand is bad input"

done_testing
