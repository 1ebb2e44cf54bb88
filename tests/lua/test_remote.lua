-- mlx.remote: the remotes file, credentials, the index and its segments,
-- run-cache entry checks, and mlx.gitignore's block — over real files and a
-- real directory remote.
local lu = require "luaunit"
local fs = require "mlx.fs"
local hash = require "mlx.hash"
local config = require "mlx.remote.config"
local index = require "mlx.remote.index"
local remote = require "mlx.remote"
local gitignore = require "mlx.gitignore"

local function project()
  local root = os.tmpname()
  os.remove(root)
  assert(fs.mkdirs(root .. "/.mlx/tmp"))
  return root
end

local function cleanup(root)
  os.execute("chmod -R u+w '" .. root .. "' 2>/dev/null; rm -rf '" .. root .. "'")
end

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  return text
end

local H = ("ab"):rep(32)

TestRemoteConfig = {}

function TestRemoteConfig:test_saved_remotes_read_back_and_resolve()
  local root = project()
  lu.assertEquals(config.load(root), { version = 1, remotes = {} })
  assert(config.save(root, { default = "origin", remotes = {
    origin = { url = "../store", options = {} },
    s3 = { url = "s3://bucket/p", options = { region = "eu-west-1" } },
  } }))
  local doc = assert(config.load(root))
  lu.assertEquals(doc.default, "origin")
  lu.assertEquals(doc.remotes.s3.options.region, "eu-west-1")
  -- A relative directory is made absolute against the project root.
  local r = assert(config.resolve(root))
  lu.assertEquals(r.url, root:match("^(.*)/[^/]*$") .. "/store")
  local _, err, code = config.resolve(root, "nope")
  lu.assertEquals(code, "notfound")
  lu.assertStrContains(err, "no remote named 'nope' (remotes: origin, s3)")
  cleanup(root)
end

function TestRemoteConfig:test_credentials_come_from_config_local_and_the_environment()
  local root = project()
  assert(config.save(root, { default = "my-store", remotes = { ["my-store"] = { url = "/srv/x", options = {} } } }))
  write(root .. "/.mlx/config.local.lua", 'return { remotes = { ["my-store"] = { user = "ci", password = "local" } } }')
  local r = assert(config.resolve(root))
  lu.assertEquals(r.options.user, "ci")
  lu.assertEquals(r.options.password, "local")
  -- The environment wins (read through os.getenv, replaced here).
  local getenv = os.getenv
  os.getenv = function(name) -- luacheck: ignore
    if name == "MLX_REMOTE_MY_STORE_PASSWORD" then return "env" end
    return getenv(name)
  end
  r = assert(config.resolve(root))
  os.getenv = getenv -- luacheck: ignore
  lu.assertEquals(r.options.password, "env")
  -- mlx remote add checks a remote not saved yet with the same credentials.
  write(root .. "/.mlx/config.local.lua", 'return { remotes = { new = { secret_access_key = "s" } } }')
  local options = assert(config.with_credentials(root, "new", { endpoint = "http://h" }))
  lu.assertEquals(options, { endpoint = "http://h", secret_access_key = "s" })
  cleanup(root)
end

function TestRemoteConfig:test_a_damaged_file_is_bad_input_naming_it()
  local root = project()
  write(root .. "/.mlx/remotes.json", '{"version": 1, "remotes": {"../x": {"url": "/srv"}}}')
  local _, err, code = config.load(root)
  lu.assertEquals(code, "invalid")
  lu.assertStrContains(err, root .. "/.mlx/remotes.json: '../x' is not a remote name")
  write(root .. "/.mlx/remotes.json", '{"version": 1, "default": "b", "remotes": {}}')
  _, err = config.load(root)
  lu.assertStrContains(err, "default names no remote")
  cleanup(root)
end

TestTransferBackends = {}

-- The WebDAV and S3 backends (libcurl, libxml2, OpenSSL: tens of ms of
-- loading) are loaded for their URLs only, never for a directory remote.
function TestTransferBackends:test_http_libraries_load_only_for_the_urls_that_need_them()
  local root = project()
  local probe = root .. "/probe.lua"
  write(probe, [[
local url = ...
local r, err = require("mlx.transfer").open { name = "t", url = url,
  options = url:match("^s3:") and { access_key_id = "k", secret_access_key = "s", region = "r" } or nil }
local maps = assert(io.open("/proc/self/maps")):read("a")
io.write(r and r:backend() or err, " ", tostring(maps:find("libcurl", 1, true) ~= nil))
]])
  local function run(url)
    local p = assert(io.popen(("'%s/mlx' lua '%s' '%s' 2>&1"):format(require("mlx.core").exe_dir, probe, url)))
    local out = p:read("a")
    p:close()
    return out
  end
  lu.assertEquals(run(root .. "/remote"), "dir false")
  lu.assertEquals(run("file://" .. root .. "/remote"), "dir false")
  lu.assertEquals(run("https://127.0.0.1:1/store/"), "webdav true")
  lu.assertEquals(run("s3://bucket/prefix"), "s3 true")
  lu.assertStrContains(run("ftp://host/x"), "no backend serves 'ftp://host/x'")
  cleanup(root)
end

TestRemoteIndex = {}

local function open_dir_remote(root)
  return assert(require("mlx.transfer").open { name = "t", url = root .. "/remote" })
end

function TestRemoteIndex:test_segments_are_appended_read_and_compacted()
  local root = project()
  local r = open_dir_remote(root)
  local url = root .. "/remote"
  -- No index: the remote is listed (empty here).
  local idx = assert(index.read(root, r, url))
  lu.assertTrue(idx.listed)
  local a, b = ("a"):rep(64), ("b"):rep(64)
  assert(index.append(root, r, url, { a }, {}))
  assert(index.append(root, r, url, { b }, { H }))
  idx = assert(index.read(root, r, url))
  lu.assertNil(idx.listed)
  lu.assertEquals(#idx.segments, 2)
  lu.assertTrue(idx.objects[a] and idx.objects[b] and idx.runs[H])
  -- Segments read once are cached: removing one from the remote's
  -- listing would drop it, but its bytes are not fetched again.
  lu.assertNotNil(fs.stat(index.cache_dir(root, url) .. "/index/" .. idx.segments[1]))
  -- Compaction lists what the remote holds into one segment.
  assert(r:write("objects/aa/" .. a:sub(3), "x", root .. "/.mlx/tmp"))
  assert(r:write("runcache/" .. H .. ".json", "{}", root .. "/.mlx/tmp"))
  local res = assert(index.compact(root, r, url))
  lu.assertEquals(res.before, 2)
  lu.assertEquals(res.objects, 1)
  idx = assert(index.read(root, r, url))
  lu.assertEquals(#idx.segments, 1)
  lu.assertTrue(idx.objects[a] and idx.runs[H])
  lu.assertNil(idx.objects[b])
  -- A segment not cached yet (another clone's) is written to the cache,
  -- then read from there as a cached one is.
  local cached = index.cache_dir(root, url) .. "/index"
  fs.remove_tree(cached)
  idx = assert(index.read(root, r, url))
  lu.assertNil(idx.listed)
  lu.assertTrue(idx.objects[a] and idx.runs[H])
  lu.assertEquals(read(cached .. "/" .. idx.segments[1]), "mlx-index 1\no " .. a .. "\nr " .. H .. "\n")
  -- A cache that cannot be written is said, not skipped.
  fs.remove_tree(cached)
  write(cached, "in the way")
  local none, err = index.read(root, r, url)
  lu.assertNil(none)
  lu.assertStrContains(err, cached)
  r:close()
  cleanup(root)
end

function TestRemoteIndex:test_an_index_of_one_segment_is_not_rewritten()
  local root = project()
  local r = open_dir_remote(root)
  local url = root .. "/remote"
  local a, b = ("a"):rep(64), ("b"):rep(64)
  assert(r:write("objects/aa/" .. a:sub(3), "x", root .. "/.mlx/tmp"))
  assert(r:write("runcache/" .. H .. ".json", "{}", root .. "/.mlx/tmp"))
  local name = assert(index.append(root, r, url, { a }, { H }))
  local segment = url .. "/index/" .. name
  local before = assert(fs.stat(segment))
  -- An object the index does not name yet (a push killed before its
  -- segment) is no reason to rewrite: the next push finds it.
  assert(r:write("objects/bb/" .. b:sub(3), "y", root .. "/.mlx/tmp"))
  for _, dry_run in ipairs({ true, false }) do
    local res = assert(index.compact(root, r, url, dry_run))
    lu.assertEquals(res.compacted, false)
    lu.assertEquals(res.before, 1)
    lu.assertEquals(res.objects, 1)
    lu.assertEquals(res.runs, 1)
  end
  local after = assert(fs.stat(segment))
  lu.assertEquals(after.mtime_ns, before.mtime_ns)
  lu.assertEquals(after.ino, before.ino)
  lu.assertEquals(#assert(fs.list(url .. "/index")), 1)
  -- One damaged segment (as another clone, which has not cached it, reads
  -- it) is rewritten from a listing: that is a repair.
  fs.remove_tree(index.cache_dir(root, url))
  write(segment, "mlx-index 1\no " .. ("c"):rep(64) .. "\n")
  local res = assert(index.compact(root, r, url))
  lu.assertEquals(res.compacted, true)
  lu.assertEquals(res.objects, 2)
  local idx = assert(index.read(root, r, url))
  lu.assertNil(idx.warning)
  lu.assertTrue(idx.objects[a] and idx.objects[b] and idx.runs[H])
  r:close()
  cleanup(root)
end

function TestRemoteIndex:test_a_bad_mark_outweighs_segments_and_survives_compaction()
  local root = project()
  local r = open_dir_remote(root)
  local url = root .. "/remote"
  local a, b = ("a"):rep(64), ("b"):rep(64)
  assert(r:write("objects/aa/" .. a:sub(3), "x", root .. "/.mlx/tmp"))
  assert(r:write("objects/bb/" .. b:sub(3), "y", root .. "/.mlx/tmp"))
  assert(index.append(root, r, url, { a, b }, {}))
  assert(index.mark_bad(root, r, a, "corrupt"))
  local idx = assert(index.read(root, r, url))
  lu.assertTrue(idx.bad[a])
  lu.assertNil(idx.objects[a])
  lu.assertTrue(idx.objects[b])
  -- A listing sees a's key, so compaction must keep the mark.
  local res = assert(index.compact(root, r, url))
  lu.assertEquals(res.before, 1)
  idx = assert(index.read(root, r, url))
  lu.assertTrue(idx.bad[a])
  lu.assertNil(idx.objects[a])
  -- Marks of things that are not ids are data, and ignored.
  assert(r:write("index/bad-notanid", "corrupt\n", root .. "/.mlx/tmp"))
  assert(index.clear_bad(r, a))
  idx = assert(index.read(root, r, url))
  lu.assertEquals(next(idx.bad), nil)
  lu.assertTrue(idx.objects[a] and idx.objects[b])
  r:close()
  cleanup(root)
end

function TestRemoteIndex:test_a_listing_is_retried_after_a_transport_failure_only()
  -- A handle whose first listing fails as a refused connection would.
  local calls = 0
  local flaky = { list = function(_, prefix)
    calls = calls + 1
    if calls == 1 then return nil, "remote t: " .. prefix .. ": Couldn't connect to server", "io" end
    return { [prefix .. "ab"] = 1 }
  end }
  local keys = assert(index.list(flaky, "index/"))
  lu.assertEquals(keys, { ["index/ab"] = 1 })
  lu.assertEquals(calls, 2)
  -- Bad configuration is not retried: no retry can fix it.
  calls = 0
  local refused = { list = function() calls = calls + 1 return nil, "remote t: HTTP 401", "invalid" end }
  local ok, err, code = index.list(refused, "index/")
  lu.assertNil(ok)
  lu.assertEquals({ err, code, calls }, { "remote t: HTTP 401", "invalid", 1 })
end

function TestRemoteIndex:test_a_damaged_segment_falls_back_to_listing()
  local root = project()
  local r = open_dir_remote(root)
  local url = root .. "/remote"
  -- Named by another text's hash: does not match its name.
  assert(r:write("index/" .. hash.bytes("other"), "mlx-index 1\no " .. H .. "\n", root .. "/.mlx/tmp"))
  local idx = assert(index.read(root, r, url))
  lu.assertTrue(idx.listed)
  lu.assertStrContains(idx.warning, "does not match its name")
  lu.assertNil(idx.objects[H])
  -- Lines that are not ids.
  local text = "mlx-index 1\no ../../etc/passwd\n"
  fs.remove_tree(root .. "/remote/index")
  assert(r:write("index/" .. hash.bytes(text), text, root .. "/.mlx/tmp"))
  idx = assert(index.read(root, r, url))
  lu.assertStrContains(idx.warning, "does not parse")
  r:close()
  cleanup(root)
end

TestRemoteEntries = {}

function TestRemoteEntries:test_entries_are_checked_as_local_ones()
  local rec = { type = "file", hash = H, size = 3, mode = "644" }
  lu.assertNil(remote.entry_problem({ version = 1, key = H, outs = { ["work/a.txt"] = rec } }, H))
  lu.assertNotNil(remote.entry_problem({ version = 1, key = H, outs = {} }, ("c"):rep(64)))
  lu.assertStrContains(remote.entry_problem({ version = 1, key = H, outs = { ["../x"] = rec } }, H),
    "leaves the project")
  lu.assertStrContains(remote.entry_problem({ version = 1, key = H, outs = { [".git/hooks/x"] = rec } }, H), ".git")
  lu.assertNotNil(remote.entry_problem({ version = 1, key = H, outs = { ["w/a"] = { type = "file", hash = "x" } } },
    H))
  lu.assertNotNil(remote.entry_problem("text", H))
end

TestGitignore = {}

function TestGitignore:test_the_block_is_ours_and_the_rest_is_kept()
  local root = project()
  assert(fs.mkdirs(root .. "/data"))
  write(root .. "/data/.gitignore", "# mine\n*.tmp\n")
  assert(gitignore.ensure(root, { "data/b.csv", "data/a b.csv", "top.txt" }))
  local text = assert(io.open(root .. "/data/.gitignore")):read("a")
  lu.assertEquals(text, "# mine\n*.tmp\n" .. gitignore.BEGIN .. "\n/a\\ b.csv\n/b.csv\n" .. gitignore.END .. "\n")
  lu.assertEquals(assert(io.open(root .. "/.gitignore")):read("a"),
    gitignore.BEGIN .. "\n/top.txt\n" .. gitignore.END .. "\n")
  -- Again: nothing changes; a new path joins the block, after which the
  -- user's later lines stay where they are.
  write(root .. "/data/.gitignore", text .. "!keep.tmp\n")
  assert(gitignore.ensure(root, { "data/b.csv" }))
  lu.assertEquals(assert(io.open(root .. "/data/.gitignore")):read("a"), text .. "!keep.tmp\n")
  assert(gitignore.ensure(root, { "data/c" }))
  lu.assertEquals(assert(io.open(root .. "/data/.gitignore")):read("a"), "# mine\n*.tmp\n" .. gitignore.BEGIN
    .. "\n/a\\ b.csv\n/b.csv\n/c\n" .. gitignore.END .. "\n!keep.tmp\n")
  cleanup(root)
end

-- A clone may hold a .gitignore that is a symbolic link, or a directory
-- that is one: mlx neither reads through them (their target's text would
-- land in the project) nor writes through them, and says so.
function TestGitignore:test_links_are_left_alone()
  local root = project()
  local outside = os.tmpname()
  os.remove(outside)
  assert(fs.mkdirs(outside))
  write(outside .. "/secret", "token=1\n")
  write(outside .. "/.gitignore", "theirs\n")
  assert(fs.mkdirs(root .. "/data"))
  assert(os.execute(("ln -s '%s/secret' '%s/data/.gitignore'"):format(outside, root)))
  assert(os.execute(("ln -s '%s' '%s/esc'"):format(outside, root)))
  local ok, skipped = gitignore.ensure(root, { "data/a.csv", "esc/f", "top.txt" })
  lu.assertTrue(ok)
  lu.assertEquals(#skipped, 2)
  lu.assertStrContains(skipped[1], "data/.gitignore is not a regular file of the project")
  lu.assertStrContains(skipped[1], "/a.csv")
  lu.assertStrContains(skipped[2], "esc/.gitignore")
  lu.assertEquals(fs.stat(root .. "/data/.gitignore").type, "link")
  lu.assertEquals(assert(io.open(outside .. "/secret")):read("a"), "token=1\n")
  lu.assertEquals(assert(io.open(outside .. "/.gitignore")):read("a"), "theirs\n")
  lu.assertEquals(assert(io.open(root .. "/.gitignore")):read("a"),
    gitignore.BEGIN .. "\n/top.txt\n" .. gitignore.END .. "\n")
  os.execute("rm -rf '" .. outside .. "'")
  cleanup(root)
end

TestIdSet = {}

-- Sets of ids in C carry the object lists of transfers: read as Lua sets,
-- and written as index segments byte for byte as before.
function TestIdSet:test_sets_of_ids()
  local transfer = require "mlx.transfer"
  local a, b, c = ("a"):rep(64), ("b"):rep(64), ("c"):rep(64)
  local s = transfer.ids { b, a }
  s:add(a, 10):add(c)
  lu.assertEquals(#s, 3)
  lu.assertTrue(s[a] and s:has(c))
  lu.assertNil(s[("d"):rep(64)])
  lu.assertNil(s["not an id"])
  lu.assertFalse(s:has(a:upper()))
  lu.assertEquals(s:bytes(), 10)
  lu.assertEquals(s:list(), { a, b, c })
  local left = s:minus(transfer.ids { b })
  lu.assertEquals(left:list(), { a, c })
  lu.assertEquals(#left:merge(transfer.ids { b }), 3)
  lu.assertErrorMsgContains("not an object id", function() s:add("../x") end)
  lu.assertErrorMsgContains("list of object ids", function() transfer.ids { "x" } end)
  -- Segments: written to a file line by line, ids and keys sorted, named
  -- by the hash of their bytes, and parsed back from the file in pieces.
  local root = project()
  local text = "mlx-index 1\no " .. a .. "\no " .. c .. "\nr " .. H .. "\n"
  local name, path = transfer.ids { c, a }:write_segment({ H }, root)
  lu.assertEquals(name, hash.bytes(text))
  lu.assertEquals(read(path), text)
  local back, runs = transfer.ids(), {}
  lu.assertTrue(back:add_segment_file(path, runs))
  lu.assertEquals(back:list(), { a, c })
  lu.assertEquals(runs, { [H] = true })
  os.remove(path)
  lu.assertErrorMsgContains("run-cache keys", function() transfer.ids():write_segment({ "x" }, root) end)
  local none, werr = transfer.ids():write_segment({}, root .. "/no/such/dir")
  lu.assertNil(none)
  lu.assertStrContains(werr, "cannot create a temp file in")
  -- What is not a segment: false (nil when there is no file).
  for _, bad in ipairs { text .. "o " .. a, "mlx-index 1\no " .. a:upper() .. "\n", "mlx-index 2\n" } do
    write(root .. "/seg", bad)
    lu.assertFalse(transfer.ids():add_segment_file(root .. "/seg", {}))
  end
  lu.assertNil(transfer.ids():add_segment_file(root .. "/none", {}))
  cleanup(root)
  -- A manifest's files, with the path rule of the store.
  local m = transfer.ids()
  lu.assertTrue(m:add_manifest(a .. " 3 644 x\n" .. b .. " 4 755 y/z\n"))
  lu.assertEquals(m:bytes(), 7)
  local ok, err, code = m:add_manifest(c .. " 1 644 ../escape\n")
  lu.assertNil(ok)
  lu.assertStrContains(err, "manifest line 1")
  lu.assertEquals(code, "corrupt")
end

function TestIdSet:test_listing_a_remote_into_a_set()
  local root = project()
  local r = assert(require("mlx.transfer").open { name = "t", url = root .. "/remote" })
  local a = ("a"):rep(64)
  assert(r:write("objects/aa/" .. a:sub(3), "x", root .. "/.mlx/tmp"))
  assert(r:write("objects/aa/notanid", "x", root .. "/.mlx/tmp"))
  assert(r:write("objects/zz/" .. a:sub(3), "x", root .. "/.mlx/tmp"))
  local s = assert(r:list_objects(require("mlx.transfer").ids()))
  -- objects/zz/… is not an id (zz is not hex): data, skipped.
  lu.assertEquals(s:list(), { a })
  r:close()
  cleanup(root)
end

os.exit(lu.LuaUnit.run("-o", "tap"), true)
