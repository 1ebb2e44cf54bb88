/* proc_command.h — reading the command table that mlx.proc.run and
 * mlx.proc.spawn take ({PROGRAM, ARGS...} or {shell = ...}, cwd, env,
 * clean_env, stdin, stdout, stderr, timeout, grace) into the spec of
 * core/proc.h. Part of the mlx.proc binding (l_proc.c). */
#ifndef MLX_PROC_COMMAND_H
#define MLX_PROC_COMMAND_H

#include <lua.h>
#include <stdbool.h>

#include "proc.h"

/* User values of an mlx.Proc handle. */
enum { UV_ON_STDOUT = 1, UV_ON_STDERR, UV_LABEL, UV_RESULT, UV_COUNT = UV_RESULT };

/* Longer time limits are no limit (~31 years). */
#define PROC_MAX_SECONDS 1e9

struct proc_command {
	struct mlx_proc_spec spec;
	bool captured[2]; /* stdout, stderr go to the result */
	double timeout;   /* seconds; 0: none */
};

/* Reads the command table at index t into cmd; raises a Lua error ("bad
 * argument #1") on misuse. What cmd->spec points to stays alive as long as
 * the stack is not popped below its height on return. The line callbacks
 * and the command's label for messages go to the user values of the handle
 * at hidx. */
void proc_command_read(lua_State *L, int t, int hidx, struct proc_command *cmd);

/* mlx.proc.quote(string | {strings}): the string(s) single-quoted for a
 * POSIX shell, separated by spaces. */
int proc_quote(lua_State *L);

#endif
