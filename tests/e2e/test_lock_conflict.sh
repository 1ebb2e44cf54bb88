#!/usr/bin/env bash
# An mlx.lock left in a git merge conflict (a clone where mlx's merge
# driver is not set up, so git merged it as text): named as such, with the
# commands that resolve it (git refuses 'git checkout -- mlx.lock' during a
# merge).
. "$(dirname "$0")/tap.sh"
export GIT_AUTHOR_NAME=Ada GIT_AUTHOR_EMAIL=ada@example.org
export GIT_COMMITTER_NAME=Ada GIT_COMMITTER_EMAIL=ada@example.org
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1

git init -q -b main
"$MLX" init >/dev/null
git config --remove-section merge.mlx-lock
echo data.csv >.gitignore
echo a,b >data.csv
"$MLX" add data.csv >/dev/null
git add -A && git commit -q -m "data v1"
git checkout -q -b other
echo a,c >data.csv
"$MLX" add data.csv >/dev/null
git commit -q -am "data v2"
git checkout -q main
echo a,d >data.csv
"$MLX" add data.csv >/dev/null
git commit -q -am "data v3"
git merge -q other >/dev/null 2>&1
is "$(git status --porcelain mlx.lock)" "UU mlx.lock" "the merge leaves mlx.lock in conflict"
line=$(grep -n '^<<<<<<< ' mlx.lock | head -1 | cut -d: -f1)
msg="mlx: error: $(pwd -P)/mlx.lock:$line: unresolved git merge conflict; merge it with 'mlx lock merge', or take one side with 'git checkout --ours mlx.lock' or 'git checkout --theirs mlx.lock' and re-pin with 'mlx recipe RECIPE' or 'mlx add PATH'"

mlx status
is "$RC" 2 "mlx status on a conflicted lock exits 2"
is "$ERR" "$msg" "naming the conflict and the commands that resolve it"
mlx add data.csv
is "$RC" 2 "mlx add exits 2 too"
is "$ERR" "$msg" "with the same message"
cat >p.lua <<'LUA'
local p = require("mlx").pipeline "p"
p:step "copy" { deps = { "data.csv" }, outs = { "copy.csv" }, cmd = "cp data.csv copy.csv" }
return p
LUA
mlx recipe p.lua
is "$RC" 2 "mlx recipe exits 2 too"
is "$ERR" "$msg" "with the same message"

# The advice works: take a side, re-pin, commit.
git checkout -q --theirs mlx.lock
is "$?" 0 "git checkout --theirs mlx.lock takes a side during the merge"
mlx add data.csv
is "$RC" 0 "mlx add re-pins the data"
"$MLX" status --check >/dev/null 2>&1
is "$?" 0 "the lock now matches the workspace"
git add mlx.lock && git commit -q -m merge
is "$?" 0 "and the merge can be committed"

# A lock that is merely broken keeps the usual advice.
printf '{"version": 1,' >mlx.lock
mlx status
is "$RC" 2 "a corrupt lock without conflict markers exits 2"
like "$ERR" "invalid JSON.*git checkout -- mlx.lock" "with the advice to restore it"

done_testing
