#!/usr/bin/env bash
# Ctrl-C during a push or a pull stops the transfer in flight: mlx exits
# 130 at once (not when the object is done), nothing partial is published
# on the remote nor enters the store, and a re-run completes.
#
# The remote is nginx's WebDAV (tests/helper/dav_server.sh) reached through
# tests/helper/slow_proxy.py, which moves 2 MiB/s, so a 32 MiB object is in
# flight for ~16 s; the same server reached directly serves the re-runs.
. "$(dirname "$0")/tap.sh"

helper=$MLX_SOURCE_ROOT/tests/helper/dav_server.sh
exports=$("$helper" start)
rc=$?
if [ "$rc" -eq 77 ]; then
	echo "1..0 # SKIP no nginx with the dav_ext module (tools/install-deps.sh installs it)"
	exit 0
fi
[ "$rc" -eq 0 ] || { echo "Bail out! $helper start failed ($rc)"; exit 1; }
eval "$exports"
proxy_pid=""
trap '[ -z "$proxy_pid" ] || kill "$proxy_pid" 2>/dev/null; "$helper" stop "$MLX_TEST_DAV_DIR"; rm -rf "$TEST_DIR" "$TAP_CAPTURE"' EXIT
trap 'exit 130' INT TERM

# Within this many seconds of the signal mlx must have exited: a transfer
# checks for a cancel at least once a second; the rest is slack for a
# loaded machine. Without the cancel, the object would take ~15 s more.
BOUND=4

dav_port=${MLX_TEST_DAV_URL#http://127.0.0.1:}
dav_port=${dav_port%/}
python3 "$MLX_SOURCE_ROOT/tests/helper/slow_proxy.py" "$TEST_DIR/proxy.port" "$dav_port" $((2 << 20)) \
	"$TEST_DIR/proxy.count" &
proxy_pid=$!
for _ in $(seq 100); do
	[ -s "$TEST_DIR/proxy.port" ] && break
	sleep 0.1
done
[ -s "$TEST_DIR/proxy.port" ] || { echo "Bail out! slow_proxy.py did not start"; exit 1; }
slow_url=http://127.0.0.1:$(cat "$TEST_DIR/proxy.port")/store/
fast_url=${MLX_TEST_DAV_URL}store/
remote_dir=$MLX_TEST_DAV_ROOT/store

# wait_moved N — waits (up to 20 s) until the proxy has moved N more bytes
# than when it was called.
wait_moved() {
	local start now
	start=$(cat "$TEST_DIR/proxy.count")
	for _ in $(seq 200); do
		now=$(cat "$TEST_DIR/proxy.count")
		[ $((now - start)) -ge "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

# interrupt PID — sends SIGINT once the transfer is under way, and sets
# rc and took (milliseconds from the signal to the exit).
interrupt() {
	wait_moved $((2 << 20)) || echo "# the transfer did not start"
	local t0 t1
	t0=$(date +%s%N)
	kill -INT "$1"
	wait "$1"
	rc=$?
	t1=$(date +%s%N)
	took=$(((t1 - t0) / 1000000))
	echo "# exited $rc, ${took} ms after SIGINT"
}

mkdir -p "$TEST_DIR/a" && cd "$TEST_DIR/a" || exit 1
git init -q .
git config user.email test@example.com
git config user.name test
"$MLX" init >/dev/null
mkdir data
head -c $((32 << 20)) /dev/urandom >data/big.bin
"$MLX" add data/big.bin >/dev/null
"$MLX" remote add slow "$slow_url" >/dev/null
"$MLX" remote add direct "$fast_url" >/dev/null
git add -A >/dev/null && git commit -qm data
big=$(sha256sum data/big.bin | cut -c1-64)

# ---- push --------------------------------------------------------------
"$MLX" push -r slow >"$TEST_DIR/push.out" 2>"$TEST_DIR/push.err" &
pid=$!
interrupt "$pid"
is "$rc" 130 "a push interrupted in flight exits 130"
is "$([ "$took" -lt $((BOUND * 1000)) ] && echo yes)" yes "… within ${BOUND} s of SIGINT (took ${took} ms)"
like "$(cat "$TEST_DIR/push.err")" "interrupted" "… and says it was interrupted"
is "$(find "$remote_dir/objects" -type f 2>/dev/null | wc -l)" 0 "… nothing is published under objects/"
is "$(find "$remote_dir" -type f 2>/dev/null | wc -l)" 0 "… no temp upload nor index segment is left"
# The proxy still forwards what it had read when mlx hung up; nginx drops
# the part of the body once the connection ends.
for _ in $(seq 150); do
	[ "$(find "$MLX_TEST_DAV_DIR/tmp" -type f | wc -l)" -eq 0 ] && break
	sleep 0.1
done
is "$(find "$MLX_TEST_DAV_DIR/tmp" -type f | wc -l)" 0 "… nor a part of the body on the server"

mlx push -r direct
is "$RC" 0 "a re-run of the push completes"
is "$(sha256sum "$remote_dir/objects/${big:0:2}/${big:2}" 2>/dev/null | cut -c1-64)" "$big" \
	"… and the remote holds the whole object"

# ---- pull --------------------------------------------------------------
git clone -q "$TEST_DIR/a" "$TEST_DIR/b"
cd "$TEST_DIR/b" || exit 1
"$MLX" pull -r slow >"$TEST_DIR/pull.out" 2>"$TEST_DIR/pull.err" &
pid=$!
interrupt "$pid"
is "$rc" 130 "a pull interrupted in flight exits 130"
is "$([ "$took" -lt $((BOUND * 1000)) ] && echo yes)" yes "… within ${BOUND} s of SIGINT (took ${took} ms)"
is "$(find .mlx/cache/objects -type f | wc -l)" 0 "… nothing enters the store"
is "$(find .mlx/tmp -type f | wc -l)" 0 "… no temp file is left"
is "$([ -e data/big.bin ] && echo there)" "" "… nor a file in the workspace"

mlx pull -r direct
is "$RC" 0 "a re-run of the pull completes"
is "$(sha256sum data/big.bin | cut -c1-64)" "$big" "… with the whole file"

# ---- on a terminal -----------------------------------------------------
# The live progress line is cleared before the message: 'mlx: interrupted'
# starts a line of its own instead of ending 'fetching 0/1 files, …'.
git clone -q "$TEST_DIR/a" "$TEST_DIR/c"
cd "$TEST_DIR/c" || exit 1
TERM=xterm MLX_PROGRESS_AFTER=0 script -qefc \
	"env -u CI -u NO_COLOR sh -c 'echo \$\$ >\"$TEST_DIR/tty.pid\"; exec \"$MLX\" pull -r slow'" \
	"$TEST_DIR/tty.log" >/dev/null 2>&1 &
script_pid=$!
for _ in $(seq 100); do
	[ -s "$TEST_DIR/tty.pid" ] && break
	sleep 0.1
done
wait_moved $((2 << 20)) || echo "# the transfer did not start"
kill -INT "$(cat "$TEST_DIR/tty.pid")"
wait "$script_pid"
grep -aq 'fetching 0/1 files' "$TEST_DIR/tty.log"
is "$?" 0 "a pull on a terminal draws its progress line"
grep -aq $'\r\e\\[Kmlx: interrupted' "$TEST_DIR/tty.log"
is "$?" 0 "… and clears it before saying it was interrupted"

done_testing
