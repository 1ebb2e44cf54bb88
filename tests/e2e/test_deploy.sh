#!/usr/bin/env bash
# recipes/deploy.lua as a user runs it, against the quickstart's model
# server (recipes/quickstart/serve.py) on 127.0.0.1, with model files
# written by hand: the happy path, a smoke failure rolled back, gate
# failures, a re-run, a server that is down, bad parameters.
. "$(dirname "$0")/tap.sh"
: "${MLX_SOURCE_ROOT:?set MLX_SOURCE_ROOT}"
DEPLOY="$MLX_SOURCE_ROOT/recipes/deploy.lua"
SERVE="$MLX_SOURCE_ROOT/recipes/quickstart/serve.py"

SERVER_PID=""
trap 'kill $SERVER_PID 2>/dev/null; tap_pg_stop; rm -rf "$TEST_DIR"' EXIT
python3 "$SERVE" 0 >port.txt 2>serve.err &
SERVER_PID=$!
for _ in $(seq 200); do
	[ -s port.txt ] && break
	sleep 0.05
done
URL="http://127.0.0.1:$(head -n 1 port.txt)"

get() { # PATH — GET URL/PATH, print the body
	python3 -c 'import sys, urllib.request as r
try:
    print(r.urlopen(sys.argv[1]).read().decode())
except Exception as e:
    print(e)' "$URL$1"
}
predict() { # JSON — POST it to URL/predict, print the predictions
	python3 -c 'import json, sys, urllib.request as r
req = r.Request(sys.argv[1] + "/predict", data=sys.argv[2].encode(), headers={"Content-Type": "application/json"})
print(" ".join(json.load(r.urlopen(req))["predictions"]))' "$URL" "$1"
}
served() { get /health | python3 -c 'import json, sys; d = json.load(sys.stdin); print(d["sha256"], d["version"])'; }
production() { track_sql "SELECT coalesce((SELECT CAST(version AS text) FROM model_aliases WHERE name = 'iris' AND alias = 'production'), 'none')"; }
moves() { track_sql "SELECT count(*) FROM model_alias_history WHERE alias = 'production'"; }

mlx init
mkdir -p models
# Classifies by petal length: < 2.5 setosa, > 5 virginica. BIAS varies the
# bytes without changing a prediction.
model() { # CLASSES BIAS
	printf '{"classes": [%s], "features": ["sepal_length", "sepal_width", "petal_length", "petal_width"],
 "weights": [[0, 0, -2, 0], [0, 0, 0, 0], [0, 0, 2, 0]], "bias": [%s, 0, -10],
 "mean": [0, 0, 0, 0], "std": [1, 1, 1, 1]}\n' "$1" "$2"
}
RIGHT='"setosa", "versicolor", "virginica"'
model "$RIGHT" 5 >models/v1.json
model '"virginica", "versicolor", "setosa"' 5 >models/wrong.json
model "$RIGHT" 5.5 >models/v3.json
model "$RIGHT" 6 >models/v4.json

# A stand-in for training: a run that wrote FILE and measured ACCURACY,
# registered and staged.
cat >stage.lua <<'LUA'
local mlx = require "mlx"
local registry = require "mlx.registry"
local file, accuracy = arg[1], tonumber(arg[2])
mlx.log.metric("accuracy", accuracy)
mlx.log.artifact(file, "out")
local v = assert(registry.register { name = "iris", path = file })
assert(registry.set_alias("iris", "staging", v.version))
print(v.ref)
LUA

# --- the happy path ---------------------------------------------------------------
mlx recipe stage.lua models/v1.json 0.95
is "$OUT" "iris:1" "a first model is staged"
mlx recipe "$DEPLOY" -p model=iris -p url="$URL"
is "$RC" 0 "the deploy recipe succeeds"
like "$OUT" "^deploy iris: staging is iris:1, production is not set" "it says what it deploys"
like "$OUT" $'^gate: passed \(iris:1 accuracy = 0.95\)' "the gate passes"
like "$OUT" $'^smoke: 4 of 4 cases passed' "the smoke tests pass"
like "$OUT" $'^production: not set -> iris:1' "production moves"
like "$OUT" $'^sample: /predict \{"features":\[\[5.1,3.5,1.4,0.2\]\]\} -> \{"predictions":\["setosa"\]\}' \
	"and a sample prediction is shown"
is "$(production)" 1 "production names iris:1"
is "$(served)" "$(sha256sum models/v1.json | cut -d' ' -f1) 1" "the server serves exactly iris:1"
is "$(predict '{"features": [[5.1, 3.5, 1.4, 0.2], [6.3, 3.3, 6.0, 2.5]]}')" "setosa virginica" \
	"and predicts with it"
mlx runs --json --limit 1
is "$(printf '%s' "$OUT" | python3 -c 'import json,sys; d=json.load(sys.stdin)[0]; print(d["tags"]["deploy"], d["params"]["candidate"])')" \
	"promoted iris:1" "the deploy run records what it did"

# Again, with nothing new: no gate, no move, the checks only.
mlx recipe "$DEPLOY" model=iris url="$URL"
is "$RC" 0 "a re-run succeeds"
is "$(printf '%s\n' "$OUT" | sed -n 2,4p)" $'server: already serves iris:1\nsmoke: 4 of 4 cases passed\nproduction: already iris:1' \
	"and only checks the server"
is "$(moves)" 1 "without moving production"

# --- a smoke test fails: everything is rolled back ------------------------------------
mlx recipe stage.lua models/wrong.json 0.97
mlx recipe "$DEPLOY" model=iris url="$URL"
is "$RC" 1 "a deploy whose smoke tests fail exits 1"
like "$OUT" $'^gate: passed' "after passing the gate (its metrics looked fine)"
like "$OUT" $'^server: serves iris:2' "and reaching the server"
like "$OUT" $'^smoke: FAILED a setosa is a setosa: json.predictions\[1\]: expected "setosa", got "virginica"' \
	"the failing cases are listed"
like "$OUT" $'^server: serves iris:1 again' "the previous model is put back"
is "$ERR" "mlx: error: smoke tests: 3 of 4 failed (rolled back)" "the error says it was rolled back"
is "$(production)" 1 "production still names iris:1"
is "$(moves)" 1 "and never moved"
is "$(served)" "$(sha256sum models/v1.json | cut -d' ' -f1) 1" "the server serves iris:1 again"
is "$(predict '{"features": [[5.1, 3.5, 1.4, 0.2]]}')" "setosa" "and predicts right"

# --- gate failures: nothing moves, nothing is uploaded ------------------------------------
mlx recipe stage.lua models/v3.json 0.5
mlx recipe "$DEPLOY" -p model=iris -p url="$URL" -p min=0.9
is "$RC" 1 "a version below the minimum is not deployed"
is "$ERR" "mlx: error: gate: iris:3 accuracy = 0.5, below the minimum 0.9: not deploying" "and the gate says why"
mlx recipe "$DEPLOY" model=iris url="$URL"
is "$RC $ERR" "1 mlx: error: gate: iris:3 accuracy = 0.5, worse than iris:1's 0.95 by more than 0: not deploying" \
	"nor one worse than production"
is "$(production) $(moves)" "1 1" "production did not move"
is "$(served)" "$(sha256sum models/v1.json | cut -d' ' -f1) 1" "and the server was not touched"
mlx recipe "$DEPLOY" model=iris url="$URL" max_drop=0.5 metric=f1
is "$RC" 1 "a version without the gate's metric is not deployed"
like "$ERR" "gate: iris:3 has no f1 metric \(run [0-9a-z]{16}\)" "and the gate says so"

# --- the server is down -------------------------------------------------------------------
mlx recipe stage.lua models/v4.json 0.99
mlx recipe "$DEPLOY" model=iris url=http://127.0.0.1:1 timeout=1
is "$RC" 1 "a server that is down fails the deploy"
like "$ERR" "uploading iris:4: PUT http://127.0.0.1:1/model: connection refused" "and says so"
is "$(production)" 1 "production did not move"

# --- a better model goes through ------------------------------------------------------------
mlx recipe "$DEPLOY" model=iris url="$URL"
is "$RC" 0 "a better model is deployed"
like "$OUT" $'^production: iris:1 -> iris:4' "and becomes production"
is "$(served)" "$(sha256sum models/v4.json | cut -d' ' -f1) 4" "the server serves it"

# --- bad parameters --------------------------------------------------------------------------
mlx recipe "$DEPLOY" model=iris
is "$RC" 2 "a missing url is bad input"
like "$ERR" "give model=NAME and url=URL" "and says what to give"
mlx recipe "$DEPLOY" model=iris url="$URL" lr=0.1
is "$RC $ERR" "2 mlx: error: deploy.lua: unknown parameter 'lr' (keys: direction, from, health, max_drop, metric, min, model, smoke, timeout, to, upload, url)" \
	"an unknown parameter is bad input"
mlx recipe "$DEPLOY" -p model=iris -p url="$URL" -p lr=0.1
is "$RC" 2 "so is an unknown -p"
like "$ERR" "the recipe declares no param 'lr'" "and is named"
mlx recipe "$DEPLOY" -p model=iris -p url="$URL" -p max_drop=much
is "$RC $ERR" "2 mlx: error: -p max_drop=much: param 'max_drop' must be a number, not 'much'" \
	"a value of the wrong type is bad input"
mlx recipe "$DEPLOY" model=iris url="$URL" smoke=none.json
is "$RC" 2 "missing smoke cases are bad input"
mlx recipe "$DEPLOY" model=irs url="$URL"
is "$RC $ERR" "2 mlx: error: deploy.lua: no model named irs; did you mean iris?" \
	"a mistyped model is bad input, named as such"
is "$(production)" 4 "and none of that moved anything"

done_testing
