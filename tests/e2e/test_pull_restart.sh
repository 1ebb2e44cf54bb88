#!/usr/bin/env bash
# A pull publishes the objects it fetched without waiting for the disk,
# after a durable record of them (.mlx/cache/unsynced/, named by the
# kernel's boot id). A kill -9 loses nothing of them; a restart of the
# machine before the kernel wrote them can leave objects whose bytes are
# not their names'. Simulated here by giving the records another boot id
# and damaging two objects: the next mlx command checks every object of
# those records, moves the damaged ones to quarantine, says so once, and
# the next pull fetches them again.
. "$(dirname "$0")/tap.sh"

[ -r /proc/sys/kernel/random/boot_id ] || { echo "1..0 # SKIP no /proc/sys/kernel/random/boot_id"; exit 0; }
boot=$(cat /proc/sys/kernel/random/boot_id)

mkdir -p a && cd a || exit 1
git init -q .
git config user.email test@example.com
git config user.name test
"$MLX" init >/dev/null
mkdir -p data
for i in $(seq 1 40); do head -c $((1000 + i * 97)) /dev/urandom >"data/f$i"; done
"$MLX" add data >/dev/null
mlx remote add origin "$TEST_DIR/remote"
mlx push
is "$RC" 0 "push 40 files to a directory remote"
git add -A && git commit -qm data
cd "$TEST_DIR" && git clone -q a b && cd b || exit 1

if command -v strace >/dev/null; then
	# LeakSanitizer cannot run under ptrace (an ASan build of mlx).
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
		strace -f -qq -e trace=syncfs,fsync,fdatasync -o "$TEST_DIR/calls" "$MLX" pull >/dev/null 2>&1
	RC=$?
	is "$RC" 0 "a pull into a fresh clone"
	is "$(grep -c 'syncfs(' "$TEST_DIR/calls")" 0 "the pull waits for no syncfs"
else
	mlx pull
	is "$RC" 0 "a pull into a fresh clone"
fi
records=$(ls .mlx/cache/unsynced)
is "$(printf '%s\n' "$records" | grep -vc "^$boot\.")" 0 "its records are named by this boot's id"
is "$(cat .mlx/cache/unsynced/* | grep -cE '^[0-9a-f]{64}$')" 41 "and name the 40 objects and the manifest"

# A command of the same boot trusts them: nothing is checked or said.
mlx status
is "$RC" 0 "status after the pull"
is "$ERR" "mlx: 1 tracked artifact up to date" "says nothing of the records"

# The machine "restarts": the records are another boot's, and two objects
# hold bytes that are not theirs.
for r in .mlx/cache/unsynced/*; do
	mv "$r" ".mlx/cache/unsynced/00000000-0000-4000-8000-000000000000.${r##*/$boot.}"
done
# Two files' objects, not data/'s manifest (whose loss status reports as
# a directory to fetch): which ids sort first differs from run to run.
manifest=$("$MLX" lua -e 'print(require("mlx.lock").read(require("mlx.fs").cwd()).artifacts.data.hash)')
is "${#manifest}" 64 "data/'s manifest id, read from mlx.lock"
damaged=""
for id in $(cat .mlx/cache/unsynced/* | grep -E '^[0-9a-f]{64}$' | grep -v -x "$manifest" | sort | head -2); do
	obj=.mlx/cache/objects/${id:0:2}/${id:2}
	chmod u+w "$obj" && printf 'zeroes after a crash' | dd of="$obj" conv=notrunc status=none
	damaged="$damaged $id"
done
mlx status
is "$RC" 0 "the first command after the restart goes on"
like "$ERR" "warning: 2 objects fetched from a remote had not reached the disk when the machine restarted, and are damaged: moved to .mlx/cache/quarantine/" "says which objects were damaged and where they went"
is "$(ls .mlx/cache/unsynced | wc -l)" 0 "the records are checked once and removed"
is "$(ls .mlx/cache/quarantine | wc -l)" 2 "the two damaged objects are in quarantine"
mlx fsck
like "$OUT" "checked [0-9]+ objects?: 0 corrupt" "the store holds only whole objects (mlx fsck)"
mlx status
is "$ERR" "mlx: 1 tracked artifact up to date" "the next command says nothing more"
mlx pull
is "$RC" 0 "pull after the restart"
like "$OUT" "fetched 2 objects" "fetches the two objects again"
for id in $damaged; do
	got=$(sha256sum ".mlx/cache/objects/${id:0:2}/${id:2}" | cut -c1-64)
	is "$got" "$id" "object ${id:0:12} is whole again"
done

# A durable write of the same boot covers the pull's objects: its syncs
# write them too, and it removes their records.
mlx pull
echo extra >notes.txt
mlx add notes.txt
is "$RC" 0 "mlx add after a pull"
is "$(ls .mlx/cache/unsynced | wc -l)" 0 "the add's syncs covered the pull's records, which are gone"
# Entries in .mlx/cache/unsynced/ that mlx never makes are not records:
# never opened or followed, never waited on, left as they are. A record of
# another boot naming an object that is a symlink in the store is not
# stopped by it (gc removes the link).
other=00000000-0000-4000-8000-000000000000
u=.mlx/cache/unsynced
passwd=$(sha256sum /etc/passwd)
ln -s /etc/passwd "$u/$other.1.1"
ln -s /etc "$u/$other.1.2.open"
mkdir "$u/$other.1.3"
mkfifo "$u/$other.1.4.open" "$u/$boot.1.5.open"
linked=$(ls .mlx/cache/objects/*/ | grep -m1 -E '^[0-9a-f]{62}$')
linked_dir=$(ls -d .mlx/cache/objects/*/"$linked")
linked_id=$(basename "$(dirname "$linked_dir")")$linked
mv "$linked_dir" "$TEST_DIR/saved-object" && ln -s /etc/passwd "$linked_dir"
printf 'mlx unsynced objects 1\n%s\n' "$linked_id" >"$u/$other.1.6"
timeout 60 "$MLX" status >"$TEST_DIR/out" 2>"$TEST_DIR/err"
is "$?" 0 "status with a symlink, a directory and fifos in unsynced/, and a record naming a symlinked object"
left=$(printf '%s\n' "$boot.1.5.open" "$other.1.1" "$other.1.2.open" "$other.1.3" "$other.1.4.open" | LC_ALL=C sort)
is "$(ls -A $u | LC_ALL=C sort)" "$left" "the record is checked; the rest is left as it was"
is "$(sha256sum /etc/passwd)" "$passwd" "nothing a symlink points to is touched"
echo more >more.txt
timeout 60 "$MLX" add more.txt >/dev/null 2>"$TEST_DIR/err"
is "$?" 0 "a durable commit does not wait on a fifo named as a record of this boot"
rm -f "$linked_dir" && mv "$TEST_DIR/saved-object" "$linked_dir"
rm -rf "${u:?}"/*

# A file of another boot that is not a record mlx can read stops the
# command with one line naming it and what to do (exit 2), and is kept.
printf 'not a record\n' >"$u/$other.1.7"
mlx status
is "$RC" 2 "a file without the record header is bad input"
is "$ERR" "mlx: error: $TEST_DIR/b/$u/$other.1.7: not a record of fetched objects (no 'mlx unsynced objects 1' line); a record there names objects fetched before the machine restarted, which mlx checks before using the store: make it readable, or remove it and run 'mlx fsck' (which checks every object)" "one line naming the file and what to do"
rm "$u/$other.1.7"
mlx fsck
like "$OUT" "checked [0-9]+ objects?: 0 corrupt" "removed, mlx fsck runs"
done_testing
