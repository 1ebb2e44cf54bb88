#!/usr/bin/env bash
# The GitHub Actions template (recipes/ci/github-actions.yml) as a team
# uses it: its steps' `run:` scripts, read from the file, run in order in a
# fresh clone of a pull request's branch, with the template's `env:` (the
# secrets it names given their values, RECIPE set as its comment says) and
# what Actions would set. The remote is a WebDAV server that wants a token,
# the forge a local stand-in (tests/helper/forge_server.py). The project's
# machine has trained and pushed; CI pulls, restores rather than executes,
# tests, verifies and posts one report comment. A template that names a
# variable mlx does not read fails here.
#
# Starts nginx (tests/helper/dav_server.sh); a TAP skip without it.
. "$(dirname "$0")/tap.sh"
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.com GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.com
template=$MLX_SOURCE_ROOT/recipes/ci/github-actions.yml

dav=$MLX_SOURCE_ROOT/tests/helper/dav_server.sh
dav_dir="" forge_pid=""
trap '[ -n "$forge_pid" ] && kill "$forge_pid"; [ -n "$dav_dir" ] && "$dav" stop "$dav_dir"; rm -rf "$TEST_DIR" "$TAP_CAPTURE"' EXIT
trap 'exit 130' INT TERM
exports=$("$dav" start)
rc=$?
if [ "$rc" -eq 77 ]; then
	echo "1..0 # SKIP no nginx with its DAV modules (tools/install-deps.sh installs them)"
	exit 0
fi
[ "$rc" -eq 0 ] || { echo "Bail out! $dav start failed ($rc)"; exit 1; }
eval "$exports"
dav_dir=$MLX_TEST_DAV_DIR

forge_token="tok-$RANDOM$RANDOM"
python3 "$MLX_SOURCE_ROOT/tests/helper/forge_server.py" "$TEST_DIR/forge.log" --token "$forge_token" \
	>"$TEST_DIR/forge.port" &
forge_pid=$!
for _ in $(seq 200); do [ -s "$TEST_DIR/forge.port" ] && break; sleep 0.05; done

# --- the project, on a developer's machine ------------------------------------
mkdir seed && cd seed || exit 1
git init -q -b main .
"$MLX" init >/dev/null
mkdir -p data tests
seq 1 50 >data/in.csv
cat >pipeline.lua <<'LUA'
local mlx = require "mlx"
local p = mlx.pipeline "demo"
p:params { scale = 2 }
p:step "train" { deps = { "data/in.csv" }, outs = { "work/model.txt" }, params = { "scale" },
  cmd = "echo ran >> ran.log; mkdir -p work; awk -v s=${scale} '{ t += $1 * s } END { print t }' data/in.csv > work/model.txt" }
p:step "evaluate" { deps = { "work/model.txt" }, metrics = { "work/metrics.json" },
  run = function()
    local f = assert(io.open("work/model.txt")); local total = tonumber(f:read("l")); f:close()
    assert(mlx.json.save("work/metrics.json", { score = total / 10000 }))
  end }
return p
LUA
cat >tests/test_model.lua <<'LUA'
local lu = require "luaunit"
function test_score_is_a_fraction()
  local m = assert(require("mlx").json.load(os.getenv("MLX_TEST_ROOT") .. "/work/metrics.json"))
  lu.assertTrue(m.score > 0 and m.score < 1)
end
LUA
printf 'ran.log\ntest-results.xml\nreport/\n' >.gitignore
# The token a developer keeps in the git-ignored local config.
printf 'return { remotes = { origin = { token = "%s" } } }\n' "$MLX_TEST_DAV_TOKEN" >.mlx/config.local.lua
mlx remote add origin "$MLX_TEST_DAV_BEARER_URL"
is "$RC" 0 "the developer adds the WebDAV remote, its token in .mlx/config.local.lua"
"$MLX" recipe pipeline.lua >/dev/null 2>&1
git add -A && git commit -qm "the pipeline"
git clone -q --bare . "$TEST_DIR/origin.git"
git remote add origin "$TEST_DIR/origin.git"
git checkout -q -b more-scale
sed -i 's/scale = 2/scale = 3/' pipeline.lua
"$MLX" recipe pipeline.lua >/dev/null 2>&1
mlx push --run-cache
is "$RC" 0 "pushes the branch's data and run-cache"
git commit -qam "scale 3" && git push -q origin main more-scale
cd "$TEST_DIR" || exit 1

# --- the template's steps and env, read from the file ---------------------------
# Prints, for the job's steps in order, "## NAME" then the step's run
# script; and the lines "#env KEY VALUE" (comments to the shell) of the
# workflow's and each step's env, ${{ secrets.X }} and ${{ github.X }}
# left as the names X.
python3 -I -S - "$template" >steps.txt <<'PY'
import re, sys
lines = open(sys.argv[1]).read().split("\n")
i, name = 0, None
def value(v):
    v = v.split(" #")[0].strip()
    m = re.fullmatch(r"\$\{\{\s*(?:secrets|github)\.(\w+)\s*\}\}", v)
    return "$" + m.group(1) if m else v
while i < len(lines):
    line = lines[i]
    m = re.match(r"^(\s*)env:\s*$", line)
    if m:
        indent = len(m.group(1))
        i += 1
        while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
            kv = re.match(r"^\s*(\w+):\s*(.*)$", lines[i])
            if kv:
                print("#env", kv.group(1), value(kv.group(2)))
            i += 1
        continue
    m = re.match(r"^\s*- name:\s*(.*?)\s*(#.*)?$", line)
    if m:
        name = m.group(1)
    m = re.match(r"^(\s*)run:\s*(.*)$", line)
    if m:
        print("## " + name)
        if m.group(2) != "|":
            print(m.group(2))
        else:
            indent = len(m.group(1))
            i += 1
            while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
                print(lines[i].strip())
                i += 1
            continue
    i += 1
PY
is "$(grep '^## ' steps.txt | tr '\n' '|')" \
	"## Install mlx|## Pull data and the run-cache|## Run the recipe|## Tests|## Verify determinism|## Report|" \
	"the template's steps are read"

# The secrets, under the names the template gives them; what Actions sets.
declare -A secret=([MLX_REMOTE_ORIGIN_TOKEN]=$MLX_TEST_DAV_TOKEN [GITHUB_TOKEN]=$forge_token)
env_lines=""
while read -r _ key val; do
	case $val in
	'$'*) val=${secret[${val#\$}]-} ;;
	esac
	[ "$key" = RECIPE ] && val=pipeline.lua # "set RECIPE"
	env_lines+="export $key='$val'"$'\n'
done < <(grep '^#env ' steps.txt)
for key in $(grep '^#env ' steps.txt | awk '$3 ~ /^\$/ { print substr($3, 2) }'); do
	[ -n "${secret[$key]-}" ]
	is "$?" 0 "the template's secret $key is one this test gives (as mlx reads it)"
done

# --- CI: a fresh clone of the pull request's branch ---------------------------
git clone -q -b more-scale origin.git ci
cd ci || exit 1
export GITHUB_ACTIONS=true GITHUB_REPOSITORY=team/demo GITHUB_EVENT_NAME=pull_request GITHUB_BASE_REF=main \
	GITHUB_REF=refs/pull/7/merge GITHUB_API_URL="http://127.0.0.1:$(head -n 1 "$TEST_DIR/forge.port")" \
	GITHUB_SERVER_URL=https://github.example GITHUB_RUN_ID=42
eval "$env_lines"
PATH="$(dirname "$MLX"):$PATH" # what the step "Install mlx" does
# run_step NAME — runs the template's script of step NAME in bash -e, as
# Actions does, with OUT, ERR and RC set.
run_step() {
	awk -v want="## $1" '/^## / { on = ($0 == want); next } on' "$TEST_DIR/steps.txt" >"$TEST_DIR/step.sh"
	bash -e "$TEST_DIR/step.sh" >"$TEST_DIR/out" 2>"$TEST_DIR/err"
	RC=$?
	OUT=$(cat "$TEST_DIR/out") ERR=$(cat "$TEST_DIR/err")
}
run_step "Pull data and the run-cache"
is "$RC" 0 "CI pulls with the token the template's env names"
like "$OUT" "^fetched [0-9]+ objects .*[0-9]+ run-cache entries from remote 'origin'" "the data and the run-cache"
run_step "Run the recipe"
is "$RC" 0 "the recipe succeeds"
[ ! -e ran.log ]
is "$?" 0 "executing nothing: the run-cache restored it"
run_step "Tests"
is "$RC" 0 "mlx test passes"
grep -q '<testcase .*name="test_score_is_a_fraction"' test-results.xml
is "$?" 0 "and writes the JUnit file the reporter reads"
run_step "Verify determinism"
is "$RC" 0 "mlx verify reproduces the steps"
run_step "Report"
is "$RC" 0 "the report step succeeds"
like "$ERR" "created comment [0-9]+ on pull request 7" "and posts one comment on the pull request"
like "$(cat report/report.md)" "\| score \| 0\.255 \| 0\.3825 \|" "comparing the branch's score with main's"
[ -f report/report.html ]
is "$?" 0 "the HTML report is kept for the artifact step"

done_testing
