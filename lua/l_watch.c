/* l_watch.c — mlx.watchd: the project's file-system watcher (core/watch.h).
 * Policy (messages, the CLI) is in stdlib/mlx/watch.lua. */
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>

#include "binding.h"
#include "watch.h"

/* start(root) → pid | nil, message, code ("busy" if one already runs). */
static int l_start(lua_State *L)
{
	const char *root = luaL_checkstring(L, 1);
	struct mlx_err err;
	pid_t pid;
	if (mlx_watch_start(root, &pid, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_pushinteger(L, (lua_Integer)pid);
	return 1;
}

/* request(mlxdir, "status" | "stop") → the answer's text | nil, message,
 * code ("notfound" when no watcher answers). */
static int l_request(lua_State *L)
{
	const char *mlxdir = luaL_checkstring(L, 1);
	static const char *const requests[] = {"status", "stop", NULL};
	const char *request = requests[luaL_checkoption(L, 2, NULL, requests)];
	struct mlx_err err;
	char *reply = NULL;
	if (mlx_watch_request(mlxdir, request, &reply, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_pushstring(L, reply);
	free(reply);
	return 1;
}

static void release_answer(void *contents)
{
	mlx_watch_answer_free(contents);
}

/* changed(mlxdir, root, token) → { token = T, everything = true } or
 * { token = T, paths = {…} } | nil, message, code. */
static int l_changed(lua_State *L)
{
	const char *mlxdir = luaL_checkstring(L, 1), *root = luaL_checkstring(L, 2);
	const char *token = luaL_optstring(L, 3, NULL);
	struct mlx_err err;
	struct mlx_watch_answer *a = mlx_lua_box(L, sizeof *a, release_answer);
	if (mlx_watch_changed(mlxdir, root, token, a, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_createtable(L, 0, 3);
	lua_pushstring(L, a->token);
	lua_setfield(L, -2, "token");
	if (a->everything) {
		lua_pushboolean(L, 1);
		lua_setfield(L, -2, "everything");
	} else {
		lua_createtable(L, (int)a->paths.len, 0);
		for (size_t i = 0; i < a->paths.len; i++) {
			lua_pushstring(L, a->paths.items[i]);
			lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
		lua_setfield(L, -2, "paths");
	}
	mlx_lua_box_release(L, -2);
	return 1;
}

static const luaL_Reg watch_functions[] = {
    {"start", l_start},
    {"request", l_request},
    {"changed", l_changed},
    {NULL, NULL},
};

int luaopen_mlx_watchd(lua_State *L)
{
	luaL_newlib(L, watch_functions);
	return 1;
}
