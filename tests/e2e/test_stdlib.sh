#!/usr/bin/env bash
# Every stdlib file is compiled into the binary (stdlib/meson.build lists them).
. "$(dirname "$0")/tap.sh"
: "${MLX_SOURCE_ROOT:?set MLX_SOURCE_ROOT}"

expected=$(cd "$MLX_SOURCE_ROOT/stdlib" && find . -name '*.lua' | sed 's|^\./||; s|\.lua$||; s|/|.|g; s|^mlx\.init$|mlx|' | sort)
mlx lua -e 'for _, n in ipairs(require("mlx.core").embedded()) do print(n) end'
is "$(printf '%s\n' "$OUT" | sort)" "$expected" "every stdlib/*.lua is embedded"

# MLX_LUA_PATH reads the stdlib from a source tree instead.
mkdir -p tree/mlx/cli
cp -r "$MLX_SOURCE_ROOT"/stdlib/mlx/* tree/mlx/
echo 'return { summary = "dev only", main = function() print("from tree") end }' >tree/mlx/cli/devonly.lua
MLX_LUA_PATH="$TEST_DIR/tree" mlx devonly
is "$OUT" "from tree" "MLX_LUA_PATH overrides the embedded stdlib"

done_testing
