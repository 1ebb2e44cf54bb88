#!/usr/bin/env bash
# Recipes using mlx.http as a user runs them, against real HTTP servers on
# 127.0.0.1 (tests/helper/http_server.py): failures are one readable line
# without secrets, Ctrl-C stops a request, the deploy recipe works end to
# end, and mlx loads libcurl only when a recipe needs it.
. "$(dirname "$0")/tap.sh"
: "${MLX_SOURCE_ROOT:?set MLX_SOURCE_ROOT}"
HELPER="$MLX_SOURCE_ROOT/tests/helper/http_server.py"

SERVER_PIDS=""
trap 'kill $SERVER_PIDS 2>/dev/null; rm -rf "$TEST_DIR"' EXIT

# start_server NAME [OPTIONS...] — starts a server storing files in
# $TEST_DIR/srv-NAME; sets BASE to its URL.
start_server() {
	local dir="$TEST_DIR/srv-$1"
	shift
	mkdir -p "$dir"
	python3 "$HELPER" "$dir" "$@" >"$dir.port" &
	SERVER_PIDS="$SERVER_PIDS $!"
	for _ in $(seq 200); do
		[ -s "$dir.port" ] && break
		sleep 0.05
	done
	BASE="http://127.0.0.1:$(head -n 1 "$dir.port")"
}

millis() { date +%s%3N; }

# --- mlx pays for libcurl and libgit2 only when a recipe uses them --------
is "$(ldd "$MLX" | grep -cE 'libcurl|libgit2')" 0 "the mlx binary does not link libcurl or libgit2"
is "$(LD_DEBUG=libs "$MLX" --version 2>&1 | grep -cE 'libcurl|libgit2')" 0 "mlx --version loads neither"
mlx lua -e '
local function loaded(lib)
  for line in io.lines("/proc/self/maps") do if line:find(lib, 1, true) then return "yes" end end
  return "no"
end
print(loaded("libcurl"), loaded("libgit2"))
local http = require "mlx.http"
require "mlx.git"
print(loaded("libcurl"), loaded("libgit2"))
http.version()
print(loaded("libcurl"), loaded("libgit2"))'
is "$OUT" $'no\tno\nno\tyes\nyes\tyes' "libgit2 is loaded on first require, libcurl on first use of mlx.http"

start_server main

# --- failures: one line, transport and HTTP errors told apart --------------
cat >refused.lua <<'LUA'
local http = require "mlx.http"
assert(http.get("http://127.0.0.1:1/health", { headers = { Authorization = "Bearer s3cr3t" } }))
LUA
mlx recipe refused.lua
is "$RC" 1 "a refused connection fails the recipe"
is "$ERR" "mlx: error: refused.lua:2: GET http://127.0.0.1:1/health: connection refused" "and says so in one line"

cat >status.lua <<LUA
local http = require "mlx.http"
assert(http.post("$BASE/status/503", { json = { a = 1 }, expect = 200 }))
LUA
mlx recipe status.lua
is "$RC" 1 "an unexpected status fails the recipe"
is "$ERR" "mlx: error: status.lua:2: POST $BASE/status/503: expected status 200, got 503 Service Unavailable" \
	"and names the URL and the status"

cat >codes.lua <<LUA
local http = require "mlx.http"
local _, _, transport = http.get("http://127.0.0.1:1/")
local _, _, status = http.get("$BASE/status/404", { expect = 200 })
local plain = http.get("$BASE/status/404")
print(transport, status, plain.status)
LUA
mlx recipe codes.lua
is "$OUT" $'refused\thttp\t404' "a recipe tells transport failures from HTTP errors"

cat >retry.lua <<'LUA'
local http = require "mlx.http"
assert(http.get("http://deploy:pa55word@127.0.0.1:1/v1", {
  headers = { Authorization = "Bearer s3cr3t", ["X-Api-Key"] = "k3y" }, retries = 2, backoff = 0.01,
}))
LUA
mlx -v recipe retry.lua
like "$ERR" "^mlx: GET http://\*\*\*@127\.0\.0\.1:1/v1: connection refused; retry 1 of 2 in" "-v shows each retry"
like "$ERR" "mlx: error: retry.lua:2: GET http://\*\*\*@127\.0\.0\.1:1/v1: connection refused \(3 attempts\)$" \
	"the failure counts the attempts"
is "$(printf '%s' "$ERR" | grep -cE 's3cr3t|k3y|pa55word')" 0 "no header value or password is shown"

# --- proxies come from the environment, as for curl ------------------------
http_proxy="$BASE" mlx lua -e '
local res = assert(require("mlx.http").get("http://models.example.invalid/echo?x=1"))
print(res:json().target)'
is "$OUT" "http://models.example.invalid/echo?x=1" "http_proxy is used"
http_proxy="$BASE" no_proxy="127.0.0.1" mlx lua -e "
print(assert(require('mlx.http').get('$BASE/echo')):json().target)"
is "$OUT" "/echo" "no_proxy bypasses it"

# --- Ctrl-C stops a request and a retry wait promptly ---------------------
cat >slow.lua <<LUA
local http = require "mlx.http"
print(http.get("$BASE/slow?delay=30"))
LUA
cat >waiting.lua <<'LUA'
local http = require "mlx.http"
print(http.get("http://127.0.0.1:1/", { retries = 5, backoff = 30 }))
LUA
for recipe in slow.lua waiting.lua; do
	start=$(millis)
	"$MLX" recipe "$recipe" >out.txt 2>err.txt &
	pid=$!
	sleep 0.5
	kill -INT "$pid"
	wait "$pid"
	rc=$?
	elapsed=$(($(millis) - start))
	is "$rc" 130 "SIGINT during $recipe exits 130"
	is "$(cat err.txt)" "mlx: interrupted" "and says interrupted"
	is "$([ "$elapsed" -lt 3000 ] && echo prompt || echo "slow: $elapsed ms")" prompt "within a moment"
done

# --- the deploy recipe end to end ----------------------------------------
export GIT_AUTHOR_NAME=Ada GIT_AUTHOR_EMAIL=ada@example.org
export GIT_COMMITTER_NAME=Ada GIT_COMMITTER_EMAIL=ada@example.org
mkdir proj && cd proj || exit 1
git init -q -b main
printf '{"accuracy": 0.90}\n' >metrics.json
git add metrics.json && git commit -q -m baseline
git checkout -q -b candidate
printf '{"accuracy": 0.95}\n' >metrics.json
git commit -q -am "better model"
head -c 8000000 /dev/urandom >model.bin
digest=$(sha256sum model.bin | cut -d' ' -f1)
start_server deploy --unhealthy 2
DEPLOY_TOKEN=s3cr3t mlx recipe "$MLX_SOURCE_ROOT/recipes/examples/release.lua" "$BASE" main
is "$RC" 0 "the deploy recipe succeeds"
is "$OUT" "deployed iris v1 (${digest:0:12}), tagged model-v1 on $(git rev-parse --short=7 HEAD)" "and reports the release"
is "$(git tag -l --format='%(contents:subject)' model-v1)" "iris v1: accuracy 0.950, sha256 $digest" "the release is tagged"
cmp -s model.bin "$TEST_DIR/srv-deploy/model.bin"
is "$?" 0 "the service got the model byte for byte"
is "$(ls)" $'metrics.json\nmodel.bin' "the verified download was cleaned up, nothing left behind"
mlx lua -e "print(require('mlx.http').get('$BASE/hits/health'):json().hits)"
is "$OUT" 3 "it waited through the two 503s of a starting service"

printf '{"accuracy": 0.80}\n' >metrics.json
mlx recipe "$MLX_SOURCE_ROOT/recipes/examples/release.lua" "$BASE" main
is "$RC" 1 "a worse model is not deployed"
is "$ERR" "mlx: error: accuracy 0.800 is below 0.900 on main: not deploying" "and the recipe says why"
cd "$TEST_DIR" || exit 1

done_testing
