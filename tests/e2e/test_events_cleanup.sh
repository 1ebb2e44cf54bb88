#!/usr/bin/env bash
# The events files of steps (.mlx/tmp/events-<run>.jsonl): removed once
# ingested, whatever the step's end; those of a killed mlx removed by mlx gc.
. "$(dirname "$0")/tap.sh"

"$MLX" init >/dev/null
events() { find .mlx/tmp -maxdepth 1 -name 'events-*.jsonl' | wc -l; }
cat >p.lua <<'LUA'
local p = require("mlx").pipeline "p"
p:step "ok" { outs = { "ok.txt" }, cmd = [[echo '{"metric":"loss","value":0.5}' >>"$MLX_EVENTS"; echo ok >ok.txt]] }
p:step "bad" { cmd = [[echo '{"metric":"loss","value":0.7}' >>"$MLX_EVENTS"; exit 3]] }
return p
LUA

mlx recipe p.lua
is "$RC" 1 "a recipe with a failing step fails"
is "$(sqlite3 .mlx/runs.db "select r.status, m.value from metrics m join runs r on r.id = m.run_id order by m.value")" \
	"$(printf 'FINISHED|0.5\nFAILED|0.7')" "the events of both steps are recorded"
is "$(events)" 0 "and both events files are removed, FINISHED and FAILED"

# kill -9 of mlx while a step runs leaves its events file: mlx gc removes it.
cat >slow.lua <<'LUA'
local p = require("mlx").pipeline "slow"
p:step "slow" { cmd = [[echo '{"metric":"loss","value":0.9}' >>"$MLX_EVENTS"; echo $$ >step.pid; exec sleep 60]] }
return p
LUA
"$MLX" recipe slow.lua >/dev/null 2>&1 &
mlx_pid=$!
# Generous: a loaded machine may take seconds to start mlx and its step.
for _ in $(seq 1 600); do [ -s step.pid ] && [ "$(events)" = 1 ] && break; sleep 0.1; done
is "$(events)" 1 "a running step has its events file"
mlx gc
is "$RC" 1 "mlx gc refuses while a recipe runs"
is "$(events)" 1 "and leaves the running step's events file alone"
kill -9 "$mlx_pid"
wait "$mlx_pid" 2>/dev/null
kill "$(cat step.pid)" 2>/dev/null
is "$(events)" 1 "kill -9 of mlx leaves the events file behind"
mlx gc --dry-run
is "$RC" 0 "mlx gc --dry-run succeeds"
like "$OUT" "would remove 1 stale events file " "and counts the stale events file"
is "$(events)" 1 "without removing it"
mlx gc
is "$RC" 0 "mlx gc succeeds"
like "$OUT" "removed 1 stale events file " "and says it removed the stale events file"
is "$(events)" 0 "which is gone"
mlx gc
is "$OUT" "removed 0 objects, 0 B; kept 1" "a second gc has nothing more to say about events"

done_testing
