#!/usr/bin/env bash
# The quickstart as a new user runs it (README command 1): train, gate,
# register, deploy, promote; a no-op re-run; a new learning rate giving a
# new production version with its lineage; a gate failure registering nothing.
. "$(dirname "$0")/tap.sh"
: "${MLX_SOURCE_ROOT:?set MLX_SOURCE_ROOT}"

# The committed files of the example, as a fresh clone has them.
mkdir -p recipes/quickstart
cp "$MLX_SOURCE_ROOT/recipes/deploy.lua" "$MLX_SOURCE_ROOT/recipes/iris.smoke.json" recipes/
(cd "$MLX_SOURCE_ROOT/recipes/quickstart" && cp -r .mlx .gitignore data lib pipeline.lua quickstart.lua serve.py \
	"$TEST_DIR/recipes/quickstart/")
rm -rf recipes/quickstart/.mlx/cache recipes/quickstart/.mlx/*.db* recipes/quickstart/.mlx/logs recipes/quickstart/.mlx/tmp

mlx -C recipes/quickstart recipe quickstart.lua
is "$RC" 0 "the quickstart runs end to end"
like "$ERR" "pipeline 'iris': 5 ran" "every step of the pipeline runs the first time"
like "$OUT" "gate: passed \(iris:1 accuracy = 0\.9" "the deploy gate passes"
like "$OUT" "smoke: 4 of 4 cases passed" "the smoke test passes"
like "$OUT" "production model: iris:1 " "it ends with the production version"
like "$OUT" "sample prediction: 6\.3, 3\.3, 6\.0, 2\.5 -> virginica" "and a sample prediction"
# Only this test's server counts: other checkouts may run this test at once.
for pid in $(pgrep -f "serve.py 0"); do readlink "/proc/$pid/cwd"; done | grep -q "^$TEST_DIR/"
is "$?" 1 "the model server is stopped afterwards"

mlx -C recipes/quickstart recipe quickstart.lua
is "$RC" 0 "a second run succeeds"
like "$ERR" "pipeline 'iris': 5 up to date" "and runs no step again"
like "$OUT" "production: already iris:1" "production stays where it was"

mlx -C recipes/quickstart recipe quickstart.lua -p lr=1.0
is "$RC" 0 "a new learning rate deploys"
like "$OUT" "model iris version 2 registered" "as a new model version"
like "$OUT" "production model: iris:2 " "which becomes production"
mlx -C recipes/quickstart model show iris@production
like "$OUT" "lr" "the lineage shows the params"
like "$OUT" "data/iris.csv" "and the input data"
like "$OUT" "$(sha256sum recipes/quickstart/data/iris.csv | cut -c1-12)" "with its hash"
mlx -C recipes/quickstart runs --filter "params.lr = 1 and status = 'FINISHED'" --json
like "$OUT" "pipeline.lua" "runs are found by their params"

# Param changes and reverts of the pipeline alone: staging always names the
# model that the current params produce, though the run-cache restores it.
staging_is_workspace_model() {
	mlx -C recipes/quickstart model show iris@staging --json
	printf '%s' "$OUT" | grep -q "$(sha256sum recipes/quickstart/work/model.json | cut -d' ' -f1)"
}
for lr in 1.0 0.5 1.0 0.25 0.5; do
	mlx -C recipes/quickstart recipe pipeline.lua -p lr=$lr
	rc=$RC last_err=$ERR
	[ "$rc" -eq 0 ] && staging_is_workspace_model
	is "$?" 0 "after lr=$lr, iris@staging is the model the current params produced"
done
like "$last_err" "restored train from the run-cache" "(the last of them restored the model from the run-cache)"
mlx -C recipes/quickstart model ls
like "$OUT" "^iris +3 " "one version per distinct model, none registered twice"

mlx -C recipes/quickstart recipe quickstart.lua -p min_accuracy=0.99
is "$RC" 1 "a model below the gate fails the quickstart"
like "$ERR" "step 'gate' failed: accuracy 0\.9[0-9]+ is below the gate \(min_accuracy = 0\.99\)" "saying why"
mlx -C recipes/quickstart model ls
like "$OUT" "^iris +3 +3 +production=2 staging=1" "nothing new is registered and production is unchanged"

done_testing
