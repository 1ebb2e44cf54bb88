#!/usr/bin/env bash
# mlx test: LuaUnit files run one process each, TAP on stdout, JUnit XML
# that validates against the Ant/Jenkins schema, exit 0/1/2, and the
# mlx.testing helpers driving a real pipeline in a temporary project.
. "$(dirname "$0")/tap.sh"
XSD="$MLX_SOURCE_ROOT/tests/e2e/data/junit.xsd"
have_xmllint=1
command -v xmllint >/dev/null || have_xmllint=0

mkdir -p tests/unit
cat >tests/unit/test_math.lua <<'LUA'
local lu = require "luaunit"
TestMath = {}
function TestMath:test_adds() lu.assertEquals(1 + 1, 2) end
function TestMath:test_skips() lu.skip("no GPU here") end
function test_plain_function() lu.assertTrue(require("mlx.json").encode({ 1 }) == "[1]") end
LUA
cat >tests/test_exits.lua <<'LUA'
local lu = require "luaunit"
TestExits = {}
function TestExits:test_runs_once() RUNS = (RUNS or 0) + 1; lu.assertEquals(RUNS, 1) end
os.exit(lu.LuaUnit.run("-o", "text"), true)
LUA
cat >tests/helper_not_a_test.lua <<'LUA'
error("files not named test_*.lua are not run")
LUA

mlx test
is "$RC" 0 "all passing: exit 0"
is "$(printf '%s\n' "$OUT" | grep -E '^(not )?ok|^1\.\.')" "ok 1 - TestExits.test_runs_once
ok 2 - TestMath.test_adds
ok 3 - TestMath.test_skips # SKIP no GPU here
ok 4 - [TestFunctions].test_plain_function
1..4" "TAP: one line per test, a file ending in os.exit(lu.LuaUnit.run()) runs once, skips said so"
like "$ERR" "^mlx: test: 4 tests in 2 files: 3 passed, 0 failed, 0 errors, 1 skipped" "a summary on stderr"

cat >tests/unit/test_broken.lua <<'LUA'
local lu = require "luaunit"
TestBroken = {}
function TestBroken:test_fails() print("some <output> & more"); lu.assertEquals("a", "b") end
function TestBroken:test_raises() local t = nil; return t.x end
LUA
# An unwritable --junit is found before any test runs, not after all of them.
mlx test --junit tests/unit/test_broken.lua/results/junit.xml
is "$RC $ERR" "2 mlx: error: --junit tests/unit/test_broken.lua/results/junit.xml: tests/unit/test_broken.lua is a file, not a directory; choose a path whose parent directories are directories" \
	"a --junit path below a file is bad input"
is "$OUT" "" "found before any test ran"
mlx test --junit results/ci/junit.xml
[ -f results/ci/junit.xml ]
is "$?" 0 "--junit makes the directories it lacks"
rm -rf results
mlx test --junit report.xml
is "$RC" 1 "a failing test: exit 1"
like "$OUT" "^not ok 2 - TestBroken.test_fails$" "the failure named in TAP"
like "$OUT" "# tests/unit/test_broken.lua:3: expected: \"b\"$" "with the assertion and its line"
like "$OUT" "^not ok 3 - TestBroken.test_raises$" "an error too"
if [ "$have_xmllint" = 1 ]; then
	xmllint --noout --schema "$XSD" report.xml 2>/dev/null
	is "$?" 0 "the JUnit XML validates against the schema"
	is "$(xmllint --xpath 'string(/testsuites/@tests)' report.xml)/$(xmllint --xpath 'string(/testsuites/@failures)' report.xml)/$(xmllint --xpath 'string(/testsuites/@errors)' report.xml)/$(xmllint --xpath 'string(/testsuites/@skipped)' report.xml)" \
		"6/1/1/1" "totals: 6 tests, 1 failure, 1 error, 1 skipped"
	is "$(xmllint --xpath 'count(/testsuites/testsuite)' report.xml)" 3 "one testsuite per file"
	is "$(xmllint --xpath 'string(//testcase[@name="test_fails"]/@classname)' report.xml)" "TestBroken" "classname is the LuaUnit class"
	like "$(xmllint --xpath 'string(//testcase[@name="test_fails"]/failure/@message)' report.xml)" 'test_broken.lua:3: expected: "b"' "failure message"
	is "$(xmllint --xpath 'count(//testcase[@name="test_raises"]/error)' report.xml)" 1 "a raised error is <error>"
	like "$(xmllint --xpath 'string(//testsuite[@name="tests/unit/test_broken.lua"]/system-out)' report.xml)" "some <output> & more" "what the file printed, escaped"
else
	skip "JUnit schema checks" "no xmllint"
fi

mlx test -P 'TestMath' --exclude 'skips'
is "$RC $(printf '%s\n' "$OUT" | grep -c '^ok')" "0 1" "-P and --exclude select by Class.method"
mlx test tests/unit/test_math.lua tests/test_exits.lua
is "$RC $(printf '%s\n' "$OUT" | tail -1)" "0 1..4" "named files run, in the order given"

# -j: files at once, reported in the order of the files all the same.
printf 'local lu = require "luaunit"\nTestSlow = {}\nfunction TestSlow:test_waits() require("mlx.core").sleep(1) end\n' >tests/test_aaa_slow.lua
mlx test
serial=$OUT
mlx test -j 3
is "$RC" 1 "-j 3: the same exit code"
is "$OUT" "$serial" "-j 3: the same TAP, in the same order"
mlx test -j 0
is "$RC $ERR" "2 mlx: error: --jobs needs a number of files >= 1, not 0" "-j 0: exit 2"
rm tests/test_aaa_slow.lua

# Files that do not run to their end are errors, not silence.
mkdir -p bad
printf 'error("broken at load")\n' >bad/test_load.lua
printf 'local lu = require "luaunit"\nTestQuit = {}\nfunction TestQuit:test_x() end\nos.exit(3)\n' >bad/test_quit.lua
printf 'TestLoop = {}\nfunction TestLoop:test_forever() while true do end end\n' >bad/test_loop.lua
mlx test bad --timeout 2 --junit bad.xml
is "$RC" 1 "broken files: exit 1"
like "$OUT" "^not ok [0-9] - \(file\)\.load$" "a file that raises at load is an error"
like "$OUT" "# bad/test_load.lua:1: broken at load" "with its message"
like "$OUT" "# stopped after the time limit of 2 s" "a file past --timeout is stopped and an error"
like "$OUT" "# exited with status 3 before its tests reported" "a file that exits early is an error"
if [ "$have_xmllint" = 1 ]; then
	xmllint --noout --schema "$XSD" bad.xml 2>/dev/null
	is "$?" 0 "their JUnit XML validates"
fi

# Ctrl-C: mlx test stops its workers and exits 130.
"$MLX" test bad/test_loop.lua >int.out 2>int.err &
pid=$!
for _ in $(seq 50); do grep -q . int.out 2>/dev/null && break; sleep 0.1; done
sleep 0.5
kill -INT "$pid"
wait "$pid"
is "$?" 130 "interrupted: exit 130"
sleep 0.5
is "$(pgrep -f "mlx.testing.worker" | xargs -r -n1 sh -c 'readlink /proc/$0/cwd' 2>/dev/null | grep -c "^$TEST_DIR\$" || true)" 0 \
	"no worker is left running"

# Usage errors: exit 2, one line.
mlx test nowhere
is "$RC $ERR" "2 mlx: error: nowhere: no such file or directory" "a missing path: exit 2"
mkdir empty
mlx test empty
is "$RC $ERR" "2 mlx: error: empty: no test_*.lua files (name a file or a directory holding some)" "a directory without tests: exit 2"
mlx test --timeout 0 tests
is "$RC $ERR" "2 mlx: error: --timeout needs a number of seconds > 0, not 0" "a bad --timeout: exit 2"
(cd empty && "$MLX" test >/dev/null 2>err; echo "$?" >rc)
is "$(cat empty/rc) $(cat empty/err)" "2 mlx: error: tests: no tests directory; name the test files or directories (mlx test PATH...)" "no tests/: exit 2"
mlx test -p x tests
is "$RC" 2 "-p is --param elsewhere, not a test pattern"

# mlx.testing: a temporary copy of the project, a step run by the real mlx,
# assertions on outs, metrics and runs.
mkdir -p proj/tests proj/data && cd proj
printf 'x\n1\n2\n3\n' >data/in.csv
cat >pipeline.lua <<'LUA'
local mlx = require "mlx"
local p = mlx.pipeline "demo"
p:params { scale = 2 }
p:step "sum" {
  deps = { "data/in.csv" }, params = { "scale" }, metrics = { "work/sum.json" },
  run = function(ctx)
    local total = 0
    for line in io.lines("data/in.csv") do
      if line ~= "x" then total = total + assert(tonumber(line), "not a number: " .. line) end
    end
    require("mlx.fs").mkdirs("work")
    require("mlx.fs").write("work/sum.json", ('{"sum": %d}'):format(total * ctx.params.scale))
  end,
}
p:step "later" { deps = { "work/sum.json" }, outs = { "work/later.txt" }, cmd = "cp work/sum.json work/later.txt" }
return p
LUA
cat >tests/test_pipeline.lua <<'LUA'
local lu = require "luaunit"
local testing = require "mlx.testing"
TestPipeline = {}
function TestPipeline:test_sum_step()
  local p <close> = testing.project { copy = { "pipeline.lua", "data" } }
  p:step("pipeline.lua", "sum", { params = { scale = 3 } })
  p:assert_out("work/sum.json")
  lu.assertEquals(p:json("work/sum.json").sum, 18)
  lu.assertEquals(p:metrics("sum").sum, 18)
  lu.assertFalse(require("mlx.fs").stat(p:path("work/later.txt")) ~= nil)
  lu.assertEquals(#p:runs { filter = "step = 'sum' AND status = 'FINISHED'" }, 1)
end
function TestPipeline:test_bad_data_fails_the_recipe()
  local p <close> = testing.project { copy = { "pipeline.lua" }, files = { ["data/in.csv"] = "x\n1\nbad\n" } }
  local r = p:recipe("pipeline.lua", { expect = false })
  lu.assertEquals(r.code, 1)
end
function TestPipeline:test_wrong_expectation_is_reported()
  local p <close> = testing.project { copy = { "pipeline.lua", "data" } }
  p:recipe("pipeline.lua", { expect = 1 })
end
LUA
mlx test
is "$RC" 1 "mlx.testing: one test expects the wrong exit code"
like "$OUT" "^ok 1 - TestPipeline.test_bad_data_fails_the_recipe$" "a recipe expected to fail"
like "$OUT" "^ok 2 - TestPipeline.test_sum_step$" "a step run, its out, metric and run asserted"
like "$OUT" "^not ok 3 - TestPipeline.test_wrong_expectation_is_reported$" "a wrong expectation fails the test"
like "$OUT" "mlx recipe pipeline.lua exited with 0, expected 1" "saying what happened"
# In CI the shared tracking database is often named by the environment:
# the temporary projects keep their runs to themselves all the same (else
# each test leaves a project in the team's database, and p:runs finds none).
touch "$TEST_DIR/team-runs.db"
MLX_TRACKING_URI="postgresql:///team?host=$TEST_DIR/no-server" MLX_RUNS_DB="$TEST_DIR/team-runs.db" \
	mlx test -P test_sum_step
is "$RC" 0 "mlx.testing's projects track into their own database, whatever MLX_TRACKING_URI and MLX_RUNS_DB name"
is "$(stat -c %s "$TEST_DIR/team-runs.db")" 0 "and write nothing into the one MLX_RUNS_DB names"
cd ..

done_testing
