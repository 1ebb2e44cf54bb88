#!/usr/bin/env bash
# mlx recipe and mlx lua: running user code, its errors and exit codes.
. "$(dirname "$0")/tap.sh"

cat >ok.lua <<'LUA'
local mlx = require "mlx"
print("args", arg[0], ...)
print(mlx.hash.bytes("abc"))
LUA
mlx recipe ok.lua a -- -b
is "$RC" 0 "a recipe that finishes exits 0"
is "$OUT" "args	ok.lua	a	-b
ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" "arg and the mlx modules are available"

printf 'local x = 1\nlocal y = = 2\n' >syntax.lua
mlx recipe syntax.lua
is "$RC" 2 "a recipe that does not compile exits 2"
is "$ERR" "mlx: error: syntax.lua:2: unexpected symbol near '='" "syntax error: file:line: message"

printf 'local function check(x)\n  if x < 1 then error("accuracy too low: " .. x) end\nend\ncheck(0.5)\n' >fails.lua
mlx recipe fails.lua
is "$RC" 1 "a recipe that raises exits 1"
is "$ERR" "mlx: error: fails.lua:2: accuracy too low: 0.5" "runtime error: file:line: message, no traceback"

mlx --debug recipe fails.lua
like "$ERR" "stack traceback" "--debug adds the traceback"
like "$ERR" "fails.lua:4: in main chunk" "the traceback names the recipe's lines"

mlx recipe missing.lua
is "$RC" 2 "a missing recipe exits 2"
is "$ERR" "mlx: error: recipe not found: missing.lua" "and is named"

mlx recipe
is "$RC" 2 "recipe without FILE exits 2"

printf 'os.exit(7)\n' >exits.lua
mlx recipe exits.lua
is "$RC" 7 "os.exit in a recipe sets the exit code"

cat >params.lua <<'LUA'
local params = require("mlx.params").declare { model = "iris", min = 0.9, dry = false }
print(params.model, params.min, params.dry)
LUA
mlx recipe params.lua -p min=0.95 -p dry=yes
is "$OUT" "iris	0.95	true" "a script recipe declares params that -p overrides, typed by their default"
mlx recipe params.lua -p mni=0.95
is "$RC" 2 "an undeclared -p exits 2"
is "$ERR" "mlx: error: -p mni: the recipe declares no param 'mni' (it declares: dry, min, model)" "naming it and the declared ones"
mlx recipe params.lua -p min=high
is "$ERR" "mlx: error: -p min=high: param 'min' must be a number, not 'high'" "a value of the wrong type is refused"
mlx recipe params.lua min=0.95 model=wine
is "$RC $OUT" "0 wine	0.95	false" "KEY=VALUE words after a script recipe set its declared params"
mlx recipe params.lua -p min=0.8 min=0.95
is "$OUT" "iris	0.95	false" "a KEY=VALUE word wins over -p"
mlx recipe params.lua min=high
is "$RC $ERR" "2 mlx: error: argument min=high: param 'min' must be a number, not 'high'" \
	"a word of the wrong type is refused, named as the argument"
printf 'local p = require("mlx.params").declare { n = 1 }\nprint(p.n, ...)\n' >words.lua
mlx recipe words.lua out=x.txt n=3 plain
is "$OUT" "3	out=x.txt	n=3	plain" "the words stay the script's arguments; undeclared keys are only that"

mlx lua -e 'print(1 + 1)' -e 'print(require("mlx").version ~= nil)'
is "$OUT" "2
true" "lua -e runs code in order"

echo 'print(select("#", ...), arg[0])' | "$MLX" lua - a b >stdin.out
is "$(cat stdin.out)" "2	-" "lua reads a program from stdin"

mlx lua -e 'error("bad")'
is "$RC" 1 "an error in lua -e exits 1"

# Interrupting a recipe: exit 130, one line.
printf 'while true do end\n' >spin.lua
"$MLX" recipe spin.lua 2>spin.err &
pid=$!
sleep 0.5
kill -INT $pid
wait $pid
is "$?" 130 "SIGINT during a recipe exits 130"
is "$(cat spin.err)" "mlx: interrupted" "and says so in one line"

"$MLX" recipe spin.lua 2>/dev/null &
pid=$!
sleep 0.5
kill -TERM $pid
wait $pid
is "$?" 130 "SIGTERM is handled the same way"

# Outside a project nothing is kept; in one, a recipe is compiled once per
# version of its text and its chunk kept under .mlx/cache/recipes/.
test ! -e .mlx
is "$?" 0 "recipes run outside a project leave nothing"
mkdir proj && cd proj && "$MLX" init >/dev/null
printf '#!/usr/bin/env mlx\nlocal n = 1\nprint("version " .. n)\nerror("stop " .. n)\n' >kept.lua
mlx recipe kept.lua
is "$OUT $RC" "version 1 1" "a recipe with a shebang line runs in a project"
is "$ERR" "mlx: error: kept.lua:4: stop 1" "its errors name its lines"
is "$(ls .mlx/cache/recipes | wc -l)" "1" "its compiled chunk is kept"
mlx recipe kept.lua
is "$OUT $ERR" "version 1 mlx: error: kept.lua:4: stop 1" "and runs the same from there"
is "$(cd .. && "$MLX" -C proj runs --all --json | grep -o '"recipe_hash": "[0-9a-f]*"' | sort -u)" \
	"\"recipe_hash\": \"$(sha256sum kept.lua | cut -d' ' -f1)\"" "the runs record the recipe's SHA-256"
# Another text of the same size and time: compiled again, not the kept one.
touch -r kept.lua stamp
sed -i 's/local n = 1/local n = 2/' kept.lua
touch -r stamp kept.lua
mlx recipe kept.lua
is "$OUT $ERR" "version 2 mlx: error: kept.lua:4: stop 2" "a changed recipe is compiled again"
kept=.mlx/cache/recipes/$(ls .mlx/cache/recipes)
head -c 200 "$kept" >cut && mv cut "$kept"
mlx recipe kept.lua
is "$OUT" "version 2" "a damaged kept chunk is compiled again"
printf 'local x = = 1\n' >bad.lua
mlx recipe bad.lua
is "$RC $ERR" "2 mlx: error: bad.lua:1: unexpected symbol near '='" "a recipe that does not compile still exits 2"
cd ..

# ---- a recipe outside the project -------------------------------------------
# Recorded relative to the project root when it lies in the git repository
# holding the project, so that a clone anywhere records the same; else by
# its absolute path (a file of this machine, not of the project).
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.com GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.com
mkdir -p repo/projects/a repo/shared
cat >repo/shared/pipeline.lua <<'LUA'
local p = require("mlx").pipeline "shared"
p:step "copy" { deps = { "data/x" }, outs = { "out/y" }, cmd = "mkdir -p out && cp data/x out/y" }
return p
LUA
(cd repo && git init -q -b main && cd projects/a && "$MLX" init >/dev/null && mkdir data && echo 1 >data/x)
cd repo/projects/a || exit 1
recorded() { # the recipe and command of every run, sorted, one per line
	mlx runs --all --limit 0 --json
	printf '%s' "$OUT" | python3 -c 'import json, sys
for r in json.load(sys.stdin):
    print(r["recipe"], "|", r["command"] if r.get("step") is None else "step")' | sort -u
}
mlx recipe ../../shared/pipeline.lua -q
is "$RC" 0 "a recipe of the repository outside the project runs"
mlx recipe "$TEST_DIR/repo/shared/pipeline.lua" -f -q
is "$RC" 0 "also by its absolute path"
ln -s "$TEST_DIR/repo/shared" "$TEST_DIR/linked"
mlx recipe "$TEST_DIR/linked/pipeline.lua" -f -q
is "$RC" 0 "also through a symlinked directory"
is "$(recorded)" "../../shared/pipeline.lua | mlx recipe ../../shared/pipeline.lua
../../shared/pipeline.lua | mlx recipe ../../shared/pipeline.lua -f
../../shared/pipeline.lua | step" "the runs record it relative to the project root, however it was named"
mlx verify ../../shared/pipeline.lua
is "$RC" 0 "mlx verify runs it"
mlx runs --all --limit 1 --json
like "$OUT" '"command": "mlx verify \.\./\.\./shared/pipeline\.lua"' "and records it so too"
key=$(python3 -c 'import json; print(json.load(open("mlx.lock"))["steps"]["shared"]["copy"]["key"])')
cd "$TEST_DIR/repo" && git add -A && git commit -qm "a project and a shared recipe" && cd "$TEST_DIR" || exit 1
git clone -q repo elsewhere/deeper/clone
cd elsewhere/deeper/clone/projects/a || exit 1
mlx recipe ../../shared/pipeline.lua -f -q
is "$RC" 0 "a clone in another directory runs it"
is "$(recorded)" "../../shared/pipeline.lua | mlx recipe ../../shared/pipeline.lua -f
../../shared/pipeline.lua | step" "and records the same recipe and command"
is "$(python3 -c 'import json; print(json.load(open("mlx.lock"))["steps"]["shared"]["copy"]["key"])')" "$key" \
	"with the same step key"
git diff --quiet -- mlx.lock
is "$?" 0 "and the same mlx.lock"
cd "$TEST_DIR" || exit 1
mkdir outside && cp repo/shared/pipeline.lua outside/
cd repo/projects/a || exit 1
mlx recipe "$TEST_DIR/outside/pipeline.lua" -f -q
mlx runs --limit 1 --json
like "$OUT" "\"recipe\": \"$(realpath "$TEST_DIR")/outside/pipeline\.lua\"" "a recipe outside the repository is recorded by its absolute path"
cp ../../shared/pipeline.lua ../common.lua
mlx recipe "$TEST_DIR/repo/projects/common.lua" -f -q
mlx runs --limit 1 --json
like "$OUT" '"recipe": "\.\./common\.lua"' "a recipe beside the project: up to the directory they share, no further"
cd "$TEST_DIR" || exit 1

done_testing
