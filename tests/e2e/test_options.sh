#!/usr/bin/env bash
# Options mean one thing in every command: step names are checked with a
# suggestion, params come from -p and --params-file wherever a recipe is
# loaded, --dry-run and --force are the same letters everywhere.
. "$(dirname "$0")/tap.sh"

mlx init
mkdir -p data && echo "x" >data/in.csv
cat >pipe.lua <<'LUA'
local p = require("mlx").pipeline "demo"
p:params { n = 1 }
p:step "prepare" { deps = { "data/in.csv" }, outs = { "work/prep.txt" }, params = { "n" },
  cmd = "mkdir -p work && echo ${n} >work/prep.txt" }
p:step "train" { deps = { "work/prep.txt" }, outs = { "work/model.txt" },
  cmd = "cat work/prep.txt >work/model.txt" }
return p
LUA

mlx recipe pipe.lua --force-step trian
is "$RC $ERR" "2 mlx: error: --force-step: no step named 'trian' in pipeline 'demo'; did you mean 'train'?" \
	"an unknown --force-step is bad input with a suggestion"
test ! -e work/prep.txt
is "$?" 0 "and nothing ran"
mlx recipe pipe.lua --force-step zzz
is "$RC $ERR" "2 mlx: error: --force-step: no step named 'zzz' in pipeline 'demo'; its steps: prepare, train" \
	"with no close name, it lists the steps"
mlx recipe pipe.lua -n --force-step trian
is "$RC" 2 "a dry run checks --force-step too"
mlx recipe pipe.lua prepar
is "$RC $ERR" "2 mlx: error: no step named 'prepar' in pipeline 'demo'; did you mean 'prepare'?" \
	"an unknown STEP is bad input with a suggestion"
mlx recipe pipe.lua n=2
is "$RC $ERR" "2 mlx: error: no step named 'n=2' in pipeline 'demo'; to set a param, give -p n=2" \
	"a KEY=VALUE word where a STEP goes says how to set a param"

mlx recipe pipe.lua
is "$RC $(cat work/model.txt)" "0 1" "the pipeline runs"
mlx recipe pipe.lua --force-step train
like "$ERR" "1 ran, 1 up to date" "--force-step runs the named step again"

echo '{"n": 2}' >params.json
mlx status pipe.lua --params-file params.json
like "$RC $OUT" "^0 stale:    prepare: param 'n' changed from 1 to 2" "status takes --params-file"
mlx status pipe.lua --params-file params.json -p n=1
is "$RC $OUT" "0 " "and -p wins over it, as in mlx recipe"
mlx dag pipe.lua --params-file nope.json
is "$RC" 2 "dag takes --params-file (a missing one is bad input)"
like "$ERR" "^mlx: error: --params-file: .*nope.json" "naming it"
printf 'n: 2\n' >params.yaml
mlx recipe pipe.lua --params-file params.yaml
is "$RC $ERR" "2 mlx: error: --params-file: params.yaml:1:1: invalid JSON: invalid token near 'n'; a params file is a JSON object of name: value" \
	"a params file that is not JSON (YAML) says what it must be"
mlx recipe pipe.lua -n --params-file params.json
like "$OUT" "^would run prepare: param 'n' changed from 1 to 2" "-n is --dry-run, with --params-file"
mlx recipe pipe.lua --params-file params.json
is "$RC $(cat work/model.txt)" "0 2" "recipe takes --params-file"
# A bad value from a params file names the file, not -p.
echo '{"m": 1}' >unknown.json
mlx recipe pipe.lua --params-file unknown.json
is "$RC $ERR" "2 mlx: error: --params-file unknown.json: the recipe declares no param 'm' (it declares: n)" \
	"a params file's unknown param names the file"
echo '{"n": "two"}' >badtype.json
mlx dag pipe.lua --params-file badtype.json
is "$RC $ERR" "2 mlx: error: --params-file badtype.json: param 'n' must be an integer, not 'two'" \
	"a params file's value of the wrong type names the file"
mlx recipe pipe.lua --params-file badtype.json -p n=3 -n
is "$RC" 0 "a -p over the file's bad value wins"
# status of a recipe that does not load: the one line of the error, and
# no report of the tracked files before it.
mlx status pipe.lua --params-file badtype.json
is "$RC $OUT $ERR" "2  mlx: error: --params-file badtype.json: param 'n' must be an integer, not 'two'" \
	"status with a bad params file: one line, nothing before it"
printf 'local p = require("mlx").pipeline "demo"\np:step "a" { dep = {} }\nreturn p\n' >broken.lua
mlx status broken.lua
is "$RC $OUT $ERR" "2  mlx: error: broken.lua:2: step 'a': unknown field 'dep' (did you mean 'deps'?)" \
	"status of a broken recipe: one line"
mlx recipe pipe.lua -p m=1
is "$RC $ERR" "2 mlx: error: -p m: the recipe declares no param 'm' (it declares: n)" "an unknown -p names -p"

# Local options keep their meaning: -v of status lists every changed file.
mkdir -p data/many && for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo "$i" >"data/many/f$i"; done
mlx add data/many
for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo "changed $i" >"data/many/f$i"; done
mlx status
is "$(printf '%s\n' "$OUT" | grep -c 'modified: data/many/f')" 10 "status lists up to 10 changed files"
mlx status -v
is "$(printf '%s\n' "$OUT" | grep -c 'modified: data/many/f')" 12 "status -v lists them all"

mlx gc -n
like "$OUT" "^would remove " "-n of gc is --dry-run too"
mlx checkout -f data/many
is "$RC $(cat data/many/f1)" "0 1" "-f of checkout is --force"

done_testing
