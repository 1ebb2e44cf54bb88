#!/usr/bin/env bash
# Baselines and reports in a real git repository with two commits: `mlx
# metrics diff` against HEAD~1 and against a model alias, mlx.gate, `mlx
# report` (Markdown, SVG by gnuplot, HTML) and `--post` to a recording
# stand-in of the GitHub and GitLab APIs (tests/helper/forge_server.py).
. "$(dirname "$0")/tap.sh"
: "${MLX_SOURCE_ROOT:?set MLX_SOURCE_ROOT}"
export GIT_AUTHOR_NAME=Ada GIT_AUTHOR_EMAIL=ada@example.org
export GIT_COMMITTER_NAME=Ada GIT_COMMITTER_EMAIL=ada@example.org
export no_proxy=127.0.0.1
# The CI of the machine running this test must not leak into --post.
unset GITHUB_ACTIONS GITHUB_REPOSITORY GITHUB_REF GITHUB_EVENT_PATH GITHUB_TOKEN GITHUB_API_URL GITHUB_RUN_ID
unset GITLAB_CI CI_PROJECT_ID CI_API_V4_URL CI_MERGE_REQUEST_IID GITLAB_TOKEN CI_JOB_URL CI_PROJECT_DIR MLX_PR_NUMBER

SERVER_PID=""
trap 'kill $SERVER_PID 2>/dev/null; rm -rf "$TEST_DIR" "$TAP_CAPTURE"' EXIT

mkdir proj && cd proj || exit 1
git init -q -b main
mlx init
# Before the first commit the default baseline, HEAD, does not exist yet.
mlx metrics diff
is "$RC $ERR" "2 mlx: error: --baseline HEAD: nothing is committed yet to compare with; commit mlx.lock (git add mlx.lock && git commit), or name a baseline: --baseline REV or MODEL@ALIAS" \
	"metrics diff in a repository without a commit says to commit first"
cat >train.py <<'PY'
import json, os, sys
lr = float(sys.argv[1])
acc = round(0.8 + lr, 4)
os.makedirs("work", exist_ok=True)
with open(os.environ["MLX_EVENTS"], "a") as f:
    for step in range(1, 6):
        f.write(json.dumps({"metric": "loss", "value": round(1.0 / (step * (1 + 10 * lr)), 6), "step": step}) + "\n")
json.dump({"accuracy": acc, "f1": round(acc - 0.05, 4)}, open("work/metrics.json", "w"))
json.dump({"weights": [lr]}, open("work/model.json", "w"))
json.dump({"type": "confusion", "labels": ["setosa", "versicolor"], "matrix": [[5, 1], [2, 7]]},
          open("work/confusion.json", "w"))
json.dump({"type": "line", "x": "epoch", "y": ["val_loss"],
           "rows": [{"epoch": e, "val_loss": round(1.0 / (e + lr), 4)} for e in range(1, 5)]},
          open("work/val.json", "w"))
PY
write_recipe() { # LR
	cat >recipe.lua <<LUA
local mlx = require "mlx"
local p = mlx.pipeline "iris"
p:params { lr = $1 }
p:step "train" { deps = { "train.py" }, params = { "lr" }, outs = { "work/model.json" },
  metrics = { "work/metrics.json" }, plots = { "work/confusion.json", "work/val.json" },
  cmd = "python3 train.py \${lr}" }
return p
LUA
}
printf 'work/\n.mlx/\nrep*/\n' >.gitignore

# --- commit 1: lr 0.1, accuracy 0.9, registered as iris@production ----------
write_recipe 0.1
mlx recipe recipe.lua
is "$RC" 0 "the first recipe run succeeds"
like "$(cat mlx.lock)" '"metrics": \[' "mlx.lock says which outs are metrics files"
mlx model register iris work/model.json -a production
is "$RC" 0 "the model is registered as iris@production"
git add -A && git commit -q -m "lr 0.1"

# --- commit 2: lr 0.15, accuracy 0.95 --------------------------------------------
write_recipe 0.15
mlx recipe recipe.lua
is "$RC" 0 "the second recipe run succeeds"
git add -A && git commit -q -m "lr 0.15"
first=$(git rev-parse --short=7 HEAD~1)

mlx metrics diff --baseline HEAD~1
is "$RC" 0 "metrics diff exits 0 although values differ"
is "$OUT" "METRIC    HEAD~1 ($first)  workspace         CHANGE
accuracy               0.9       0.95  +0.05 (+5.6%)
f1                    0.85        0.9  +0.05 (+5.9%)

PARAM  HEAD~1 ($first)  workspace
lr     0.1               0.15" "against HEAD~1: both values, the change and the param that changed"
mlx metrics diff --baseline HEAD~1 --json
is "$(printf '%s' "$OUT" | python3 -c 'import json,sys; d=json.load(sys.stdin); m={r["key"]: r for r in d["metrics"]}; print(m["accuracy"]["baseline"], m["accuracy"]["current"], round(m["accuracy"]["change"], 6), d["params"][0]["key"])')" \
	"0.9 0.95 0.05 lr" "--json has the values and the change"
mlx metrics diff HEAD~1
is "$OUT" "METRIC    HEAD~1 ($first)  workspace         CHANGE
accuracy               0.9       0.95  +0.05 (+5.6%)
f1                    0.85        0.9  +0.05 (+5.9%)

PARAM  HEAD~1 ($first)  workspace
lr     0.1               0.15" "the baseline may be given as the argument, as dvc metrics diff takes it"
mlx metrics diff HEAD~1 --baseline main
is "$RC" 2 "a baseline given twice exits 2"
is "$ERR" "mlx: error: give the baseline once: 'HEAD~1' or --baseline main" "saying so"
git clone -q --depth 1 "file://$PWD" "$TEST_DIR/shallow" 2>/dev/null
(cd "$TEST_DIR/shallow" && "$MLX" init >/dev/null && "$MLX" metrics diff HEAD~1 >/dev/null 2>"$TAP_CAPTURE/shallow"; echo $? >"$TAP_CAPTURE/shallow.rc")
is "$(cat "$TAP_CAPTURE/shallow.rc")" 2 "a baseline a shallow clone lacks exits 2"
like "$(cat "$TAP_CAPTURE/shallow")" "unknown revision 'HEAD~1' in .*/shallow, a shallow clone; fetch the history with 'git fetch --unshallow'" \
	"saying how to fetch the history"
rm -rf "$TEST_DIR/shallow"
mlx metrics diff
is "$RC" 0 "against HEAD (the default)"
like "$OUT" "^accuracy +0.95 +0.95 +0$" "nothing changed since HEAD"

mlx metrics diff --baseline iris@production
is "$RC" 0 "against a model alias"
like "$OUT" "^accuracy +0.9 +0.95 +\+0.05 \(\+5.6%\)$" "the alias's run gives the baseline's accuracy"
like "$OUT" "^lr +0.1 +0.15$" "and its params"
like "$OUT" "^loss +0.1 +-$" "a metric only the model's run logged is shown without a current value"

mlx metrics diff --baseline HEAD~1 --fail-on 'accuracy:-0.01' --fail-on 'f1>0.8'
is "$RC" 1 "a broken --fail-on rule exits 1"
is "$ERR" "mlx: error: --fail-on f1>0.8: f1 = 0.9 is above 0.8" "naming the rule and the value"
mlx metrics diff --baseline HEAD~1 --fail-on 'accuracy:+1%'
is "$ERR" "mlx: error: --fail-on accuracy:+1%: accuracy rose from 0.9 to 0.95 (+0.05)" "a relative rule says both numbers"
mlx metrics diff --baseline HEAD~1 --fail-on 'accuracy:-0.01' --fail-on 'accuracy>0.5%'
is "$RC" 2 "a malformed rule is bad input"
is "$ERR" "mlx: error: --fail-on 'accuracy>0.5%': '0.5%' is not a number" "and is named"
mv work/metrics.json metrics.kept
mlx metrics diff --baseline HEAD~1
is "$RC $ERR" "0 mlx: warning: metrics file work/metrics.json of workspace: not in the workspace; 'mlx pull' (or 'mlx recipe') puts it there" \
	"a metrics file not in the workspace (a fresh clone) is a warning saying what brings it"
mv metrics.kept work/metrics.json
mlx metrics diff --baseline nosuchrev
is "$RC" 2 "an unknown revision is bad input"
like "$ERR" "^mlx: error: --baseline nosuchrev: " "named in the error"
mlx metrics diff --baseline iris@staging
is "$RC" 2 "an unknown alias is bad input"
is "$ERR" "mlx: error: --baseline iris@staging: model iris has no alias staging" "named in the error"

# --- mlx.gate: the deploy gate on the working tree ------------------------------
gate() { # FIELDS
	printf 'local mlx = require "mlx"\nlocal r = mlx.gate { %s }\nprint(r.message)\n' "$1" >gate.lua
	mlx recipe gate.lua
}
gate 'metric = "accuracy", min = 0.9, max_drop = 0.01, baseline = "iris@production"'
is "$RC" 0 "the gate passes"
is "$OUT" "the working tree accuracy = 0.95, iris@production (iris:1) has 0.9" "with both numbers"
gate 'metric = "accuracy", min = 0.99'
is "$RC" 1 "below the minimum the gate fails"
is "$ERR" "mlx: error: gate: the working tree accuracy = 0.95, below the minimum 0.99" "saying the value and the minimum"
gate 'metric = "accuracy", value = 0.85, max_drop = 0.01, baseline = "iris@production"'
is "$RC" 1 "a drop beyond max_drop fails"
is "$ERR" "mlx: error: gate: the working tree accuracy = 0.85, worse than iris@production (iris:1)'s 0.9 by more than 0.01" \
	"saying both numbers"
gate 'metric = "f1", max_drop = 0, baseline = "HEAD~1", file = "work/metrics.json"'
is "$OUT" "work/metrics.json f1 = 0.9, HEAD~1 ($first) has 0.85" "a git revision and a metrics file work too"
cat >gated.lua <<'LUA'
local mlx = require "mlx"
local p = mlx.pipeline "gated"
p:step "gate" { deps = { "work/metrics.json" }, run = function()
  mlx.gate { metric = "accuracy", min = 0.97, file = "work/metrics.json" }
end }
return p
LUA
mlx recipe gated.lua
is "$RC" 1 "a gate step fails the recipe"
like "$ERR" "step 'gate' failed: gate: work/metrics.json accuracy = 0.95, below the minimum 0.97" "with the gate's message"

# --- mlx report -------------------------------------------------------------------------
if ! command -v gnuplot >/dev/null || ! command -v xmllint >/dev/null; then
	skip "mlx report draws SVG plots" "no gnuplot or xmllint"
else
	mlx report --baseline HEAD~1 --out rep/report.md
	is "$RC" 0 "mlx report succeeds"
	is "$ERR" "mlx: wrote rep/report.md, rep/report.html and 4 plots" "it says what it wrote"
	md=$(cat rep/report.md)
	is "$(head -n 2 rep/report.md)" "<!-- mlx-report -->
## mlx report: workspace against HEAD~1 ($first)" "the Markdown starts with the hidden marker and the title"
	like "$md" "^\| accuracy \| 0.9 \| 0.95 \| ▲ \+0.05 \(\+5.6%\) \|$" "metrics with the change and an arrow"
	like "$md" "^\| lr \| 0.1 \| 0.15 \|$" "the params diff"
	like "$md" "^\| train \| FINISHED \| [0-9.]+s \| [0-9.]+s \|$" "step timings of both sides"
	like "$md" "^\| \`work/model.json\` \| modified \| [0-9a-f]{12} \| [0-9a-f]{12} \|$" "the data that changed"
	like "$md" "^!\[work/confusion.json\]\(report-plot-work_confusion.svg\)$" "plots as images beside the report"
	is "$(ls rep | sort | tr '\n' ' ')" "report-curve-loss.svg report-metrics.svg report-plot-work_confusion.svg report-plot-work_val.svg report.html report.md " \
		"the metrics chart, a metric curve and each declared plot as SVG"
	valid=0
	for svg in rep/*.svg; do
		xmllint --noout "$svg" && [ "$(xmllint --xpath 'local-name(/*)' "$svg")" = svg ] && valid=$((valid + 1))
	done
	is "$valid" 4 "every plot is valid SVG (xmllint)"
	like "$(cat rep/report-plot-work_confusion.svg)" ">versicolor<" "the confusion matrix has its labels"
	like "$(cat rep/report-curve-loss.svg)" "HEAD~1 \($first\)" "the metric curve has the baseline's series"
	xmllint --noout rep/report.html
	is "$?" 0 "the HTML is well-formed (xmllint)"
	is "$(grep -c '<svg' rep/report.html)" 4 "with the four plots inline"
	is "$(grep -o "id='f[0-9]*-gpPt0'" rep/report.html | sort -u | wc -l)" 4 "each inline plot has ids of its own"

	mlx report --baseline iris@production -o rep-model/r.md
	is "$RC" 0 "a report against a model alias"
	like "$(cat rep-model/r.md)" "^\| accuracy \| 0.9 \| 0.95 \| ▲ \+0.05 \(\+5.6%\) \|$" "has the alias's metrics as baseline"
fi

PATH=/nonexistent "$MLX" report --baseline HEAD~1 -o rep-noplot/r.md >"$TAP_CAPTURE/out" 2>"$TAP_CAPTURE/err"
is "$?" 0 "without gnuplot the report is still written"
is "$(head -n 1 "$TAP_CAPTURE/err")" "mlx: warning: cannot run gnuplot: command not found in PATH (install gnuplot-nox); the report has no plots" \
	"and a warning says how to get plots"
is "$(ls rep-noplot | tr '\n' ' ')" "r.html r.md " "with no SVG files"

printf '{"type": "pie", "rows": []}\n' >work/val.json
mlx report -o rep-bad/r.md
is "$RC" 0 "a plot file of an unknown form does not stop the report"
like "$ERR" "^mlx: warning: plot work/val.json: unknown plot type 'pie' \(line, scatter, bar or confusion\)" "it is named in a warning"
mlx recipe recipe.lua
is "$RC" 0 "the recipe restores the plot file"

mlx report --assets-url https://example.org
is "$RC" 2 "--assets-url without --post is bad input"
mlx report --post
is "$RC" 2 "--post outside CI is bad input"
like "$ERR" "^mlx: error: --post: not in GitHub Actions or GitLab CI" "saying what is missing"
[ ! -e mlx-report.md ]
is "$?" 0 "and nothing is written"
mkdir -p outdir
mlx report --out outdir
is "$RC" 2 "--out naming a directory is bad input"
is "$ERR" "mlx: error: --out outdir is a directory; name a file in it, e.g. --out outdir/report.md" \
	"saying which file to name"
is "$(ls outdir-* outdir.html 2>/dev/null | wc -l) $(ls -A outdir | wc -l)" "0 0" \
	"and no plot or HTML file is left beside it"
mlx report --out recipe.lua/r.md
is "$RC $ERR" "2 mlx: error: --out recipe.lua/r.md: recipe.lua is a file, not a directory; choose a path whose parent directories are directories" \
	"nor a file in a file's place"
# A file deeper up is found before the report is built, not when it is
# written (then an I/O failure, exit 1, after all the work).
mlx report --out recipe.lua/sub/r.md
is "$RC $ERR" "2 mlx: error: --out recipe.lua/sub/r.md: recipe.lua is a file, not a directory; choose a path whose parent directories are directories" \
	"a file anywhere above the report is bad input, found up front"
ln -s "$TEST_DIR/nowhere" dangling
mlx report --out dangling/r.md
is "$RC $ERR" "2 mlx: error: --out dangling/r.md: dangling is a symbolic link to no directory; choose a path whose parent directories are directories" \
	"so is a symbolic link to nothing"
rm -f dangling
mkdir -p real && ln -s real linked
mlx report --out linked/new/r.md
is "$RC" 0 "a symbolic link to a directory is a directory, and missing ones are made"
[ -f real/new/r.md ] && [ -f real/new/r.html ]
is "$?" 0 "the report is written through it"
rm -rf real linked
rmdir outdir

# --- --post: one comment, created then updated ---------------------------------------
TOKEN="tok-$RANDOM$RANDOM-secret"
# One comment per page, so the report's comment is found on the second.
python3 "$MLX_SOURCE_ROOT/tests/helper/forge_server.py" "$TEST_DIR/forge.log" --token "$TOKEN" --per-page 1 \
	>"$TEST_DIR/forge.port" &
SERVER_PID=$!
for _ in $(seq 200); do
	[ -s "$TEST_DIR/forge.port" ] && break
	sleep 0.05
done
API="http://127.0.0.1:$(head -n 1 "$TEST_DIR/forge.port")"
requests() { # METHOD PATH-REGEX — how many such requests the server saw
	python3 -c 'import json,re,sys; print(sum(1 for l in open(sys.argv[1]) for d in [json.loads(l)] if d["method"] == sys.argv[2] and re.fullmatch(sys.argv[3], d["path"]) and d["auth"]))' \
		"$TEST_DIR/forge.log" "$1" "$2"
}

github() {
	GITHUB_ACTIONS=true GITHUB_API_URL=$API GITHUB_REPOSITORY=acme/iris GITHUB_REF=refs/pull/7/merge \
		GITHUB_TOKEN=$1 GITHUB_SERVER_URL=https://github.example GITHUB_RUN_ID=99 \
		"$MLX" report --baseline HEAD~1 -o rep-gh/report.md --post >"$TAP_CAPTURE/out" 2>"$TAP_CAPTURE/err"
	RC=$?
	OUT=$(<"$TAP_CAPTURE/out") ERR=$(<"$TAP_CAPTURE/err")
	cat "$TAP_CAPTURE/out" "$TAP_CAPTURE/err" >>"$TEST_DIR/posted-output"
}
github "$TOKEN"
is "$RC" 0 "--post to a GitHub pull request succeeds"
like "$ERR" "^mlx: created comment ([0-9]+) on pull request 7: https://github.example/pull/7#issuecomment-[0-9]+$" "the first post creates a comment"
created=$(printf '%s\n' "$ERR" | sed -n 's/^mlx: created comment \([0-9]*\) .*/\1/p')
github "$TOKEN"
is "$RC" 0 "a second post succeeds"
like "$ERR" "^mlx: updated comment $created on pull request 7" "and updates the same comment"
is "$(requests POST '/repos/acme/iris/issues/7/comments')" 1 "one comment was created"
is "$(requests PATCH "/repos/acme/iris/issues/comments/$created")" 1 "and that one updated"
is "$(requests GET '/repos/acme/iris/issues/7/comments')" 3 "found on the second page of comments"
body=$(python3 -c 'import json,sys; print([json.loads(l) for l in open(sys.argv[1]) if json.loads(l)["method"] == "PATCH"][-1]["body"]["body"])' "$TEST_DIR/forge.log")
like "$body" "^\| accuracy \| 0.9 \| 0.95 \| ▲ \+0.05 \(\+5.6%\) \|$" "the comment has the tables inline"
like "$body" "^- \[work/confusion.json\]\(https://github.example/acme/iris/actions/runs/99\)$" "and the plots as links to the run's artifacts"
github "wrong-$TOKEN"
is "$RC" 2 "a rejected token is bad input"
like "$ERR" "listing the comments: 401 Unauthorized: Bad credentials; check GITHUB_TOKEN$" "said in one line, naming the token"

gitlab() {
	GITLAB_CI=true CI_API_V4_URL=$API/api/v4 CI_PROJECT_ID=42 CI_MERGE_REQUEST_IID=3 GITLAB_TOKEN=$TOKEN \
		CI_JOB_URL=https://gitlab.example/acme/iris/-/jobs/5 CI_PROJECT_DIR=$TEST_DIR/proj \
		"$MLX" report --baseline iris@production -o rep-gl/report.md --post >"$TAP_CAPTURE/out" 2>"$TAP_CAPTURE/err"
	RC=$?
	OUT=$(<"$TAP_CAPTURE/out") ERR=$(<"$TAP_CAPTURE/err")
	cat "$TAP_CAPTURE/out" "$TAP_CAPTURE/err" >>"$TEST_DIR/posted-output"
}
gitlab
like "$ERR" "^mlx: created comment ([0-9]+) on merge request 3$" "--post to a GitLab merge request creates a note"
note=$(printf '%s\n' "$ERR" | sed -n 's/^mlx: created comment \([0-9]*\) .*/\1/p')
gitlab
like "$ERR" "^mlx: updated comment $note on merge request 3$" "and then updates the same note"
is "$(requests POST '/api/v4/projects/42/merge_requests/3/notes')" 1 "one note was created"
is "$(requests PUT "/api/v4/projects/42/merge_requests/3/notes/$note")" 1 "and that one updated"
body=$(python3 -c 'import json,sys; print([json.loads(l) for l in open(sys.argv[1]) if json.loads(l)["method"] == "PUT"][-1]["body"]["body"])' "$TEST_DIR/forge.log")
like "$body" "^- \[work/confusion.json\]\(https://gitlab.example/acme/iris/-/jobs/5/artifacts/file/rep-gl/report-plot-work_confusion.svg\)$" \
	"the plots link to the job's artifacts"
TOKEN_KEPT=$TOKEN TOKEN="wrong-$TOKEN"
gitlab
TOKEN=$TOKEN_KEPT
is "$RC" 2 "a token GitLab rejects is bad input"
like "$ERR" "listing the comments: 401 Unauthorized: .*; check GITLAB_TOKEN \(a project or personal access token with the api scope\)$" \
	"naming the token and what it must be"

# A baseline whose metrics file is not in the store (a fresh clone that did
# not pull it): left out, with a warning saying how to get it.
hash=$(git show HEAD~1:mlx.lock | python3 -c 'import json,sys; print(json.load(sys.stdin)["steps"]["iris"]["train"]["outs"]["work/metrics.json"]["hash"])')
mkdir -p "$TEST_DIR/remote/objects/${hash:0:2}"
cp ".mlx/cache/objects/${hash:0:2}/${hash:2}" "$TEST_DIR/remote/objects/${hash:0:2}/${hash:2}"
rm -f ".mlx/cache/objects/${hash:0:2}/${hash:2}"
mlx metrics diff --baseline HEAD~1
is "$RC" 0 "a baseline metrics file missing from the store is not an error"
is "$ERR" "mlx: warning: metrics file work/metrics.json of HEAD~1 ($first): object ${hash:0:12} is not in the store ('mlx pull' fetches it)" \
	"a warning names the file and says how to fetch it"
like "$OUT" "^accuracy +- +0.95 *$" "and its metrics have no baseline value"
# With a remote that has it, the object is fetched (verified) and used.
"$MLX" remote add origin "$TEST_DIR/remote" >/dev/null
mlx metrics diff --baseline HEAD~1
is "$RC" 0 "with a remote, the baseline's missing metrics file is fetched"
is "$ERR" "" "without a warning"
if [[ "$OUT" =~ (^|$'\n')accuracy\ +-\  ]]; then is 1 0 "and its metrics have their baseline value"; else is 0 0 "and its metrics have their baseline value"; fi
[ -f ".mlx/cache/objects/${hash:0:2}/${hash:2}" ]
is "$?" 0 "the object is in the store again"

[ -s "$TEST_DIR/posted-output" ]
is "$?" 0 "the posts said something"
is "$(grep -rl -- "$TOKEN" "$TEST_DIR/posted-output" rep-gh rep-gl .mlx 2>/dev/null | wc -l)" 0 \
	"the token is in no output, report or file of the project"

done_testing
