/* l_lockindex.c — mlx.lockindex: the index of mlx.lock's steps
 * (core/lockindex.h) as a read-only table of step name -> line. */
#include <errno.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "binding.h"
#include "filehashes.h"
#include "hash.h"
#include "lockindex.h"

#define LOCKINDEX_MT "mlx.LockIndex"
#define FILEHASHES_MT "mlx.FileHashes"

struct lindex {
	struct mlx_lockindex *idx;     /* NULL once closed */
	struct mlx_hash_stream stream; /* for same_key: one SHA-256 context for every step */
};

static struct lindex *check_index(lua_State *L)
{
	struct lindex *li = luaL_checkudata(L, 1, LOCKINDEX_MT);
	if (!li->idx)
		luaL_error(L, "attempt to use a closed lock index");
	return li;
}

/* lockindex.read(path, header, pipeline) -> index | nil, message, code.
 * index[name] is the line of step name ("KEY\tOUT\tHASH...") or nil,
 * pairs(index) gives every step name and line, #index counts them. Fails
 * with "notfound" when there is no file, "invalid" when its first line is
 * not header (an index of another lock). */
static int lockindex_read(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	const char *header = luaL_checkstring(L, 2);
	const char *pipeline = luaL_checkstring(L, 3);
	/* Made before the index, so that a memory error cannot leak it. */
	struct lindex *li = lua_newuserdatauv(L, sizeof *li, 0);
	li->idx = NULL;
	li->stream = (struct mlx_hash_stream){0};
	luaL_setmetatable(L, LOCKINDEX_MT);
	struct mlx_err err;
	if (mlx_lockindex_read(path, header, pipeline, &li->idx, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	return 1;
}

/* index[name] -> line | nil */
static int lockindex_get(lua_State *L)
{
	struct lindex *li = check_index(L);
	size_t len, rest_len;
	const char *name = lua_tolstring(L, 2, &len);
	const char *rest = name ? mlx_lockindex_find(li->idx, name, len, &rest_len) : NULL;
	if (rest)
		lua_pushlstring(L, rest, rest_len);
	else
		lua_pushnil(L);
	return 1;
}

/* lockindex.has(index, name) -> true if index has a line for step name */
static int lockindex_has(lua_State *L)
{
	struct lindex *li = check_index(L);
	size_t len, rest_len;
	const char *name = luaL_checklstring(L, 2, &len);
	lua_pushboolean(L, mlx_lockindex_find(li->idx, name, len, &rest_len) != NULL);
	return 1;
}

/* True if rest (rest_len bytes) is exactly first (first_len bytes) and
 * then "\tPART" for each string on the stack from index `from` to the top. */
static int line_is(lua_State *L, const char *rest, size_t rest_len, const char *first, size_t first_len,
                   int from)
{
	if (rest_len < first_len || memcmp(rest, first, first_len) != 0)
		return 0;
	size_t at = first_len;
	int top = lua_gettop(L);
	for (int i = from; i <= top; i++) {
		size_t part_len;
		const char *part = lua_tolstring(L, i, &part_len);
		if (at >= rest_len || rest[at] != '\t')
			return 0;
		at++;
		if (rest_len - at < part_len || memcmp(rest + at, part, part_len) != 0)
			return 0;
		at += part_len;
	}
	return at == rest_len;
}

/* lockindex.same(index, name, part...) -> true if the line of step name is
 * exactly the parts joined by tabs: compared in place, without making the
 * line or the joined text a Lua string. */
static int lockindex_same(lua_State *L)
{
	struct lindex *li = check_index(L);
	size_t len, rest_len;
	const char *name = luaL_checklstring(L, 2, &len);
	int top = lua_gettop(L);
	for (int i = 3; i <= top; i++)
		luaL_checktype(L, i, LUA_TSTRING);
	const char *rest = mlx_lockindex_find(li->idx, name, len, &rest_len);
	int same = 0;
	if (rest != NULL && top >= 3) {
		size_t first_len;
		const char *first = lua_tolstring(L, 3, &first_len);
		same = line_is(L, rest, rest_len, first, first_len, 4);
	}
	lua_pushboolean(L, same);
	return 1;
}

/* lockindex.same_key(index, name, n, piece1..piecen, out, hash, ...) ->
 * true if the line of step name is the SHA-256 of the n pieces joined (the
 * step's key text, see mlx.pipeline.key) and then each out and its hash,
 * as lockindex.same compares them. The key is hashed and compared here: a
 * no-op then makes neither the key text nor the key a Lua string (about a
 * kilobyte of garbage per step). Raises for a piece that is not a string,
 * or when SHA-256 fails. */
static int lockindex_same_key(lua_State *L)
{
	struct lindex *li = check_index(L);
	size_t len, rest_len;
	const char *name = luaL_checklstring(L, 2, &len);
	lua_Integer n = luaL_checkinteger(L, 3);
	int top = lua_gettop(L);
	luaL_argcheck(L, n >= 0 && n <= top - 3, 3, "more pieces than arguments");
	for (int i = 4; i <= top; i++)
		luaL_checktype(L, i, LUA_TSTRING);
	const char *rest = mlx_lockindex_find(li->idx, name, len, &rest_len);
	if (!rest) {
		lua_pushboolean(L, 0);
		return 1;
	}
	struct mlx_err err;
	char hex[MLX_HASH_HEX_SIZE];
	int rc = mlx_hash_stream_start(&li->stream, &err);
	for (int i = 4; rc == MLX_OK && i < 4 + (int)n; i++) {
		size_t piece_len;
		const char *piece = lua_tolstring(L, i, &piece_len);
		rc = mlx_hash_stream_update(&li->stream, piece, piece_len, &err);
	}
	if (rc == MLX_OK)
		rc = mlx_hash_stream_finish(&li->stream, hex, &err);
	if (rc != MLX_OK)
		return luaL_error(L, "%s", err.msg);
	lua_pushboolean(L, line_is(L, rest, rest_len, hex, MLX_HASH_HEX_SIZE - 1, 4 + (int)n));
	return 1;
}

/* ---- the prefetched hashes of single files (core/filehashes.h) ---- */

struct lhashes {
	struct mlx_filehashes *fh; /* NULL once closed */
};

static struct lhashes *check_hashes(lua_State *L, int idx)
{
	struct lhashes *lh = luaL_checkudata(L, idx, FILEHASHES_MT);
	if (!lh->fh)
		luaL_error(L, "attempt to use closed file hashes");
	return lh;
}

/* hashes:get(path) -> {type = "file", hash, size, mode} | false[, message]:
 * what st:hash said of the file at path, if it was among the prefetched
 * ones and is not forgotten since; else false (ask the store), followed by
 * the message st:hash gives (its code is "notfound") when the path did not
 * exist then. */
static int hashes_get(lua_State *L)
{
	struct lhashes *lh = check_hashes(L, 1);
	size_t len;
	const char *path = luaL_checklstring(L, 2, &len);
	const struct mlx_filehash *f = mlx_filehashes_find(lh->fh, path, len);
	if (!f) {
		lua_pushboolean(L, 0);
		if (!mlx_filehashes_absent(lh->fh, path, len))
			return 1;
		lua_pushfstring(L, "cannot stat %s: %s", path, strerror(ENOENT));
		return 2;
	}
	lua_createtable(L, 0, 4);
	lua_pushliteral(L, "file");
	lua_setfield(L, -2, "type");
	lua_pushlstring(L, f->hex, MLX_HASH_HEX_SIZE - 1);
	lua_setfield(L, -2, "hash");
	lua_pushinteger(L, (lua_Integer)f->size);
	lua_setfield(L, -2, "size");
	lua_pushstring(L, f->mode == 0755 ? "755" : "644");
	lua_setfield(L, -2, "mode");
	return 1;
}

/* hashes:forget(path): a step rewrote path; get no longer knows it. */
static int hashes_forget(lua_State *L)
{
	struct lhashes *lh = check_hashes(L, 1);
	size_t len;
	const char *path = luaL_checklstring(L, 2, &len);
	mlx_filehashes_forget(lh->fh, path, len);
	return 0;
}

static int hashes_len(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)mlx_filehashes_count(check_hashes(L, 1)->fh));
	return 1;
}

static int hashes_close(lua_State *L)
{
	struct lhashes *lh = luaL_checkudata(L, 1, FILEHASHES_MT);
	mlx_filehashes_free(lh->fh);
	lh->fh = NULL;
	return 0;
}

static const luaL_Reg hashes_methods[] = {
    {"get", hashes_get},
    {"forget", hashes_forget},
    {NULL, NULL},
};

static const luaL_Reg hashes_meta[] = {
    {"__len", hashes_len},
    {"__gc", hashes_close},
    {"__close", hashes_close},
    {NULL, NULL},
};

int mlx_lua_push_filehashes(lua_State *L, struct mlx_filelist *list)
{
	/* Made before the index, so that a memory error cannot leak it; the
	 * metatable at the first use, by whichever binding comes first. */
	struct lhashes *lh = lua_newuserdatauv(L, sizeof *lh, 0);
	lh->fh = NULL;
	if (luaL_newmetatable(L, FILEHASHES_MT)) {
		luaL_setfuncs(L, hashes_meta, 0);
		luaL_newlib(L, hashes_methods);
		lua_setfield(L, -2, "__index");
	}
	lua_setmetatable(L, -2);
	struct mlx_err err;
	if (mlx_filehashes_index(list, &lh->fh, &err) != MLX_OK) {
		lua_pop(L, 1);
		return mlx_lua_fail(L, &err);
	}
	return 1;
}

static int lockindex_len(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)mlx_lockindex_count(check_index(L)->idx));
	return 1;
}

/* The iterator of pairs and names: upvalue 1 is the position of the next
 * step, upvalue 2 whether its line comes with its name. */
static int lockindex_next(lua_State *L)
{
	struct lindex *li = check_index(L);
	lua_Integer i = lua_tointeger(L, lua_upvalueindex(1));
	if ((size_t)i >= mlx_lockindex_count(li->idx))
		return 0;
	lua_pushinteger(L, i + 1);
	lua_replace(L, lua_upvalueindex(1));
	size_t name_len, rest_len;
	const char *rest;
	const char *name = mlx_lockindex_at(li->idx, (size_t)i, &name_len, &rest, &rest_len);
	lua_pushlstring(L, name, name_len);
	if (!lua_toboolean(L, lua_upvalueindex(2)))
		return 1;
	lua_pushlstring(L, rest, rest_len);
	return 2;
}

static int iterate(lua_State *L, int with_lines)
{
	check_index(L);
	lua_pushinteger(L, 0);
	lua_pushboolean(L, with_lines);
	lua_pushcclosure(L, lockindex_next, 2);
	lua_pushvalue(L, 1);
	lua_pushnil(L);
	return 3;
}

static int lockindex_pairs(lua_State *L)
{
	return iterate(L, 1);
}

/* lockindex.names(index) -> iterator over the step names alone: making
 * each line a string too would be most of the cost of a walk over them. */
static int lockindex_names(lua_State *L)
{
	return iterate(L, 0);
}

static int lockindex_close(lua_State *L)
{
	struct lindex *li = luaL_checkudata(L, 1, LOCKINDEX_MT);
	mlx_lockindex_free(li->idx);
	li->idx = NULL;
	mlx_hash_stream_free(&li->stream);
	return 0;
}

static const luaL_Reg lockindex_meta[] = {
    {"__index", lockindex_get}, {"__len", lockindex_len},     {"__pairs", lockindex_pairs},
    {"__gc", lockindex_close},  {"__close", lockindex_close}, {NULL, NULL},
};

static const luaL_Reg lockindex_functions[] = {
    {"read", lockindex_read},
    {"has", lockindex_has},
    {"same", lockindex_same},
    {"same_key", lockindex_same_key},
    {"names", lockindex_names},
    {NULL, NULL},
};

int luaopen_mlx_lockindex(lua_State *L)
{
	luaL_newmetatable(L, LOCKINDEX_MT);
	luaL_setfuncs(L, lockindex_meta, 0);
	lua_pop(L, 1);
	luaL_newlib(L, lockindex_functions);
	return 1;
}
