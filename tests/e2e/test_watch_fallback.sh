#!/usr/bin/env bash
# The file-system watcher when it cannot vouch for an answer: killed with
# -9, its queue overflowed, a token of another instance, a fake watcher
# naming a path that leaves the project, another project's socket, .mlx
# removed. Status stays exactly what a full walk says.
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/watch.sh"

"$MLX" init >/dev/null
mkdir -p data/a data/b
for i in $(seq 1 20); do printf 'file %03d\n' "$i" >"data/a/f$i"; done
for i in $(seq 1 20); do printf 'other %03d\n' "$i" >"data/b/g$i"; done
sleep 0.3
"$MLX" add data >/dev/null
sleep 0.3
start_watcher
reset

# Killed with -9: status walks, exactly; a new watcher is another instance,
# and the old token gets 'everything'.
pid=$(watch_pid)
kill -9 "$pid"
while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
printf 'after the kill\n' >data/a/f11
mlx status -v
like "$(flat "$RC:$OUT")" "^0:modified: +data/ .*modified: +data/a/f11" "the watcher killed: status walks and sees the change"
mlx watch status
is "$RC" 1 "watch status says none runs"
start_watcher "after a kill -9"
before=$(everything)
mlx status -v
like "$OUT" "modified: +data/a/f11" "a token of the dead watcher: status still exact"
is "$(everything)" "$((before + 1))" "and the new watcher answered it 'everything'"
reset

# A forced overflow (MLX_WATCH_DEBUG_OVERFLOW: every batch of events as if
# the kernel's queue had overflowed): every answer after a change is
# 'everything', and status stays exact.
mlx watch stop
is "$RC:$OUT" "0:stopped the watcher of $TEST_DIR" "mlx watch stop"
[ -e .mlx/watch.sock ]
is "$?" 1 "the socket is gone"
mlx watch stop
is "$RC:$OUT" "0:no watcher runs for $TEST_DIR" "a second stop says none runs, exit 0"
MLX_WATCH_DEBUG_OVERFLOW=1 start_watcher "forced overflow"
"$MLX" status >/dev/null 2>&1
printf 'overflowed\n' >data/a/f12
before=$(everything)
mlx status -v
like "$OUT" "modified: +data/a/f12" "after an overflow: status exact"
[ "$(everything)" -gt "$before" ]
is "$?" 0 "and answered 'everything'"
like "$("$MLX" watch status)" "[1-9][0-9]* event queue overflows" "watch status counts the overflows"
"$MLX" watch stop >/dev/null
reset

# Data from elsewhere: a watcher's paths obey the path rule, and a socket
# answers only its own project. A fake watcher that names a path leaving
# the project and claims nothing else changed is not trusted.
if command -v python3 >/dev/null; then
	start_watcher "for the fake's token"
	"$MLX" status >/dev/null 2>&1
	"$MLX" watch stop >/dev/null
	token=$(cut -d' ' -f6 .mlx/state.db-trees/*.watch)
	printf 'changed behind a fake watcher\n' >data/a/f13
	python3 - "$TEST_DIR/.mlx/watch.sock" "$token" <<'EOF' &
import os, socket, sys
path, token = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
s.listen(8)
s.settimeout(30)
for _ in range(4):
    try:
        c, _ = s.accept()
    except OSError:
        break
    c.recv(4096)
    c.sendall(("token %s\npaths 1\ndata/../../etc/passwd\nend\n" % token).encode())
    c.close()
os.unlink(path)
EOF
	fake=$!
	for _ in $(seq 1 100); do [ -S .mlx/watch.sock ] && break; sleep 0.05; done
	mlx status -v
	like "$OUT" "modified: +data/a/f13" "a path leaving the project from the socket: status walks, exactly"
	kill "$fake" 2>/dev/null
	wait "$fake" 2>/dev/null
	rm -f .mlx/watch.sock
	reset
else
	skip "a path leaving the project from the socket" "python3 is not installed"
fi

start_watcher "again"
mkdir other
(cd other && "$MLX" init >/dev/null && mkdir d && printf 'o\n' >d/o && "$MLX" add d >/dev/null)
ln -s "$TEST_DIR/.mlx/watch.sock" other/.mlx/watch.sock
(cd other && "$MLX" status >/dev/null 2>&1)
printf 'other changed\n' >other/d/o
out=$(cd other && "$MLX" status -v 2>&1)
like "$out" "modified: d/o" "another project's socket: its watcher refuses, status walks exactly"

# The watcher ends when its project's .mlx goes away.
mkdir gone
(cd gone && "$MLX" init >/dev/null && "$MLX" watch start >/dev/null)
gpid=$(cd gone && watch_pid)
WATCH_PIDS+=("$gpid")
rm -rf gone/.mlx
for _ in $(seq 1 200); do kill -0 "$gpid" 2>/dev/null || break; sleep 0.05; done
kill -0 "$gpid" 2>/dev/null
is "$?" 1 "the watcher exits when .mlx is removed"

mlx watch stop
is "$RC" 0 "stopped at the end"

done_testing
