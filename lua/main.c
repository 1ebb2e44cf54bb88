/* main.c — the mlx host, shaped like Lua's lua.c.
 *
 * It creates the Lua state, registers the C modules and the embedded stdlib
 * in package.preload, and runs require("mlx.cli").main(arg) inside one
 * protected call. Everything a user sees — option parsing, messages, exit
 * codes — is decided in Lua; this file only reports errors that escape it,
 * which are bugs in mlx, with a traceback. */
#include <lauxlib.h>
#include <limits.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "binding.h"
#include "config.h"
#include "embedded.h"
#include "interrupt.h"

enum { EXIT_FAILED = 1, EXIT_INTERRUPTED = 130 };

static int traceback_handler(lua_State *L)
{
	const char *msg = lua_tostring(L, 1);
	if (msg == NULL) {
		if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
			return 1;
		msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
	}
	if (strcmp(msg, MLX_INTERRUPTED_MESSAGE) == 0) {
		lua_pushstring(L, msg);
		return 1;
	}
	luaL_traceback(L, L, msg, 1);
	return 1;
}

static int load_embedded(lua_State *L)
{
	const struct mlx_embedded_module *m = lua_touserdata(L, lua_upvalueindex(1));
	/* Bytecode when the build could compile it (stdlib/meson.build), else source. */
	if (luaL_loadbufferx(L, m->source, m->size, m->chunkname, "bt") != LUA_OK)
		return lua_error(L);
	lua_pushstring(L, m->name);
	lua_call(L, 1, 1);
	return 1;
}

static void register_preload(lua_State *L, const char *name, lua_CFunction fn)
{
	luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
	lua_pushcfunction(L, fn);
	lua_setfield(L, -2, name);
	lua_pop(L, 1);
}

/* os.exit(code) closes the Lua state as os.exit(code, true) would, so that
 * finalizers run whichever way a script ends: child processes are stopped
 * (mlx.proc), buffered files flushed. */
static int exit_closing_state(lua_State *L)
{
	lua_settop(L, 1);
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_pushboolean(L, 1);
	lua_call(L, 2, 0);
	return 0;
}

static void close_state_on_exit(lua_State *L)
{
	lua_getglobal(L, "os");
	lua_getfield(L, -1, "exit");
	lua_pushcclosure(L, exit_closing_state, 1);
	lua_setfield(L, -2, "exit");
	lua_pop(L, 1);
}

/* With MLX_LUA_PATH set, the stdlib is read from that source tree instead of
 * the copy compiled in, so a change is tried without rebuilding. */
static void register_stdlib(lua_State *L, const char *source_tree)
{
	if (source_tree && *source_tree) {
		lua_getglobal(L, "package");
		lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;", source_tree, source_tree);
		lua_getfield(L, -2, "path");
		lua_concat(L, 2);
		lua_setfield(L, -2, "path");
		lua_pop(L, 1);
		return;
	}
	luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
	for (const struct mlx_embedded_module *m = mlx_embedded_modules; m->name; m++) {
		lua_pushlightuserdata(L, (void *)m);
		lua_pushcclosure(L, load_embedded, 1);
		lua_setfield(L, -2, m->name);
	}
	lua_pop(L, 1);
}

/* Facts the stdlib needs about where this binary lives. */
static void describe_binary(lua_State *L, const char *source_tree)
{
	lua_getglobal(L, "require");
	lua_pushliteral(L, "mlx.core");
	lua_call(L, 1, 1);
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash)
			*slash = '\0';
		lua_pushstring(L, exe);
		lua_setfield(L, -2, "exe_dir");
	}
	lua_pushliteral(L, MLX_MODULE_DIR);
	lua_setfield(L, -2, "module_dir");
	if (source_tree && *source_tree) {
		lua_pushstring(L, source_tree);
		lua_setfield(L, -2, "stdlib_path");
	}
	lua_pop(L, 1);
}

static int pmain(lua_State *L)
{
	int argc = (int)lua_tointeger(L, 1);
	char **argv = lua_touserdata(L, 2);
	const char *source_tree = getenv("MLX_LUA_PATH");
	luaL_checkversion(L);
	luaL_openlibs(L);
	close_state_on_exit(L);
	register_preload(L, "mlx.core", luaopen_mlx_core);
	register_preload(L, "mlx.fs", luaopen_mlx_fs);
	register_preload(L, "mlx.proc", luaopen_mlx_proc);
	register_preload(L, "mlx.stepgraph", luaopen_mlx_stepgraph);
	register_preload(L, "mlx.watchd", luaopen_mlx_watchd);
	register_stdlib(L, source_tree);
	describe_binary(L, source_tree);
	lua_getglobal(L, "require");
	lua_pushliteral(L, "mlx.native");
	lua_call(L, 1, 1);
	lua_getfield(L, -1, "install");
	lua_call(L, 0, 0);
	lua_pop(L, 1);

	lua_createtable(L, argc, 1);
	for (int i = 0; i < argc; i++) {
		lua_pushstring(L, argv[i]);
		lua_rawseti(L, -2, i);
	}
	lua_setglobal(L, "arg");

	mlx_interrupt_install(L);
	lua_getglobal(L, "require");
	lua_pushliteral(L, "mlx.cli");
	lua_call(L, 1, 1);
	lua_getfield(L, -1, "main");
	lua_getglobal(L, "arg");
	lua_call(L, 1, 1);
	return 1;
}

int main(int argc, char **argv)
{
	lua_State *L = luaL_newstate();
	if (L == NULL) {
		fputs("mlx: error: cannot create the Lua state: out of memory\n", stderr);
		return EXIT_FAILED;
	}
	lua_pushcfunction(L, traceback_handler);
	lua_pushcfunction(L, pmain);
	lua_pushinteger(L, argc);
	lua_pushlightuserdata(L, argv);
	int code;
	if (lua_pcall(L, 2, 1, 1) == LUA_OK) {
		code = lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : 0;
	} else {
		const char *msg = lua_tostring(L, -1);
		if (msg && strcmp(msg, MLX_INTERRUPTED_MESSAGE) == 0) {
			fputs("mlx: interrupted\n", stderr);
			code = EXIT_INTERRUPTED;
		} else {
			fprintf(stderr, "mlx: internal error: %s\n", msg ? msg : "(no message)");
			code = EXIT_FAILED;
		}
	}
	lua_close(L);
	if (fflush(stdout) != 0 && code == 0)
		code = EXIT_FAILED;
	return code;
}
