#!/usr/bin/env bash
# Secrets in URL query strings never reach mlx's messages or runs.db:
# error messages of mlx.http, the recorded command line, params, tags and
# end message of runs, and the names a project adds in .mlx/config.lua.
. "$(dirname "$0")/tap.sh"

"$MLX" init >/dev/null
cat >>.mlx/config.lua <<'LUA'
-- appended by the test: one more secret parameter name
LUA
sed -i 's/^return {/return {\n  redact = { "my_param" },/' .mlx/config.lua
# Port 1 on 127.0.0.1 refuses connections: every request fails at once.
cat >fetch.lua <<'LUA'
local mlx = require "mlx"
local log = require "mlx.log"
log.params { endpoint = arg[1] }
log.tag("source", "https://data.example/x.csv?X-Amz-Credential=S3CRET-TAG&X-Amz-Signature=S3CRET-SIG&part=VISIBLE-PART")
local res, err = mlx.http.get(arg[1], { retries = 0, timeout = 5 })
io.stderr:write("fetch: ", tostring(err), "\n")
assert(res, err)
LUA
mlx recipe fetch.lua "http://127.0.0.1:1/data?api_key=S3CRET-KEY&page=VISIBLE-PAGE&my_param=S3CRET-MINE"
is "$RC" 1 "a recipe whose request fails fails"
like "$ERR" "fetch: GET http://127.0.0.1:1/data\?api_key=\*\*\*&page=VISIBLE-PAGE&my_param=\*\*\*: connection refused" \
	"mlx.http's message hides the key and the project's own parameter"
like "$ERR" "^mlx: error: fetch.lua:[0-9]+: GET http://127.0.0.1:1/data\?api_key=\*\*\*&page=VISIBLE-PAGE&my_param=\*\*\*: connection refused" \
	"and so does the error mlx reports"
case "$ERR" in *S3CRET*) tap_result 1 "stderr holds no secret" ;; *) tap_result 0 "stderr holds no secret" ;; esac

# A pipeline step whose command carries a signed URL, and its events.
cat >p.lua <<'LUA'
local p = require("mlx").pipeline "p"
p:step "get" {
  outs = { "got.txt" },
  cmd = [[echo "https://bucket.example/o?X-Amz-Signature=S3CRET-CMD&v=VISIBLE-CMD" >got.txt; ]]
    .. [[echo '{"param":"src","value":"https://h.example/?access_token=S3CRET-EVENT&n=VISIBLE-EVENT"}' >>"$MLX_EVENTS"]],
}
return p
LUA
mlx recipe p.lua
is "$RC" 0 "a pipeline with a signed URL in its command runs"
like "$(cat got.txt)" "S3CRET-CMD" "the step itself sees the real URL"
case "$ERR" in *S3CRET*) tap_result 1 "stderr holds no secret" ;; *) tap_result 0 "stderr holds no secret" ;; esac

# The database file itself, and its write-ahead log, byte for byte.
in_db() { cat .mlx/runs.db .mlx/runs.db-wal 2>/dev/null | grep -a -o "$1" | sort -u | tr '\n' ' '; }
for visible in VISIBLE-PAGE VISIBLE-PART VISIBLE-CMD VISIBLE-EVENT; do
	is "$(in_db "$visible")" "$visible " "runs.db records the URL ($visible, not a secret)"
done
is "$(in_db 'S3CRET[A-Z0-9-]*')" "" \
	"runs.db holds none of the secrets: command lines, params, tags, messages"
is "$(sqlite3 .mlx/runs.db "select command from runs where step = 'get'")" \
	'echo "https://bucket.example/o?X-Amz-Signature=***&v=VISIBLE-CMD" >got.txt; echo '"'"'{"param":"src","value":"https://h.example/?access_token=***&n=VISIBLE-EVENT"}'"'"' >>"$MLX_EVENTS"' \
	"a step's command is recorded with the signature hidden"
is "$(sqlite3 .mlx/runs.db "select command from runs where recipe = 'fetch.lua'")" \
	"mlx recipe fetch.lua 'http://127.0.0.1:1/data?api_key=***&page=VISIBLE-PAGE&my_param=***'" \
	"the recipe's command line hides the secrets"
is "$(sqlite3 .mlx/runs.db "select message from runs where recipe = 'fetch.lua'")" \
	"fetch.lua:7: GET http://127.0.0.1:1/data?api_key=***&page=VISIBLE-PAGE&my_param=***: connection refused" \
	"and so does the error it ended with"
is "$(sqlite3 .mlx/runs.db "select value from params where key = 'endpoint'")" \
	"http://127.0.0.1:1/data?api_key=***&page=VISIBLE-PAGE&my_param=***" "a param holding a URL hides its secrets"

# A wrong redact setting is named, and the built-in names still apply.
sed -i 's/redact = { "my_param" }/redact = "my_param"/' .mlx/config.lua
mlx recipe fetch.lua "http://ada:S3CRET-PASS@127.0.0.1:1/?sig=S3CRET-SIG2"
like "$ERR" "mlx: warning: .*/.mlx/config.lua: redact must be a list of parameter names" "a redact that is not a list is named"
case "$ERR" in *S3CRET*) tap_result 1 "and secrets stay hidden" ;; *) tap_result 0 "and secrets stay hidden" ;; esac
like "$ERR" "GET http://\*\*\*@127.0.0.1:1/\?sig=\*\*\*: connection refused" "the password too"
is "$(in_db 'S3CRET[A-Z0-9-]*')" "" "runs.db still holds none of the secrets"

done_testing
