#!/usr/bin/env bash
# The no-op path reads .mlx/cache/lock-steps (keys and out hashes of the
# steps) instead of mlx.lock, but only while mlx.lock has the bytes the
# index was made from: a lock changed by hand, by git or by another mlx is
# read in full again, and a step that would run still says why.
. "$(dirname "$0")/tap.sh"

echo a >in.txt
cat >recipe.lua <<'LUA'
local p = require("mlx").pipeline "idx"
p:step "a" { deps = { "in.txt" }, outs = { "a.txt" }, cmd = "cat in.txt > a.txt" }
p:step "b" { deps = { "a.txt" }, outs = { "b.txt" }, cmd = "cat a.txt a.txt > b.txt" }
p:step "c" { deps = { "in.txt" }, outs = { "c.txt" }, cmd = "cat in.txt > c.txt" }
return p
LUA
"$MLX" init >/dev/null

mlx recipe recipe.lua -q
is "$RC" 0 "the first run succeeds"
index=.mlx/cache/lock-steps
is "$(head -1 "$index")" "mlx lock-steps 2 $(sha256sum mlx.lock | cut -d' ' -f1)" \
	"the index names the SHA-256 of the lock it was written with"
is "$(sed 1d "$index" | cut -f1,2 | sort | tr '\n' ' ')" "idx	a idx	b idx	c " "and holds one line per step"

mlx recipe recipe.lua
like "$ERR" "3 up to date" "the no-op from the index: all up to date"

echo b >in.txt
mlx recipe recipe.lua -n
like "$OUT" "would run a: dep 'in.txt' changed" "a changed dep is named (the entry read from the lock)"
like "$OUT" "would run b: upstream step 'a' runs" "downstream of it would run"
like "$OUT" "would run c: dep 'in.txt' changed" "and so would c"
mlx recipe recipe.lua -q
is "$RC" 0 "the run after the change succeeds"
is "$(head -1 "$index")" "mlx lock-steps 2 $(sha256sum mlx.lock | cut -d' ' -f1)" "the index follows the new lock"

# A lock edited by hand: the index no longer matches it and is not used.
key=$(sed -n '/"b": {/,/"key"/s/.*"key": "\([0-9a-f]*\)".*/\1/p' mlx.lock)
sed -i "s/$key/$(printf '0%.0s' $(seq 64))/" mlx.lock
mlx recipe recipe.lua -n
like "$OUT" "would restore b: its env, tools or declared outs changed" "a hand-edited lock is read again: b is stale"
is "$(printf '%s\n' "$OUT" | grep -Ec '^would (run|restore)')" "1" "and only b"
mlx recipe recipe.lua -q
is "$RC" 0 "the run re-pins it"
mlx recipe recipe.lua
like "$ERR" "3 up to date" "and the next no-op is one again"

# The lock's digest comes through the stat cache: a no-op does not read an
# unchanged mlx.lock, and an edit in place (same inode, same size) is seen.
sleep 0.3 # older than the stat cache's racy window
mlx recipe recipe.lua
if command -v strace >/dev/null; then
	strace -f -e trace=open,openat -o trace.txt "$MLX" recipe recipe.lua >/dev/null 2>&1
	is "$(grep -c 'mlx\.lock"' trace.txt)" "0" "a no-op does not read an unchanged mlx.lock"
else
	skip "a no-op does not read an unchanged mlx.lock" "strace is not installed"
fi
ino=$(stat -c %i mlx.lock)
key=$(sed -n '/"b": {/,/"key"/s/.*"key": "\([0-9a-f]*\)".*/\1/p' mlx.lock)
at=$(grep -bo "$key" mlx.lock | head -1 | cut -d: -f1)
printf '%064d' 0 | dd of=mlx.lock bs=1 seek="$at" conv=notrunc status=none
is "$(stat -c %i mlx.lock)" "$ino" "(the lock edited in place)"
mlx recipe recipe.lua -n
like "$OUT" "would restore b: its env, tools or declared outs changed" "a lock edited in place is read again"
mlx recipe recipe.lua -q
is "$RC" 0 "and the run re-pins it"

# A corrupt lock is refused, whatever the index says.
cp mlx.lock good.lock
printf '{"version": 1, "steps": {"idx": {"a": {"key": "xyz"}}}}\n' >mlx.lock
mlx recipe recipe.lua
is "$RC" 2 "a corrupt lock exits 2 despite the index"
like "$ERR" "mlx.lock: step idx/a: key must be 64 hex digits" "naming the problem"

# The index is a cache: missing or damaged, it is made again.
cp good.lock mlx.lock
rm "$index"
mlx recipe recipe.lua
like "$ERR" "3 up to date" "without the index the no-op reads the lock"
test -s "$index"
is "$?" 0 "and writes the index again"
echo garbage >"$index"
mlx recipe recipe.lua
like "$ERR" "3 up to date" "a damaged index is ignored"

# A step no longer declared: found among the index's names, its entry
# leaves the lock although nothing runs.
cp recipe.lua full.lua
grep -v 'p:step "c"' full.lua >recipe.lua
mlx recipe recipe.lua
like "$ERR" "2 up to date" "without step c: a no-op"
is "$(grep -c '"c": {' mlx.lock)" 0 "and c's entry has left the lock"
is "$(head -1 "$index")" "mlx lock-steps 2 $(sha256sum mlx.lock | cut -d' ' -f1)" "the index follows it"

# The index is written once a run, at its end: also when a checkpoint
# during the run recorded every step and the last one has nothing left.
cat >slow.lua <<'LUA'
local p = require("mlx").pipeline "slow"
p:step "s" { deps = { "in.txt" }, outs = { "s.txt" }, cmd = "sleep 1.3; cat in.txt > s.txt" }
return p
LUA
mlx recipe slow.lua -q
is "$RC" 0 "a step that outlasts the checkpoint interval runs"
is "$(head -1 "$index")" "mlx lock-steps 2 $(sha256sum mlx.lock | cut -d' ' -f1)" \
	"the index names the lock the run's checkpoint wrote"
mlx recipe slow.lua
like "$ERR" "1 up to date" "and the next no-op reads it"

done_testing
