#!/usr/bin/env bash
# Data that arrives with a clone, a merge or a pull (mlx.lock, a manifest, a
# run-cache entry) never makes mlx write outside the project, into .git/ or
# .mlx/, or through a symlink; nor does a recipe whose out passes through a
# symlinked directory. Each case is an attack that once worked.
. "$(dirname "$0")/tap.sh"

outside=$(mktemp -d "${TMPDIR:-/tmp}/mlx-e2e-outside-XXXXXX")
trap 'rm -rf "$TEST_DIR" "$outside"' EXIT
echo "keep me" >"$outside/victim.txt"
sha256sum "$outside/victim.txt" >"$TEST_DIR/victim.sha"

outside_untouched() { # the directory outside holds only the victim, intact
	[ "$(ls -A "$outside")" = "victim.txt" ] && sha256sum --quiet -c "$TEST_DIR/victim.sha"
}

# A project whose store holds a "payload" object: a script that would run
# as a git hook, and its id.
new_project() {
	rm -rf "$TEST_DIR/p" && mkdir "$TEST_DIR/p" && cd "$TEST_DIR/p" || exit 1
	git init -q .
	"$MLX" init >/dev/null
	printf '#!/bin/sh\ntouch "%s/pwned"\n' "$TEST_DIR" >payload.sh
	chmod +x payload.sh
	"$MLX" add payload.sh >/dev/null
	payload=$(sha256sum payload.sh | cut -d' ' -f1)
	size=$(stat -c %s payload.sh)
}

lock_with() { # PATH [TYPE [HASH [SIZE]]] — a crafted lock pinning PATH
	local type=${2:-file} hash=${3:-$payload} sz=${4:-$size}
	if [ "$type" = dir ]; then
		printf '{"version": 1, "artifacts": {"%s": {"type": "dir", "hash": "%s", "size": %s, "files": 1}}}\n' \
			"$1" "$hash" "$sz" >mlx.lock
	else
		printf '{"version": 1, "artifacts": {"%s": {"type": "file", "hash": "%s", "size": %s, "mode": "755"}}}\n' \
			"$1" "$hash" "$sz" >mlx.lock
	fi
}

# ---- a crafted mlx.lock --------------------------------------------------
new_project
lock_with .git/hooks/post-checkout
mlx checkout
is "$RC" 2 "a lock pinning .git/hooks/post-checkout is refused (exit 2)"
like "$ERR" "mlx.lock: artifact .git/hooks/post-checkout: path inside .git/" "the message names the file, the path and why"
[ ! -e .git/hooks/post-checkout ]
is "$?" 0 "no git hook was written"
mlx status
is "$RC" 2 "mlx status refuses the same lock"

lock_with .mlx/config.local.lua
mlx checkout
is "$RC" 2 "a lock pinning .mlx/config.local.lua is refused"
[ ! -e .mlx/config.local.lua ]
is "$?" 0 "mlx's own config was not written"

lock_with ../outside.sh
mlx checkout
is "$RC" 2 "a lock pinning ../outside.sh is refused"
like "$ERR" "artifact ../outside.sh: path leaves the project" "and says the path leaves the project"
[ ! -e ../outside.sh ]
is "$?" 0 "nothing was written beside the project"

lock_with 'sub/.GIT/config'
mlx checkout
is "$RC" 2 "a nested .git in any letter case is refused"

ln -s "$outside" link
lock_with link/victim.txt
mlx checkout --force
is "$RC" 2 "a lock path through a symlinked directory is refused"
like "$ERR" "link is a symbolic link" "and names the symlink"
outside_untouched
is "$?" 0 "the file behind the symlink is untouched"
rm link

# A directory whose "manifest" is any ordinary added file with a '../' line.
new_project
printf '%s %s 644 ../../pwned-by-manifest\n' "$payload" "$size" >evil.txt
"$MLX" add evil.txt >/dev/null
manifest=$(sha256sum evil.txt | cut -d' ' -f1)
lock_with data dir "$manifest" "$size"
mlx checkout
isnt_zero=$([ "$RC" -ne 0 ] && echo yes)
is "$isnt_zero" yes "a manifest line with ../ is refused"
like "$ERR" "manifest line 1: \.\./\.\./pwned-by-manifest: path leaves the project" "naming the line and the path"
[ ! -e "$TEST_DIR/pwned-by-manifest" ] && [ ! -e data ]
is "$?" 0 "nothing was written, inside or outside"
[ ! -e "$TEST_DIR/pwned" ]
is "$?" 0 "no payload ever ran"

# ---- an object replaced by a symlink to a file outside -----------------------
new_project
echo "secret outside" >"$outside/secret.txt"
obj=.mlx/cache/objects/${payload:0:2}/${payload:2}
chmod u+w "$(dirname "$obj")"
rm -f "$obj" && ln -s "$outside/secret.txt" "$obj"
rm payload.sh
mlx checkout
[ "$RC" -ne 0 ] && [ ! -e payload.sh ]
is "$?" 0 "checkout does not read an object through a symlink in the store"
like "$ERR" "not in the store" "it reports the object as missing"
for s in hardlink symlink; do
	printf 'return { cache = { link = "%s" } }\n' "$s" >.mlx/config.local.lua
	mlx checkout
	[ "$RC" -ne 0 ] && [ ! -e payload.sh ]
	is "$?" 0 "nor with the $s link strategy"
done
rm -f .mlx/config.local.lua "$outside/secret.txt"

# ---- a recipe whose out passes through a symlinked directory ---------------
new_project
ln -s "$outside" link
cat >pipeline.lua <<'LUA'
local p = require("mlx").pipeline "attack"
p:step "write" { outs = { "link/victim.txt" }, cmd = "echo overwritten > link/victim.txt" }
return p
LUA
mlx recipe pipeline.lua
is "$RC" 2 "a step whose out passes through a symlinked directory is refused (exit 2)"
like "$ERR" "step 'write': out link/victim.txt: link is a symbolic link" "naming the step, the out and the symlink"
outside_untouched
is "$?" 0 "the file behind the symlink was neither deleted nor written"

# The same out, once a real directory, later replaced by a symlink: the
# run-cache must not restore through it either.
rm link && mkdir link
mlx recipe pipeline.lua
is "$RC" 0 "with a real directory the step runs"
rm -r link && ln -s "$outside" link
mlx recipe pipeline.lua
is "$RC" 2 "after the directory became a symlink, the step is refused again"
outside_untouched
is "$?" 0 "and nothing was restored behind the symlink"
rm link

# An out or metrics file inside .git/ or .mlx/ is not a valid declaration.
cat >bad.lua <<'LUA'
local p = require("mlx").pipeline "bad"
p:step "hook" { outs = { ".git/hooks/pre-commit" }, cmd = "true" }
return p
LUA
mlx recipe bad.lua
is "$RC" 2 "an out under .git/ is refused at declaration"
like "$ERR" "bad.lua:2: step 'hook': out .git/hooks/pre-commit: path inside .git/" "naming the recipe line"

# ---- a crafted run-cache entry -----------------------------------------------
new_project
mkdir -p lib
echo 'return 1' >lib/x.lua
cat >pipeline.lua <<'LUA'
local p = require("mlx").pipeline "rc"
p:step "make" { outs = { "out.txt" }, cmd = "echo made > out.txt" }
return p
LUA
"$MLX" recipe pipeline.lua >/dev/null 2>&1
entry=$(find .mlx/cache/runs -name '*.jsonl' | head -1)
[ -n "$entry" ]
is "$?" 0 "the step left a run-cache segment"
# Rewritten as a newer segment, named by the hash of its new bytes as mlx
# names them, so that it reads as sound and is the entry used.
python3 - "$entry" "$payload" "$size" <<'PY'
import hashlib, json, os, sys
path, payload, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
entry = json.loads(open(path).readline())
rec = {"type": "file", "hash": payload, "size": size, "mode": "755"}
entry["outs"]["../outside-rc.txt"] = rec
entry["outs"][".git/hooks/pre-push"] = rec
entry["outs"]["lib/x.lua"] = rec
text = (json.dumps(entry) + "\n").encode()
name = "%012x-%s.jsonl" % (int(os.path.basename(path)[:12], 16) + 1, hashlib.sha256(text).hexdigest())
open(os.path.join(os.path.dirname(path), name), "wb").write(text)
PY
rm out.txt
mlx recipe pipeline.lua
is "$RC" 0 "a run with a crafted run-cache entry still succeeds"
like "$ERR" "run-cache entry [0-9a-f]+ names .*which step 'make' does not declare; ignored" "the entry is refused with a warning"
is "$(cat out.txt)" "made" "the step ran instead of being restored"
[ ! -e ../outside-rc.txt ] && [ ! -e .git/hooks/pre-push ] && [ "$(cat lib/x.lua)" = "return 1" ]
is "$?" 0 "no extra file was restored: outside, in .git/ or in lib/"

done_testing
