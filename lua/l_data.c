/* l_data.c — mlx.data: the versions of the libraries inside mlx_data.so,
 * the module that holds every binding needing OpenSSL, SQLite or jansson.
 * Those libraries take ~1 ms to load, so the mlx binary does not link them;
 * the module is loaded the first time one of its bindings is required
 * (and OpenSSL, by core/hash.c, the first time it is used). */
#include <jansson.h>
#include <lauxlib.h>
#include <sqlite3.h>

#include "binding.h"
#include "hash.h"

/* versions() -> {sqlite, openssl, jansson} version strings; openssl is
 * "unavailable" when libcrypto cannot be loaded */
static int data_versions(lua_State *L)
{
	lua_createtable(L, 0, 3);
	lua_pushstring(L, sqlite3_libversion());
	lua_setfield(L, -2, "sqlite");
	const char *openssl = mlx_hash_openssl_version();
	lua_pushstring(L, openssl ? openssl : "unavailable");
	lua_setfield(L, -2, "openssl");
	lua_pushstring(L, jansson_version_str());
	lua_setfield(L, -2, "jansson");
	return 1;
}

static const luaL_Reg data_functions[] = {
	{"versions", data_versions},
	{NULL, NULL},
};

int luaopen_mlx_data(lua_State *L)
{
	luaL_newlib(L, data_functions);
	return 1;
}
