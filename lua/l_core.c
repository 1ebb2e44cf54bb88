/* l_core.c — mlx.core: facts about this mlx binary. */
#include <lauxlib.h>
#include <time.h>
#include <unistd.h>

#include "binding.h"
#include "config.h"
#include "embedded.h"
#include "interrupt.h"

/* mlx.core.versions() -> {mlx, lua} version strings; the other libraries
 * report theirs from the modules that load them (mlx.data, mlx.http, mlx.git). */
static int core_versions(lua_State *L)
{
	lua_createtable(L, 0, 2);
	lua_pushliteral(L, MLX_VERSION);
	lua_setfield(L, -2, "mlx");
	lua_pushliteral(L, LUA_RELEASE);
	lua_setfield(L, -2, "lua");
	return 1;
}

/* mlx.core.embedded() -> {module name…} of the stdlib compiled into the binary */
static int core_embedded(lua_State *L)
{
	lua_newtable(L);
	for (int i = 0; mlx_embedded_modules[i].name; i++) {
		lua_pushstring(L, mlx_embedded_modules[i].name);
		lua_rawseti(L, -2, i + 1);
	}
	return 1;
}

/* mlx.core.interrupted() -> true if SIGINT or SIGTERM has been received */
static int core_interrupted(lua_State *L)
{
	lua_pushboolean(L, mlx_interrupt_signal() != 0);
	return 1;
}

/* mlx.core.isatty(fd) -> true if the descriptor (1 = stdout, 2 = stderr)
 * is a terminal, where live progress lines make sense */
static int core_isatty(lua_State *L)
{
	lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
	return 1;
}

/* mlx.core.cpus() -> the number of CPUs online (at least 1) */
static int core_cpus(lua_State *L)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	lua_pushinteger(L, n > 0 ? n : 1);
	return 1;
}

/* mlx.core.clock() -> seconds (a float) on a monotonic clock, for measuring
 * durations; unaffected by changes of the wall clock */
static int core_clock(lua_State *L)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
	return 1;
}

static const luaL_Reg core_functions[] = {
	{"clock", core_clock},
	{"isatty", core_isatty},
	{"cpus", core_cpus},
	{"versions", core_versions},
	{"embedded", core_embedded},
	{"interrupted", core_interrupted},
	{NULL, NULL},
};

/* Also sets version. The host adds exe_dir and module_dir (where the lazily
 * loaded C modules are looked for, see stdlib/mlx/native.lua) and, when
 * MLX_LUA_PATH is set, stdlib_path. */
int luaopen_mlx_core(lua_State *L)
{
	luaL_newlib(L, core_functions);
	lua_pushliteral(L, MLX_VERSION);
	lua_setfield(L, -2, "version");
	return 1;
}
