#!/usr/bin/env bash
# mlx add of paths inside a tracked directory: the directory's record is
# updated with what those paths hold now (only they are hashed; its other
# files keep their locked lines), and the result is the record a whole add
# would make when nothing else changed.
. "$(dirname "$0")/tap.sh"

lock_field() { # PATH FIELD — a field of an artifact in mlx.lock
	"$MLX" lua -e "print(require('mlx.json').load('mlx.lock').artifacts['$1'].$2)"
}

"$MLX" init >/dev/null
mkdir -p data/a data/a-b data/b
for i in 1 2 3; do printf 'a%d\n' "$i" >"data/a/f$i"; done
printf 'ab\n' >data/a-b/x
printf 'b\n' >data/b/y
printf 'top\n' >data/top.txt
sleep 0.2
"$MLX" add data >/dev/null
files0=$(lock_field data files)

printf 'A2, longer now\n' >data/a/f2
printf 'B\n' >data/b/y
mlx add data/a/f2
is "$RC" 0 "adding a file inside a tracked directory exits 0"
like "$OUT" "updated +data/ \(6 files, " "and reports the directory, updated"
is "$(lock_field data files)" "$files0" "with as many files"
want=$("$MLX" lua -e '
local st = assert(require("mlx.store").open(require("mlx.fs").cwd()))
local files = assert(st:manifest(require("mlx.json").load("mlx.lock").artifacts.data.hash))
local out = {}
for _, f in ipairs(files) do out[#out + 1] = f.path .. "=" .. f.hash:sub(1, 8) end
print(table.concat(out, " "))')
f2=$(sha256sum data/a/f2 | cut -c1-8)
y0=$(printf 'b\n' | sha256sum | cut -c1-8)
like "$want" "a/f2=$f2 " "the file's new hash is in the manifest"
like "$want" "b/y=$y0" "and a file not named keeps its locked hash"
mlx status
like "$OUT" "modified: data/ \(0 added, 1 modified, 0 deleted\)" "so status still shows the other change"
like "$OUT" "modified: data/b/y" "naming it"

# A subdirectory inside: its files replace what the manifest had below it.
printf 'new\n' >data/a/f4
rm data/a/f1
mlx add data/a data/b/y
is "$RC" 0 "a subdirectory and a file inside at once"
mlx status --check
is "$RC" 0 "after which everything is up to date"
whole=$("$MLX" hash data | cut -d' ' -f1)
is "$(lock_field data hash)" "$whole" "and the record is the one mlx hash gives for the directory"
is "$(lock_field data files)" "6" "counting the files"
"$MLX" checkout data >/dev/null
is "$(cat data/a/f4)" "new" "checkout places the added file"

# A new file, in a new subdirectory, sorts into its place.
mkdir data/a/c
printf 'c\n' >data/a/c/z
mlx add data/a/c/z
is "$(lock_field data hash)" "$("$MLX" hash data | cut -d' ' -f1)" "a new file in a new subdirectory is sorted into place"

mlx add data data/a/f2
is "$RC" 2 "a directory and a path inside it at once are refused"
like "$ERR" "cannot add both" "saying why"
ln -s ../top.txt data/b/link
mlx add data/b/link
is "$RC" 2 "a symbolic link inside is refused"
like "$ERR" "symbolic link" "as for the directory"
rm data/b/link
mlx add data/nothing
is "$RC" 2 "a path that does not exist is refused"

# The locked manifest must be in the store: without it, say so.
printf 'A3\n' >data/a/f3
id=$(lock_field data hash)
mkdir -p aside && mv ".mlx/cache/objects/${id:0:2}/${id:2}" aside/
mlx add data/a/f3
is "$RC" 2 "without the locked manifest in the store the add is refused"
like "$ERR" "the manifest of data cannot be read .*add data whole" "and says what to do"
mlx add data
is "$RC" 0 "and adding the directory whole works"

done_testing
