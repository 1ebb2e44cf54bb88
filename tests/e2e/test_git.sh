#!/usr/bin/env bash
# Recipes using mlx.git on real repositories made in a temporary directory.
. "$(dirname "$0")/tap.sh"
export GIT_AUTHOR_NAME=Ada GIT_AUTHOR_EMAIL=ada@example.org
export GIT_COMMITTER_NAME=Ada GIT_COMMITTER_EMAIL=ada@example.org

cat >release.lua <<'LUA'
local mlx = require "mlx"
local repo <close> = assert(mlx.git.open())
local head = repo:head()
local dirty, paths = repo:is_dirty()
local before = assert(mlx.json.decode(assert(repo:show("HEAD~1", "metrics.json"))))
local now = assert(mlx.json.load(repo:root() .. "/metrics.json"))
print(head.branch, head.short, dirty, table.concat(paths, ","), before.loss, now.loss)
assert(repo:tag(arg[1], { message = "release " .. arg[1] }))
print(table.concat(repo:tags(), " "))
LUA

mkdir norepo && cd norepo || exit 1
mlx recipe ../release.lua v1
is "$RC" 1 "outside a repository the recipe fails"
is "$ERR" "mlx: error: ../release.lua:2: not a git repository: $(pwd -P)" "and names the directory"
cd "$TEST_DIR" || exit 1

mkdir proj && cd proj || exit 1
git init -q -b main
printf '{"loss": 0.5}\n' >metrics.json
git add metrics.json && git commit -q -m first
printf '{"loss": 0.25}\n' >metrics.json
git commit -q -am second
echo "scratch" >notes.txt
mkdir -p sub && cd sub || exit 1
mlx recipe ../../release.lua v1
is "$RC" 0 "from a subdirectory the repository is found"
is "$OUT" "main	$(git rev-parse --short=7 HEAD)	false		0.5	0.25
v1" "head, status, a file at another revision, tags"
is "$(git cat-file -t v1)" "tag" "an annotated tag was made"
printf '{"loss": 0.125}\n' >../metrics.json
mlx recipe ../../release.lua v1
is "$RC" 1 "tagging twice fails"
like "$OUT" "^main	[0-9a-f]{7}	true	metrics.json	0.5	0.125$" "a modified file makes the tree dirty"
is "$ERR" "mlx: error: ../../release.lua:8: tag 'v1' already exists in $(cd .. && pwd -P)" "an existing tag is one line"
cd "$TEST_DIR" || exit 1

done_testing
