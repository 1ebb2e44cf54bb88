-- mlx.lock: validation with clear errors, section updates that keep others.
local lu = require "luaunit"
local fs = require "mlx.fs"
local json = require "mlx.json"
local lock = require "mlx.lock"

local function project()
  local root = os.tmpname()
  os.remove(root)
  assert(fs.mkdirs(root .. "/.mlx"))
  return root
end

local H = ("ab"):rep(32)

TestLock = {}

function TestLock:test_missing_lock_reads_as_empty_current_version()
  local root = project()
  lu.assertEquals(lock.read(root), { version = lock.VERSION })
  os.execute("rm -rf '" .. root .. "'")
end

function TestLock:test_update_writes_sorted_and_keeps_other_sections()
  local root = project()
  local key = ("a"):rep(64)
  assert(json.save(lock.path(root), { version = 1, steps = { p = { train = { key = key } } } }))
  assert(lock.update(root, "artifacts", function(a)
    a["data/b.csv"] = { type = "file", hash = H, size = 3, mode = "644" }
    a["data/a"] = { type = "dir", hash = H, size = 9, files = 2 }
  end))
  local text = assert(io.open(lock.path(root))):read("a")
  lu.assertTrue(text:find('"data/a"', 1, true) < text:find('"data/b.csv"', 1, true))
  local doc = assert(lock.read(root))
  lu.assertEquals(doc.steps.p.train.key, key)
  lu.assertEquals(doc.artifacts["data/a"].files, 2)
  os.execute("rm -rf '" .. root .. "'")
end

-- A command that never loads the pipeline (status, checkout, gc) still
-- refuses a malformed "steps" section: it would act on its outs.
function TestLock:test_read_validates_steps_without_the_pipeline_loaded()
  local root = project()
  local outs = { ["work/m.json"] = { type = "file", hash = "xyz", size = 1, mode = "644" } }
  assert(json.save(lock.path(root), { version = 1, steps = { p = { train = { key = ("a"):rep(64), outs = outs } } } }))
  local doc, err, code = lock.read(root)
  lu.assertNil(doc)
  lu.assertStrContains(err, "mlx.lock: step p/train: out \"work/m.json\": hash must be 64 lowercase hex digits")
  lu.assertEquals(code, "invalid")
  os.execute("rm -rf '" .. root .. "'")
end

-- Found by the lock fuzz target: an unknown section holding an array made
-- every update raise ("object keys must be strings").
function TestLock:test_update_keeps_an_unknown_section_of_any_kind()
  local root = project()
  local text = '{"version": 1, "later": [1, {"a": []}, "x"], "empty": {}, "none": []}'
  assert(fs.write(lock.path(root), text))
  assert(lock.update(root, "artifacts", function(a)
    a["data/a"] = { type = "dir", hash = H, size = 9, files = 2 }
  end))
  local doc = assert(json.load(lock.path(root)))
  lu.assertEquals(json.encode(doc.later), '[1,{"a":[]},"x"]')
  lu.assertEquals(json.encode(doc.empty), "{}")
  lu.assertEquals(json.encode(doc.none), "[]")
  os.execute("rm -rf '" .. root .. "'")
end

function TestLock:test_invalid_locks_fail_naming_file_and_problem()
  local root = project()
  local cases = {
    { '{"artifacts": {}}', 'no "version" field' },
    { '{"version": 99}', "newer than this mlx reads" },
    { '{"version": 1, "artifacts": {"../x": {"type": "file"}}}', "artifact ../x: path leaves the project" },
    { '{"version": 1, "artifacts": {".git/hooks/post-checkout": {"type": "file"}}}',
      "artifact .git/hooks/post-checkout: path inside .git/" },
    { '{"version": 1, "artifacts": {".mlx/config.local.lua": {"type": "file"}}}',
      "artifact .mlx/config.local.lua: path inside .mlx/" },
    { '{"version": 1, "artifacts": {"a//b": {"type": "file"}}}', "empty path component" },
    { '{"version": 1, "artifacts": {"x": {"type": "file", "hash": "' .. H .. '", "size": -1, "mode": "644"}}}',
      "size must be a non-negative integer" },
    { "[1, 2]", "not a JSON object" },
    { '{"version": 1', "invalid JSON" },
  }
  for _, case in ipairs(cases) do
    assert(fs.write(lock.path(root), case[1]))
    local doc, err, code = lock.read(root)
    lu.assertNil(doc, case[1])
    lu.assertStrContains(err, lock.path(root))
    lu.assertStrContains(err, case[2])
    lu.assertEquals(code, "invalid")
  end
  os.execute("rm -rf '" .. root .. "'")
end

function TestLock:test_update_leaves_a_corrupt_lock_untouched()
  local root = project()
  assert(fs.write(lock.path(root), "{broken"))
  local ok, err, code = lock.update(root, "artifacts", function() end)
  lu.assertNil(ok)
  lu.assertStrContains(err, "invalid JSON")
  lu.assertEquals(code, "invalid")
  lu.assertEquals(assert(io.open(lock.path(root))):read("a"), "{broken")
  os.execute("rm -rf '" .. root .. "'")
end

-- A checkpoint changes the lock it wrote last in memory instead of reading
-- it again, but only while the file still holds exactly those bytes.
function TestLock:test_update_reuses_its_last_lock_only_while_the_file_is_unchanged()
  local root = project()
  local last = {}
  local function update(fn)
    local written, digest, code = lock.update(root, "artifacts", fn, last)
    last.lock, last.digest = written, digest
    return written, digest, code
  end
  local first = assert(update(function(a) a["data/a"] = { type = "file", hash = H, size = 1, mode = "644" } end))
  local second = assert(update(function(a) a["data/b"] = { type = "file", hash = H, size = 2, mode = "644" } end))
  lu.assertTrue(rawequal(first, second))
  -- Another writer changed the file: its change is read and kept.
  assert(lock.update(root, "artifacts", function(a) a["data/c"] = { type = "file", hash = H, size = 3, mode = "644" } end))
  local third = assert(update(function(a) a["data/d"] = { type = "file", hash = H, size = 4, mode = "644" } end))
  lu.assertFalse(rawequal(second, third))
  local doc = assert(lock.read(root))
  for _, name in ipairs({ "data/a", "data/b", "data/c", "data/d" }) do lu.assertNotNil(doc.artifacts[name], name) end
  -- A file changed by hand (here made corrupt) is read, and refused.
  assert(fs.write(lock.path(root), "{broken"))
  local ok, err, code = update(function() end)
  lu.assertNil(ok)
  lu.assertStrContains(err, "invalid JSON")
  lu.assertEquals(code, "invalid")
  os.execute("rm -rf '" .. root .. "'")
end

-- An update that fails leaves no remembered table that differs from the file.
function TestLock:test_update_that_fails_forgets_the_last_lock()
  local root = project()
  local written, digest = assert(lock.update(root, "artifacts", function() end))
  local last = { lock = written, digest = digest }
  lu.assertErrorMsgContains("stop", lock.update, root, "artifacts", function(a)
    a["data/x"] = { type = "file", hash = H, size = 1, mode = "644" }
    error("stop", 0)
  end, last)
  lu.assertNil(last.lock)
  local after = assert(lock.update(root, "artifacts", function() end, last))
  lu.assertNil(after.artifacts["data/x"])
  os.execute("rm -rf '" .. root .. "'")
end

TestLockSteps = {}

function TestLockSteps:test_deterministic_must_be_a_boolean()
  require "mlx.pipeline.engine" -- adds the validator of the "steps" section
  local root = project()
  local entry = { key = H, deterministic = false, outs = {} }
  assert(json.save(lock.path(root), { version = 1, steps = { p = { s = entry } } }))
  local doc = assert(lock.read(root))
  lu.assertEquals(doc.steps.p.s.deterministic, false)
  entry.deterministic = "no"
  assert(json.save(lock.path(root), { version = 1, steps = { p = { s = entry } } }))
  local bad, err = lock.read(root)
  lu.assertNil(bad)
  lu.assertStrContains(err, "step p/s: deterministic must be true or false")
  os.execute("rm -rf '" .. root .. "'")
end

function TestLockSteps:test_cache_is_optional_and_a_boolean()
  require "mlx.pipeline.engine"
  local root = project()
  -- A lock from before the field: its outs are taken as stored.
  local entry = { key = H, outs = { ["work/x"] = { type = "file", hash = H, size = 1, mode = "644" } } }
  assert(json.save(lock.path(root), { version = 1, steps = { p = { s = entry } } }))
  local doc = assert(lock.read(root))
  local _, _, uncached = require("mlx.artifacts").pinned(doc)
  lu.assertNil(uncached["work/x"])
  entry.cache = false
  assert(json.save(lock.path(root), { version = 1, steps = { p = { s = entry } } }))
  doc = assert(lock.read(root))
  _, _, uncached = require("mlx.artifacts").pinned(doc)
  lu.assertTrue(uncached["work/x"])
  entry.cache = "no"
  assert(json.save(lock.path(root), { version = 1, steps = { p = { s = entry } } }))
  local bad, err = lock.read(root)
  lu.assertNil(bad)
  lu.assertStrContains(err, "step p/s: cache must be true or false")
  os.execute("rm -rf '" .. root .. "'")
end

-- mlx.lockmerge: the three-way merge git runs on mlx.lock.
local lockmerge = require "mlx.lockmerge"

local function file(c) return { type = "file", hash = c:rep(64), size = 1, mode = "644" } end
local function step(c) return { key = c:rep(64), outs = { ["out.txt"] = file(c) } } end

TestLockMerge = {}

function TestLockMerge:test_entries_one_side_changed_take_that_side()
  local base = { version = 1, artifacts = { a = file("1"), gone = file("2") }, steps = { p = { s = step("3") } } }
  local ours = { version = 1, artifacts = { a = file("1"), gone = file("2"), mine = file("4") },
    steps = { p = { s = step("3"), t = step("5") } } }
  local theirs = { version = 1, artifacts = { a = file("6"), theirs = file("7") }, steps = { p = { s = step("8") } } }
  local merged, conflicts, notes = lockmerge.merge(base, ours, theirs)
  lu.assertEquals(conflicts, {})
  lu.assertEquals(notes, {})
  lu.assertEquals(merged.artifacts, { a = file("6"), mine = file("4"), theirs = file("7") })
  lu.assertEquals(merged.steps, { p = { s = step("8"), t = step("5") } })
end

function TestLockMerge:test_a_path_both_changed_keeps_ours_as_a_conflict()
  local merged, conflicts = lockmerge.merge({ artifacts = { a = file("1") } }, { artifacts = { a = file("2") } },
    { artifacts = { a = file("3") } })
  lu.assertEquals(merged.artifacts.a, file("2"))
  lu.assertEquals(#conflicts, 1)
  lu.assertStrContains(conflicts[1], "artifact a: changed on both sides (ours: file 22222222, theirs: file 33333333)")
end

function TestLockMerge:test_a_step_both_reran_keeps_ours_as_a_note()
  local merged, conflicts, notes = lockmerge.merge({ steps = { p = { s = step("1") } } },
    { steps = { p = { s = step("2") } } }, { steps = { p = { s = step("3") } } })
  lu.assertEquals(merged.steps.p.s, step("2"))
  lu.assertEquals(conflicts, {})
  lu.assertStrContains(notes[1], "step p/s: re-run on both sides; kept ours")
end

function TestLockMerge:test_a_directory_both_changed_goes_to_merge_dir()
  local dir = function(c) return { type = "dir", hash = c:rep(64), size = 2, files = 2 } end
  local asked
  local merged, conflicts, notes = lockmerge.merge({ artifacts = { d = dir("1") } }, { artifacts = { d = dir("2") } },
    { artifacts = { d = dir("3") } }, function(path, b, o, t)
      asked = { path, b.hash, o.hash, t.hash }
      return dir("4")
    end)
  lu.assertEquals(asked, { "d", ("1"):rep(64), ("2"):rep(64), ("3"):rep(64) })
  lu.assertEquals(merged.artifacts.d, dir("4"))
  lu.assertEquals(conflicts, {})
  lu.assertStrContains(notes[1], "artifact d: files changed on both sides, merged file by file (2 files)")
end

function TestLockMerge:test_the_merged_lock_passes_validation()
  local root = project()
  local merged = lockmerge.merge({}, { artifacts = { a = file("1") } }, { steps = { p = { s = step("2") } } })
  assert(fs.write(lock.path(root), lock.encode(merged)))
  local back = assert(lock.read(root))
  lu.assertEquals(back.artifacts, { a = file("1") })
  lu.assertEquals(back.steps.p.s.key, ("2"):rep(64))
  os.execute("rm -rf '" .. root .. "'")
end

os.exit(lu.LuaUnit.run("-o", "tap"), true)
