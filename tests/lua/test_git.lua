-- mlx.git on real repositories made with the git command in temporary directories.
local lu = require "luaunit"
local core = require "mlx.core"
local fs = require "mlx.fs"
local git = require "mlx.git"
local json = require "mlx.json"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local support = require "support"
local tempdir = support.tempdir

local IDENTITY = "GIT_AUTHOR_NAME=Ada GIT_AUTHOR_EMAIL=ada@example.org "
  .. "GIT_COMMITTER_NAME=Ada GIT_COMMITTER_EMAIL=ada@example.org"

local function sh(dir, script)
  local ok = os.execute(("cd '%s' && export %s && (%s) >/dev/null 2>&1"):format(dir, IDENTITY, script))
  assert(ok, "fixture command failed: " .. script)
end

local function capture(dir, command)
  local p = assert(io.popen(("cd '%s' && %s"):format(dir, command)))
  local s = p:read("a"):gsub("\n$", "")
  p:close()
  return s
end

-- A project whose metrics improved in the last commit.
local function project()
  local dir = tempdir()
  sh(dir, [[git init -q -b main && mkdir data && echo 1,2 > data/train.csv &&
    printf '{"accuracy": 0.9, "loss": 0.31}\n' > metrics.json && git add . && git commit -q -m 'baseline model' &&
    printf '{"accuracy": 0.95, "loss": 0.2}\n' > metrics.json && git commit -q -am 'better model']])
  return dir, assert(git.open(dir))
end

local function remove(dir)
  os.execute("rm -rf '" .. dir .. "'")
end

TestGit = {}

function TestGit:test_outside_a_repository()
  local dir = tempdir()
  local repo, err, code = git.open(dir)
  remove(dir)
  lu.assertNil(repo)
  lu.assertEquals(err, "not a git repository: " .. dir)
  lu.assertEquals(code, "notfound")
end

function TestGit:test_open_discovers_upwards_and_defaults_to_the_working_directory()
  local dir, repo = project()
  local here = assert(fs.cwd())
  assert(fs.chdir(dir .. "/data"))
  local found = git.open()
  assert(fs.chdir(here))
  lu.assertNotNil(found)
  lu.assertEquals(found:root(), repo:root())
  lu.assertEquals(found:head().commit, repo:head().commit)
  found:close()
  repo:close()
  remove(dir)
end

function TestGit:test_head_names_commit_branch_or_detached()
  local dir, repo = project()
  local head = repo:head()
  lu.assertEquals(head.commit, capture(dir, "git rev-parse HEAD"))
  lu.assertEquals(head.short, head.commit:sub(1, 7))
  lu.assertEquals(head.branch, "main")
  lu.assertFalse(head.detached)
  local parent = capture(dir, "git rev-parse HEAD~1")
  sh(dir, "git checkout -q --detach HEAD~1")
  head = repo:head()
  lu.assertEquals(head.commit, parent)
  lu.assertNil(head.branch)
  lu.assertTrue(head.detached)
  repo:close()
  remove(dir)

  dir = tempdir()
  sh(dir, "git init -q -b develop")
  repo = assert(git.open(dir))
  head = repo:head()
  lu.assertNil(head.commit)
  lu.assertEquals(head.branch, "develop")
  lu.assertTrue(head.unborn)
  lu.assertEquals(repo:log(), {})
  repo:close()
  remove(dir)
end

function TestGit:test_is_dirty_lists_changed_paths()
  local dir, repo = project()
  local dirty, paths = repo:is_dirty()
  lu.assertFalse(dirty)
  lu.assertEquals(paths, {})
  sh(dir, "echo 3,4 >> data/train.csv && echo new > notes.txt")
  dirty, paths = repo:is_dirty()
  lu.assertTrue(dirty)
  lu.assertEquals(paths, { "data/train.csv" })
  dirty, paths = repo:is_dirty { untracked = true }
  lu.assertEquals(paths, { "data/train.csv", "notes.txt" })
  repo:close()
  remove(dir)
end

function TestGit:test_show_reads_metrics_as_they_were_on_another_revision()
  local dir, repo = project()
  sh(dir, "git tag baseline HEAD~1")
  local before = assert(json.decode(assert(repo:show("baseline", "metrics.json"))))
  local now = assert(json.decode(assert(repo:show("main", "metrics.json"))))
  lu.assertEquals(before.accuracy, 0.9)
  lu.assertEquals(now.accuracy, 0.95)
  lu.assertEquals(repo:show("HEAD~1", "data/train.csv"), "1,2\n")

  local none, err, code = repo:show("main", "missing.json")
  lu.assertNil(none)
  lu.assertEquals(err, "missing.json does not exist in 'main'")
  lu.assertEquals(code, "notfound")
  none, err, code = repo:show("v9", "metrics.json")
  lu.assertNil(none)
  lu.assertStrContains(err, "unknown revision 'v9'")
  lu.assertEquals(code, "notfound")
  repo:close()
  remove(dir)
end

function TestGit:test_tag_creates_annotated_and_lightweight_tags()
  local dir, repo = project()
  local commit = assert(repo:tag("v1.0", { message = "model v1.0: accuracy 0.95" }))
  lu.assertEquals(commit, capture(dir, "git rev-parse HEAD"))
  lu.assertEquals(capture(dir, "git cat-file -t v1.0"), "tag")
  lu.assertEquals(capture(dir, "git tag -l --format='%(contents:subject)' v1.0"), "model v1.0: accuracy 0.95")
  assert(repo:tag("baseline", { rev = "HEAD~1" }))
  lu.assertEquals(capture(dir, "git cat-file -t baseline"), "commit")
  lu.assertEquals(repo:tags(), { "baseline", "v1.0" })
  lu.assertEquals(repo:tags { points_at = "HEAD" }, { "v1.0" })

  local none, err, code = repo:tag("v1.0")
  lu.assertNil(none)
  lu.assertStrContains(err, "tag 'v1.0' already exists")
  lu.assertEquals(code, "exists")
  none, err, code = repo:tag("bad name")
  lu.assertNil(none)
  lu.assertEquals(err, "'bad name' is not a valid tag name")
  lu.assertEquals(code, "invalid")
  repo:close()
  remove(dir)
end

function TestGit:test_annotated_tag_without_identity_says_how_to_set_one()
  local dir, repo = project()
  repo:close()
  local home = tempdir()
  local mlx = core.exe_dir .. "/mlx"
  local script = ([[local r = require("mlx.git").open("%s"); print(r:tag("v1", { message = "m" }))]]):format(dir)
  local output = capture(dir, ("env -u GIT_COMMITTER_NAME -u GIT_COMMITTER_EMAIL HOME='%s' XDG_CONFIG_HOME='%s'"
    .. " GIT_CONFIG_NOSYSTEM=1 '%s' lua -e '%s' 2>&1"):format(home, home, mlx, script))
  remove(home)
  remove(dir)
  lu.assertStrContains(output, "nil\tcannot tag in ")
  lu.assertStrContains(output, "Set user.name and user.email (git config), or GIT_COMMITTER_NAME and GIT_COMMITTER_EMAIL\tinvalid")
end

function TestGit:test_log_newest_first_with_path_and_limit()
  local dir, repo = project()
  local log = repo:log()
  lu.assertEquals(#log, 2)
  lu.assertEquals(log[1].summary, "better model")
  lu.assertEquals(log[1].commit, capture(dir, "git rev-parse HEAD"))
  lu.assertEquals(log[1].short, log[1].commit:sub(1, 7))
  lu.assertEquals(log[1].author, "Ada")
  lu.assertEquals(math.type(log[1].time), "integer")
  lu.assertEquals(tostring(log[1].time), capture(dir, "git log -1 --format=%at"))
  lu.assertEquals(#repo:log { limit = 1 }, 1)
  local data = repo:log { path = "data/train.csv" }
  lu.assertEquals(#data, 1)
  lu.assertEquals(data[1].summary, "baseline model")
  repo:close()
  remove(dir)
end

function TestGit:test_close_is_idempotent_and_closed_handles_raise()
  local dir, repo = project()
  do
    local scoped <close> = assert(git.open(dir))
    lu.assertStrContains(tostring(scoped), dir)
  end
  repo:close()
  repo:close()
  lu.assertEquals(tostring(repo), "mlx.GitRepo (closed)")
  lu.assertErrorMsgContains("git repository is closed", repo.head, repo)
  remove(dir)
end

function TestGit:test_misuse_raises()
  local dir, repo = project()
  lu.assertErrorMsgContains("(unknown field 'lmit')", repo.log, repo, { lmit = 1 })
  lu.assertErrorMsgContains("(field 'limit' must be 0 (all) or more, not -1)", repo.log, repo, { limit = -1 })
  lu.assertErrorMsgContains("(field 'untracked' must be true or false, not 'yes')", repo.is_dirty, repo,
    { untracked = "yes" })
  lu.assertErrorMsgContains("bad argument #2", repo.show, repo, nil, "metrics.json")
  repo:close()
  remove(dir)
end

os.exit(lu.LuaUnit.run("-o", "tap"), true)
