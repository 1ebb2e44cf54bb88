#!/usr/bin/env bash
# git checkout of an older commit, git switch between branches, git pull
# of a teammate's data: after
# 'mlx checkout' the workspace matches that commit's mlx.lock exactly. A
# path a later lock pinned is named by 'mlx status' and removed by 'mlx
# checkout' when its bytes are in the store (else left, with a warning), so
# that git never sees the data as an untracked file to commit; coming back
# restores it. A recipe never runs on data older than the lock pins when
# the store never had the pinned version (a git pull without mlx pull).
. "$(dirname "$0")/tap.sh"
export GIT_AUTHOR_NAME=Ada GIT_AUTHOR_EMAIL=ada@example.org
export GIT_COMMITTER_NAME=Ada GIT_COMMITTER_EMAIL=ada@example.org
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1

git init -q -b main
"$MLX" init >/dev/null
mkdir data
for i in 1 2 3; do echo "row $i" >"data/f$i.txt"; done
cat >p.lua <<'LUA'
local p = require("mlx").pipeline "p"
p:step "prep" { deps = { "data/" }, outs = { "work/prep.txt" }, cmd = "mkdir -p work && cat data/*.txt > work/prep.txt" }
return p
LUA
"$MLX" add data >/dev/null
"$MLX" recipe p.lua 2>/dev/null
git add -A && git commit -qm v1

# v2: a file more in data/, a new tracked file, a new step with its out.
echo "row 4" >data/f4.txt && echo big >extra.bin
"$MLX" add data extra.bin >/dev/null
cat >p.lua <<'LUA'
local p = require("mlx").pipeline "p"
p:step "prep" { deps = { "data/" }, outs = { "work/prep.txt" }, cmd = "mkdir -p work && cat data/*.txt > work/prep.txt" }
p:step "count" { deps = { "work/prep.txt" }, outs = { "work/count.txt" }, cmd = "wc -l < work/prep.txt > work/count.txt" }
return p
LUA
"$MLX" recipe p.lua 2>/dev/null
git add -A && git commit -qm v2

git checkout -q HEAD~1
is "$(git status --porcelain | tr '\n' ' ')" "?? extra.bin ?? work/count.txt " \
	"after git checkout of v1, git sees v2's data and out as untracked files"
mlx status --check
is "$RC" 1 "mlx status --check says the workspace does not match v1's lock"
like "$OUT" "unpinned: extra.bin \(an earlier mlx.lock pinned it, this one does not; 'mlx checkout' removes it\)" \
	"naming extra.bin"
like "$OUT" "unpinned: work/count.txt" "and the out of the step v1 does not have"
like "$OUT" "modified: data/ \(1 added, 0 modified, 0 deleted\)" "and data/'s extra file"
mlx checkout
is "$RC" 0 "mlx checkout"
like "$OUT" "removed   extra.bin" "removes extra.bin"
like "$OUT" "removed   work/count.txt" "and the out v1 does not pin"
is "$(ls data | tr '\n' ' ')" "f1.txt f2.txt f3.txt " "data/ is v1's"
"$MLX" status --check >/dev/null 2>&1
is "$?" 0 "the workspace matches v1's lock"
is "$(git status --porcelain)" "" "git sees nothing to commit"

git checkout -q main
mlx checkout
is "$RC" 0 "back on main, mlx checkout"
like "$OUT" "restored  extra.bin" "restores extra.bin"
[ -f data/f4.txt ] && [ -f work/count.txt ]
is "$?" 0 "and data/f4.txt and work/count.txt"
"$MLX" status --check >/dev/null 2>&1
is "$?" 0 "the workspace matches main's lock"

# A path left behind that was changed since is never removed.
git checkout -q HEAD~1 && echo "my edit" >extra.bin
mlx checkout
is "$RC" 0 "mlx checkout with a changed extra.bin"
like "$ERR" "mlx: warning: extra.bin: not pinned by this mlx.lock \(an earlier one pinned it\) and left as it is: changed since, or never stored; 'mlx add extra.bin' to track it here, or delete it" \
	"warns, naming it"
is "$(cat extra.bin)" "my edit" "and leaves it as it is"
rm extra.bin
git checkout -q main && "$MLX" checkout >/dev/null

# Two branches whose pipelines made different outs.
git checkout -q -b other
cat >p.lua <<'LUA'
local p = require("mlx").pipeline "p"
p:step "prep" { deps = { "data/" }, outs = { "work/prep.txt" }, cmd = "mkdir -p work && cat data/*.txt > work/prep.txt" }
p:step "first" { deps = { "work/prep.txt" }, outs = { "work/first.txt" }, cmd = "head -1 work/prep.txt > work/first.txt" }
return p
LUA
"$MLX" recipe p.lua 2>/dev/null
git add -A && git commit -qm other
git switch -q main
mlx checkout
like "$OUT" "removed   work/first.txt" "git switch to main: the other branch's out goes"
[ -f work/count.txt ] && [ ! -e work/first.txt ]
is "$?" 0 "main's out is there, the other's is not"
git switch -q other
mlx checkout
[ -f work/first.txt ] && [ ! -e work/count.txt ]
is "$?" 0 "and the other way round"
"$MLX" status --check >/dev/null 2>&1
is "$?" 0 "each time matching the branch's lock"
git switch -q main && "$MLX" checkout >/dev/null

# 'mlx remove' gives a file back to the user: no checkout takes it away.
"$MLX" remove extra.bin >/dev/null 2>&1
git commit -qam "untrack extra.bin"
mlx checkout
[ -f extra.bin ]
is "$?" 0 "a path mlx remove gave back stays"
"$MLX" status --check >/dev/null 2>&1
is "$?" 0 "and is not named by mlx status"

# A teammate's commit arrives with git pull: its mlx.lock pins data that
# this clone's store never had, while the workspace holds the old data.
store=$(mktemp -d "${TMPDIR:-/tmp}/mlx-store-XXXXXX")
trap 'rm -rf "$TEST_DIR" "$TAP_CAPTURE" "$store"' EXIT
"$MLX" remote add origin "$store" >/dev/null && "$MLX" push >/dev/null
git add .mlx/remotes.json && git commit -qm "remote"
git clone -q "$TEST_DIR" "$TEST_DIR/mate" && (cd "$TEST_DIR/mate" && "$MLX" pull >/dev/null 2>&1)
echo "row 5" >data/f5.txt && "$MLX" add data >/dev/null && "$MLX" push >/dev/null && git commit -qam "f5"
cd "$TEST_DIR/mate" || exit 1
git pull -q
mlx recipe p.lua
is "$RC" 2 "mlx recipe right after git pull exits 2"
is "$ERR" "mlx: error: data is not what mlx.lock pins, and the store has never had the pinned version (a git pull, checkout or merge brought a new mlx.lock): run 'mlx pull' first, or 'mlx add data' to pin the workspace's; step prep needs it" \
	"saying to pull the data first"
git diff --quiet mlx.lock
is "$?" 0 "mlx.lock is left as git brought it"
mlx recipe -n p.lua
is "$RC" 0 "mlx recipe -n plans all the same"
like "$ERR" "mlx: warning: data is not what mlx.lock pins" "with the warning"
"$MLX" pull >/dev/null 2>&1
mlx recipe p.lua
is "$RC" 0 "after mlx pull the recipe runs"
like "$ERR" "ran prep" "on the pulled data"
is "$(cat work/prep.txt | wc -l)" 5 "which has the teammate's row"

done_testing
