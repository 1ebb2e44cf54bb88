#!/usr/bin/env bash
# Remotes: push from a project, pull into a fresh clone elsewhere, which
# then executes nothing; corrupt remote objects are caught; a killed push
# re-run sends only what is missing; concurrent pushes both reach the
# index; and data from a remote never writes outside the store and
# workspace rules.
#
# The backend is a parameter: MLX_TEST_REMOTE=dir (default), webdav or s3.
# webdav and s3 start a server with tests/helper/dav_server.sh or
# s3_server.sh (start prints export lines; stop is called on exit), whose
# MLX_TEST_REMOTE_URL (else MLX_TEST_DAV_URL / MLX_TEST_S3_URL) and
# MLX_TEST_REMOTE_OPTIONS (KEY=VALUE words; else s3_server.sh's
# MLX_TEST_S3_OPTIONS, its endpoint) name the remote; s3rver's credentials
# come as AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
. "$(dirname "$0")/tap.sh"

kind=${MLX_TEST_REMOTE:-dir}
helper=""
case "$kind" in
dir) ;;
webdav) helper=$MLX_SOURCE_ROOT/tests/helper/dav_server.sh ;;
s3) helper=$MLX_SOURCE_ROOT/tests/helper/s3_server.sh ;;
*) echo "Bail out! MLX_TEST_REMOTE must be dir, webdav or s3, not '$kind'"; exit 1 ;;
esac
server_dir=""
if [ -n "$helper" ]; then
	exports=$("$helper" start)
	rc=$?
	if [ "$rc" -eq 77 ]; then
		echo "1..0 # SKIP no $kind server (tools/install-deps.sh installs it)"
		exit 0
	fi
	[ "$rc" -eq 0 ] || { echo "Bail out! $helper start failed ($rc)"; exit 1; }
	eval "$exports"
	server_dir=${MLX_TEST_DAV_DIR:-${MLX_TEST_S3_DIR:-}}
fi
trap '[ -n "$helper" ] && "$helper" stop "$server_dir"; rm -rf "$TEST_DIR" "$TAP_CAPTURE"' EXIT
trap 'exit 130' INT TERM

case "$kind" in
dir) url=$TEST_DIR/remote ;;
webdav) url=${MLX_TEST_REMOTE_URL:-$MLX_TEST_DAV_URL} ;;
s3) url=${MLX_TEST_REMOTE_URL:-$MLX_TEST_S3_URL} ;;
esac
remote_options=()
for kv in ${MLX_TEST_REMOTE_OPTIONS:-${MLX_TEST_S3_OPTIONS:-}}; do remote_options+=(--option "$kv"); done

# new_project DIR [SUFFIX] — a git repository with mlx, data, a two-step
# pipeline and the remote (below SUFFIX, if given) as origin.
new_project() {
	mkdir -p "$1" && cd "$1" || exit 1
	git init -q .
	git config user.email test@example.com
	git config user.name test
	"$MLX" init >/dev/null
	mkdir -p data/raw
	for i in $(seq 1 20); do printf 'sample %d %s\n' "$i" "$1" >"data/raw/s$i.txt"; done
	printf 'id,label\n1,a\n2,b\n' >data/labels.csv
	cat >pipeline.lua <<'EOF'
local mlx = require "mlx"
local p = mlx.pipeline "demo"
p:step "prepare" {
  deps = { "data/raw/", "data/labels.csv" }, outs = { "work/prepared/" },
  cmd = "mkdir -p work/prepared && cat data/raw/*.txt | sort > work/prepared/all.txt && cp data/labels.csv work/prepared/",
}
p:step "count" {
  deps = { "work/prepared/" }, outs = { "work/count.txt" },
  cmd = "wc -l < work/prepared/all.txt > work/count.txt",
}
return p
EOF
	"$MLX" add data/raw data/labels.csv >/dev/null
	"$MLX" remote add origin "$url${2:+/$2}" "${remote_options[@]}" >/dev/null
}

# remote_lua CODE — runs Lua with `r`, the project's default remote (an
# mlx.transfer handle), whatever the backend.
remote_lua() {
	"$MLX" lua -e "local r = assert(require('mlx.remote').open(require('mlx.project').find_root())).r; $1"
}

# ---- push from A --------------------------------------------------------
new_project "$TEST_DIR/a"
mlx recipe pipeline.lua
is "$RC" 0 "the recipe runs in A"
like "$(cat data/.gitignore)" "^# >>> mlx" "data/.gitignore has mlx's block for the tracked data"
like "$(cat work/.gitignore)" "/count.txt" "pipeline outs are ignored by git too"
mlx push --run-cache --dry-run
like "$OUT" "^would push [0-9]+ objects and 2 run-cache entries to remote 'origin'" "--dry-run says what would be sent"
n=$(remote_lua 'local n = 0 for _ in pairs(assert(r:list("objects/"))) do n = n + 1 end print(n)')
is "$n" 0 "--dry-run sent nothing"
mlx push --run-cache
is "$RC" 0 "mlx push --run-cache exits 0"
like "$OUT" "^pushed [0-9]+ objects \([0-9.]+ [kKMB]+\), 2 run-cache entries to remote 'origin'" "it says what it sent"
mlx push --run-cache
is "$OUT" "remote 'origin' already has all 25 objects and all 2 run-cache entries" "a second push has nothing to do, and says so of the run-cache too"
mlx status --remote
like "$ERR" "all 25 pinned objects are in the store and on remote 'origin'" "status --remote agrees"
like "$ERR" "remote 'origin' \(.*\), by its index" "and names the remote it reports on"
"$MLX" remote add second "$url/second" "${remote_options[@]}" >/dev/null
mlx status -r second
like "$OUT" "unpushed: data/labels.csv \(1 object not on remote 'second'; mlx push\)" "status -r NAME reports on the remote NAME"
like "$ERR" "remote 'second' \(.*second\), by its index" "and says so"
mlx status --remote=second
like "$OUT" "unpushed: data/labels.csv \(1 object not on remote 'second'" "so does --remote=NAME"
"$MLX" remote remove second >/dev/null
mlx status -r nowhere
is "$RC" 2 "status -r with an unknown remote is exit 2"
git add -A && git commit -qm "data and pipeline"
is "$(git ls-files data work | tr '\n' ' ')" "data/.gitignore work/.gitignore " "git holds the pins, not the data nor the outs"

# ---- clone into B, pull, run: nothing executes ---------------------------
git clone -q "$TEST_DIR/a" "$TEST_DIR/b"
cd "$TEST_DIR/b" || exit 1
[ ! -e .mlx/cache ] && [ ! -e data/raw ] && [ ! -e work/count.txt ]
is "$?" 0 "the clone has no store, no data and no outs"
mlx pull --run-cache
is "$RC" 0 "mlx pull --run-cache exits 0 in the clone"
like "$OUT" "^fetched 25 objects" "it fetched every object"
mlx recipe pipeline.lua
is "$RC" 0 "the recipe runs in the clone"
like "$ERR" "pipeline 'demo': 2 up to date" "and executes nothing"
diff -r "$TEST_DIR/a/work" "$TEST_DIR/b/work" >/dev/null && diff -r "$TEST_DIR/a/data" "$TEST_DIR/b/data" >/dev/null
is "$?" 0 "B's outputs and data are byte-identical to A's"

# Without the outs in the workspace: restored from the pulled run-cache.
git clone -q "$TEST_DIR/a" "$TEST_DIR/b2" && cd "$TEST_DIR/b2" || exit 1
mlx fetch --run-cache
is "$RC" 0 "mlx fetch --run-cache exits 0"
[ ! -e work/count.txt ] && [ ! -e data/raw ]
is "$?" 0 "fetch leaves the workspace alone"
mlx checkout data/raw data/labels.csv
mlx recipe pipeline.lua
like "$ERR" "2 restored from the run-cache" "the steps are restored from the pulled run-cache, not executed"
diff -r "$TEST_DIR/a/work" "$TEST_DIR/b2/work" >/dev/null
is "$?" 0 "the restored outputs are byte-identical"
mlx fetch
is "$OUT" "the store already has all 25 objects" "a no-op fetch says so"

# ---- a corrupt object on the remote is caught ----------------------------
cd "$TEST_DIR/a" || exit 1
victim=$(sha256sum data/labels.csv | cut -d' ' -f1)
remote_lua "assert(r:write('objects/${victim:0:2}/${victim:2}', 'tampered\n', '$TEST_DIR'))"
git clone -q "$TEST_DIR/a" "$TEST_DIR/c" && cd "$TEST_DIR/c" || exit 1
mlx pull
is "$RC" 1 "a pull that meets a corrupt object exits 1"
like "$ERR" "object data/labels.csv \(${victim:0:12}\) on remote 'origin' is corrupt; not used" "the object is named, with its path"
like "$ERR" "marked bad there: 'mlx push' from a clone that has it sends it again" "and how it gets repaired"
[ ! -e ".mlx/cache/objects/${victim:0:2}/${victim:2}" ] && [ ! -e data/labels.csv ]
is "$?" 0 "the corrupt bytes entered neither the store nor the workspace"
mlx checkout data/labels.csv
like "$ERR" "not in the store; fetch it with 'mlx pull' \(from remote 'origin'\)" "checkout names mlx pull and the remote"

# ---- the repair: the mark makes A's next push send the object again ------
cd "$TEST_DIR/a" || exit 1
mlx status -r origin
like "$ERR" "remote 'origin' \(.*\), by its index" "status -r names the remote it reports on"
like "$OUT" "unpushed: data/labels.csv \(1 object marked bad \(a fetch found it corrupt or absent\) on remote 'origin'; mlx push sends it again\)" "status --remote shows the object marked bad"
mlx push
is "$RC" 0 "the next push from A exits 0"
like "$OUT" "sent again 1 object that a fetch had found corrupt or absent on remote 'origin'" "and sends the corrupt object again"
cd "$TEST_DIR/c" || exit 1
mlx pull
is "$RC" 0 "the pull in the clone now succeeds"
cmp -s data/labels.csv "$TEST_DIR/a/data/labels.csv"
is "$?" 0 "with the good bytes"
# A segment is named by the SHA-256 of its text, so one in 60 or so has
# "bad" in its hex name: only index/bad-<id> is a mark. One such segment
# (of objects the remote holds) makes sure the check below tells them apart.
seg=$(remote_lua '
local transfer = require "mlx.transfer"
local tmp = require("mlx.project").find_root() .. "/.mlx/tmp"
local held = {}
for k in pairs(assert(r:list("objects/"))) do held[#held + 1] = k:gsub("^objects/(%x%x)/", "%1") end
table.sort(held)
for mask = 1, (1 << math.min(#held, 12)) - 1 do
  local ids = {}
  for i = 1, 12 do if mask & (1 << (i - 1)) ~= 0 then ids[#ids + 1] = held[i] end end
  local name, path = assert(transfer.ids(ids):write_segment({}, tmp))
  local found = name:find("bad", 1, true)
  if found then assert(r:put_file("index/" .. name, path)) end
  os.remove(path)
  if found then print(name) break end
end')
like "$seg" "bad" "a segment whose name has 'bad' in it is on the remote"
n=$(remote_lua 'local n = 0 for k in pairs(assert(r:list("index/"))) do if k:find("^index/bad%-") then n = n + 1 end end print(n)')
is "$n" 0 "the mark is gone from the remote"
mlx status -r origin
like "$ERR" "all [0-9]+ pinned objects are in the store and on remote 'origin'" "and a segment named with 'bad' is no mark"

# An object deleted or truncated on the remote behind the index's back:
# --verify asks the remote instead of trusting the index.
cd "$TEST_DIR/a" || exit 1
gone=$(sha256sum data/raw/s1.txt | cut -d' ' -f1)
short=$(sha256sum data/raw/s2.txt | cut -d' ' -f1)
remote_lua "assert(r:remove('objects/${gone:0:2}/${gone:2}')); assert(r:write('objects/${short:0:2}/${short:2}', 'x', '$TEST_DIR'))"
mlx push
like "$OUT" "^remote 'origin' already has all" "a push trusts the index"
mlx status --remote --verify
like "$OUT" "unpushed: data/raw/s1.txt \(1 object absent on remote 'origin'; mlx push --verify sends it again\)" "status --remote --verify finds the deleted object"
like "$OUT" "unpushed: data/raw/s2.txt \(1 object of the wrong size on remote 'origin'" "and the truncated one"
mlx push --verify --dry-run
like "$OUT" "^would push 2 objects to remote 'origin'" "push --verify --dry-run counts them"
mlx push --verify
is "$RC" 0 "push --verify exits 0"
like "$OUT" "^pushed 2 objects \(.*\) to remote 'origin'; [0-9]+ already there" "and sends only those two again"
mlx status -r origin --verify
like "$ERR" "all [0-9]+ pinned objects are in the store and on remote 'origin'" "after which the remote holds every object"
mlx status --verify
is "$RC" 2 "--verify without a remote is a usage error (exit 2)"
like "$ERR" "add --remote \(the default remote\) or -r NAME" "saying what to add"

# ---- a push killed at a random point sends only what is missing ----------
new_project "$TEST_DIR/k" killed
mkdir -p data/many
for i in $(seq 1 400); do head -c $((4096 + i * 7)) /dev/urandom >"data/many/f$i"; done
"$MLX" add data/many >/dev/null
total=$("$MLX" push --dry-run | sed -n 's/^would push \([0-9]*\) objects.*/\1/p')
"$MLX" push -j 2 >/dev/null 2>&1 &
pid=$!
sleep "0.$((RANDOM % 5))$((RANDOM % 10))"
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
there=$(remote_lua 'local n = 0 for k in pairs(assert(r:list("objects/"))) do n = n + 1 end print(n)')
# Every object on the remote is whole: it hashes to its name.
bad=$(remote_lua '
local hash = require "mlx.hash"
local bad = 0
for k in pairs(assert(r:list("objects/"))) do
  local a, b = k:match("objects/(%x%x)/(%x+)")
  if hash.bytes(assert(r:read(k))) ~= a .. b then bad = bad + 1 end
end
print(bad)')
is "$bad" 0 "the killed push left no partial object ($there of $total there)"
mlx push
is "$RC" 0 "the push re-run completes"
segs_before=$(remote_lua 'local n = 0 for _ in pairs(assert(r:list("index/"))) do n = n + 1 end print(n)')
if [ "$there" -eq "$total" ]; then
	like "$OUT" "^(remote 'origin' already has all|pushed 0 objects)" "it sends nothing when the kill came after the last object"
else
	like "$OUT" "^pushed $((total - there)) objects" "it sends only the $((total - there)) missing objects"
fi

# ---- a pull interrupted by Ctrl-C keeps only whole objects --------------
git add -A && git commit -qm data
git clone -q "$TEST_DIR/k" "$TEST_DIR/k2" && cd "$TEST_DIR/k2" || exit 1
"$MLX" pull -j 2 >"$TEST_DIR/k2.out" 2>&1 &
pid=$!
sleep "0.$((RANDOM % 4))$((RANDOM % 10))"
kill -INT "$pid" 2>/dev/null
wait "$pid"
rc=$?
like "$rc" "^(0|130)$" "an interrupted pull exits 130 (or 0 if it had finished)"
mlx fsck
like "$OUT" "checked [0-9]+ objects?: 0 corrupt" "the store holds only whole, verified objects after the interruption"
mlx pull
is "$RC" 0 "the pull re-run completes"
diff -r "$TEST_DIR/k/data" "$TEST_DIR/k2/data" >/dev/null
is "$?" 0 "and the data is byte-identical"

# ---- files a pull wrote are in the stat cache, yet a change is seen -----
# The pull records what it wrote with its hash, so the next look reads
# nothing; a same-size rewrite at once after the pull must still show.
git clone -q "$TEST_DIR/k" "$TEST_DIR/k3" && cd "$TEST_DIR/k3" || exit 1
"$MLX" pull >/dev/null 2>&1 && printf '%04096d' 0 | dd of=data/many/f1 conv=notrunc status=none
mlx status --check
is "$RC" 1 "a same-size write right after a pull is seen by status"
like "$OUT" "modified: data/many/f1" "and the file is named"

# ---- two pushes at once from two projects both reach the index -----------
new_project "$TEST_DIR/p1"
new_project "$TEST_DIR/p2"
(cd "$TEST_DIR/p1" && "$MLX" push >"$TEST_DIR/p1.out" 2>&1) &
pid1=$!
(cd "$TEST_DIR/p2" && "$MLX" push >"$TEST_DIR/p2.out" 2>&1) &
pid2=$!
wait "$pid1"
rc1=$?
wait "$pid2"
is "$rc1 $?" "0 0" "both concurrent pushes succeed"
for p in p1 p2; do
	cd "$TEST_DIR/$p" || exit 1
	n=$(remote_lua "
local idx = assert(require('mlx.remote.index').read(require('mlx.project').find_root(), r, 'x'))
assert(not idx.listed, 'the index was not used')
local lock = require('mlx.lock').read(require('mlx.project').find_root())
local missing = 0
for _, rec in pairs(lock.artifacts) do if not idx.objects[rec.hash] then missing = missing + 1 end end
print(missing)")
	is "$n" 0 "the remote's index lists what $p pushed"
done
cd "$TEST_DIR/p1" || exit 1
segs=$(remote_lua 'local n = 0 for _ in pairs(assert(r:list("index/"))) do n = n + 1 end print(n)')
mlx gc -r origin --dry-run
like "$OUT" "would compact the index of remote 'origin': $segs segments into one" "mlx gc -r --dry-run says what compaction would do"
n=$(remote_lua 'local n = 0 for _ in pairs(assert(r:list("index/"))) do n = n + 1 end print(n)')
is "$n" "$segs" "and leaves the segments alone"
mlx gc -r origin
like "$OUT" "compacted the index of remote 'origin': [0-9]+ segments into one" "mlx gc -r compacts the index"
n=$(remote_lua 'local n = 0 for _ in pairs(assert(r:list("index/"))) do n = n + 1 end print(n)')
is "$n" 1 "one segment is left"
# Nothing left to compact: the remote receives nothing (no PUT of the
# whole index, no race with other pushes).
if [ "$kind" = dir ]; then
	seg_before=$(stat -c '%i %y' "$url"/index/*)
	mlx gc -r origin
	like "$OUT" "the index of remote 'origin' is one segment already \([0-9]+ objects, [0-9]+ run-cache entries\): nothing to compact" \
		"a second mlx gc -r says there is nothing to compact"
	is "$(stat -c '%i %y' "$url"/index/*)" "$seg_before" "and leaves the one segment as it was"
else
	skip "a second mlx gc -r says there is nothing to compact" "the segment's mtime is checked on the directory backend"
	skip "and leaves the one segment as it was" "the segment's mtime is checked on the directory backend"
fi
mlx status --remote
like "$ERR" "all [0-9]+ pinned objects are in the store and on remote 'origin'" "the compacted index still lists everything"

# ---- data from the remote cannot write outside the rules ------------------
outside=$(mktemp -d "${TMPDIR:-/tmp}/mlx-e2e-outside-XXXXXX")
trap '[ -n "$helper" ] && "$helper" stop "$server_dir"; rm -rf "$TEST_DIR" "$TAP_CAPTURE" "$outside"' EXIT
cd "$TEST_DIR/a" || exit 1
# An index segment naming paths and non-ids (named by its own hash, so it
# is read and then refused as damaged).
remote_lua "
local text = 'mlx-index 1\no ../../../${outside##*/}/x\nr .git/hooks/post-checkout\n'
assert(r:write('index/' .. require('mlx.hash').bytes(text), text, '$TEST_DIR'))"
# A run-cache entry whose outs leave the project or enter .git/.
key=$(printf 'evil' | sha256sum | cut -d' ' -f1)
remote_lua "
local text = '{\"version\":1,\"key\":\"$key\",\"outs\":{\"../../${outside##*/}/pwned\":{\"type\":\"file\",\"hash\":\"$victim\",\"size\":3,\"mode\":\"644\"}}}'
assert(r:write('runcache/$key.json', text, '$TEST_DIR'))"
key2=$(printf 'evil2' | sha256sum | cut -d' ' -f1)
remote_lua "
local text = '{\"version\":1,\"key\":\"$key2\",\"outs\":{\".git/hooks/post-checkout\":{\"type\":\"file\",\"hash\":\"$victim\",\"size\":3,\"mode\":\"755\"}}}'
assert(r:write('runcache/$key2.json', text, '$TEST_DIR'))"
# Keys that are not objects or entries at all.
remote_lua "assert(r:write('runcache/notanid.json', '{}', '$TEST_DIR')); assert(r:write('objects/zz/notanid', 'x', '$TEST_DIR'))"
git clone -q "$TEST_DIR/a" "$TEST_DIR/d" && cd "$TEST_DIR/d" || exit 1
mlx pull --run-cache
like "$ERR" "the index of the remote is damaged \(index/[0-9a-f]+ does not parse\); listed the remote instead" "a bad index segment is refused and the remote listed"
like "$ERR" "run-cache entry ${key:0:12} on remote 'origin' refused: .*leaves the project" "a run-cache entry leaving the project is refused"
like "$ERR" "run-cache entry ${key2:0:12} on remote 'origin' refused: .*\.git" "a run-cache entry naming .git/ is refused"
! grep -rqE "$key|$key2" "$TEST_DIR/d/.mlx/cache/runs"
is "$?" 0 "refused entries are not written"
[ -z "$(ls -A "$outside")" ] && [ ! -e .git/hooks/post-checkout ] && [ ! -e "$TEST_DIR/pwned" ]
is "$?" 0 "nothing was written outside the project or into .git/"

# A manifest on the remote naming ../ paths, pinned by a crafted lock.
cd "$TEST_DIR/a" || exit 1
manifest=$(printf '%s 3 644 ../../%s/pwned' "$victim" "${outside##*/}")
mid=$(printf '%s\n' "$manifest" | sha256sum | cut -d' ' -f1)
remote_lua "assert(r:write('objects/${mid:0:2}/${mid:2}', [[$manifest]] .. '\n', '$TEST_DIR'))"
mkdir -p "$TEST_DIR/e" && cd "$TEST_DIR/e" || exit 1
git init -q . && "$MLX" init >/dev/null
cp "$TEST_DIR/a/.mlx/remotes.json" .mlx/
printf '{"version": 1, "artifacts": {"evil": {"type": "dir", "hash": "%s", "size": 3, "files": 1}}}\n' "$mid" >mlx.lock
mlx pull
isnt_zero=$([ "$RC" -ne 0 ] && echo yes)
is "$isnt_zero" yes "a pulled manifest naming ../ paths is refused"
like "$ERR" "manifest ${mid}.*(leaves the project|\.\.)" "the message names the manifest and why"
[ -z "$(ls -A "$outside")" ] && [ ! -e evil ]
is "$?" 0 "and nothing was written"

# ---- a step with cache = false keeps no copy: push and pull say so ------
new_project "$TEST_DIR/nc" nocache
sed -i '$d' pipeline.lua # the final "return p"
cat >>pipeline.lua <<'EOF'
p:step "announce" {
  deps = { "work/count.txt" }, outs = { "work/announced.txt" }, cache = false,
  cmd = "sed s/^/n=/ work/count.txt > work/announced.txt",
}
return p
EOF
mlx recipe pipeline.lua
mlx push
is "$RC" 0 "push of a pipeline with a cache = false step exits 0"
like "$OUT" "not pushed: work/announced.txt \(its step demo/announce keeps no copy" "and names the out it could not send"
git add -A && git commit -qm nocache
# A step mlx verify found non-deterministic keeps its run-cache entry home.
"$MLX" lua -e '
local json = require "mlx.json"
local lock = json.load("mlx.lock")
lock.steps.demo.count.deterministic = false
require("mlx.fs").write("mlx.lock", json.encode(lock, { indent = 2 }) .. "\n")'
count_key=$("$MLX" lua -e 'print(require("mlx.json").load("mlx.lock").steps.demo.count.key)')
mlx push --run-cache
like "$OUT" "not pushed: the run-cache entry of step demo/count \(mlx verify found it non-deterministic\)" "push --run-cache names the step whose entry it keeps"
n=$(remote_lua "print(r:stat('runcache/$count_key.json') and 'there' or 'absent')")
is "$n" absent "and the remote does not get it"
mlx status --remote
like "$ERR" "work/announced.txt: in no store and on no remote; its step demo/announce makes it again" "status --remote says the out is made again"
printf '%s\n' "$OUT" | grep -q announced
is "$?" 1 "and does not call it unpushed nor unfetched"
git clone -q "$TEST_DIR/nc" "$TEST_DIR/nc2" && cd "$TEST_DIR/nc2" || exit 1
mlx pull --dry-run
would=$(printf '%s\n' "$OUT" | sed -n 's/^would fetch \([0-9]*\) objects.*/\1/p')
mlx pull
is "$RC" 0 "pull in a clone exits 0 too"
like "$OUT" "^fetched $would objects" "pull --dry-run counted what the pull fetched, not the out kept nowhere"
like "$OUT" "not fetched: work/announced.txt is on no remote \(its step demo/announce makes it again\)" "saying its step makes it"
mlx push work/announced.txt
is "$RC" 1 "naming that out in push is still an error (exit 1)"
is "$("$MLX" lua -e 'print(require("mlx.json").load("mlx.lock").steps.demo.announce.cache)')" false \
	"mlx.lock records that the step keeps no copy"
# The store now holds all the rest: a pull from a remote that is down asks
# it for nothing, not even the out no store keeps.
mlx remote add down http://127.0.0.1:9/dav
mlx pull -r down
is "$RC" 0 "a pull from a remote that is down succeeds when only the cache = false out is not in the store"
like "$OUT" "^the store already has all $would objects" "counting only the stored objects"
like "$OUT" "not fetched: work/announced.txt is on no remote \(its step demo/announce makes it again\)" \
	"and names the out its step makes"
mlx fsck
is "$RC" 0 "fsck does not call the out missing"
rm work/announced.txt
mlx checkout work/announced.txt
is "$RC $ERR" "2 mlx: error: work/announced.txt is an out of step demo/announce, which keeps no copy in the store (cache = false); run its recipe to make it" \
	"checkout of that out, named, sends the user to the recipe, not to a pull"
git checkout -q -- work/announced.txt
"$MLX" remote remove down >/dev/null
# A lock written before mlx recorded "cache" still loads: without the
# field an out is taken as stored, and push and pull pass it by as before.
"$MLX" lua -e '
local json = require "mlx.json"
local lock = json.load("mlx.lock")
lock.steps.demo.announce.cache = nil
require("mlx.fs").write("mlx.lock", json.encode(lock, { indent = 2 }) .. "\n")'
mlx pull
is "$RC" 0 "a lock without the field still loads and pulls"
like "$OUT" "not fetched: work/announced.txt is on no remote" "passing the out by as before"
mlx push
is "$RC" 0 "and pushes"
git checkout -q -- mlx.lock

# Bad remote names and options are usage errors; credentials stay out of
# the committed file.
mlx remote add "../x" /tmp/x
is "$RC" 2 "a bad remote name is refused (exit 2)"
mlx remote add empty ""
is "$RC $ERR" "2 mlx: error: remote empty: the URL is empty; give a directory, an http(s):// or an s3:// URL" \
	"an empty URL is refused (exit 2)"
mlx remote list
is "$RC" 0 "and remotes.json stays readable"
mlx remote add other ftp://host/x
is "$RC" 2 "an unknown scheme is refused (exit 2)"
like "$ERR" "no backend serves 'ftp://host/x'" "naming the URL"
mlx remote add typo s3:/bucket/team
is "$RC $ERR" "2 mlx: error: remote typo: 's3:/bucket/team' is not a URL: did you mean s3://bucket/team?" \
	"a URL missing a slash is refused as a typo, not taken for a directory in the project"
mlx remote add typo file:/srv/store
like "$ERR" "did you mean file:///srv/store\?$" "a file: URL too"
# A directory remote inside the project would put its objects/ and index/
# into the workspace, .git/ or .mlx/: refused when added, and when a
# remotes.json that arrived with a clone names one.
mlx remote add inside .git/store
is "$RC $ERR" "2 mlx: error: remote inside: .git/store is inside the project; a directory remote must be outside it (e.g. $PWD-store beside the project): mlx remote add --force inside DIR" \
	"a directory remote inside the project is refused, saying what to do"
cp .mlx/remotes.json remotes.saved
"$MLX" lua -e 'local json = require "mlx.json"
  local doc = json.load(".mlx/remotes.json")
  doc.remotes.cloned = { url = ".", options = json.object() }
  assert(json.save(".mlx/remotes.json", doc))'
mlx push -r cloned
is "$RC $ERR" "2 mlx: error: $PWD/.mlx/remotes.json: remote cloned: . is inside the project; a directory remote must be outside it (e.g. $PWD-store beside the project): mlx remote add --force cloned DIR" \
	"a remotes.json naming the project itself as a remote is refused"
is "$(ls -d objects index 2>/dev/null)" "" "and nothing is written into the project"
mv remotes.saved .mlx/remotes.json
mlx remote add other /tmp/x --option password=hunter2
is "$RC" 2 "a credential as an option is refused (exit 2)"
like "$ERR" "config.local.lua" "saying where credentials go"
if grep -q hunter2 .mlx/remotes.json; then is 1 0 "the password is not saved"; else is 0 0 "the password is not saved"; fi
mlx push -r nowhere
is "$RC" 2 "an unknown remote is exit 2"
like "$ERR" "no remote named 'nowhere' \(remotes: origin\)" "naming the remotes there are"
mlx remote add typo "$url" --option timeout=5
is "$RC" 2 "an option typo is refused (exit 2)"
like "$ERR" "unknown option 'timeout' for the [A-Za-z0-9]+ backend \(it has .*timeout_ms" "naming the options the backend has"
touch "$TEST_DIR/afile"
mlx remote add file "$TEST_DIR/afile"
is "$RC" 2 "a directory remote whose path is a file is refused (exit 2)"
is "$ERR" "mlx: error: remote file: $TEST_DIR/afile is not a directory (a file is in the way); point the remote at a directory: mlx remote add --force file DIR" "in one line saying what to do"
mkdir -p "$TEST_DIR/later" && "$MLX" remote add later "$TEST_DIR/later/store" >/dev/null && touch "$TEST_DIR/later/store"
mlx push -r later
is "$RC" 2 "a push to it, once a file took its place, is exit 2"
like "$ERR" "remote later: .*later/store is not a directory \(a file is in the way\)" "with the same message"
# The credentials a push would use open the remote that remote add checks.
if [ "$kind" = s3 ]; then
	printf 'return { remotes = { keyed = { access_key_id = "%s", secret_access_key = "%s" } } }\n' \
		"$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >.mlx/config.local.lua
	AWS_ACCESS_KEY_ID='' AWS_SECRET_ACCESS_KEY='' HOME=$TEST_DIR "$MLX" remote add keyed "$url/keyed" "${remote_options[@]}" >/dev/null
	is "$?" 0 "remote add finds S3 credentials in .mlx/config.local.lua"
	rm .mlx/config.local.lua
else
	skip "remote add finds S3 credentials in .mlx/config.local.lua" "only S3 needs credentials to open"
fi
mlx push -j 0
is "$RC" 2 "-j 0 is a usage error"
like "$ERR" "option '-j' needs at least 1 transfer at once, not 0" "saying so"

# A model is a target too; a target that is nothing is named, exit 2.
cd "$TEST_DIR/nc" || exit 1
printf 'weights %s\n' "$kind" >model.bin
"$MLX" model register clf model.bin --no-run -a production >/dev/null
mlx push clf@production --dry-run
is "$OUT" "would push 1 object to remote 'origin'" "push MODEL@ALIAS --dry-run counts the model's object"
mlx push clf@production
like "$OUT" "^pushed 1 object \(" "push MODEL@ALIAS sends it"
mlx push clf@staging
is "$RC" 2 "an alias that does not exist is exit 2"
is "$ERR" "mlx: error: clf@staging: model clf has no alias staging (see 'mlx model show clf')" \
	"naming the model the registry has and the alias it lacks, not 'no such model'"
mlx push clf:2
is "$ERR" "mlx: error: clf:2: model clf has no version 2 (see 'mlx model show clf')" "a version it lacks too"
mlx push nosuch@staging
is "$RC" 2 "a model that does not exist is exit 2"
like "$ERR" "nosuch@staging is not a tracked path, a pipeline step or out in mlx.lock, nor a model of this project's registry \(see 'mlx status' and 'mlx model ls'\)" "naming it and where to look"

done_testing
