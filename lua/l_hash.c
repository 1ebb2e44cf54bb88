/* l_hash.c — mlx.hash: SHA-256 of strings, files and directories. */
#include <lauxlib.h>
#include <stdlib.h>

#include "binding.h"
#include "hash.h"
#include "pool.h"

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

/* The file list and manifest of a directory live in a box (binding.h)
 * while Lua runs, so that a memory error cannot leak them. */
struct walk_box {
	struct mlx_filelist list;
	char *text;
};

static void release_walk(void *contents)
{
	struct walk_box *box = contents;
	mlx_filelist_free(&box->list);
	free(box->text);
	box->text = NULL;
}

struct dir_progress {
	lua_State *L;
	int ref;
};

static int report(void *ctx, size_t files, size_t nfiles)
{
	struct dir_progress *p = ctx;
	return mlx_lua_report(p->L, p->ref, (lua_Integer)files, (lua_Integer)nfiles, 0, 0);
}

/* mlx.hash.dir(path[, {jobs = n, progress = fn}]) -> id, size, files,
 * manifest | nil, message, code. id is the SHA-256 of the manifest text (one
 * line per regular file: "<sha256> <size> <644|755> <path>", sorted); size
 * is the total of the files' sizes. Symlinks, fifos and devices are
 * refused. fn(files, nfiles, 0, 0) is called about every 100 ms while the
 * files are hashed; an error raised by it stops the hashing. */
static int hash_dir(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	int jobs = (int)mlx_lua_optfield_integer(L, 2, "jobs", 0);
	struct dir_progress dp = {L, LUA_NOREF};
	struct mlx_progress progress = {.report = report, .ctx = &dp};
	if (!lua_isnoneornil(L, 2) && lua_getfield(L, 2, "progress") != LUA_TNIL) {
		luaL_argcheck(L, lua_isfunction(L, -1), 2, "field 'progress' must be a function");
		dp.ref = luaL_ref(L, LUA_REGISTRYINDEX);
	}
	struct walk_box *box = mlx_lua_box(L, sizeof *box, release_walk);
	struct mlx_filelist *list = &box->list;
	struct mlx_err err;
	char hex[MLX_HASH_HEX_SIZE];
	size_t len = 0;
	int rc = mlx_hash_dir(path, jobs, dp.ref == LUA_NOREF ? NULL : &progress, list, &box->text, &len, hex, &err);
	luaL_unref(L, LUA_REGISTRYINDEX, dp.ref);
	if (rc != MLX_OK)
		return mlx_lua_fail(L, &err);
	uint64_t total = 0;
	for (size_t i = 0; i < list->len; i++)
		total += list->items[i].size;
	lua_pushstring(L, hex);
	lua_pushinteger(L, (lua_Integer)total);
	lua_pushinteger(L, (lua_Integer)list->len);
	lua_pushlstring(L, box->text, len);
	release_walk(box);
	return 4;
}

static const luaL_Reg hash_functions[] = {
	{"bytes", hash_bytes},
	{"file", hash_file},
	{"dir", hash_dir},
	{NULL, NULL},
};

int luaopen_mlx_hash(lua_State *L)
{
	luaL_newlib(L, hash_functions);
	return 1;
}
