#!/usr/bin/env bash
# runs.db that cannot be written — a full disk, a read-only mount — still
# answers read-only commands; a run that failed because the disk was full
# ends FAILED with the reason once the database can be written again.
. "$(dirname "$0")/tap.sh"

names=("a full disk: the recipe fails (exit 1)" "mlx runs answers on the full disk" \
	"and lists the run, still RUNNING (it cannot be marked)" "runs show answers" "mlx metrics answers" \
	"mlx model ls answers" "a recipe on the full disk says why it cannot record its run" \
	"once space is free the run ends FAILED" "with the reason the recipe failed" \
	"and its metric logged before the disk filled" "the end marker is removed" \
	"a read-only mount: mlx runs answers" "runs show answers" "mlx metrics answers" \
	"mlx model ls answers" "the dead run is left RUNNING (nothing is written)" \
	"a recipe says why it cannot record its run" "writable again, the dead run is marked KILLED")
disk=$(mktemp -d /tmp/mlx-e2e-disk-XXXXXX)
if ! mount -t tmpfs -o size=4m tmpfs "$disk" 2>mount.err; then
	for t in "${names[@]}"; do skip "$t" "cannot mount a small tmpfs: $(head -1 mount.err)"; done
	rmdir "$disk"
	done_testing
	exit
fi
trap 'umount "$disk" 2>/dev/null; rmdir "$disk"; rm -rf "$TEST_DIR"' EXIT
cd "$disk" || exit 1
"$MLX" init >/dev/null
"$MLX" recipe /dev/stdin >/dev/null <<'LUA'
require("mlx.log").metric("acc", 0.9)
LUA
# The recipe logs a point, fills the disk, then fails writing its output.
cat >fill.lua <<'LUA'
local log = require "mlx.log"
log.metric("loss", 0.25)
assert(require("mlx.track").current():flush())
local filler = assert(io.open("filler", "wb"))
local chunk = ("x"):rep(65536)
while filler:write(chunk) do end
filler:close()
local out = assert(io.open("model.bin", "wb"))
assert(out:write(chunk))
assert(out:close())
LUA
mlx recipe fill.lua
is "$RC" 1 "${names[0]}"
id=$(sqlite3 .mlx/runs.db "select id from runs where recipe = 'fill.lua'")
mlx runs
is "$RC" 0 "${names[1]}"
like "$OUT" "$id +fill.lua +RUNNING" "${names[2]}"
mlx runs show "$id"
is "$RC" 0 "${names[3]}"
mlx metrics "$id"
is "$RC" 0 "${names[4]}"
mlx model ls
is "$RC" 0 "${names[5]}"
mlx recipe fill.lua
like "$RC$ERR" "^1mlx: error: cannot record the run: .*runs.db: .*(full|space)" "${names[6]}"
rm -f filler
mlx runs show "$id"
like "$OUT" "FAILED" "${names[7]}"
like "$OUT" "No space left on device" "${names[8]}"
like "$OUT" "loss +0.25" "${names[9]}"
is "$(ls .mlx | grep -c -- '-end-')" 0 "${names[10]}"

# A read-only mount: a run left RUNNING by a dead process needs a write to
# be marked KILLED, which cannot happen; the queries answer anyway.
"$MLX" recipe /dev/stdin >/dev/null 2>&1 <<'LUA' &
require("mlx.log").metric("step_loss", 1)
assert(require("mlx.track").current():flush())
io.open("started", "w"):close()
os.execute("exec sleep 60")
LUA
pid=$!
for _ in $(seq 1 600); do [ -e started ] && break; sleep 0.1; done # up to 60 s on a loaded machine
kill -STOP "$pid" # so that it cannot finish the run when its child dies
pkill -9 -P "$pid"
kill -9 "$pid"
wait "$pid" 2>/dev/null
dead=$(sqlite3 .mlx/runs.db "select id from runs where status = 'RUNNING'")
cd "$TEST_DIR" || exit 1
mount -o remount,ro "$disk"
mlx -C "$disk" runs
is "$RC" 0 "${names[11]}"
mlx -C "$disk" runs show "$dead"
is "$RC" 0 "${names[12]}"
mlx -C "$disk" metrics "$dead"
is "$RC" 0 "${names[13]}"
mlx -C "$disk" model ls
is "$RC" 0 "${names[14]}"
mlx -C "$disk" runs show "$dead"
like "$OUT" "RUNNING" "${names[15]}"
mlx -C "$disk" recipe fill.lua
like "$RC$ERR" "^1mlx: error: cannot record the run: .*runs.db" "${names[16]}"
mount -o remount,rw "$disk"
mlx -C "$disk" runs show "$dead"
like "$OUT" "KILLED" "${names[17]}"

# A read-only file, for a user who may not write it: as nobody, since root
# writes any file.
ro_names=("a read-only file: mlx runs answers" "and shows the dead run RUNNING" \
	"a recipe says why it cannot record its run")
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	mkdir "$TEST_DIR/rofile"
	cd "$TEST_DIR/rofile" || exit 1
	"$MLX" init >/dev/null
	echo 'require("mlx.log").metric("a", 1)' >r.lua
	"$MLX" recipe r.lua >/dev/null
	# A run of a process that is gone: marking it KILLED would write.
	sqlite3 .mlx/runs.db "update runs set status = 'RUNNING', end_time = null, pid = 999999999"
	chmod 755 "$TEST_DIR" . .mlx && chmod 644 r.lua && chmod 444 .mlx/runs.db
	as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$MLX" "$@"; }
	o=$(as_nobody runs 2>&1)
	is "$?" 0 "${ro_names[0]}"
	like "$o" "r.lua +RUNNING" "${ro_names[1]}"
	o=$(as_nobody recipe r.lua 2>&1)
	like "$?$o" "^1mlx: error: cannot record the run: .*runs.db: .*readonly" "${ro_names[2]}"
	cd "$TEST_DIR" || exit 1
else
	for t in "${ro_names[@]}"; do skip "$t" "needs root and setpriv to run mlx as another user"; done
fi

done_testing
