#!/usr/bin/env bash
# mlx init creates the project layout and is idempotent.
. "$(dirname "$0")/tap.sh"

mlx init
is "$RC" 0 "init exits 0"
like "$OUT" "^Initialized mlx project in .*/\.mlx$" "init says where"
[ -f .mlx/config.lua ]
is "$?" 0 "config.lua exists"
grep -q '^/cache/$' .mlx/.gitignore
is "$?" 0 ".gitignore keeps the cache out of git"
mlx lua -e 'assert(type(dofile(".mlx/config.lua")) == "table")'
is "$RC" 0 "config.lua is valid Lua returning a table"

echo '-- mine' >>.mlx/config.lua
before=$(sha256sum .mlx/config.lua)
mlx init
is "$RC" 0 "a second init exits 0"
like "$OUT" "already initialized" "and says so"
is "$(sha256sum .mlx/config.lua)" "$before" "and leaves the user's config alone"

mkdir other && touch other/.mlx
cd other
mlx init
is "$RC" 2 "a file named .mlx is a clear error"
like "$ERR" "\.mlx exists and is not a directory" "naming the problem"

done_testing
