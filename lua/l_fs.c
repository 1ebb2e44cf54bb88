/* l_fs.c — mlx.fs: listing, stat, mkdir -p and atomic writes. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "binding.h"
#include "fs.h"
#include "path.h"

/* A list produced by core lives in a box while it is copied into a Lua
 * table, so that a memory error raised by Lua cannot leak it. */
static void release_strlist(void *contents)
{
	mlx_strlist_free(contents);
}

/* mlx.fs.list(dir) -> {name…} sorted by bytes | nil, message, code */
static int fs_list(lua_State *L)
{
	const char *dir = luaL_checkstring(L, 1);
	struct mlx_strlist *list = mlx_lua_box(L, sizeof *list, release_strlist);
	struct mlx_err err;
	if (mlx_fs_list(dir, list, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_createtable(L, (int)list->len, 0);
	for (size_t i = 0; i < list->len; i++) {
		lua_pushstring(L, list->items[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	mlx_lua_box_release(L, -2);
	return 1;
}

static const char *const type_names[] = {"none", "file", "directory", "link", "other"};

/* mlx.fs.stat(path) -> {type, size, mode, mtime_ns, ino, dev} | nil, message, code.
 * Does not follow a final symlink (type "link"). */
static int fs_stat(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	struct mlx_stat st;
	struct mlx_err err;
	if (mlx_fs_stat(path, &st, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_createtable(L, 0, 6);
	lua_pushstring(L, type_names[st.type]);
	lua_setfield(L, -2, "type");
	lua_pushinteger(L, (lua_Integer)st.size);
	lua_setfield(L, -2, "size");
	lua_pushinteger(L, st.mode);
	lua_setfield(L, -2, "mode");
	lua_pushinteger(L, st.mtime_ns);
	lua_setfield(L, -2, "mtime_ns");
	lua_pushinteger(L, (lua_Integer)st.ino);
	lua_setfield(L, -2, "ino");
	lua_pushinteger(L, (lua_Integer)st.dev);
	lua_setfield(L, -2, "dev");
	return 1;
}

/* mlx.fs.mkdirs(dir[, mode]) -> true | nil, message, code */
static int fs_mkdirs(lua_State *L)
{
	const char *dir = luaL_checkstring(L, 1);
	mode_t mode = (mode_t)luaL_optinteger(L, 2, 0777);
	struct mlx_err err;
	if (mlx_fs_mkdirs(dir, mode, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

/* mlx.fs.write(path, content[, mode]) -> true | nil, message, code.
 * Atomic and durable: temp file, fsync, rename, fsync of the directory. */
static int fs_write(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	size_t len;
	const char *data = luaL_checklstring(L, 2, &len);
	mode_t mode = (mode_t)luaL_optinteger(L, 3, 0644);
	struct mlx_err err;
	if (mlx_fs_write_atomic(path, data, len, mode, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

/* mlx.fs.cwd() -> absolute path of the working directory | nil, message, code */
static int fs_cwd(lua_State *L)
{
	char *cwd = getcwd(NULL, 0);
	if (!cwd) {
		struct mlx_err err;
		mlx_err_sys(&err, errno, "cannot get the working directory");
		return mlx_lua_fail(L, &err);
	}
	lua_pushstring(L, cwd);
	free(cwd);
	return 1;
}

/* mlx.fs.chdir(dir) -> true | nil, message, code */
static int fs_chdir(lua_State *L)
{
	const char *dir = luaL_checkstring(L, 1);
	if (chdir(dir) != 0) {
		struct mlx_err err;
		mlx_err_sys(&err, errno, "cannot change directory to %s", dir);
		return mlx_lua_fail(L, &err);
	}
	lua_pushboolean(L, 1);
	return 1;
}

#define LOCK_MT "mlx.FileLock"

/* lock:close() releases the lock; idempotent, also __gc and __close. */
static int lock_close(lua_State *L)
{
	int *fd = luaL_checkudata(L, 1, LOCK_MT);
	mlx_fs_unlock(*fd);
	*fd = -1;
	return 0;
}

/* mlx.fs.lock(path[, {shared = bool, wait = bool}]) -> lock | nil, message,
 * code. An advisory lock (flock) on path, created if missing: exclusive
 * unless shared; waits for it unless wait is false ("busy" then). Held until
 * lock:close(), garbage collection, or the end of the process. */
static int fs_lock(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	int shared = mlx_lua_optfield_boolean(L, 2, "shared", 0);
	int wait = mlx_lua_optfield_boolean(L, 2, "wait", 1);
	int *fd = lua_newuserdatauv(L, sizeof *fd, 0);
	*fd = -1;
	if (luaL_newmetatable(L, LOCK_MT)) {
		lua_pushcfunction(L, lock_close);
		lua_setfield(L, -2, "__gc");
		lua_pushcfunction(L, lock_close);
		lua_setfield(L, -2, "__close");
		lua_createtable(L, 0, 1);
		lua_pushcfunction(L, lock_close);
		lua_setfield(L, -2, "close");
		lua_setfield(L, -2, "__index");
	}
	lua_setmetatable(L, -2);
	struct mlx_err err;
	if (mlx_fs_lock(path, shared, wait, fd, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	return 1;
}

/* mlx.fs.realpath(path) -> absolute path, symlinks resolved | nil, message, code */
static int fs_realpath(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	char out[PATH_MAX];
	struct mlx_err err;
	if (mlx_fs_realpath(path, out, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_pushstring(L, out);
	return 1;
}

/* mlx.fs.remove_tree(path) -> true | nil, message, code. Like rm -rf; true
 * also when nothing was there. */
static int fs_remove_tree(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	struct mlx_err err;
	if (mlx_fs_remove_tree(path, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

/* mlx.fs.check_path(p) -> true | nil, "P: why", "invalid". The one rule for
 * paths that come from data (a lock, manifest, run-cache entry, listing):
 * relative, normalised, no "..", nothing under .git/ or .mlx/, not
 * mlx.lock, no NUL or line break (core/path.h). */
static int fs_check_path(lua_State *L)
{
	size_t len;
	const char *p = luaL_checklstring(L, 1, &len);
	struct mlx_err err;
	if (mlx_path_check(p, len, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

typedef int (*beneath_fn)(int dirfd, const char *rel, struct mlx_err *err);

/* Runs fn on the checked path rel below the directory root. */
static int beneath(lua_State *L, beneath_fn fn)
{
	const char *root = luaL_checkstring(L, 1);
	size_t len;
	const char *rel = luaL_checklstring(L, 2, &len);
	struct mlx_err err;
	if (mlx_path_check(rel, len, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		mlx_err_sys(&err, errno, "cannot open directory %s", root);
		return mlx_lua_fail(L, &err);
	}
	int rc = fn(fd, rel, &err);
	close(fd);
	if (rc != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

static int remove_rel(int dirfd, const char *rel, struct mlx_err *err)
{
	return mlx_path_remove(dirfd, rel, err);
}

static int mkdirs_rel(int dirfd, const char *rel, struct mlx_err *err)
{
	int fd;
	int rc = mlx_path_open_dir(dirfd, rel, 1, &fd, err);
	if (rc == MLX_OK)
		close(fd);
	return rc;
}

/* mlx.fs.remove_below(root, rel) -> true | nil, message, code. Removes the
 * checked path rel below root like rm -rf without following a symlink
 * anywhere: a symlinked parent is "invalid", a symlink at rel is removed
 * itself. true also when nothing was there. */
static int fs_remove_below(lua_State *L)
{
	return beneath(L, remove_rel);
}

/* mlx.fs.mkdirs_below(root, rel) -> true | nil, message, code. mkdir -p of
 * the checked path rel below root, never through a symlink ("invalid"). */
static int fs_mkdirs_below(lua_State *L)
{
	return beneath(L, mkdirs_rel);
}

/* mlx.fs.check_parents(root, rel) -> true | nil, message, "invalid". True
 * when no existing parent of the checked path rel below root is a symlink
 * or a non-directory, so that writing rel stays below root. */
static int fs_check_parents(lua_State *L)
{
	return beneath(L, mlx_path_check_parents);
}

static const luaL_Reg fs_functions[] = {
	{"check_path", fs_check_path},
	{"remove_below", fs_remove_below},
	{"mkdirs_below", fs_mkdirs_below},
	{"check_parents", fs_check_parents},
	{"remove_tree", fs_remove_tree},
	{"lock", fs_lock},
	{"realpath", fs_realpath},
	{"list", fs_list},
	{"stat", fs_stat},
	{"mkdirs", fs_mkdirs},
	{"write", fs_write},
	{"cwd", fs_cwd},
	{"chdir", fs_chdir},
	{NULL, NULL},
};

int luaopen_mlx_fs(lua_State *L)
{
	luaL_newlib(L, fs_functions);
	return 1;
}
