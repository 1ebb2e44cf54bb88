#!/usr/bin/env bash
# docs/tutorial.md as a new user follows it: every command of its section
# "2. The pipeline" is run in a fresh copy of the quickstart, and what it
# prints (stdout and stderr, in order) must be what the tutorial shows,
# times aside.
. "$(dirname "$0")/tap.sh"
: "${MLX_SOURCE_ROOT:?set MLX_SOURCE_ROOT}"

mkdir -p recipes/quickstart
cp "$MLX_SOURCE_ROOT/recipes/deploy.lua" "$MLX_SOURCE_ROOT/recipes/iris.smoke.json" recipes/
(cd "$MLX_SOURCE_ROOT/recipes/quickstart" && cp -r .mlx .gitignore data lib pipeline.lua quickstart.lua serve.py \
	"$TEST_DIR/recipes/quickstart/")
rm -rf recipes/quickstart/.mlx/cache recipes/quickstart/.mlx/*.db* recipes/quickstart/.mlx/logs recipes/quickstart/.mlx/tmp

# Prints, per command of the section, its line and the expected output,
# as records separated by NUL: "ARGS\nEXPECTED".
python3 - "$MLX_SOURCE_ROOT/docs/tutorial.md" >"$TAP_CAPTURE/cases" <<'PY'
import sys
text = open(sys.argv[1]).read()
section = text.split("## 2. The pipeline", 1)[1].split("\n## ", 1)[0]
blocks = section.split("```")[1::2]
cases = []
for block in blocks:
    for line in block.strip("\n").split("\n"):
        if line.startswith("$ ../../build/mlx "):
            cases.append([line[len("$ ../../build/mlx "):], []])
        elif line.startswith("$ "):
            continue  # cd: the test runs in the copy
        elif cases:
            cases[-1][1].append(line)
for args, lines in cases:
    sys.stdout.write(args + "\n" + "\n".join(lines) + "\0")
PY

# Times vary: "(0.1 s)" becomes "(T s)", and "ran train in 0.3 s" (a step
# that took a while, on a loaded machine any) "ran train".
norm() { sed -E -e 's/\([0-9]+\.[0-9] s\)/(T s)/g' -e 's/^(mlx: ran [^ ]+) in [0-9.]+ s$/\1/'; }

n=0
while IFS= read -r -d '' case; do
	args=${case%%$'\n'*}
	expected=${case#*$'\n'}
	# shellcheck disable=SC2086 # the tutorial's words, split as a shell would
	got=$(cd recipes/quickstart && "$MLX" $args 2>&1 | norm)
	expected=$(printf '%s' "$expected" | norm)
	if [ "$got" = "$expected" ]; then
		tap_result 0 "tutorial: mlx $args"
	else
		tap_result 1 "tutorial: mlx $args"
		printf '%s\n' "#   got:" "$got" "#   expected:" "$expected" | sed 's/^/#   /'
	fi
	n=$((n + 1))
done <"$TAP_CAPTURE/cases"
is "$n" 6 "the section has its six commands"

done_testing
