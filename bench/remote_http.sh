#!/usr/bin/env bash
# The WebDAV backend against rclone copy (its WebDAV backend) on the same
# nginx server on 127.0.0.1, in one run: a push and a pull of NFILES files of
# 4-64 KiB (default 20,000, ~700 MB), each tool at several parallelism
# settings; the best time of each, their ratio, and the peak RSS.
#
# mlx's side is bench/remote_http.c, which drives the backend as the
# transfer engine does (one backend instance, so one kept-alive connection,
# per thread) without the engine's hashing and index: it measures the
# backend. Both pulls are checked byte for byte against the source.
#
# usage: bench/remote_http.sh [build-dir]   (needs nginx with dav_ext, rclone, cc)
#   NFILES=2000 JOBS="8 16" TRANSFERS="8 16 32" bench/remote_http.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=$(realpath "${1:-build}")
NFILES=${NFILES:-20000}
JOBS=${JOBS:-"8 16 32"}
TRANSFERS=${TRANSFERS:-"8 16 32"}
for tool in rclone cc python3 pkg-config; do
	command -v "$tool" >/dev/null || { echo "bench/remote_http.sh: needs $tool" >&2; exit 2; }
done
[ -f "$BUILD/core/libmlx_remote_http.a" ] || { echo "bench/remote_http.sh: build mlx in $BUILD first" >&2; exit 2; }
work=$(mktemp -d)
exports=$(tests/helper/dav_server.sh start)
eval "$exports"
trap 'tests/helper/dav_server.sh stop "$MLX_TEST_DAV_DIR"; rm -rf "$work"' EXIT
export no_proxy=127.0.0.1

# shellcheck disable=SC2046
cc -O2 -o "$work/remote_http" bench/remote_http.c -Icore -I"$BUILD" \
	"$BUILD/core/libmlx_remote_http.a" "$BUILD/core/libmlx_core.a" \
	$(pkg-config --libs libcurl libxml-2.0 libcrypto sqlite3) -lpthread

python3 - "$work/src" "$NFILES" <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(13)
for i in range(n):
    d = os.path.join(root, "%02x" % (i % 256))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%06d" % i), "wb") as f:
        f.write(os.urandom(rnd.randint(4, 64) * 1024))
PY
bytes=$(du -sb "$work/src" | cut -f1)

# timed CMD…: prints "seconds peak_rss_kib" of CMD
timed() {
	/usr/bin/time -f "%e %M" -o "$work/time" "$@" >/dev/null
	cat "$work/time"
}
same() { diff -r -q "$work/src" "$1" >/dev/null || { echo "bench: $1 differs from the source" >&2; exit 1; }; }

results=$work/results
: >"$results"
for j in $JOBS; do
	url=${MLX_TEST_DAV_URL}mlx$j/
	echo "mlx push $j $(timed "$work/remote_http" push "$url" "$work/src" "$j")" >>"$results"
	echo "mlx pull $j $(timed "$work/remote_http" pull "$url" "$work/mlx-pull$j" "$j")" >>"$results"
	same "$work/mlx-pull$j"
	rm -rf "$work/mlx-pull$j" "$MLX_TEST_DAV_ROOT/mlx$j"
done
export RCLONE_CONFIG=/dev/null RCLONE_WEBDAV_URL=$MLX_TEST_DAV_URL RCLONE_WEBDAV_VENDOR=other
for t in $TRANSFERS; do
	echo "rclone push $t $(timed rclone copy --transfers "$t" --checkers "$t" "$work/src" ":webdav:rclone$t/objects")" >>"$results"
	echo "rclone pull $t $(timed rclone copy --transfers "$t" --checkers "$t" ":webdav:rclone$t/objects" "$work/rclone-pull$t")" >>"$results"
	same "$work/rclone-pull$t"
	rm -rf "$work/rclone-pull$t" "$MLX_TEST_DAV_ROOT/rclone$t"
done

python3 - "$results" "$NFILES" "$bytes" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1])]
n, size = int(sys.argv[2]), int(sys.argv[3])
print("%d files, %.0f MB, nginx WebDAV on 127.0.0.1" % (n, size / 1e6))
print("%-7s %-5s %5s %9s %9s %10s" % ("tool", "op", "jobs", "seconds", "MB/s", "peak RSS"))
for tool, op, j, sec, rss in rows:
    print("%-7s %-5s %5s %9.2f %9.1f %7.1f MB" % (tool, op, j, float(sec), size / 1e6 / max(float(sec), 1e-3), int(rss) / 1024))
for op in ("push", "pull"):
    best = {}
    for tool, o, j, sec, rss in rows:
        if o == op and (tool not in best or float(sec) < best[tool][0]):
            best[tool] = (float(sec), j)
    m, r = best["mlx"], best["rclone"]
    print("%s: mlx %.2f s (-j %s), rclone %.2f s (--transfers %s): mlx is %.2fx faster"
          % (op, m[0], m[1], r[0], r[1], r[0] / m[0]))
PY
