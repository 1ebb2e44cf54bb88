-- mlx.metrics, mlx.report and its parts, without a project: the --fail-on
-- rules, the comparisons, the plot file forms, where --post posts and
-- where plots link to, and the two renderings of one report.
local lu = require "luaunit"
local metrics = require "mlx.metrics"
local plot = require "mlx.report.plot"
local post = require "mlx.report.post"
local report = require "mlx.report"

local function env(t)
  return function(name) return t[name] end
end

TestMetrics = {}

function TestMetrics:test_rules_parse_and_refuse_with_the_rule_named()
  lu.assertEquals(metrics.parse_rule("acc<0.9"), { key = "acc", op = "<", limit = 0.9, text = "acc<0.9" })
  lu.assertEquals(metrics.parse_rule("loss:+0.05").op, "rise")
  local r = metrics.parse_rule("acc:-2%")
  lu.assertEquals({ r.op, r.limit, r.relative }, { "drop", 0.02, true })
  local _, why = metrics.parse_rule("acc=0.9")
  lu.assertEquals(why, "--fail-on 'acc=0.9': expected KEY<N, KEY>N, KEY:-N or KEY:+N (N may end with %)")
  _, why = metrics.parse_rule("acc:-x")
  lu.assertEquals(why, "--fail-on 'acc:-x': 'x' is not a number")
end

function TestMetrics:test_rules_check_both_numbers()
  local base, cur = { acc = 0.9, loss = 0.2 }, { acc = 0.85, loss = 0.2 }
  lu.assertEquals(metrics.check_rule(metrics.parse_rule("acc:-0.01"), base, cur),
    "--fail-on acc:-0.01: acc fell from 0.9 to 0.85 (-0.05)")
  lu.assertNil(metrics.check_rule(metrics.parse_rule("acc:-0.1"), base, cur))
  lu.assertNil(metrics.check_rule(metrics.parse_rule("loss:+0%"), base, cur))
  lu.assertEquals(metrics.check_rule(metrics.parse_rule("f1>0"), base, cur),
    "--fail-on f1>0: f1 has no value in the working tree")
  lu.assertEquals(metrics.check_rule(metrics.parse_rule("acc:-1%"), {}, cur),
    "--fail-on acc:-1%: acc has no value in the baseline")
  lu.assertNil(metrics.check_rule(metrics.parse_rule("acc>0.9"), {}, cur))
end

function TestMetrics:test_a_mistyped_key_gets_a_suggestion()
  local base, cur = { accuracy = 0.9 }, { accuracy = 0.85, loss = 0.2 }
  lu.assertEquals(metrics.check_rule(metrics.parse_rule("acuracy<0.5"), base, cur),
    "--fail-on acuracy<0.5: acuracy has no value in the working tree (did you mean 'accuracy'?)")
  -- A metric the baseline has and the working tree lost is no typo.
  lu.assertEquals(metrics.check_rule(metrics.parse_rule("los>1"), { los = 1 }, cur),
    "--fail-on los>1: los has no value in the working tree")
end

function TestMetrics:test_diffs()
  local rows = metrics.diff({ a = 2, gone = 1 }, { a = 3, new = 5 })
  lu.assertEquals(#rows, 3)
  lu.assertEquals({ rows[1].key, rows[1].delta, rows[1].rel }, { "a", 1, 0.5 })
  lu.assertNil(rows[2].delta)
  -- A run records params as text: 0.1 from a lock equals "0.1" from a run.
  lu.assertEquals(metrics.params_diff({ lr = "0.1", seed = "7" }, { lr = 0.1, seed = 8 }),
    { { key = "seed", base = "7", cur = "8" } })
  lu.assertEquals(metrics.data_diff({ a = "x", b = "y" }, { b = "z", c = "w" }), {
    { path = "a", base = "x", change = "removed" },
    { path = "b", base = "y", cur = "z", change = "modified" },
    { path = "c", cur = "w", change = "added" },
  })
  lu.assertTrue(metrics.is_model_ref("iris@production"))
  lu.assertTrue(metrics.is_model_ref("iris:3"))
  lu.assertFalse(metrics.is_model_ref("HEAD~1"))
  lu.assertFalse(metrics.is_model_ref("HEAD@{1}"))
end

function TestMetrics:test_a_lock_from_a_clone_names_no_file_outside_its_outs()
  local fs, json = require "mlx.fs", require "mlx.json"
  local root = os.tmpname()
  os.remove(root)
  assert(fs.mkdirs(root .. "/.mlx"))
  assert(fs.mkdirs(root .. "/work"))
  assert(fs.write(root .. "/work/m.json", '{"acc": 0.5, "nested": {"f1": 0.25}}'))
  local out = { type = "file", hash = ("ab"):rep(32), size = 1, mode = "644" }
  assert(json.save(root .. "/mlx.lock", { version = 1, steps = { p = { s = { key = ("cd"):rep(32),
    params = { lr = 0.1 }, outs = { ["work/m.json"] = out },
    metrics = { "work/m.json", "../secret.json", "work/other.json" }, plots = "work/m.json" } } } }))
  local side = assert(metrics.workspace(root, { runs = false }))
  lu.assertEquals(side.metrics, { acc = 0.5, ["nested.f1"] = 0.25 })
  lu.assertEquals(side.params, { lr = 0.1 })
  lu.assertEquals(side.plots, {})
  table.sort(side.warnings)
  lu.assertEquals(#side.warnings, 2)
  lu.assertStrContains(side.warnings[1], "mlx.lock of workspace: step s: metrics ../secret.json: ")
  lu.assertEquals(side.warnings[2], "mlx.lock of workspace: step s: metrics work/other.json: not one of its outs")
  -- The steps section is validated as every reader of mlx.lock does.
  assert(json.save(root .. "/mlx.lock", { version = 1, steps = { p = { s = { key = "short" } } } }))
  local none, why, code = metrics.workspace(root, { runs = false })
  lu.assertNil(none)
  lu.assertStrContains(why, "step p/s: key must be 64 hex digits")
  lu.assertEquals(code, "invalid")
  os.execute("rm -rf '" .. root .. "'")
end

TestPlot = {}

function TestPlot:test_plot_files_of_each_form()
  local spec = assert(plot.from_file("c.json", { type = "confusion", labels = { "a", "b" }, matrix = { { 1, 2 }, { 3, 4 } } }))
  lu.assertEquals(spec.files, { "1 2\n3 4\n" })
  lu.assertStrContains(spec.body, "set xtics ('a' 0, 'b' 1)")
  spec = assert(plot.from_file("l.json", { { step = 1, loss = 0.5 }, { step = 2, loss = 0.25 } }))
  lu.assertEquals(spec.files, { "1 0.5\n2 0.25\n" })
  lu.assertEquals(spec.xlabel, "step")
  spec = assert(plot.from_file("b.json", { type = "bar", x = "class", y = "f1", rows = { { class = "it's", f1 = 0.5 } } },
    { type = "bar", x = "class", y = "f1", rows = { { class = "x", f1 = 1 } } }, "HEAD"))
  lu.assertEquals(#spec.files, 1, "a bar plot has no baseline overlay")
  spec = assert(plot.from_file("s.json", { type = "scatter", x = "x", y = { "y" }, rows = { { x = 1, y = 2 } } },
    { type = "scatter", x = "x", y = { "y" }, rows = { { x = 1, y = 3 } } }, "HEAD~1"))
  lu.assertEquals(spec.files, { "1 3\n", "1 2\n" })
  lu.assertStrContains(spec.body, "title 'y (HEAD~1)'")
end

function TestPlot:test_bad_plot_files_say_why()
  local function why(doc) return select(2, plot.from_file("p.json", doc)) end
  lu.assertEquals(why({ type = "pie", rows = {} }), "unknown plot type 'pie' (line, scatter, bar or confusion)")
  lu.assertEquals(why({ type = "confusion", matrix = { { 1, 2 }, { 3 } } }), "matrix row 2 must have 2 numbers")
  lu.assertEquals(why({ type = "confusion", matrix = { { 1 } }, labels = { "a", "b" } }),
    "\"labels\" must be a list of 1 names")
  lu.assertEquals(why({ type = "line", rows = {} }), "\"rows\" must be a non-empty array of objects")
  lu.assertEquals(why({ type = "line", rows = { { name = "a" } } }), "the rows have no numeric column to plot")
  lu.assertEquals(why("text"), "expected a JSON object or array")
end

function TestPlot:test_one_gnuplot_for_all_and_a_failing_plot_found_alone()
  local fs, proc = require "mlx.fs", require "mlx.proc"
  lu.skipIf(not proc.run { "gnuplot", "--version", stdout = "capture" }, "no gnuplot")
  local dir = os.tmpname()
  os.remove(dir)
  assert(fs.mkdirs(dir))
  -- A gnuplot that counts its starts and fails on a script naming FAILME.
  local fake = dir .. "/gnuplot"
  assert(fs.write(fake, "#!/bin/sh\necho >>'" .. dir .. "/starts'\n"
    .. "if grep -q FAILME \"$1\"; then echo \"line 9: FAILME\" >&2; exit 1; fi\nexec gnuplot \"$@\"\n", 493))
  local good = plot.curve("loss", { { label = "a", points = { { step = 1, value = 2 }, { step = 2, value = 1 } } } })
  local bad = plot.curve("FAILME", { { label = "b", points = { { step = 1, value = 1 } } } })
  local starts = function()
    local f = io.open(dir .. "/starts")
    local n = f and #f:read("a") or 0
    if f then f:close() end
    return n
  end
  plot.PROGRAM = fake
  local results = assert(plot.draw_all(dir, { { svg = dir .. "/1.svg", spec = good }, { svg = dir .. "/2.svg", spec = good } }))
  lu.assertEquals(results, { true, true })
  lu.assertEquals(starts(), 1, "one gnuplot draws every plot")
  results = assert(plot.draw_all(dir, { { svg = dir .. "/3.svg", spec = good }, { svg = dir .. "/4.svg", spec = bad } }))
  lu.assertEquals(results[1], true)
  lu.assertStrContains(results[2], "gnuplot: ")
  lu.assertStrContains(results[2], "exited with status 1: line 9: FAILME")
  lu.assertNotNil(fs.stat(dir .. "/3.svg"))
  plot.PROGRAM = dir .. "/missing"
  local none, why = plot.draw_all(dir, { { svg = dir .. "/5.svg", spec = good } })
  lu.assertNil(none)
  lu.assertStrContains(why, "(install gnuplot-nox); the report has no plots")
  plot.PROGRAM = "gnuplot"
  os.execute("rm -rf '" .. dir .. "'")
end

function TestPlot:test_metrics_of_unlike_magnitudes_get_panels_of_their_own()
  local rows = { { key = "accuracy", base = 0.95, cur = 0.91 }, { key = "n", base = 45, cur = 45 },
    { key = "recall", base = 1, cur = 0.87 }, { key = "zero", base = 0, cur = 0 } }
  local spec = plot.comparison(rows, "main", "workspace")
  -- Two panels: 0.95 beside 45 would be a sliver.
  lu.assertEquals(#spec.files, 2)
  lu.assertEquals(spec.files[1], '"accuracy" 0.94999999999999996 0.91000000000000003\n"recall" 1 0.87\n"zero" 0 0\n')
  lu.assertEquals(spec.files[2], '"n" 45 45\n')
  lu.assertStrContains(spec.body, "set multiplot layout 2,1 title 'metrics: workspace against main'")
  lu.assertNil(spec.title)
  lu.assertTrue(spec.height > 420)
  -- Alike magnitudes: one chart, as before.
  spec = plot.comparison({ rows[1], rows[3] }, "main", "workspace")
  lu.assertEquals(#spec.files, 1)
  lu.assertEquals(spec.title, "metrics: workspace against main")
  lu.assertNotStrContains(spec.body, "multiplot")
  local fs, proc = require "mlx.fs", require "mlx.proc"
  if proc.run { "gnuplot", "--version", stdout = "capture" } then
    local dir = os.tmpname()
    os.remove(dir)
    assert(fs.mkdirs(dir))
    local results = assert(plot.draw_all(dir, { { svg = dir .. "/m.svg", spec = plot.comparison(rows, "a", "b") } }))
    lu.assertEquals(results, { true })
    local f = assert(io.open(dir .. "/m.svg"))
    local svg = f:read("a")
    f:close()
    lu.assertStrContains(svg, "<svg")
    os.execute("rm -rf '" .. dir .. "'")
  end
end

TestPost = {}

function TestPost:test_github_target_from_the_environment()
  local t = assert(post.target(nil, env { GITHUB_ACTIONS = "true", GITHUB_REPOSITORY = "acme/iris",
    GITHUB_TOKEN = "s3cret", GITHUB_REF = "refs/pull/12/merge" }))
  lu.assertEquals(t.forge, "github")
  lu.assertEquals(t.thread, "https://api.github.com/repos/acme/iris/issues/12/comments")
  lu.assertEquals(t.comment(5), "https://api.github.com/repos/acme/iris/issues/comments/5")
  lu.assertEquals(t.headers.Authorization, "Bearer s3cret")
  local _, why, code = post.target(nil, env { GITHUB_REPOSITORY = "acme/iris", GITHUB_REF = "refs/heads/main",
    GITHUB_TOKEN = "x" })
  lu.assertEquals(code, "invalid")
  lu.assertStrContains(why, "--post to GitHub: the pull request number")
  _, why = post.target(nil, env { GITHUB_REPOSITORY = "acme/iris", GITHUB_REF = "refs/pull/1/merge" })
  lu.assertEquals(why, "--post to GitHub: GITHUB_TOKEN is not set")
end

function TestPost:test_github_pull_request_number_from_the_event()
  local event = os.tmpname()
  assert(require("mlx.fs").write(event, '{"action": "synchronize", "pull_request": {"number": 31}}'))
  local t = assert(post.target("github", env { GITHUB_REPOSITORY = "acme/iris", GITHUB_TOKEN = "x",
    GITHUB_EVENT_PATH = event, GITHUB_API_URL = "https://ghe.example/api/v3" }))
  lu.assertEquals(t.thread, "https://ghe.example/api/v3/repos/acme/iris/issues/31/comments")
  os.remove(event)
end

function TestPost:test_gitlab_target_and_outside_ci()
  local t = assert(post.target(nil, env { GITLAB_CI = "true", CI_API_V4_URL = "https://gl.example/api/v4/",
    CI_PROJECT_ID = "42", CI_MERGE_REQUEST_IID = "3", GITLAB_TOKEN = "tok" }))
  lu.assertEquals(t.thread, "https://gl.example/api/v4/projects/42/merge_requests/3/notes")
  lu.assertEquals(t.comment(9), t.thread .. "/9")
  lu.assertEquals(t.update_method, "PUT")
  lu.assertEquals(t.headers["PRIVATE-TOKEN"], "tok")
  local _, why = post.target(nil, env {})
  lu.assertStrContains(why, "--post: not in GitHub Actions or GitLab CI")
end

function TestPost:test_plot_links_for_each_ci()
  local links = report.asset_links(nil, "/builds/acme/iris/out/r.md",
    env { CI_JOB_URL = "https://gl.example/acme/iris/-/jobs/5", CI_PROJECT_DIR = "/builds/acme/iris" })
  lu.assertEquals(links("r-metrics.svg"), "https://gl.example/acme/iris/-/jobs/5/artifacts/file/out/r-metrics.svg")
  links = report.asset_links(nil, "r.md", env { GITHUB_RUN_ID = "7", GITHUB_REPOSITORY = "acme/iris" })
  lu.assertEquals(links("x.svg"), "https://github.com/acme/iris/actions/runs/7")
  links = report.asset_links("https://cdn.example/r/", "r.md", env {})
  lu.assertEquals(links("x.svg"), "https://cdn.example/r/x.svg")
  lu.assertNil(report.asset_links(nil, "r.md", env {}))
end

TestRender = {}

local function sample()
  local side = function(label) return { label = label, steps = {}, data = {}, params = {}, metrics = {} } end
  return {
    base = side("HEAD~1 (abc1234)"), cur = side("workspace"), warnings = { "a <warning> | with a bar" },
    metrics = metrics.diff({ acc = 0.9, loss = 0.3 }, { acc = 0.95, loss = 0.3 }),
    params = metrics.params_diff({ lr = 0.1 }, { lr = 0.2 }), data = {}, steps = {},
    figures = { { name = "metrics", title = "metrics", file = "r-metrics.svg",
      svg = "<?xml version=\"1.0\"?>\n<svg id='a'><use href='#a'/></svg>\n" } },
  }
end

function TestRender:test_markdown_has_the_marker_tables_and_images_or_links()
  local md = report.markdown(sample())
  lu.assertEquals(md:sub(1, #post.MARKER), post.MARKER)
  lu.assertStrContains(md, "| acc | 0.9 | 0.95 | ▲ +0.05 (+5.6%) |\n| loss | 0.3 | 0.3 | = 0 |")
  lu.assertStrContains(md, "| lr | 0.1 | 0.2 |")
  lu.assertStrContains(md, "![metrics](r-metrics.svg)")
  lu.assertStrContains(md, "- a <warning> \\| with a bar")
  md = report.markdown(sample(), function(file) return "https://ci.example/" .. file end)
  lu.assertStrContains(md, "- [metrics](https://ci.example/r-metrics.svg)")
  md = report.markdown(sample(), function() return nil end)
  lu.assertStrContains(md, "- metrics: `r-metrics.svg`")
end

function TestRender:test_html_escapes_and_inlines_svg_with_own_ids()
  local html = report.html(sample())
  lu.assertStrContains(html, "<li>a &lt;warning&gt; | with a bar</li>")
  lu.assertStrContains(html, "<figure><svg id='f1-a'><use href='#f1-a'/></svg>")
  lu.assertNotStrContains(html, "<?xml")
end

os.exit(lu.LuaUnit.run("-o", "tap"), true)
