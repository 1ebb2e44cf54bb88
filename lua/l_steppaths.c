/* l_steppaths.c — the paths and recipe lines of declared steps (part of
 * mlx.stepgraph, beside l_steps.c and l_graph.c): the normal form of a
 * declared path, the check of a step's list of paths, and the recipe line
 * that declared a step. One implementation of each, shared by the DSL's
 * checks in Lua (mlx.pipeline.paths, Pipeline:declare) and the step set's
 * one-call declaration of the common step (l_steps.c). */
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "binding.h"
#include "path.h"
#include "steppaths.h"

/* True if path (len > 0, not absolute) is in normal form: no empty
 * component but after a trailing "/", and no "." or ".." component. */
static int is_normal(const char *path, size_t len)
{
	size_t start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && path[i] != '/')
			continue;
		size_t n = i - start;
		if (n == 0 && i < len)
			return 0;
		if ((n == 1 && path[start] == '.') ||
		    (n == 2 && path[start] == '.' && path[start + 1] == '.'))
			return 0;
		start = i + 1;
	}
	return 1;
}

/* Pushes the normal form of path, or returns why it is refused (nothing
 * pushed). The rule of mlx.pipeline.paths.normalize. index is the stack
 * index of path as a Lua string, pushed again when already normal, or 0. */
const char *steppaths_push_normal(lua_State *L, const char *path, size_t len, int index)
{
	if (len == 0)
		return "empty path";
	if (path[0] == '/')
		return "is absolute; declare paths relative to the project root";
	if (is_normal(path, len)) {
		if (index)
			lua_pushvalue(L, index);
		else
			lua_pushlstring(L, path, len);
		return NULL;
	}
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	size_t parts = 0;
	for (size_t i = 0; i < len;) {
		const char *slash = memchr(path + i, '/', len - i);
		size_t n = slash ? (size_t)(slash - (path + i)) : len - i;
		const char *part = path + i;
		i += n + 1;
		if (n == 0 || (n == 1 && part[0] == '.'))
			continue;
		if (n == 2 && part[0] == '.' && part[1] == '.') {
			if (parts == 0) {
				luaL_pushresult(&b);
				lua_pop(L, 1);
				return "is outside the project";
			}
			/* Drop the last part and the "/" before it. */
			const char *text = luaL_buffaddr(&b);
			size_t at = luaL_bufflen(&b);
			while (at > 0 && text[at - 1] != '/')
				at--;
			luaL_buffsub(&b, luaL_bufflen(&b) - (at > 0 ? at - 1 : 0));
			parts--;
			continue;
		}
		if (parts++)
			luaL_addchar(&b, '/');
		luaL_addlstring(&b, part, n);
	}
	if (parts == 0) {
		luaL_pushresult(&b);
		lua_pop(L, 1);
		return "names the project root itself";
	}
	if (path[len - 1] == '/')
		luaL_addchar(&b, '/');
	luaL_pushresult(&b);
	return NULL;
}

/* mlx.stepgraph.normalize(path) -> normal | nil, why: the normal form of a
 * declared path (relative to the project root, no "." or empty components,
 * a trailing "/" for a directory), or why it is refused: absolute, escaping
 * the project with "..", empty, or naming the root. */
static int graph_normalize(lua_State *L)
{
	size_t len;
	const char *path = luaL_checklstring(L, 1, &len);
	const char *why = steppaths_push_normal(L, path, len, 1);
	if (!why)
		return 1;
	lua_pushnil(L);
	lua_pushstring(L, why);
	return 2;
}

/* mlx.stepgraph.paths(list, written) -> normals | false | nil, i, path,
 * why, kind. The paths of one field of a step (deps, outs, …) as a new list
 * in normal form; false when list is not a list of strings; for the first
 * path refused, its position, the path as declared, why, and kind
 * "normalize" (not a normal path) or "check" (a written path, written
 * true, that mlx may not write: inside .git/ or .mlx/, mlx.lock, …; why
 * is then "PATH: why" as mlx.fs.check_path says). */
static int graph_paths(lua_State *L)
{
	int written = lua_toboolean(L, 2);
	if (!lua_istable(L, 1)) {
		lua_pushboolean(L, 0);
		return 1;
	}
	lua_Integer n = 0;
	lua_pushnil(L);
	while (lua_next(L, 1)) {
		if (!lua_isinteger(L, -2) || lua_type(L, -1) != LUA_TSTRING) {
			lua_pushboolean(L, 0);
			return 1;
		}
		n++;
		lua_pop(L, 1);
	}
	if ((lua_Unsigned)n != lua_rawlen(L, 1)) {
		lua_pushboolean(L, 0);
		return 1;
	}
	lua_createtable(L, (int)n, 0);
	int out = lua_gettop(L);
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, 1, i);
		size_t len;
		const char *path = lua_tolstring(L, -1, &len);
		const char *why = steppaths_push_normal(L, path, len, lua_gettop(L));
		const char *kind = "normalize";
		struct mlx_err err;
		if (!why && written) {
			size_t nlen;
			const char *normal = lua_tolstring(L, -1, &nlen);
			if (normal[nlen - 1] == '/')
				nlen--;
			if (mlx_path_check(normal, nlen, &err) != MLX_OK) {
				lua_pop(L, 1);
				why = err.msg;
				kind = "check";
			}
		}
		if (why) {
			lua_pushnil(L);
			lua_pushinteger(L, i);
			lua_pushvalue(L, out + 1);
			lua_pushstring(L, why);
			lua_pushstring(L, kind);
			return 5;
		}
		lua_rawseti(L, out, i);
		lua_pop(L, 1);
	}
	return 1;
}

/* Pushes "file:line: " of the first Lua function at or above stack level
 * `level` (as lua_getstack counts) that is not in the mlx stdlib: the
 * recipe line that called into the DSL; "" if none up to level 20. */
void steppaths_push_where(lua_State *L, int level)
{
	lua_Debug ar;
	for (; level <= 20; level++) {
		if (!lua_getstack(L, level, &ar))
			break;
		lua_getinfo(L, "Sl", &ar);
		if (ar.currentline > 0 && strncmp(ar.source, "@stdlib/", 8) != 0 &&
		    strcmp(ar.what, "C") != 0) {
			lua_pushfstring(L, "%s:%d: ", ar.short_src, ar.currentline);
			return;
		}
	}
	lua_pushliteral(L, "");
}

/* mlx.stepgraph.where(level) -> "file:line: " of the first Lua function at
 * or above stack level `level` (counted as debug.getinfo counts from its
 * caller) that is not in the mlx stdlib: the recipe line that called into
 * the DSL; "" if none up to level 20. Unlike debug.getinfo it makes no
 * table per call, and every step declared asks. */
static int graph_where(lua_State *L)
{
	lua_Integer level = luaL_checkinteger(L, 1);
	steppaths_push_where(L, level < 0 ? 0 : level > 21 ? 21 : (int)level);
	return 1;
}

static const luaL_Reg steppaths_functions[] = {
    {"normalize", graph_normalize},
    {"paths", graph_paths},
    {"where", graph_where},
    {NULL, NULL},
};

void steppaths_register(lua_State *L)
{
	luaL_setfuncs(L, steppaths_functions, 0);
}
