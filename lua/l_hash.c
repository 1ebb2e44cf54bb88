/* l_hash.c — mlx.hash: SHA-256 of strings and files. */
#include <lauxlib.h>

#include "binding.h"
#include "hash.h"

/* mlx.hash.bytes(s) -> hex. Raises only on OpenSSL failure. */
static int hash_bytes(lua_State *L)
{
	size_t len;
	const char *s = luaL_checklstring(L, 1, &len);
	char hex[MLX_HASH_HEX_SIZE];
	struct mlx_err err;
	if (mlx_hash_bytes(s, len, hex, &err) != MLX_OK)
		return luaL_error(L, "%s", err.msg);
	lua_pushstring(L, hex);
	return 1;
}

/* mlx.hash.file(path) -> hex, size | nil, message, code */
static int hash_file(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	char hex[MLX_HASH_HEX_SIZE];
	uint64_t size = 0;
	struct mlx_err err;
	if (mlx_hash_file(path, hex, &size, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_pushstring(L, hex);
	lua_pushinteger(L, (lua_Integer)size);
	return 2;
}

static const luaL_Reg hash_functions[] = {
	{"bytes", hash_bytes},
	{"file", hash_file},
	{NULL, NULL},
};

int luaopen_mlx_hash(lua_State *L)
{
	luaL_newlib(L, hash_functions);
	return 1;
}
