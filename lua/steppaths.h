/* steppaths.h — the paths and recipe lines of declared steps
 * (l_steppaths.c), for the step set (l_steps.c). Part of mlx.stepgraph. */
#ifndef MLX_STEPPATHS_H
#define MLX_STEPPATHS_H

#include <lua.h>
#include <stddef.h>

/* Pushes the normal form of path, or returns why it is refused (nothing
 * pushed). The rule of mlx.pipeline.paths.normalize. index is the stack
 * index of path as a Lua string, pushed again when already normal, or 0. */
const char *steppaths_push_normal(lua_State *L, const char *path, size_t len, int index);

/* Pushes "file:line: " of the first Lua function at or above stack level
 * `level` (as lua_getstack counts) that is not in the mlx stdlib: the
 * recipe line that called into the DSL; "" if none up to level 20. */
void steppaths_push_where(lua_State *L, int level);

/* Adds normalize, paths and where to the mlx.stepgraph table on top of the
 * stack. */
void steppaths_register(lua_State *L);

#endif
