#!/usr/bin/env bash
# mlx add / status / checkout / gc / fsck as a user drives them.
. "$(dirname "$0")/tap.sh"

lock_field() { # PATH FIELD — a field of an artifact in mlx.lock
	"$MLX" lua -e "local l = require('mlx.json').load('mlx.lock'); print(l.artifacts['$1'].$2)"
}

mlx add data.csv
is "$RC" 2 "add outside a project exits 2"
is "$ERR" "mlx: error: not in an mlx project (run 'mlx init')" "and says how to make one"

"$MLX" init >/dev/null
mkdir -p data/images/sub
printf 'a,b\n1,2\n' >data.csv
for i in 1 2 3 4 5; do head -c $((i * 1000)) /dev/urandom >"data/images/img$i.png"; done
printf 'x' >data/images/sub/deep.txt
chmod +x data/images/sub/deep.txt

mlx add data.csv data/images
is "$RC" 0 "add of a file and a directory exits 0"
like "$OUT" "added +data.csv" "reports the file"
like "$OUT" "added +data/images/ \(6 files" "reports the directory and its file count"
is "$(lock_field data.csv hash)" "$(sha256sum data.csv | cut -d' ' -f1)" "the lock pins the file's sha256sum"
is "$(lock_field data/images hash)" "$("$MLX" hash data/images | cut -d' ' -f1)" "and the directory's manifest id, as mlx hash prints it"
obj=.mlx/cache/objects/$(lock_field data.csv hash | cut -c1-2)/$(lock_field data.csv hash | cut -c3-)
is "$(stat -c %a "$obj")" "444" "objects are read-only"
is "$(cat "$obj")" "$(cat data.csv)" "and hold the file's bytes"
is "$(find .mlx/cache/objects -type f | wc -l)" "8" "one object per file, plus the manifest"
like "$(cat mlx.lock)" '"version": 1' "the lock has a format version"

mlx status --check
is "$RC" 0 "status --check of an unchanged workspace exits 0"
is "$OUT" "" "and prints no changes"

printf 'changed' >data/images/img1.png
rm data/images/img2.png
printf 'new' >data/images/new.png
rm data.csv
mlx status
is "$RC" 0 "status without --check exits 0"
like "$OUT" "modified: data/images/ \(1 added, 1 modified, 1 deleted\)" "names the modified directory with counts"
like "$OUT" "modified: data/images/img1.png" "and the changed file"
like "$OUT" "missing: +data.csv" "and the missing file"
mlx status --check
is "$RC" 1 "status --check exits 1 when anything changed"

mlx checkout
is "$RC" 2 "checkout refuses to overwrite local edits not in the store"
like "$ERR" "data/images has local changes that are not stored \(img1.png, new.png\)" "naming them"
is "$(cat data/images/img1.png)" "changed" "and leaves them alone"
[ ! -e data.csv ]
is "$?" 0 "changing nothing else either"
mlx checkout data.csv
is "$RC" 0 "checkout of one path works meanwhile"
like "$OUT" "restored +data.csv" "and reports it"
is "$(cat data.csv)" "$(printf 'a,b\n1,2\n')" "restoring its content"
mlx checkout --force
is "$RC" 0 "checkout --force discards the local edits"
like "$OUT" "updated +data/images \(2 files written, 1 removed\)" "and says what it changed"
mlx status --check
is "$RC" 0 "after which the workspace matches mlx.lock"
is "$(stat -c %a data/images/sub/deep.txt)" "755" "the executable bit is restored"

# Refusals: each names the path and exits 2, never hangs.
ln -s data.csv link.csv
mlx add link.csv
is "$RC" 2 "a symlink is refused"
like "$ERR" "link.csv: it is a symbolic link" "with the rule"
ln -s ../data.csv data/images/inner-link
mlx add data/images
like "$ERR" "data/images/inner-link: is a symbolic link" "also inside a directory"
rm data/images/inner-link
mkfifo pipe
timeout 10 "$MLX" add pipe >/dev/null 2>err.txt
is "$?" 2 "a fifo is refused without waiting on it"
like "$(cat err.txt)" "pipe: not a regular file or directory" "and named"
mkfifo data/images/pipe
timeout 10 "$MLX" add data/images >/dev/null 2>err.txt
like "$(cat err.txt)" "data/images/pipe: is a fifo" "also inside a directory"
rm data/images/pipe
mlx add ../outside.csv
is "$RC" 2 "a path outside the project is refused"
like "$ERR" "outside the project" "and says so"
mlx add data/images/img1.png
is "$RC" 0 "a file inside a tracked directory updates the directory"
like "$OUT" "unchanged data/images/ \(" "which is reported (here unchanged)"
mlx add .mlx/config.lua
is "$RC" 2 "mlx's own files cannot be tracked"
if command -v setpriv >/dev/null && [ "$(id -u)" -eq 0 ]; then
	# Root reads everything: run mlx as nobody in a project nobody can use.
	priv=$(mktemp -d /tmp/mlx-e2e-priv-XXXXXX)
	mkdir -p "$priv/.mlx"
	echo secret >"$priv/secret.bin"
	chmod 000 "$priv/secret.bin"
	chmod -R a+rwX "$priv/.mlx" && chmod a+rwx "$priv"
	(cd "$priv" && setpriv --reuid=65534 --regid=65534 --clear-groups "$MLX" add secret.bin >/dev/null 2>"$TEST_DIR/err.txt")
	is "$?" 1 "an unreadable file fails the add"
	like "$(cat err.txt)" "secret.bin: Permission denied" "naming the file"
	rm -rf "$priv"
else
	skip "an unreadable file fails the add" "needs root and setpriv to make a file unreadable"
	skip "naming the file" "needs root and setpriv to make a file unreadable"
fi

# A flipped byte in an object is caught by fsck and by checkout.
mlx fsck
is "$RC" 0 "fsck of a sound store exits 0"
like "$OUT" "checked 8 objects: 0 corrupt, 0 missing" "and counts the objects"
hash3=$(sha256sum data/images/img3.png | cut -d' ' -f1)
obj3=.mlx/cache/objects/${hash3:0:2}/${hash3:2}
chmod u+w "$obj3"
printf '\xff' | dd of="$obj3" bs=1 seek=10 conv=notrunc 2>/dev/null
mlx fsck
is "$RC" 1 "fsck exits 1 on a corrupt object"
like "$OUT" "corrupt +$hash3" "naming it"
[ -f ".mlx/cache/quarantine/$hash3" ] && [ ! -e "$obj3" ]
is "$?" 0 "and moves it to quarantine"
mlx fsck
like "$OUT" "missing +$hash3 \(needed by mlx.lock\)" "after which the lock's need for it is reported"
"$MLX" add data/images >/dev/null
[ -f "$obj3" ]
is "$?" 0 "and adding the intact file again restores it"
cp data.csv data.bak && "$MLX" add data.csv >/dev/null
obj=.mlx/cache/objects/$(lock_field data.csv hash | cut -c1-2)/$(lock_field data.csv hash | cut -c3-)
chmod u+w "$obj" && printf 'A' | dd of="$obj" bs=1 seek=0 conv=notrunc 2>/dev/null
rm data.csv
mlx checkout data.csv
is "$RC" 1 "checkout of a corrupt object fails"
like "$ERR" "object [0-9a-f]{64} for .*data.csv is corrupt \(moved to .mlx/cache/quarantine/\)" "naming the object and the path"
[ ! -e data.csv ] && [ -z "$(ls -A data | grep -v -e images -e "^.gitignore$")" ]
is "$?" 0 "and writes nothing in the workspace"
mv data.bak data.csv

# gc keeps what the lock, the run-cache and registered models refer to.
"$MLX" add data.csv >/dev/null
printf 'v1' >model.bin && "$MLX" add model.bin >/dev/null
v1=$(lock_field model.bin hash)
printf 'v2' >model.bin && "$MLX" add model.bin >/dev/null
printf 'cached' >out.bin && cached=$(sha256sum out.bin | cut -d' ' -f1)
printf 'registered' >reg.bin && registered=$(sha256sum reg.bin | cut -d' ' -f1)
"$MLX" add out.bin reg.bin >/dev/null
"$MLX" lua -e 'local l = require("mlx.lock"); assert(l.update(require("mlx.fs").cwd(), "artifacts",
  function(a) a["out.bin"] = nil; a["reg.bin"] = nil end))'
rm out.bin reg.bin # left behind, mlx status would name them (an earlier lock pinned them)
mkdir -p ".mlx/cache/runs/ab"
printf '{"version": 1, "key": "ab12", "outs": {"out.bin": {"type": "file", "hash": "%s", "size": 6, "mode": "644"}}}\n' \
	"$cached" >.mlx/cache/runs/ab/ab12.json
if command -v sqlite3 >/dev/null; then
	sqlite3 .mlx/runs.db "CREATE TABLE model_versions(name, version, artifact_hash, run, created);
		INSERT INTO model_versions VALUES ('m', 1, '$registered', 'r1', 0);"
fi
mlx gc --dry-run
is "$RC" 0 "gc --dry-run exits 0"
like "$OUT" "would remove $v1  2 B" "lists an object only an old lock version used"
like "$OUT" "would remove [0-9]+ objects?, " "and the count and bytes"
[ -e ".mlx/cache/objects/${v1:0:2}/${v1:2}" ]
is "$?" 0 "and deletes nothing"
mlx gc
is "$RC" 0 "gc exits 0"
[ ! -e ".mlx/cache/objects/${v1:0:2}/${v1:2}" ]
is "$?" 0 "the unreferenced object is gone"
[ -e ".mlx/cache/objects/${cached:0:2}/${cached:2}" ]
is "$?" 0 "an object of the run-cache is kept"
if command -v sqlite3 >/dev/null; then
	[ -e ".mlx/cache/objects/${registered:0:2}/${registered:2}" ]
	is "$?" 0 "an object of a registered model version is kept"
else
	skip "an object of a registered model version is kept" "sqlite3 is not installed"
fi
mlx status --check
is "$RC" 0 "and every tracked artifact is still complete"
mlx fsck
is "$RC" 0 "fsck finds the store sound after gc"

# A corrupt lock file is bad input: exit 2, naming the file.
cp mlx.lock lock.bak
printf '{"version": 1, "artifacts": {"x": {"type": "file"}}}' >mlx.lock
mlx status
is "$RC" 2 "a corrupt lock exits 2"
like "$ERR" "mlx.lock: artifact \"x\": hash must be 64 lowercase hex digits" "naming the file and the problem"
printf '{"version": 1,' >mlx.lock
mlx add data.csv
is "$RC" 2 "an unparsable lock exits 2"
like "$ERR" "mlx.lock:1:[0-9]+: invalid JSON" "with line and column"
# A malformed pipeline section too, though status and gc load no pipeline:
# gc must not delete what the lock's outs were meant to keep.
printf '{"version": 1, "steps": {"p": {"s": {"key": "%s", "outs": {"m.json": {"type": "file", "hash": "xyz", "size": 1, "mode": "644"}}}}}}' \
	"$(printf 'a%.0s' $(seq 64))" >mlx.lock
mlx status
is "$RC $ERR" "2 mlx: error: $TEST_DIR/mlx.lock: step p/s: out \"m.json\": hash must be 64 lowercase hex digits; fix it or restore it from git (git checkout -- mlx.lock)" \
	"a malformed steps section: status exits 2 naming it"
mlx gc --dry-run
is "$RC" 2 "and so does gc"
mv lock.bak mlx.lock

# Data that git has committed too: stored, with a warning saying how to
# untrack it in git (the .gitignore line mlx writes does not).
mkdir -p gitproj/sub && cd gitproj && git init -q && cd sub && "$MLX" init >/dev/null
mkdir -p data/imgs && echo 1 >data/a.csv && echo 2 >data/imgs/x && echo 3 >new.csv
git add data && git -c user.name=t -c user.email=t@example.com commit -qm data
mlx add data/a.csv data/imgs new.csv
is "$RC" 0 "adding data that git has committed works"
is "$ERR" "mlx: warning: data/a.csv is committed to git too; untrack it there with 'git rm -r --cached data/a.csv' and commit (mlx.lock pins it, and .gitignore keeps it out of git from now on)
mlx: warning: data/imgs is committed to git too; untrack it there with 'git rm -r --cached data/imgs' and commit (mlx.lock pins it, and .gitignore keeps it out of git from now on)" \
	"with a warning for each committed path, none for the new one"
git rm -rq --cached data && git -c user.name=t -c user.email=t@example.com commit -qm "data: to mlx"
mlx add data/a.csv
is "$RC $ERR" "0 " "once untracked in git and committed, no warning"
mkdir -p more && echo 4 >more/b.csv && git add more && git -c user.name=t -c user.email=t@example.com commit -qm more
cd more && mlx add b.csv && cd ..
like "$ERR" "more/b.csv is committed to git too; untrack it there with 'git rm -r --cached b.csv' and commit" \
	"from a subdirectory, the git command names the path from there"
cd "$TEST_DIR"

# A pipeline's out is pinned by its step: adding it, a directory holding it
# or a path inside it would track it twice, and is refused.
mkdir -p outs && cd outs && "$MLX" init >/dev/null
cat >p.lua <<'EOF2'
local p = require("mlx").pipeline "p"
p:step "s" { cmd = "mkdir -p work/m && echo 1 > work/m/a && echo 2 > work/top", outs = { "work/m/", "work/top" } }
EOF2
"$MLX" recipe p.lua >/dev/null 2>&1
cp mlx.lock lock.before
mlx add work/top
is "$RC" 2 "adding a pipeline out exits 2"
is "$ERR" "mlx: error: cannot add work/top: work/top is an out of step p/s, which mlx.lock pins already; to track it by hand instead, 'mlx remove p/s' first" \
	"naming the step and what to do"
mlx add work
is "$RC" 2 "so does a directory holding outs"
mlx add work/m/a
is "$RC" 2 "and a path inside a directory out"
cmp -s mlx.lock lock.before
is "$?" 0 "and mlx.lock is untouched"
cd "$TEST_DIR"

done_testing
