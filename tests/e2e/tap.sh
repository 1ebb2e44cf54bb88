# tap.sh — TAP output for the end-to-end tests, which drive $MLX as a user.
# Source it, call the assertions, end with done_testing.
set -u
: "${MLX:?set MLX to the mlx binary}"
TAP_COUNT=0
TAP_FAILED=0

# The working directory of each test file: a fresh temporary directory.
TEST_DIR=$(mktemp -d "${TMPDIR:-/tmp}/mlx-e2e-XXXXXX")
# Where the mlx helper captures output: made once, not per call (a mktemp,
# cat and rm per call cost seconds per file on a loaded machine); beside
# TEST_DIR, not in it, as tests list and hash their directory.
TAP_CAPTURE=$(mktemp -d "${TMPDIR:-/tmp}/mlx-e2e-capture-XXXXXX")
trap 'rm -rf "$TEST_DIR" "$TAP_CAPTURE"' EXIT
cd "$TEST_DIR" || exit 1

# The tracking backend under test: MLX_TEST_BACKEND=postgresql runs the
# file against a PostgreSQL server of its own (tests/helper/pg_server.sh,
# a unix socket in a temporary directory, stopped at exit) through
# MLX_TRACKING_URI; else the default, SQLite in .mlx/runs.db.
MLX_TEST_BACKEND=${MLX_TEST_BACKEND:-sqlite}
if [ "$MLX_TEST_BACKEND" = postgresql ]; then
	TAP_PG=$(mktemp -d "${TMPDIR:-/tmp}/mlx-pg-XXXXXX")
	pg_exports=$("${MLX_SOURCE_ROOT:?}/tests/helper/pg_server.sh" start "$TAP_PG" 2>"$TAP_PG.err")
	pg_rc=$?
	if [ "$pg_rc" -eq 77 ]; then
		echo "1..0 # SKIP no PostgreSQL server here ($(cat "$TAP_PG.err"))"
		rm -rf "$TAP_PG" "$TAP_PG.err"
		exit 0
	elif [ "$pg_rc" -ne 0 ]; then
		echo "Bail out! cannot start PostgreSQL: $(cat "$TAP_PG.err")"
		exit 1
	fi
	eval "$pg_exports"
	export MLX_TRACKING_URI=$MLX_PG_URI
	trap 'tap_pg_stop; rm -rf "$TEST_DIR" "$TAP_CAPTURE"' EXIT
fi

# Stops the test's PostgreSQL server, if it started one. done_testing calls
# it too, for a test that replaced the EXIT trap; a test's own trap should.
tap_pg_stop() {
	if [ -n "${TAP_PG:-}" ] && [ -d "$TAP_PG" ]; then
		"$MLX_SOURCE_ROOT/tests/helper/pg_server.sh" stop "$TAP_PG"
		rm -rf "$TAP_PG" "$TAP_PG.err"
	fi
}

# track_sql SQL — runs SQL (the dialect both backends share) on the tracking
# database of the project in the working directory and prints the rows as
# sqlite3 does: columns separated by |, NULL empty.
track_sql() {
	if [ "$MLX_TEST_BACKEND" = postgresql ]; then
		local project
		project=$(sed -n 's/^ *project = "\([a-z0-9_]*\)".*/\1/p' .mlx/config.lua 2>/dev/null)
		PGOPTIONS="-c search_path=mlx_${project:-default}" "$MLX_PG_BIN/psql" -qAtX -v ON_ERROR_STOP=1 \
			-d "$MLX_PG_URI" -c "$1"
	else
		sqlite3 .mlx/runs.db "$1"
	fi
}

# tracking_shown — the tracking database as mlx's messages name it.
tracking_shown() {
	if [ "$MLX_TEST_BACKEND" = postgresql ]; then echo "$MLX_PG_URI"; else echo "$TEST_DIR/.mlx/runs.db"; fi
}

tap_result() { # STATUS DESCRIPTION...
	local status=$1
	shift
	TAP_COUNT=$((TAP_COUNT + 1))
	if [ "$status" -eq 0 ]; then
		echo "ok $TAP_COUNT - $*"
	else
		echo "not ok $TAP_COUNT - $*"
		TAP_FAILED=$((TAP_FAILED + 1))
	fi
}

# mlx ARGS... — runs mlx, leaving stdout in OUT, stderr in ERR, status in RC.
# Output goes to files, not a pipe: a server mlx starts in the background
# keeps its stdout open, and reading a pipe would wait for it.
mlx() {
	"$MLX" "$@" >"$TAP_CAPTURE/out" 2>"$TAP_CAPTURE/err"
	RC=$?
	OUT=$(<"$TAP_CAPTURE/out") ERR=$(<"$TAP_CAPTURE/err")
}

is() { # GOT EXPECTED DESCRIPTION
	if [ "$1" = "$2" ]; then
		tap_result 0 "$3"
	else
		tap_result 1 "$3"
		printf '#   got:      %s\n#   expected: %s\n' "$1" "$2"
	fi
}

like() { # GOT EXTENDED-REGEX DESCRIPTION
	# grep takes each line of a pattern as a pattern of its own, and an
	# empty one matches everything: a pattern must be one line.
	case "$2" in *$'\n'*)
		tap_result 1 "$3"
		echo "#   like: the pattern has a newline; compare with 'is' instead"
		return ;;
	esac
	if printf '%s' "$1" | grep -Eq -- "$2"; then
		tap_result 0 "$3"
	else
		tap_result 1 "$3"
		printf '#   got:      %s\n#   expected to match: %s\n' "$1" "$2"
	fi
}

skip() { # DESCRIPTION REASON — a test that cannot run here, said so
	TAP_COUNT=$((TAP_COUNT + 1))
	echo "ok $TAP_COUNT - $1 # SKIP $2"
}

done_testing() {
	rm -rf "$TAP_CAPTURE" # also when a test replaced the EXIT trap
	tap_pg_stop
	echo "1..$TAP_COUNT"
	[ "$TAP_FAILED" -eq 0 ]
}
