#!/usr/bin/env bash
# The store never loses or corrupts data: kill -9 during mlx add, a full
# disk, and two mlx add at once.
. "$(dirname "$0")/tap.sh"

objects_sound() { # every object's bytes hash to its name
	# One sha256sum for all objects: two processes per object made this
	# file take most of a minute on a loaded machine.
	find .mlx/cache/objects -type f -print0 2>/dev/null | xargs -0 -r sha256sum |
		awk '{ name = $2; sub(/^\.mlx\/cache\/objects\//, "", name); sub(/\//, "", name)
			if ($1 != name) { print "# corrupt object: " $2; bad++ } }
			END { exit bad > 0 }'
}

# ---- kill -9 in the middle of mlx add ----------------------------------
mkdir killed && cd killed
"$MLX" init >/dev/null
mkdir data
for i in $(seq 1 40); do head -c 3000000 /dev/urandom >"data/part$i.bin"; done
sha256sum data/* >../before.sha
"$MLX" add -j1 data >/dev/null 2>&1 &
pid=$!
# Wait until it is copying into the store, then kill it.
for _ in $(seq 1 500); do
	[ -n "$(find .mlx/tmp -path '*/put-*' -type f ! -name .lock 2>/dev/null | head -1)" ] && break
	sleep 0.01
done
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
status=$?
if [ "$status" -eq 137 ]; then
	tap_result 0 "mlx add was killed while copying"
	sha256sum --quiet -c ../before.sha
	is "$?" 0 "no file of the user changed or vanished"
	[ ! -e mlx.lock ]
	is "$?" 0 "mlx.lock was not written"
	objects_sound
	is "$?" 0 "no object in the store is corrupt or partial"
	"$MLX" add data >/dev/null
	is "$?" 0 "the next add succeeds"
	is "$(find .mlx/tmp -path '*/put-*' | wc -l)" "0" "and removed the dead process's temp files"
	"$MLX" status --check >/dev/null 2>&1 && objects_sound
	is "$?" 0 "and the store and lock are complete and sound"
else
	skip "mlx add was killed while copying" "add finished (status $status) before it could be killed"
fi
cd ..

# ---- a full disk ------------------------------------------------------------
disk=$(mktemp -d /tmp/mlx-e2e-disk-XXXXXX)
if mount -t tmpfs -o size=4m tmpfs "$disk" 2>mount.err; then
	(
		cd "$disk"
		"$MLX" init >/dev/null
		printf 'small' >small.txt
		"$MLX" add small.txt >/dev/null
		cp mlx.lock "$TEST_DIR/lock.before"
		mkdir big
		head -c 1500000 /dev/urandom >big/a.bin
		head -c 1500000 /dev/urandom >big/b.bin
		sha256sum big/* >"$TEST_DIR/big.sha"
	)
	mlx -C "$disk" add big
	is "$RC" 1 "add on a full disk fails (exit 1)"
	like "$ERR" "No space left on device" "saying why"
	(cd "$disk" && sha256sum --quiet -c "$TEST_DIR/big.sha")
	is "$?" 0 "the user's files are intact"
	is "$(cat "$disk/mlx.lock")" "$(cat "$TEST_DIR/lock.before")" "mlx.lock is unchanged"
	is "$(find "$disk/.mlx/tmp" -path '*/put-*' | wc -l)" "0" "no temp file is left behind"
	(cd "$disk" && objects_sound)
	is "$?" 0 "the store holds only sound objects"
	mlx -C "$disk" status --check
	is "$RC" 0 "and what was tracked before is still complete"
	umount "$disk"
else
	for t in "add on a full disk fails (exit 1)" "saying why" "the user's files are intact" \
		"mlx.lock is unchanged" "no temp file is left behind" "the store holds only sound objects" \
		"and what was tracked before is still complete"; do
		skip "$t" "cannot mount a small tmpfs: $(head -1 mount.err)"
	done
fi
rmdir "$disk"

# ---- two mlx add at once ----------------------------------------------------
mkdir twice && cd twice
"$MLX" init >/dev/null
mkdir data
python3 -c 'import os
for i in range(1, 301):
    open("data/f%d" % i, "wb").write(os.urandom(1000 + i * 37))'
cp data/f1 data/dup1 && cp data/f1 data/dup2
"$MLX" add data >../out1 2>&1 &
p1=$!
"$MLX" add data >../out2 2>&1 &
p2=$!
wait "$p1"
s1=$?
wait "$p2"
s2=$?
is "$s1$s2" "00" "two concurrent adds of the same data both succeed"
is "$(sed 's/^[a-z]* *//' ../out1)" "$(sed 's/^[a-z]* *//' ../out2)" "and report the same"
is "$(find .mlx/cache/objects -type f | wc -l)" "301" "each content is stored once (300 files, 1 manifest)"
objects_sound
is "$?" 0 "every object is sound"
"$MLX" status --check >/dev/null 2>&1
is "$?" 0 "and the lock agrees with the workspace"
cd ..

# ---- a .gitignore from a clone that is a symbolic link -------------------
# A repository can hold data/.gitignore -> ../.git/hooks/pre-commit: mlx
# add must not read the hook into the project's ignores, nor replace the
# link, nor write through it; it says what to add by hand.
mkdir ignlink && cd ignlink
"$MLX" init >/dev/null && git init -q .
mkdir -p data .git/hooks && printf '#!/bin/sh\nexit 0\n' >.git/hooks/pre-commit
ln -s ../.git/hooks/pre-commit data/.gitignore
echo rows >data/train.csv
mlx add data/train.csv
is "$RC" 0 "mlx add succeeds beside a .gitignore that is a link"
like "$ERR" "^mlx: warning: data/.gitignore is not a regular file of the project .*add /train.csv to git's ignores yourself" \
	"and warns, naming the file and the line to add"
is "$(readlink data/.gitignore)" "../.git/hooks/pre-commit" "the link is left as it was"
is "$(cat .git/hooks/pre-commit)" "$(printf '#!/bin/sh\nexit 0')" "and the hook is unchanged"
cd ..

done_testing
