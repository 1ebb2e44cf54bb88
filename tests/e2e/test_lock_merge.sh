#!/usr/bin/env bash
# Two teammates' branches merged by git: mlx init makes git merge mlx.lock
# entry by entry (mlx lock merge as its merge driver) and .gitignore with
# the union driver; a clone without the driver resolves a conflicted lock
# with 'mlx lock merge'; both sides changing one file is a conflict that
# says so, never a side silently dropped.
. "$(dirname "$0")/tap.sh"
export GIT_AUTHOR_NAME=Ada GIT_AUTHOR_EMAIL=ada@example.org
export GIT_COMMITTER_NAME=Ada GIT_COMMITTER_EMAIL=ada@example.org
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1

git init -q --bare -b main origin.git
git clone -q origin.git a 2>/dev/null
cd a || exit 1
git checkout -q -b main
mlx init
is "$RC" 0 "mlx init in a git repository"
like "$OUT" "git merges mlx.lock with 'mlx lock merge'" "says that git merges mlx.lock with mlx"
is "$(cat .gitattributes)" "mlx.lock merge=mlx-lock
.gitignore merge=union" ".gitattributes names the drivers"
like "$(git config merge.mlx-lock.driver)" "/mlx' lock merge %O %A %B" "the driver is in the repository's config"
mlx init
is "$(grep -c mlx.lock .gitattributes)" 1 "mlx init again adds no second line"

mkdir data
for i in 1 2 3; do echo "row $i" >"data/f$i.txt"; done
cat >p.lua <<'LUA'
local p = require("mlx").pipeline "p"
p:params { scale = 2 }
p:step "prep" { deps = { "data/" }, outs = { "work/prep.txt" }, cmd = "mkdir -p work && cat data/*.txt > work/prep.txt" }
p:step "train" { deps = { "work/prep.txt" }, outs = { "work/model.txt" }, params = { "scale" },
  cmd = "echo ${scale} | cat - work/prep.txt > work/model.txt" }
return p
LUA
"$MLX" add data >/dev/null
"$MLX" recipe p.lua 2>/dev/null
"$MLX" remote add origin "$TEST_DIR/store" >/dev/null
git add -A && git commit -qm v1 && "$MLX" push >/dev/null && git push -q origin main

# Both branches pin new files beside each other, add a file to data/ and
# re-run the pipeline.
git checkout -q -b other
echo z >zzz.bin && echo 4 >data/f4.txt
"$MLX" add zzz.bin data >/dev/null && "$MLX" recipe p.lua 2>/dev/null
git add mlx.lock .gitignore && git commit -qm "other: zzz.bin, f4"
git checkout -q main && "$MLX" checkout >/dev/null
echo a >aaa.bin && echo 0 >data/f0.txt
"$MLX" add aaa.bin data >/dev/null && "$MLX" recipe p.lua 2>/dev/null
git add mlx.lock .gitignore && git commit -qm "main: aaa.bin, f0"
git merge -q other >"$TAP_CAPTURE/merge" 2>&1
is "$?" 0 "git merges the two branches without a conflict"
like "$(cat "$TAP_CAPTURE/merge")" "artifact data: files changed on both sides, merged file by file \(5 files\)" \
	"the driver says it merged data/ file by file"
like "$(cat "$TAP_CAPTURE/merge")" "step p/prep: re-run on both sides; kept ours" "and which step keeps our record"
is "$(git status --porcelain)" "" "nothing is left unmerged"
"$MLX" lua -e 'local l = require("mlx.lock").read(require("mlx.fs").cwd())
  print(l.artifacts["aaa.bin"] ~= nil, l.artifacts["zzz.bin"] ~= nil, l.artifacts.data.files)' >"$TAP_CAPTURE/l"
is "$(cat "$TAP_CAPTURE/l")" "true	true	5" "mlx.lock pins both new files and data/ with the files of both sides"
is "$(grep '^/' .gitignore | tr '\n' ' ')" "/aaa.bin /data /zzz.bin " ".gitignore's block has the lines of both sides, once each"
is "$(git ls-files aaa.bin zzz.bin)" "" "neither new file is in git"
mlx checkout
is "$RC" 0 "mlx checkout after the merge"
is "$(ls data | tr '\n' ' ')" "f0.txt f1.txt f2.txt f3.txt f4.txt " "brings the files of both sides into data/"
mlx recipe p.lua
is "$RC" 0 "the recipe runs on the merged data"
like "$ERR" "ran prep" "prep runs again: its deps are neither side's"
"$MLX" status --check >/dev/null 2>&1
is "$?" 0 "the workspace then matches mlx.lock"
git commit -qam "re-run after the merge"
"$MLX" push >/dev/null && git push -q origin main

# One file changed on both sides: a conflict, ours kept, the file named.
git checkout -q -b left && echo left >data/f1.txt && "$MLX" add data >/dev/null && git commit -qam left
git checkout -q main && "$MLX" checkout >/dev/null && echo right >data/f1.txt && "$MLX" add data >/dev/null && git commit -qam right
ours=$(git show HEAD:mlx.lock)
git merge -q left >"$TAP_CAPTURE/merge" 2>&1
is "$?" 1 "a file both sides changed stops the merge"
like "$(cat "$TAP_CAPTURE/merge")" "mlx: error: mlx.lock: artifact data: changed on both sides \(ours: dir [0-9a-f]{8}, theirs: dir [0-9a-f]{8}; data/f1.txt changed on both sides\); kept ours: put the data you want at data, run 'mlx add data' and 'git add mlx.lock'" \
	"one line names the file and what to do"
is "$(git status --porcelain mlx.lock)" "UU mlx.lock" "git marks mlx.lock unmerged"
is "$(cat mlx.lock)" "$ours" "mlx.lock holds our side, valid"
echo both >data/f1.txt
mlx add data
is "$RC" 0 "mlx add pins the data chosen"
git add mlx.lock && git commit -qm "merge left"
is "$?" 0 "and the merge is committed"

mlx lock merge
is "$RC" 2 "mlx lock merge outside a conflict exits 2"
is "$ERR" "mlx: error: $(pwd -P)/mlx.lock is not in a git merge conflict (git has no our side of it); nothing to merge" \
	"saying so"

# A driver that cannot be run leaves git's conflict markers, not our side.
git config merge.mlx-lock.driver "/nonexistent/mlx lock merge %O %A %B || { rc=\$?; [ \$rc -lt 126 ] && exit \$rc; git merge-file %A %O %B; }"
git checkout -q -b gone && echo g >g.bin && "$MLX" add g.bin >/dev/null && git add mlx.lock .gitignore && git commit -qm g
git checkout -q main && "$MLX" checkout >/dev/null && echo h >h.bin && "$MLX" add h.bin >/dev/null && git add mlx.lock .gitignore && git commit -qm h
git merge -q gone >/dev/null 2>&1
like "$(grep -c '^<<<<<<<' mlx.lock)" "^[1-9]" "a missing mlx leaves conflict markers in mlx.lock"
mlx status
is "$RC" 2 "which mlx status names (exit 2)"
like "$ERR" "unresolved git merge conflict; merge it with 'mlx lock merge'" "advising mlx lock merge"
mlx lock merge
is "$RC" 0 "mlx lock merge merges the sides git left in its index"
is "$OUT" "merged mlx.lock; mark it resolved with 'git add mlx.lock', then 'mlx pull' and 'mlx recipe RECIPE'" \
	"and says what comes next"
"$MLX" lua -e 'local l = require("mlx.lock").read(require("mlx.fs").cwd())
  print(l.artifacts["g.bin"] ~= nil, l.artifacts["h.bin"] ~= nil)' >"$TAP_CAPTURE/l"
is "$(cat "$TAP_CAPTURE/l")" "true	true" "both sides' files are pinned"
git add mlx.lock && git commit -qm "merge gone"
"$MLX" push >/dev/null && git push -q origin main
"$MLX" init >/dev/null

# A teammate's clone: its data/ changes reach the remote and git; the merge
# here fetches the manifest it lacks from the remote.
cd "$TEST_DIR" && git clone -q origin.git b && cd b || exit 1
"$MLX" pull >/dev/null 2>&1
git checkout -q -b teammate && echo t >data/t.txt && "$MLX" add data >/dev/null
git commit -qam "teammate: t.txt" && "$MLX" push >/dev/null && git push -q origin teammate
cd "$TEST_DIR/a" || exit 1
echo m >data/m.txt && "$MLX" add data >/dev/null && git commit -qam "m.txt"
git fetch -q origin
git merge -q origin/teammate >"$TAP_CAPTURE/merge" 2>&1
is "$?" 0 "a teammate's data/ merges with ours"
like "$(cat "$TAP_CAPTURE/merge")" "artifact data: files changed on both sides, merged file by file" \
	"their manifest fetched from the remote"
mlx pull
is "$RC" 0 "mlx pull brings their files"
[ -f data/t.txt ] && [ -f data/m.txt ]
is "$?" 0 "data/ holds both sides' new files"

done_testing
