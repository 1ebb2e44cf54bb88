# watch.sh — helpers of the watcher's end-to-end tests (test_watch*.sh),
# sourced after tap.sh.
# Every watcher this test starts is stopped at exit, whatever happens.
WATCH_PIDS=()
stop_watchers() {
	for dir in "$TEST_DIR" "$TEST_DIR/other" "$TEST_DIR/gone"; do
		[ -d "$dir/.mlx" ] && (cd "$dir" && "$MLX" watch stop >/dev/null 2>&1)
	done
	for pid in "${WATCH_PIDS[@]}"; do kill -9 "$pid" 2>/dev/null; done
	return 0
}
trap 'stop_watchers; rm -rf "$TEST_DIR" "$TAP_CAPTURE"' EXIT

flat() { tr '\n' ' ' <<<"$1"; } # one line, for a pattern across lines
watch_pid() { "$MLX" watch status 2>/dev/null | sed -n 's/.*(pid \([0-9]*\)).*/\1/p'; }
# The number of answers the watcher gave as 'everything'.
everything() { "$MLX" watch status | sed -n "s/.*answered, \([0-9]*\) of them 'everything'.*/\1/p"; }
# The lock as the data is now, and a token again: the first status after
# an add re-hashes the files it found racy (changed within 100 ms of being
# hashed), and the next one finds the tree true and keeps the token.
reset() {
	"$MLX" add data >/dev/null 2>&1
	sleep 0.2
	"$MLX" status >/dev/null 2>&1
	"$MLX" status >/dev/null 2>&1
}
start_watcher() {
	mlx watch start
	is "$RC" 0 "mlx watch start exits 0${1:+ ($1)}"
	WATCH_PIDS+=("$(watch_pid)")
}
