/* l_core.c — mlx.core: facts about this mlx binary. */
#include <errno.h>
#include <lauxlib.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
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

static double monotonic_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* mlx.core.clock() -> seconds (a float) on a monotonic clock, for measuring
 * durations; unaffected by changes of the wall clock */
static int core_clock(lua_State *L)
{
	lua_pushnumber(L, monotonic_seconds());
	return 1;
}

/* mlx.core.now_ms() -> milliseconds since the epoch (an integer) on the wall
 * clock, as runs record their times; for durations use clock() */
static int core_now_ms(lua_State *L)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	lua_pushinteger(L, (lua_Integer)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
	return 1;
}

/* mlx.core.sleep(seconds) -> true after the time has passed, or false at once
 * when SIGINT or SIGTERM arrives (or has arrived): the interruption is then
 * raised at the next Lua instruction, so Ctrl-C never waits for a sleep.
 * Raises if seconds is not a number from 0 to 1e9. */
static int core_sleep(lua_State *L)
{
	double seconds = luaL_checknumber(L, 1);
	luaL_argcheck(L, seconds >= 0 && seconds <= 1e9, 1, "seconds must be from 0 to 1e9");
	/* The signals stay blocked except inside ppoll, which unblocks them
	 * atomically: one that arrives between the check of the flag and the
	 * wait still ends the wait. */
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	double deadline = monotonic_seconds() + seconds;
	int interrupted;
	while (!(interrupted = mlx_interrupt_signal() != 0)) {
		double left = deadline - monotonic_seconds();
		if (left <= 0)
			break;
		struct timespec ts = {(time_t)left, (long)((left - floor(left)) * 1e9)};
		if (ppoll(NULL, 0, &ts, &old) < 0 && errno != EINTR)
			break;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	lua_pushboolean(L, !interrupted);
	return 1;
}

/* mlx.core.number_text(x) -> x as text: an integer in decimal, a float in
 * the shortest form that reads back as the same double ("0.1", "5e-324"),
 * "nan", "inf" or "-inf"; as mlx writes numbers into JSON and run records.
 * Raises if x is not a number (a numeric string included). */
static int core_number_text(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TNUMBER); /* a string is not converted */
	if (lua_isinteger(L, 1)) {
		lua_pushfstring(L, "%I", lua_tointeger(L, 1));
		return 1;
	}
	char text[MLX_LUA_NUMBER_SIZE];
	lua_pushstring(L, mlx_lua_number_text(lua_tonumber(L, 1), text));
	return 1;
}

static const luaL_Reg core_functions[] = {
    {"clock", core_clock},
    {"now_ms", core_now_ms},
    {"sleep", core_sleep},
    {"number_text", core_number_text},
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
