-- mlx dag: print a recipe's pipeline as a graph.
local cli = require "mlx.cli"
local graph = require "mlx.pipeline.graph"
local load = require "mlx.pipeline.load"
local render = require "mlx.pipeline.render"
local ui = require "mlx.ui"

return {
  summary = "print a recipe's pipeline graph (text, Graphviz dot, or Mermaid)",
  usage = "mlx dag FILE [--dot | --mermaid] [-p KEY=VALUE]... [--params-file FILE]",
  description = [[
Loads the recipe (running its top-level code, which declares the steps),
checks the pipeline, and prints its steps in run order with what each waits
for. --dot prints Graphviz (mlx dag r.lua --dot | dot -Tsvg > dag.svg),
--mermaid a Mermaid flowchart for Markdown.]],
  options = {
    { "dot", help = "Graphviz dot output" },
    { "mermaid", help = "Mermaid flowchart output" },
    cli.option("param", { help = "override a param, converted to the type of its default (repeatable)" }),
    cli.option("params-file"),
  },
  args = { min = 1, max = 1, name = "a recipe FILE" },
  main = function(opts, args)
    if opts.dot and opts.mermaid then ui.usage_error("choose one of --dot and --mermaid") end
    local p = load.recipe(args[1], {}, load.overrides(opts))
    if not p then ui.usage_error("%s declares no pipeline (it ran as a script)", args[1]) end
    -- Declared paths are relative to the project root, wherever mlx runs.
    local g = graph.build(p, graph.in_workspace(require("mlx.project").root()))
    if opts.dot then
      io.stdout:write(render.dot(g, p.name))
    elseif opts.mermaid then
      io.stdout:write(render.mermaid(g))
    else
      io.stdout:write(render.text(g))
    end
    return 0
  end,
}
