#!/bin/sh
# with_pg.sh COMMAND [ARG…] — runs a test command against a PostgreSQL
# server of its own (pg_server.sh in a temporary directory, stopped at
# exit), with MLX_TEST_BACKEND=postgresql and MLX_TRACKING_URI set; prints
# a TAP skip when PostgreSQL is not installed here.
set -u
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d "${TMPDIR:-/tmp}/mlx-pg-XXXXXX")
trap '"$here/pg_server.sh" stop "$dir"; rm -rf "$dir"' EXIT
exports=$("$here/pg_server.sh" start "$dir" 2>"$dir/start.err")
rc=$?
if [ "$rc" -eq 77 ]; then
	echo "1..0 # SKIP no PostgreSQL server here ($(cat "$dir/start.err"))"
	exit 0
elif [ "$rc" -ne 0 ]; then
	echo "Bail out! cannot start PostgreSQL: $(cat "$dir/start.err")"
	exit 1
fi
eval "$exports"
export MLX_TEST_BACKEND=postgresql MLX_TRACKING_URI="$MLX_PG_URI"
"$@"
