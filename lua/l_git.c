/* l_git.c — mlx_git, the libgit2 binding, built as a Lua C module that is
 * loaded on first use (see stdlib/mlx/native.lua): linking libgit2 into the
 * binary would cost every mlx start ~5 ms of dynamic loading. */
#include <git2.h>
#include <lauxlib.h>

/* version() -> libgit2's version as "major.minor.rev" */
static int git_version(lua_State *L)
{
	int major = 0, minor = 0, rev = 0;
	git_libgit2_version(&major, &minor, &rev);
	lua_pushfstring(L, "%d.%d.%d", major, minor, rev);
	return 1;
}

static const luaL_Reg git_functions[] = {
	{"version", git_version},
	{NULL, NULL},
};

int luaopen_mlx_git(lua_State *L);

int luaopen_mlx_git(lua_State *L)
{
	luaL_newlib(L, git_functions);
	return 1;
}
