/* l_http.c — mlx_http, the libcurl binding, built as a Lua C module that is
 * loaded on first use (see stdlib/mlx/native.lua): linking libcurl into the
 * binary would cost every mlx start ~10 ms of dynamic loading. */
#include <curl/curl.h>
#include <lauxlib.h>

/* version() -> libcurl's version string */
static int http_version(lua_State *L)
{
	lua_pushstring(L, curl_version_info(CURLVERSION_NOW)->version);
	return 1;
}

static const luaL_Reg http_functions[] = {
	{"version", http_version},
	{NULL, NULL},
};

int luaopen_mlx_http(lua_State *L);

int luaopen_mlx_http(lua_State *L)
{
	luaL_newlib(L, http_functions);
	return 1;
}
