#!/usr/bin/env bash
# mlx add of a tracked directory after a few changes looks up only the
# objects in the store's shards that changed since all its objects were
# last found (.mlx/state.db-shards/); an object removed by gc, by fsck's
# quarantine or by hand changes its shard, so the add still finds it
# missing and stores it again.
. "$(dirname "$0")/tap.sh"

manifest_hash() { # the locked manifest of data
	"$MLX" lua -e "print(require('mlx.json').load('mlx.lock').artifacts.data.hash)"
}
object() { # ID — the object's path in the store
	echo ".mlx/cache/objects/${1:0:2}/${1:2}"
}
all_objects_present() { # 0 if every object of data's manifest is in the store
	"$MLX" lua -e '
local st = assert(require("mlx.store").open(require("mlx.fs").cwd()))
local files = assert(st:manifest(require("mlx.json").load("mlx.lock").artifacts.data.hash))
for _, f in ipairs(files) do
  if not st:has(f.hash) then print("missing " .. f.path) os.exit(1) end
end'
}
# lookups ARGS... — runs mlx ARGS under strace and prints how many objects
# it looked up: a stat of a 62-hex-digit name in a shard, or a name read
# from a shard directory (a shard asked about for many of its objects is
# read whole; strace -y names the directory a getdents64 reads).
lookups() {
	strace -f -qq -y -e trace=newfstatat,fstatat64,statx,getdents64 -o "$TAP_CAPTURE/strace" "$MLX" "$@" \
		>/dev/null 2>&1 || echo "failed"
	local stats names
	stats=$(grep -E '"[0-9a-f]{62}"' "$TAP_CAPTURE/strace" | grep -vc getdents64)
	names=$(grep -E 'getdents64\([0-9]+<[^>]*/objects/[0-9a-f]{2}>' "$TAP_CAPTURE/strace" |
		grep -oE '/\* [0-9]+ entries' | awk '{ n += $2 } END { print n + 0 }')
	echo $((stats + names))
}
# change N — gives file N new bytes, past the racy window of the caches.
change() {
	printf 'changed %s %s\n' "$1" "$RANDOM" >>"data/d$(($1 % 4))/f$1"
	sleep 0.2
}
have_strace=0
command -v strace >/dev/null && strace -qq -o /dev/null true 2>/dev/null && have_strace=1

"$MLX" init >/dev/null
mkdir -p data/d0 data/d1 data/d2 data/d3
# 5,000 files: past the size from which the first add waits out the racy
# margin of the shards its commit wrote into, about 20 objects a shard.
for i in $(seq 0 4999); do printf 'file %d\n' "$i" >"data/d$((i % 4))/f$i"; done
sleep 0.2
mlx add data
is "$RC" 0 "the first add of a directory exits 0"
is "$(ls .mlx/state.db-shards | wc -l)" 1 "and records the shards of the store for it"
sleep 0.2

# The add after it looks up only the objects of the shards that changed
# since (its objects in the others were looked up once, after the first
# add's commit).
change 1
if [ "$have_strace" = 1 ]; then
	n=$(lookups add data)
	[ "$n" -lt 500 ]
	is "$?" 0 "the add of one change after it looks up only the objects of the shards that changed ($n)"
else
	skip "the add of one change after it looks up only the objects of the shards that changed" "no strace"
	"$MLX" add data >/dev/null
fi
sleep 0.2
rm -f .mlx/state.db-shards/*
change 2
if [ "$have_strace" = 1 ]; then
	n=$(lookups add data)
	[ "$n" -ge 5000 ]
	is "$?" 0 "with no record of the shards, every object is looked up ($n)"
else
	skip "with no record of the shards, every object is looked up" "no strace"
	"$MLX" add data >/dev/null
fi
is "$(ls .mlx/state.db-shards | wc -l)" 1 "and the add records the shards again"
sleep 0.2
change 4
if [ "$have_strace" = 1 ]; then
	n=$(lookups add data)
	[ "$n" -lt 500 ]
	is "$?" 0 "so the next add looks up only the objects of the shards that changed ($n)"
else
	skip "so the next add looks up only the objects of the shards that changed" "no strace"
	"$MLX" add data >/dev/null
fi
sleep 0.2
all_objects_present
is "$?" 0 "and every object of the directory is in the store"

# An object removed by hand: its shard changed, so it is looked up, found
# missing, and the whole add stores it again.
id7=$(sha256sum data/d3/f7 | cut -c1-64)
rm -f "$(object "$id7")"
change 3
mlx add data
is "$RC" 0 "an add after an object was removed by hand exits 0"
[ -f "$(object "$id7")" ]
is "$?" 0 "and stores the removed object again"
all_objects_present
is "$?" 0 "with every object of the directory in the store"

# An object quarantined by fsck.
sleep 0.2
"$MLX" add data >/dev/null
sleep 0.2
id9=$(sha256sum data/d1/f9 | cut -c1-64)
chmod u+w "$(object "$id9")" && printf 'XXXX' | dd of="$(object "$id9")" bs=1 seek=0 conv=notrunc 2>/dev/null
mlx fsck
is "$RC" 1 "fsck finds the damaged object"
[ -f ".mlx/cache/quarantine/$id9" ] && [ ! -e "$(object "$id9")" ]
is "$?" 0 "and quarantines it"
change 5
mlx add data
is "$RC" 0 "an add after fsck's quarantine exits 0"
[ -f "$(object "$id9")" ] && [ "$(sha256sum "$(object "$id9")" | cut -c1-64)" = "$id9" ]
is "$?" 0 "and stores the quarantined object again, sound"
mlx fsck
is "$RC" 0 "fsck finds the store sound"

# Objects removed by gc under a lock that keeps the manifest but not the
# files it lists (data recorded as a file: a lock of another branch).
sleep 0.2
"$MLX" add data >/dev/null
sleep 0.2
cp mlx.lock lock.saved
"$MLX" lua -e '
local json = require("mlx.json")
local lock = json.load("mlx.lock")
local d = lock.artifacts.data
lock.artifacts.data = { type = "file", hash = d.hash, size = 1, mode = "644" }
local f = assert(io.open("mlx.lock", "w")) f:write(json.encode(lock)) f:close()'
mlx gc
is "$RC" 0 "gc exits 0"
id11=$(sha256sum data/d3/f11 | cut -c1-64)
[ ! -e "$(object "$id11")" ] && [ -f "$(object "$(manifest_hash)")" ]
is "$?" 0 "and removes the objects of the directory's files, not its manifest"
mv lock.saved mlx.lock
change 6
mlx add data
is "$RC" 0 "an add after gc removed its objects exits 0"
all_objects_present
is "$?" 0 "and stores every object of the directory again"

# A damaged record is not trusted: every object is looked up.
sleep 0.2
"$MLX" add data >/dev/null
sleep 0.2
rec=$(ls .mlx/state.db-shards/* | head -1)
printf '\377' | dd of="$rec" bs=1 seek=200 conv=notrunc 2>/dev/null
change 8
if [ "$have_strace" = 1 ]; then
	n=$(lookups add data)
	[ "$n" -ge 5000 ]
	is "$?" 0 "a damaged record of the shards is not trusted: every object is looked up ($n)"
else
	skip "a damaged record of the shards is not trusted" "no strace"
	"$MLX" add data >/dev/null
fi
sleep 0.2
id13=$(sha256sum data/d1/f13 | cut -c1-64)
rm -f "$(object "$id13")"
change 10
mlx add data
[ -f "$(object "$id13")" ]
is "$?" 0 "and the record written after it still sees an object removed by hand"

# A tracked directory added whole (here: its stat-cache tree is gone)
# records the shards as they were before its walk, so the add after it is
# spared too.
sleep 0.2
"$MLX" add data >/dev/null
rm -f .mlx/state.db-trees/*
change 12
mlx add data
is "$RC" 0 "an add with no tree to compare with exits 0"
sleep 0.2
change 16
if [ "$have_strace" = 1 ]; then
	n=$(lookups add data)
	[ "$n" -lt 500 ]
	is "$?" 0 "and the add after it looks up only the objects of the shards that changed ($n)"
else
	skip "and the add after it looks up only the objects of the shards that changed" "no strace"
	"$MLX" add data >/dev/null
fi

# mlx add of a path inside the directory carries the record to the new
# manifest, so the add of the directory after it is still spared.
sleep 0.2
"$MLX" add data >/dev/null
sleep 0.2
change 14
mlx add data/d2/f14
is "$RC" 0 "adding a path inside the directory exits 0"
sleep 0.2
change 15
if [ "$have_strace" = 1 ]; then
	n=$(lookups add data)
	[ "$n" -lt 500 ]
	is "$?" 0 "and the add of the directory after it still looks up only the changed shards ($n)"
else
	skip "and the add of the directory after it still looks up only the changed shards" "no strace"
	"$MLX" add data >/dev/null
fi
all_objects_present
is "$?" 0 "with every object of the directory in the store"
mlx status
is "$RC" 0 "and status finds everything up to date"

done_testing
