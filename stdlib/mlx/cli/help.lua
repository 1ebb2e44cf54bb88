-- mlx help: the overview, or one command's usage and options.
local cli = require "mlx.cli"

return {
  summary = "list the commands, or show how to use one",
  usage = "mlx help [COMMAND]",
  args = { max = 1 },
  main = function(_, args)
    if args[1] then
      io.stdout:write(cli.command_help(args[1], cli.find(args[1])))
    else
      io.stdout:write(cli.overview())
    end
    return 0
  end,
}
