-- mlx report: the working tree against a baseline, as Markdown, HTML and
-- SVG plots (mlx.report), optionally posted to the pull request.
local ui = require "mlx.ui"

return {
  summary = "write a report of the working tree against a baseline (Markdown, HTML, plots)",
  usage = "mlx report [--baseline REV|MODEL@ALIAS] [--out FILE] [--post] [--assets-url URL]",
  description = [[
Writes a Markdown report of the working tree against a baseline (default
HEAD; a git revision or NAME@ALIAS, as 'mlx metrics diff'): the metrics with
their changes, the params that changed, each step's time, the data that
changed, and plots drawn by gnuplot as SVG files beside the report: a chart
of the compared metrics, each metric logged over steps, and the plots files
steps declare (plots = {…}). An HTML version with the plots inline is
written beside it (FILE with .html). Without gnuplot the report has no plots
(a warning says so). With --post, the Markdown is also posted as one comment
on the GitHub pull request or GitLab merge request of the CI job, updated in
place on later runs; its plots are links to the CI artifacts (--assets-url,
else derived from the CI environment). The token comes from GITHUB_TOKEN or
GITLAB_TOKEN and is never printed. FILE is checked before anything is
built: a file (or a symbolic link to nothing) where one of its directories
should be is bad input (exit 2); missing directories are made. See
docs/reports.md.]],
  options = {
    { "baseline", arg = "REV|MODEL@ALIAS", help = "what to compare with (default HEAD)" },
    { "out", short = "o", arg = "FILE", help = "the Markdown file to write (default mlx-report.md)" },
    { "post", help = "post the report as one comment on the CI job's pull or merge request" },
    { "assets-url", arg = "URL", help = "with --post: where the plots are published (URL/FILE links)" },
  },
  args = { max = 0 },
  main = function(opts)
    local project = require "mlx.project"
    local report = require "mlx.report"
    local root = project.require_root()
    local out = opts.out or "mlx-report.md"
    -- Checked before anything is built or written: a report takes seconds
    -- to make, and the plots and the HTML go beside FILE, where they would
    -- be left if FILE then could not be written.
    require("mlx.cli").check_output("--out", out, { example = "report.md" })
    -- Everything --post needs is checked before anything is written.
    local target
    if opts.post then
      local err, code
      target, err, code = require("mlx.report.post").target()
      if not target then ui.fail(ui.exit_code_for(code), "%s", err) end
    elseif opts.assets_url then
      ui.usage_error("--assets-url is for --post (see 'mlx help report')")
    end
    local r = ui.check(report.build(root, { baseline = opts.baseline }))
    local _, stem = report.split_path(out)
    local drawn, why = report.draw(r, stem)
    if not drawn then ui.warn(why) end
    for _, w in ipairs(r.warnings) do ui.warn(w) end
    local written = ui.check(report.write(r, out))
    ui.note(("wrote %s, %s and %d plot%s"):format(written.markdown, written.html, #written.svgs,
      #written.svgs == 1 and "" or "s"))
    if target then
      -- Without a place the plots are published, they are named, not linked.
      local links = report.asset_links(opts.assets_url, out) or function() return nil end
      local posted = ui.check(require("mlx.report.post").post(target, report.markdown(r, links)))
      ui.note(("%s comment %s on %s %s%s"):format(posted.action, tostring(posted.id),
        target.forge == "github" and "pull request" or "merge request", target.number,
        posted.url and (": " .. posted.url) or ""))
    end
    return ui.EXIT.OK
  end,
}
