#!/usr/bin/env bash
# The churn example (recipes/examples/churn) as a team uses it in CI: its
# LuaUnit tests through mlx test (TAP, JUnit XML that validates), its
# pipeline, and its check step failing on injected nulls and on drifted data
# with messages naming the column and the rule, before anything is trained.
. "$(dirname "$0")/tap.sh"
: "${MLX_SOURCE_ROOT:?set MLX_SOURCE_ROOT}"
XSD="$MLX_SOURCE_ROOT/tests/e2e/data/junit.xsd"

# The committed files of the example, as a fresh clone has them.
src="$MLX_SOURCE_ROOT/recipes/examples/churn"
mkdir -p churn/.mlx
cp "$src/.mlx/config.lua" "$src/.mlx/.gitignore" churn/.mlx/
cp -r "$src/.gitignore" "$src/data" "$src/lib" "$src/tests" "$src/pipeline.lua" "$src/generate.lua" churn/
cd churn || exit 1
git init -q && git add -A && git -c user.name=t -c user.email=t@localhost commit -qm "the example"

mlx test --junit report.xml
is "$RC" 0 "mlx test: the example's tests pass"
is "$(printf '%s\n' "$OUT" | grep -c '^ok ')" 8 "eight tests, each an ok line"
like "$OUT" "^ok [0-9] - TestPipeline.test_injected_nulls_fail_the_check_naming_column_and_rule$" "including the pipeline's own checks"
is "$(printf '%s\n' "$OUT" | tail -1)" "1..8" "and the TAP plan"
if command -v xmllint >/dev/null; then
	xmllint --noout --schema "$XSD" report.xml 2>/dev/null
	is "$?" 0 "the JUnit XML validates against the schema"
	is "$(xmllint --xpath 'string(/testsuites/@tests)' report.xml)/$(xmllint --xpath 'string(/testsuites/@failures)' report.xml)" \
		"8/0" "8 tests, no failure"
	is "$(xmllint --xpath 'string(//testsuite[2]/@name)' report.xml)" "tests/test_pipeline.lua" "a testsuite per file"
else
	skip "JUnit XML against the schema" "no xmllint"
fi

mlx recipe pipeline.lua
is "$RC" 0 "the pipeline runs"
like "$ERR" "pipeline 'churn': 4 ran" "prepare, check, train, evaluate"
like "$OUT" "^check work/train.csv: [0-9]+ rows: ok$" "the check's summary"
model=$(sha256sum work/model.json)

# Nulls injected into one column: the check fails naming column and rule.
awk -F, 'BEGIN { OFS = "," } NR > 1 && NR % 97 == 0 { $2 = "" } { print }' data/customers.csv >x && mv x data/customers.csv
mlx recipe pipeline.lua
is "$RC" 1 "injected nulls: the recipe fails"
like "$ERR" "^mlx: error: step 'check' failed: .*column 'tenure': nulls: [0-9]+ values null where nulls are not allowed \(row [0-9]+, row" \
	"naming the column, the rule, the count and example rows"
like "$OUT" "column 'tenure': nulls:" "the summary says it too"
is "$(sha256sum work/model.json)" "$model" "nothing is trained on the bad data"
git checkout -q data/customers.csv

# A drifted population: the check fails on drift, naming column and statistic.
mlx lua generate.lua data/customers.csv 3000 1 30
mlx recipe pipeline.lua
is "$RC" 1 "drifted data: the recipe fails"
like "$ERR" "column 'monthly_charges': drift psi: psi [0-9.]+ > 0.2 against data/reference.csv" "naming the column, PSI and the threshold"
like "$ERR" "column 'monthly_charges': drift ks: ks [0-9.]+ > 0.1" "and KS"
like "$OUT" "drift tenure: psi [0-9.e-]+ \(threshold 0.2\) ok" "an undrifted column passes"
mlx metrics "$("$MLX" runs --json | python3 -c 'import json, sys; print([r["id"] for r in json.load(sys.stdin) if r.get("step") == "check"][0])')"
like "$OUT" "drift.monthly_charges.psi +[0-9.]+" "drift statistics are metrics of the check's run"
is "$(sha256sum work/model.json)" "$model" "nothing is trained on drifted data"
git checkout -q data/customers.csv

# A broken model: mlx test says which test failed, exit 1, in the XML too.
sed -i 's/return { accuracy = (tp + tn) \/ n,/return { accuracy = tp \/ n,/' lib/churn.lua
mlx test tests/test_churn.lua --junit broken.xml
is "$RC" 1 "a failing test: exit 1"
like "$OUT" "^not ok [0-9] - TestModel.test_evaluate_counts_by_hand$" "named in TAP"
if command -v xmllint >/dev/null; then
	xmllint --noout --schema "$XSD" broken.xml 2>/dev/null
	is "$?" 0 "its JUnit XML validates"
	is "$(xmllint --xpath 'string(//testcase[failure]/@name)' broken.xml)" "test_evaluate_counts_by_hand" "with the failing testcase"
fi

done_testing
