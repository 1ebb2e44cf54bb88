#!/usr/bin/env bash
# The mlx command line as a user meets it: help, version, errors, exit codes.
. "$(dirname "$0")/tap.sh"

mlx --version
is "$RC" 0 "--version exits 0"
like "$OUT" '^mlx [0-9]+\.[0-9]+\.[0-9]+$' "--version prints one line"

mlx --version -v
like "$OUT" 'SQLite 3\.' "--version -v names SQLite"
like "$OUT" 'libcurl [0-9]' "--version -v names libcurl"
like "$OUT" 'libgit2 [0-9]' "--version -v names libgit2"

mlx help
is "$RC" 0 "help exits 0"
for cmd in hash help init lua recipe version; do
	like "$OUT" "^  $cmd " "help lists $cmd"
done

mlx help recipe
like "$OUT" '^usage: mlx recipe FILE' "help CMD prints the command's usage"
mlx recipe --help
like "$OUT" '^usage: mlx recipe FILE' "CMD --help prints the same"

mlx
is "$RC" 2 "no command exits 2"
like "$ERR" '^usage: mlx' "no command prints the usage on stderr"

mlx frobnicate
is "$RC" 2 "unknown command exits 2"
is "$ERR" "mlx: error: 'frobnicate' is not an mlx command (see 'mlx help')" "unknown command: one line"

mlx params diff
is "$RC" 2 "a command of DVC's exits 2"
is "$ERR" "mlx: error: 'params' is not an mlx command; for dvc params, use mlx metrics diff [REV] (it lists the params that differ; --all lists every one)" \
	"naming the mlx command that does it"

mlx recipy x.lua
like "$ERR" "did you mean 'recipe'\?" "a near miss suggests the command"

mlx hash --bogus
is "$RC" 2 "bad flag exits 2"
is "$ERR" "mlx: error: unknown option '--bogus' for 'mlx hash' (see 'mlx help hash')" "bad flag: one line with a hint"
mlx runs --limt 3
is "$RC $ERR" "2 mlx: error: unknown option '--limt' for 'mlx runs'; did you mean '--limit'? (see 'mlx help runs')" \
	"a mistyped flag: the one it was meant as"

mlx --bogus
is "$RC" 2 "bad global flag exits 2"
is "$(printf '%s\n' "$ERR" | wc -l)" 1 "bad global flag: one line"

mlx -C /nonexistent-dir help
is "$RC" 2 "-C to a missing directory exits 2"
like "$ERR" "^mlx: error: -C: cannot change directory to /nonexistent-dir" "-C names the directory"

mlx help nosuch
is "$RC" 2 "help of an unknown command exits 2"

# A team adds a command by dropping a file in the project's lib/.
mkdir -p proj/.mlx proj/lib/mlx/cli proj/sub
cat >proj/lib/mlx/cli/hello.lua <<'LUA'
return {
  summary = "greet someone",
  options = { { "shout", short = "s", help = "loudly" } },
  args = { min = 1, name = "a NAME" },
  main = function(opts, args)
    local text = "hello, " .. args[1]
    print(opts.shout and text:upper() or text)
    return 0
  end,
}
LUA
cd proj/sub
mlx hello world
is "$OUT" "hello, world" "lib/mlx/cli/hello.lua is 'mlx hello', from a subdirectory too"
cd ..
mlx hello -s you
is "$OUT" "HELLO, YOU" "a user command gets its options parsed"
mlx help
like "$OUT" "hello +greet someone" "help lists the user command"
mlx hello
is "$RC" 2 "a user command's arity is checked"
mlx hello --nope
like "$ERR" "unknown option '--nope' for 'mlx hello'" "a user command's bad flag is named"
cd "$TEST_DIR"
mkdir -p extra/mlx/cli
echo 'return { summary = "from MLX_PATH", main = function() print("extra") end }' >extra/mlx/cli/extra.lua
MLX_PATH="$TEST_DIR/extra" mlx extra
is "$OUT" "extra" "MLX_PATH adds commands"
echo 'return 42' >extra/mlx/cli/broken.lua
MLX_PATH="$TEST_DIR/extra" mlx broken
is "$RC" 2 "a command module without main exits 2"
like "$ERR" "broken.lua: a command module must return a table with a main function" "and says what is wrong"
printf 'return {\n  summary = "x"\n  main = function() end,\n}\n' >extra/mlx/cli/typo.lua
MLX_PATH="$TEST_DIR/extra" mlx typo
is "$RC $ERR" "2 mlx: error: $TEST_DIR/extra/mlx/cli/typo.lua:3: '}' expected (to close '{' at line 1) near 'main'" \
	"a command module that does not compile: exit 2, one line naming the file and line"

# Subcommands are declared as data and dispatched in one place.
mlx help model register
is "$RC $(printf '%s\n' "$OUT" | head -1)" \
	"0 usage: mlx model register NAME PATH | NAME --object ID [--run ID | --no-run] [-d TEXT] [-t KEY=VALUE]... [-a ALIAS]... [-f]" \
	"mlx help model register shows that subcommand"
like "$OUT" "^  -d, --description TEXT  a description of the version$" "with its options"
mlx model register --help
is "$(printf '%s\n' "$OUT" | head -1)" "usage: mlx model register NAME PATH | NAME --object ID [--run ID | --no-run] [-d TEXT] [-t KEY=VALUE]... [-a ALIAS]... [-f]" \
	"as does mlx model register --help"
mlx help model
like "$OUT" "^        --rollback  undo the alias's latest move$" "mlx help model lists each subcommand's options"
mlx help model frob
is "$RC $ERR" "2 mlx: error: unknown 'mlx model' subcommand 'frob' (register, ls, show, alias or get; see 'mlx help model')" \
	"help of an unknown subcommand exits 2"
mlx help hash sub
is "$RC $ERR" "2 mlx: error: 'mlx hash' has no subcommands (see 'mlx help hash')" "help of a subcommand of a plain command exits 2"
mlx runs shwo
is "$RC $ERR" "2 mlx: error: unknown 'mlx runs' subcommand 'shwo'; did you mean 'show'? (see 'mlx help runs')" \
	"a mistyped subcommand gets a suggestion"
mlx model ls a b
is "$RC $ERR" "2 mlx: error: 'mlx model ls' takes at most 1 argument, got 'b' (see 'mlx help model ls')" \
	"a subcommand's arity is checked"

# Options mean one thing everywhere: old spellings that meant something else
# are refused with the new one, not taken for another option.
mlx runs -n 5
is "$RC $ERR" "2 mlx: error: option '-n' of 'mlx runs' is retired: use --limit N (-n is --dry-run in every command) (see 'mlx help runs')" \
	"-n of mlx runs, once --limit, says what to use"
mlx runs -f "status = 'FAILED'"
is "$RC $ERR" "2 mlx: error: option '-f' of 'mlx runs' is retired: use --filter EXPR (-f is --force in every command) (see 'mlx help runs')" \
	"-f of mlx runs, once --filter, too"
mlx model alias iris staging -d
is "$RC $ERR" "2 mlx: error: option '-d' of 'mlx model alias' is retired: use --delete (-d is --description of 'mlx model register') (see 'mlx help model alias')" \
	"-d of mlx model alias, once --delete, too"
mlx exp -c params.lr
is "$RC $ERR" "2 mlx: error: option '-c' of 'mlx exp' is retired: use --columns NAMES (-c is --changed of 'mlx runs diff') (see 'mlx help exp')" \
	"-c of mlx exp, once --columns, too"

# --debug after the command, as users type it; local options keep theirs.
cd "$TEST_DIR"
echo 'local function f() error("boom") end f()' >boom.lua
mlx recipe boom.lua
is "$RC $ERR" "1 mlx: error: boom.lua:1: boom" "a recipe error is one line"
mlx recipe --debug boom.lua
like "$ERR" "stack traceback:" "mlx recipe --debug FILE shows the traceback"
mlx --debug recipe boom.lua
like "$ERR" "stack traceback:" "as mlx --debug recipe FILE does"
mlx version -v
like "$OUT" "SQLite 3\." "-v after a command is that command's -v"

done_testing
