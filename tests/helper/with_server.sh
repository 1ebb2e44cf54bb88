#!/bin/bash
# with_server.sh dav|s3 PROGRAM [ARG…] — runs PROGRAM with a test server
# started by tests/helper/dav_server.sh or s3_server.sh, its export lines in
# the environment, and stops the server when PROGRAM ends, whatever ends it.
# A server that is not installed is a visible TAP skip.
set -u
kind=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
case "$kind" in
dav) script=$here/dav_server.sh what=nginx ;;
s3) script=$here/s3_server.sh what=s3rver ;;
*) echo "with_server.sh: dav or s3, not '$kind'" >&2; exit 2 ;;
esac
exports=$("$script" start)
rc=$?
if [ "$rc" -eq 77 ]; then
	echo "1..0 # SKIP no $what (tools/install-deps.sh installs it)"
	exit 0
fi
[ "$rc" -eq 0 ] || exit "$rc"
eval "$exports"
if [ "$kind" = dav ]; then dir=$MLX_TEST_DAV_DIR; else dir=$MLX_TEST_S3_DIR; fi
trap '"$script" stop "$dir"' EXIT
trap 'exit 130' INT TERM
"$@"
