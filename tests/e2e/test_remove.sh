#!/usr/bin/env bash
# mlx remove: a tracked path, a pipeline renamed away from its recipe, or one
# step leaves mlx.lock and mlx's .gitignore lines; the files stay, nothing
# changes on a bad target, and a lock from elsewhere cannot make it touch a
# .gitignore outside the project.
. "$(dirname "$0")/tap.sh"

locked() { # LUA-EXPRESSION over the lock table L -> printed value
	"$MLX" lua -e "local L = require('mlx.json').load('mlx.lock') print($1)"
}

git init -q
"$MLX" init >/dev/null
mkdir data && echo a >data/a && echo b >b.txt
"$MLX" add data b.txt >/dev/null
cat >p.lua <<'EOF'
local mlx = require "mlx"
local p = mlx.pipeline "old"
p:step "make" { cmd = "mkdir -p out && echo hi > out/x", outs = { "out/x" } }
p:step "copy" { cmd = "cp out/x out/y", deps = { "out/x" }, outs = { "out/y" } }
EOF
"$MLX" recipe p.lua >/dev/null 2>&1
cp mlx.lock lock.before
printf 'keep-me\n' >>out/.gitignore

# ---- bad targets change nothing -----------------------------------------
mlx remove nope
is "$RC" 2 "an unknown target exits 2"
like "$ERR" "nope is not in mlx.lock: not a tracked path, a pipeline or a step" "and says what a target is"
mlx remove olt
like "$ERR" "did you mean old\?" "a mistyped pipeline gets the closest name"
mlx remove data/a
is "$RC" 2 "a path inside a tracked directory exits 2"
like "$ERR" "data/a is inside the tracked directory data; remove data, or delete data/a and run 'mlx add data'" \
	"and says what to do"
mlx remove b.txt nope
is "$RC" 2 "one bad target among good ones exits 2"
cmp -s mlx.lock lock.before
is "$?" 0 "and mlx.lock is untouched by all of them"
mlx remove
is "$RC" 2 "no target is a usage error"

# ---- dry run -------------------------------------------------------------
mlx remove --dry-run old b.txt
is "$RC" 0 "a dry run exits 0"
like "$OUT" "would remove pipeline old \(2 outs\)" "and says what it would remove"
cmp -s mlx.lock lock.before
is "$?" 0 "and changes nothing"

# ---- one step, then a tracked path from a subdirectory ----------------------
mlx remove copy
is "$RC" 0 "a step named alone is removed"
is "$OUT" "removed step old/copy (1 out)" "and named with its pipeline"
is "$(locked 'L.steps.old.copy == nil and L.steps.old.make ~= nil')" "true" "only that step leaves the lock"
is "$(grep -c '^/y$' out/.gitignore)" 0 "its out leaves the .gitignore block"
is "$(grep -c '^/x$' out/.gitignore)" 1 "the other step's out stays ignored"
is "$(tail -1 out/.gitignore)" "keep-me" "and the user's own line is kept"
test -f out/y
is "$?" 0 "the out's file stays in the workspace"
cd out || exit 1
mlx remove ../data/
is "$RC" 0 "a tracked directory given relative to a subdirectory is removed"
cd ..
is "$(locked 'L.artifacts.data == nil and L.artifacts["b.txt"] ~= nil')" "true" "only it leaves the artifacts"
is "$(grep -c '^/data$' .gitignore)" 0 "and its .gitignore line goes"
test -f data/a
is "$?" 0 "its files stay"

# ---- a pipeline whose recipe no longer declares it -----------------------
sed -i 's/"old"/"new"/' p.lua
"$MLX" recipe p.lua >/dev/null 2>&1
is "$(locked 'L.steps.old ~= nil and L.steps.new ~= nil')" "true" "a renamed pipeline leaves its old section behind"
mlx remove old
is "$RC" 0 "the old pipeline is removed"
is "$OUT" "removed pipeline old (1 out)" "with its outs counted"
is "$(locked 'L.steps.old == nil and L.steps.new ~= nil')" "true" "and only its section leaves the lock"
is "$(grep -c '^/x$' out/.gitignore)" 1 "an out the new pipeline still pins keeps its line"
mlx status
is "$RC" 0 "status is clean afterwards"
mlx remove new/make new/copy b.txt
is "$RC" 0 "several targets at once"
is "$(locked 'next(L.steps) == nil and next(L.artifacts) == nil')" "true" "all leave the lock"
is "$(cat out/.gitignore)" "keep-me" "an emptied block goes and the user's lines stay"
test -e .gitignore
is "$?" 1 "a .gitignore that held only mlx's block is removed"
mlx gc
is "$RC" 0 "gc then frees what nothing pins"

# ---- a lock from elsewhere cannot reach outside the project ---------------
mkdir -p "$TEST_DIR/outside" && printf '%s\n' "# >>> mlx: tracked by mlx.lock (mlx maintains this block)" \
	/f "# <<< mlx" >"$TEST_DIR/outside/.gitignore"
ln -s "$TEST_DIR/outside" esc
cp "$TEST_DIR/outside/.gitignore" outside.before
"$MLX" lua -e "
local json = require 'mlx.json'
local L = json.load('mlx.lock')
local entry = json.load('lock.before').steps.old.make
entry.outs = { ['esc/f'] = entry.outs['out/x'] }
L.steps.evil = { make = entry }
assert(require('mlx.fs').write('mlx.lock', json.encode(L, { indent = 2 }) .. '\\n'))"
mlx remove evil
is "$RC" 0 "a pipeline whose out lies behind a symbolic link is removed from the lock"
is "$(locked 'L.steps.evil == nil')" "true" "its section is gone"
cmp -s "$TEST_DIR/outside/.gitignore" outside.before
is "$?" 0 "but the .gitignore reached through the link is not touched"

done_testing
