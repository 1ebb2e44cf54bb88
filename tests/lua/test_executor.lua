-- mlx.executor: the choice of a step's executor and its resources, the
-- config they come from, and the checks that turn bad values into one
-- clear message.
local lu = require "luaunit"
local executor = require "mlx.executor"
local fs = require "mlx.fs"

local function project(config, config_local)
  local root = os.tmpname()
  os.remove(root)
  assert(fs.mkdirs(root .. "/.mlx"))
  if config then assert(fs.write(root .. "/.mlx/config.lua", config)) end
  if config_local then assert(fs.write(root .. "/.mlx/config.local.lua", config_local)) end
  return root
end

TestExecutor = {}

function TestExecutor:test_command_line_beats_step_beats_pipeline_beats_config()
  local config = { executor = "cfg", resources = {} }
  local p = { executor_spec = { name = "pipe", options = {} } }
  lu.assertEquals({ executor.choose({ executor = "own" }, p, config, "cli") }, { "cli", "the command line" })
  lu.assertEquals({ executor.choose({ executor = "own" }, p, config, nil) }, { "own", "the step" })
  lu.assertEquals({ executor.choose({}, p, config, nil) }, { "pipe", "the pipeline" })
  lu.assertEquals({ executor.choose({}, {}, config, nil) }, { "cfg", "the config" })
  lu.assertEquals({ executor.choose({}, {}, { resources = {} }, nil) }, { "local", "the default" })
end

function TestExecutor:test_resources_merge_field_by_field()
  local merged = executor.resources({ resources = { mem = "8G" } },
    { default_resources = { cpus = 2, mem = "1G" } }, { resources = { partition = "batch", cpus = 1 } })
  lu.assertEquals(merged, { cpus = 2, mem = "8G", partition = "batch" })
end

function TestExecutor:test_bad_resources_are_named()
  lu.assertNil(executor.resources_problem({ cpus = 4, mem = "8G", time = "02:00:00", gpus = 0, partition = "gpu" }))
  lu.assertNil(executor.resources_problem({ time = "30" }))
  lu.assertNil(executor.resources_problem({ time = "1-00:00:00" }))
  lu.assertStrContains(executor.resources_problem({ cpus = 0 }), "resources.cpus must be a positive integer, not 0")
  lu.assertStrContains(executor.resources_problem({ cpus = 1.5 }), "resources.cpus must be a positive integer")
  lu.assertStrContains(executor.resources_problem({ mem = "8GB" }), "resources.mem must be a size")
  lu.assertStrContains(executor.resources_problem({ time = "2h" }), "resources.time must be a Slurm time")
  lu.assertStrContains(executor.resources_problem({ gpu = 1 }), "unknown field 'gpu' (did you mean 'gpus'?)")
  lu.assertStrContains(executor.resources_problem("4 cpus"), "resources must be a table")
end

function TestExecutor:test_config_local_wins_and_bad_values_name_the_file()
  local root = project('return { executor = "slurm", resources = { mem = "1G" }, slurm = { poll = 2 } }',
    'return { resources = { mem = "2G" }, slurm = { heartbeat = 9 } }')
  local config = assert(executor.config(root))
  lu.assertEquals(config.executor, "slurm")
  lu.assertEquals(config.resources, { mem = "2G" })
  lu.assertEquals(config.options.slurm, { poll = 2, heartbeat = 9 })
  assert(fs.write(root .. "/.mlx/config.lua", 'return { executor = "no such" }'))
  local ok, err = executor.config(root)
  lu.assertNil(ok)
  lu.assertStrContains(err, root .. "/.mlx/config.lua: executor must be a name")
  assert(fs.write(root .. "/.mlx/config.lua", 'return { resources = { cpus = -1 } }'))
  ok, err = executor.config(root)
  lu.assertNil(ok)
  lu.assertStrContains(err, "config.lua: resources.cpus must be a positive integer")
  local bare = project()
  lu.assertEquals(executor.config(bare), { resources = {}, options = {} })
  os.execute("rm -rf '" .. root .. "' '" .. bare .. "'")
end

function TestExecutor:test_open_finds_modules_and_checks_their_methods()
  local local_ex = assert(executor.open("local", { root = "/", jobs = 4, options = {} }))
  lu.assertEquals(local_ex:slots({ resources = { cpus = 2 } }), 2)
  lu.assertEquals(local_ex:slots({ resources = { cpus = 16 } }), 4)
  lu.assertEquals(local_ex:slots({ resources = {} }), 1)
  local ok, err = executor.open("nosuch", {})
  lu.assertNil(ok)
  lu.assertStrContains(err, "no executor named 'nosuch'")
  package.preload["mlx.executor.halfdone"] = function() return { new = function() return { submit = print } end } end
  ok, err = executor.open("halfdone", {})
  lu.assertNil(ok)
  lu.assertStrContains(err, "executor 'halfdone' has no method poll (see docs/extending.md)")
  package.preload["mlx.executor.refuses"] = function() return { new = function() return nil, "no cluster here" end } end
  ok, err = executor.open("refuses", {})
  lu.assertNil(ok)
  lu.assertEquals(err, "executor 'refuses': no cluster here")
end

os.exit(lu.LuaUnit.run("-o", "tap"), true)
