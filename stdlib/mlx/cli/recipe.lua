-- mlx recipe: run a recipe file.
local script = require "mlx.script"

return {
  summary = "run a recipe (a Lua file using the mlx modules)",
  usage = "mlx recipe FILE [ARGS...]",
  description = [[
Runs FILE with the mlx modules available (local mlx = require "mlx") and the
global arg set: arg[0] is FILE, arg[1]... are ARGS. Put "--" before ARGS
that start with "-". Exit codes: 0 when the recipe finishes, 1 when it raises
an error (printed as file:line: message), 2 when it does not compile.]],
  args = { min = 1, name = "a recipe FILE" },
  main = function(_, args)
    local path = table.remove(args, 1)
    local chunk = script.load(path, "recipe")
    script.run(chunk, path, args)
    return 0
  end,
}
