#!/usr/bin/env bash
# CI from a fresh clone (issue 14): machine A, one clone, trains the
# quickstart, registers the model and points iris@staging at it, and
# pushes its objects to a directory remote. Machine B, a fresh clone in
# another directory with no .mlx state, the same PostgreSQL database and
# the same remote, runs recipes/deploy.lua: it resolves iris@staging
# through PostgreSQL, fetches the model's object from the remote, verifies
# it, deploys it to a model server and promotes it.
MLX_TEST_BACKEND=postgresql
. "$(dirname "$0")/tap.sh"
: "${MLX_SOURCE_ROOT:?set MLX_SOURCE_ROOT}"
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.com GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.com

# The repository: the quickstart and the deploy recipe, with the shared
# tracking database named in the committed config (no password: the test's
# server trusts its socket).
mkdir -p seed/recipes/quickstart
cp "$MLX_SOURCE_ROOT/recipes/deploy.lua" "$MLX_SOURCE_ROOT/recipes/iris.smoke.json" seed/recipes/
(cd "$MLX_SOURCE_ROOT/recipes/quickstart" && cp -r .gitignore data lib pipeline.lua quickstart.lua serve.py \
	"$TEST_DIR/seed/recipes/quickstart/")
mkdir -p seed/recipes/quickstart/.mlx
cp "$MLX_SOURCE_ROOT/recipes/quickstart/.mlx/config.lua" "$MLX_SOURCE_ROOT/recipes/quickstart/.mlx/.gitignore" \
	seed/recipes/quickstart/.mlx/
sed -i "s|^return {|return {\n  tracking = \"$MLX_PG_URI\",|" seed/recipes/quickstart/.mlx/config.lua
git init -q -b main seed
git -C seed add -A
git -C seed commit -qm "the quickstart"
git clone -q --bare seed origin.git
unset MLX_TRACKING_URI # the committed config names the database

# --- machine A ------------------------------------------------------------
git clone -q origin.git a
cd a/recipes/quickstart || exit 1
export MLX_HOSTNAME=machine-a
mlx remote add origin "$TEST_DIR/store"
is "$RC" 0 "machine A adds a directory remote"
git add .mlx/remotes.json && git commit -qm "mlx remote" && git push -q origin main
mlx recipe pipeline.lua
is "$RC" 0 "machine A trains the quickstart"
mlx model ls
like "$OUT" "^iris +1 +1 +staging=1 " "and registers iris:1 as staging"
model_hash=$(sha256sum work/model.json | cut -d' ' -f1)
mlx push iris@staging
like "$RC $OUT" "^0 pushed 1 object \([0-9.]+ [kM]?B\) to remote 'origin'; 0 already there$" \
	"and pushes the model's object to the remote"
[ -e "$TEST_DIR/store/objects/${model_hash:0:2}/${model_hash:2}" ]
is "$?" 0 "the model's object is on the remote"
cd "$TEST_DIR" || exit 1

# --- machine B: a fresh clone -------------------------------------------------
git clone -q origin.git b
cd b/recipes/quickstart || exit 1
export MLX_HOSTNAME=machine-b
is "$(ls -A .mlx | sort | tr '\n' ' ')" ".gitignore config.lua remotes.json " \
	"machine B's clone has no .mlx state: no store, no runs database"
python3 serve.py 0 >"$TEST_DIR/port" 2>/dev/null &
server=$!
trap 'kill $server 2>/dev/null; tap_pg_stop; rm -rf "$TEST_DIR" "$TAP_CAPTURE"' EXIT
for _ in $(seq 100); do [ -s "$TEST_DIR/port" ] && break; sleep 0.1; done
url="http://127.0.0.1:$(head -1 "$TEST_DIR/port")"
mlx recipe ../deploy.lua -p model=iris -p "url=$url" -p min=0.9
is "$RC" 0 "machine B deploys with recipes/deploy.lua"
like "$OUT" "^deploy iris: staging is iris:1, production is not set" "resolving iris@staging through PostgreSQL"
like "$OUT" "^fetched iris:1 from remote origin \([0-9]+ objects, verified\)" "fetching the model from the remote"
like "$OUT" "^gate: passed \(iris:1 accuracy = 0\.9" "gating it on the metrics machine A recorded"
like "$OUT" "^smoke: 4 of 4 cases passed" "smoke-testing the server"
like "$OUT" "^production: not set -> iris:1" "and promoting it"
is "$(python3 -c 'import json, sys, urllib.request; print(json.load(urllib.request.urlopen(sys.argv[1] + "/health"))["sha256"])' "$url")" \
	"$model_hash" "the server serves exactly the bytes machine A trained"
is "$(sha256sum .mlx/cache/objects/"${model_hash:0:2}"/"${model_hash:2}" | cut -d' ' -f1)" "$model_hash" \
	"machine B's store holds the fetched object, verified"
kill $server 2>/dev/null
wait $server 2>/dev/null

# --- back on machine A --------------------------------------------------------------
cd "$TEST_DIR/a/recipes/quickstart" || exit 1
export MLX_HOSTNAME=machine-a
mlx model ls
like "$OUT" "^iris +1 +1 +production=1 staging=1 " "machine A sees the promotion machine B made"
mlx runs --limit 1 --json
like "$OUT" '"recipe": "\.\./deploy\.lua"' "and machine B's deploy run, its recipe recorded relative to the project, not where B's clone is"
like "$OUT" '"host": "machine-b"' "recorded with machine B's host"

done_testing
