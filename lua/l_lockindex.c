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

/* get and find: with_message says how a path missing at the prefetch is
 * told, by st:hash's message or by true. */
static int hashes_lookup(lua_State *L, int with_message)
{
	struct lhashes *lh = check_hashes(L, 1);
	size_t len;
	const char *path = luaL_checklstring(L, 2, &len);
	const struct mlx_filehash *f = mlx_filehashes_find(lh->fh, path, len);
	if (!f) {
		lua_pushboolean(L, 0);
		if (!mlx_filehashes_absent(lh->fh, path, len))
			return 1;
		if (with_message)
			lua_pushfstring(L, "cannot stat %s: %s", path, strerror(ENOENT));
		else
			lua_pushboolean(L, 1);
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

/* hashes:get(path) -> {type = "file", hash, size, mode} | false[, message]:
 * what st:hash said of the file at path, if it was among the prefetched
 * ones and is not forgotten since; else false (ask the store), followed by
 * the message st:hash gives (its code is "notfound") when the path did not
 * exist then. */
static int hashes_get(lua_State *L)
{
	return hashes_lookup(L, 1);
}

/* hashes:find(path) -> {type = "file", hash, size, mode} | false[, true]:
 * as get, with true instead of the message for a path that did not exist:
 * a dry run of a fresh pipeline asks about 100,000 missing paths and shows
 * none of those messages. */
static int hashes_find(lua_State *L)
{
	return hashes_lookup(L, 0);
}

/* hashes:forget(path): a step rewrote path; get and same_step no longer
 * know it. */
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
    {"find", hashes_find},
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

/* A path the key text holds as it is (key.lua writes it unescaped): no
 * byte that JSON escapes or that must be checked as UTF-8. */
static int plain_path(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 32 || c == '"' || c == '\\' || c >= 128)
			return 0;
	}
	return 1;
}

/* A path of a step's list and the record of the file it names. */
struct step_path {
	const char *path;
	size_t len;
	const struct mlx_filehash *file;
};

static int compare_paths(const void *a, const void *b)
{
	return strcmp(((const struct step_path *)a)->path, ((const struct step_path *)b)->path);
}

/* How many paths of a list known_paths keeps in the caller's array; a
 * longer list gets one on the Lua stack. */
#define FEW_PATHS 8

/* Reads the list at idx (a step's deps or outs) into few (FEW_PATHS of
 * them) or, when longer, an array on the stack, each path plain and known
 * to hashes, sorted by path bytes. Returns the array and its length in *n,
 * or NULL when a path is not plain or not known (the caller's check then
 * says "not up to date"). The paths stay anchored on the stack. */
static struct step_path *known_paths(lua_State *L, int idx, const struct mlx_filehashes *fh,
                                     struct step_path *few, size_t *n)
{
	lua_Integer len = luaL_len(L, idx);
	luaL_checkstack(L, (int)(len > 0 ? len : 0) + LUA_MINSTACK, "too many paths");
	struct step_path *paths = few;
	if (len > FEW_PATHS)
		paths = lua_newuserdatauv(L, (size_t)len * sizeof *paths, 0);
	for (lua_Integer i = 1; i <= len; i++) {
		if (lua_geti(L, idx, i) != LUA_TSTRING)
			return NULL;
		struct step_path *p = &paths[i - 1];
		p->path = lua_tolstring(L, -1, &p->len);
		if (!plain_path(p->path, p->len) || !(p->file = mlx_filehashes_find(fh, p->path, p->len)))
			return NULL;
	}
	if (len > 1)
		qsort(paths, (size_t)len, sizeof *paths, compare_paths);
	*n = (size_t)(len > 0 ? len : 0);
	return paths;
}

/* The key text, written in pieces to a SHA-256 stream through a small
 * buffer: one update per few hundred bytes, not one per piece. */
struct key_text {
	struct mlx_hash_stream *stream;
	size_t len;
	int rc;
	struct mlx_err err;
	char buf[512];
};

static void key_add(struct key_text *k, const char *s, size_t len)
{
	if (k->rc != MLX_OK)
		return;
	if (k->len + len > sizeof k->buf) {
		k->rc = mlx_hash_stream_update(k->stream, k->buf, k->len, &k->err);
		k->len = 0;
		if (k->rc == MLX_OK && len > sizeof k->buf) {
			k->rc = mlx_hash_stream_update(k->stream, s, len, &k->err);
			return;
		}
	}
	memcpy(k->buf + k->len, s, len);
	k->len += len;
}

#define KEY_ADD_LITERAL(k, s) key_add((k), (s), sizeof(s) - 1)

static void key_add_arg(lua_State *L, struct key_text *k, int idx)
{
	size_t len;
	const char *s = lua_tolstring(L, idx, &len);
	key_add(k, s, len);
}

/* lockindex.same_step(index, hashes, name, deps, outs, head, env, fn,
 * params, tools) -> true if step name is up to date by its line in index:
 * the SHA-256 of its key text (the pieces key.lua's key_pieces makes,
 * with the deps object written here from the hashes of its deps) and its
 * outs' hashes make exactly that line. head, env, fn, params and tools are
 * those pieces of the key text as key.lua writes them. False when it is
 * not, or when this cannot say: no line, a dep or out not among hashes
 * (missing, a directory, forgotten) or a path JSON would escape; the
 * caller then decides the step the long way, which says why. Raises for
 * an argument of the wrong type, or when SHA-256 fails. A no-op decides
 * each step in this one call, without a Lua value per dep or out. */
static int lockindex_same_step(lua_State *L)
{
	struct lindex *li = check_index(L);
	const struct mlx_filehashes *fh = check_hashes(L, 2)->fh;
	size_t name_len, rest_len;
	const char *name = luaL_checklstring(L, 3, &name_len);
	luaL_checktype(L, 4, LUA_TTABLE);
	luaL_checktype(L, 5, LUA_TTABLE);
	for (int i = 6; i <= 10; i++)
		luaL_checktype(L, i, LUA_TSTRING);
	lua_settop(L, 10);
	const char *rest = mlx_lockindex_find(li->idx, name, name_len, &rest_len);
	size_t ndeps = 0, nouts = 0;
	struct step_path few_deps[FEW_PATHS], few_outs[FEW_PATHS];
	struct step_path *deps = rest ? known_paths(L, 4, fh, few_deps, &ndeps) : NULL;
	struct step_path *outs = deps ? known_paths(L, 5, fh, few_outs, &nouts) : NULL;
	if (!outs) {
		lua_pushboolean(L, 0);
		return 1;
	}
	struct key_text k = {.stream = &li->stream};
	k.rc = mlx_hash_stream_start(k.stream, &k.err);
	key_add_arg(L, &k, 6);
	KEY_ADD_LITERAL(&k, "\"deps\":{");
	for (size_t i = 0; i < ndeps; i++) {
		/* Each dep once, as json.encode_fields writes the object. */
		if (i > 0 && strcmp(deps[i].path, deps[i - 1].path) == 0)
			continue;
		if (i > 0)
			KEY_ADD_LITERAL(&k, ",");
		KEY_ADD_LITERAL(&k, "\"");
		key_add(&k, deps[i].path, deps[i].len);
		KEY_ADD_LITERAL(&k, "\":\"");
		key_add(&k, deps[i].file->hex, MLX_HASH_HEX_SIZE - 1);
		KEY_ADD_LITERAL(&k, "\"");
	}
	KEY_ADD_LITERAL(&k, "},\"env\":");
	key_add_arg(L, &k, 7);
	key_add_arg(L, &k, 8);
	KEY_ADD_LITERAL(&k, ",\"outs\":[");
	for (size_t i = 0; i < nouts; i++) {
		if (i > 0)
			KEY_ADD_LITERAL(&k, ",");
		KEY_ADD_LITERAL(&k, "\"");
		key_add(&k, outs[i].path, outs[i].len);
		KEY_ADD_LITERAL(&k, "\"");
	}
	KEY_ADD_LITERAL(&k, "],\"params\":");
	key_add_arg(L, &k, 9);
	KEY_ADD_LITERAL(&k, ",\"tools\":");
	key_add_arg(L, &k, 10);
	KEY_ADD_LITERAL(&k, ",\"v\":1}");
	char hex[MLX_HASH_HEX_SIZE];
	if (k.rc == MLX_OK && k.len > 0)
		k.rc = mlx_hash_stream_update(k.stream, k.buf, k.len, &k.err);
	if (k.rc == MLX_OK)
		k.rc = mlx_hash_stream_finish(k.stream, hex, &k.err);
	if (k.rc != MLX_OK)
		return luaL_error(L, "%s", k.err.msg);
	/* The line: the key, then "\tOUT\tHASH" per out in path order. */
	int same = rest_len >= MLX_HASH_HEX_SIZE - 1 && memcmp(rest, hex, MLX_HASH_HEX_SIZE - 1) == 0;
	size_t at = MLX_HASH_HEX_SIZE - 1;
	for (size_t i = 0; same && i < nouts; i++) {
		size_t need = 1 + outs[i].len + 1 + (MLX_HASH_HEX_SIZE - 1);
		same = rest_len - at >= need && rest[at] == '\t' &&
		       memcmp(rest + at + 1, outs[i].path, outs[i].len) == 0 &&
		       rest[at + 1 + outs[i].len] == '\t' &&
		       memcmp(rest + at + 2 + outs[i].len, outs[i].file->hex, MLX_HASH_HEX_SIZE - 1) == 0;
		at += need;
	}
	lua_pushboolean(L, same && at == rest_len);
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
    {"same_step", lockindex_same_step},
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
