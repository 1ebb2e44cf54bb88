/* l_data.c — mlx.data: the versions of the libraries inside mlx_data.so,
 * the module that holds every binding needing OpenSSL, SQLite or jansson.
 * Those libraries take ~1 ms to load, so the mlx binary does not link them;
 * the module is loaded the first time one of its bindings is required. */
#include <jansson.h>
#include <lauxlib.h>
#include <openssl/crypto.h>
#include <sqlite3.h>

#include "binding.h"

/* versions() -> {sqlite, openssl, jansson} version strings */
static int data_versions(lua_State *L)
{
	lua_createtable(L, 0, 3);
	lua_pushstring(L, sqlite3_libversion());
	lua_setfield(L, -2, "sqlite");
	lua_pushstring(L, OpenSSL_version(OPENSSL_VERSION));
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
