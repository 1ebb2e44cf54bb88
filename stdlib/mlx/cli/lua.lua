-- mlx lua: a Lua 5.4 interpreter with the mlx modules, for scripts and tests.
local script = require "mlx.script"
local ui = require "mlx.ui"

return {
  summary = "run Lua code with the mlx modules (a file, -e CODE, or stdin)",
  usage = "mlx lua [-e CODE]... [FILE [ARGS...]]",
  description = [[
Runs each -e CODE in order, then FILE with ARGS (arg[0] = FILE). With neither,
reads the program from standard input; FILE "-" does too. Options after FILE
belong to the script. Errors exit as for mlx recipe: 1 when the code raises,
2 when it does not compile.]],
  options = {
    { "execute", short = "e", arg = "CODE", multiple = true, help = "run CODE (repeatable)" },
  },
  stop_at_positional = true,
  main = function(opts, args)
    for i, code in ipairs(opts.execute) do
      local chunk, err = load(code, "=(command line -e #" .. i .. ")")
      if not chunk then ui.usage_error("%s", err) end
      chunk()
    end
    if #args > 0 or #opts.execute == 0 then
      local path = table.remove(args, 1) or "-"
      script.run(script.load(path), path, args)
    end
    return 0
  end,
}
