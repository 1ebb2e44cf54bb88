#!/usr/bin/env bash
# The scheduler's promises while steps run: -j N never runs more than N
# commands at once, every step that ran is recorded (run ended, outs in
# mlx.lock), and nothing new starts after a failure without --keep-going.
. "$(dirname "$0")/tap.sh"

mlx init >/dev/null
mkdir -p live
# Each step marks itself live, counts the live ones, and stays a moment.
{
	echo 'local p = require("mlx").pipeline "fan"'
	for i in $(seq 1 40); do
		echo "p:step \"s$i\" { outs = { \"out/$i\" }, cmd = \"touch live/$i; ls live | wc -l >>counts; sleep 0.02; echo $i >out/$i; rm live/$i\" }"
	done
	echo 'return p'
} >fan.lua
mlx recipe fan.lua -j 2
is "$RC" 0 "40 steps under -j 2 exit 0"
is "$(sort -n counts | tail -1)" 2 "never more than 2 commands at once"
is "$(wc -l <counts | tr -d ' ')" 40 "every step ran once"
is "$(track_sql "select count(*) from runs where step is not null and status = 'FINISHED'")" 40 \
	"every step's run ended FINISHED"
is "$(grep -c '"out/' mlx.lock)" 40 "every step's out is in mlx.lock"
mlx recipe fan.lua -j 2
like "$ERR" "40 up to date" "the next run finds them all up to date"

# -j 1: a step whose command exits 0 but leaves no out fails before the
# next one starts, which is then skipped.
cat >lazy.lua <<'LUA'
local p = require("mlx").pipeline "lazy"
p:step "a" { outs = { "a.txt" }, cmd = "true" }
p:step "b" { outs = { "b.txt" }, cmd = "echo b >b.txt" }
return p
LUA
mlx recipe lazy.lua -j 1
is "$RC" 1 "a step without its out fails the run"
like "$ERR" "step 'a' did not produce its out 'a.txt'" "and is named"
is "$([ -e b.txt ] && echo ran || echo skipped)" skipped "-j 1: the step after it does not start"

# -j 2: once a command has failed, the one running beside it finishes and
# nothing else starts, also when that one ends well.
cat >fails.lua <<'LUA'
local p = require("mlx").pipeline "fails"
p:step "bad" { outs = { "bad.txt" }, cmd = "sleep 0.3; exit 3" }
for i = 1, 6 do
  p:step("after" .. i) { outs = { "after" .. i .. ".txt" }, cmd = "sleep 2; echo x >after" .. i .. ".txt" }
end
return p
LUA
mlx recipe fails.lua -j 2
is "$RC" 1 "a failed command fails the run"
is "$(ls after*.txt 2>/dev/null | tr '\n' ' ')" "after1.txt " "-j 2: the step beside it finishes, no other starts"
like "$ERR" "1 ran, 1 failed, 5 skipped" "and the rest are skipped"

done_testing
