#!/usr/bin/env bash
# The stat cache as a user relies on it: a no-op status reads no tracked
# file, and every kind of change is still seen, also when the cache is
# damaged or gone.
. "$(dirname "$0")/tap.sh"

"$MLX" init >/dev/null
mkdir -p d/a/deep d/b
for i in $(seq 1 20); do printf 'file %02d\n' "$i" >"d/a/f$i"; done
for i in $(seq 1 10); do head -c $((i * 700)) /dev/urandom >"d/b/g$i.bin"; done
printf 'top\n' >d/top.txt
printf 'deep\n' >d/a/deep/x.txt
# Entries of files changed less than 100 ms before they were hashed are not
# trusted (racy); let these age first, as real data has.
sleep 0.3
mlx add d
is "$RC" 0 "add of a directory exits 0"
sleep 0.3

mlx status --check
is "$RC" 0 "an unchanged directory is up to date"
if command -v strace >/dev/null; then
	strace -f -e trace=open,openat -o trace.txt "$MLX" status --check >/dev/null 2>&1
	like "$(cat trace.txt)" 'state\.db-trees/[0-9a-f]{64}", O_RDONLY' "a no-op status reads the directory's tree"
	is "$(grep -v O_DIRECTORY trace.txt | grep -c '/d/')" "0" "and opens none of the tracked files"
	is "$(grep -c 'state.db"' trace.txt)" "0" "nor the stat cache's database"
else
	skip "a no-op status reads the directory's tree" "strace is not installed"
	skip "and opens none of the tracked files" "strace is not installed"
	skip "nor the stat cache's database" "strace is not installed"
fi

lock_hash() { "$MLX" lua -e "print(require('mlx.json').load('mlx.lock').artifacts.d.hash)"; }
id_only=$("$MLX" lua -e '
local st = assert(require("mlx.store").open(require("mlx.fs").cwd()))
local quick = assert(st:hash("d", { manifest = false }))
local full = assert(st:hash("d"))
print(quick.hash == full.hash, quick.manifest == nil, quick.files, full.files,
  require("mlx.hash").bytes(full.manifest) == full.hash)')
is "$id_only" "true	true	32	32	true" "st:hash with manifest = false gives the same id, without the manifest"

# Same size, mtime set back: only ctime shows the change.
printf 'FILE 07\n' >d/a/f7
touch -r d/a/f8 d/a/f7
mlx status
like "$OUT" "modified: d/ \(0 added, 1 modified, 0 deleted\)" "a rewrite with the same size and mtime is seen"
like "$OUT" "modified: d/a/f7" "and named"

mlx add d
sleep 0.3
mlx status --check
is "$RC" 0 "after add it is up to date again"

chmod +x d/b/g3.bin
mlx status
like "$OUT" "modified: d/b/g3.bin" "a file made executable is modified"
chmod -x d/b/g3.bin
mlx status --check
is "$RC" 0 "and up to date when the mode is back"

# A file deleted and made again with the same name and size (it may even
# get the same inode) but other bytes.
rm d/a/f12
printf 'FILE 12\n' >d/a/f12
mlx status
like "$OUT" "modified: d/a/f12" "a file replaced by another of the same size is modified"
printf 'file 12\n' >d/a/f12
mlx status --check
is "$RC" 0 "and up to date when its bytes are back"

# A damaged tree is ignored; a lost database is rebuilt.
sleep 0.3
mlx status --check
for f in .mlx/state.db-trees/*; do truncate -s 100 "$f"; done
mlx status --check
is "$RC" 0 "a damaged tree of the cache is ignored"
printf 'FILE 01\n' >d/a/f1
touch -r d/a/f2 d/a/f1
for f in .mlx/state.db-trees/*; do printf 'garbage' >"$f"; done
mlx status
like "$OUT" "modified: d/a/f1" "and changes are still seen"
printf 'file 01\n' >d/a/f1
rm -f .mlx/state.db .mlx/state.db-wal .mlx/state.db-shm
rm -rf .mlx/state.db-trees
mlx status --check
is "$RC" 0 "without any cache, status re-hashes and agrees"
is "$(ls .mlx/state.db-trees | wc -l)" "1" "and keeps a tree for the tracked directory again"

# A no-op status compares the directory with its tree file by file; what it
# cannot vouch for goes to the full walk, which says what changed or what
# is wrong.
sleep 0.3
mlx status --check
is "$RC" 0 "the tree is written again, and up to date"
printf 'new\n' >d/a/deep/new.txt
mlx status
like "$OUT" "modified: d/ \(1 added, 0 modified, 0 deleted\)" "a file added deep down is seen"
rm d/a/deep/new.txt d/b/g4.bin
mlx status
like "$OUT" "modified: d/ \(0 added, 0 modified, 1 deleted\)" "a file removed is seen"
printf 'x' >d/b/g4.bin
mlx status
like "$OUT" "modified: d/b/g4.bin" "and one made again with other bytes"
head -c 2800 /dev/urandom >d/b/g4.bin
mlx add d >/dev/null
sleep 0.3
mkdir d/b/empty
mlx status --check
is "$RC" 0 "an empty directory changes nothing"
ln -s ../top.txt d/b/empty/link
mlx status
like "$OUT" "error: +d/ \(.*d/b/empty/link: is a symbolic link" "a symbolic link in a tracked directory is named"
rm d/b/empty/link
mkfifo d/b/empty/fifo
mlx status
like "$OUT" "error: +d/ \(.*d/b/empty/fifo: is a fifo" "and so is a fifo"
rm -r d/b/empty
mlx status --check
is "$RC" 0 "up to date once they are gone"

# With one file changed, status compares the others with the tree and
# reads that file alone, again and again (its row remembers its hash).
printf 'changed\n' >>d/a/f3
touch d/a/f4
sleep 0.3
mlx status
like "$OUT" "modified: d/ \(0 added, 1 modified, 0 deleted\)" "one file changed and one touched: one modified"
like "$OUT" "modified: d/a/f3" "and named"
if command -v strace >/dev/null; then
	strace -f -e trace=open,openat -o trace.txt "$MLX" status >/dev/null 2>&1
	is "$(grep -v O_DIRECTORY trace.txt | grep -c '/d/')" "0" "a second status reads no tracked file"
else
	skip "a second status reads no tracked file" "strace is not installed"
fi

# A directory whose stat is as its tree records is not read again, only
# its files stat'ed; a name added, removed or renamed in it is still seen,
# also with its mtime set back, or right after the look that recorded it.
mlx add d >/dev/null
sleep 0.3
mlx status --check
mlx status --check
is "$RC" 0 "the directories are recorded, and up to date"
if command -v strace >/dev/null; then
	strace -f -y -e trace=getdents64 -o trace.txt "$MLX" status --check >/dev/null 2>&1
	like "$(cat trace.txt)" 'getdents64\([0-9]+<[^>]*/d>' "a no-op status reads the top directory"
	is "$(grep -c 'getdents64([0-9]*<[^>]*/d/' trace.txt)" "0" "and none below it"
else
	skip "a no-op status reads the top directory" "strace is not installed"
	skip "and none below it" "strace is not installed"
fi
was=$(stat -c %y d/a)
printf 'sneaked in\n' >d/a/sneaked.txt
touch -d "$was" d/a
mlx status
like "$OUT" "modified: d/ \(1 added, 0 modified, 0 deleted\)" "a file added where the mtime was set back is seen"
rm d/a/sneaked.txt
sleep 0.3
mlx status --check
is "$RC" 0 "and up to date once it is gone"
mlx status --check
printf 'quick\n' >d/b/quick.txt
mlx status
like "$OUT" "modified: d/ \(1 added, 0 modified, 0 deleted\)" "a file added right after a no-op status is seen"
mv d/b/quick.txt d/b/quicker.txt
mlx status
like "$OUT" "added: +d/b/quicker.txt" "and renamed"
rm d/b/quicker.txt
mv d/a/f5 d/a/f5.moved
mlx status
like "$OUT" "modified: d/ \(1 added, 0 modified, 1 deleted\)" "a tracked file renamed is seen"
mv d/a/f5.moved d/a/f5
mlx add d >/dev/null

# mlx add of a tracked directory with a few files changed reads and stores
# only those (the others as its tree records them), and its tree then
# records the new manifest: the next status walks nothing.
sleep 0.3
mlx status --check
printf 'changed for add\n' >>d/a/f6
printf 'brand new\n' >d/b/added.txt
rm d/a/f9
sleep 0.3
if command -v strace >/dev/null; then
	strace -f -y -e trace=open,openat,getdents64 -o trace.txt "$MLX" add d >/dev/null 2>&1
	# The files opened (a call's result may be printed apart from its
	# flags when threads interleave, so directories are left out by type).
	opened=$(sed -n 's|.*= [0-9]*<[^>]*/\(d/[^>]*\)>$|\1|p' trace.txt | sort -u |
		while read -r f; do [ -f "$f" ] && printf '%s ' "$f"; done)
	is "$opened" "d/a/f6 d/b/added.txt " "an add of a directory reads only the files that changed"
	is "$(sed -n 's|^.*getdents64([0-9]*<[^>]*/\(d/[^>]*\)>.*|\1|p' trace.txt | sort -u | tr '\n' ' ')" "d/a d/b " \
		"and lists only the directories whose names changed"
	strace -f -y -e trace=getdents64 -o trace.txt "$MLX" status --check >/dev/null 2>&1
	is "$(sed -n 's|^.*getdents64([0-9]*<[^>]*/\(d/[^>]*\)>.*|\1|p' trace.txt | sort -u | tr '\n' ' ')" "d/a d/b " \
		"the status after it reads only the directories whose names changed"
else
	skip "an add of a directory reads only the files that changed" "strace is not installed"
	skip "and lists only the directories whose names changed" "strace is not installed"
	skip "the status after it reads only the directories whose names changed" "strace is not installed"
	"$MLX" add d >/dev/null 2>&1
fi
mlx status --check
is "$RC" 0 "after which the directory is up to date"
rm -rf .mlx/state.db-trees
mlx status --check
is "$RC" 0 "and its locked record is the one a full walk makes"
like "$(lock_hash)" '^[0-9a-f]{64}$' "of the directory as it is"
sleep 0.3
mlx status --check
printf 'member\n' >>d/a/f7
mlx add d/a/f7 >/dev/null
if command -v strace >/dev/null; then
	strace -f -y -e trace=getdents64 -o trace.txt "$MLX" status --check >/dev/null 2>&1
	is "$(grep -c 'getdents64([0-9]*<[^>]*/d/' trace.txt)" "0" "an add of a file inside it keeps its tree too"
else
	skip "an add of a file inside it keeps its tree too" "strace is not installed"
fi
mlx status --check
is "$RC" 0 "and it is up to date"

# The database's -wal and -shm files stay between commands (a new inode
# costs up to a millisecond on a busy disk), the WAL emptied.
ls -i .mlx/state.db-wal .mlx/state.db-shm >inodes.txt
is "$?" 0 "the stat cache keeps its -wal and -shm files"
mlx status
is "$(ls -i .mlx/state.db-wal .mlx/state.db-shm 2>&1)" "$(cat inodes.txt)" "the same files, not new ones"
is "$(stat -c %s .mlx/state.db-wal)" "0" "its WAL emptied into the database"

done_testing
