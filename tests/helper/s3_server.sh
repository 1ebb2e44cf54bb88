#!/bin/bash
# s3_server.sh start|stop — s3rver (npm, installed into tools/node by
# tools/install-deps.sh) on 127.0.0.1, as an S3 remote for tests and
# benchmarks.
#
#   eval "$(tests/helper/s3_server.sh start)"   # prints export lines
#   tests/helper/s3_server.sh stop [DIR]        # DIR defaults to $MLX_TEST_S3_DIR
#
# start makes a temp dir, lets s3rver pick a free port, creates the bucket
# mlx-test and prints MLX_TEST_S3_ENDPOINT, MLX_TEST_S3_BUCKET,
# MLX_TEST_S3_URL (s3://mlx-test), MLX_TEST_S3_OPTIONS (endpoint=… and
# publish=copy, the options a remote there needs), MLX_TEST_S3_ACCESS_KEY_ID,
# MLX_TEST_S3_SECRET_ACCESS_KEY, the same credentials as AWS_ACCESS_KEY_ID
# and AWS_SECRET_ACCESS_KEY, and MLX_TEST_S3_DIR. s3rver checks SigV4 signatures against its one
# account (S3RVER / S3RVER). It exits 77 when node or s3rver is missing,
# 1 when s3rver will not start. stop kills it and removes the temp dir.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
s3rver=${MLX_S3RVER:-$here/../../tools/node/node_modules/.bin/s3rver}

start() {
	if ! command -v node >/dev/null || [ ! -x "$s3rver" ]; then
		echo "s3_server.sh: s3rver is not installed (tools/install-deps.sh puts it in tools/node)" >&2
		exit 77
	fi
	dir=$(mktemp -d "${TMPDIR:-/tmp}/mlx-s3.XXXXXX")
	mkdir -p "$dir/data"
	# setsid: s3rver gets its own process group, which stop kills whole.
	# The legacy provider: s3rver makes listing continuation tokens with
	# DES, which OpenSSL 3 keeps there.
	NODE_OPTIONS="--openssl-legacy-provider${NODE_OPTIONS:+ $NODE_OPTIONS}" setsid "$s3rver" -d "$dir/data" -a 127.0.0.1 -p 0 --configure-bucket mlx-test \
		>"$dir/log" 2>&1 </dev/null &
	echo $! >"$dir/pid"
	port=""
	for _ in $(seq 300); do
		port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$dir/log" | head -1)
		[ -n "$port" ] && break
		kill -0 "$(cat "$dir/pid")" 2>/dev/null || break
		sleep 0.1
	done
	if [ -z "$port" ]; then
		echo "s3_server.sh: s3rver did not start:" >&2
		cat "$dir/log" >&2
		kill -9 "$(cat "$dir/pid")" 2>/dev/null || true
		rm -rf "$dir"
		exit 1
	fi
	echo "export MLX_TEST_S3_DIR='$dir'"
	echo "export MLX_TEST_S3_ENDPOINT='http://127.0.0.1:$port'"
	echo "export MLX_TEST_S3_BUCKET='mlx-test'"
	echo "export MLX_TEST_S3_URL='s3://mlx-test'"
	# publish=copy: s3rver writes a PUT in place, so a killed upload would
	# leave part of an object under its key (S3 itself never shows one)
	echo "export MLX_TEST_S3_OPTIONS='endpoint=http://127.0.0.1:$port publish=copy'"
	echo "export MLX_TEST_S3_ACCESS_KEY_ID='S3RVER'"
	echo "export MLX_TEST_S3_SECRET_ACCESS_KEY='S3RVER'"
	# what the AWS tools and mlx read when a remote names no credentials
	echo "export AWS_ACCESS_KEY_ID='S3RVER'"
	echo "export AWS_SECRET_ACCESS_KEY='S3RVER'"
}

stop() {
	dir=${1:-${MLX_TEST_S3_DIR:-}}
	case "$dir" in
	*/mlx-s3.*) ;;
	*) echo "s3_server.sh stop: not a directory made by start: '$dir'" >&2; exit 2 ;;
	esac
	if [ -s "$dir/pid" ]; then
		pid=$(cat "$dir/pid")
		kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 -- "-$pid" 2>/dev/null || true
	fi
	rm -rf "$dir"
}

case "${1:-}" in
start) start ;;
stop) stop "${2:-}" ;;
*) echo "usage: s3_server.sh start|stop [DIR]" >&2; exit 2 ;;
esac
