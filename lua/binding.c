/* binding.c — helpers shared by the bindings. */
#include "binding.h"

const char *mlx_lua_status_name(int status)
{
	switch (status) {
	case MLX_ERR_NOTFOUND: return "notfound";
	case MLX_ERR_INVALID: return "invalid";
	case MLX_ERR_NOMEM: return "nomem";
	case MLX_ERR_CRYPTO: return "crypto";
	case MLX_ERR_CORRUPT: return "corrupt";
	case MLX_ERR_BUSY: return "busy";
	case MLX_ERR_INTERRUPTED: return "interrupted";
	default: return "io";
	}
}

int mlx_lua_fail(lua_State *L, const struct mlx_err *err)
{
	lua_pushnil(L);
	lua_pushstring(L, err->msg);
	lua_pushstring(L, mlx_lua_status_name(err->status));
	return 3;
}
