#!/usr/bin/env bash
# Models through a remote when the registry is shared (issue 13 with issue
# 14): with PostgreSQL tracking, a fresh clone knows the models machine A
# registered, so `mlx pull clf@production` there fetches the model's bytes,
# and a push or pull without targets includes every registered version. With
# SQLite tracking the registry stays on machine A: the clone's pull of a
# model says where it is and what shares it.
#
# Starts its own PostgreSQL (tap.sh, MLX_TEST_BACKEND=postgresql; a TAP skip
# where PostgreSQL is not installed) and uses a directory remote.
MLX_TEST_BACKEND=postgresql
. "$(dirname "$0")/tap.sh"
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.com GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.com

# --- machine A: data, a model, a push ----------------------------------------
mkdir a && cd a || exit 1
git init -q .
"$MLX" init >/dev/null
printf 'id,label\n1,a\n2,b\n' >data.csv
"$MLX" add data.csv >/dev/null
mlx remote add origin "$TEST_DIR/store"
printf 'weights of machine A\n' >model.bin
model_hash=$(sha256sum model.bin | cut -d' ' -f1)
mlx model register clf model.bin --no-run -a production
is "$RC" 0 "machine A registers clf:1 as production in PostgreSQL"
mlx push --dry-run
is "$OUT" "would push 2 objects to remote 'origin'" "a push without targets counts the pinned data and the registered model"
mlx push
like "$OUT" "^pushed 2 objects \(" "and sends both"
[ -e "$TEST_DIR/store/objects/${model_hash:0:2}/${model_hash:2}" ]
is "$?" 0 "the model's object is on the remote"
mlx status --remote
like "$ERR" "all 2 pinned objects are in the store and on remote 'origin'" "status --remote counts the model too"
git add -A && git commit -qm "data, remote"
cd .. || exit 1

# --- machine B: a fresh clone pulls the model by its alias --------------------
git clone -q a b && cd b || exit 1
[ ! -e .mlx/cache ] && [ ! -e .mlx/runs.db ]
is "$?" 0 "the clone has no store and no runs database"
MLX_TRACKING_URI="postgresql:///mlx?host=$TEST_DIR/no-server" mlx pull clf@production
is "$RC" 1 "a pull of a model while the tracking database does not answer is exit 1"
like "$ERR" "^mlx: error: clf@production: tracking database postgresql:///mlx\?host=$TEST_DIR/no-server: cannot connect to PostgreSQL: .*; check that the server runs and the host and port in the URI$" \
	"saying so, not that there is no such model"
mlx model get clf@production model.bin
is "$RC" 2 "before the pull, mlx model get of the model is exit 2"
is "$ERR" "mlx: error: model clf:1 (${model_hash:0:12}) is not in the store; fetch it with 'mlx pull clf@production' (from remote 'origin')" \
	"naming the pull that brings it"
mlx pull clf@production --dry-run
is "$OUT" "would fetch 1 object from remote 'origin'" "pull MODEL@ALIAS --dry-run resolves the alias through PostgreSQL"
mlx pull clf@production
is "$RC" 0 "mlx pull clf@production exits 0 in the fresh clone"
like "$OUT" "^fetched 1 object \(" "it fetches the model's object"
like "$OUT" "model clf:1 \(clf@production\) is in the store \(${model_hash:0:12}\); 'mlx model get clf@production DEST' writes it out" \
	"and says where the model is and how to get it out"
[ ! -e data.csv ]
is "$?" 0 "a model target leaves the workspace alone"
mlx model get clf@production model.bin
is "$RC" 0 "mlx model get writes it"
cmp -s model.bin "$TEST_DIR/a/model.bin"
is "$?" 0 "with machine A's bytes"
cd .. || exit 1

# --- machine C: a pull without targets brings the models too -----------------
git clone -q a c && cd c || exit 1
mlx pull
is "$RC" 0 "mlx pull without targets exits 0"
like "$OUT" "^fetched 2 objects \(" "it fetches the pinned data and the registered model"
[ -e ".mlx/cache/objects/${model_hash:0:2}/${model_hash:2}" ] && cmp -s data.csv "$TEST_DIR/a/data.csv"
is "$?" 0 "the model is in the store, the data in the workspace"
cd .. || exit 1

# --- SQLite: the registry stayed on the machine that registered --------------
mkdir s && cd s || exit 1
git init -q .
MLX_TRACKING_URI='' "$MLX" init >/dev/null
MLX_TRACKING_URI='' "$MLX" remote add origin "$TEST_DIR/store-s" >/dev/null
printf 'weights\n' >model.bin
MLX_TRACKING_URI='' "$MLX" model register clf model.bin --no-run -a production >/dev/null
MLX_TRACKING_URI='' mlx push
like "$OUT" "^pushed 1 object" "with SQLite tracking, a push without targets sends the model too"
git add -A && git commit -qm s
cd .. && git clone -q s s2 && cd s2 || exit 1
MLX_TRACKING_URI='' mlx pull clf@production
is "$RC" 2 "a fresh clone with SQLite tracking cannot resolve clf@production (exit 2)"
like "$ERR" "clf@production is not a tracked path, .* a model registered on another machine is in its \.mlx/runs\.db: share the registry with PostgreSQL tracking \(docs/tracking\.md, \"Backends\"\)$" \
	"and says where the registry is and what shares it"
cd .. || exit 1

done_testing
