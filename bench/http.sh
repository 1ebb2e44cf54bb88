#!/usr/bin/env bash
# mlx.http against the curl command on this machine, in one run, both talking
# to the same server on 127.0.0.1 (tests/helper/http_server.py): medians by
# hyperfine, printed with the ratio mlx / curl.
#
#   small   200 GETs of a small JSON body in one process (one kept-alive connection)
#   down    a 100 MiB download to a file, verified by SHA-256
#   up      a 100 MiB upload streamed from a file
#
# usage: bench/http.sh [path/to/mlx]     (needs hyperfine, curl, python3)
set -euo pipefail
cd "$(dirname "$0")/.."
MLX=$(realpath "${1:-build/mlx}")
RUNS=${RUNS:-10}
for tool in hyperfine curl python3 sha256sum; do
	command -v "$tool" >/dev/null || { echo "bench/http.sh: needs $tool" >&2; exit 2; }
done
work=$(mktemp -d)
mkdir "$work/srv" # where the server stores uploads, apart from the files sent
python3 tests/helper/http_server.py "$work/srv" >"$work/port" &
server=$!
trap 'kill $server; rm -rf "$work"' EXIT
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
[ -s "$work/port" ] || { echo "bench/http.sh: the server did not start" >&2; exit 1; }
base="http://127.0.0.1:$(head -n 1 "$work/port")"
export no_proxy=127.0.0.1

truncate -s 100M "$work/model.bin"
curl -sf --max-time 60 -T "$work/model.bin" "$base/files/model.bin" >/dev/null
digest=$(sha256sum "$work/model.bin" | cut -d' ' -f1)

cat >"$work/small.lua" <<LUA
local http = require "mlx.http"
for _ = 1, 200 do assert(http.get("$base/hits/bench", { expect = 200 })) end
LUA
cat >"$work/down.lua" <<LUA
assert(require("mlx.http").get("$base/files/model.bin", { out_file = "$work/down.bin", sha256 = "$digest" }))
LUA
cat >"$work/up.lua" <<LUA
assert(require("mlx.http").put("$base/files/up.bin", { body_file = "$work/model.bin", expect = 201 }))
LUA
urls=$(for _ in $(seq 200); do printf '%s ' "$base/hits/bench"; done)

hyperfine --shell=bash --warmup 2 --runs "$RUNS" --export-json "$work/r.json" \
	-n "small mlx" "$MLX recipe $work/small.lua" \
	-n "small curl" "curl -sf $urls >/dev/null" \
	-n "down mlx" "$MLX recipe $work/down.lua" \
	-n "down curl" "curl -sf -o $work/down.bin $base/files/model.bin && echo '$digest  $work/down.bin' | sha256sum -c --quiet" \
	-n "up mlx" "$MLX recipe $work/up.lua" \
	-n "up curl" "curl -sf -T $work/model.bin $base/files/up.bin >/dev/null" >/dev/null

python3 - "$work/r.json" <<'PY'
import json, sys
results = {r["command"]: r["median"] for r in json.load(open(sys.argv[1]))["results"]}
print("%-8s %12s %12s %8s" % ("case", "mlx", "curl", "ratio"))
for case in ("small", "down", "up"):
    m, c = results[case + " mlx"], results[case + " curl"]
    print("%-8s %10.1f ms %10.1f ms %7.2fx" % (case, m * 1e3, c * 1e3, m / c))
print("ratio = median mlx / median curl, same server, same run")
PY
