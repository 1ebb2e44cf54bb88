-- mlx help: the overview, or one command's (or subcommand's) usage and options.
local cli = require "mlx.cli"

return {
  summary = "list the commands, or show how to use one",
  usage = "mlx help [COMMAND [SUBCOMMAND]]",
  description = [[
Without COMMAND, lists the commands: the built-in ones, then those added by
the project's lib/ and MLX_PATH. With COMMAND, shows its usage, description
and options (for a command with subcommands, each subcommand's too); with
SUBCOMMAND, that subcommand's. 'mlx COMMAND --help' prints the same.]],
  args = { max = 2 },
  main = function(_, args)
    if args[1] then
      io.stdout:write(cli.command_help(cli.resolve(args)))
    else
      io.stdout:write(cli.overview())
    end
    return 0
  end,
}
